"""Importing waitress, and refusing one with known vulnerabilities.

The package's dependency already asks for a safe waitress, but an environment can hold
an older one (installed before, or pinned by something else): the gate runs at start-up,
so such a server never answers a request.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from chaussette.backends import require, version_tuple
from chaussette.errors import BackendError

INSTALL = "chaussette-waitress"
#: 3.0.1 fixed CVE-2024-49768 (request smuggling with pipelining) and CVE-2024-49769
#: (denial of service through closed connections); 3.0.2 is the first release after them.
MINIMUM_WAITRESS = (3, 0, 2)


def check() -> None:
    """Fail at start-up if waitress is missing, or older than ``MINIMUM_WAITRESS``."""
    require("waitress", INSTALL)
    try:
        found = version("waitress")
    except PackageNotFoundError:  # imported from a source tree: trust it
        return
    if version_tuple(found) < MINIMUM_WAITRESS:
        wanted = ".".join(map(str, MINIMUM_WAITRESS))
        raise BackendError(f"waitress {found} is installed but the waitress backend needs "
                           f">= {wanted} (CVE-2024-49768, CVE-2024-49769); upgrade it with: "
                           f"pip install 'waitress>={wanted}'")
