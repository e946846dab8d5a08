#!/usr/bin/env bash
# A one-node Ray cluster (a head) on this machine, for `alrun -m ... hydra/launcher=ray` and the
# cluster tests (tests/cluster). Needs alrun's `ray` extra: .venv/bin/pip install -e '.[ray]'
#
#   scripts/local-ray.sh start    # `ray start --head` with this machine's CPUs (RAY_NUM_CPUS)
#   scripts/local-ray.sh stop     # `ray stop`: ends this user's Ray processes on this machine
#   scripts/local-ray.sh status
#
# Jobs reach it with hydra.launcher.ray.init.address=auto (the default of hydra/launcher=ray).
set -euo pipefail
cd "$(dirname "$0")/.."

RAY="${RAY:-$PWD/.venv/bin/ray}"
PORT="${RAY_PORT:-6379}"
CPUS="${RAY_NUM_CPUS:-$(nproc)}"

die() {
  echo "local-ray: $*" >&2
  exit 1
}
[ -x "$RAY" ] || die "$RAY not found: install alrun's ray extra (.venv/bin/pip install -e '.[ray]')"

case "${1:-}" in
  start)
    if "$RAY" status --address "127.0.0.1:$PORT" >/dev/null 2>&1; then
      echo "local-ray: a Ray head already runs at 127.0.0.1:$PORT" >&2
      exit 0
    fi
    # no dashboard or usage stats (no network); a small object store (jobs pass only configs)
    RAY_USAGE_STATS_ENABLED=0 "$RAY" start --head --node-ip-address=127.0.0.1 --port="$PORT" \
      --num-cpus="$CPUS" --num-gpus=0 --include-dashboard=false --disable-usage-stats \
      --object-store-memory=200000000 >/dev/null
    for _ in $(seq 60); do  # the autoscaler's status lags the head's start by seconds
      if "$RAY" status --address "127.0.0.1:$PORT" 2>/dev/null | grep -q " CPU"; then break; fi
      sleep 1
    done
    "$RAY" status --address "127.0.0.1:$PORT" | grep -E " CPU|memory" >&2 || die "the head did not come up"
    echo "local-ray: up at 127.0.0.1:$PORT with $CPUS CPUs" >&2
    ;;
  stop)
    "$RAY" stop >/dev/null 2>&1 || true
    echo "local-ray: stopped" >&2
    ;;
  status)
    "$RAY" status --address "127.0.0.1:$PORT"
    ;;
  *) die "usage: $0 {start|stop|status}" ;;
esac
