"""`droptrace exporter`: always-on drop counters for Prometheus, counted in the kernel.

The BPF program counts drops in its hash map (the `top` aggregation); nothing
crosses to user space per drop. On each scrape the map is read and every
kernel key is turned into a label set, once: the assignment is sticky, so a
series only ever grows. --max-series bounds the label sets, the folded ones
included: a slot is kept for the `other` series of each reason the exporter can
count (labels other than `reason` read `other`, so `sum by (reason)` stays
exact), and one for a reason no list named (every label `other`); the ordinary
label sets get the rest, and new ones past that are folded.
"""
from __future__ import annotations

import argparse
import html
import platform
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any, Dict, FrozenSet, Iterator, List, Optional, Sequence, Tuple

from .. import __version__
from ..convert import describe_aggregate
from ..errors import UsageError
from ..features.counts.tracer import CountTracer
from ..web.config import FLAG as WEB_CONFIG_FLAG
from ..web.config import WebConfig
from ..web.config import load as load_web_config
from ..web.server import WebServer
from .common import Parser, add_trace_options, announce, arg, eprint, options, positive, stop_requested

LABELS = ("reason", "netns", "ifname", "location", "netns_name", "l3", "l4", "dport", "container", "pod_uid",
          "container_name", "pod", "pod_namespace")
DEFAULT_LABELS = ("reason", "netns", "ifname")
DEFAULT_LISTEN = "127.0.0.1:9587"
DEFAULT_MAX_SERIES = 2000
EPHEMERAL_FROM = 32768  # Linux's default ip_local_port_range starts here
FORGET_AFTER = 300.0  # seconds a kernel key may stay idle before it is deleted from the map
UPDATE_EVERY = 30.0  # read the map at least this often, scraped or not, so idle keys are forgotten
FLOW_LABELS = ("l4", "dport")  # these need the flow parsed in the kernel
ENRICHED = ("netns_name", "container", "pod_uid", "container_name", "pod", "pod_namespace")
OTHER = "other"


def label_list(text: str) -> Tuple[str, ...]:
    names = tuple(dict.fromkeys(p.strip() for p in text.split(",") if p.strip()))
    unknown = [n for n in names if n not in LABELS]
    if unknown:
        raise UsageError(f"--labels: unknown label {unknown[0]!r}; choose from {', '.join(LABELS)}")
    if not names:
        raise UsageError("--labels: no label given")
    return names


def port_number(text: str) -> int:
    """A TCP/UDP port: 1..65535."""
    if not text.strip().isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port (1..65535)")
    return int(text)


def listen_address(text: str) -> Tuple[str, int]:
    """ADDR:PORT, [V6ADDR]:PORT or :PORT (all addresses, said explicitly)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:  # 0: any free port
        raise UsageError(f"--listen {text!r}: expected ADDR:PORT, e.g. {DEFAULT_LISTEN}")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        socket.getaddrinfo(host or "0.0.0.0", int(port), type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)
    except socket.gaierror:
        raise UsageError(f"--listen {text!r}: {host!r} is not an IP address") from None
    return host or "0.0.0.0", int(port)


def reasons_counted(tracer: CountTracer) -> FrozenSet[str]:
    """The values the reason label can take for the drops this tracer counts (--reason,
    --exclude-reason): each may need its own folded series."""
    r, o = tracer.reasons, tracer.opts
    if not tracer.has_reason or r is None:
        return frozenset({""})
    if o.reasons:
        return frozenset(r.name(r.value(n)) for n in o.reasons)
    return frozenset(r.all_names().values()) - {r.name(r.value(n)) for n in o.exclude_reasons}


@dataclass
class KeyState:
    """One kernel key: its label set, its counts as last read, and when its count last moved."""

    labels: tuple
    count: int
    nbytes: int
    moved: float


class Series:
    """Kernel keys to label sets (sticky), and the cumulative count of each label set.

    Kernel keys idle for `forget_after` seconds are deleted from the map, their last counts folded into
    their label set first: under port or namespace churn the map and this object hold only the keys
    that are live, and the counters (per label set) never go backwards."""

    def __init__(self, tracer: CountTracer, labels: Sequence[str], max_series: int,
                 ephemeral_from: int = EPHEMERAL_FROM, enricher: Any = None,
                 forget_after: float = FORGET_AFTER) -> None:
        self.tracer = tracer
        self.labels = tuple(labels)
        self.max_series = max_series
        # Slots kept for folded label sets: one per reason that can be counted, one for the rest.
        self.fold_reasons = reasons_counted(tracer) if "reason" in self.labels else frozenset()
        self.ordinary_cap = max_series - len(self.fold_reasons) - 1
        if self.ordinary_cap < 1:
            kept = len(self.fold_reasons) + 1
            raise UsageError(f"--max-series {max_series} leaves no room: {kept} label sets are kept for "
                             f"the '{OTHER}' series of the {kept - 1} reasons counted and the rest; give "
                             f"more than {kept}, or fewer reasons (--reason)")
        self.ordinary = 0  # label sets that are not folded ones
        self.ephemeral_from = ephemeral_from
        self.enricher = enricher
        self.forget_after = forget_after
        flow = tracer.contract.const
        self.addrs_bit, self.ports_bit = flow["DT_FLOW_ADDRS"], flow["DT_FLOW_PORTS"]
        self.keys: Dict[bytes, KeyState] = {}  # by raw kernel key
        self.totals: Dict[tuple, List[int]] = {}  # label values -> [count, bytes]
        self.folded = 0  # label sets folded into `other`
        self.forgotten = 0  # kernel keys deleted once idle
        self.last_update = time.monotonic()
        self.lock = threading.Lock()

    def _values(self, key: Dict[str, Any], ifname: str) -> tuple:
        t = self.tracer
        d = describe_aggregate(key, ifname, t.reason_name, t.symbolize, self.addrs_bit, self.ports_bit)
        netns = d["netns"]
        info = self.enricher.lookup(netns) if self.enricher is not None and netns else None
        out = []
        for name in self.labels:
            if name == "reason":
                v = d["reason"] if t.has_reason else ""
            elif name == "dport":
                port = d["dport"]
                v = "" if port is None else ("ephemeral" if port >= self.ephemeral_from else str(port))
            elif name in ENRICHED:
                v = (getattr(info, "name" if name == "netns_name" else name) or "") if info else ""
            else:  # netns, ifname, location, l3, l4
                v = "" if d[name] is None else str(d[name])
            out.append(v)
        return tuple(out)

    def _label_set(self, raw_key: bytes, ifname: str) -> tuple:
        values = self._values(self.tracer.aggregate_key(raw_key), ifname)
        if values in self.totals:
            return values
        if self.ordinary < self.ordinary_cap:
            self.ordinary += 1
        else:
            self.folded += 1
            keep = dict(zip(self.labels, values)).get("reason") in self.fold_reasons
            values = tuple(v if n == "reason" and keep else OTHER for n, v in zip(self.labels, values))
        self.totals.setdefault(values, [0, 0])
        return values

    def _add(self, state: KeyState, count: int, nbytes: int) -> None:
        if count >= state.count and nbytes >= state.nbytes:  # kernel counters only grow
            acc = self.totals[state.labels]
            acc[0] += count - state.count
            acc[1] += nbytes - state.nbytes
            state.count, state.nbytes = count, nbytes

    def update(self, now: Optional[float] = None) -> None:
        """Add what the kernel counted since the last read to each key's label set; forget idle keys."""
        now = time.monotonic() if now is None else now
        t = self.tracer
        with self.lock:
            self.last_update = now
            for raw_key, raw_val in t.aggregate_items():
                count, nbytes, ifname = t.aggregate_value(raw_val)
                state = self.keys.get(raw_key)
                if state is None:
                    state = self.keys[raw_key] = KeyState(self._label_set(raw_key, ifname), 0, 0, now)
                elif count == state.count:
                    continue
                self._add(state, count, nbytes)
                state.moved = now
            if self.forget_after:
                self._forget_idle(now)

    def _forget_idle(self, now: float) -> None:
        for raw_key in [k for k, st in self.keys.items() if now - st.moved >= self.forget_after]:
            state = self.keys.pop(raw_key)
            last = self.tracer.forget_aggregate(raw_key)
            if last is not None:  # what arrived since the last read
                self._add(state, *last)
            self.forgotten += 1


class Collector:
    """The metrics of one scrape, built from the kernel's map (prometheus-client's custom collector)."""

    def __init__(self, series: Series, tracer: CountTracer) -> None:
        self.series = series
        self.tracer = tracer
        self.last_scrape = 0.0

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        t0 = time.monotonic()
        s = self.series
        s.update()
        drops = CounterMetricFamily("droptrace_drops", "Packets the kernel dropped, by the labels of "
                                    "--labels (counted in the kernel).", labels=s.labels)
        nbytes = CounterMetricFamily("droptrace_drop_bytes", "Bytes (skb->len) of the dropped packets.",
                                     labels=s.labels)
        with s.lock:
            for values, (count, size) in sorted(s.totals.items()):
                drops.add_metric(values, count)
                nbytes.add_metric(values, size)
            folded = s.folded
        yield drops
        yield nbytes
        yield CounterMetricFamily("droptrace_uncounted_drops", "Drops the kernel map could not count "
                                  "(full even for the flow-less key).",
                                  value=self.tracer.stat("DT_STAT_AGG_LOST"))
        yield CounterMetricFamily("droptrace_folded_series", f"Label sets folded into '{OTHER}' past "
                                  "--max-series.", value=folded)
        yield CounterMetricFamily("droptrace_forgotten_keys", "Kernel map keys deleted after "
                                  "--forget-after seconds idle (their counts stay in their series).",
                                  value=s.forgotten)
        yield CounterMetricFamily("droptrace_kernel_folded_flows", "Drops whose flow the kernel folded "
                                  "into a flow-less key (map full); still counted.",
                                  value=self.tracer.stat("DT_STAT_AGG_FOLDED"))
        info = GaugeMetricFamily("droptrace_info", "droptrace, the kernel and the hook in use.",
                                 labels=("version", "kernel", "hook"))
        info.add_metric((__version__, platform.release(), self.tracer.hook or ""), 1)
        yield info
        self.last_scrape = time.monotonic() - t0
        yield GaugeMetricFamily("droptrace_scrape_duration_seconds", "Time to read the kernel's map "
                                "and build this page.", value=self.last_scrape)


def make_handle(registry: Any, healthy: Any) -> Any:
    """path -> the answer: /metrics, /healthz, / (web/server.py serves it)."""
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    from ..web.http import Response

    def handle(path: str) -> Response:
        if path == "/metrics":
            return Response(200, CONTENT_TYPE_LATEST, generate_latest(registry))
        if path == "/healthz":
            ok = healthy()
            return Response(200 if ok else 503, "text/plain", b"ok\n" if ok else b"not attached\n")
        if path == "/":
            page = (f"<html><head><title>droptrace exporter</title></head><body><h1>droptrace "
                    f"exporter {html.escape(__version__)}</h1><p><a href=\"/metrics\">/metrics</a> "
                    "&middot; <a href=\"/healthz\">/healthz</a></p></body></html>\n")
            return Response(200, "text/html; charset=utf-8", page.encode())
        return Response(404, "text/plain", b"not found: try /metrics\n")

    return handle


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="droptrace exporter", description=(
        "Serve Prometheus metrics of packet drops, counted in the kernel: droptrace_drops_total and "
        "droptrace_drop_bytes_total by the labels of --labels, on /metrics (also /healthz and /). "
        "Listens on localhost unless told otherwise."))
    p.add_argument("--listen", type=arg(listen_address), default=listen_address(DEFAULT_LISTEN),
                   metavar="ADDR:PORT", help=f"where to serve (default {DEFAULT_LISTEN}; e.g. 0.0.0.0:9587 "
                   "or [::]:9587 to be scraped from elsewhere)")
    p.add_argument("--labels", type=arg(label_list), default=DEFAULT_LABELS, metavar="LIST",
                   help=f"labels of the drop counters (default {','.join(DEFAULT_LABELS)}; also "
                   f"{', '.join(n for n in LABELS if n not in DEFAULT_LABELS)})")
    p.add_argument("--max-series", type=positive("--max-series"),
                   default=DEFAULT_MAX_SERIES, metavar="N",
                   help=f"label sets at most, the folded ones included: one is kept for the '{OTHER}' "
                   "series of each reason counted (so that sums by reason stay exact) and one for any "
                   f"other; new label sets past the rest are folded (default {DEFAULT_MAX_SERIES})")
    p.add_argument("--ephemeral-from", type=port_number,
                   default=EPHEMERAL_FROM, metavar="PORT",
                   help=f"dport label: ports from here up read 'ephemeral' (default {EPHEMERAL_FROM})")
    p.add_argument(WEB_CONFIG_FLAG, dest="web_config", type=arg(load_web_config), metavar="FILE",
                   help="TLS and basic authentication, in the format of Prometheus exporters' web "
                   "configuration file (exporter-toolkit): tls_server_config, basic_auth_users "
                   "(bcrypt), http_server_config.headers; /healthz stays open to probes")
    p.add_argument("--forget-after", type=positive("--forget-after"),
                   default=int(FORGET_AFTER), metavar="SECONDS",
                   help=f"delete a kernel map key idle this long, keeping its counts in its series, so "
                   f"churn does not fill the map (default {int(FORGET_AFTER)})")
    add_trace_options(p)
    return p


def main(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(list(argv))
    opts = options(args)
    opts.agg_flows = any(n in args.labels for n in FLOW_LABELS)
    tracer = CountTracer(opts)
    enricher = None
    if any(n in args.labels for n in ENRICHED):
        from ..enrich import Enricher

        enricher = Enricher()
    with stop_requested() as stop:
        try:
            tracer.start()
            series = Series(tracer, args.labels, args.max_series, args.ephemeral_from, enricher,
                            args.forget_after)
            return serve(args, tracer, series, stop, args.web_config)
        finally:
            tracer.close()


def serve(args: argparse.Namespace, tracer: CountTracer, series: Series, stop: Any,
          web_config: Optional[WebConfig] = None) -> int:
    from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector

    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    registry.register(Collector(series, tracer))
    # /healthz stays open without credentials: probes (kubelet's) read it, and it tells only "ok".
    server = WebServer(args.listen, make_handle(registry, lambda: tracer.hook is not None), web_config,
                       write_log=eprint, public=("/healthz",))
    try:
        host, port = server.start()
    except OSError as e:
        from ..errors import DroptraceError

        raise DroptraceError(f"--listen {args.listen[0]}:{args.listen[1]}: {e.strerror}") from None
    shown = f"[{host}]" if ":" in host else host
    scheme = "https" if web_config and web_config.tls else "http"
    announce(tracer, f"counting in the kernel; metrics on {scheme}://{shown}:{port}/metrics")
    try:
        while not stop:
            time.sleep(0.1)
            if time.monotonic() - series.last_update >= UPDATE_EVERY:
                series.update()
    finally:
        server.close()
    eprint(f"droptrace exporter: stopped ({len(series.totals)} series)")
    return 0


__all__ = ["main", "Series", "Collector", "label_list", "listen_address"]
