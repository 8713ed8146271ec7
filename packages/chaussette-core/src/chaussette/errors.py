"""Errors that end the program with one readable line instead of a traceback."""


class ChaussetteError(Exception):
    """A problem the user can fix: the message says what is wrong and how to fix it.

    The CLI prints it as a single line and exits non-zero; the traceback is logged only
    at debug level, because for these errors it is noise.
    """

    exit_code = 1


class BackendError(ChaussetteError):
    """The chosen backend is unknown, missing, broken or cannot honour an option."""


class AppImportError(ChaussetteError):
    """The WSGI application could not be found, imported or called."""


class SocketError(ChaussetteError):
    """A listening socket could not be opened or adopted."""


class UsageError(ChaussetteError):
    """Options that do not parse: exits 2, as argparse's own usage errors do."""

    exit_code = 2
