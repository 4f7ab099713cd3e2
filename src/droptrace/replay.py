"""Recordings read back through the live stream's filters: `droptrace -r`, `record -r`, `report`.

The same flags mean the same thing offline: the tcpdump expression runs on
the stored bytes (libpcap's own classic BPF, for the stored link type),
reasons are compared by name, namespaces by inode (an `ip netns` name is
resolved now, so it must still exist), interfaces by name.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Dict,
    Iterable,
    Iterator,
    List,
    Optional,
    Sequence,
    Tuple,
    Union,
)

from . import options as opt
from .errors import UsageError
from .event import Event
from .kernel.reasons import normalise
from .packet.libpcap import Insn

if TYPE_CHECKING:
    from .formats.recording import Recording

@dataclass
class OfflineFilter:
    """A predicate over recorded Events, built from the live filters' values."""

    reasons: List[str] = field(default_factory=list)
    exclude_reasons: List[str] = field(default_factory=list)
    netns: List[int] = field(default_factory=list)
    interfaces: List[str] = field(default_factory=list)
    pid: int = 0
    mark: Optional[Tuple[int, int]] = None
    expression: Optional[str] = None
    _programs: Optional[Tuple[object, object]] = None
    _raw: Optional[List[Insn]] = None  # the raw-IP program, for packets rebuilt from fields

    @classmethod
    def make(cls, expression: Union[str, Sequence[str], None] = None, *,
             reasons: Union[str, Iterable[str], None] = None,
             exclude_reasons: Union[str, Iterable[str], None] = None,
             netns: Union[str, int, Iterable[Union[str, int]], None] = None,
             interface: Union[str, bytes, Iterable[Union[str, bytes]], None] = None,
             pid: Union[int, str, None] = None, mark: Union[str, int, Tuple[int, int], None] = None
             ) -> "OfflineFilter":
        """Built and checked by options.make, as the live flags are (offline: a namespace inode
        may be gone)."""
        o = opt.make(reasons=reasons, exclude_reasons=exclude_reasons, netns_specs=netns,
                     interfaces=interface, pid_value=pid, mark_value=mark, filter_expr=expression,
                     live=False)
        from .explain import check_names

        check_names([*o.reasons, *o.exclude_reasons])
        f = cls(reasons=[normalise(n) for n in o.reasons],
                exclude_reasons=[normalise(n) for n in o.exclude_reasons], netns=o.netns,
                interfaces=[i.decode(errors="replace") for i in o.interfaces], pid=o.pid, mark=o.mark,
                expression=o.filter)
        if f.expression:
            from .packet.filter import compile_filters
            from .packet.libpcap import OfflineProgram

            eth, raw = compile_filters(f.expression, None)
            f._programs, f._raw = (OfflineProgram(eth), OfflineProgram(raw)), raw
        return f

    @property
    def needs_packets(self) -> bool:
        return self._programs is not None

    def check_fields(self) -> None:
        """Before reading a recording without packet bytes (JSON lines): refuse an expression
        that needs what such a line does not keep, tried on drops of each common kind."""
        if self._raw is None:
            return
        for kw in _TYPICAL:
            self._on_fields(Event.from_dict({"time": "x", **kw}), "such a drop")

    def _on_fields(self, e: Event, which: str) -> bool:
        """The expression's verdict on the headers e's fields describe (packet/synth.py)."""
        from .packet.partial import Undecided, run
        from .packet.synth import field_name, rebuilt

        packet, known = rebuilt(e)
        if not packet:
            return False
        try:
            return run(self._raw, packet, known)
        except Undecided as u:
            needs = sorted({field_name(packet, at) for at in u.needs})
            raise UsageError(f"the filter expression {self.expression!r} reads the {' and '.join(needs)} "
                             f"of {which}, which a JSON lines recording does not keep (only addresses, "
                             "protocol, ports, TCP flags, ICMP type and code): record to pcapng to filter "
                             "on it") from None

    def __call__(self, e: Event) -> bool:
        if self.reasons and (e.reason is None or normalise(e.reason) not in self.reasons):
            return False
        if self.exclude_reasons and e.reason is not None and normalise(e.reason) in self.exclude_reasons:
            return False
        if self.netns and e.netns not in self.netns:
            return False
        if self.interfaces and e.ifname not in self.interfaces:
            return False
        if self.pid and e.pid != self.pid:
            return False
        if self.mark is not None and (e.mark is None or (e.mark & self.mark[1]) != self.mark[0]):
            return False
        if self._programs is not None:
            if not e.packet:  # JSON lines: the headers its fields describe
                return self._on_fields(e, "one of its drops")
            prog = self._programs[0 if e.link_ethernet else 1]
            return prog.matches(e.packet, max(e.wire_len, len(e.packet)))
        return True


# Drops of the common kinds, for check_fields: what lines typically hold.
_TYPICAL = [dict(l3=l3, l4=l4, saddr=a, daddr=b, **extra)
            for l3, a, b in (("ipv4", "10.0.0.1", "10.0.0.2"), ("ipv6", "2001:db8::1", "2001:db8::2"))
            for l4, extra in (("udp", dict(sport=1, dport=2)), ("tcp", dict(sport=1, dport=2, tcp_flags="S")),
                              ("icmp" if l3 == "ipv4" else "icmpv6", dict(icmp_type=8, icmp_code=0)))]


def replay(events: Iterable[Event], keep: Callable[[Event], bool],
           count: Optional[int] = None) -> Iterator[Event]:
    """The events that pass keep(), at most count of them."""
    n = 0
    for e in events:
        if count is not None and n >= count:
            return
        if keep(e):
            n += 1
            yield e


class Replay:
    """replay() as an object that also shows the recording's `summary` and `warnings`."""

    def __init__(self, recording: "Recording", keep: Callable[[Event], bool],
                 count: Optional[int] = None) -> None:
        self.recording = recording
        self._events = replay(recording, keep, count)

    def __iter__(self) -> Iterator[Event]:
        return self

    def __next__(self) -> Event:
        return next(self._events)

    @property
    def summary(self) -> Optional[Dict[str, Any]]:
        return self.recording.summary

    @property
    def warnings(self) -> List[str]:
        return self.recording.warnings
