"""Errors the `cifar10` command reports as one clear line instead of a traceback."""


class UserFacingError(Exception):
    """Bad input from the user (a path, a name, a file): the message says what is wrong and what to do."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""
