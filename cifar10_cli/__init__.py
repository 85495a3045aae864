"""The ``cifar10`` command: a thin layer over the core (``cifar10``), the desktop app, the web apps and
training. It is its own package so that the core never imports an app: the dependencies point one way,
``cifar10_cli -> desktop_app | web | training -> cifar10``. Each subcommand imports its extra lazily and
names it when it is missing."""
