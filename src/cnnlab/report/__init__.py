"""Pictures and tables made from finished runs and from the update rules (matplotlib, lazily)."""
