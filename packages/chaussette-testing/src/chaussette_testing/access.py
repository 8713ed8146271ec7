"""Shared suite: request ids, access log formats, log files reopened.

Every backend package runs it (tests/test_production.py)."""

from __future__ import annotations

from typing import ClassVar


class AccessLogSuite:
    backend: ClassVar[str] = "wsgiref"
