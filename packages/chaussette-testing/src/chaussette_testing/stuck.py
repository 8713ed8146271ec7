"""Shared suite: requests running longer than --timeout reported, and the process replaced where one blocks all.

Every backend package runs it (tests/test_production.py)."""

from __future__ import annotations

from typing import ClassVar


class StuckRequestSuite:
    backend: ClassVar[str] = "wsgiref"
