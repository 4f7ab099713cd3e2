"""Soak benchmark: does droptrace's memory stay flat under a long, steady drop flood?

`sudo .venv/bin/python bench/soak.py [--minutes 10] [--rate 20000] [--out bench/soak-last.json]`

Two private network namespaces joined by a veth pair; bench/flood.py in A sends UDP datagrams
paced to --rate per second to a closed port in B, where the kernel drops each one (NO_SOCKET).
Three droptrace modes trace B's namespace at the same time: the stream (`--json`, to /dev/null),
`top --json` and `record` (pcapng). Every 10 s the script samples each one's VmRSS. A tracer that
runs for days must not grow: the goal is < 1 MB of RSS growth per mode after warm-up (the first
sample at or after 60 s; the 2nd sample on shorter runs). It also reports how many drops each mode
showed and lost, and the drop rate the kernel itself counted (/proc/net/snmp Udp NoPorts in B).
"""
from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import List, Optional

HERE = Path(__file__).resolve().parent
DROPTRACE = str(Path(sys.executable).parent / "droptrace")
PREFIX = "dtsoak"
SAMPLE_S, WARMUP_S, GOAL_MB = 10.0, 60.0, 1.0
DST_MAC = "02:d7:00:00:0a:02"


def no_ports(ns: str) -> int:
    out = subprocess.run(["ip", "netns", "exec", ns, "cat", "/proc/net/snmp"], capture_output=True,
                         text=True, check=True).stdout
    rows = [ln.split() for ln in out.splitlines() if ln.startswith("Udp:")]
    return int(rows[1][rows[0].index("NoPorts")])


def rss_mb(pid: int) -> Optional[float]:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None  # gone (or a zombie)


def is_soak(pid: int) -> bool:
    try:
        return b"soak.py" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def remove_stale() -> None:
    """Namespaces left by an earlier run that was killed before it could clean up."""
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    for name in (ln.split()[0] for ln in out.splitlines() if ln.strip()):
        m = re.fullmatch(PREFIX + r"(\d+)[ab]", name)
        if m and (m.group(1) == str(os.getpid()) or not is_soak(int(m.group(1)))):
            print(f"soak: removing stale namespace {name}", file=sys.stderr)
            subprocess.run(["ip", "netns", "del", name], check=False)


def build_lab(a: str, b: str) -> str:
    dst = "198.18.10.2"
    for cmd in (["ip", "netns", "add", a], ["ip", "netns", "add", b],
                ["ip", "link", "add", a, "netns", a, "type", "veth", "peer", "name", b, "netns", b],
                ["ip", "-n", a, "addr", "add", "198.18.10.1/24", "dev", a],
                ["ip", "-n", b, "addr", "add", dst + "/24", "dev", b],
                ["ip", "-n", b, "link", "set", b, "address", DST_MAC],
                ["ip", "-n", a, "link", "set", a, "up"], ["ip", "-n", b, "link", "set", b, "up"],
                ["ip", "-n", b, "link", "set", "lo", "up"],
                ["ip", "-n", a, "neigh", "replace", dst, "lladdr", DST_MAC, "dev", a, "nud", "permanent"]):
        subprocess.run(cmd, check=True)
    return dst


class Mode:
    """One droptrace process: its stderr is drained by a thread, which flags the `Tracing` line."""

    def __init__(self, name: str, cmd: List[str], stdout) -> None:
        self.name, self.samples = name, []  # samples: (seconds since flood start, RSS MB)
        self.ready, self.err = threading.Event(), collections.deque(maxlen=50)
        self.proc = subprocess.Popen(cmd, stdout=stdout, stderr=subprocess.PIPE, text=True)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            self.err.append(line.rstrip("\n"))
            if "Tracing" in line:
                self.ready.set()
        self.ready.set()  # exited: don't keep the caller waiting

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            print(f"soak: {self.name} ignored SIGINT for 30 s; killing it", file=sys.stderr)
            self.proc.kill()
            self.proc.wait()

    def result(self) -> dict:
        s = self.samples  # never empty; warm-up ends at the first sample >= 60 s that is not the last
        warm = next((x for x in s[:-1] if x[0] >= WARMUP_S), s[min(1, len(s) - 1)])
        rss = [r for _, r in s if r is not None]
        res = dict(mode=self.name, rss_warm_mb=warm[1], rss_end_mb=s[-1][1], warm_at_s=warm[0],
                   growth_mb=None if None in (warm[1], s[-1][1]) else s[-1][1] - warm[1],
                   max_rss_mb=max(rss, default=None), exit=self.proc.returncode, samples=s,
                   stderr_tail=list(self.err)[-5:])
        ends = re.findall(r"droptrace: (\d+) drops (?:shown|written to .*?), (\d+) lost", "\n".join(self.err))
        if ends:
            res.update(shown=int(ends[-1][0]), lost=int(ends[-1][1]))
        return res


def fmt(x, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=10.0, help="how long the flood runs (default 10)")
    p.add_argument("--rate", type=float, default=20000, help="datagrams (drops) per second (default 20000)")
    p.add_argument("--out", default=str(HERE / "soak-last.json"), help="where the JSON results go")
    args = p.parse_args()
    if os.geteuid() != 0:
        sys.exit("soak: needs root (network namespaces and BPF): sudo .venv/bin/python bench/soak.py")
    if not os.access(DROPTRACE, os.X_OK):
        sys.exit(f"soak: {DROPTRACE} is missing: install droptrace in this venv (pip install -e .)")
    v = subprocess.run([DROPTRACE, "--version"], capture_output=True, text=True, timeout=60)
    if v.returncode:
        sys.exit(f"soak: `droptrace --version` fails: {(v.stderr.strip().splitlines() or ['?'])[-1]}")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwind through the finally below
    seconds = args.minutes * 60
    a, b = f"{PREFIX}{os.getpid()}a", f"{PREFIX}{os.getpid()}b"
    remove_stale()
    modes: List[Mode] = []
    flood = None
    try:
        dst = build_lab(a, b)
        with tempfile.TemporaryDirectory(prefix="dtsoak") as tmp, contextlib.ExitStack() as stack:
            top_out = stack.enter_context(open(os.path.join(tmp, "top.json"), "w+"))
            pcap = os.path.join(tmp, "soak.pcapng")
            net = ["--netns", b]
            modes = [Mode("droptrace --json", [DROPTRACE, "--json", *net], subprocess.DEVNULL),
                     Mode("droptrace top --json", [DROPTRACE, "top", "-d", f"{seconds + 120:g}", "--json",
                                                   *net], top_out),
                     Mode("droptrace record", [DROPTRACE, "record", "-w", pcap, *net], subprocess.DEVNULL)]
            for m in modes:
                if not m.ready.wait(60) or m.proc.poll() is not None:
                    sys.exit(f"soak: {m.name} did not start: " + " | ".join(list(m.err)[-3:]))
            before, t0 = no_ports(b), time.monotonic()
            flood = subprocess.Popen(["ip", "netns", "exec", a, sys.executable, str(HERE / "flood.py"),
                                      f"{seconds:g}", dst, f"{args.rate:g}"], stdout=subprocess.PIPE,
                                     text=True)
            tick = 0  # RSS samples at 0, 10, 20 ... s and when the flood ends
            while True:
                now = time.monotonic() - t0
                if flood.poll() is not None or now >= tick * SAMPLE_S:
                    for m in modes:
                        m.samples.append((round(now, 1), rss_mb(m.proc.pid)))
                    tick += 1
                    if flood.poll() is not None:
                        break
                time.sleep(min(0.2, max(0.0, tick * SAMPLE_S - now)))
            elapsed, drops = time.monotonic() - t0, no_ports(b) - before
            sent = int(flood.stdout.read().strip() or 0)
            if flood.returncode:
                sys.exit(f"soak: bench/flood.py failed (exit {flood.returncode})")
            time.sleep(0.5)  # let the readers drain what is queued
            for m in modes:
                m.stop()
            results = [m.result() for m in modes]
            top_out.seek(0)
            with contextlib.suppress(ValueError, KeyError):  # top prints one JSON object at its end
                results[1].update({k: json.loads(top_out.read())[j] for k, j in (("shown", "total"),
                                                                               ("lost", "lost"))})
            pcap_mb = os.path.getsize(pcap) / 2**20 if os.path.exists(pcap) else None
    except KeyboardInterrupt:
        sys.exit("soak: interrupted; lab removed")
    finally:
        for proc in [m.proc for m in modes] + ([flood] if flood else []):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        for ns in (a, b):
            subprocess.run(["ip", "netns", "del", ns], check=False, stderr=subprocess.DEVNULL)
    out = dict(date=time.strftime("%Y-%m-%d %H:%M:%S"), kernel=os.uname().release, cpus=os.cpu_count(),
               minutes=args.minutes, target_rate=args.rate, sent=sent, drops=drops,
               drop_rate=drops / elapsed, pcapng_mb=pcap_mb, goal_growth_mb=GOAL_MB, modes=results)
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    print(f"# Soak: {args.minutes:g} min, {drops:,} drops at {drops / elapsed:,.0f}/s achieved "
          f"(target {args.rate:,.0f}/s, {sent:,} sent), kernel {os.uname().release}\n")
    print("| mode | RSS at warm-up MB | RSS at end MB | growth MB | max RSS MB | shown | lost | "
          f"growth < {GOAL_MB:g} MB |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        g = r["growth_mb"]
        print(f"| {r['mode']} | {fmt(r['rss_warm_mb'], '.1f')} (at {fmt(r['warm_at_s'], '.0f')} s) | "
              f"{fmt(r['rss_end_mb'], '.1f')} | {fmt(g, '+.2f')} | {fmt(r['max_rss_mb'], '.1f')} | "
              f"{fmt(r.get('shown'), ',')} | {fmt(r.get('lost'), ',')} | "
              f"{'-' if g is None else 'met' if g < GOAL_MB else 'MISSED'} |")
    print(f"\npcapng: {fmt(pcap_mb, '.1f')} MB. JSON: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
