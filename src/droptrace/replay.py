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
from .event import Event
from .kernel.reasons import normalise

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
            f._programs = (OfflineProgram(eth), OfflineProgram(raw))
        return f

    @property
    def needs_packets(self) -> bool:
        return self._programs is not None

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
            if not e.packet:
                return False
            prog = self._programs[0 if e.link_ethernet else 1]
            return prog.matches(e.packet, max(e.wire_len, len(e.packet)))
        return True


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
