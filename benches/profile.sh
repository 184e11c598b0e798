#!/usr/bin/env bash
# Profiles redisai-fast under pipelined 4 KiB AI.TENSORSET load: where CPU time goes (perf, by
# library and symbol) and which Python frames are on the stack (py-spy). Shows the per-command
# path runs in Rust: no Python function of ours appears below the event loop.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-benches/results/profile-tensorset-4k.txt}
PORT=$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
.venv/bin/redisai-fast --port "$PORT" --save "" --dir "$(mktemp -d)" > /tmp/profile-server.log 2>&1 &
SPID=$!
trap 'kill $SPID 2>/dev/null || true' EXIT
for _ in $(seq 100); do redis-cli -p "$PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
PAYLOAD=$(printf 'a%.0s' $(seq 4096))
redis-benchmark -p "$PORT" -c 50 -P 16 -n 4000000 -r 10000 -q AI.TENSORSET key:__rand_int__ UINT8 4096 BLOB "$PAYLOAD" >/dev/null 2>&1 &
BPID=$!
sleep 1
{
  echo "# redisai-fast profile, $(date -u '+%Y-%m-%d %H:%M UTC'): redis-benchmark -c 50 -P 16 AI.TENSORSET 4 KiB"
  echo "## perf (cpu-clock, 5 s): share of samples by library"
  perf record -q -F 999 -e cpu-clock -g -p "$SPID" -o /tmp/profile.perf -- sleep 5 >/dev/null 2>&1
  perf report -i /tmp/profile.perf --no-children --sort dso --stdio 2>/dev/null | grep -E '^ +[0-9.]+%'
  echo "## perf: top symbols"
  perf report -i /tmp/profile.perf --no-children --sort dso,sym --stdio 2>/dev/null | grep -E '^ +[0-9.]+%' | head -25
  echo "## py-spy (5 s): Python frames on the stack and their share of samples"
  .venv/bin/py-spy record --native -p "$SPID" -d 5 -r 200 -f raw -o /tmp/profile.pyspy >/dev/null 2>&1
  .venv/bin/python - <<'PY'
import collections
tot = 0
py = collections.Counter()
for line in open("/tmp/profile.pyspy"):
    stack, n = line.rsplit(" ", 1)
    tot += int(n)
    for f in {f for f in stack.split(";") if ".py:" in f}:
        py[f] += int(n)
for f, n in py.most_common():
    print(f"{100 * n / tot:5.1f}%  {f}")
print(f"({tot} samples; any Python function run per command would appear here)")
PY
} > "$OUT"
kill $BPID 2>/dev/null || true
cat "$OUT"
