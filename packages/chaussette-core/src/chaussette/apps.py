"""Find the WSGI application the user named: dotted, colon, factory(), paste: or Django."""

from __future__ import annotations

import os
import sys
from typing import Any, Callable, Sequence

from chaussette.errors import AppImportError
from chaussette.importer import failure, import_string

WSGIApp = Callable[..., Any]


def extend_python_path(python_path: str | None) -> None:
    """Put the current directory and ``--python-path`` entries first on sys.path, as
    1.3 did, so ``chaussette myapp.app`` works from the project directory."""
    entries = [os.getcwd()]
    if python_path:
        entries = [os.path.abspath(entry) for entry in python_path.split(os.pathsep) if entry] + entries
    for entry in reversed(entries):
        if entry in sys.path:
            sys.path.remove(entry)
        sys.path.insert(0, entry)


def load_app(spec: str, arguments: Sequence[str] = (),
             accepts: Callable[[Any], bool] = callable) -> WSGIApp:
    """Load ``spec``; a trailing ``()`` or positional ``arguments`` call it as a factory."""
    if spec.startswith("paste:"):
        from chaussette.paste import load_paste_app

        app = load_paste_app(spec[len("paste:"):])
    else:
        factory = spec.endswith("()")
        obj = import_string(spec[:-2] if factory else spec)
        if factory or arguments:
            if not callable(obj):
                raise AppImportError(f"{spec!r} is not callable, so it cannot be used as a factory")
            try:
                app = obj(*arguments)
            except Exception as exc:
                raise AppImportError(failure(f"calling the factory {spec!r}", exc)) from exc
        else:
            app = obj
    if not accepts(app):
        kind = type(app).__name__
        article = "an" if kind[:1].lower() in "aeiou" else "a"
        raise AppImportError(f"{spec!r} is {article} {kind}, not a WSGI application "
                             "(a callable taking environ and start_response)")
    return app
