"""Is the installed meinheld a build that works with the installed greenlet?

meinheld 1.0.2 (2020, the last release) is compiled against a copy of greenlet 0.4's
header. Installed next to greenlet >= 2 anyway (``pip install --no-deps``, or an old
environment), it imports and listens fine, and then every greenlet switch goes wrong:
the first request fails or the process crashes. On Python 3.13 it does not import at
all. Chaussette's build recipe (``ci/build-meinheld``) produces ``1.0.2+chaussette.N``
wheels compiled against greenlet >= 2's own header; this module tells those apart from
the broken ones, so the server refuses to start instead of failing on the first request.

Two checks, the cheap one first:

- the gate (no subprocess, microseconds): meinheld's version is one of ours and greenlet's
  major version is >= 2. Our wheels are built only against greenlet >= 2's header and
  their metadata requires greenlet >= 2, whose C API has kept the same layout since 2.0,
  so this combination is the one the recipe tests. It is trusted, because a 35 ms
  subprocess at every start (and every reload) buys nothing for it.
- the probe (a subprocess, ~35 ms): for any other version (stock 1.0.2, a distribution's
  own rebuild, 0.x, an unparseable one) or an older greenlet. It does what breaks on a
  wrong ABI, one greenlet run to completion by meinheld's loop, and checks that greenlet
  can free it. A subprocess, because a broken build may crash the interpreter running it.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

#: The local version our build recipe gives its wheels (``1.0.2+chaussette.N``).
OUR_VERSION_PREFIX = "1.0.2+chaussette."
#: How to get a working build, appended to every refusal.
HOW_TO_FIX = ("get the fixed build: in a chaussette checkout run 'ci/build-meinheld wheels && "
              "pip install --upgrade --find-links wheels meinheld==1.0.2' "
              "(see the chaussette-meinheld README)")
PROBE_TIMEOUT = 20.0
#: Run by ``sys.executable -c``; exit 0: works, 1: wrong greenlet ABI, 3: does not import.
#: meinheld's loop needs something to watch: the read end of a pipe nobody writes to
#: stands in for a listening socket, so the probe never binds a port. Pending calls run
#: last-in-first-out: ``probe`` runs (and finishes) first, then ``verdict``.
PROBE = r"""
import gc, os, sys
try:
    import weakref, greenlet
    from meinheld import server
except Exception as exc:
    sys.stdout.write("import failed: %s: %s\n" % (type(exc).__name__, exc))
    sys.stdout.flush()
    os._exit(3)
refs = []
def probe():
    refs.append(weakref.ref(greenlet.getcurrent()))
def verdict():
    gc.collect()
    ok = bool(refs) and refs[0]() is None
    sys.stdout.write("meinheld greenlet ABI %s\n" % ("ok" if ok else "BROKEN"))
    sys.stdout.flush()
    os._exit(0 if ok else 1)
read_end, _ = os.pipe()
server.set_listen_socket([read_end])
server.spawn(verdict)
server.spawn(probe)
server.run(lambda environ, start_response: [])
os._exit(2)
"""


@dataclass(frozen=True)
class Verdict:
    """The outcome of ``inspect()``: ``problem`` is None when meinheld can be used."""

    meinheld: str | None
    greenlet: str | None
    problem: str | None = None
    probed: bool = False


def _version(distribution: str) -> str | None:
    try:
        return version(distribution)
    except PackageNotFoundError:
        return None


def _major(text: str | None) -> int:
    head = (text or "").split(".", 1)[0]
    return int(head) if head.isdigit() else -1


def trusted(meinheld: str | None, greenlet: str | None) -> bool:
    """The cheap gate: one of our builds next to greenlet >= 2."""
    return bool(meinheld and meinheld.startswith(OUR_VERSION_PREFIX)) and _major(greenlet) >= 2


def probe(python: str = sys.executable, timeout: float = PROBE_TIMEOUT) -> str | None:
    """Run the behavioural check in a subprocess; None if meinheld works, else why not."""
    try:
        done = subprocess.run([python, "-c", PROBE], stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return f"its self-test did not finish within {timeout:g}s"
    said = done.stdout.strip().splitlines()
    last = said[-1] if said else ""
    if done.returncode == 0:
        return None
    if done.returncode == 1:
        return ("it is compiled for another greenlet ABI than the installed greenlet "
                "(greenlet switches go wrong: requests would fail or crash the server)")
    if done.returncode == 3:
        return f"it does not import on Python {sys.version_info[0]}.{sys.version_info[1]} ({last[15:]})"
    if done.returncode < 0:
        return f"its self-test crashed (signal {-done.returncode})"
    return f"its self-test failed (exit {done.returncode}{': ' + last if last else ''})"


def inspect() -> Verdict:
    """Installed versions, and whether they work: the gate, else the probe."""
    meinheld, greenlet = _version("meinheld"), _version("greenlet")
    if meinheld is None:
        return Verdict(None, greenlet, "meinheld is not installed")
    if trusted(meinheld, greenlet):
        return Verdict(meinheld, greenlet)
    return Verdict(meinheld, greenlet, probe(), probed=True)


def refusal(verdict: Verdict) -> str:
    """One line: what is wrong with this meinheld and how to get a working one."""
    found = f"meinheld {verdict.meinheld}" if verdict.meinheld else "meinheld"
    with_greenlet = f" with greenlet {verdict.greenlet}" if verdict.greenlet else " without greenlet"
    return f"{found}{with_greenlet} cannot serve: {verdict.problem}; {HOW_TO_FIX}"
