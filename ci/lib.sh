# Shared helpers for the ci/ scripts (sourced, not run).

PYTHON_VERSIONS=(3.10 3.11 3.12 3.13)

# Put the machine's own interpreters first on PATH, so Hatch finds them and never downloads
# one: pyenv's versions (found in PYENV_ROOT, or ~/.pyenv, even when pyenv itself is not on
# PATH), else pythonX.Y already on PATH. uv is told never to download an interpreter either.
use_local_pythons() {
  local version dir found pyenv_root=${PYENV_ROOT:-$HOME/.pyenv}
  command -v pyenv >/dev/null 2>&1 && pyenv_root=$(pyenv root)
  for version in "${PYTHON_VERSIONS[@]}"; do
    found=""
    for dir in "$pyenv_root"/versions/"$version".*/bin; do
      [ -x "$dir/python$version" ] && found=$dir
    done
    if [ -n "$found" ]; then
      PATH="$found:$PATH"
    elif ! command -v "python$version" >/dev/null 2>&1; then
      echo "python$version not found: install it (pyenv install $version) before running the tests" >&2
      exit 1
    fi
  done
  export PATH UV_PYTHON_DOWNLOADS=never
}

# Hatch and uv in a private venv: a fresh machine has neither.
ensure_hatch() {
  local tools="$root/.ci-tools"
  if [ ! -x "$tools/bin/hatch" ]; then
    python3 -m venv "$tools"
    "$tools/bin/pip" install --quiet --disable-pip-version-check "hatch>=1.16" "uv>=0.5"
  fi
  export PATH="$tools/bin:$PATH"
  export HATCH_ENV_TYPE_VIRTUAL_UV_PATH="$tools/bin/uv"
  # The system's certificate store, as pip uses: a machine whose registries sit behind its
  # own certificate authority has it there, and uv's bundled roots would refuse them.
  export UV_SYSTEM_CERTS=1
}

# Debian packages that tests drive or builds need, installed (as root) when missing:
# systemd-socket-activate for the socket-activation tests, libev's headers to build bjoern,
# nginx for the behind-a-proxy test (core's test_nginx.py), logrotate for the access-log
# suite's log rotation test.
ensure_system_tools() {
  local missing=()
  command -v systemd-socket-activate >/dev/null 2>&1 || missing+=(systemd)
  [ -f /usr/include/ev.h ] || missing+=(libev-dev)
  command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx)
  command -v logrotate >/dev/null 2>&1 || [ -x /usr/sbin/logrotate ] || missing+=(logrotate)
  [ ${#missing[@]} -gt 0 ] || return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing Debian packages: ${missing[*]}"
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null \
      || echo "could not install ${missing[*]}; the tests that need them will say so" >&2
  else
    echo "missing Debian packages: ${missing[*]} (not root: install them to run every test)" >&2
  fi
}

# A script of the bench Hatch environment (root hatch.toml), on the local Python 3.12 (the
# bench environment's interpreter), with Hatch installed first if needed: ci/bench, ci/bench-instructions.
bench_env() {  # script, args...
  PYTHON_VERSIONS=(3.12)
  use_local_pythons
  ensure_hatch
  ensure_system_tools  # libev's headers: the harness builds bjoern
  exec hatch run "bench:$1" "${@:2}"
}

all_packages() {
  local dir
  for dir in packages/*/; do
    dir=${dir%/}
    [ -f "$dir/pyproject.toml" ] && echo "${dir#packages/}"
  done
}

# The fixed build of PROJECT (made by ci/build-PROJECT) that PACKAGE's hatch-test environment
# pins, as its "PROJECT==X+chaussette.N" extra dependency: with an exact pin an existing
# environment moves to a new build, where a range would keep the one it has. The wheels are
# for Python 3.10-3.13, in <repo>/.wheels (run from the repository's root):
#   fixed_build PACKAGE PROJECT               build those missing (a second run takes a second)
#   fixed_build PACKAGE PROJECT --check 3.12  fail, saying how to fix it, if one is missing
fixed_build() {
  local package=$1 project=$2 pin version
  shift 2
  pin=$(grep -o "\"$project==[^\"]*+chaussette[^\"]*\"" "packages/$package/pyproject.toml" | tr -d '"')
  pin=${pin#*==}
  if [ -z "$pin" ]; then
    echo "packages/$package/pyproject.toml pins no $project build in its hatch-test environment" >&2
    exit 1
  fi
  if [ "${1:-}" = "--check" ]; then
    shift
    for version in "$@"; do
      if ! compgen -G ".wheels/$project-$pin-cp${version/./}-*.whl" >/dev/null; then
        echo "no $project $pin wheel for Python $version in $PWD/.wheels: run packages/$package/ci-prepare first" >&2
        exit 1
      fi
    done
    return 0
  fi
  use_local_pythons
  ensure_system_tools
  for version in "${PYTHON_VERSIONS[@]}"; do
    PYTHON="python$version" "ci/build-$project" "$PWD/.wheels" >/dev/null
  done
  if ! compgen -G ".wheels/$project-$pin-*.whl" >/dev/null; then
    echo "ci/build-$project builds another version than the $pin packages/$package/pyproject.toml pins: make them agree" >&2
    exit 1
  fi
}

# Package-specific preparation, e.g. wheels PyPI cannot provide.
prepare_packages() {
  local package
  for package in "$@"; do
    if [ -x "packages/$package/ci-prepare" ]; then
      "packages/$package/ci-prepare"
    fi
  done
}

# The packages a change since REV must test: a change under packages/X/ tests X, the
# packages that depend on X, and the meta package; a change to core, ci/, hatch.toml or
# anything outside packages/ tests everything.
changed_packages() {
  local rev=$1 path package all=0
  declare -A selected=()
  while read -r path; do
    case "$path" in
      packages/chaussette-core/*) all=1 ;;
      packages/*/*) package=${path#packages/}; package=${package%%/*}; selected[$package]=1 ;;
      *.md|docs/*|bench/*) ;;
      *) all=1 ;;
    esac
  done < <(git diff --name-only "$rev" --)
  if [ "$all" = 1 ]; then all_packages; return; fi
  [ ${#selected[@]} -eq 0 ] && return
  for package in $(all_packages); do
    for changed in "${!selected[@]}"; do
      if [ "$package" = "$changed" ] || [ "$package" = chaussette ] \
         || grep -q "\"$changed[\[>=<]" "packages/$package/pyproject.toml"; then
        echo "$package"; break
      fi
    done
  done
}
