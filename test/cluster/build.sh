#!/usr/bin/env bash
# Builds the kube-cluster launcher (test/cluster/kube-cluster) once and caches it,
# keyed by go.mod, go.sum and the launcher's sources; prints the binary's path on
# stdout. A warm call returns at once; a cold one compiles kube-apiserver,
# kube-scheduler, kube-controller-manager and etcd (see README: real-cluster tests).
#
# Go: `go` on PATH, else /usr/local/go/bin/go (CI's PATH may lack it). Modules come
# through the Go module proxy; nothing is needed from Debian. Go 1.26.8 is new enough,
# so GOTOOLCHAIN stays local (no toolchain download).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
GO=${GO:-$(command -v go || true)}
[ -n "$GO" ] && [ -x "$GO" ] || GO=/usr/local/go/bin/go
[ -x "$GO" ] || { echo "cluster-build: no Go toolchain (looked on PATH and at /usr/local/go/bin/go)" >&2; exit 1; }
export GOTOOLCHAIN=${GOTOOLCHAIN:-local} GOFLAGS=${GOFLAGS:--mod=readonly}
cache=${DD_CLUSTER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/device-descheduler}
key=$(cat "$0" "$here/go.mod" "$here/go.sum" "$here"/kube-cluster/*.go | sha256sum | cut -c1-16)
# Stamp the release into the components (what /version and the logs report).
ver=$(sed -n 's#^\t*k8s.io/kubernetes \(v[0-9.]*\)$#\1#p' "$here/go.mod" | head -1)
minor=${ver#v*.}; minor=${minor%%.*}
vpkg=k8s.io/component-base/version
ldflags="-s -w -X $vpkg.gitVersion=$ver -X $vpkg.gitMajor=1 -X $vpkg.gitMinor=$minor -X $vpkg.gitTreeState=clean"
bin="$cache/kube-cluster-$key"
mkdir -p "$cache"
exec 9>"$cache/.build.lock"
flock 9   # one build at a time; a second caller waits and then finds the binary
if [ ! -x "$bin" ]; then
	echo "cluster-build: building the control plane with $("$GO" env GOVERSION) (cold: 13 to 30 minutes on 2 cores, see README)" >&2
	start=$(date +%s)
	(cd "$here" && "$GO" build -ldflags="$ldflags" -o "$bin.tmp" ./kube-cluster)
	mv "$bin.tmp" "$bin"
	echo "cluster-build: built in $(( $(date +%s) - start ))s: $bin" >&2
fi
# Other versions (other worktrees, older commits) may be in use right now: drop only those
# that no build.sh has handed out for two days (each call marks its binary as used).
touch "$bin"
find "$cache" -maxdepth 1 -name 'kube-cluster-*' ! -name "$(basename "$bin")" -mtime +1 -delete
echo "$bin"
