"""Build a fixed wheel from an official sdist: the shared half of ci/build-meinheld
and ci/build-bjoern.

Why: some backends' last releases cannot be used as published (they do not build on
modern Pythons, or they mis-parse HTTP), and no fork of them is kept in this repository.
A build script takes the *official* sdist from PyPI (verified by sha256), applies exact
text substitutions that fail loudly when the text they expect is missing, and builds a
wheel with a local version (``X+chaussette.N``) for one interpreter.  This module is that
machinery; each script brings its ``Recipe``: the fixes and the metadata check.

A build script's contract (see ``main``): ``SCRIPT OUTDIR`` with ``$PYTHON`` naming the
interpreter; the wheel path is the last line on stdout, progress goes to stderr; on
failure it exits non-zero after printing one line to stderr; a wheel for the
interpreter's tag already in OUTDIR is reused as is.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

# Asked of the target interpreter: the wheel tag setuptools' bdist_wheel
# gives a CPython extension build (cpXY-cpXY[t]-platform).
#: Added to a patched extension's compile args: a C-API function that disappears in a
#: future Python must break the build, not truncate a pointer at run time.
STRICT_CFLAGS = ["-Werror=implicit-function-declaration", "-Werror=int-conversion"]

#: For the copies of joyent/http-parser that meinheld and bjoern bundle (inserted after its
#: ``#define LF``): the test and the refusal of their strict-parsing fixes.
HTTP_PARSER_REFUSALS = """\
/* chaussette: a control character other than HTAB, refused in field values
   and chunk extensions (RFC 9110 5.5, RFC 9112 7.1.1) */
#define CHAUSSETTE_CTL(ch) \\
  (((unsigned char)(ch) < 0x20 && (ch) != '\\t') || (ch) == 0x7f)
#define CHAUSSETTE_REFUSE() \\
  do { SET_ERRNO(HPE_STRICT); goto error; } while (0)
"""

TAG_PROBE = r'''
import sys, sysconfig
if sys.version_info < (3, 8):
    sys.exit("%s needs Python >= 3.8" % "DISTRIBUTION")
if sys.implementation.name != "cpython":
    sys.exit("DISTRIBUTION needs CPython, not " + sys.implementation.name)
soabi = sysconfig.get_config_var("SOABI") or ""
abi = "cp" + soabi.split("-")[1] if soabi.startswith("cpython-") else None
py = "cp%d%d" % sys.version_info[:2]
plat = sysconfig.get_platform().replace("-", "_").replace(".", "_")
print("%s-%s-%s" % (py, abi or py, plat))
'''


class BuildError(Exception):
    """A failure reported as one readable line."""


@dataclass(frozen=True)
class Recipe:
    """What one build script fixes, and how its wheel is recognised."""

    project: str           # distribution name on PyPI, e.g. "meinheld"
    upstream_version: str  # the sdist's version, e.g. "1.0.2"
    local_version: str     # the wheel's version, e.g. "1.0.2+chaussette.5"
    sdist_sha256: str      # of the sdist as published on PyPI
    script: str            # the script's name, prefix of its messages
    verbose_env: str       # set to 1 to show the output of pip and the compiler
    apply_fixes: Callable[[Path], None]    # patches the unpacked sdist in place
    check_metadata: Callable[[Path], None]  # raises BuildError on a wrong wheel

    @property
    def sdist_name(self) -> str:
        return f"{self.project}-{self.upstream_version}.tar.gz"

    @property
    def verbose(self) -> bool:
        return os.environ.get(self.verbose_env) == "1"


def log(recipe: Recipe, message: str) -> None:
    """Progress goes to stderr so stdout stays just the wheel path."""
    print(f"{recipe.script}: {message}", file=sys.stderr, flush=True)


def first_error(output: str) -> str:
    """The most telling line of a failed tool's output, for the one-liner."""
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    for pattern in (r": (fatal )?error: ", r"^(error|ERROR):? "):
        for line in lines:
            if re.search(pattern, line) and "exited-with-error" not in line:
                return line[:300]
    return lines[-1][:300] if lines else "(no output)"


def run(recipe: Recipe, what: str, cmd: list[str], capture: bool = False) -> str:
    """Run a command; quiet unless verbose, one-line error on failure."""
    proc = subprocess.run(
        cmd, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE if capture or not recipe.verbose else sys.stderr,
        stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        raise BuildError(
            f"{what} failed (exit {proc.returncode}): "
            f"{first_error(proc.stdout or '')} "
            f"[rerun with {recipe.verbose_env}=1 for full output]")
    return proc.stdout or ""


def resolve_python() -> str:
    """The interpreter from $PYTHON (a name or path), else python3."""
    name = os.environ.get("PYTHON") or "python3"
    found = shutil.which(name)
    if not found:
        raise BuildError(f"interpreter not found: {name!r} (set PYTHON)")
    return found


def wheel_name(recipe: Recipe, python: str) -> str:
    """The file name the build must produce for this interpreter."""
    probe = TAG_PROBE.replace("DISTRIBUTION", f"{recipe.project} {recipe.local_version}")
    tag = run(recipe, f"probing {python}", [python, "-c", probe], capture=True).strip()
    return f"{recipe.project}-{recipe.local_version}-{tag}.whl"


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, streamed."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


def download_sdist(recipe: Recipe, python: str, into: Path) -> Path:
    """Fetch the official sdist with pip and check it is the expected one."""
    run(recipe, f"downloading the {recipe.project} sdist",
        [python, "-m", "pip", "download", "--disable-pip-version-check",
         "--no-deps", "--no-binary", ":all:", "--dest", str(into),
         f"{recipe.project}=={recipe.upstream_version}"])
    sdist = into / recipe.sdist_name
    if not sdist.is_file():
        raise BuildError(f"pip download did not produce {recipe.sdist_name}")
    actual = sha256_of(sdist)
    if actual != recipe.sdist_sha256:
        raise BuildError(f"{recipe.sdist_name} sha256 is {actual}, "
                         f"expected {recipe.sdist_sha256}")
    return sdist


def unpack(recipe: Recipe, sdist: Path, into: Path) -> Path:
    """Extract the sdist, refusing members that escape the target dir."""
    root = into.resolve()
    with tarfile.open(sdist) as archive:
        for member in archive.getmembers():
            target = (root / member.name).resolve()
            if root not in target.parents and target != root:
                raise BuildError(f"unsafe path in sdist: {member.name}")
            if not (member.isfile() or member.isdir()):
                raise BuildError(f"unexpected member type in sdist: "
                                 f"{member.name}")
        if hasattr(tarfile, "data_filter"):  # 3.12+, and security backports
            archive.extractall(root, filter="data")
        else:
            archive.extractall(root)
    top = f"{recipe.project}-{recipe.upstream_version}"
    src = root / top
    if not (src / "setup.py").is_file():
        raise BuildError(f"sdist has no {top}/setup.py")
    return src


def add_build_system(src: Path, comment: str, requires: list[str]) -> None:
    """A pyproject.toml for an sdist that has none: with one, every pip builds it in an
    isolated env that has ``requires`` (an old pip without the wheel package otherwise
    fails with "invalid command 'bdist_wheel'"). The sdist's generated metadata goes too:
    it is stale once the fixes change setup.py, and setuptools regenerates it."""
    pyproject = src / "pyproject.toml"
    if pyproject.exists():
        raise BuildError("patch does not apply: sdist already has pyproject.toml")
    listed = ", ".join(f'"{requirement}"' for requirement in requires)
    pyproject.write_text(f"# {comment}\n[build-system]\nrequires = [{listed}]\n"
                         'build-backend = "setuptools.build_meta"\n', encoding="utf-8")
    for metadata in src.glob("*.egg-info"):
        shutil.rmtree(metadata)


def substitute(path: Path, old: str, new: str, count: int = 1) -> None:
    """Replace text that must occur exactly `count` times, else fail."""
    text = path.read_text(encoding="utf-8")
    found = text.count(old)
    if found != count:
        first = old.strip().splitlines()[0]
        raise BuildError(f"patch does not apply: expected {count} x "
                         f"{first!r} in {path.name}, found {found}")
    path.write_text(text.replace(old, new), encoding="utf-8")


def build_wheel(recipe: Recipe, python: str, src: Path, into: Path) -> Path:
    """Build with the target interpreter in pip's isolated build env."""
    run(recipe, "building the wheel",
        [python, "-m", "pip", "wheel", "--disable-pip-version-check",
         *(["--verbose"] if recipe.verbose else []), "--no-deps", "--no-cache-dir",
         "--wheel-dir", str(into), str(src)])
    wheels = list(into.glob(f"{recipe.project}-*.whl"))
    if len(wheels) != 1:
        raise BuildError(f"expected one {recipe.project} wheel, got {len(wheels)}")
    return wheels[0]


def read_metadata(wheel: Path, recipe: Recipe) -> tuple[str, list[str]]:
    """The wheel's METADATA text and its member names, for a recipe's check."""
    with zipfile.ZipFile(wheel) as archive:
        name = f"{recipe.project}-{recipe.local_version}.dist-info/METADATA"
        try:
            metadata = archive.read(name).decode("utf-8")
        except KeyError:
            raise BuildError(f"{wheel.name} has no {name}") from None
        members = archive.namelist()
    if f"Version: {recipe.local_version}" not in metadata.splitlines():
        raise BuildError(f"{wheel.name}: METADATA version is not "
                         f"{recipe.local_version}")
    return metadata, members


def main(recipe: Recipe, argv: list[str]) -> int:
    """Build (or reuse) the wheel and print its path last."""
    if len(argv) != 2 or argv[1].startswith("-"):
        print(f"usage: ci/{recipe.script} OUTDIR   (interpreter: $PYTHON)",
              file=sys.stderr)
        return 2
    outdir = Path(argv[1]).resolve()
    try:
        python = resolve_python()
        expected = wheel_name(recipe, python)
        existing = outdir / expected
        if existing.is_file():
            recipe.check_metadata(existing)
            log(recipe, f"{expected} already in {outdir}, reusing it")
            print(existing)
            return 0
        outdir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=f"{recipe.script}-") as tmp:
            work = Path(tmp)
            log(recipe, f"downloading {recipe.project} {recipe.upstream_version} "
                f"sdist with {python}")
            sdist = download_sdist(recipe, python, work / "sdist")
            src = unpack(recipe, sdist, work / "src")
            recipe.apply_fixes(src)
            log(recipe, f"building {expected}")
            built = build_wheel(recipe, python, src, work / "wheel")
            if built.name != expected:
                raise BuildError(f"built {built.name}, expected {expected}")
            recipe.check_metadata(built)
            partial = outdir / (expected + ".part")
            try:  # atomic: a half-copied wheel must never look reusable
                shutil.copyfile(built, partial)
                os.replace(partial, existing)
            finally:
                partial.unlink(missing_ok=True)
        log(recipe, f"built {existing}")
        print(existing)
        return 0
    except BuildError as error:
        print(f"{recipe.script}: error: {error}", file=sys.stderr)
        return 1
    except (OSError, tarfile.TarError, zipfile.BadZipFile) as error:
        print(f"{recipe.script}: error: {error}", file=sys.stderr)
        return 1
