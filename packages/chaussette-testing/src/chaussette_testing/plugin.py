"""The pytest plugin (entry point ``pytest11``): where the shared suites find what they
need from outside the installed packages.

``--chaussette-examples DIR`` (ini option ``chaussette_examples``) names the repository's
``examples/`` directory for the process-manager suite; without it, the first
``examples/`` holding ``server.py`` from pytest's rootdir upwards is taken, which is the
repository's whenever the tests run from a checkout. The ``chaussette_examples`` fixture
gives the directory, or fails the tests that need it with a ``HarnessError`` saying how
to name it; tests that do not need it run anywhere.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from chaussette_testing.examples import INI, OPTION, HarnessError, find_examples, given_examples

_HELP = "the repository's examples/ directory, which the process-manager suite deploys " \
        "(default: the first examples/ holding server.py from the rootdir upwards)"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("chaussette", "Chaussette's shared suites")
    group.addoption(OPTION, dest=INI, metavar="DIR", default=None, help=_HELP)
    parser.addini(INI, _HELP + "; relative to the ini file", type="paths")


def examples_of(config: pytest.Config) -> Path:
    """The examples directory ``config`` names (option first, then ini), or the one found."""
    given: str | None = config.getoption(INI)
    if given is not None:
        return given_examples(config.invocation_params.dir / given, f"{OPTION} {given}")
    configured: list[Path] = config.getini(INI)
    if len(configured) > 1:
        raise HarnessError(f"the ini option {INI} names {len(configured)} paths; it takes one directory")
    if configured:
        return given_examples(configured[0], f"the ini option {INI}")
    return find_examples(config.rootpath)


@pytest.fixture(scope="session")
def chaussette_examples(pytestconfig: pytest.Config) -> Path:
    """The repository's ``examples/`` (see the module)."""
    return examples_of(pytestconfig)
