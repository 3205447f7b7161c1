"""Optimisation: parameter groups, learning-rate schedules (and, later, textbook update rules)."""
