"""The systemd driver reads units as systemd does."""

from __future__ import annotations

import pytest

from chaussette_testing.systemd import systemd_seconds


@pytest.mark.parametrize("value, seconds", [("35", 35), ("35s", 35), ("1min 30s", 90), ("500ms", 0.5)])
def test_systemd_time_spans(value: str, seconds: float) -> None:
    assert systemd_seconds(value) == seconds
