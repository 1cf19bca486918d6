#!/usr/bin/env bash
# run_errors.sh TWINC DIR — the error corpus.
# Each DIR/*.c starts with "// expect: LINE:COL: error: MESSAGE".  twinc gen must
# exit 1, print FILE:LINE:COL: error: MESSAGE with the source line and a caret,
# and leave nothing behind in the output folder (no twin, no header, no temporary).
set -u
twinc=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
dir=$2
pass=0
fail=0
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for src in "$dir"/*.c; do
    name=$(basename "$src")
    expect=$(head -1 "$src" | sed -n 's|^// expect: ||p')
    if [ -z "$expect" ]; then
        echo "FAIL $name: no '// expect:' line"; fail=$((fail + 1)); continue
    fi
    rm -f "$out"/x.twin.c "$out"/x.twin.h
    (cd "$dir" && "$twinc" gen "$name" -o "$out/x.twin.c" --header "$out/x.twin.h") > "$out/stdout" 2> "$out/stderr"
    rc=$?
    why=""
    [ $rc -eq 1 ] || why="exit status $rc, expected 1"
    grep -qF -- "$name:$expect" "$out/stderr" || why="${why:+$why; }message not found: $name:$expect"
    grep -qE '^ +\| +\^$|^ +\| .*\^$' "$out/stderr" || why="${why:+$why; }no caret line"
    left=$(ls -A "$out" | grep -v -x -e stdout -e stderr)
    [ -z "$left" ] || why="${why:+$why; }files left behind: $left"
    if [ -z "$why" ]; then
        pass=$((pass + 1))
    else
        fail=$((fail + 1))
        echo "FAIL $name: $why"
        sed 's/^/    /' "$out/stderr"
    fi
done
echo "error corpus: $pass passed, $fail failed"
[ $fail -eq 0 ]
