#!/usr/bin/env bash
# tests/plugin/run.sh — the compiler plugins and the build-system integration.
# Run from the repository root after `make plugins` (`make plugin-tests` does both).
#
#   1. both plugins: -Wunknown-pragmas stays clean, -E keeps the pragma, a file
#      without #pragma aad gets no twins, every case of the error corpus fails
#      the compile at its line:col with its message and writes nothing, the
#      same with and without the warm generator server, which leaves when idle;
#   2. the samples (and a kernel using a header) built five ways — twinc + Make,
#      GCC plugin + Make, Clang plugin + CMake (Makefiles), twinc + CMake (Ninja),
#      GCC plugin + CMake (Ninja): the same twins (modulo paths) and the same
#      results to the last bit; editing the header regenerates the twins in each;
#      an error in an annotated function fails each build with a diagnostic at
#      its line;
#   3. `make install` into a temporary PREFIX: an external project builds against
#      it with Make + pkg-config (twinc and GCC plugin) and with CMake find_package
#      (twinc and Clang plugin); `make uninstall` leaves nothing behind.
# Prints one line per check and "plugin tests: N passed, N failed".
set -u
ROOT=$(pwd)
B=$ROOT/build
GCC_PLUGIN=$B/plugin/gcc/twinc.so
CLANG_PLUGIN=$B/plugin/clang/twinc.so
CLANG=${CLANG:-clang-14}
MAKE=${MAKE:-make}
T=$(mktemp -d /tmp/twinc-plugin-test.XXXXXX)
trap 'rm -rf "$T"' EXIT
unset MAKEFLAGS MFLAGS # sub-builds are independent projects
# warm generator servers of this run: their own folder, gone soon after
export XDG_RUNTIME_DIR=$T/run TWINC_GEN_SERVER_IDLE=3
mkdir -m 700 "$XDG_RUNTIME_DIR"
pass=0
fail=0

ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() {
    fail=$((fail + 1))
    echo "FAIL $1"
    if [ -n "${2:-}" ] && [ -f "$2" ]; then sed 's/^/     | /' "$2" | tail -25; fi
}
# check NAME CMD...: CMD must succeed (its output goes to $T/log)
check() {
    local name=$1
    shift
    if "$@" > "$T/log" 2>&1; then ok "$name"; else bad "$name" "$T/log"; fi
}

# Twins with every path reduced to its file name (#line, comments, registry).
normalize() { sed -E 's#[^ "(]*/([^ "(/]+\.(c|h))#\1#g' "$1"; }
same_twins() { # DIR1 DIR2 [N]: the N (6) twin files of DIR1 equal DIR2's, modulo paths
    local n=0 f
    for f in "$1"/*.twin.[ch]; do
        [ -f "$f" ] || continue
        n=$((n + 1))
        diff <(normalize "$f") <(normalize "$2/$(basename "$f")") || return 1
    done
    [ "$n" -eq "${3:-6}" ] || { echo "expected ${3:-6} twin files in $1, found $n"; return 1; }
}

echo "== plugins"
for cc in gcc "$CLANG"; do
    plugin=$GCC_PLUGIN
    [ "$cc" = gcc ] || plugin=$CLANG_PLUGIN
    flags=(-O2 -Wall -Wextra -Werror -Wunknown-pragmas -Iruntime)
    check "$cc: -Wunknown-pragmas -Werror fails without the plugin" \
        bash -c "! $cc ${flags[*]} -c samples/bs.c -o $T/x.o"
    check "$cc: clean with the plugin, twins written to out=DIR" \
        bash -c "$cc ${flags[*]} -fplugin=$plugin -fplugin-arg-twinc-out=$T/$cc-out -c samples/bs.c -o $T/x.o \
                 && test -s $T/$cc-out/bs.twin.c && test -s $T/$cc-out/bs.twin.h"
    check "$cc: twins next to the object by default" \
        bash -c "mkdir -p $T/$cc-obj && $cc -Iruntime -fplugin=$plugin -c samples/sabr.c -o $T/$cc-obj/sabr.o \
                 && test -s $T/$cc-obj/sabr.twin.c"
    mkdir -p "$T/$cc-cli"
    build/twinc gen samples/bs.c -o "$T/$cc-cli/bs.twin.c" -- -Iruntime > /dev/null 2>&1
    check "$cc: same twins as the twinc command" same_twins "$T/$cc-cli" "$T/$cc-out" 2
    TWINC_GEN_SERVER=0 $cc -Iruntime -fplugin=$plugin -fplugin-arg-twinc-out=$T/$cc-cold -c samples/bs.c -o $T/x.o
    check "$cc: the same twins without the warm server (TWINC_GEN_SERVER=0)" same_twins "$T/$cc-out" "$T/$cc-cold" 2
    check "$cc: errors without the warm server too" \
        bash -c "cd tests/errors && ! TWINC_GEN_SERVER=0 $cc -fplugin=$plugin -fplugin-arg-twinc-out=$T/$cc-cold \
                 -c goto.c -o $T/x.o 2>$T/cold.err && grep -q 'goto.c:6:9: error:' $T/cold.err"
    check "$cc: -E keeps the pragma" \
        bash -c "$cc -E -Iruntime -fplugin=$plugin samples/bs.c | grep -q '^#pragma aad'"
    mkdir -p "$T/st-$cc"
    check "$cc: preprocessed input (-save-temps) is an error, no twins" \
        bash -c "cd $T/st-$cc && ! $cc -save-temps -I$ROOT/runtime -fplugin=$plugin -c $ROOT/samples/bs.c -o x.o \
                 && ! ls *.twin.c 2>/dev/null"
    printf 'double plain(double x) { return 2 * x; }\n' > "$T/plain.c"
    check "$cc: a file without #pragma aad gets no twins" \
        bash -c "$cc -Werror -fplugin=$plugin -fplugin-arg-twinc-out=$T/$cc-none -c $T/plain.c -o $T/x.o \
                 && ! ls $T/$cc-none/* 2>/dev/null"
    check "$cc: an unknown plugin argument is an error" \
        bash -c "! $cc -fplugin=$plugin -fplugin-arg-twinc-bogus=1 -c $T/plain.c -o $T/x.o"
    # the error corpus: the compile fails at the expected line:col with the message, nothing
    # written (for invalid C the compiler's own error, in its own words, at that line:col)
    errs=0 nerr=0
    for src in tests/errors/*.c; do
        name=$(basename "$src")
        expect=$(head -1 "$src" | sed -n 's|^// expect: ||p')
        want="$name:$expect"
        (cd tests/errors && $cc -fsyntax-only "$name") > /dev/null 2>&1 || want="$name:${expect%%: error:*}: error:"
        rm -rf "$T/eout" && mkdir -p "$T/eout"
        nerr=$((nerr + 1))
        if (cd tests/errors && $cc -Wall -fplugin=$plugin -fplugin-arg-twinc-out="$T/eout" -c "$name" \
            -o "$T/e.o") > "$T/elog" 2>&1; then
            echo "  $name: compiled"; errs=$((errs + 1))
        elif ! grep -qF -- "$want" "$T/elog"; then
            echo "  $name: no '$want' in:"; sed 's/^/     | /' "$T/elog" | head -8; errs=$((errs + 1))
        elif [ -n "$(ls -A "$T/eout")" ]; then
            echo "  $name: left $(ls -A "$T/eout")"; errs=$((errs + 1))
        fi
    done > "$T/log"
    if [ "$errs" -eq 0 ]; then ok "$cc: error corpus ($nerr files) fails at line:col, writes nothing"; else bad "$cc: error corpus" "$T/log"; fi
done

sock=$(ls "$XDG_RUNTIME_DIR"/twinc-gen-*.sock 2> /dev/null | head -1)
check "a warm generator server answered the compiles" test -S "$sock"
check "it leaves once idle (TWINC_GEN_SERVER_IDLE=3)" \
    bash -c "for i in \$(seq 50); do [ -e $sock ] || exit 0; sleep 0.2; done; exit 1"

echo "== the samples built five ways"
mkproj() { # DIR: a copy of tests/plugin/proj with the samples
    mkdir -p "$1" && cp tests/plugin/proj/* samples/bs.c samples/sabr.c "$1/"
}
build_make_cli() { $MAKE -C "$T/make-cli" -j2 TWINC_MK="$ROOT/plugin/twinc.mk" CC=gcc; }
build_make_gcc() { $MAKE -C "$T/make-gcc" -j2 TWINC_MK="$ROOT/plugin/twinc.mk" CC=gcc TWINC_PLUGIN=gcc; }
build_cmake_clang() { cmake --build "$T/cmake-clang/build"; }
build_cmake_cli() { cmake --build "$T/cmake-cli/build" -j2; }
build_cmake_gcc() { cmake --build "$T/cmake-gcc/build" -j2; }
twins_of() { # BUILD: its twin folder
    case $1 in
    make-*) echo "$T/$1/twins" ;;
    cmake-*) echo "$T/$1/build/twinc/driver" ;;
    esac
}
driver_of() {
    case $1 in
    make-*) echo "$T/$1/driver" ;;
    cmake-*) echo "$T/$1/build/driver" ;;
    esac
}
BUILDS="make-cli make-gcc cmake-clang"
command -v ninja > /dev/null && BUILDS="$BUILDS cmake-cli cmake-gcc"
for b in $BUILDS; do mkproj "$T/$b"; done
check "configure cmake-clang (Clang plugin, Makefiles, compile_commands.json)" \
    cmake -S "$T/cmake-clang" -B "$T/cmake-clang/build" -DCMAKE_C_COMPILER="$CLANG" -DTWINC_MODE=PLUGIN \
    -Dtwinc_DIR="$B/cmake" -DCMAKE_EXPORT_COMPILE_COMMANDS=ON
if [[ $BUILDS == *cmake-cli* ]]; then
    check "configure cmake-cli (twinc command, Ninja, GCC)" \
        cmake -S "$T/cmake-cli" -B "$T/cmake-cli/build" -G Ninja -DCMAKE_C_COMPILER=gcc -DTWINC_MODE=CLI \
        -Dtwinc_DIR="$B/cmake"
    check "configure cmake-gcc (GCC plugin, Ninja)" \
        cmake -S "$T/cmake-gcc" -B "$T/cmake-gcc/build" -G Ninja -DCMAKE_C_COMPILER=gcc -DTWINC_MODE=PLUGIN \
        -Dtwinc_DIR="$B/cmake"
fi
for b in $BUILDS; do
    check "build $b" "build_${b//-/_}"
done
for b in $BUILDS; do
    "$(driver_of "$b")" > "$T/$b.out" 2>&1
    echo "exit $?" >> "$T/$b.out"
done
check "the driver runs every kernel (6)" grep -q '^6 kernels$' "$T/make-cli.out"
for b in ${BUILDS#make-cli }; do
    check "$b: same twins as make-cli (modulo paths)" same_twins "$(twins_of make-cli)" "$(twins_of "$b")"
    check "$b: same results as make-cli, bit for bit" diff "$T/make-cli.out" "$T/$b.out"
done
check "cmake-clang: compile_commands.json lists the twins and the plugin" \
    bash -c "grep -q 'bs.twin.c' $T/cmake-clang/build/compile_commands.json \
             && grep -q 'fplugin=$CLANG_PLUGIN' $T/cmake-clang/build/compile_commands.json"
mkdir -p "$T/p"
build/twinc gen "$T/cmake-clang/scaled.c" -p "$T/cmake-clang/build" -o "$T/p/scaled.twin.c" > "$T/log" 2>&1
cp "$T/cmake-clang/build/twinc/driver/scaled.twin.h" "$T/p/"
check "cmake-clang: twinc gen -p BUILD takes the flags from it, same twins" \
    same_twins "$T/p" "$T/cmake-clang/build/twinc/driver" 2
check "nothing to do on a second build (make-gcc)" \
    bash -c "$MAKE -q -C $T/make-gcc TWINC_MK=$ROOT/plugin/twinc.mk CC=gcc TWINC_PLUGIN=gcc driver"
check "nothing to do on a second build (make-cli)" \
    bash -c "$MAKE -q -C $T/make-cli TWINC_MK=$ROOT/plugin/twinc.mk CC=gcc driver"

echo "== editing an included header regenerates the twins"
sleep 1 # a clearly newer mtime on coarse file systems
for b in $BUILDS; do
    sed -i 's/scale = 2.0/scale = 3.0/' "$T/$b/scale.h"
    check "$b: rebuild after editing scale.h" "build_${b//-/_}"
    check "$b: the twin uses the new constant" grep -q '3.0 \* x' "$(twins_of "$b")/scaled.twin.c"
    "$(driver_of "$b")" > "$T/$b.out2" 2>&1
    check "$b: the results changed" bash -c "! diff -q $T/$b.out $T/$b.out2"
done
for b in ${BUILDS#make-cli }; do
    check "$b: same new results as make-cli" diff "$T/make-cli.out2" "$T/$b.out2"
done

echo "== an error in an annotated function fails each build at its line"
for b in $BUILDS; do
    cp "$T/$b/scaled.c" "$T/$b/scaled.c.orig"
    cat >> "$T/$b/scaled.c" <<'EOF'

double helper(double x) { return x * x; }

#pragma aad
double uses_helper(double x)
{
    return helper(x) + 1.0;
}
EOF
    line=$(grep -n 'return helper(x)' "$T/$b/scaled.c" | cut -d: -f1)
    if "build_${b//-/_}" > "$T/log" 2>&1; then
        bad "$b: the build failed" "$T/log"
    elif ! grep -qE "scaled\.c:$line:12: error: call to 'helper'" "$T/log"; then
        bad "$b: the build failed with scaled.c:$line:12: error: call to 'helper' ..." "$T/log"
    else
        ok "$b: the build fails with scaled.c:$line:12: error: call to 'helper' ..."
    fi
    mv "$T/$b/scaled.c.orig" "$T/$b/scaled.c"
    check "$b: builds again once fixed" "build_${b//-/_}"
done

echo "== an installed tree"
P=$T/prefix
check "make install PREFIX=..." $MAKE -s install PREFIX="$P"
check "installed programs name no build-tree folder" \
    bash -c "! grep -l '$ROOT/runtime' $P/bin/twinc $P/lib/twinc/twinc-gen"
check "installed twinc finds its twinc.h" \
    bash -c "cd $T && $P/bin/twinc gen $ROOT/samples/bs.c -o $T/inst.twin.c"
export PKG_CONFIG_PATH=$P/lib/pkgconfig
run_ext() { # DIR: the app checks itself; its line pins the numbers
    "$1/app" > "$T/app.out" && grep -qx 'status success value 108.328706767 dS 1.08328706767 dT 4.3331482707' "$T/app.out"
}
for mode in cli gcc; do
    d=$T/ext-make-$mode
    mkdir -p "$d" && cp tests/plugin/ext/* "$d/"
    plugin_arg=""
    [ $mode = gcc ] && plugin_arg="TWINC_PLUGIN=gcc"
    check "external project, Make + pkg-config ($mode)" $MAKE -C "$d" -j2 CC=gcc $plugin_arg
    check "external project, Make + pkg-config ($mode): runs" run_ext "$d"
done
for mode in CLI PLUGIN; do
    d=$T/ext-cmake-$mode
    mkdir -p "$d" && cp tests/plugin/ext/* "$d/"
    check "external project, CMake find_package ($mode, $CLANG)" \
        bash -c "cmake -S $d -B $d/build -DCMAKE_PREFIX_PATH=$P -DCMAKE_C_COMPILER=$CLANG -DTWINC_MODE=$mode \
                 && cmake --build $d/build -j2"
    check "external project, CMake find_package ($mode): runs" run_ext "$d/build"
done
unset PKG_CONFIG_PATH
pyver=$(/usr/bin/python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
check "installed Python package loads a kernel library and differentiates" \
    bash -c "cd $T && PYTHONPATH=$P/lib/python$pyver/dist-packages /usr/bin/python3 -c '
import twinc, numpy as np
assert twinc.__file__.startswith(\"$P/\"), twinc.__file__
lib = twinc.load(\"$ROOT/build/samples/libsamples.so\")
v, g = lib.bs_call.value_and_grad(np.array([90.0, 110.0]), 100.0, 0.03, 0.0, 0.2, 1.0)
assert 0 < g[\"S\"][0] < g[\"S\"][1] < 1, g
'"
check "make uninstall leaves nothing" \
    bash -c "$MAKE -s uninstall PREFIX=$P && test -z \"\$(find $P -type f)\""

echo "plugin tests: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
