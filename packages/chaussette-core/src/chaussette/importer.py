"""Import objects named by strings, with errors that say which part was wrong."""

from __future__ import annotations

import importlib
import os
import sysconfig
import traceback
from typing import Any

from chaussette.errors import AppImportError


def import_string(name: str) -> Any:
    """Resolve ``pkg.mod.attr`` or ``pkg.mod:attr.sub``.

    For the dotted form the longest importable module prefix wins, so both
    ``mysite.wsgi.application`` and ``chaussette.util.hello_app`` work. An ImportError
    raised *inside* a module that does exist is reported as such, not as "not found".
    """
    name = name.strip()
    if not name or any(not part.isidentifier() for part in name.replace(":", ".").split(".")):
        raise AppImportError(f"invalid import string {name!r}: expected pkg.module:attribute "
                             "or pkg.module.attribute")
    if ":" in name:
        module_name, _, attrs = name.partition(":")
        if ":" in attrs:
            raise AppImportError(f"invalid import string {name!r}: only one ':' is allowed")
        return _resolve(_import_module(module_name), module_name, attrs.split("."))
    parts = name.split(".")
    for split in range(len(parts), 0, -1):
        module_name = ".".join(parts[:split])
        try:
            module = _import_module(module_name, missing_ok=split > 1)
        except _Missing:
            continue
        return _resolve(module, module_name, parts[split:])
    raise AssertionError("unreachable: the one-part import raises")  # pragma: no cover


class _Missing(Exception):
    pass


def _import_module(module_name: str, missing_ok: bool = False) -> Any:
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and (module_name == exc.name or module_name.startswith(exc.name + ".")):
            if missing_ok:
                raise _Missing from None
            raise AppImportError(f"module {module_name!r} not found; check the name, the current "
                                 "directory and --python-path") from exc
        raise AppImportError(failure(f"importing {module_name!r}", exc)) from exc
    except Exception as exc:
        raise AppImportError(failure(f"importing {module_name!r}", exc)) from exc


#: Where code that is not the user's lives: importlib, whose frames sit between the
#: import and the module's code, then the standard library and installed packages.
_IMPORTLIB = os.path.join(os.path.dirname(importlib.__file__), "")
_LIBRARIES = tuple(os.path.join(path, "") for path in {
    sysconfig.get_path(name) for name in ("stdlib", "platstdlib", "purelib", "platlib")})


def failure(what: str, exc: BaseException) -> str:
    """``<what> failed at file:line: Type: message``, pointing at the line of the user's
    code that raised, for an ``exc`` caught right around the call that ran that code."""
    where = raised_at(exc)
    at = f" at {where}" if where else ""
    return f"{what} failed{at}: {type(exc).__name__}: {exc} (--log-level debug shows the traceback)"


def raised_at(exc: BaseException) -> str | None:
    """``file:line`` of the deepest frame in the user's own code, below the frame that
    caught ``exc``: not importlib's (frozen or not) nor another library's; else the
    deepest frame outside importlib (an application installed in site-packages)."""
    if isinstance(exc, SyntaxError) and exc.filename and exc.lineno:
        return f"{exc.filename}:{exc.lineno}"  # compiling fails inside importlib
    below = exc.__traceback__.tb_next if exc.__traceback__ else None
    frames = [frame for frame in traceback.extract_tb(below)
              if not frame.filename.startswith("<") and not frame.filename.startswith(_IMPORTLIB)]
    own = [frame for frame in frames if not frame.filename.startswith(_LIBRARIES)]
    deepest = own[-1] if own else frames[-1] if frames else None
    return f"{deepest.filename}:{deepest.lineno}" if deepest else None


def _resolve(obj: Any, module_name: str, attrs: list[str]) -> Any:
    path = module_name
    for attr in attrs:
        try:
            obj = getattr(obj, attr)
        except AttributeError:
            raise AppImportError(f"{path!r} has no attribute {attr!r}") from None
        path = f"{path}.{attr}"
    return obj
