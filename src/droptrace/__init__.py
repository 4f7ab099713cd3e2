"""droptrace: where did my packet go, and why? Packet drops traced with eBPF.

The Python API::

    import droptrace

    with droptrace.trace(reasons=["NO_SOCKET"]) as drops:  # attached from here
        for event in drops:
            print(event.reason, event.saddr, event.dport)
            break

    for event in droptrace.read("drops.pcapng"):         # or a .jsonl recording
        ...

Events carry the fields of the --json schema as attributes.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Iterator, List, Optional, Tuple

__version__ = "0.1.0"
__all__ = ["Event", "DroptraceError", "Trace", "trace", "read", "__version__"]

from .errors import DroptraceError
from .event import Event

if TYPE_CHECKING:
    from .tracer import Options


class Trace:
    """A live tracing session: attached when created, iterable, closed by close() or `with`."""

    def __init__(self, opts: "Options", poll_ms: int = 100) -> None:
        from .tracer import Tracer

        self._tracer = Tracer(opts)
        self._tracer.start()
        self._poll_ms = poll_ms
        self.hook = self._tracer.hook

    def __iter__(self) -> Iterator[Event]:
        while self._tracer.hook is not None:
            yield from self._tracer.poll(self._poll_ms)

    def lost(self) -> int:
        """Events the kernel could not queue (ring buffer full), so far."""
        return self._tracer.counters()[1]

    def close(self) -> None:
        self._tracer.close()
        self._tracer.hook = None

    def __enter__(self) -> "Trace":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def trace(filter: Optional[str] = None, stack: bool = False, *, reasons: Optional[List[str]] = None,
          exclude_reasons: Optional[List[str]] = None, netns: Optional[str] = None,
          interface: Optional[str] = None, pid: int = 0, mark: Optional[Tuple[int, int]] = None,
          hook: Optional[str] = None, poll_ms: int = 100) -> Trace:
    """Attach now and return a Trace that yields an Event per dropped packet.

    Needs root. `filter` is a tcpdump expression ("udp port 53"); it and the
    other filters run in the kernel. `netns` takes an inode, an `ip netns` name
    or "pid:N". Use it with `with` (or call close()) to detach.
    """
    from . import netns as netnsmod
    from .tracer import Options

    return Trace(Options(hook=hook, stack=stack, filter=filter or None, reasons=list(reasons or []),
                         exclude_reasons=list(exclude_reasons or []),
                         netns=netnsmod.inode(str(netns)) if netns else 0, interface=interface,
                         pid=pid, mark=mark), poll_ms)


def read(path: str) -> Iterator[Event]:
    """Yield the Events of a recording made by `droptrace record` (pcapng or JSON lines)."""
    from .recording import read as _read

    return _read(path)
