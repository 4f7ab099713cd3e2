"""Drop-storm benchmarks: `python bench/run.py` (as root) regenerates BENCHMARKS.md's first part.

Three floods, each in private network namespaces, each run with no tracer and
under every tracer in turn, alternating in rounds (order rotated) so every
figure is a ratio to an untraced baseline of the same run:

  pinned  bench/flood.py (Python sendto) to a closed port over loopback, pinned
          to CPU 0: NO_SOCKET in the sender's own softirq, the shortest drop path.
  mmsg    bench/flood_mmsg.c (sendmmsg, 64 a call), same closed port, not pinned:
          as a new user would write a flood.
  nft     the same sender from namespace A over a veth pair into namespace B,
          where an nft rule drops it (NETFILTER_DROP): a longer, realistic path.

Drops are the kernel's own count (NoPorts of /proc/net/snmp, or the nft rule's
counter); CPU time and peak RSS are the tracer's own (wait4 rusage). Stream and
record output go to /dev/null and a tmpfs file: their readers are not measured.
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
# BENCH_DROPTRACE: another droptrace to measure (a wrapper, another checkout)
DROPTRACE = os.environ.get("BENCH_DROPTRACE") or str(Path(sys.executable).parent / "droptrace")
BEGIN, END = "<!-- bench/run.py: begin -->", "<!-- bench/run.py: end -->"


def sh(*cmd: str) -> str:
    return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout


class Flood:
    """A drop flood in namespaces of its own: set up, run once, count the kernel's drops."""

    name = ""
    about = ""

    def __init__(self, tag: str, sender_bin: str) -> None:
        self.ns = f"dtb{tag}{os.getpid()}"  # where the drops happen (the tracer's --netns)
        self.sender_ns = self.ns
        self.dst = "127.0.0.1"
        self.sender_bin = sender_bin
        self.created: List[str] = []

    def add_ns(self, name: str) -> None:
        sh("ip", "netns", "add", name)
        self.created.append(name)
        sh("ip", "-n", name, "link", "set", "lo", "up")

    def setup(self) -> None:
        self.add_ns(self.ns)

    def teardown(self) -> None:
        for n in self.created:
            subprocess.run(["ip", "netns", "del", n], check=False)

    def drops(self) -> int:
        out = sh("ip", "netns", "exec", self.ns, "cat", "/proc/net/snmp")
        rows = [ln.split() for ln in out.splitlines() if ln.startswith("Udp:")]
        return int(rows[1][rows[0].index("NoPorts")])

    def sender(self, seconds: float, pace: float) -> List[str]:
        return ["ip", "netns", "exec", self.sender_ns, self.sender_bin, str(seconds), self.dst]


class PinnedFlood(Flood):
    name = "pinned"
    about = ("a UDP flood to a closed port over loopback inside one private namespace (bench/flood.py, "
             "Python `sendto`, pinned to CPU 0)")

    def sender(self, seconds: float, pace: float) -> List[str]:
        return ["ip", "netns", "exec", self.sender_ns, "taskset", "-c", "0", sys.executable,
                str(HERE / "flood.py"), str(seconds), self.dst, str(pace)]


class MmsgFlood(Flood):
    name = "mmsg"
    about = ("the same closed port, sent by a C program with `sendmmsg` (64 datagrams a call; "
             "bench/flood_mmsg.c), not pinned")


class NftFlood(Flood):
    name = "nft"
    about = ("the `sendmmsg` sender in namespace A, over a veth pair into namespace B, where an nft "
             "input rule drops every datagram (NETFILTER_DROP; counted by the rule's counter)")

    def setup(self) -> None:
        self.add_ns(self.ns)
        self.sender_ns = self.ns + "a"
        self.add_ns(self.sender_ns)
        self.dst = "198.18.9.2"
        a, b = self.sender_ns, self.ns
        for cmd in (["ip", "link", "add", "dtb0", "netns", a, "type", "veth", "peer", "name", "dtb1",
                     "netns", b],
                    ["ip", "-n", a, "addr", "add", "198.18.9.1/24", "dev", "dtb0"],
                    ["ip", "-n", b, "addr", "add", self.dst + "/24", "dev", "dtb1"],
                    ["ip", "-n", b, "link", "set", "dtb1", "address", "02:d7:00:00:09:02"],
                    ["ip", "-n", a, "link", "set", "dtb0", "up"],
                    ["ip", "-n", b, "link", "set", "dtb1", "up"],
                    ["ip", "-n", a, "neigh", "replace", self.dst, "lladdr", "02:d7:00:00:09:02", "dev",
                     "dtb0", "nud", "permanent"],
                    ["ip", "netns", "exec", b, "nft", "add table inet dtbench; add chain inet dtbench in "
                     "{ type filter hook input priority 0; }; add rule inet dtbench in udp dport 9 "
                     "counter drop"]):
            sh(*cmd)

    def drops(self) -> int:
        out = json.loads(sh("ip", "netns", "exec", self.ns, "nft", "-j", "list", "table", "inet",
                            "dtbench"))
        for item in out["nftables"]:
            for expr in item.get("rule", {}).get("expr", []):
                if "counter" in expr:
                    return int(expr["counter"]["packets"])
        raise RuntimeError("bench: the nft rule's counter is missing")


FLOODS: Dict[str, type] = {f.name: f for f in (PinnedFlood, MmsgFlood, NftFlood)}


def build_sender(tmp: str) -> str:
    out = os.path.join(tmp, "flood_mmsg")
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang-19")
    if not cc:
        sys.exit("bench: no C compiler for bench/flood_mmsg.c")
    subprocess.run([cc, "-O2", "-o", out, str(HERE / "flood_mmsg.c")], check=True)
    return out


def configs(inode: str, tmp: str) -> Dict[str, Optional[dict]]:
    """Every configuration, by the name the report gives it. stdout: where its output goes."""
    dn = os.devnull
    shm = tempfile.mkdtemp(prefix="dtbench", dir="/dev/shm" if os.path.isdir("/dev/shm") else tmp)
    c: Dict[str, Optional[dict]] = {
        "untraced": None,
        "droptrace top": dict(cmd=[DROPTRACE, "top", "--json", "--netns", inode], ready="Tracing",
                              count="top"),
        "droptrace top --group flow": dict(cmd=[DROPTRACE, "top", "--json", "--group", "flow",
                                                "--netns", inode], ready="Tracing", count="top"),
        "droptrace exporter": dict(cmd=[DROPTRACE, "exporter", "--listen", "127.0.0.1:0", "--netns", inode],
                                   ready="Tracing", count=None),
        "droptrace trail": dict(cmd=[DROPTRACE, "trail", "--netns", inode], ready="Tracing", count=None,
                                stdout=dn),
        "droptrace (text)": dict(cmd=[DROPTRACE, "--netns", inode], ready="Tracing", count="summary",
                                 stdout=dn),
        "droptrace --json": dict(cmd=[DROPTRACE, "--json", "--netns", inode], ready="Tracing",
                                 count="summary", stdout=dn),
        "droptrace --json --stack": dict(cmd=[DROPTRACE, "--json", "--stack", "--netns", inode],
                                         ready="Tracing", count="summary", stdout=dn),
        "droptrace record (pcapng)": dict(cmd=[DROPTRACE, "record", "-w", os.path.join(shm, "r.pcapng"),
                                               "--netns", inode], ready="Tracing", count="record",
                                          stdout=dn, remove=os.path.join(shm, "r.pcapng")),
        "droptrace record (JSON lines)": dict(cmd=[DROPTRACE, "record", "-w", os.path.join(shm, "r.jsonl"),
                                                   "--netns", inode], ready="Tracing", count="record",
                                              stdout=dn, remove=os.path.join(shm, "r.jsonl")),
    }
    if shutil.which("bpftrace"):
        c["bpftrace count() (floor)"] = dict(cmd=["bpftrace", str(HERE / "count.bt")],
                                             ready="Attaching", count="bpftrace-count",
                                             stdout=os.path.join(tmp, "bt-count.out"))
        c["bpftrace script"] = dict(cmd=["bpftrace", str(HERE / "classic.bt")], ready="Attaching",
                                    count="bpftrace", stdout=os.path.join(tmp, "bt.out"))
    if shutil.which("perf"):
        c["perf record -g"] = dict(cmd=["perf", "record", "-e", "skb:kfree_skb", "-g", "-o",
                                        os.path.join(tmp, "perf.data")], ready=None, count="perf",
                                   stdout=dn)
    return c


def start(cfg: dict, res: dict) -> tuple:
    """Start a tracer and wait until it says it is attached."""
    out = open(cfg["stdout"], "w") if cfg.get("stdout") else subprocess.PIPE
    t0 = time.monotonic()
    proc = subprocess.Popen(cfg["cmd"], stdout=out, stderr=subprocess.PIPE, text=True)
    ready = threading.Event()
    err_lines: List[str] = []
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
                stdout_chunks.append(chunk)
    threads = [threading.Thread(target=read_err, daemon=True), threading.Thread(target=read_out, daemon=True)]
    for t in threads:
        t.start()
    if cfg["ready"] and cfg.get("stdout") and cfg["stdout"] != os.devnull:  # bpftrace: on stdout
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            with open(cfg["stdout"], errors="replace") as f:
                if cfg["ready"] in f.read():
                    res["attach_s"] = time.monotonic() - t0
                    break
            time.sleep(0.01)  # bpftrace's readiness line goes to a file: polled
    elif cfg["ready"]:
        ready.wait(60)
    else:
        time.sleep(2.0)  # perf record prints no readiness line
    return proc, threads, err_lines, stdout_chunks


def programs() -> List[dict]:
    """Every loaded BPF program as `bpftool -j prog show` describes it (with run_cnt and
    run_time_ns while kernel.bpf_stats_enabled is on)."""
    out = subprocess.run(["bpftool", "-j", "prog", "show"], capture_output=True, text=True).stdout
    try:
        return json.loads(out or "[]")
    except ValueError:
        return []


def prog_stats() -> Dict[int, tuple]:
    """Every loaded BPF program's run count and run time, by id."""
    return {p["id"]: (p.get("run_cnt", 0), p.get("run_time_ns", 0)) for p in programs()}


def bpf_ns_per_run(old: Dict[int, tuple], s0: Dict[int, tuple], s1: Dict[int, tuple]) -> Optional[float]:
    """The tracer's own programs (loaded since `old`): their run time per run during the flood."""
    runs = ns = 0
    for pid, (cnt, t) in s1.items():
        if pid not in old:
            c0, t0 = s0.get(pid, (0, 0))
            runs, ns = runs + cnt - c0, ns + t - t0
    return ns / runs if runs else None


def run_one(flood: Flood, name: str, cfg: Optional[dict], seconds: float, pace: float = 0.0) -> dict:
    res: dict = {"flood": flood.name, "config": name, "pace": pace}
    proc = None
    old = prog_stats()
    if cfg:
        proc, threads, err_lines, stdout_chunks = start(cfg, res)
        if proc.poll() is not None:
            res["error"] = "".join(err_lines)[-500:]
            return res
    s0 = prog_stats()
    before = flood.drops()
    sent = subprocess.run(flood.sender(seconds, pace), capture_output=True, text=True, check=True)
    drops = flood.drops() - before
    res["bpf_ns"] = bpf_ns_per_run(old, s0, prog_stats()) if cfg else None
    res.update(drops=drops, rate=drops / seconds, sent=int(sent.stdout.strip()))
    if proc:
        time.sleep(0.5)  # let the reader drain what is queued before it is told to stop
        proc.send_signal(signal.SIGINT)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        for t in threads:
            t.join(30)
        res["cpu_s"] = usage.ru_utime + usage.ru_stime
        res["rss_mb"] = usage.ru_maxrss / 1024
        res.update(captured_lost(cfg, "".join(err_lines), "".join(stdout_chunks)))
        if cfg.get("remove"):
            res["file_mb"] = os.path.getsize(cfg["remove"]) / 1e6 if os.path.exists(cfg["remove"]) else None
            Path(cfg["remove"]).unlink(missing_ok=True)
    return res


def captured_lost(cfg: dict, stderr: str, stdout: str) -> dict:
    kind = cfg["count"]
    if kind in ("summary", "record"):
        m = re.search(r"(\d+) drops (?:shown|written)\b.*?, (\d+) lost", stderr)
        return {"captured": int(m.group(1)), "lost": int(m.group(2))} if m else {}
    if kind == "top":
        try:
            d = json.loads(stdout)
            return {"captured": d["total"], "lost": d["lost"]}
        except (ValueError, KeyError):
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


FLOOR = "bpftrace count() (floor)"
WRITERS = ("droptrace --json", "droptrace (text)", "droptrace record (pcapng)",
           "droptrace record (JSON lines)")
# Issue 27's goals: median seconds from start to the `Tracing` line.
READY = {"droptrace --json": 0.25, "droptrace (text)": 0.25, "droptrace record (pcapng)": 0.25,
         "droptrace record (JSON lines)": 0.25, "droptrace top": 0.25, "droptrace top --group flow": 0.25,
         "droptrace exporter": 0.4, "droptrace trail": 0.6}


def summarise(rs: List[dict], base: float) -> dict:
    rate = statistics.median(r["rate"] for r in rs)
    drops = sum(r["drops"] for r in rs)
    captured = [r["captured"] for r in rs if r.get("captured") is not None]

    def med(key: str) -> Optional[float]:
        vals = [r[key] for r in rs if r.get(key) is not None]
        return statistics.median(vals) if vals else None
    return dict(rate=rate, ratio=rate / base, cap=sum(captured) / drops if captured and drops else None,
                lost=sum(r["lost"] for r in rs if r.get("lost") is not None)
                if any(r.get("lost") is not None for r in rs) else None, cpu=med("cpu_s"), rss=med("rss_mb"),
                bpf=med("bpf_ns"), attach=med("attach_s"), n=len(rs))


def flood_section(flood: str, results: List[dict], seconds: float, rounds: int) -> List[str]:
    by: Dict[str, List[dict]] = {}
    for r in results:
        if r["flood"] == flood and not r.get("pace") and "rate" in r:
            by.setdefault(r["config"], []).append(r)
    if "untraced" not in by:
        return []
    base = statistics.median(r["rate"] for r in by["untraced"])
    s = {name: summarise(rs, base) for name, rs in by.items()}
    floor = s.get(FLOOR)
    lines = [f"### Flood `{flood}`: {FLOODS[flood].about}", "",
             f"{seconds:g} s a run, {rounds} rounds. Untraced: {base:,.0f} drops/s.", "",
             "| configuration | drops/s | ratio to untraced | ratio to the floor | BPF ns per drop | "
             "captured / drops | lost | tracer CPU s | peak RSS MB | start to attached s |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name, v in s.items():
        lost = "-" if v["lost"] is None else f"{v['lost']:,}"
        to_floor = fmt(v["ratio"] / floor["ratio"], ".3f") if floor and name != "untraced" else "-"
        lines.append(f"| {name} | {v['rate']:,.0f} | {v['ratio']:.3f} | {to_floor} | "
                     f"{fmt(v['bpf'], '.0f')} | {fmt(v['cap'], '.3f')} | {lost} | {fmt(v['cpu'], '.2f')} | "
                     f"{fmt(v['rss'], '.1f')} | {fmt(v['attach'], '.3f')} |")
    lines += ["", "| target | measured | |", "|---|---|---|"]

    def target(text: str, value: str, ok: bool) -> None:
        lines.append(f"| {text} | {value} | {'met' if ok else 'missed'} |")
    for name in ("droptrace top", "droptrace exporter"):
        if floor and name in s:
            r = s[name]["ratio"] / floor["ratio"]
            target(f"{name} >= 0.97 of the floor", f"{r:.3f}", r >= 0.97)
    for name in WRITERS:
        if name in s:
            v = s[name]
            # captured above the kernel's count: a drop besides the flood's in the namespace, none lost
            every = v["lost"] == 0 and v["cap"] >= 1.0
            target(f"{name}: every drop written in every round", f"{v['rate']:,.0f} drops/s, ratio "
                   f"{v['ratio']:.3f}, {'none lost' if every else format(v['lost'], ',') + ' lost'} "
                   f"over {v['n']} rounds", every)
    for name, goal in READY.items():
        if name in s and s[name]["attach"] is not None:
            t = s[name]["attach"]
            target(f"{name}: ready (start to `Tracing`) in <= {goal} s, median", f"{t:.3f} s", t <= goal)
    return lines + [""]


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def report(results: List[dict], seconds: float, rounds: int) -> str:
    lines = [BEGIN, "",
             "Regenerate with `sudo .venv/bin/python bench/run.py` (root; about ten minutes; "
             "`--flood` and `--only` run parts). "
             f"This run: {time.strftime('%Y-%m-%d')}, kernel {os.uname().release}, {os.cpu_count()} CPUs "
             f"({cpu_model()}). "
             "Each flood runs with no tracer and under each configuration in turn, alternating in every "
             "round (order rotated); medians over rounds; throughput as a ratio to the untraced median "
             "of the same flood and run, and to the floor (a bare counter on the same tracepoint). "
             "Drops are the kernel's own count. captured + lost is what the tracer accounted for. "
             "Stream output goes to /dev/null, recordings to a tmpfs file. BPF ns per drop: the tracer's "
             "programs' own run time per run (`kernel.bpf_stats_enabled`, on for every configuration; "
             "bpftool), which flood noise does not move.", ""]
    for flood in FLOODS:
        lines += flood_section(flood, results, seconds, rounds)
    return "\n".join(lines + [END]) + "\n"


def write_report(text: str, path: str) -> None:
    """Replace the generated part of BENCHMARKS.md, keeping the sections written by hand."""
    p = Path(path)
    old = p.read_text() if p.exists() else ""
    if BEGIN in old and END in old:
        head, rest = old.split(BEGIN, 1)
        text = head + text.rstrip("\n") + rest.split(END, 1)[1]
    elif old:
        text = old.rstrip("\n") + "\n\n" + text
    p.write_text(text)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--flood", action="append", choices=list(FLOODS), help="run only these floods")
    p.add_argument("--only", action="append", help="run only these configurations (and untraced)")
    p.add_argument("--out", default=str(ROOT / "BENCHMARKS.md"), help="where the report goes")
    p.add_argument("--log", default=str(HERE / "last-run.jsonl"), help="where each run's JSON line goes")
    p.add_argument("--from-log", metavar="FILE", help="rebuild the report from a previous run's log")
    args = p.parse_args()
    if args.from_log:
        with open(args.from_log) as f:
            results = [json.loads(line) for line in f if line.startswith("{")]
        write_report(report(results, args.seconds, args.rounds), args.out)
        return 0
    if os.geteuid() != 0:
        sys.exit("bench: needs root")
    stats = Path("/proc/sys/kernel/bpf_stats_enabled")
    was = stats.read_text().strip()
    stats.write_text("1")  # run time per program; costs every traced configuration the same
    try:
        return bench(args)
    finally:
        stats.write_text(was)


def bench(args: argparse.Namespace) -> int:
    results: List[dict] = []
    with tempfile.TemporaryDirectory() as tmp, open(args.log, "w") as log:
        sender = build_sender(tmp)
        for fname in args.flood or list(FLOODS):
            flood: Flood = FLOODS[fname](fname[:1], sender)
            try:
                flood.setup()
                inode = str(os.stat(f"/run/netns/{flood.ns}").st_ino)
                cfgs = configs(inode, tmp)
                names = [n for n in cfgs if n == "untraced" or not args.only or n in args.only]
                for rnd in range(args.rounds):
                    order = names[rnd % len(names):] + names[:rnd % len(names)]
                    for name in order:
                        r = run_one(flood, name, cfgs[name], args.seconds)
                        print(json.dumps(r), flush=True)
                        log.write(json.dumps(r) + "\n")
                        results.append(r)
            finally:
                flood.teardown()
    text = report(results, args.seconds, args.rounds)
    write_report(text, args.out)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
