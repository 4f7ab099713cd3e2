"""One dropped packet: the raw record from BPF, and the typed event users see.

RAW mirrors struct dt_event in bpf/droptrace.h. Event carries exactly the
keys of the JSON schema; Event.to_dict() is the --json object.
"""
from __future__ import annotations

import struct
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Dict, List, Optional, Union

from .decode import decode

SNAP_MAX = 256
STACK_MAX = 32
RAW = struct.Struct(f"<QQIIIIIIIIHHHHHHHHII16s16s{SNAP_MAX}s")
STACK = struct.Struct(f"<{STACK_MAX}Q")
F_HAS_REASON, F_NO_SKB = 1, 2
# Frames of the tracing machinery itself, trimmed from the top of stacks.
_TRACE_FRAMES = ("bpf_prog_", "bpf_trace_run", "__bpf_trace_", "perf_trace_", "trace_event_raw_")
CONFIG = struct.Struct("<17I16sIII")  # struct dt_config
AGG_KEY = struct.Struct("<QIIIHBB16s16sHHI")  # struct dt_agg_key
AGG_VAL = struct.Struct("<QQ16s")  # struct dt_agg_val


@dataclass
class Event:
    """A dropped packet, with the fields of droptrace's JSON schema."""

    time: str
    reason: Optional[str]
    reason_code: Optional[int]
    location: str
    l3: Optional[str]
    l4: Union[str, int, None]
    saddr: Optional[str]
    daddr: Optional[str]
    sport: Optional[int]
    dport: Optional[int]
    tcp_flags: Optional[str]
    icmp_type: Optional[int]
    icmp_code: Optional[int]
    len: Optional[int]
    mark: Optional[int]
    ifindex: Optional[int]
    ifname: Optional[str]
    netns: Optional[int]
    cpu: int
    pid: int
    tid: int
    comm: str
    stack: Optional[List[str]] = None
    # Not part of the JSON schema: the captured bytes, for recorders.
    packet: bytes = field(default=b"", repr=False, compare=False)
    link_ethernet: bool = field(default=False, repr=False, compare=False)
    ts_ns: int = field(default=0, repr=False, compare=False)
    wire_len: int = field(default=0, repr=False, compare=False)  # len + headers before skb->data

    @classmethod
    def from_dict(cls, d: Dict[str, Any], **extra: Any) -> "Event":
        """An Event from a JSON object (unknown keys ignored, missing ones null)."""
        kw = {k: d.get(k) for k in SCHEMA_KEYS}
        kw["stack"] = d.get("stack")
        return cls(**kw, **extra)

    def to_dict(self, with_stack: bool = False) -> Dict[str, Any]:
        d = asdict(self)
        for k in ("packet", "link_ethernet", "ts_ns", "wire_len"):
            del d[k]
        if not with_stack:
            del d["stack"]
        return d


SCHEMA_KEYS = ("time", "reason", "reason_code", "location", "l3", "l4", "saddr", "daddr", "sport",
               "dport", "tcp_flags", "icmp_type", "icmp_code", "len", "mark", "ifindex", "ifname",
               "netns", "cpu", "pid", "tid", "comm")


class Converter:
    """Turns raw ring-buffer records into Events for one tracing session."""

    def __init__(self, reason_name: Callable[[int], str], symbolize: Callable[[int], str],
                 mono_to_wall_ns: int, with_stack: bool = False) -> None:
        self.reason_name = reason_name
        self.symbolize = symbolize
        self.offset_ns = mono_to_wall_ns
        self.with_stack = with_stack

    def convert(self, raw: bytes) -> Event:
        (ts, location, reason, pid, tid, cpu, length, mark, ifindex, netns, protocol, mac_off,
         net_off, cap_len, dev_type, stack_len, data_off, _pad, flags, _reserved, comm, ifname,
         data) = RAW.unpack_from(raw)
        captured = data[:min(cap_len, SNAP_MAX)]
        pkt = decode(captured, mac_off, net_off, protocol, dev_type)
        has_reason = bool(flags & F_HAS_REASON)
        skb = not flags & F_NO_SKB
        stack = None
        if self.with_stack:
            stack = []
            if len(raw) >= RAW.size + STACK.size:
                frames = STACK.unpack_from(raw, RAW.size)[: min(stack_len, STACK.size) // 8]
                stack = trim_stack([self.symbolize(a) for a in frames if a])
        wall = (ts + self.offset_ns) / 1e9
        ethernet = mac_off == 0 and dev_type in (1, 772) and len(captured) >= 14
        return Event(
            time=datetime.fromtimestamp(wall, timezone.utc).astimezone().isoformat(timespec="microseconds"),
            reason=self.reason_name(reason) if has_reason else None,
            reason_code=reason if has_reason else None,
            location=self.symbolize(location),
            l3=pkt.l3, l4=pkt.l4, saddr=pkt.saddr, daddr=pkt.daddr, sport=pkt.sport,
            dport=pkt.dport, tcp_flags=pkt.tcp_flags, icmp_type=pkt.icmp_type,
            icmp_code=pkt.icmp_code, len=length if skb else None, mark=mark if skb else None,
            ifindex=ifindex or None,
            ifname=ifname.split(b"\0", 1)[0].decode(errors="replace") or None,
            netns=netns or None, cpu=cpu, pid=pid, tid=tid,
            comm=comm.split(b"\0", 1)[0].decode(errors="replace"),
            stack=stack, packet=captured, link_ethernet=ethernet, ts_ns=ts + self.offset_ns,
            wire_len=max(len(captured), length + data_off if skb else 0),
        )


def trim_stack(frames: List[str]) -> List[str]:
    """Drop the tracer's own frames (BPF program, trace glue) from the top."""
    i = 0
    while i < len(frames) and frames[i].startswith(_TRACE_FRAMES):
        i += 1
    return frames[i:]
