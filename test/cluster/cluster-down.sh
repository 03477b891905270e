#!/usr/bin/env bash
# make cluster-down: stops what cluster-up started (SIGTERM; the launcher stops the
# components and etcd and removes its temporary directory).
set -euo pipefail
state=${1:?usage: cluster-down.sh STATE_DIR}
[ -f "$state/pid" ] || { echo "cluster-down: nothing running"; exit 0; }
pid=$(cat "$state/pid")
if kill -TERM "$pid" 2>/dev/null; then
	for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	kill -0 "$pid" 2>/dev/null && { echo "cluster-down: $pid still running after 30s; killing it" >&2; kill -KILL "$pid"; }
fi
rm -f "$state/pid" "$state/env"
echo "cluster-down: stopped"
