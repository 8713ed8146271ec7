"""Is the ``socketio`` package that will be imported python-socketio's?

gevent-socketio, which Chaussette 1.3's ``socketio`` backend used, is Python 2 only and
installs a package of the same name, ``socketio``: installed with python-socketio, one
overwrites the other's files. ``check()`` answers without importing the package (that
would load ssl before gevent patches it); ``import_socketio_apps()`` catches what only
the import shows, such as one of its modules replaced by gevent-socketio's.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
from types import ModuleType

from chaussette.errors import BackendError

FIX = "pip uninstall gevent-socketio && pip install --force-reinstall python-socketio"


def not_python_socketio(where: str, why: str) -> BackendError:
    return BackendError(f"the 'socketio' package in {where} is not python-socketio's ({why}); "
                        "gevent-socketio, which Chaussette 1.3 used, is Python 2 only and installs a package "
                        f"of the same name: remove it and reinstall python-socketio: {FIX}")


def check_python_socketio(install: str) -> None:
    """Refuse to start unless ``import socketio`` will import python-socketio."""
    spec = importlib.util.find_spec("socketio")
    if spec is None:
        raise BackendError(f"cannot import 'socketio' (python-socketio is not installed); "
                           f"install it with: pip install {install}")
    where = spec.origin or ", ".join(spec.submodule_search_locations or ()) or "?"
    if _installed("gevent-socketio"):
        raise not_python_socketio(where, "gevent-socketio is installed")
    get_source = getattr(spec.loader, "get_source", None)
    source = get_source(spec.name) if get_source is not None else None
    if source is not None:
        try:
            compile(source, where, "exec")
        except SyntaxError as exc:
            raise not_python_socketio(where, f"Python 2 code: SyntaxError on line {exc.lineno}") from None
    dist = _installed("python-socketio")
    if dist is None:
        raise not_python_socketio(where, "python-socketio is not installed")
    expected = str(dist.locate_file("socketio/__init__.py"))
    # An editable install of python-socketio has no file there: nothing to compare with.
    if os.path.exists(expected) and not (spec.origin and os.path.samefile(expected, spec.origin)):
        raise not_python_socketio(where, f"python-socketio's is {expected}")


def _installed(name: str) -> importlib.metadata.Distribution | None:
    try:
        return importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def import_socketio_apps() -> ModuleType:
    """``chaussette_socketio.apps``, which imports python-socketio (after patching)."""
    try:
        from chaussette_socketio import apps
    except SyntaxError as exc:
        raise not_python_socketio(exc.filename or "?", f"Python 2 code: SyntaxError on line {exc.lineno}") from None
    return apps
