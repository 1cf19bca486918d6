#!/usr/bin/env bash
# test_cli.sh TWINC SAMPLES_SO — the twinc command line: help, version, flags
# for the parse (-- FLAGS and -p BUILD_DIR), default output names, --dump-ir,
# and `twinc check` on the sample library.
set -u
twinc=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
samples=$2
pass=0
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

ok()   { pass=$((pass + 1)); }
bad()  { fail=$((fail + 1)); echo "FAIL: $*"; }
expect() { # expect NAME CONDITION...
    local name=$1; shift
    if "$@"; then ok; else bad "$name"; fi
}

"$twinc" --version > "$tmp/v" 2>&1
expect "--version names twinc and libclang" grep -q '^twinc [0-9].*clang version 14' "$tmp/v"
"$twinc" --help > "$tmp/h" 2>&1
expect "--help exits 0" test $? -eq 0
expect "--help shows gen and check" grep -q 'twinc gen FILE.c' "$tmp/h"
"$twinc" gen > "$tmp/o" 2>&1
expect "gen without input exits 2" test $? -eq 2
"$twinc" frobnicate > "$tmp/o" 2>&1
expect "unknown command exits 2" test $? -eq 2
"$twinc" gen x.c --bogus > "$tmp/o" 2>&1
expect "unknown option exits 2" test $? -eq 2
"$twinc" gen "$tmp/missing.c" > "$tmp/o" 2>&1
expect "missing input exits 1" test $? -eq 1
expect "missing input is named" grep -q "missing.c" "$tmp/o"

# flags after -- reach the parse: a define and an include path
mkdir -p "$tmp/src/inc"
cat > "$tmp/src/inc/scale.h" <<'H'
#define RATE 0.25
H
cat > "$tmp/src/k.c" <<'C'
#include <math.h>
#include "scale.h"
#pragma aad
double k(double x) { return SCALE * x + RATE * exp(x); }
C
(cd "$tmp/src" && "$twinc" gen k.c -- -DSCALE=3 -Iinc) > "$tmp/o" 2>&1
expect "gen with -- flags succeeds" test $? -eq 0
expect "default output name FILE.twin.c" test -f "$tmp/src/k.twin.c"
expect "default header name FILE.twin.h" test -f "$tmp/src/k.twin.h"
expect "-D from -- flags used" grep -q '3.0 \* x' "$tmp/src/k.twin.c"
expect "#line points at the user file" grep -q '#line 4 "k.c"' "$tmp/src/k.twin.c"
rm -f "$tmp/src/k.twin.c" "$tmp/src/k.twin.h"
(cd "$tmp/src" && "$twinc" gen k.c) > "$tmp/o" 2>&1
expect "without the define the parse fails with exit 1" test $? -eq 1
expect "and nothing is written" test ! -e "$tmp/src/k.twin.c"

# -p BUILD_DIR takes the flags from compile_commands.json
mkdir -p "$tmp/build"
cat > "$tmp/build/compile_commands.json" <<J
[{"directory": "$tmp/src", "file": "$tmp/src/k.c",
  "arguments": ["cc", "-DSCALE=5", "-Iinc", "-c", "k.c", "-o", "k.o"]}]
J
(cd "$tmp/src" && "$twinc" gen k.c -p "$tmp/build" -o "$tmp/out.twin.c") > "$tmp/o" 2>&1
expect "gen -p succeeds" test $? -eq 0
expect "-p define used" grep -q '5.0 \* x' "$tmp/out.twin.c"
expect "-o header follows -o" test -f "$tmp/out.twin.h"
(cd "$tmp/src" && "$twinc" gen k.c -p "$tmp/nowhere") > "$tmp/o" 2>&1
expect "-p without a database exits 1" test $? -eq 1

# --dump-ir after a pass
(cd "$tmp/src" && "$twinc" gen k.c --dump-ir=activity -o "$tmp/d.twin.c" -- -DSCALE=3 -Iinc) > "$tmp/ir" 2>&1
expect "--dump-ir=activity prints the IR" grep -q '; twinc IR of k.c after activity' "$tmp/ir"
expect "--dump-ir shows activity" grep -q 'func k(x: double active' "$tmp/ir"
"$twinc" gen k.c --dump-ir=nonsense > "$tmp/o" 2>&1
expect "--dump-ir with an unknown pass exits 2" test $? -eq 2

# twinc check on the samples: every kernel passes, JSON is valid
"$twinc" check "$samples" > "$tmp/check" 2>&1
rc=$?
expect "twinc check passes on the samples (exit $rc)" test $rc -eq 0
"$twinc" check "$samples" --kernel bs_call --json > "$tmp/check.json" 2>&1
expect "twinc check --json is valid JSON with adjoint and fd" /usr/bin/python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert isinstance(d, list) and d and all(o["kernel"] == "bs_call" for o in d)
assert all(set(o["adjoint"]["return"]) == {"S", "K", "r", "q", "sigma", "T"} for o in d)
' "$tmp/check.json"
# the base point comes from the kernel's `#pragma aad check(...)`; --at wins
"$twinc" check "$samples" --kernel heston_call --json > "$tmp/h.json" 2>&1
expect "twinc check starts at the pragma's check point" /usr/bin/python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
p0 = [o for o in d if o["point"] == 0][0]["inputs"]
assert p0["rho"] == -0.7 and p0["nsteps"] == 50 and p0["v0"] == 0.04, p0
z1 = [v for k, v in p0.items() if k.startswith("z1[")]
assert len(z1) == 50 and all(z == 0.1 for z in z1) and p0["z2[49]"] == -0.1, p0
' "$tmp/h.json"
"$twinc" check "$samples" --kernel heston_call --at rho=-0.2,nsteps=3 --json > "$tmp/h2.json" 2>&1
expect "--at overrides the pragma's check point" /usr/bin/python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
p0 = [o for o in d if o["point"] == 0][0]["inputs"]
assert p0["rho"] == -0.2 and p0["nsteps"] == 3 and p0["v0"] == 0.04, p0
assert "z1[2]" in p0 and "z1[3]" not in p0, p0
' "$tmp/h2.json"
"$twinc" check "$samples" --kernel nosuch > "$tmp/o" 2>&1
expect "twinc check with an unknown kernel exits 2" test $? -eq 2

echo "cli: $pass passed, $fail failed"
[ $fail -eq 0 ]
