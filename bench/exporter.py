"""Exporter benchmark (issue 10): how long a scrape takes with 2,000 series, and whether RSS stays flat
while new label sets keep appearing (a long-running exporter must stay bounded in both).

`sudo .venv/bin/python bench/exporter.py [--series 2000] [--minutes 5] [--out bench/exporter-last.json]`

bench/soak.py's lab (two namespaces, a veth pair); `droptrace exporter --labels reason,netns,dport
--max-series N+300` counts the drops in B. 1. Scrape time: A sends one UDP datagram to each of N closed
ports (1000, 1001, ...) in B, each dropped (NO_SOCKET) into its own series; once B's Udp NoPorts grew
by N, /metrics is scraped 30 times: wall time (median, p95), droptrace_scrape_duration_seconds, page
size, series count (must be N). 2. Churn: every 10 s for --minutes, 200 fresh ports (cycling through
1000..31999) get a datagram, so label sets keep appearing until --max-series folds them into `other`;
one scrape and one VmRSS sample per round: RSS after the first minute, at the end, the growth, the
series at the end and droptrace_folded_series_total. 3. Hostile clients (issue 25), with those N series:
--half-open connections (default 500) each send half a request head and wait; then --burst (default
100) scrapes start at once (a barrier): how many are answered, their wall times (median, p95, max),
the exporter's thread count while they wait; then 5 clients reset their connection before the
answer: the exporter's stderr lines about them (at most one, no traceback). `--skip-churn` runs 1 and
3 only (a minute).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Optional

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import soak  # noqa: E402 (bench/ is not a package)

PREFIX, SCRAPES, ROUND_S, BATCH, FIRST_PORT, END_PORT = "dtexp", 30, 10.0, 200, 1000, 32000
# --max-series is N plus this: room for the lab's background drops and the slots kept for each reason's
# `other` series (one per reason of the kernel: about 130 on 6.18).
HEADROOM = 300
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # 127.0.0.1, whatever http_proxy says
SENDER = ("import socket, sys, time\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
          "dst, first, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])\nfor i in range(n):\n"
          "    s.sendto(b'droptrace', (dst, first + i))\n"
          "    if i % 100 == 99:\n        time.sleep(0.002)  # stay well inside the veth backlog\n")


def send(a: str, b: str, dst: str, first: int, n: int) -> None:
    """One datagram to each of ports first..first+n-1 in B; returns once B's kernel counted them all."""
    before = soak.no_ports(b)
    subprocess.run(["ip", "netns", "exec", a, sys.executable, "-c", SENDER, dst, str(first), str(n)],
                   check=True)
    deadline = time.monotonic() + 30
    while (got := soak.no_ports(b) - before) < n:
        if time.monotonic() > deadline:
            sys.exit(f"exporter bench: sent {n} datagrams to ports {first}..{first + n - 1}, "
                     f"but B's Udp NoPorts grew by {got} only")
        time.sleep(0.1)


def is_ours(pid: int) -> bool:
    try:
        return b"exporter.py" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def scrape(url: str) -> tuple:
    """(wall time in ms, the page)"""
    t = time.perf_counter()
    with NO_PROXY.open(url, timeout=60) as r:
        body = r.read()
    return round((time.perf_counter() - t) * 1000, 2), body.decode()


def value(page: str, name: str) -> Optional[float]:
    m = re.search(rf"^{name} (\S+)$", page, re.M)
    return float(m.group(1)) if m else None


def series(page: str) -> int:
    return len(re.findall(r"^droptrace_drops_total\{", page, re.M))


def portless(page: str) -> list:
    """Label sets without a numeric port: the lab's own background drops, and `other` once folding."""
    return [ln.rsplit(" ", 1)[0] for ln in page.splitlines()
            if ln.startswith("droptrace_drops_total{") and not re.search(r'dport="\d+"', ln)]


def threads(pid: int) -> Optional[int]:
    try:
        return int(re.search(r"^Threads:\s+(\d+)", Path(f"/proc/{pid}/status").read_text(), re.M).group(1))
    except (OSError, AttributeError):
        return None


def hostile(url: str, pid: int, err: list, half_open: int, burst: int) -> dict:
    """Phase 3: half-sent requests held open, a burst of concurrent scrapes, clients that reset."""
    host, port = re.match(r"http://([^:/]+):(\d+)/", url).groups()
    held = []
    for _ in range(half_open):
        c = socket.create_connection((host, int(port)), timeout=10)
        c.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
        held.append(c)
    while_held = threads(pid)
    barrier, walls, failures = threading.Barrier(burst), [], []

    def one() -> None:
        barrier.wait()
        try:
            walls.append(scrape(url)[0])
        except OSError as e:
            failures.append(type(e).__name__)
    pool = [threading.Thread(target=one) for _ in range(burst)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    lines_before = len(err)
    for _ in range(5):
        c = socket.create_connection((host, int(port)), timeout=10)
        c.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        c.close()
    scrape(url)  # answered after them too
    time.sleep(0.5)  # their lines, if any, reach the stderr reader
    for c in held:
        c.close()
    q = statistics.quantiles(walls, n=20) if len(walls) >= 2 else [None] * 19
    said = list(err)[lines_before:]
    return dict(half_open=half_open, burst=burst, answered=len(walls), failed=failures,
                median_ms=None if q[9] is None else round(q[9], 2),
                p95_ms=None if q[18] is None else round(q[18], 2), max_ms=max(walls, default=None),
                threads_while_held=while_held, reset_clients=5, lines_about_them=said,
                traceback="Traceback" in "\n".join(said))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--series", type=int, default=2000, help="distinct ports, hence series (default 2000)")
    p.add_argument("--minutes", type=float, default=5.0, help="how long the churn runs (default 5)")
    p.add_argument("--half-open", type=int, default=500, help="half-sent requests held open (default 500)")
    p.add_argument("--burst", type=int, default=100, help="concurrent scrapes (default 100)")
    p.add_argument("--droptrace", default=soak.DROPTRACE,
                   help="the droptrace command to measure (default: this venv's; e.g. an older checkout's)")
    p.add_argument("--skip-churn", action="store_true", help="only the scrape time and the hostile clients")
    p.add_argument("--out", default=str(HERE / "exporter-last.json"), help="where the JSON results go")
    args = p.parse_args()
    soak.DROPTRACE = args.droptrace
    if not 1 <= args.series <= END_PORT - FIRST_PORT:
        sys.exit(f"exporter bench: --series must be 1..{END_PORT - FIRST_PORT} (ports below 32768)")
    if os.geteuid() != 0:
        sys.exit("exporter bench: needs root (network namespaces and BPF): "
                 "sudo .venv/bin/python bench/exporter.py")
    if not os.access(soak.DROPTRACE, os.X_OK):
        sys.exit(f"exporter bench: {soak.DROPTRACE} is missing: install droptrace in this venv "
                 "(pip install -e .)")
    v = subprocess.run([soak.DROPTRACE, "--version"], capture_output=True, text=True, timeout=60)
    if v.returncode:
        why = (v.stderr.strip().splitlines() or ["?"])[-1]
        sys.exit(f"exporter bench: `droptrace --version` fails: {why}")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwind through the finally below
    n, a, b = args.series, f"{PREFIX}{os.getpid()}a", f"{PREFIX}{os.getpid()}b"
    soak.PREFIX, soak.is_soak = PREFIX, is_ours  # soak's clean-up, pointed at this script's namespaces
    soak.remove_stale()
    exp = None
    try:
        dst = soak.build_lab(a, b)
        exp = soak.Mode("droptrace exporter", [soak.DROPTRACE, "exporter", "--listen", "127.0.0.1:0",
                                               "--labels", "reason,netns,dport", "--max-series",
                                               str(n + HEADROOM), "--netns", b], subprocess.DEVNULL)
        port = exp.ready.wait(60) and exp.proc.poll() is None and re.search(
            r"metrics on http://127\.0\.0\.1:(\d+)/metrics", "\n".join(exp.err))
        if not port:
            sys.exit("exporter bench: the exporter did not start: " + " | ".join(list(exp.err)[-3:]))
        url = f"http://127.0.0.1:{port.group(1)}/metrics"
        send(a, b, dst, FIRST_PORT, n)
        walls, pages = zip(*(scrape(url) for _ in range(SCRAPES)))
        own = [value(pg, "droptrace_scrape_duration_seconds") for pg in pages]
        page, q = pages[-1], statistics.quantiles(walls, n=20)  # q[9]: the median, q[18]: p95
        first = dict(series=n, scrapes=SCRAPES, first_ms=walls[0], median_ms=round(q[9], 2),
                     p95_ms=round(q[18], 2), own_median_ms=None if None in own else round(
                         statistics.median(own) * 1000, 2),
                     page_kb=round(len(page.encode()) / 1024, 1), drops_series=series(page),
                     port_series=series(page) - len(portless(page)), portless=portless(page),
                     rss_mb=soak.rss_mb(exp.proc.pid))
        attack = hostile(url, exp.proc.pid, exp.err, args.half_open, args.burst)
        rounds, t0, i, sent = [], time.monotonic(), 0, 0
        while not args.skip_churn:
            now = time.monotonic() - t0
            last = now >= args.minutes * 60
            if not last:  # a fresh batch of ports, right after the ones of step 1
                start = FIRST_PORT + (n + i * BATCH) % (END_PORT - FIRST_PORT)
                send(a, b, dst, start, min(BATCH, END_PORT - start))
                sent += min(BATCH, END_PORT - start)
            wall, page = scrape(url)
            rss = soak.rss_mb(exp.proc.pid)
            exp.samples.append((round(now, 1), rss))  # soak's Mode.result() reads these
            rounds.append(dict(at_s=round(now, 1), scrape_ms=wall, series=series(page), rss_mb=rss,
                               folded=value(page, "droptrace_folded_series_total")))
            if last:
                break
            i += 1
            time.sleep(max(0.0, min(i * ROUND_S, args.minutes * 60) - (time.monotonic() - t0)))
        exp.stop()  # SIGINT
        r = exp.result() if rounds else None
        end = rounds[-1] if rounds else None
        churn = None if not rounds else dict(
                     minutes=args.minutes, rounds=len(rounds) - 1, ports_sent=sent, series_end=end["series"],
                     folded_end=end["folded"], scrape_ms_end=end["scrape_ms"], portless_end=portless(page),
                     kernel_folded=value(page, "droptrace_kernel_folded_flows_total"),
                     forgotten=value(page, "droptrace_forgotten_keys_total"), samples=rounds,
                     **{k: r[k] for k in ("rss_warm_mb", "warm_at_s", "rss_end_mb", "growth_mb", "max_rss_mb",
                                          "exit", "stderr_tail")})
    except KeyboardInterrupt:
        sys.exit("exporter bench: interrupted; lab removed")
    finally:
        if exp and exp.proc.poll() is None:
            exp.proc.kill()
            exp.proc.wait()
        for ns in (a, b):
            subprocess.run(["ip", "netns", "del", ns], check=False, stderr=subprocess.DEVNULL)
    out = dict(date=time.strftime("%Y-%m-%d %H:%M:%S"), kernel=os.uname().release, cpus=os.cpu_count(),
               max_series=n + HEADROOM, scrape=first, hostile=attack, churn=churn,
               exit=exp.proc.returncode)
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    f, c, h = first, churn, attack
    print(f"# Exporter: {n:,} series, {'no' if c is None else f'{args.minutes:g} min'} churn, kernel "
          f"{os.uname().release}, {os.cpu_count()} CPUs\n\n| measure | value |\n|---|---|")
    fmt = soak.fmt
    rows = [
            (f"scrape wall time: median / p95 of {SCRAPES} (first)",
             f"{f['median_ms']} / {f['p95_ms']} ms ({f['first_ms']} ms)"),
            ("droptrace_scrape_duration_seconds, median", f"{fmt(f['own_median_ms'], '')} ms"),
            ("page size", f"{f['page_kb']} KB"), ("RSS with these series", f"{fmt(f['rss_mb'], '.1f')} MB"),
            ("droptrace_drops_total series (with a port)", f"{f['drops_series']} ({f['port_series']}; "
             f"must be {n}: {'met' if f['port_series'] == n else 'MISSED'})"),
            (f"hostile: {h['burst']} concurrent scrapes under {h['half_open']} half-sent requests: answered",
             f"{h['answered']} of {h['burst']}" + (f" (failed: {', '.join(sorted(set(h['failed'])))})"
                                                   if h["failed"] else "")),
            ("hostile: their wall time, median / p95 / max",
             f"{fmt(h['median_ms'], '')} / {fmt(h['p95_ms'], '')} / {fmt(h['max_ms'], '')} ms"),
            ("hostile: exporter threads while the half-sent requests wait", fmt(h["threads_while_held"], "")),
            (f"hostile: stderr lines about {h['reset_clients']} clients that reset before their answer",
             f"{len(h['lines_about_them'])}" + (" (a traceback!)" if h["traceback"] else "")),
            ("exporter exit status after SIGINT", str(exp.proc.returncode))]
    for k, val in rows:
        print(f"| {k} | {val} |")
    if c is None:
        print(f"\nJSON: {args.out}")
        return 0
    for k, val in (
            (f"churn: rounds of {BATCH} new ports", f"{c['rounds']} ({c['ports_sent']:,} ports)"),
            (f"churn: RSS at {fmt(c['warm_at_s'], '.0f')} s / at end / growth",
             f"{fmt(c['rss_warm_mb'], '.1f')} / {fmt(c['rss_end_mb'], '.1f')} MB / "
             f"{fmt(c['growth_mb'], '+.2f')} MB (max {fmt(c['max_rss_mb'], '.1f')} MB)"),
            ("churn: series at end", f"{c['series_end']} (--max-series {n + HEADROOM})"),
            ("churn: droptrace_folded_series_total", fmt(c["folded_end"], ".0f")),
            ("churn: droptrace_kernel_folded_flows_total", fmt(c["kernel_folded"], ".0f")),
            ("churn: droptrace_forgotten_keys_total (idle kernel keys deleted)", fmt(c["forgotten"], ".0f")),
            ("churn: scrape wall time at end", f"{c['scrape_ms_end']} ms")):
        print(f"| {k} | {val} |")
    print(f"\nJSON: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
