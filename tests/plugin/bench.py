#!/usr/bin/env python3
"""tests/plugin/bench.py -- what the plugins cost (`make plugin-bench`).

For each compiler and sample, `cc -O2 -c FILE` is run with and without
-fplugin, alternately (so a change in machine load hits both alike), RUNS times
each; the table gives the median wall time and the mean CPU time (user + sys of
the compiler and everything it started, plus what the warm generator server
spent on its requests) and their ratios.  Wall time is what one compile costs
with a core to spare; CPU time is what it costs when every core is busy
(make -j).  The server is warm after the first runs, as in any build of more
than one annotated file; TWINC_GEN_SERVER=0 measures the cold path (a fresh
generator process per compile).  Run from the repository root after
`make plugins`.  A benchmark, not a test: it never fails on the numbers.
"""
import os
import statistics
import subprocess
import sys
import tempfile
import time

RUNS = int(os.environ.get("RUNS", "41"))
CLANG = os.environ.get("CLANG", "clang-14")


def run(cmd):
    """Wall and CPU seconds of one run of cmd (CPU: the child and its children)."""
    t0 = time.perf_counter()
    pid = os.posix_spawnp(cmd[0], cmd, os.environ)
    _, status, ru = os.wait4(pid, 0)
    wall = time.perf_counter() - t0
    if status != 0:
        sys.exit("bench: failed: " + " ".join(cmd))
    return wall, ru.ru_utime + ru.ru_stime


def server_cpu():
    """CPU seconds used so far by warm generators (twinc-gen --serve) and their children."""
    total = 0
    for pid in os.listdir("/proc"):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if b"--serve" not in f.read() or not os.path.exists(f"/proc/{pid}/exe"):
                    continue
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if "twinc-gen" in os.readlink(f"/proc/{pid}/exe"):
                total += sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
        except OSError:
            continue
    return total / os.sysconf("SC_CLK_TCK")


def compare(plain, plugin):
    """Wall medians and CPU means (ms), plain and with the plugin, interleaved.
    The plugin's CPU includes the warm generator's work for it (not a child)."""
    for _ in range(3):
        run(plain), run(plugin)
    a, b = [], []
    s0 = server_cpu()
    for _ in range(RUNS):
        a.append(run(plain))
        b.append(run(plugin))
    served = (server_cpu() - s0) / RUNS
    med = lambda xs: 1000 * statistics.median(x[0] for x in xs)
    mean = lambda xs, extra: 1000 * (statistics.mean(x[1] for x in xs) + extra)
    return med(a), med(b), mean(a, 0), mean(b, served)


def main():
    tmp = tempfile.mkdtemp(prefix="twinc-plugin-bench.")
    plain_c = os.path.join(tmp, "plain.c")
    with open(plain_c, "w") as f:
        f.write("double plain(double x) { return 2 * x; }\n")
    print(f"{RUNS} runs each, ms (wall: median, cpu: mean); {os.cpu_count()} cores; "
          f"load average {os.getloadavg()[0]:.2f}; TWINC_GEN_SERVER={os.environ.get('TWINC_GEN_SERVER', '1')}")
    print(f"{'compiler':9} {'file':14} {'wall':>6} {'plugin':>7} {'ratio':>6}   {'cpu':>6} {'plugin':>7} {'ratio':>6}")
    for cc, plugin in (("gcc", "build/plugin/gcc/twinc.so"), (CLANG, "build/plugin/clang/twinc.so")):
        tot = [0.0] * 4
        for src in ("samples/bs.c", "samples/sabr.c", plain_c):
            base = [cc, "-O2", "-Iruntime", "-c", src, "-o", os.path.join(tmp, "x.o")]
            with_plugin = base[:1] + ["-fplugin=" + plugin, "-fplugin-arg-twinc-out=" + tmp] + base[1:]
            r = compare(base, with_plugin)
            name = os.path.basename(src) if src != plain_c else "(no pragma)"
            if src != plain_c:
                tot = [t + x for t, x in zip(tot, r)]
            print(f"{cc:9} {name:14} {r[0]:6.1f} {r[1]:7.1f} {r[1] / r[0]:5.2f}x   {r[2]:6.1f} {r[3]:7.1f} {r[3] / r[2]:5.2f}x")
        print(f"{cc:9} {'both samples':14} {tot[0]:6.1f} {tot[1]:7.1f} {tot[1] / tot[0]:5.2f}x   "
              f"{tot[2]:6.1f} {tot[3]:7.1f} {tot[3] / tot[2]:5.2f}x")
    subprocess.run(["rm", "-rf", tmp])


if __name__ == "__main__":
    main()
