"""Datamodules, one file per source; each names its task and tells classes and channels."""
