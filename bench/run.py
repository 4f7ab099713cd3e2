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
        "droptrace exporter": dict(cmd=[DROPTRACE, "exporter", "--listen", "127.0.0.1:0", "--netns", inode],
                                   ready="Tracing", count=None),
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


def run_one(name: str, cfg: Optional[dict], ns: str, seconds: float, sender: str, dst: str,
            pace: float = 0.0) -> dict:
    res: dict = {"config": name, "pace": pace}
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
                            str(HERE / "flood.py"), str(seconds), dst, str(pace)], capture_output=True,
                           text=True, check=True)
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
        n = lost = 0
        with open(cfg["stdout"], errors="replace") as f:
            for line in f:  # bpftrace reports its lost events on stdout too
                if line.startswith("drop "):
                    n += 1
                m = re.search(r"Lost (\d+) events", line)
                lost += int(m.group(1)) if m else 0
        lost += sum(int(x) for x in re.findall(r"Lost (\d+) events", stderr))
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


TARGETS = """
## Why the figures are what they are

- **The floor.** `bpftrace count()` attaches a program to the same tracepoint that does nothing
  but count. Its ratio is the cost of having any BPF program on `skb:kfree_skb` here: the flood's
  drop path is only a microsecond or two long (a UDP datagram to a closed port over loopback, in
  the sender's own softirq), so the tracepoint's fixed cost is a visible share of it. No tool on
  this hook can beat the floor; the same per-drop cost is a far smaller share of a real drop path.
- **top** counts in a BPF hash map and sends nothing per drop to user space: its ratio sits at the
  floor, and its counts are exact (captured / drops = 1.000).
- **The stream** sends every drop through the ring buffer to Python. User space reads the ring
  buffer straight from its memory (no per-event callback) and caches what it decodes per
  location/reason/interface/flow, so a storm costs an unpack and a format per event; that keeps up
  with a few hundred thousand events per second on one core. Above that the ring buffer fills and
  the excess is *lost, counted in the kernel and reported* (captured + lost = drops, exactly; the
  end-to-end suite checks it). At the full rate the reader runs flat out on the second core, so
  the stream's throughput ratio sits near the 0.85 target and moves by a few hundredths from run
  to run (between 0.84 and 0.90 in the runs made while writing this). `--rate-limit N` holds
  events back in the kernel instead, and `top` is the mode for storms.
- **Paced at 170k drops/s** the stream carries all but a small fraction of the events (the
  table gives the count); those were lost because the ring buffer was momentarily full, and are
  counted and reported like any other loss. `--ring-buffer` with more megabytes gives the reader more slack.
- **--stack** adds `bpf_get_stack()` in the drop path, which costs more than the rest of the
  program together, and 256 more bytes per event.
- **bpftrace** formats every event in its own user space process (printf with `ntop` and
  `kstack`), which is slower than the drop path itself; **perf record -g** writes every sample with
  its call graph to perf.data.
- **RSS**: Python itself is about 17 MB; the stream maps the 8 MiB ring buffer (its data pages
  mapped twice, as the kernel lays it out) and touches it as it reads, which is most of the rest.
  `--ring-buffer 4` lowers it, `--ring-buffer 64` absorbs longer bursts.
"""


def paced_section(results: List[dict]) -> List[str]:
    paced = [r for r in results if r.get("pace")]
    if not paced:
        return []
    pace = paced[0]["pace"]
    lines = ["", f"## A paced flood: {pace:,.0f} drops/s", "",
             "The same flood held to a fixed rate (the rate these targets were first written "
             "for), to show the stream at a rate it can carry in full.", "",
             "| configuration | drops/s | captured / drops | lost |", "|---|---|---|---|"]
    by: Dict[str, List[dict]] = {}
    for r in paced:
        by.setdefault(r["config"], []).append(r)
    for name, rs in by.items():
        drops = sum(r["drops"] for r in rs)
        cap = [r["captured"] for r in rs if r.get("captured") is not None]
        lost = sum(r.get("lost") or 0 for r in rs)
        lines.append(f"| {name} | {statistics.median(r['rate'] for r in rs):,.0f} | "
                     f"{fmt(sum(cap) / drops if cap and drops else None, '.3f')} | "
                     f"{lost if name != 'untraced' else '-'} |")
    return lines


def report(results: List[dict], seconds: float, rounds: int, path: str) -> str:
    by: Dict[str, List[dict]] = {}
    paced = paced_section(results)
    for r in results:
        if not r.get("pace"):
            by.setdefault(r["config"], []).append(r)
    base = statistics.median(r["rate"] for r in by["untraced"])
    lines = [
        "# Benchmarks", "",
        "Regenerate with `sudo .venv/bin/python bench/run.py` (root; about five minutes). "
        f"This run: {time.strftime('%Y-%m-%d')}, kernel "
        f"{os.uname().release}, {os.cpu_count()} CPUs. A UDP flood to a closed port "
        f"({FLOODS[path]}; bench/flood.py, pinned to CPU 0) for {seconds:g} s, {rounds} rounds, "
        "configurations alternating in each round (order rotated). Medians over rounds; throughput "
        "as a ratio to the untraced median of the same run. Drops are the kernel's own count "
        "(NoPorts). captured + lost is what the tracer accounted for, out of the drops.", "",
        "| configuration | drops/s | ratio to untraced | captured / drops | lost | tracer CPU s | "
        "peak RSS MB | start to attached s |",
        "|---|---|---|---|---|---|---|---|"]
    summary: Dict[str, dict] = {}
    for name, rs in by.items():
        rate = statistics.median(r["rate"] for r in rs)
        drops = sum(r["drops"] for r in rs)
        captured = [r.get("captured") for r in rs if r.get("captured") is not None]
        cap = sum(captured) / drops if captured and drops else None
        lost = sum(r.get("lost") or 0 for r in rs) if name != "untraced" else None

        def med(key: str, rs: List[dict] = rs):
            vals = [r[key] for r in rs if r.get(key) is not None]
            return statistics.median(vals) if vals else None
        summary[name] = dict(ratio=rate / base, cap=cap, lost=lost, rss=med("rss_mb"),
                             attach=med("attach_s"), rate=rate)
        lines.append(f"| {name} | {rate:,.0f} | {rate / base:.3f} | {fmt(cap, '.3f')} | "
                     f"{fmt(lost, ',')} | {fmt(med('cpu_s'), '.2f')} | {fmt(med('rss_mb'), '.1f')} | "
                     f"{fmt(med('attach_s'), '.3f')} |")
    lines += ["", "## Targets", "", "| target | measured | |", "|---|---|---|"]

    def target(text: str, value, ok: bool, miss: str = "") -> None:
        lines.append(f"| {text} | {value} | {'met' if ok else 'missed' + (': ' + miss if miss else '')} |")
    top, stream = summary.get("droptrace top"), summary.get("droptrace --json")
    floor, bt = summary.get("bpftrace count() (floor)"), summary.get("bpftrace script")
    if top:
        target("top >= 0.97 of untraced", f"{top['ratio']:.3f}", top["ratio"] >= 0.97,
               f"by {0.97 - top['ratio']:.3f}" + (f"; the floor is {floor['ratio']:.3f}" if floor else ""))
        target("top counts exact", f"{fmt(top['cap'], '.3f')}", top["cap"] == 1.0)
    if stream:
        target("stream (no stack) >= 0.85 of untraced", f"{stream['ratio']:.3f}", stream["ratio"] >= 0.85,
               f"by {0.85 - stream['ratio']:.3f}")
        target("stream: 0 events lost at the full flood rate", f"{stream['lost']:,} lost",
               stream["lost"] == 0, f"captured {fmt(stream['cap'], '.1%')} of "
               f"{stream['rate']:,.0f} drops/s; the rest counted as lost")
        if bt:
            target("stream >= 2x the bpftrace script's throughput",
                   f"{stream['rate'] / bt['rate']:.1f}x", stream["rate"] >= 2 * bt["rate"])
    ours = [v for k, v in summary.items() if k.startswith("droptrace")]
    if ours:
        attach = statistics.median(v["attach"] for v in ours if v["attach"] is not None)
        target("start to attached <= 0.5 s (median)", f"{attach:.3f} s", attach <= 0.5)
        rss = max(v["rss"] for v in ours if v["rss"] is not None)
        target("peak RSS <= 60 MB", f"{rss:.1f} MB (largest droptrace mode)", rss <= 60,
               f"by {rss - 60:.1f} MB: mostly the mapped ring buffer, see below")
    return "\n".join(lines + paced) + "\n" + TARGETS


FLOODS = {"loopback": "over loopback inside one private namespace",
          "veth": "from one private namespace to another over a veth pair"}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--only", action="append", help="run only these configurations (and untraced)")
    p.add_argument("--path", choices=list(FLOODS), default="loopback", help="where the flood goes")
    p.add_argument("--pace", type=float, default=170000,
                   help="also run the stream against a flood paced to this rate (0: skip)")
    p.add_argument("--out", default=str(ROOT / "BENCHMARKS.md"), help="where the report goes")
    p.add_argument("--from-log", metavar="FILE",
                   help="rebuild the report from the JSON lines a previous run printed")
    args = p.parse_args()
    if args.from_log:
        with open(args.from_log) as f:
            results = [json.loads(line) for line in f if line.startswith("{")]
        Path(args.out).write_text(report(results, args.seconds, args.rounds, args.path))
        return 0
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
            for _ in range(args.rounds if args.pace else 0):
                for name in ("untraced", "droptrace --json"):
                    r = run_one(name, cfgs[name], ns, args.seconds, sender, dst, args.pace)
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
