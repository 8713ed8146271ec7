"""Import objects named by strings, with errors that say which part was wrong."""

from __future__ import annotations

import importlib
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
        raise AppImportError(f"importing {module_name!r} failed: {type(exc).__name__}: {exc}") from exc
    except Exception as exc:
        raise AppImportError(f"importing {module_name!r} failed: {type(exc).__name__}: {exc}") from exc


def _resolve(obj: Any, module_name: str, attrs: list[str]) -> Any:
    path = module_name
    for attr in attrs:
        try:
            obj = getattr(obj, attr)
        except AttributeError:
            raise AppImportError(f"{path!r} has no attribute {attr!r}") from None
        path = f"{path}.{attr}"
    return obj
