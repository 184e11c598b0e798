#!/usr/bin/env bash
# One command for a machine with CUDA: installs redisai-fast's wheel with --no-deps for an existing
# torch environment (into a folder of its own on PYTHONPATH, so that environment is not changed and
# its packages are used: torch, numpy, uvloop, pytest), runs tests/test_gpu.py against it, then the short GPU benchmark (benches/gpu.py). Nothing is
# downloaded: the wheels come along (build them where the project builds, see below). Without a
# CUDA device it says why and exits 0. Stays under 8 minutes (each step has a timeout).
#
#   scripts/gpu-check.sh [--wheel FILE] [--redis-wheel FILE] [--python PY] [--out DIR]
#
#   --wheel        redisai-fast's abi3 wheel (default: the newest dist/redisai_fast-*-abi3-*.whl)
#   --redis-wheel  redis-py's pure-Python wheel, for the tests (default: dist/redis-*.whl, or none
#                  if PY already imports redis)
#   --python       the torch environment's interpreter (default: python3)
#   --out          where the benchmark report goes (default: benches/results)
#
# The wheels, made beside the sources:
#   .venv/bin/maturin build --release -o dist
#   .venv/bin/pip download --no-deps -d dist -c requirements/constraints.txt redis
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
PY=python3
WHEEL=""
REDIS_WHEEL=""
OUT="benches/results"
while [ $# -gt 0 ]; do
    case "$1" in
        --wheel) WHEEL=$2; shift 2 ;;
        --redis-wheel) REDIS_WHEEL=$2; shift 2 ;;
        --python) PY=$2; shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        *) echo "gpu-check: unknown argument $1" >&2; exit 2 ;;
    esac
done
log() { printf '[gpu-check %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
T0=$(date +%s)

if ! "$PY" -c 'import torch' 2>/dev/null; then
    echo "gpu-check: $PY cannot import torch; run it with --python pointing at the torch environment" >&2
    exit 2
fi
if ! reason=$("$PY" -c '
import torch
if not torch.cuda.is_available():
    print(f"torch {torch.__version__} sees no CUDA device (torch.cuda.is_available() is False)")
    raise SystemExit(1)
print(", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())))
'); then
    log "skipped: $reason"
    exit 0
fi
log "CUDA: $reason"

[ -n "$WHEEL" ] || WHEEL=$(ls -t dist/redisai_fast-*-abi3-*.whl 2>/dev/null | head -1 || true)
if [ -z "$WHEEL" ] || [ ! -f "$WHEEL" ]; then
    echo "gpu-check: no redisai-fast wheel (give --wheel, or build one: .venv/bin/maturin build --release -o dist)" >&2
    exit 2
fi
[ -n "$REDIS_WHEEL" ] || REDIS_WHEEL=$(ls -t dist/redis-*.whl 2>/dev/null | head -1 || true)

WORK=$(mktemp -d /tmp/gpu-check-XXXXXX)
trap 'rm -rf "$WORK"' EXIT
log "installing $(basename "$WHEEL") for $("$PY" -c 'import sys; print(sys.prefix)') (Python $("$PY" -c 'import platform; print(platform.python_version())')) into $WORK"
pkgs=("$WHEEL")
if [ -n "$REDIS_WHEEL" ]; then
    pkgs+=("$REDIS_WHEEL")
elif ! "$PY" -c 'import redis' 2>/dev/null; then
    echo "gpu-check: no redis-py here and no --redis-wheel (pip download --no-deps -d dist redis)" >&2
    exit 2
fi
"$PY" -m pip install -q --no-deps --no-index --disable-pip-version-check --target "$WORK/site" "${pkgs[@]}"
export PYTHONPATH="$WORK/site${PYTHONPATH:+:$PYTHONPATH}"
missing=$("$PY" -c '
import importlib.util
print(" ".join(m for m in ("numpy", "uvloop", "pytest", "redis") if importlib.util.find_spec(m) is None))')
if [ -n "$missing" ]; then
    echo "gpu-check: the torch environment lacks: $missing" >&2
    exit 2
fi
"$PY" -c 'import redisai_fast, redisai_fast._core as c; print("redisai-fast", redisai_fast.__version__, "from", c.__file__)'

export REDISAI_FAST_BIN="$WORK/site/bin/redisai-fast"
rc=0
log "tests/test_gpu.py"
timeout 330 "$PY" -m pytest -v -p no:cacheprovider -o addopts="" -rs tests/test_gpu.py || rc=$?
log "benches/gpu.py"
mkdir -p "$OUT"
timeout 120 "$PY" benches/gpu.py --out "$OUT/gpu-$(date -u +%Y-%m-%d).txt" || { r=$?; [ $rc -ne 0 ] || rc=$r; }
log "done in $(($(date +%s) - T0)) s (exit $rc)"
exit $rc
