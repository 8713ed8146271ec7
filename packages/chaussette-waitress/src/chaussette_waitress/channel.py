"""One client connection: waitress's channel with core's strict parser and the state a
graceful stop reads (is a request on it still to be answered?).

Imported by ``serving.py`` (it imports waitress at module level).
"""

from __future__ import annotations

import time

from waitress.channel import HTTPChannel

from chaussette_waitress.protocol import StrictParser
from chaussette_waitress.task import Task

#: How long a stop waits for the first request of a connection accepted before it: under a
#: process manager no other worker can answer that client.
FRESH_CONNECTION_WAIT = 5.0


class Channel(HTTPChannel):
    task_class = Task
    served = False

    @property
    def parser_class(self) -> type[StrictParser]:
        """waitress makes each request's parser with ``parser_class(adj)``: core's strict
        checks with this server's limits (see ``protocol.py``)."""
        return self.server.parser_class

    @property
    def busy(self) -> bool:
        """True while a request is being received (its head is complete), queued, run,
        or its response is still being sent, and for a connection accepted but not yet
        served (for a while): what a graceful stop waits for."""
        receiving = self.request is not None and self.request.headers_finished
        fresh = not self.served and time.time() - self.creation_time < FRESH_CONNECTION_WAIT
        return bool(self.requests or self.total_outbufs_len or receiving or fresh)
