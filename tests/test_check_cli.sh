#!/usr/bin/env bash
#
# test_check_cli.sh — `twinc check` from the outside: exit statuses, the
# report, the JSON, the usage errors.  Runs against the hand-written fixture
# library (tests/fixtures/handtwin.c: hand_ok is right, hand_wrong_adjoint's
# adjoint is wrong, hand_uniform has uniform parameters).
#
# usage: tests/test_check_cli.sh TWINC LIBHANDTWIN.so [LIBNOREGISTRY.so]
#
# Prints one line per failed test and "N passed, N failed"; exits 1 if any
# test failed, 2 on bad arguments.
#
# MIT licence — see LICENSE.

set -u

if [ $# -lt 2 ] || [ ! -x "$1" ] || [ ! -f "$2" ]; then
    echo "usage: $0 TWINC LIBHANDTWIN.so [LIBNOREGISTRY.so]" >&2
    exit 2
fi
TWINC=$1
LIB=$2
NOREG=${3:-}
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3

TMP=$(mktemp -d "${TMPDIR:-/tmp}/twinc-check-cli.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
OUT=$TMP/out
ERR=$TMP/err

passed=0
failed=0

ok() { passed=$((passed + 1)); }
fail() {
    failed=$((failed + 1))
    echo "FAIL: $1"
    if [ -s "$OUT" ]; then sed 's/^/    stdout: /' "$OUT" | head -20; fi
    if [ -s "$ERR" ]; then sed 's/^/    stderr: /' "$ERR" | head -20; fi
}

# run EXPECTED_STATUS ARGS...: runs `twinc check ARGS`, output in $OUT/$ERR
run() {
    local want=$1
    shift
    "$TWINC" check "$@" >"$OUT" 2>"$ERR"
    status=$?
    [ "$status" -eq "$want" ]
}

# json PYTHON_EXPRESSION: evaluates it with d = the JSON document on stdout
json() {
    "$PY" -c "import json, sys
d = json.load(open(sys.argv[1]))
sys.exit(0 if ($1) else 1)" "$OUT" 2>>"$ERR"
}

# ---- passing and failing kernels ----

if run 0 "$LIB" --kernel hand_ok && grep -q '^PASS hand_ok: 4 of 4 points passed' "$OUT" &&
    grep -q '^PASS: 1 of 1 kernels passed' "$OUT"; then ok; else
    fail "a correct kernel passes with exit 0 (status $status)"; fi

if run 0 "$LIB" --kernel hand_uniform && grep -q '^PASS hand_uniform' "$OUT"; then ok; else
    fail "a kernel with uniform parameters passes (status $status)"; fi

if run 1 "$LIB" --kernel hand_wrong_adjoint && grep -q '^FAIL hand_wrong_adjoint' "$OUT" &&
    grep -q 'FAIL: d return / d a: the adjoint gives' "$OUT" &&
    ! grep -q 'FAIL: d return / d b' "$OUT"; then ok; else
    fail "a wrong adjoint fails with exit 1 and names d return / d a (status $status)"; fi

if run 1 "$LIB" && grep -q '^FAIL: 2 of 3 kernels passed, 4 of 12 points failed' "$OUT"; then
    ok; else fail "all kernels: summary counts kernels and points (status $status)"; fi

if run 0 "$LIB" --kernel hand_wrong_adjoint --rtol 0.5 --dot-rtol 0.5; then ok; else
    fail "--rtol and --dot-rtol loosen the bounds (status $status)"; fi

if run 0 "$LIB" --kernel hand_ok --kernel hand_uniform --lane-stride 3 && run 2 "$LIB" --lane-stride 0
then ok; else fail "--lane-stride passes strided lanes (status $status)"; fi

if run 0 "$LIB" --kernel hand_ok --kernel hand_uniform --points 7 &&
    grep -q '^PASS hand_ok: 7 of 7' "$OUT" && grep -q '^PASS hand_uniform: 7 of 7' "$OUT" &&
    ! grep -q hand_wrong_adjoint "$OUT"; then ok; else
    fail "--kernel twice and --points select kernels and points (status $status)"; fi

# ---- the base point, random points, seeds ----

if run 1 "$LIB" --kernel hand_wrong_adjoint --at a=2,b=3 --points 1 &&
    grep -q 'point 0: a=2 b=3$' "$OUT" && grep -q 'return = 12$' "$OUT"; then ok; else
    fail "--at sets the base point (status $status)"; fi

if run 0 "$LIB" --kernel hand_uniform --at T=0.5 --at m=3 --points 3 &&
    [ "$(grep -c 'T=0.5 m=3 ' "$OUT")" -eq 3 ]; then ok; else
    fail "random points keep uniform and integer inputs (status $status)"; fi

run 0 "$LIB" --kernel hand_ok --seed 5 && cp "$OUT" "$TMP/seed5a"
run 0 "$LIB" --kernel hand_ok --seed 5 && cp "$OUT" "$TMP/seed5b"
run 0 "$LIB" --kernel hand_ok --seed 6 && cp "$OUT" "$TMP/seed6"
if cmp -s "$TMP/seed5a" "$TMP/seed5b" && ! cmp -s "$TMP/seed5a" "$TMP/seed6"; then ok; else
    fail "the same seed gives the same points, another seed others"; fi

if run 1 "$LIB" --kernel hand_ok --at y=-1e300 --points 1 &&
    grep -q 'value is not finite at this point; give --at' "$OUT"; then ok; else
    fail "a non-finite value fails with advice (status $status)"; fi

# ---- JSON ----

if run 1 "$LIB" --json && json 'isinstance(d, list) and len(d) == 12'; then ok; else
    fail "--json prints one valid JSON array with an object per kernel and point"; fi

if run 1 "$LIB" --json &&
    json '[o["pass"] for o in d if o["kernel"] == "hand_wrong_adjoint"] == [False] * 4' &&
    json 'all(o["pass"] for o in d if o["kernel"] != "hand_wrong_adjoint")' &&
    json 'all(o["rho"]["return"]["a"] > 1e-6 and o["rho"]["return"]["b"] < 1e-6
              and "adjoint" in o["failures"] for o in d if o["kernel"] == "hand_wrong_adjoint")'
then ok; else fail "--json: pass and rho per kernel, keyed by parameter name"; fi

if run 0 "$LIB" --json --kernel hand_ok --at x=0.5,k=2 --points 2 &&
    json 'd[0]["inputs"] == {"x": 0.5, "y": 1.0, "k": 2} and d[0]["point"] == 0' &&
    json 'abs(d[0]["adjoint"]["return"]["x"] - (1 + 2 * __import__("math").cos(0.5))) < 1e-14' &&
    json 'set(d[0]["values"]) == {"out", "return"} and set(d[0]["fd"]["out"]) == {"x", "y"}' &&
    json 'all(k in d[1] for k in ("tangent", "rho_tangent", "dot_error", "consistency"))' &&
    json 'd[0]["dot_error"] < 1e-12 and d[0]["status"] == "ok"'; then ok; else
    fail "--json: inputs, values, adjoint, fd, tangent by name"; fi

if run 1 "$LIB" --json --kernel hand_ok --at y=-1e300 --points 1 &&
    json 'd[0]["values"]["out"] is None and d[0]["pass"] is False'; then ok; else
    fail "--json: non-finite numbers are null"; fi

# ---- usage errors: exit 2, nothing on stdout ----

if run 0 --help && grep -q '^usage: twinc check LIB.so' "$OUT" && grep -q -- '--points N' "$OUT"
then ok; else fail "--help prints the usage on stdout with exit 0 (status $status)"; fi

if run 2 "$LIB" --frobnicate && grep -q "unknown option '--frobnicate'" "$ERR" && [ ! -s "$OUT" ]
then ok; else fail "an unknown option is a usage error (status $status)"; fi

if run 2 "$LIB" --kernel nope &&
    grep -q "no kernel 'nope'.*available: hand_ok, hand_wrong_adjoint, hand_uniform" "$ERR" &&
    [ ! -s "$OUT" ]; then ok; else
    fail "an unknown kernel lists the available ones (status $status)"; fi

if run 2 "$LIB" --kernel hand_ok --at z=1 &&
    grep -q "'z' is not a parameter of hand_ok; its inputs are: x, y, k" "$ERR"; then ok; else
    fail "--at with an unknown name lists the parameters (status $status)"; fi

if run 2 "$LIB" --json --at z=1 && grep -q "'z' is not a parameter of any kernel" "$ERR" &&
    grep -q "hand_uniform: x, r, T, m, c" "$ERR" && [ ! -s "$OUT" ]; then ok; else
    fail "--at with a name no kernel has lists every kernel's parameters (status $status)"; fi

if run 2 "$LIB" --kernel hand_ok --at k=1.5 && grep -q "k=1.5: not a valid int value" "$ERR"
then ok; else fail "--at checks integer values (status $status)"; fi

if run 2 "$LIB" --at return=1 && grep -q "'return' is an output" "$ERR"; then ok; else
    fail "--at refuses outputs (status $status)"; fi

if run 2 "$LIB" --points 0 && run 2 "$LIB" --points && run 2 "$LIB" --rtol -1 &&
    run 2 "$LIB" --seed x && run 2; then ok; else
    fail "bad --points, --rtol, --seed and a missing library are usage errors"; fi

if run 2 "$TMP/does-not-exist.so" && grep -q "does-not-exist.so" "$ERR"; then ok; else
    fail "a missing library exits 2 with dlopen's message (status $status)"; fi

if [ -n "$NOREG" ]; then
    if run 2 "$NOREG" && grep -q "no twinc registry" "$ERR"; then ok; else
        fail "a library without twins says so (status $status)"; fi
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
