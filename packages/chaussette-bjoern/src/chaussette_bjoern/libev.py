"""The two C calls the graceful stop needs and Python has no API for, through ctypes.

bjoern can stop gracefully, but only on SIGINT it receives itself: its libev loop watches
SIGINT and then stops accepting and runs until every connection is closed. Chaussette's
stop signals must reach core's handlers instead (for ``--graceful-timeout`` and the
second-signal exit), so the backend starts bjoern's shutdown with libev's own
``ev_feed_signal(SIGINT)``, documented as safe "at any time, from any context, including
signal handlers or random threads". No signal is sent: nothing else sees one.

Imported by ``serve()`` and ``check()`` only, after bjoern.
"""

from __future__ import annotations

import ctypes
import signal
from typing import Any

#: ``struct sigaction`` is 152 bytes on Linux/glibc; the handler comes first everywhere.
SIGACTION_SIZE = 512


class Libev:
    """libev as bjoern's extension module loaded it (a shared libev, or one linked in)."""

    def __init__(self, extension: Any) -> None:
        # dlopen() of a library already loaded returns it, and dlsym() on that handle also
        # searches what it was linked with: this is the libev bjoern's loop runs on.
        library = ctypes.CDLL(extension.__file__)
        self._feed_signal = library.ev_feed_signal
        self._feed_signal.argtypes = [ctypes.c_int]
        self._feed_signal.restype = None

    def feed_signal(self, signum: int) -> None:
        """Make the loop watching ``signum`` run its watcher, as if the signal came."""
        self._feed_signal(signum)


def libev_of(extension: Any) -> Libev | None:
    """bjoern's libev, or None if its extension does not expose ``ev_feed_signal``."""
    try:
        return Libev(extension)
    except (OSError, AttributeError):
        return None


_libc = ctypes.CDLL(None, use_errno=True)


def c_handler(signum: int) -> int:
    """Address of the C-level handler of ``signum`` right now (0 is SIG_DFL, 1 SIG_IGN).

    Python's ``signal.getsignal`` only knows the handlers Python installed; this sees the
    one libev installs when bjoern's loop starts, which is how ``serve`` knows it has.
    """
    buffer = ctypes.create_string_buffer(SIGACTION_SIZE)
    if _libc.sigaction(signum, None, buffer) != 0:
        raise OSError(ctypes.get_errno(), f"sigaction({signal.Signals(signum).name})")
    return ctypes.c_void_p.from_buffer(buffer).value or 0
