"""Built wheels, installed the way users install them: fresh venvs, no editable installs,
the repository not on sys.path. Each backend distribution must give a lean, working
``chaussette --backend NAME``; the meta distribution every backend that works."""

from __future__ import annotations

import os
import re
import subprocess
import zipfile
from pathlib import Path
from typing import Callable

import pytest
import tomllib

from chaussette.registry import KNOWN
from chaussette_testing import request, start_server

ROOT = Path(__file__).resolve().parents[2]
PYTHONS = ("3.10", "3.13")


def _project(distribution: str) -> dict:
    """Package directories are named after their distribution."""
    return tomllib.loads((ROOT / "packages" / distribution / "pyproject.toml").read_text())["project"]


def backend_packages() -> dict[str, list[str]]:
    """distribution -> the backend names it registers."""
    found = {}
    for pyproject in sorted(ROOT.glob("packages/*/pyproject.toml")):
        project = tomllib.loads(pyproject.read_text())["project"]
        names = project.get("entry-points", {}).get("chaussette.backends", {})
        if names and project["name"] != "chaussette-core":
            found[project["name"]] = sorted(names)
    return found


#: The libraries each backend distribution may bring; any other backend's library in its
#: venv means the install is not lean.
SERVER_LIBRARIES = {"gevent", "waitress", "eventlet", "meinheld", "python-socketio", "bjoern"}


@pytest.fixture(scope="module", params=PYTHONS)
def wheelhouse(request: pytest.FixtureRequest, built_wheels: Callable[[str], tuple[str, Path]]) -> tuple[str, Path]:
    return built_wheels(request.param)


def fresh_venv(python: str, where: Path, wheels: Path, *requirements: str) -> Path:
    subprocess.run([python, "-m", "venv", str(where)], check=True, timeout=120)
    subprocess.run([str(where / "bin" / "python"), "-m", "pip", "install", "--quiet",
                    "--find-links", str(wheels), *requirements], check=True, timeout=900,
                   cwd=where)  # not the repo: nothing of it may be importable
    return where


def installed(venv: Path) -> set[str]:
    out = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "list", "--format=freeze"],
                         capture_output=True, text=True, check=True, timeout=60).stdout
    return {line.split("==")[0].lower() for line in out.splitlines() if line}


def serve_one_request(venv: Path, backend: str) -> None:
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env['PATH']}"
    server = start_server("--backend", backend, "--host", "127.0.0.1", "--port", "0", env=env,
                          cwd=str(venv), python=str(venv / "bin" / "python"))  # the venv's, not ours
    with server:
        assert request(server.tcp_address)[2] == b"hello world"
        assert server.stop() == 0


def requirement_names(requirements: list[str]) -> set[str]:
    return {re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower() for requirement in requirements}


def own_libraries(distribution: str) -> set[str]:
    """Its requirements plus those of the repository's distributions it builds on."""
    names = requirement_names(_project(distribution)["dependencies"])
    for name in list(names):
        if name.startswith("chaussette-") and (ROOT / "packages" / name).is_dir():
            names |= own_libraries(name)
    return names


@pytest.mark.parametrize("distribution", sorted(backend_packages()))
def test_backend_distribution_is_lean_and_serves(wheelhouse: tuple[str, Path], distribution: str,
                                                  tmp_path: Path) -> None:
    python, wheels = wheelhouse
    venv = fresh_venv(python, tmp_path / "venv", wheels, distribution)
    own = own_libraries(distribution)
    assert not (installed(venv) & SERVER_LIBRARIES) - own, f"{distribution} pulled other backends' libraries"
    for backend in backend_packages()[distribution]:
        if "[" in KNOWN.get(backend, ""):  # needs an extra: the error must name it
            result = subprocess.run([str(venv / "bin" / "chaussette"), "--backend", backend, "--port", "0"],
                                    capture_output=True, text=True, timeout=60)
            assert result.returncode != 0 and KNOWN[backend] in result.stderr, result.stderr
        else:
            serve_one_request(venv, backend)


def test_core_wheel_has_no_test_code(wheelhouse: tuple[str, Path]) -> None:
    """The test tools are their own distribution (chaussette-testing): a server install
    gets neither their modules nor pytest."""
    _, wheels = wheelhouse
    [wheel] = wheels.glob("chaussette_core-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        [metadata] = [name for name in names if name.endswith(".dist-info/METADATA")]
        requires = [line for line in archive.read(metadata).decode().splitlines()
                    if line.startswith("Requires-Dist:")]
    assert [name for name in names if name.startswith(("chaussette/testing/", "chaussette_testing/"))] == []
    assert [line for line in requires if "pytest" in line.lower()] == [], requires


def test_meta_distribution_brings_every_default_backend(wheelhouse: tuple[str, Path], tmp_path: Path) -> None:
    python, wheels = wheelhouse
    venv = fresh_venv(python, tmp_path / "venv", wheels, "chaussette")
    meta_deps = requirement_names(_project("chaussette")["dependencies"])
    for distribution, backends in backend_packages().items():
        if distribution in meta_deps:
            for backend in backends:
                serve_one_request(venv, backend)
    serve_one_request(venv, "wsgiref")
    assert "pastedeploy" in installed(venv), "chaussette must bring core's paste extra"




def test_meta_extras_outside_the_defaults_bring_their_backend(wheelhouse: tuple[str, Path],
                                                               tmp_path: Path) -> None:
    """An extra such as ``chaussette[meinheld]`` adds a backend a plain install leaves out."""
    python, wheels = wheelhouse
    meta = _project("chaussette")
    defaults = requirement_names(meta["dependencies"])
    extras = {extra: requirement_names(requirements) - defaults
              for extra, requirements in meta["optional-dependencies"].items()}
    extras = {extra: names for extra, names in extras.items() if names}
    assert extras, "every extra is also a default: nothing to check"
    venv = fresh_venv(python, tmp_path / "venv", wheels, f"chaussette[{','.join(sorted(extras))}]")
    for names in extras.values():
        for distribution in names:
            for backend in backend_packages()[distribution]:
                serve_one_request(venv, backend)
