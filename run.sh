#!/usr/bin/env bash
# Set up everything gridcase needs on a fresh Debian machine, idempotently, then run a task:
#   ./run.sh demo    load the Chibi demo into the managed PostGIS and serve it on http://127.0.0.1:8000
#   ./run.sh test    run the whole test suite against a real PostGIS
#   ./run.sh lint    the gates CI applies after the tests: ruff check, ruff format --check, mypy
# Extra arguments go to the task (e.g. ./run.sh test -k routing, ./run.sh demo --no-serve).
set -euo pipefail
cd "$(dirname "$0")"

DEBIAN_PACKAGES=(postgresql-15 postgresql-15-postgis-3 python3-venv chromium fonts-noto-cjk pgbouncer)
VENV=.venv

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

install_debian_packages() {
    local missing=()
    for pkg in "${DEBIAN_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
            || missing+=("$pkg")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "==> installing Debian packages: ${missing[*]}"
        as_root apt-get update -qq
        DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}

install_python() {
    local stamp="$VENV/.gridcase-installed" want
    want=$(sha256sum pyproject.toml | cut -d' ' -f1)
    [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
    if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
        echo "==> installing Python dependencies into $VENV"
        "$VENV/bin/python" -m pip install -q --upgrade pip
        "$VENV/bin/python" -m pip install -q -e ".[test]"
        echo "$want" > "$stamp"
    fi
}

task=${1:-}
shift || true
case "$task" in
    demo)
        install_debian_packages
        install_python
        exec "$VENV/bin/gridcase" demo "$@"
        ;;
    test)
        install_debian_packages
        install_python
        exec "$VENV/bin/python" -m pytest "$@"
        ;;
    lint)
        install_python
        "$VENV/bin/ruff" check .
        "$VENV/bin/ruff" format --check .
        exec "$VENV/bin/mypy"
        ;;
    *)
        echo "usage: ./run.sh demo|test|lint [args...]" >&2
        exit 2
        ;;
esac
