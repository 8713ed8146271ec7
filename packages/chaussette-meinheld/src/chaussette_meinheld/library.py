"""Gating meinheld: is the installed one chaussette's build, the one the backend can hand
applications to?

The backend passes the application straight to meinheld, so it needs what chaussette's
build recipe (``ci/build-meinheld``) puts into meinheld's C code: a response path that
frames every response right on a kept-alive connection, PEP 3333's ``write`` and
``exc_info``, refused CR/LF/NUL in response headers, the connection's address in the
environ (fixes 13-16), and what its ``time.sleep`` needs (fixes 19-20: ``can_sleep()``,
a start_response per request), besides the fixes that make it build and run on Python
3.10-3.13 against greenlet >= 2 at all. Those builds (``1.0.2+chaussette.N``, N >= 9) mark
themselves with ``meinheld.server.CHAUSSETTE_WSGI`` >= 2. Any other meinheld is refused at
start-up, in one line that says how to get the build, instead of serving wrong responses.

The check costs no subprocess. The installed versions come first, from metadata alone:
a meinheld that is not one of our builds (stock 1.0.2, a distribution's rebuild, 0.x) is
refused without being imported, since a copy compiled against another greenlet ABI (or,
on 3.13, against removed C-API functions) may not import, or crash once it runs; so is
greenlet < 2, which our wheels are not compiled for. Then one of our builds is imported
and must carry the mark at the level the backend needs, which earlier ones do not.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

from chaussette.backends import version_tuple

#: The local version our build recipe gives its wheels (``1.0.2+chaussette.N``).
OUR_VERSION_PREFIX = "1.0.2+chaussette."
#: The first build with all the backend relies on (recipe fixes 13-16, 19-20).
FIRST_USABLE_BUILD = "1.0.2+chaussette.9"
#: What such a build's ``meinheld.server`` carries, and its least value (``.8`` has 1).
MARK = "CHAUSSETTE_WSGI"
MARK_LEVEL = 2
#: How to get a working build, appended to every refusal.
HOW_TO_FIX = (f"get chaussette's build ({FIRST_USABLE_BUILD} or later): in a chaussette checkout run "
              "'ci/build-meinheld wheels && pip install --upgrade --find-links wheels meinheld==1.0.2' "
              "(see the chaussette-meinheld README)")


@dataclass(frozen=True)
class Verdict:
    """The outcome of ``inspect()``: ``problem`` is None when meinheld can be used."""

    meinheld: str | None
    greenlet: str | None
    problem: str | None = None


def _installed(distribution: str) -> str | None:
    try:
        return version(distribution)
    except PackageNotFoundError:
        return None


def trusted(meinheld: str | None, greenlet: str | None) -> bool:
    """The metadata gate: one of our builds next to greenlet >= 2."""
    return (bool(meinheld and meinheld.startswith(OUR_VERSION_PREFIX))
            and greenlet is not None and version_tuple(greenlet) >= (2,))


def _unmarked() -> str | None:
    """Why our build cannot serve once imported (None: it carries the mark)."""
    try:
        from meinheld import server
    except ImportError as exc:
        return f"it does not import ({type(exc).__name__}: {exc})"
    if getattr(server, MARK, 0) < MARK_LEVEL:
        return f"it is a build from before {FIRST_USABLE_BUILD}, which lacks what the backend relies on"
    return None


def inspect() -> Verdict:
    """Installed versions, and whether they can serve: the metadata gate, then the mark."""
    meinheld, greenlet = _installed("meinheld"), _installed("greenlet")
    if meinheld is None:
        return Verdict(None, greenlet, "meinheld is not installed")
    if not meinheld.startswith(OUR_VERSION_PREFIX):
        return Verdict(meinheld, greenlet, "it is not chaussette's build")
    if not trusted(meinheld, greenlet):
        return Verdict(meinheld, greenlet, "chaussette's builds are compiled for greenlet >= 2")
    return Verdict(meinheld, greenlet, _unmarked())


def refusal(verdict: Verdict) -> str:
    """One line: what is wrong with this meinheld and how to get a working one."""
    found = f"meinheld {verdict.meinheld}" if verdict.meinheld else "meinheld"
    with_greenlet = f" with greenlet {verdict.greenlet}" if verdict.greenlet else " without greenlet"
    return f"{found}{with_greenlet} cannot serve: {verdict.problem}; {HOW_TO_FIX}"
