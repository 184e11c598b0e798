#!/usr/bin/env bash
# Sets up everything the project needs on a fresh machine (Debian packages, virtualenvs, the
# release build of the Rust core) and then serves, tests or benchmarks. Idempotent: a second run
# only rebuilds what changed.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
PY=${PYTHON:-python3}

log() { printf '\033[1m[dev]\033[0m %s\n' "$*" >&2; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

ensure_debian_packages() {
    local missing=()
    command -v redis-server >/dev/null || missing+=(redis-server)
    command -v redis-cli >/dev/null && command -v redis-benchmark >/dev/null || missing+=(redis-tools)
    if [ ${#missing[@]} -gt 0 ]; then
        log "installing Debian packages: ${missing[*]}"
        as_root apt-get update -q
        DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -q --no-install-recommends "${missing[@]}"
    fi
}

# ensure_venv DIR REQUIREMENT_FILES... : creates DIR and installs the files when they changed
ensure_venv() {
    local dir=$1; shift
    local stamp_src stamp
    stamp_src=$(cat "$@" requirements/constraints.txt | sha256sum | cut -c1-16)
    stamp="$dir/.installed-$stamp_src"
    [ -x "$dir/bin/python" ] || { log "creating $dir"; "$PY" -m venv "$dir"; }
    if [ ! -f "$stamp" ]; then
        log "installing $* into $dir (pip cache makes repeats fast)"
        local args=()
        for f in "$@"; do args+=(-r "$f"); done
        "$dir/bin/pip" install -q --disable-pip-version-check -c requirements/constraints.txt "${args[@]}"
        rm -f "$dir"/.installed-*
        touch "$stamp"
    fi
}

# ensure_pinned_venv DIR FILE WHAT : a venv with its own exact pins (old ones that must not meet the
# server's constraints), reinstalled when FILE changes
ensure_pinned_venv() {
    local dir=$1 file=$2 what=$3 stamp
    stamp="$dir/.installed-$(sha256sum "$file" | cut -c1-16)"
    [ -x "$dir/bin/python" ] || { log "creating $dir"; "$PY" -m venv "$dir"; }
    if [ ! -f "$stamp" ]; then
        log "installing $what into $dir"
        "$dir/bin/pip" install -q --disable-pip-version-check -r "$file"
        rm -f "$dir"/.installed-*
        touch "$stamp"
    fi
}

build_core() {
    log "building the Rust core (release) into .venv"
    # one abi3 extension for every Python >= 3.11: an older per-version build would shadow it
    rm -f python/redisai_fast/_core.cpython-*.so
    # the package's metadata (console script, pytest plugin entry point) as last installed
    local meta=".venv/.package-$(sha256sum pyproject.toml | cut -c1-16)"
    if [ -f "$meta" ] && [ -x .venv/bin/redisai-fast ] && .venv/bin/python -c 'import redisai_fast' 2>/dev/null; then
        # already installed in editable mode: rebuilding the extension in place is enough
        .venv/bin/maturin develop --release -q --skip-install >/dev/null
    else
        # first build on this machine, or pyproject.toml changed: install the package (editable)
        # with its console script and entry points
        .venv/bin/maturin develop --release -q >/dev/null
        rm -f .venv/.package-*
        touch "$meta"
    fi
}

case "${1:-help}" in
    serve)
        shift
        ensure_venv .venv requirements/server.txt
        build_core
        exec .venv/bin/redisai-fast "$@"
        ;;
    test)
        shift
        ensure_debian_packages
        ensure_venv .venv requirements/server.txt requirements/test.txt
        ensure_pinned_venv .venv-clients requirements/clients.txt "the official clients"
        ensure_pinned_venv .venv-smartsim requirements/smartsim.txt "SmartSim 0.8.0"
        build_core
        log "lint: ruff, mypy (the Python API), stubtest (the extension's stubs)"
        .venv/bin/ruff check -q python tests benches
        .venv/bin/python -m mypy
        .venv/bin/python -m mypy.stubtest redisai_fast._core
        log "cargo test (Rust core)"
        cargo test -q -p redisai_core
        log "pytest (server venv)"
        .venv/bin/python -m pytest -q tests "$@"
        log "pytest (the suites that hold for both modes, again in store mode in front of Valkey)"
        REDISAI_FAST_TEST_STORE=valkey .venv/bin/python -m pytest -q tests/test_tensors.py tests/test_models.py \
            tests/test_dag.py tests/test_scripts.py tests/test_resp.py tests/test_redis_cli.py tests/test_redis_parity.py "$@"
        log "pytest (official clients venv)"
        REDISAI_FAST_BIN="$ROOT/.venv/bin/redisai-fast" REDISAI_FAST_PYTHON="$ROOT/.venv/bin/python" \
            .venv-clients/bin/python -m pytest -q tests_clients "$@"
        log "pytest (SmartSim venv: SmartSim launches the server)"
        REDISAI_FAST_BIN="$ROOT/.venv/bin/redisai-fast" REDISAI_FAST_PYTHON="$ROOT/.venv/bin/python" \
            .venv-smartsim/bin/python -m pytest -q tests_smartsim "$@"
        ;;
    bench)
        shift
        ensure_debian_packages
        ensure_venv .venv requirements/server.txt requirements/test.txt requirements/bench.txt
        build_core
        exec .venv/bin/python benches/run.py "$@"
        ;;
    *)
        cat <<USAGE
usage: scripts/dev.sh serve [--port N ...]   install and start the server (127.0.0.1:6379)
       scripts/dev.sh test [pytest args]     install everything and run all tests
       scripts/dev.sh bench [options]        benchmarks side by side with redis-server
USAGE
        ;;
esac
