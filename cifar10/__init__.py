"""CIFAR-10 classifier studio: the TensorFlow-free core shared by the CLI and every app."""

__version__ = "0.1.0"
