"""``time.sleep`` that lets meinheld's loop serve other requests meanwhile.

meinheld runs every request on its one loop thread, so a blocking ``time.sleep`` in an
application stops the whole server for that long. Chaussette's build (recipe fix 19)
gives its timers millisecond precision and says, with ``can_sleep()``, whether the caller
is a greenlet the loop runs (a request's): there the sleep waits on a timer, and the loop
serves other requests until it fires. Anywhere else (another thread, the loop's own
greenlet, before the loop runs) it is the blocking sleep it replaces.
"""

from __future__ import annotations

from typing import Callable, SupportsIndex

#: ``time.sleep``'s type.
Sleep = Callable[[float | SupportsIndex], None]


def cooperative(blocking: Sleep) -> Sleep:
    """``blocking`` (``time.sleep``), made to wait on meinheld's loop where it can."""
    from meinheld import server

    can_sleep, wait = server.can_sleep, server.sleep

    def sleep(seconds: float | SupportsIndex) -> None:
        if can_sleep():
            wait(seconds)
        else:
            blocking(seconds)

    sleep.__doc__ = blocking.__doc__
    return sleep
