"""The desktop app's command-line options, stated once for ``cifar10 app``, ``python -m desktop_app`` and
the bundled executable. No Qt here: the ``cifar10`` command builds its parser without loading PySide6."""

from cifar10.options import add_provider_argument


def add_app_arguments(parser, *, paths_help: str = "files/folders to classify in the app at start") -> None:
    parser.add_argument("paths", nargs="*", metavar="PATH", help=paths_help)
    parser.add_argument("--model", help="exported model name or .onnx path to start with")
    add_provider_argument(parser)
