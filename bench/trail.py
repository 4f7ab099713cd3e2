"""Trail benchmark (issue 12): what following every packet through ~16 tracepoints costs.

`sudo .venv/bin/python bench/trail.py [--seconds 5] [--rounds 3] [--out bench/trail-last.json]`

bench/soak.py's lab (two namespaces, a veth pair); iperf3 from A to B, TCP and then UDP (unpaced,
1400-byte datagrams), in three modes, interleaved over --rounds rounds in the same run: untraced,
`droptrace trail` with a filter that matches nothing (`port 1`: every packet is seen, filtered once,
remembered as rejected) and with no filter (every packet of the lab's namespaces is tracked, its
trail discarded in the kernel when it is consumed). Goals: >= 0.9 and >= 0.6 of untraced.
The floor: trail with its object built with -DDT_TRAIL_FLOOR (bench/trail_floor.py), programs
that return at once on the same tracepoints: what any tool hooking them pays before doing
anything; ratios to it say what droptrace's own work costs.
Reports the median throughput of each mode and its ratio to untraced, and where a traced run's
cost went: the BPF programs' own run time per hook and the tracer process's CPU time (user
space), each as a share of one CPU. The run times come from kernel.bpf_stats_enabled, which
costs every program run two clock reads of its own: it is on only in a last round, whose
throughput is not counted.

With --functions (issue 23): the same runs with `trail --functions` (every kernel function that
takes an skb, kprobe-multi where the kernel has it): untraced, the floor (the same tracepoints and
functions with empty programs) and trail matching nothing, whose ratio to the floor is what a
packet nobody follows costs the function hooks (goal >= 0.9); and the attach time of all the
functions, as trail reports it. Under software emulation (the 6.12 kernel in qemu, e.g.
`vng --disable-kvm --run KERNEL -- .venv/bin/python bench/trail.py --functions`) only the ratios
mean anything.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "bpf"))
import build as bpf_build  # noqa: E402 (bpf/build.py: the compiler command)
import run  # noqa: E402 (bench/run.py: bpftool's view of the programs)
import soak  # noqa: E402 (bench/ is not a package)

PREFIX = "dttrail"
FLOOR = "floor: the same tracepoints, empty programs"
MODES = {"untraced": None, FLOOR: [], "trail, matching nothing": ["port 1"], "trail, matching everything": []}
GOALS = {"trail, matching nothing": 0.9, "trail, matching everything": 0.6}
FN_FLOOR = "floor: the same tracepoints and functions, empty programs"
FN_MODES = {"untraced": None, FN_FLOOR: ["--functions="],
            "trail --functions, matching nothing": ["--functions=", "port 1"]}
FN_GOALS = {"trail --functions, matching nothing": 0.9}  # of the floor
ATTACHED = re.compile(r"also (\d+) kernel functions .* via (\S+) \(attached in ([\d.]+) s\)")
STATS_KNOB = Path("/proc/sys/kernel/bpf_stats_enabled")


def is_ours(pid: int) -> bool:
    try:
        return b"trail.py" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def prog_stats() -> dict:
    """The trail programs' run counts and run times, by program name."""
    stats: dict = {}
    for p in run.programs():
        if p.get("name", "").startswith("dt_trail_"):
            cnt, ns = stats.get(p["name"], (0, 0))
            stats[p["name"]] = (cnt + p.get("run_cnt", 0), ns + p.get("run_time_ns", 0))
    return stats


def cpu_seconds(pid: int) -> float:
    """A process's user + system CPU time so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def iperf(a: str, dst: str, udp: bool, seconds: float) -> float:
    """Bits per second received by the server, as iperf3's client reports it."""
    cmd = ["ip", "netns", "exec", a, "iperf3", "-c", dst, "-t", str(seconds), "-J"]
    if udp:
        cmd += ["-u", "-b", "0", "-l", "1400"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    if r.returncode:
        sys.exit(f"trail bench: iperf3 failed: {(r.stdout + r.stderr).strip()[-300:]}")
    out = json.loads(r.stdout)
    if "error" in out:
        sys.exit(f"trail bench: iperf3: {out['error']}")
    end = out["end"]
    return float((end.get("sum_received") or end["sum"])["bits_per_second"])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=5.0, help="length of each iperf3 run (default 5)")
    p.add_argument("--rounds", type=int, default=3, help="rounds of all modes, interleaved (default 3)")
    p.add_argument("--out", default=None, help="where the JSON results go (default bench/trail-last.json, "
                   "with --functions bench/trail-functions-last.json)")
    p.add_argument("--functions", action="store_true", help="measure trail --functions (see above)")
    args = p.parse_args()
    if args.out is None:
        args.out = str(HERE / ("trail-functions-last.json" if args.functions else "trail-last.json"))
    global MODES, GOALS
    if args.functions:
        MODES, GOALS = FN_MODES, {}
    if os.geteuid() != 0:
        sys.exit("trail bench: needs root: sudo .venv/bin/python bench/trail.py")
    if not shutil.which("iperf3"):
        sys.exit("trail bench: iperf3 is missing (apt-get install iperf3)")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    stats_was = STATS_KNOB.read_text().strip()
    STATS_KNOB.write_text("0")
    try:
        return bench(args)
    finally:
        STATS_KNOB.write_text(stats_was)


def bench(args: argparse.Namespace) -> int:
    a, b = f"{PREFIX}{os.getpid()}a", f"{PREFIX}{os.getpid()}b"
    soak.PREFIX, soak.is_soak = PREFIX, is_ours
    soak.remove_stale()
    results = {(m, proto): [] for m in MODES for proto in ("tcp", "udp")}
    costs: dict = {}  # (mode, proto) -> [(seconds, BPF ns by program, tracer CPU s)]
    attach: list = []  # with --functions: (functions, method, seconds) of each start
    server = None
    floor_dir = tempfile.TemporaryDirectory(prefix="dttrail-floor")
    floor_obj = str(Path(floor_dir.name) / "trail.bpf.o")
    source = bpf_build.FEATURES / "trail" / "trail.bpf.c"
    bpf_build.compile_object(source, Path(floor_obj), ["-DDT_TRAIL_FLOOR"])
    try:
        dst = soak.build_lab(a, b)
        server = subprocess.Popen(["ip", "netns", "exec", b, "iperf3", "-s"], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30  # readiness: iperf3's port listens in B
        while "5201" not in subprocess.run(["ip", "netns", "exec", b, "ss", "-Hltn", "sport = :5201"],
                                           capture_output=True, text=True).stdout:
            if time.monotonic() > deadline or server.poll() is not None:
                sys.exit("trail bench: iperf3 -s did not start in B")
            time.sleep(0.05)
        for rnd in range(args.rounds + 1):
            costing = rnd == args.rounds  # the last round: run times measured, throughput not counted
            STATS_KNOB.write_text("1" if costing else "0")
            for mode, expr in MODES.items():
                if costing and expr is None:
                    continue
                tracer = None
                if expr is not None:
                    floor_cmd = [sys.executable, str(HERE / "trail_floor.py"), floor_obj]
                    cmd = floor_cmd if mode in (FLOOR, FN_FLOOR) else [soak.DROPTRACE]
                    tracer = soak.Mode(mode, [*cmd, "trail", "--netns", a, "--netns", b, *expr],
                                       subprocess.DEVNULL)
                    if not tracer.ready.wait(600) or tracer.proc.poll() is not None:
                        sys.exit("trail bench: droptrace trail did not start: " + " | ".join(tracer.err))
                    found = [m for m in map(ATTACHED.search, tracer.err) if m]
                    if found and mode != FN_FLOOR:
                        attach.append((int(found[0][1]), found[0][2], float(found[0][3])))
                try:
                    for proto in ("tcp", "udp"):
                        s0 = prog_stats() if tracer else {}
                        c0 = cpu_seconds(tracer.proc.pid) if tracer else 0.0
                        bps = iperf(a, dst, proto == "udp", args.seconds)
                        if not costing:
                            results[(mode, proto)].append(bps)
                        elif tracer:
                            s1 = prog_stats()
                            delta = {n: (v[0] - s0.get(n, (0, 0))[0], v[1] - s0.get(n, (0, 0))[1])
                                     for n, v in s1.items()}
                            costs.setdefault((mode, proto), []).append(
                                (args.seconds, delta, cpu_seconds(tracer.proc.pid) - c0))
                finally:
                    if tracer is not None:
                        tracer.stop()
    finally:
        if server is not None:
            server.kill()
            server.wait()
        for ns in (a, b):
            subprocess.run(["ip", "netns", "del", ns], check=False, stderr=subprocess.DEVNULL)
        floor_dir.cleanup()
    table = []
    for proto in ("tcp", "udp"):
        base = statistics.median(results[("untraced", proto)])
        floor = statistics.median(results[(FN_FLOOR if args.functions else FLOOR, proto)])
        for mode in MODES:
            med = statistics.median(results[(mode, proto)])
            goal = GOALS.get(mode)
            fn_goal = FN_GOALS.get(mode) if args.functions else None
            table.append(dict(proto=proto, mode=mode, gbit_s=round(med / 1e9, 3), ratio=round(med / base, 3),
                              ratio_to_floor=round(med / floor, 3), goal=goal or fn_goal,
                              met=med / floor >= fn_goal if fn_goal else None if goal is None else
                              med / base >= goal,
                              runs_gbit_s=[round(x / 1e9, 3) for x in results[(mode, proto)]]))
    where = []
    for (mode, proto), runs in costs.items():
        secs = sum(r[0] for r in runs)
        progs: dict = {}
        for _, delta, _cpu in runs:
            for n, (cnt, ns) in delta.items():
                c, t = progs.get(n, (0, 0))
                progs[n] = (c + cnt, t + ns)
        top = sorted(progs.items(), key=lambda kv: -kv[1][1])[:4]
        bpf_ns = sum(t for _, t in progs.values())
        where.append(dict(mode=mode, proto=proto, bpf_cpu_share=round(bpf_ns / secs / 1e9, 3),
                          user_cpu_share=round(sum(r[2] for r in runs) / secs, 3),
                          top_programs=[dict(name=n[len("dt_trail_"):], runs_per_s=round(c / secs),
                                             ns_per_run=round(t / c) if c else None) for n, (c, t) in top]))
    Path(args.out).write_text(json.dumps(dict(date=time.strftime("%Y-%m-%d %H:%M:%S"),
                                              kernel=os.uname().release, cpus=os.cpu_count(),
                                              seconds=args.seconds, rounds=args.rounds, rows=table,
                                              cost=where, attach=[dict(functions=n, method=m, seconds=t)
                                                                  for n, m, t in attach]), indent=1) + "\n")
    print(f"# Trail: iperf3 A -> B over veth, {args.rounds} rounds of {args.seconds:g} s, medians, "
          f"kernel {os.uname().release}\n\n| protocol | mode | Gbit/s | ratio to untraced "
          "| ratio to the floor | goal |\n|---|---|---|---|---|---|")
    for r in table:
        goal = "" if r["goal"] is None else f">= {r['goal']}: {'met' if r['met'] else 'MISSED'}"
        print(f"| {r['proto']} | {r['mode']} | {r['gbit_s']} | {r['ratio']} | {r['ratio_to_floor']} "
              f"| {goal} |")
    print("\n| protocol | mode | BPF time (share of a CPU) | tracer user space (share of a CPU) | "
          "costliest hooks: runs/s, ns a run |\n|---|---|---|---|---|")
    for w in where:
        hooks = "; ".join(f"{t['name']} {t['runs_per_s']:,}/s {t['ns_per_run']} ns"
                          for t in w["top_programs"])
        print(f"| {w['proto']} | {w['mode']} | {w['bpf_cpu_share']} | {w['user_cpu_share']} | {hooks} |")
    for n, m, t in attach:
        print(f"\nattached {n} functions via {m} in {t} s")
    print(f"\nJSON: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
