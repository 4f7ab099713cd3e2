"""The droptrace command line: the live drop stream, and its subcommands."""
from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import time
from typing import Iterator, List, Optional, Sequence, Tuple

from . import __version__, libbpf, netns
from .errors import DroptraceError
from .event import SNAP_BIG
from .output import RawJsonWriter, TextWriter
from .recording import FORMATS, FileSink, format_for
from .tracer import HOOKS, Options, Tracer

DEFAULT_SNAPLEN = 128


DESCRIPTION = """\
Show every packet the kernel drops, with the kernel's own reason, where it
was dropped, and the packet decoded from its headers.

PID and COMM are the task that was on the CPU at drop time. Receive-path
drops usually run in softirq context, so that task is often a bystander
(swapper, ksoftirqd, or whichever process the interrupt landed on) rather
than the packet's owner.

Subcommands:
  droptrace lab      build a private lab of namespaces, provoke well-known
                     drops and show how droptrace reports them
  droptrace doctor   what this host supports, and which hook and features
                     droptrace will use (also: droptrace --check)
  droptrace top      a live view of drops counted in the kernel
  droptrace record   record drops to pcapng or JSON lines (-w FILE)
  droptrace report   summarise a recording
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, no traceback
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def positive_int(text: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be greater than zero")
    return value


def seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be greater than zero")
    return value


def mark(text: str) -> tuple:
    value, _, mask = text.partition("/")
    try:
        v = int(value, 0)
        m = int(mask, 0) if mask else 0xFFFFFFFF
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not VALUE or VALUE/MASK") from None
    if not (0 <= v <= 0xFFFFFFFF and 0 <= m <= 0xFFFFFFFF):
        raise argparse.ArgumentTypeError(f"{text!r} does not fit in 32 bits")
    return v, m


def ring_mb(text: str) -> int:
    value = positive_int(text)
    if value & (value - 1) or value > 1024:
        raise argparse.ArgumentTypeError(f"{text!r} is not a power of two up to 1024")
    return value


def reason_list(text: str) -> List[str]:
    return [r for r in (p.strip() for p in text.split(",")) if r]


def add_trace_options(p: argparse.ArgumentParser) -> None:
    """Options shared by every mode that traces."""
    p.add_argument("expression", nargs="*", metavar="EXPRESSION",
                   help="a tcpdump filter expression, e.g. 'udp port 53 and host 10.1.2.3' "
                   "(compiled by libpcap, evaluated in the kernel on the dropped packet's headers)")
    f = p.add_argument_group("filters (applied in the kernel)")
    f.add_argument("--reason", type=reason_list, action="extend", default=[], metavar="NAME[,NAME]",
                   help="only these drop reasons (names of the running kernel, e.g. NO_SOCKET)")
    f.add_argument("--exclude-reason", type=reason_list, action="extend", default=[],
                   metavar="NAME[,NAME]", help="hide these drop reasons (e.g. NOT_SPECIFIED)")
    f.add_argument("--netns", metavar="NS",
                   help="only this network namespace: inode, `ip netns` name, or pid:N")
    f.add_argument("-i", "--interface", metavar="IFNAME", help="only packets on this interface name")
    f.add_argument("--pid", type=positive_int, help="only drops while this process (tgid) is on CPU")
    f.add_argument("--mark", type=mark, metavar="VALUE[/MASK]", help="only packets with this skb mark")
    p.add_argument("--hook", choices=HOOKS,
                   help="force a hook instead of probing tp_btf, raw_tp, then tracepoint")
    p.add_argument("-v", "--verbose", action="store_true", help="say why hooks were skipped; "
                   "show libbpf's log on errors")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="droptrace", description=DESCRIPTION,
                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"droptrace {__version__}")
    p.add_argument("--json", action="store_true", help="one JSON object per drop on stdout")
    p.add_argument("--stack", action="store_true", help="add the kernel stack of each drop")
    p.add_argument("-c", "--count", type=positive_int, metavar="N", help="stop after N drops")
    p.add_argument("-d", "--duration", type=seconds, metavar="SECONDS", help="stop after SECONDS")
    p.add_argument("--rate-limit", type=positive_int, metavar="N",
                   help="at most N events per second; the rest are counted (in the kernel) and "
                   "reported as suppressed")
    p.add_argument("--ring-buffer", type=ring_mb, default=8, metavar="MB",
                   help="size of the kernel ring buffer, a power of two (default 8)")
    p.add_argument("--list-reasons", action="store_true",
                   help="list the running kernel's drop reasons and exit")
    p.add_argument("--check", action="store_true",
                   help="same as `droptrace doctor`: what this host supports, then exit")
    add_trace_options(p)
    return p


def options(args: argparse.Namespace) -> Options:
    if args.reason and args.exclude_reason:
        raise DroptraceError("--reason and --exclude-reason cannot be combined")
    return Options(hook=args.hook, stack=getattr(args, "stack", False), reasons=args.reason,
                   exclude_reasons=args.exclude_reason,
                   netns=netns.inode(args.netns) if args.netns else 0,
                   interface=args.interface, pid=args.pid or 0, mark=args.mark,
                   verbose=args.verbose, filter=" ".join(args.expression) or None)


def eprint(*parts: object) -> None:
    print(*parts, file=sys.stderr, flush=True)


@contextlib.contextmanager
def stop_on_sigterm() -> Iterator[None]:
    """Turn SIGTERM into KeyboardInterrupt so both stop the same way."""
    def handler(_sig: int, _frame: object) -> None:
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


class StopRequest:
    """Set by SIGINT/SIGTERM. Tracing loops check it between batches, so a signal
    never lands in the middle of a batch (where it would lose the batch)."""

    def __init__(self) -> None:
        self.requested = False

    def __bool__(self) -> bool:
        return self.requested


@contextlib.contextmanager
def stop_requested() -> Iterator[StopRequest]:
    stop = StopRequest()

    def handler(_sig: int, _frame: object) -> None:
        stop.requested = True

    old = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, h in old.items():
            signal.signal(sig, h)


def list_reasons() -> int:
    from . import reasons

    r = reasons.load()
    print(f"# drop reasons of this kernel ({os.uname().release}), read from {r.source}")
    for value, name in sorted(r.all_names().items()):
        print(f"{value:>10}  {name}")
    return 0


def trace_loop(tracer: Tracer, sink, count: Optional[int], duration: Optional[float]) -> Tuple[int, int]:
    """Attach, write events to sink until count/duration/Ctrl-C/SIGTERM; (shown, lost).

    On every way out the probe is detached first, what is still buffered is
    written, and the tracer is closed.
    """
    shown = 0
    started = False
    raw = hasattr(sink, "write_raw")  # the storm path: records straight to JSON
    poll = tracer.poll_raw if raw else tracer.poll
    drain = tracer.drain_raw if raw else tracer.drain
    write = sink.write_raw if raw else sink.write
    with stop_requested() as stop:
        try:
            tracer.start()
            started = True
            if getattr(tracer.opts, "verbose", False):
                for hook, why in tracer.fallbacks:
                    eprint(f"droptrace: hook {hook} not used: {why}")
            for note in tracer.limits:
                eprint(f"droptrace: note: {note}")
            what = "drop reasons" if tracer.has_reason else "locations only: this kernel has no drop reasons"
            eprint(f"Tracing packet drops via {tracer.hook} ({what}). Ctrl-C to end.")
            deadline = time.monotonic() + duration if duration else None
            while not stop and (count is None or shown < count):
                wait = 100
                if deadline is not None:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    wait = max(1, min(wait, int(left * 1000)))
                events = poll(wait)
                if count is not None:
                    events = events[: count - shown]
                write(events)
                shown += len(events)
        finally:
            lost = 0
            if started:
                tracer.detach()
                rest = drain()
                if count is not None:
                    rest = rest[: max(0, count - shown)]
                try:
                    write(rest)
                    shown += len(rest)
                finally:
                    _, lost = tracer.counters()
                    tracer.close()
            else:
                tracer.close()
    return shown, lost


def run_stream(args: argparse.Namespace) -> int:
    if args.check:
        from . import doctor

        return doctor.main()
    if args.list_reasons:
        return list_reasons()
    opts = options(args)
    opts.rate_limit = args.rate_limit or 0
    opts.ringbuf_bytes = args.ring_buffer << 20
    tracer = Tracer(opts)
    sink = (RawJsonWriter(sys.stdout.buffer, lambda: tracer.converter) if args.json
            else TextWriter(sys.stdout, args.stack))
    shown, lost = trace_loop(tracer, sink, args.count, args.duration)
    if tracer.hook:
        held = f", {tracer.suppressed} suppressed by --rate-limit" if args.rate_limit else ""
        eprint(f"droptrace: {shown} drops shown, {lost} lost (ring buffer full){held}")
    return 0


def build_record_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="droptrace record", description=(
        "Record dropped packets to a file: pcapng (Wireshark, tshark) with the reason, location, "
        "namespace, interface and task of each drop in packet comments, or JSON lines (the "
        "--json objects). The file is flushed as it grows and closed properly on -c, -d, "
        "Ctrl-C and SIGTERM; a killed run leaves it readable up to the last whole drop."))
    p.add_argument("-w", "--write", required=True, metavar="FILE",
                   help="the recording (.pcapng or .jsonl)")
    p.add_argument("--format", choices=FORMATS, help="file format (default: from the extension)")
    p.add_argument("--snaplen", type=positive_int, default=DEFAULT_SNAPLEN, metavar="BYTES",
                   help=f"bytes of each packet to keep, from its first header (default "
                   f"{DEFAULT_SNAPLEN}: headers; at most {SNAP_BIG})")
    p.add_argument("--payload", action="store_true",
                   help=f"keep the payload too, up to {SNAP_BIG} bytes of packet (a full Ethernet "
                   "frame), from the skb's linear data")
    p.add_argument("--stack", action="store_true", help="add the kernel stack to each drop")
    p.add_argument("-c", "--count", type=positive_int, metavar="N", help="stop after N drops")
    p.add_argument("-d", "--duration", type=seconds, metavar="SECONDS", help="stop after SECONDS")
    add_trace_options(p)
    return p


def run_record(argv: Sequence[str]) -> int:
    args = build_record_parser().parse_args(list(argv))
    if args.snaplen > SNAP_BIG:
        raise DroptraceError(f"--snaplen {args.snaplen}: droptrace captures at most {SNAP_BIG} bytes "
                             "of each packet")
    opts = options(args)
    opts.snaplen = SNAP_BIG if args.payload else args.snaplen
    fmt = format_for(args.write, args.format)
    tracer = Tracer(opts)
    sink = FileSink(args.write, fmt, args.stack)
    try:
        shown, lost = trace_loop(tracer, sink, args.count, args.duration)
    finally:
        sink.close()
    eprint(f"droptrace: {shown} drops written to {args.write} ({fmt}), {lost} lost (ring buffer full)")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    verbose = "-v" in argv or "--verbose" in argv
    try:
        if argv and argv[0] == "lab":
            from . import lab

            return lab.main(argv[1:])
        if argv and argv[0] == "top":
            from . import top

            return top.main(argv[1:])
        if argv and argv[0] == "record":
            return run_record(argv[1:])
        if argv and argv[0] == "report":
            from . import report

            return report.main(argv[1:])
        if argv and argv[0] == "doctor":
            from . import doctor

            if argv[1:]:
                raise DroptraceError(f"doctor takes no arguments (got {' '.join(argv[1:])})")
            return doctor.main()
        return run_stream(build_parser().parse_args(argv))
    except DroptraceError as e:
        eprint(f"droptrace: error: {e}")
        rc = e.exit_code
        log = getattr(e, "log", "") or (libbpf.log_tail() if verbose else "")
        if verbose and log:
            eprint(log.rstrip())
        return rc
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (droptrace | head): exit quietly.
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
