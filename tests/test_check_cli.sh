#!/usr/bin/env bash
#
# test_check_cli.sh — `twinc check` from the outside: exit statuses, the
# report, the JSON, the usage errors.  Runs against the hand-written fixture
# library (tests/fixtures/handtwin.c: hand_ok is right, hand_wrong_adjoint's
# adjoint is wrong, hand_uniform has uniform parameters) and, for arrays,
# tests/fixtures/handarray.c (hand_arr_ok, hand_arr_wrong whose last
# element's adjoint is wrong, hand_arr_inout with an in/out array,
# hand_arr_uniform with a uniform array).  Without LIBHANDARRAY.so the
# script builds it from tests/fixtures/handarray.c with $CC (default cc).
#
# usage: tests/test_check_cli.sh TWINC LIBHANDTWIN.so [LIBNOREGISTRY.so [LIBHANDARRAY.so]]
#
# Prints one line per failed test and "N passed, N failed"; exits 1 if any
# test failed, 2 on bad arguments.
#
# MIT licence — see LICENSE.

set -u

if [ $# -lt 2 ] || [ ! -x "$1" ] || [ ! -f "$2" ]; then
    echo "usage: $0 TWINC LIBHANDTWIN.so [LIBNOREGISTRY.so [LIBHANDARRAY.so]]" >&2
    exit 2
fi
TWINC=$1
LIB=$2
NOREG=${3:-}
ARR=${4:-}
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3

TMP=$(mktemp -d "${TMPDIR:-/tmp}/twinc-check-cli.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
OUT=$TMP/out
ERR=$TMP/err

if [ -z "$ARR" ]; then
    SRC=$(cd "$(dirname "$0")/.." && pwd)
    ARR=$TMP/libhandarray.so
    if ! ${CC:-cc} -std=c99 -O2 -fPIC -shared -I"$SRC/runtime" "$SRC/tests/fixtures/handarray.c" \
        -o "$ARR" -lm; then
        echo "$0: cannot build $ARR from tests/fixtures/handarray.c" >&2
        exit 2
    fi
fi

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

# ---- arrays ----

if run 0 "$ARR" --kernel hand_arr_ok --kernel hand_arr_inout --kernel hand_arr_uniform --at n=3,m=2 &&
    grep -q '^PASS hand_arr_ok: 4 of 4 points passed' "$OUT" &&
    grep -q '^PASS hand_arr_inout: 4 of 4 points passed' "$OUT" &&
    grep -q '^PASS hand_arr_uniform: 4 of 4 points passed' "$OUT" &&
    grep -q '^hand_arr_ok (handarray.c:40): active inputs s a\[0..2\]; outputs return$' "$OUT" &&
    grep -q '^hand_arr_inout (handarray.c:58): active inputs x v\[0..2\]; outputs v\[0..2\]$' "$OUT" &&
    grep -q '^      a\[2\]  ' "$OUT" && grep -q '^    d v\[2\] / d ' "$OUT" &&
    grep -q '^    v\[1\] = ' "$OUT"; then ok; else
    fail "array kernels pass, reported element by element (status $status)"; fi

if run 1 "$ARR" --kernel hand_arr_wrong --at n=4 --points 2 && grep -q '^FAIL hand_arr_wrong' "$OUT" &&
    grep -q 'FAIL: d return / d a\[3\]: the adjoint gives' "$OUT" &&
    ! grep -q 'FAIL: d return / d a\[[012]\]' "$OUT"; then ok; else
    fail "a wrong adjoint of one element names that element (status $status)"; fi

if run 0 "$ARR" --kernel hand_arr_ok --at n=3,a=0.25:0.5:0.75,w=2 --at 'a[1]=1.5' --points 1 &&
    grep -q 'point 0: s=1 n=3 a=0.25:1.5:0.75 w=2:2:2$' "$OUT"; then ok; else
    fail "--at sets arrays: one value, a list, an element; later wins (status $status)"; fi

if run 0 "$ARR" --kernel hand_arr_inout --at x=1.5,n=3,v=0.5:0.25:2 --points 3 --json &&
    json 'd[0]["inputs"] == {"x": 1.5, "n": 3, "v[0]": 0.5, "v[1]": 0.25, "v[2]": 2.0}' &&
    json 'd[0]["lengths"] == {"v": 3}' &&
    json 'set(d[0]["values"]) == {"v[0]", "v[1]", "v[2]"} and abs(d[0]["values"]["v[2]"] - 3.0625) < 1e-14' &&
    json 'abs(d[0]["adjoint"]["v[2]"]["v[1]"] - 0.5) < 1e-14 and d[0]["adjoint"]["v[2]"]["v[0]"] == 0' &&
    json 'abs(d[0]["fd"]["v[1]"]["x"] - 0.25) < 1e-8 and d[0]["rho"]["v[0]"]["v[0]"] < 1e-6' &&
    json 'len({d[1]["inputs"]["v[%d]" % i] / d[0]["inputs"]["v[%d]" % i] for i in range(3)}) == 3' &&
    json 'all(o["inputs"]["n"] == 3 and o["pass"] for o in d)'; then ok; else
    fail "--json: array elements keyed x[3], lengths, random points move each element"; fi

if run 0 "$ARR" --kernel hand_arr_ok --kernel hand_arr_inout --kernel hand_arr_uniform --at n=2,m=3 \
    --lane-stride 2 --element-stride 3 && run 2 "$ARR" --element-stride 0; then ok; else
    fail "--element-stride passes strided elements (status $status)"; fi

if run 2 "$ARR" --kernel hand_arr_ok --at n=3,a=1:2 && grep -q 'a=1:2: 2 values, but a of hand_arr_ok has 3 elements' "$ERR" &&
    [ ! -s "$OUT" ]; then ok; else
    fail "--at: a list of the wrong length is a usage error (status $status)"; fi

if run 2 "$ARR" --kernel hand_arr_ok --at 'a[3]=1' --at n=3 && grep -q 'a\[3\]: a of hand_arr_ok has 3 elements' "$ERR" &&
    run 2 "$ARR" --kernel hand_arr_ok --at 's[0]=1' && grep -q 's is not an array' "$ERR" &&
    run 2 "$ARR" --kernel hand_arr_ok --at s=1:2 && grep -q 's is not an array' "$ERR" &&
    run 2 "$ARR" --kernel hand_arr_ok --at a=1:x && grep -q 'not a double or a list' "$ERR" &&
    run 2 "$ARR" --kernel hand_arr_ok --at 'a[-1]=1' && grep -q 'NAME\[INDEX\]=VALUE' "$ERR"; then ok; else
    fail "--at: bad indices and lists are usage errors (status $status)"; fi

if run 2 "$ARR" --kernel hand_arr_uniform --at z=1 && grep -q "its inputs are: x, m, c\[m + 1\]" "$ERR"
then ok; else fail "--at: the inputs listed show array lengths (status $status)"; fi

if run 0 --help && grep -q 'x=0.1:0.2:0.3' "$OUT" && grep -q 'x\[2\]=0.7' "$OUT" &&
    grep -q -- '--element-stride E' "$OUT"; then ok; else
    fail "--help documents the array syntax (status $status)"; fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
