"""droptrace: where did my packet go, and why? Packet drops traced with eBPF.

The Python API::

    import droptrace

    with droptrace.trace(reasons="NO_SOCKET", count=10) as drops:  # attached from here
        for event in drops:
            print(event.reason, event.saddr, event.dport)

    for event in droptrace.read("drops.pcapng"):         # or a .jsonl recording
        ...

Events carry the fields of the --json schema as attributes. The arguments
follow the command line's flags and are checked by the same rules.
"""
from __future__ import annotations

import atexit
import time
import weakref
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Optional, Tuple, Union

__version__ = "0.2.0"
__all__ = ["Event", "DroptraceError", "UsageError", "Trace", "trace", "read", "__version__"]

from .errors import DroptraceError, UsageError

if TYPE_CHECKING:
    from .event import Event
    from .options import Options


def __getattr__(name: str) -> Any:
    """Event is imported on first use: `python -m droptrace.lab.traffic` (once per provoked drop
    in the lab) should not pay for it."""
    if name == "Event":
        from .event import Event

        return Event
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

_open_traces: "weakref.WeakSet[Trace]" = weakref.WeakSet()


class Trace:
    """A live tracing session: attached when created, iterable, closed by close(), `with`,
    garbage collection or interpreter exit."""

    def __init__(self, opts: "Options", poll_ms: int = 100, count: Optional[int] = None,
                 duration: Optional[float] = None) -> None:
        from .features.drops.tracer import DropTracer

        self._tracer = DropTracer(opts)
        self._tracer.start()
        self._poll_ms = poll_ms
        self._count = count
        self._deadline = time.monotonic() + duration if duration else None
        self.hook = self._tracer.hook
        self.seen = 0
        self._finalizer = weakref.finalize(self, self._tracer.close)
        _open_traces.add(self)

    def __iter__(self) -> Iterator[Event]:
        while self._tracer.hook is not None:
            if self._count is not None and self.seen >= self._count:
                return
            wait = self._poll_ms
            if self._deadline is not None:
                left = self._deadline - time.monotonic()
                if left <= 0:
                    return
                wait = max(1, min(wait, int(left * 1000)))
            events = self._tracer.poll(wait)
            if self._count is not None:
                events = events[: self._count - self.seen]
            self.seen += len(events)
            yield from events

    def lost(self) -> int:
        """Events the kernel could not queue (ring buffer full), so far."""
        return self._tracer.counters()[1]

    def close(self) -> None:
        self._finalizer()
        self._tracer.hook = None

    def __enter__(self) -> "Trace":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@atexit.register
def _close_all() -> None:
    for t in list(_open_traces):
        t.close()


def trace(filter: Optional[str] = None, stack: bool = False, *,
          reasons: Union[str, Iterable[str], None] = None,
          exclude_reasons: Union[str, Iterable[str], None] = None,
          netns: Union[str, int, Iterable[Union[str, int]], None] = None,
          interface: Union[str, bytes, Iterable[Union[str, bytes]], None] = None,
          pid: Optional[int] = None, mark: Union[str, int, Tuple[int, int], None] = None,
          hook: Optional[str] = None, count: Optional[int] = None, duration: Optional[float] = None,
          rate_limit: Optional[int] = None, ring_buffer_mb: Optional[int] = None,
          poll_ms: int = 100) -> Trace:
    """Attach now and return a Trace that yields an Event per dropped packet.

    Needs root. `filter` is a tcpdump expression ("udp port 53"); it and the
    other filters run in the kernel. `reasons`, `netns` and `interface` take one
    value or several; `netns` an inode, an `ip netns` name or "pid:N". `count`
    and `duration` end the iteration. Use it with `with` (or call close()).
    Bad values raise UsageError (or DroptraceError for what the host lacks),
    with the command line's words.
    """
    from . import options

    opts = options.make(hook_name=hook, stack=stack, reasons=reasons, exclude_reasons=exclude_reasons,
                        netns_specs=netns, interfaces=interface, pid_value=pid, mark_value=mark,
                        filter_expr=filter, rate=rate_limit,
                        ring_buffer_mb=options.DEFAULT_RING_MB if ring_buffer_mb is None else ring_buffer_mb)
    return Trace(opts, poll_ms, options.count(count) if count is not None else None,
                 options.seconds(duration) if duration is not None else None)


def read(path: str, expression: Optional[str] = None, *,
         reasons: Union[str, Iterable[str], None] = None,
         exclude_reasons: Union[str, Iterable[str], None] = None,
         netns: Union[str, int, Iterable[Union[str, int]], None] = None,
         interface: Union[str, bytes, Iterable[Union[str, bytes]], None] = None,
         pid: Optional[int] = None, mark: Union[str, int, Tuple[int, int], None] = None,
         count: Optional[int] = None) -> Iterator[Event]:
    """The Events of a recording (pcapng or JSON lines written by `droptrace record`; another
    tool's pcap or pcapng gives packets without reasons), through the same filters as trace();
    on JSON lines the expression runs on the headers each line's fields describe, and one that
    needs what a line does not keep raises UsageError.
    The file is opened now: a missing one raises DroptraceError here, not when iteration
    starts. The returned iterator has `summary` (the recording's closing statistics, once read
    to the end) and `warnings` (a file cut short, lines skipped)."""
    from .formats.recording import read as _read
    from .replay import OfflineFilter, Replay

    keep = OfflineFilter.make(expression, reasons=reasons, exclude_reasons=exclude_reasons, netns=netns,
                              interface=interface, pid=pid, mark=mark)
    rec = _read(path)
    if rec.format == "jsonl":
        keep.check_fields()  # no packet bytes: the expression runs on headers rebuilt from fields
    return Replay(rec, keep, count)
