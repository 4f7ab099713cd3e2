"""Drop-storm benchmarks: `python bench/run.py` (as root) regenerates BENCHMARKS.md.

A UDP flood to a closed port in a private namespace (bench/flood.py, pinned to
CPU 0) runs with no tracer and under each tracer in turn, alternating A/B in
rounds so every figure is a ratio to an untraced baseline of the same run.
Drops are counted by the kernel itself (/proc/net/snmp NoPorts of the bench
namespace); CPU time and peak RSS are the tracer's own (wait4 rusage).
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
import threading
import time
from pathlib import Path
from typing import Dict, List, Optional

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DROPTRACE = str(Path(sys.executable).parent / "droptrace")


def no_ports(ns: str) -> int:
    out = subprocess.run(["ip", "netns", "exec", ns, "cat", "/proc/net/snmp"], capture_output=True,
                         text=True, check=True).stdout
    rows = [ln.split() for ln in out.splitlines() if ln.startswith("Udp:")]
    return int(rows[1][rows[0].index("NoPorts")])


def configs(ns: str, tmp: str) -> Dict[str, Optional[dict]]:
    inode = str(os.stat(f"/run/netns/{ns}").st_ino)
    c: Dict[str, Optional[dict]] = {
        "untraced": None,
        "droptrace top": dict(cmd=[DROPTRACE, "top", "--json", "--netns", inode], ready="Tracing",
                              count="top"),
        "droptrace --json": dict(cmd=[DROPTRACE, "--json", "--netns", inode], ready="Tracing",
                                 count="summary"),
        "droptrace --json --stack": dict(cmd=[DROPTRACE, "--json", "--stack", "--netns", inode],
                                         ready="Tracing", count="summary"),
    }
    if shutil.which("bpftrace"):
        c["bpftrace script"] = dict(cmd=["bpftrace", str(HERE / "classic.bt")], ready="Attaching",
                                    count="bpftrace", stdout=os.path.join(tmp, "bt.out"))
        c["bpftrace count() (floor)"] = dict(cmd=["bpftrace", str(HERE / "count.bt")],
                                             ready="Attaching", count="bpftrace-count",
                                             stdout=os.path.join(tmp, "bt-count.out"))
    if shutil.which("perf"):
        c["perf record -g"] = dict(cmd=["perf", "record", "-e", "skb:kfree_skb", "-g", "-o",
                                        os.path.join(tmp, "perf.data")], ready=None, count="perf")
    return c


def run_one(name: str, cfg: Optional[dict], ns: str, seconds: float, sender: str, dst: str) -> dict:
    res: dict = {"config": name}
    proc = None
    err_lines: List[str] = []
    if cfg:
        out = open(cfg["stdout"], "w") if cfg.get("stdout") else subprocess.PIPE
        t0 = time.monotonic()
        proc = subprocess.Popen(cfg["cmd"], stdout=out, stderr=subprocess.PIPE, text=True)
        ready = threading.Event()
        stdout_chunks: List[str] = []

        def read_err() -> None:
            for line in proc.stderr:
                err_lines.append(line)
                if cfg["ready"] and cfg["ready"] in line:
                    res["attach_s"] = time.monotonic() - t0
                    ready.set()
            ready.set()

        def read_out() -> None:
            if proc.stdout:
                for chunk in iter(lambda: proc.stdout.read(1 << 16), ""):
                    if cfg["count"] == "top":
                        stdout_chunks.append(chunk)
        threads = [threading.Thread(target=read_err, daemon=True),
                   threading.Thread(target=read_out, daemon=True)]
        for t in threads:
            t.start()
        if cfg["ready"] and cfg.get("stdout"):  # bpftrace says "Attaching" on stdout
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                with open(cfg["stdout"], errors="replace") as f:
                    if cfg["ready"] in f.read():
                        res["attach_s"] = time.monotonic() - t0
                        break
                time.sleep(0.01)
        elif cfg["ready"]:
            ready.wait(60)
        else:
            time.sleep(2.0)  # perf record prints no readiness line
        res["_stdout"] = stdout_chunks
    before = no_ports(ns)
    flood = subprocess.run(["ip", "netns", "exec", sender, "taskset", "-c", "0", sys.executable,
                            str(HERE / "flood.py"), str(seconds), dst], capture_output=True, text=True,
                           check=True)
    drops = no_ports(ns) - before
    res.update(drops=drops, rate=drops / seconds, sent=int(flood.stdout.strip()))
    if proc:
        time.sleep(0.5)  # let the reader drain what is queued before it is told to stop
        proc.send_signal(signal.SIGINT)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        for t in threads:
            t.join(30)
        res["cpu_s"] = usage.ru_utime + usage.ru_stime
        res["rss_mb"] = usage.ru_maxrss / 1024
        res.update(captured_lost(cfg, "".join(err_lines), "".join(res.pop("_stdout"))))
    return res


def captured_lost(cfg: dict, stderr: str, stdout: str) -> dict:
    kind = cfg["count"]
    if kind == "summary":
        m = re.search(r"(\d+) drops shown, (\d+) lost", stderr)
        return {"captured": int(m.group(1)), "lost": int(m.group(2))} if m else {}
    if kind == "top":
        try:
            d = json.loads(stdout)
            return {"captured": d["total"], "lost": d["lost"]}
        except ValueError:
            return {}
    if kind == "bpftrace":
        with open(cfg["stdout"], errors="replace") as f:
            n = sum(1 for line in f if line.startswith("drop "))
        m = re.search(r"(\d+) events lost|Lost (\d+) events", stderr)
        lost = int(next(g for g in m.groups() if g)) if m else 0
        return {"captured": n, "lost": lost}
    if kind == "bpftrace-count":
        with open(cfg["stdout"], errors="replace") as f:
            m = re.search(r"@drops: (\d+)", f.read())
        return {"captured": int(m.group(1)) if m else None, "lost": 0}
    if kind == "perf":
        m = re.search(r"\((\d+) samples\)", stderr)
        lost = re.search(r"Processed \d+ events and lost (\d+) chunks", stderr)
        return {"captured": int(m.group(1)) if m else None, "lost": int(lost.group(1)) if lost else 0}
    return {}


def fmt(x, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def report(results: List[dict], seconds: float, rounds: int, path: str) -> str:
    by: Dict[str, List[dict]] = {}
    for r in results:
        by.setdefault(r["config"], []).append(r)
    base = statistics.median(r["rate"] for r in by["untraced"])
    lines = [
        "# Benchmarks", "",
        f"Generated by `sudo .venv/bin/python bench/run.py` on {time.strftime('%Y-%m-%d')}, kernel "
        f"{os.uname().release}, {os.cpu_count()} CPUs. A UDP flood to a closed port "
        f"({FLOODS[path]}; bench/flood.py, pinned to CPU 0) for {seconds:g} s, {rounds} rounds, "
        "configurations alternating in each round (order rotated). Medians over rounds; throughput "
        "as a ratio to the untraced median of the same run. Drops are the kernel's own count "
        "(NoPorts). captured + lost is what the tracer accounted for, out of the drops.", "",
        "| configuration | drops/s | ratio to untraced | captured / drops | lost | tracer CPU s | "
        "peak RSS MB | start to attached s |",
        "|---|---|---|---|---|---|---|---|"]
    for name, rs in by.items():
        rate = statistics.median(r["rate"] for r in rs)
        drops = sum(r["drops"] for r in rs)
        captured = [r.get("captured") for r in rs if r.get("captured") is not None]
        cap = f"{sum(captured) / drops:.3f}" if captured and drops else "-"
        lost = sum(r.get("lost") or 0 for r in rs) if name != "untraced" else None

        def med(key: str, rs: List[dict] = rs):
            vals = [r[key] for r in rs if r.get(key) is not None]
            return statistics.median(vals) if vals else None
        lines.append(f"| {name} | {rate:,.0f} | {rate / base:.3f} | {cap} | {fmt(lost, ',')} | "
                     f"{fmt(med('cpu_s'), '.2f')} | {fmt(med('rss_mb'), '.1f')} | "
                     f"{fmt(med('attach_s'), '.3f')} |")
    return "\n".join(lines) + "\n"


FLOODS = {"loopback": "over loopback inside one private namespace",
          "veth": "from one private namespace to another over a veth pair"}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--only", action="append", help="run only these configurations (and untraced)")
    p.add_argument("--path", choices=list(FLOODS), default="loopback", help="where the flood goes")
    p.add_argument("--out", default=str(ROOT / "bench" / "results.md"),
                   help="where the table goes (BENCHMARKS.md embeds it)")
    args = p.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench: needs root")
    ns = f"dtbench{os.getpid()}"
    sender, dst = ns, "127.0.0.1"
    created = [ns]
    results: List[dict] = []
    try:
        subprocess.run(["ip", "netns", "add", ns], check=True)
        subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
        if args.path == "veth":
            sender, dst = f"{ns}s", "198.18.9.2"
            subprocess.run(["ip", "netns", "add", sender], check=True)
            created.append(sender)
            for cmd in (["ip", "link", "add", "dtb0", "netns", sender, "type", "veth", "peer", "name",
                         "dtb1", "netns", ns],
                        ["ip", "-n", sender, "addr", "add", "198.18.9.1/24", "dev", "dtb0"],
                        ["ip", "-n", ns, "addr", "add", dst + "/24", "dev", "dtb1"],
                        ["ip", "-n", sender, "link", "set", "dtb0", "up"],
                        ["ip", "-n", ns, "link", "set", "dtb1", "up"],
                        ["ip", "-n", sender, "neigh", "replace", dst, "lladdr", "02:d7:00:00:09:02",
                         "dev", "dtb0", "nud", "permanent"],
                        ["ip", "-n", ns, "link", "set", "dtb1", "address", "02:d7:00:00:09:02"]):
                subprocess.run(cmd, check=True)
        with tempfile.TemporaryDirectory() as tmp:
            cfgs = configs(ns, tmp)
            names = [n for n in cfgs if n == "untraced" or not args.only or n in args.only]
            for rnd in range(args.rounds):
                order = names[rnd % len(names):] + names[:rnd % len(names)]
                for name in order:
                    r = run_one(name, cfgs[name], ns, args.seconds, sender, dst)
                    print(json.dumps(r), flush=True)
                    results.append(r)
    finally:
        for n in created:
            subprocess.run(["ip", "netns", "del", n], check=False)
    table = report(results, args.seconds, args.rounds, args.path)
    Path(args.out).write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
