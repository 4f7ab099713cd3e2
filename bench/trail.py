"""Trail benchmark (issue 12): what following every packet through ~16 tracepoints costs.

`sudo .venv/bin/python bench/trail.py [--seconds 5] [--rounds 3] [--out bench/trail-last.json]`

bench/soak.py's lab (two namespaces, a veth pair); iperf3 from A to B, TCP and then UDP (unpaced,
1400-byte datagrams), in three modes, interleaved over --rounds rounds in the same run: untraced,
`droptrace trail` with a filter that matches nothing (`port 1`: every packet is seen, filtered once,
remembered as rejected) and with no filter (every packet of the lab's namespaces is tracked, its
trail discarded in the kernel when it is consumed). Goals: >= 0.9 and >= 0.6 of untraced.
Reports the median throughput of each mode and its ratio to untraced.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import soak  # noqa: E402 (bench/ is not a package)

PREFIX = "dttrail"
MODES = {"untraced": None, "trail, matching nothing": ["port 1"], "trail, matching everything": []}
GOALS = {"trail, matching nothing": 0.9, "trail, matching everything": 0.6}


def is_ours(pid: int) -> bool:
    try:
        return b"trail.py" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def iperf(a: str, dst: str, udp: bool, seconds: float) -> float:
    """Bits per second received by the server, as iperf3's client reports it."""
    cmd = ["ip", "netns", "exec", a, "iperf3", "-c", dst, "-t", str(seconds), "-J"]
    if udp:
        cmd += ["-u", "-b", "0", "-l", "1400"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    if r.returncode:
        sys.exit(f"trail bench: iperf3 failed: {(r.stdout + r.stderr).strip()[-300:]}")
    end = json.loads(r.stdout)["end"]
    return float((end.get("sum_received") or end["sum"])["bits_per_second"])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=5.0, help="length of each iperf3 run (default 5)")
    p.add_argument("--rounds", type=int, default=3, help="rounds of all modes, interleaved (default 3)")
    p.add_argument("--out", default=str(HERE / "trail-last.json"), help="where the JSON results go")
    args = p.parse_args()
    if os.geteuid() != 0:
        sys.exit("trail bench: needs root: sudo .venv/bin/python bench/trail.py")
    if not shutil.which("iperf3"):
        sys.exit("trail bench: iperf3 is missing (apt-get install iperf3)")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    a, b = f"{PREFIX}{os.getpid()}a", f"{PREFIX}{os.getpid()}b"
    soak.PREFIX, soak.is_soak = PREFIX, is_ours
    soak.remove_stale()
    results = {(m, proto): [] for m in MODES for proto in ("tcp", "udp")}
    server = None
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
        for _ in range(args.rounds):
            for mode, expr in MODES.items():
                tracer = None
                if expr is not None:
                    tracer = soak.Mode(mode, [soak.DROPTRACE, "trail", "--netns", a, "--netns", b, *expr],
                                       subprocess.DEVNULL)
                    if not tracer.ready.wait(60) or tracer.proc.poll() is not None:
                        sys.exit("trail bench: droptrace trail did not start: " + " | ".join(tracer.err))
                try:
                    for proto in ("tcp", "udp"):
                        results[(mode, proto)].append(iperf(a, dst, proto == "udp", args.seconds))
                finally:
                    if tracer is not None:
                        tracer.stop()
    finally:
        if server is not None:
            server.kill()
            server.wait()
        for ns in (a, b):
            subprocess.run(["ip", "netns", "del", ns], check=False, stderr=subprocess.DEVNULL)
    table = []
    for proto in ("tcp", "udp"):
        base = statistics.median(results[("untraced", proto)])
        for mode in MODES:
            med = statistics.median(results[(mode, proto)])
            goal = GOALS.get(mode)
            table.append(dict(proto=proto, mode=mode, gbit_s=round(med / 1e9, 3), ratio=round(med / base, 3),
                              goal=goal, met=None if goal is None else med / base >= goal,
                              runs_gbit_s=[round(x / 1e9, 3) for x in results[(mode, proto)]]))
    Path(args.out).write_text(json.dumps(dict(date=time.strftime("%Y-%m-%d %H:%M:%S"),
                                              kernel=os.uname().release, cpus=os.cpu_count(),
                                              seconds=args.seconds, rounds=args.rounds, rows=table),
                                         indent=1) + "\n")
    print(f"# Trail: iperf3 A -> B over veth, {args.rounds} rounds of {args.seconds:g} s, medians, "
          f"kernel {os.uname().release}\n\n| protocol | mode | Gbit/s | ratio to untraced | goal |\n"
          "|---|---|---|---|---|")
    for r in table:
        goal = "" if r["goal"] is None else f">= {r['goal']}: {'met' if r['met'] else 'MISSED'}"
        print(f"| {r['proto']} | {r['mode']} | {r['gbit_s']} | {r['ratio']} | {goal} |")
    print(f"\nJSON: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
