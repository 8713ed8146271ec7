"""Shared suite: health path, drain delay, recycling after --max-requests.

Every backend package runs it (tests/test_production.py)."""

from __future__ import annotations

from typing import ClassVar


class DrainSuite:
    backend: ClassVar[str] = "wsgiref"
