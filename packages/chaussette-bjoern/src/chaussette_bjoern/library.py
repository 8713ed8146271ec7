"""Gating bjoern: importing it, what its graceful stop needs, and which build it is.

Any bjoern that watches SIGINT through a libev with ``ev_feed_signal`` can stop gracefully,
so any serves; the fixed builds (``ci/build-bjoern``) are what the tests run on. Stock
bjoern still serves, with a warning, because the dependency is on the official
distribution, which PyPI installs by itself; its responses go through the Python adapter
(``chaussette_bjoern.protocol``).

Imported by ``check()`` and ``serve()`` only.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

from chaussette.backends import require
from chaussette.errors import BackendError
from chaussette_bjoern.libev import Libev, libev_of

INSTALL = "chaussette-bjoern (building bjoern needs the libev headers: apt-get install libev-dev)"
#: In the version of the fixed bjoern builds (ci/build-bjoern), e.g. 3.2.2+chaussette.3.
FIXED_BUILD = "+chaussette"
#: On ``_bjoern`` in the builds (3.2.2+chaussette.3 and later) that do in C what the Python
#: adapter (``chaussette_bjoern.protocol``) does for any other bjoern: the application is
#: handed to them as it is.
MARK = "CHAUSSETTE_WSGI"


def bjoern() -> Any:
    return require("bjoern", INSTALL)


def libev() -> Libev:
    """bjoern's libev, or a refusal: without ``ev_feed_signal`` the stop cannot start
    bjoern's own shutdown."""
    bjoern()
    extension = require("_bjoern", INSTALL)
    found = libev_of(extension)
    if found is None:
        raise BackendError(f"this bjoern ({extension.__file__}) does not expose libev's "
                           "ev_feed_signal, which its graceful stop needs; install the "
                           f"official bjoern distribution: pip install {INSTALL}")
    return found


def installed_version() -> str:
    try:
        return version("bjoern")
    except PackageNotFoundError:  # importable without its metadata: not ours either
        return "(no distribution metadata)"


def stock_bjoern_warning(version: str) -> str | None:
    """The one line to log when ``version`` is not a fixed build, else None."""
    if FIXED_BUILD in version:
        return None
    return (f"bjoern {version} is not the fixed build (3.2.2+chaussette.N): it answers only the "
            "last of several pipelined requests, and its lenient parser accepts requests a proxy "
            "reads differently (request smuggling), and a Python adapter has to correct its "
            "responses on every request; install the fixed build with: ci/build-wheels "
            "DIR && pip install --find-links DIR chaussette-bjoern")


def marked() -> bool:
    """Whether this bjoern takes the application as it is. Asked when serving starts, not
    in ``check()``: the application is imported by then, as it would be when it changes
    what bjoern offers (the tests hide the mark this way)."""
    return getattr(require("_bjoern", INSTALL), MARK, 0) >= 1
