"""cnnlab: config-driven convolutional network experiments."""

__version__ = "0.1.0"
