"""Thin command-line entry points; each composes a config and hands built objects on."""
