"""The start-up check: chaussette's meinheld build serves, any other meinheld is refused."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from helpers import run_chaussette

from chaussette_meinheld import library

PYTHON = f"{sys.version_info[0]}.{sys.version_info[1]}"
TAG = f"cp{sys.version_info[0]}{sys.version_info[1]}"


@pytest.mark.parametrize(("meinheld", "greenlet", "trusted"), [
    ("1.0.2+chaussette.2", "3.2.4", True),
    ("1.0.2+chaussette.7", "2.0.0", True),
    ("1.0.2+chaussette.1", "1.1.3", False),
    ("1.0.2+chaussette.1", None, False),
    ("1.0.2", "3.2.4", False),
    ("1.0.2+debian.1", "3.2.4", False),
    ("0.5", "3.2.4", False),
])
def test_only_our_build_with_greenlet_2_passes_the_gate(meinheld: str, greenlet: str | None,
                                                        trusted: bool) -> None:
    assert library.trusted(meinheld, greenlet) is trusted


def test_our_build_passes() -> None:
    verdict = library.inspect()
    assert verdict.meinheld and verdict.meinheld.startswith(library.OUR_VERSION_PREFIX)
    assert verdict.problem is None


@pytest.mark.parametrize("build, mark", [("6", ""), ("8", "CHAUSSETTE_WSGI = 1\n")])
def test_an_earlier_build_is_refused(tmp_path: Path, build: str, mark: str) -> None:
    """A build from before the mark (``.6``: no ``CHAUSSETTE_WSGI``) or with an earlier
    one (``.8``: no ``can_sleep()`` for the patched ``time.sleep``), its metadata and a
    ``meinheld.server`` first on the path, is imported, found wanting and refused."""
    version = f"1.0.2+chaussette.{build}"
    (tmp_path / "meinheld").mkdir()
    (tmp_path / "meinheld" / "__init__.py").write_text("")
    (tmp_path / "meinheld" / "server.py").write_text(mark + "def set_request_limits(*limits): pass\n")
    info = tmp_path / f"meinheld-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: meinheld\nVersion: {version}\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")])))
    done = run_chaussette("--backend", "meinheld", "--port", "0", env=env)
    assert done.returncode == 1, done.stderr
    line, = done.stderr.strip().splitlines()
    assert line.startswith(f"chaussette: error: meinheld {version} with greenlet ")
    assert f"a build from before {library.FIRST_USABLE_BUILD}" in line and library.HOW_TO_FIX in line


@pytest.fixture(scope="session")
def stock_meinheld(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Stock meinheld 1.0.2, built from PyPI's sdist for this Python and unpacked into a
    directory to put first on PYTHONPATH, next to this environment's greenlet >= 2: what
    ``pip install --no-deps meinheld==1.0.2`` gives. The wheel is cached in pytest's cache
    (the build takes ~15 s); pip comes from the base interpreter (uv venvs have none)."""
    python = str(Path(sys.base_prefix) / "bin" / f"python{PYTHON}")
    pytest_cache = getattr(request.config, "cache", None)  # absent with -p no:cacheprovider
    name = "stock-meinheld"
    cache = pytest_cache.mkdir(name) if pytest_cache else tmp_path_factory.mktemp(name)
    wheels = sorted(cache.glob(f"meinheld-1.0.2-{TAG}-*.whl"))
    if not wheels:
        build = tmp_path_factory.mktemp("stock-build")
        done = subprocess.run([python, "-m", "pip", "wheel", "--disable-pip-version-check", "--use-pep517",
                               "--no-deps", "--no-binary", ":all:", "--wheel-dir", str(build),
                               "meinheld==1.0.2"], capture_output=True, text=True, timeout=600,
                              stdin=subprocess.DEVNULL)
        built = sorted(build.glob("meinheld-1.0.2-*.whl"))
        if done.returncode != 0 or not built:
            lines = (done.stderr + done.stdout).strip().splitlines() or ["no output"]
            said = next((line.strip() for line in lines if "error:" in line.lower()), lines[-1])
            pytest.skip(f"cannot build stock meinheld 1.0.2 for Python {PYTHON} with {python}: {said}")
        partial = cache / (built[0].name + ".part")
        shutil.copyfile(built[0], partial)
        os.replace(partial, cache / built[0].name)  # atomic: xdist workers share the cache
        wheels = [cache / built[0].name]
    target = tmp_path_factory.mktemp("stock-meinheld-site")
    with zipfile.ZipFile(wheels[0]) as archive:
        archive.extractall(target)
    return target


# The fixture builds stock meinheld from its sdist (about 15 s; far more on a loaded
# machine): the test's own bound is the build's, not the suite's 120 s.
@pytest.mark.timeout(660)
def test_stock_meinheld_is_refused_with_the_way_to_a_working_build(stock_meinheld: Path) -> None:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(stock_meinheld),
                                                                     os.environ.get("PYTHONPATH")])))
    done = run_chaussette("--backend", "meinheld", "--port", "0", env=env)
    assert done.returncode == 1, done.stderr
    line, = done.stderr.strip().splitlines()
    assert line.startswith("chaussette: error: meinheld 1.0.2 with greenlet ")
    assert f"cannot serve: it is not chaussette's build; get chaussette's build ({library.FIRST_USABLE_BUILD}" in line
    assert ("ci/build-meinheld wheels && pip install --upgrade --find-links wheels "
            "meinheld==1.0.2'") in line
