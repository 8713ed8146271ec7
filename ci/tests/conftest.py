"""The wheelhouses the distribution tests install from: built once per Python per run."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Callable

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def built_wheels(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], tuple[str, Path]]:
    """``built_wheels("3.10")``: that interpreter and a directory holding ``ci/build-wheels``'s
    output for it (every package, plus the wheels PyPI cannot provide)."""
    cache: dict[str, tuple[str, Path]] = {}

    def build(version: str) -> tuple[str, Path]:
        if version not in cache:
            python = shutil.which(f"python{version}")
            if python is None:
                pytest.fail(f"python{version} is not on PATH")
            out = tmp_path_factory.mktemp(f"wheels{version}")
            subprocess.run([str(ROOT / "ci" / "build-wheels"), str(out)], env=dict(os.environ, PYTHON=python),
                           check=True, timeout=900, stdout=subprocess.DEVNULL)
            cache[version] = python, out
        return cache[version]

    return build
