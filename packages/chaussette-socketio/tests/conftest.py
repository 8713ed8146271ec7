"""The ``peers`` fixture: python-socketio clients (see helpers.py) ended after each test."""

from __future__ import annotations

from typing import Iterator

import pytest
from helpers import Peer


@pytest.fixture
def peers() -> Iterator[list[Peer]]:
    """Connected clients get disconnected, whatever the test did. Aborted: a polling
    client's ``disconnect()`` waits for its pending GET, which a live server answers at
    the next ping only."""
    made: list[Peer] = []
    yield made
    for peer in made:
        peer.client.eio.disconnect(abort=True)
