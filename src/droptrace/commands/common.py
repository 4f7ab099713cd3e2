"""What every subcommand shares: parser pieces, building Options, stopping, the trace loop.

The value parsers are options.py's, wrapped for argparse, so a bad value is
refused where it is parsed, with the same words in every mode and in the
Python API.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import time
from typing import Any, Callable, Iterator, Optional, Tuple

from .. import options as opt
from ..errors import DroptraceError
from ..kernel.tracer import RECORD_BATCH, Tracer


class Parser(argparse.ArgumentParser):
    """argparse, but every error is one line and exit 2."""

    def error(self, message: str) -> None:  # one line, exit 2, no traceback
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def arg(parse: Callable[..., Any]) -> Callable[[str], Any]:
    """An options.py parser as an argparse type: its UsageError becomes argparse's error."""
    def convert(text: str) -> Any:
        try:
            return parse(text)
        except DroptraceError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
    convert.__name__ = parse.__name__
    return convert


positive_int = arg(opt.count)
seconds = arg(opt.seconds)


def positive(flag: str) -> Callable[[str], int]:
    """An argparse type for `flag`: a whole number from 1 up (argparse names the flag in errors)."""
    def convert(text: str) -> int:
        try:
            return opt.int_in(text, flag, 1, 1 << 31)
        except DroptraceError as e:
            raise argparse.ArgumentTypeError(str(e).replace(f"{flag}: ", "", 1)) from None
    convert.__name__ = "positive"
    return convert


def add_run_options(p: argparse.ArgumentParser, what: str = "drops") -> None:
    """-c and -d, for every mode that runs until told to stop."""
    p.add_argument("-c", "--count", type=positive_int, metavar="N", help=f"stop after N {what}")
    p.add_argument("-d", "--duration", type=seconds, metavar="SECONDS", help="stop after SECONDS")


def add_stream_options(p: argparse.ArgumentParser, ring_mb: int = opt.DEFAULT_RING_MB) -> None:
    """The ring buffer's knobs, for the modes that stream events (stream, record)."""
    p.add_argument("--rate-limit", type=arg(opt.rate_limit), metavar="N",
                   help="at most N events per second; the rest are counted (in the kernel) and "
                   "reported as suppressed")
    p.add_argument("--ring-buffer", type=arg(opt.ring_mb), default=ring_mb, metavar="MB",
                   help="the kernel ring buffers' size in all, a power of two: each CPU has its own "
                   f"ring, an even share of it (at least 1 MB) (default {ring_mb})")


LIVE = "in the kernel"
LIVE_OR_READ = "in the kernel; with -r, to the recording"


def add_filter_options(p: argparse.ArgumentParser, where: str = LIVE, pid: bool = True) -> None:
    """The tcpdump expression and the filters, applied `where`: live (in the kernel) or on a
    recording; pid=False for modes that do not follow tasks."""
    p.add_argument("expression", nargs="*", metavar="EXPRESSION",
                   help="a tcpdump filter expression, e.g. 'udp port 53 and host 10.1.2.3' "
                   f"(compiled by libpcap, evaluated on the dropped packet's headers: {where})")
    f = p.add_argument_group(f"filters (applied {where}; a repeated filter means any of them)")
    f.add_argument("--reason", type=arg(opt.names), action="extend", metavar="NAME[,NAME]",
                   help="only these drop reasons (names of the running kernel, e.g. NO_SOCKET)")
    f.add_argument("--exclude-reason", type=arg(opt.names), action="extend",
                   metavar="NAME[,NAME]", help="hide these drop reasons (e.g. NOT_SPECIFIED)")
    f.add_argument("--netns", action="append", metavar="NS",
                   help="only this network namespace: inode, `ip netns` name, or pid:N")
    f.add_argument("-i", "--interface", type=arg(opt.interface), action="append", metavar="IFNAME",
                   help="only packets on this interface name")
    if pid:
        f.add_argument("--pid", type=arg(opt.pid), help="only drops while this process (tgid) is on CPU")
    f.add_argument("--mark", type=arg(opt.mark), metavar="VALUE[/MASK]",
                   help="only packets with this skb mark")


def add_trace_options(p: argparse.ArgumentParser, where: str = LIVE, hook: bool = True,
                      pid: bool = True) -> None:
    """Filters and hook choice, shared by every mode that traces (hook=False: the mode has its
    own hooks; pid=False: it does not follow tasks)."""
    add_filter_options(p, where, pid)
    if hook:
        p.add_argument("--hook", choices=opt.HOOKS,
                       help="force a hook instead of probing tp_btf, raw_tp, then tracepoint")
    p.add_argument("-v", "--verbose", action="store_true", help="say why hooks were skipped; "
                   "show libbpf's log on errors")


def options(args: argparse.Namespace) -> opt.Options:
    """Options from parsed flags: the one place the CLI builds them (same rules as the API)."""
    made = opt.make(hook_name=getattr(args, "hook", None), stack=getattr(args, "stack", False),
                    reasons=args.reason, exclude_reasons=args.exclude_reason, netns_specs=args.netns,
                    interfaces=args.interface, pid_value=getattr(args, "pid", None), mark_value=args.mark,
                    filter_expr=args.expression,
                    ring_buffer_mb=getattr(args, "ring_buffer", opt.DEFAULT_RING_MB),
                    rate=getattr(args, "rate_limit", None), snaplen=getattr(args, "snaplen", None),
                    payload=getattr(args, "payload", False), verbose=args.verbose)
    if not made.netns:  # names are per namespace: only this one can be checked
        for name in made.interfaces:
            if not os.path.exists(os.path.join(b"/sys/class/net", name)):
                eprint(f"droptrace: warning: no interface {os.fsdecode(name)!r} in this network "
                       "namespace now; its drops will show if it appears (give --netns for another)")
    return made


def offline_filter(args: argparse.Namespace) -> Any:
    """The filters of the command line, for a recording read back (replay.OfflineFilter)."""
    from ..replay import OfflineFilter

    return OfflineFilter.make(args.expression, reasons=args.reason, exclude_reasons=args.exclude_reason,
                              netns=args.netns, interface=args.interface, pid=args.pid, mark=args.mark)


def open_recording(path: str, keep: Any) -> Any:
    """A recording to read back through keep; its oddities are one warning line each on stderr."""
    from ..formats.recording import read

    rec = read(path, on_warning=lambda m: eprint(f"droptrace: warning: {m}"))
    if rec.format == "jsonl":
        keep.check_fields()  # no packet bytes: the expression runs on headers rebuilt from fields
    return rec


def eprint(*parts: object) -> None:
    print(*parts, file=sys.stderr, flush=True)


class StopRequest:
    """Set by SIGINT/SIGTERM. Loops check it between batches, so a signal never lands in the
    middle of a batch (where it would lose the batch) or of a write."""

    def __init__(self) -> None:
        self.requested = False

    def __bool__(self) -> bool:
        return self.requested


@contextlib.contextmanager
def _on_stop_signals(handler: Callable[[int, object], None]) -> Iterator[None]:
    """handler for SIGINT and SIGTERM, installed explicitly (a shell that starts us in the
    background ignores SIGINT, and we must still stop on it), the old ones restored after."""
    old = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, h in old.items():
            signal.signal(sig, h)


@contextlib.contextmanager
def stop_requested() -> Iterator[StopRequest]:
    """SIGINT and SIGTERM set a flag that loops check between batches."""
    stop = StopRequest()

    def handler(_sig: int, _frame: object) -> None:
        stop.requested = True

    with _on_stop_signals(handler):
        yield stop


@contextlib.contextmanager
def interrupt_on_signals() -> Iterator[None]:
    """SIGINT and SIGTERM raise KeyboardInterrupt (for code that waits in blocking calls)."""
    def handler(_sig: int, _frame: object) -> None:
        raise KeyboardInterrupt

    with _on_stop_signals(handler):
        yield


def announce(tracer: Tracer, how: str, end: str = "Ctrl-C") -> None:
    """Fallbacks (with -v), limits, then the line scripts wait for: it contains `Tracing`."""
    if tracer.opts.verbose:
        for hook, why in tracer.fallbacks:
            eprint(f"droptrace: hook {hook} not used: {why}")
    for note in tracer.limits:
        eprint(f"droptrace: note: {note}")
    eprint(f"Tracing packet drops via {tracer.hook} ({how}). {end} to end.")


def trace_loop(tracer: Tracer, sink: Any, count: Optional[int], duration: Optional[float],
               on_attached: Optional[Callable[[], None]] = None) -> Tuple[int, int]:
    """Attach, hand the ring's records to sink in batches until count/duration/Ctrl-C/SIGTERM;
    (shown, lost).

    sink is any formats.sink.Sink: it takes a batch and says how many records it wrote, and
    `shown` counts those. On every way out the probe is detached first, what is still in the
    ring is written, and the tracer is closed. on_attached runs once the probe is attached
    (record opens its file only then).
    """
    from ..formats.compiled import fastest

    def limit() -> int:
        return RECORD_BATCH if count is None else min(RECORD_BATCH, count - shown)

    out = fastest(sink)
    shown = 0
    started = ready = False
    with stop_requested() as stop:
        try:
            tracer.start()
            started = True
            if on_attached is not None:
                on_attached()
            ready = True
            what = "drop reasons" if tracer.has_reason else "locations only: this kernel has no drop reasons"
            announce(tracer, what)
            deadline = time.monotonic() + duration if duration else None
            while not stop and (count is None or shown < count):
                wait = 100
                if deadline is not None:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    wait = max(1, min(wait, int(left * 1000)))
                shown += out.write_batch(tracer.batch(wait, limit()))
        finally:
            lost = 0
            if started and ready:
                tracer.detach()
                try:
                    while count is None or shown < count:
                        batch = tracer.batch(0, limit())
                        shown += out.write_batch(batch)
                        if batch.short:
                            break
                finally:
                    _, lost = tracer.counters()
                    tracer.close()
            else:
                tracer.close()
    return shown, lost
