"""cnnlab-summary's work: a model's layer table, and the model zoo table of every config."""
