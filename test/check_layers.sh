#!/usr/bin/env bash
# Proves that the build enforces the layers (see the Makefile's INC_* flags):
# a probe that breaks a rule must fail to compile with the flags of its
# directory, and the same probe must compile where the rule allows it, so
# this check fails if someone widens an include path or drops a poison header.
# Usage: CC=cc INC_KC=... INC_CORE=... INC_CTL=... test/check_layers.sh
set -uo pipefail
CC=${CC:-cc}
fail=0; n=0

probe() { # expect(ok|fail) flags source
	local expect=$1 flags=$2 src=$3 out
	n=$((n + 1))
	out=$(printf '%s\n' "$src" | $CC -std=c11 -D_GNU_SOURCE $flags -fsyntax-only -x c - 2>&1)
	local rc=$?
	if { [ "$expect" = ok ] && [ $rc -ne 0 ]; } || { [ "$expect" = fail ] && [ $rc -eq 0 ]; }; then
		echo "check_layers: FAIL: expected $expect for [$src] with [$flags]"; echo "$out" | head -5; fail=$((fail + 1))
	fi
}

for h in uv.h curl/curl.h microhttpd.h; do
	probe fail "$INC_CORE" "#include <$h>"     # the decision code does no I/O
	probe ok   "$INC_CTL"  "#include <$h>"     # the shell may
done
for h in core.h health.h planner.h policy.h evict_limits.h requests.h; do
	probe fail "$INC_KC"   "#include \"$h\""   # k8sclient knows no controller
	probe ok   "$INC_CORE" "#include \"$h\""
done
for h in leader.h httpserver.h metrics.h options.h; do
	probe fail "$INC_CORE" "#include \"$h\""   # the core does not reach up into the shell
	probe ok   "$INC_CTL"  "#include \"$h\""
done
# Every header of a layer compiles on its own with that layer's flags.
for f in k8sclient/*.h; do probe ok "$INC_KC" "#include \"$(basename "$f")\""; done
for f in controller/core/*.h; do probe ok "$INC_CORE" "#include \"$(basename "$f")\""; done

echo "check_layers: $((n - fail)) passed, $fail failed"
[ $fail -eq 0 ]
