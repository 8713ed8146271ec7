"""Processes, read from /proc (Linux) and never signalled by name: which of a manager's
children run chaussette, whether a worker is gone, and waiting for such a condition."""

from __future__ import annotations

import os
import time
from typing import Any, Callable


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, ppid) of ``pid``, or None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rpartition(b")")[2].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return fields[0].decode(), int(fields[1])


def alive(pid: int) -> bool:
    """Running (a zombie is dead: it only waits for its parent to read its status)."""
    stat = _stat(pid)
    return stat is not None and stat[0] not in ("Z", "X")


def cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as line:
            return line.read().decode("utf-8", "replace").split("\0")[:-1]
    except (FileNotFoundError, ProcessLookupError):
        return []


def is_chaussette(pid: int) -> bool:
    """Running the ``chaussette`` script (a manager's child that has not exec'd yet is not)."""
    return alive(pid) and any(os.path.basename(arg) == "chaussette" for arg in cmdline(pid)[:2])


def children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _stat(int(entry))
            if stat is not None and stat[1] == pid and stat[0] not in ("Z", "X"):
                found.append(int(entry))
    return sorted(found)


def wait_until(predicate: Callable[[], Any], timeout: float = 15.0, what: str = "a condition",
               context: Callable[[], str] = lambda: "") -> Any:
    """Poll ``predicate`` until it returns something true; fail with ``context()`` if it never does."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout}s\n{context()}")
        time.sleep(0.05)
