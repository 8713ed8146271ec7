"""Importing and gating gevent and the websocket libraries, from the backends' ``check()``.

The libraries are imported only when these run, never with this module: ``backend.py``
imports it before monkey-patching, and ws4py's server module imports ssl and threading,
which must wait until gevent has patched them. ``install`` is what the error tells the user to install
(a subclass's own distribution, such as chaussette-socketio, names itself).
"""

from __future__ import annotations

from chaussette.backends import require, version_tuple
from chaussette.errors import BackendError

#: pywsgi fixes for chunk-trailer smuggling (CVE-2023-41419) and the Expect: 100-continue leak.
MIN_GEVENT = (25, 4, 1)
#: ws4py 0.6 renamed 1.3's ``UpgradableWSGIHandler`` to ``WebSocketWSGIHandler``.
MIN_WS4PY = (0, 6, 0)


def require_gevent(install: str) -> None:
    gevent = require("gevent", install)
    if version_tuple(gevent.__version__) < MIN_GEVENT:
        wanted = ".".join(map(str, MIN_GEVENT))
        raise BackendError(f"gevent {gevent.__version__} is too old (its pywsgi has known request "
                           f"smuggling bugs); install gevent>={wanted}: pip install -U {install}")


def require_gevent_websocket(install: str) -> None:
    require("geventwebsocket.handler", install)


def require_ws4py(install: str) -> None:
    # Only the package: ws4py.server.geventserver is imported by the handler, after patching.
    ws4py = require("ws4py", install)
    if version_tuple(getattr(ws4py, "__version__", "0")) < MIN_WS4PY:
        raise BackendError(f"ws4py {getattr(ws4py, '__version__', '?')} is too old; the geventws4py "
                           f"backend needs ws4py>=0.6.0: pip install -U {install}")
