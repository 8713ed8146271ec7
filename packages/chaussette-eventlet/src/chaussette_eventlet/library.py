"""Importing eventlet, or saying which distribution to install.

The oldest eventlet accepted (0.40.3, CVE-2025-58068) is the package's dependency; no
build or ABI of eventlet needs checking at run time. Importing eventlet prints its
deprecation warning, so nothing here runs before core asks for it.
"""

from __future__ import annotations

from chaussette.backends import require

INSTALL = "chaussette-eventlet"


def check() -> None:
    """Fail at start-up, not on the first request, if eventlet is missing or broken."""
    require("eventlet.wsgi", INSTALL)


def monkey_patch() -> None:
    """Green the standard library, so the application's sockets, sleeps and locks
    cooperate with eventlet's hub."""
    require("eventlet", INSTALL).monkey_patch()
