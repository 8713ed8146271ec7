"""Where the repository's ``examples/`` are: the process-manager suite deploys them as
users would, so it needs the files themselves, which no installed package carries.

The pytest plugin hands the directory to the suite (the ``chaussette_examples``
fixture); these are the rules it applies, kept free of pytest so they can be tested
and reused on their own.
"""

from __future__ import annotations

from pathlib import Path

OPTION = "--chaussette-examples"
INI = "chaussette_examples"
#: The file that marks a directory as the examples: the app every configuration serves.
MARKER = "server.py"


class HarnessError(AssertionError):
    """The harness cannot run here (no examples, an example changed under it)."""


def given_examples(path: Path, source: str) -> Path:
    """``path``, named by ``source`` (the option or ini line), if it is an examples directory."""
    if not (path / MARKER).is_file():
        raise HarnessError(f"{source} names {path}, which has no {MARKER}: it must be the "
                           f"repository's examples/ directory")
    return path.resolve()


def find_examples(start: Path) -> Path:
    """The ``examples/`` of the first directory from ``start`` upwards that has one with its
    ``server.py``: from pytest's rootdir in a package of a checkout, the repository's."""
    start = start.resolve()
    for directory in (start, *start.parents):
        if (directory / "examples" / MARKER).is_file():
            return directory / "examples"
    raise HarnessError(
        f"the process-manager suite deploys the repository's examples/, and no directory from "
        f"{start} upwards holds examples/{MARKER}: run it from a checkout, or name the directory "
        f"with {OPTION} DIR (ini option: {INI})")
