"""systemd socket activation (sd_listen_fds), without depending on libsystemd."""

from __future__ import annotations

import os

SD_LISTEN_FDS_START = 3


def listen_fds(unset_environment: bool = True) -> list[int]:
    """The fds systemd passed to *this* process, or an empty list.

    LISTEN_FDS is honoured only when LISTEN_PID is our pid: a child that inherited the
    environment of an activated parent must not grab the parent's sockets. The variables
    are removed afterwards so our own children do not see them either.
    """
    try:
        ours = int(os.environ.get("LISTEN_PID", "")) == os.getpid()
        count = int(os.environ.get("LISTEN_FDS", ""))
    except ValueError:
        ours, count = False, 0
    if unset_environment:
        for name in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
            os.environ.pop(name, None)
    if not ours or count < 1:
        return []
    return list(range(SD_LISTEN_FDS_START, SD_LISTEN_FDS_START + count))
