"""Shared suite: trusted forwarded headers (issue: behind a proxy).

Every backend package runs it (tests/test_production.py)."""

from __future__ import annotations

from typing import ClassVar


class ProxySuite:
    backend: ClassVar[str] = "wsgiref"
