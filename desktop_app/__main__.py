import sys

from desktop_app.app import cli

sys.exit(cli())
