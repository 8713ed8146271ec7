"""Each backend against the lowest chaussette-core its requirement allows.

A backend declares a range (``chaussette-core>=2.0,<3``); its own tests run against the core
of the same commit, so nothing else shows that the bottom of the range still works. Here
each backend's wheel is installed next to exactly that lowest core, in a fresh venv on the
lowest supported Python, and the conformance suite (``tests/test_conformance.py`` of the
backend, which imports the suite from the installed chaussette-testing) runs against it.

The lowest core comes from the wheelhouse when it is the version in this tree, and
otherwise is built from its release tag ``chaussette-core-vX.Y.Z``.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Callable

import pytest
from packaging.requirements import Requirement
from packaging.version import Version
from test_distribution import _project, backend_packages, fresh_venv

ROOT = Path(__file__).resolve().parents[2]
LOWEST_PYTHON = "3.10"


def with_extras(distribution: str) -> str:
    """The distribution with all its extras: its conformance tests cover every backend it
    registers (gevent's websocket flavours need theirs)."""
    extras = sorted(_project(distribution).get("optional-dependencies", {}))
    return f"{distribution}[{','.join(extras)}]" if extras else distribution


def lowest_core(distribution: str) -> Version:
    for text in _project(distribution)["dependencies"]:
        requirement = Requirement(text)
        if requirement.name == "chaussette-core":
            floors = [Version(spec.version) for spec in requirement.specifier
                      if spec.operator in (">=", "==", "~=")]
            assert floors, f"{distribution} requires {text}: give it a lower bound"
            return max(floors)
    raise AssertionError(f"{distribution} does not require chaussette-core")


def current_core() -> Version:
    init = (ROOT / "packages" / "chaussette-core" / "src" / "chaussette" / "__init__.py").read_text()
    return Version(init.split('__version__ = "', 1)[1].split('"', 1)[0])


def core_wheels(version: Version, python: str, wheels: Path, tmp_path: Path) -> Path:
    """A directory holding chaussette-core ``version``'s wheel."""
    if version == current_core():
        return wheels
    tag = f"chaussette-core-v{version}"
    source = tmp_path / tag
    source.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", tag, "packages/chaussette-core"],
                             capture_output=True, timeout=60)
    assert archive.returncode == 0, f"no release tag {tag} to build the lowest core from: " \
                                    f"{archive.stderr.decode(errors='replace').strip()}"
    subprocess.run(["tar", "-x", "-C", str(source)], input=archive.stdout, check=True, timeout=60)
    out = tmp_path / "core-wheel"
    subprocess.run(["uv", "build", "--quiet", "--python", python, "--wheel", "--out-dir", str(out),
                    str(source / "packages" / "chaussette-core")], check=True, timeout=300)
    return out


@pytest.mark.parametrize("distribution", sorted(backend_packages()))
def test_conformance_on_the_lowest_core_allowed(built_wheels: Callable[[str], tuple[str, Path]],
                                                 distribution: str, tmp_path: Path) -> None:
    python, wheels = built_wheels(LOWEST_PYTHON)
    lowest = lowest_core(distribution)
    lowest_wheels = core_wheels(lowest, python, wheels, tmp_path)
    venv = fresh_venv(python, tmp_path / "venv", wheels, "--find-links", str(lowest_wheels),
                      f"chaussette-core=={lowest}", with_extras(distribution), "chaussette-testing")
    installed = subprocess.run([str(venv / "bin" / "python"), "-c",
                                "import importlib.metadata as m; print(m.version('chaussette-core'))"],
                               capture_output=True, text=True, check=True, timeout=60).stdout.strip()
    assert Version(installed) == lowest
    tests = ROOT / "packages" / distribution / "tests"
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env['PATH']}"
    done = subprocess.run([str(venv / "bin" / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "--rootdir", str(tests), "--timeout", "120", str(tests / "test_conformance.py")],
                          capture_output=True, text=True, env=env, cwd=str(tmp_path), timeout=1200)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " passed" in done.stdout.splitlines()[-1], done.stdout[-2000:]
