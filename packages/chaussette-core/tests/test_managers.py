"""Circus, Supervisor and systemd socket activation running the examples on wsgiref."""

from pathlib import Path

import pytest

from chaussette_testing.managers import Deployment, HarnessError, ProcessManagerSuite, examples_dir, systemd_seconds


class TestWsgiref(ProcessManagerSuite):
    backend = "wsgiref"


def test_examples_are_found_in_the_source_tree() -> None:
    assert (examples_dir() / "circus.ini").is_file()
    assert examples_dir() == Path(__file__).resolve().parents[3] / "examples"


def test_a_substitution_the_example_lost_is_an_error() -> None:
    with Deployment("wsgiref") as deployment:
        with pytest.raises(HarnessError, match="no longer contains 'port = 9999'"):
            deployment.render("circus.ini", {"port = 9999": "port = 1"})


@pytest.mark.parametrize("value, seconds", [("35", 35), ("35s", 35), ("1min 30s", 90), ("500ms", 0.5)])
def test_systemd_time_spans(value: str, seconds: float) -> None:
    assert systemd_seconds(value) == seconds
