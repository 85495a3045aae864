"""CIFAR-10 Studio desktop app (PySide6 + onnxruntime): drop images, get classes.

Qt code only: all image decoding, model discovery and inference live in the ``cifar10`` package
(``cifar10.preprocess``, ``cifar10.registry``, ``cifar10.inference``), shared with the CLI and web apps.
Start it with ``cifar10 app`` or ``python -m desktop_app``.
"""
