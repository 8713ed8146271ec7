"""Before measuring: wrk, the backend packages that exist, and which backends work.

The bench environment (root ``hatch.toml``, ``[envs.bench]``) holds core and waitress,
which install everywhere. The other backend packages are installed here, one at a time:
one that does not install (its library has no build for this Python, its fixed wheel
does not build) skips that backend with the reason printed instead of failing the whole
run. A package's ``extra-wheels`` script builds what PyPI cannot provide (meinheld's and
bjoern's fixed wheels) once into ``.wheels/``.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

#: Packages the bench environment already has (its workspace members).
IN_ENVIRONMENT = {"chaussette-core", "chaussette-waitress"}
#: Not backend packages.
NOT_BACKENDS = {"chaussette"}


def say(message: str) -> None:
    print(f"bench: {message}", flush=True)


def ensure_tool(command: str, package: str) -> None:
    """A tool from Debian's packages (wrk, valgrind), installed when it is missing and we may."""
    if shutil.which(command):
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise SystemExit(f"bench: {command} is not installed; install it (Debian/Ubuntu: apt-get install {package})")
    say(f"installing {command} (apt-get install -y {package})")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], stdout=subprocess.DEVNULL, env=env, check=False)
    if subprocess.run(["apt-get", "install", "-y", "-qq", package], stdout=subprocess.DEVNULL, env=env,
                      check=False).returncode:
        raise SystemExit(f"bench: apt-get install {package} failed")


def _installer(wheels: Path) -> list[str]:
    """uv (Hatch exposes it as $HATCH_UV) or this interpreter's pip, taking what ``wheels``
    holds from there even over an installed version that satisfies the requirement: an
    environment kept from an earlier run would otherwise measure an older build of the
    same version (``1.0.2+chaussette.1`` where the recipe now makes a later build)."""
    links = ["--find-links", str(wheels)] if wheels.is_dir() else []
    names = sorted({path.name.split("-", 1)[0] for path in wheels.glob("*.whl")}) if links else []
    uv = os.environ.get("HATCH_UV") or shutil.which("uv")
    if uv:
        return [uv, "pip", "install", "--quiet", "--python", sys.executable, *links,
                *(f"--upgrade-package={name}" for name in names)]
    return [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *links,
            *(["--upgrade", "--upgrade-strategy", "only-if-needed", *names] if names else [])]


def _base_python() -> str:
    """An interpreter of this version with pip, for ci/build-meinheld (a uv venv has no pip)."""
    return getattr(sys, "_base_executable", None) or sys.executable


def _extra_wheels(root: Path, package: Path, wheels: Path) -> str | None:
    """Wheels the package needs that PyPI cannot provide; an error message or None."""
    script = package / "extra-wheels"
    if not (script.is_file() and os.access(script, os.X_OK)):
        return None
    say(f"{package.name}: wheels PyPI cannot provide: {script.relative_to(root)} {wheels}")
    proc = subprocess.run([str(script), str(wheels)], cwd=root, capture_output=True, text=True,
                          env={**os.environ, "PYTHON": _base_python()})
    if proc.returncode:
        return (proc.stderr.strip().splitlines() or ["failed"])[-1]
    return None


def install_backend_packages(root: Path, wheels: Path) -> dict[str, str]:
    """Install every backend package the environment lacks; returns {package: why skipped}."""
    skipped: dict[str, str] = {}
    for package in sorted((root / "packages").iterdir()):
        if not package.is_dir() or package.name in IN_ENVIRONMENT | NOT_BACKENDS:
            continue
        if not (package / "pyproject.toml").is_file():
            skipped[package.name] = "no pyproject.toml yet"
            continue
        problem = _extra_wheels(root, package, wheels)
        if problem:
            skipped[package.name] = problem
            continue
        proc = subprocess.run([*_installer(wheels), "--editable", str(package)], cwd=root,
                              capture_output=True, text=True)
        if proc.returncode:
            lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
            skipped[package.name] = "install failed: " + " ".join(lines[-2:])[-300:]
    return skipped


def installed_backends() -> dict[str, str]:
    """``chaussette --list-backends``: {backend: "distribution version"} of installed ones."""
    proc = subprocess.run([sys.executable, "-m", "chaussette", "--list-backends"],
                          capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"bench: chaussette --list-backends failed: {proc.stderr.strip()}")
    found = {}
    for line in proc.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[1] != "not":
            found[parts[0]] = " ".join(parts[1:])
    return found


def missing_modules(modules: tuple[str, ...]) -> list[str]:
    return [name for name in modules if importlib.util.find_spec(name) is None]
