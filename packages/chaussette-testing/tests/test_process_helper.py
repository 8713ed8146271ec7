"""The test harness's own promise: a server that does not exit when a test expects it
to fails that test with what is needed to find out why, and is still ended."""

from __future__ import annotations

import signal

import pytest

from chaussette_testing import start_server


def test_a_server_still_running_after_wait_fails_with_its_log_and_stacks() -> None:
    with start_server("--host", "127.0.0.1", "--port", "0") as server:
        with pytest.raises(AssertionError) as failure:
            server.wait(0.5)
        assert server.proc.poll() == -signal.SIGABRT
    message = str(failure.value)
    assert f"pid {server.pid} still running 0.5s later" in message
    assert "Serving on" in message, message
    assert "(most recent call first)" in message, message
