"""Shared suite: request metrics sent to a statsd server (a UDP socket the test binds).

Every backend package runs it (tests/test_production.py)."""

from __future__ import annotations

from typing import ClassVar


class MetricsSuite:
    backend: ClassVar[str] = "wsgiref"
