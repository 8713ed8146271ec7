"""Find backends through the ``chaussette.backends`` entry points without importing them."""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING

from chaussette.errors import BackendError

if TYPE_CHECKING:
    from chaussette.backends import Backend

GROUP = "chaussette.backends"

#: Backends known to exist, with the distribution that provides them, so a missing one
#: gets an install command rather than "unknown backend".
KNOWN = {
    "wsgiref": "chaussette-core",
    "gevent": "chaussette-gevent",
    "fastgevent": "chaussette-gevent",
    "geventwebsocket": "chaussette-gevent[websocket]",
    "geventws4py": "chaussette-gevent[ws4py]",
    "waitress": "chaussette-waitress",
    "eventlet": "chaussette-eventlet",
    "meinheld": "chaussette-meinheld",
    "socketio": "chaussette-socketio",
    "bjoern": "chaussette-bjoern",
}


#: Where ``pip install <distribution>`` from PyPI cannot give a working backend, the
#: command that does, as the README's install table runs it from a clone: no meinheld on
#: PyPI runs on Python >= 3.10, and bjoern's fixed build compiles against libev.
FROM_A_CLONE = {
    "meinheld": "ci/build-wheels wheels && pip install --find-links wheels chaussette-meinheld",
    "bjoern": "apt-get install libev-dev && ci/build-wheels wheels && pip install --find-links wheels "
              "chaussette-bjoern",
}


def install_command(name: str) -> str:
    """The command that installs a known backend: plain pip, or the one that works."""
    if name in FROM_A_CLONE:
        return f"{FROM_A_CLONE[name]} (in a clone of chaussette: PyPI has no working build)"
    return f"pip install {KNOWN[name]}"


@dataclass(frozen=True)
class BackendInfo:
    name: str
    distribution: str
    version: str | None  # None: known but not installed
    target: str = ""


def installed() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def describe() -> list[BackendInfo]:
    """Installed backends with their distribution, then the known missing ones."""
    rows = []
    found = installed()
    for name, ep in sorted(found.items()):
        dist = getattr(ep, "dist", None)
        rows.append(BackendInfo(name, dist.name if dist else "?", dist.version if dist else "?", ep.value))
    for name, dist in sorted(KNOWN.items()):
        if name not in found:
            rows.append(BackendInfo(name, dist, None))
    return rows


def load(name: str) -> type[Backend]:
    from chaussette.backends import API_VERSION, Backend

    found = installed()
    ep = found.get(name)
    if ep is None:
        available = ", ".join(sorted(found)) or "none"
        if name in KNOWN:
            raise BackendError(f"backend {name!r} is not installed (installed: {available}); "
                               f"install it with: {install_command(name)}")
        raise BackendError(f"unknown backend {name!r}; installed backends: {available} "
                           "(see chaussette --list-backends)")
    try:
        backend = ep.load()
    except Exception as exc:
        hint = KNOWN.get(name, getattr(ep.dist, "name", "the package providing it"))
        raise BackendError(f"backend {name!r} failed to load ({type(exc).__name__}: {exc}); "
                           f"reinstall it with: pip install --force-reinstall {hint}") from exc
    if not (isinstance(backend, type) and issubclass(backend, Backend)):
        raise BackendError(f"backend {name!r} ({ep.value}) is not a chaussette Backend class")
    if backend.api_version != API_VERSION:
        dist = getattr(ep.dist, "name", "its package")
        raise BackendError(f"backend {name!r} from {dist} was built for backend API "
                           f"v{backend.api_version}, but this chaussette-core speaks v{API_VERSION}; "
                           f"install versions of {dist} and chaussette-core that match")
    return backend
