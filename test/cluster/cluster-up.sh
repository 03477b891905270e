#!/usr/bin/env bash
# make cluster-up: starts the real control plane in the background and waits for it.
#   test/cluster/cluster-up.sh STATE_DIR
# STATE_DIR gets pid, out (the launcher's stdout: the READY line), log (its stderr) and
# env (KUBECONFIG=...). make cluster-down stops it; the launcher removes its own
# temporary directory then.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
state=${1:?usage: cluster-up.sh STATE_DIR}
mkdir -p "$state"
if [ -f "$state/pid" ] && kill -0 "$(cat "$state/pid")" 2>/dev/null; then
	echo "cluster-up: already running (pid $(cat "$state/pid"))" >&2
	echo "export $(cat "$state/env")"; exit 0
fi
bin=$("$here/build.sh")
start=$(date +%s%N)
nohup "$bin" up >"$state/out" 2>"$state/log" </dev/null &
echo $! >"$state/pid"
while ! grep -q '^READY ' "$state/out" 2>/dev/null; do
	if ! kill -0 "$(cat "$state/pid")" 2>/dev/null; then
		echo "cluster-up: the launcher exited:" >&2; tail -20 "$state/log" >&2; rm -f "$state/pid"; exit 1
	fi
	sleep 0.2
done
line=$(grep '^READY ' "$state/out")
kc=${line##*kubeconfig=}
echo "KUBECONFIG=$kc" >"$state/env"
ms=$(( ($(date +%s%N) - start) / 1000000 ))
printf 'cluster-up: ready in %d.%03ds: %s\n' $((ms / 1000)) $((ms % 1000)) "${line#READY }" >&2
echo "export KUBECONFIG=$kc"
