"""Waking the loop from core's stop handler: this backend's counterpart of waitress's
``trigger.py``, which wakes the loop for the worker threads but must not be used from a
signal handler (see ``Waker``).

Imported by ``serving.py`` (it imports waitress at module level).
"""

from __future__ import annotations

import os

from waitress import wasyncore


class Waker(wasyncore.file_dispatcher):
    """Wakes the loop from a signal handler. waitress's own trigger is not safe there: it
    writes to a blocking pipe that only the (interrupted) loop thread empties."""

    def __init__(self, socket_map: dict) -> None:
        read_end, self._write_end = os.pipe()
        os.set_blocking(self._write_end, False)
        super().__init__(read_end, map=socket_map)
        os.close(read_end)  # file_dispatcher keeps its own duplicate

    def wake(self) -> None:
        try:
            os.write(self._write_end, b"x")
        except BlockingIOError:
            pass  # full pipe: the loop is woken already

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return False

    def handle_read(self) -> None:
        try:
            os.read(self.socket.fileno(), 4096)
        except BlockingIOError:
            pass

    def close(self) -> None:
        super().close()
        if self._write_end >= 0:
            os.close(self._write_end)
            self._write_end = -1
