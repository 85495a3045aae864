"""``python -m cifar10_cli ...`` = ``cifar10 ...``."""

import sys

from cifar10_cli.main import main

sys.exit(main())
