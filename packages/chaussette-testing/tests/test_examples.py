"""Where the process-manager suite finds ``examples/``: found from a checkout, named by
``--chaussette-examples`` or the ``chaussette_examples`` ini option, and a clear
``HarnessError`` naming the option when neither gives an examples directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from chaussette_testing.deployment import Deployment
from chaussette_testing.examples import HarnessError, find_examples

#: A test run by the sessions below, needing the fixture.
USES_EXAMPLES = """
def test_uses_examples(chaussette_examples):
    pass
"""


def expecting(examples: Path) -> str:
    """A test run by the sessions below, asserting what the fixture gives."""
    return f"""
def test_gets_examples(chaussette_examples):
    assert str(chaussette_examples) == {str(examples.resolve())!r}
"""


def examples_in(directory: Path) -> Path:
    """A minimal examples directory: the app file that marks it."""
    directory.mkdir(parents=True)
    (directory / "server.py").write_text("")
    return directory


def test_examples_are_found_in_the_source_tree(chaussette_examples: Path) -> None:
    assert (chaussette_examples / "circus.ini").is_file()
    assert chaussette_examples == Path(__file__).resolve().parents[3] / "examples"


def test_a_substitution_the_example_lost_is_an_error(chaussette_examples: Path) -> None:
    with Deployment("wsgiref", chaussette_examples) as deployment:
        with pytest.raises(HarnessError, match="no longer contains 'port = 9999'"):
            deployment.render("circus.ini", {"port = 9999": "port = 1"})


def test_the_first_examples_upwards_are_found(tmp_path: Path) -> None:
    outer = examples_in(tmp_path / "examples")
    inner = examples_in(tmp_path / "packages" / "examples")
    (tmp_path / "packages" / "one" / "tests").mkdir(parents=True)
    assert find_examples(tmp_path / "packages" / "one" / "tests") == inner
    assert find_examples(tmp_path / "elsewhere") == outer


def test_the_option_names_the_examples(pytester: pytest.Pytester) -> None:
    examples = examples_in(pytester.path / "mine")
    pytester.makepyfile(expecting(examples))
    result = pytester.runpytest("--chaussette-examples", "mine")
    result.assert_outcomes(passed=1)


def test_the_ini_option_names_the_examples_relative_to_the_ini_file(pytester: pytest.Pytester) -> None:
    project = pytester.mkdir("project")
    examples = examples_in(project / "examples")
    (project / "tox.ini").write_text("[pytest]\nchaussette_examples = examples\n")
    (project / "test_gets.py").write_text(expecting(examples))
    result = pytester.runpytest("project")  # run from the project's parent
    result.assert_outcomes(passed=1)


def test_the_option_wins_over_the_ini_option(pytester: pytest.Pytester) -> None:
    examples = examples_in(pytester.path / "mine")
    pytester.makeini("[pytest]\nchaussette_examples = missing\n")
    pytester.makepyfile(expecting(examples))
    result = pytester.runpytest("--chaussette-examples", str(examples))
    result.assert_outcomes(passed=1)


@pytest.mark.parametrize("how, named", [("option", "--chaussette-examples empty"),
                                         ("ini", "the ini option chaussette_examples")])
def test_a_named_directory_without_server_py_fails_the_tests_that_need_it(
        pytester: pytest.Pytester, how: str, named: str) -> None:
    pytester.mkdir("empty")
    pytester.makepyfile(USES_EXAMPLES + "\n\ndef test_other():\n    pass\n")
    if how == "ini":
        pytester.makeini("[pytest]\nchaussette_examples = empty\n")
        result = pytester.runpytest()
    else:
        result = pytester.runpytest("--chaussette-examples", "empty")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines([f"*HarnessError: {named} names *empty, which has no server.py*"])


def test_without_examples_upwards_the_fixture_says_how_to_name_them(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(USES_EXAMPLES)
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*HarnessError: *no directory from * upwards holds examples/server.py*"
                                 "--chaussette-examples DIR (ini option: chaussette_examples)"])


def test_the_ini_option_takes_one_directory(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nchaussette_examples = my examples\n")
    pytester.makepyfile(USES_EXAMPLES)
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*HarnessError: the ini option chaussette_examples names 2 paths; "
                                 "it takes one directory"])
