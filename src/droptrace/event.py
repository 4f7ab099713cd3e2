"""One dropped packet: the raw record from BPF, and the typed event users see.

RAW mirrors struct dt_event in bpf/droptrace.h. Event carries exactly the
keys of the JSON schema; Event.to_dict() is the --json object.
"""
from __future__ import annotations

import struct
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Union

from .decode import decode

try:  # orjson is several times faster; the stdlib is the fallback
    from orjson import dumps
except ImportError:  # pragma: no cover
    import json as _json

    def dumps(obj: Any) -> bytes:
        return _json.dumps(obj, separators=(",", ":")).encode()


SNAP_MAX = 256  # bytes of packet in an ordinary event (DT_SNAP_MAX)
SNAP_BIG = 1536  # in a recording with --payload (DT_SNAP_BIG)
STACK_MAX = 32
RAW = struct.Struct(f"<QQIIIIIIIIHHHHHHHHII16s16s{SNAP_MAX}s")
STACK = struct.Struct(f"<{STACK_MAX}Q")
F_HAS_REASON, F_NO_SKB = 1, 2
# Frames of the tracing machinery itself, trimmed from the top of stacks.
_TRACE_FRAMES = ("bpf_prog_", "bpf_trace_run", "__bpf_trace_", "perf_trace_", "trace_event_raw_")
HDR = struct.Struct("<QQIIIIIIIIHHHHHHHHII")  # struct dt_event up to comm
HDR_SIZE = HDR.size + 32  # offset of data[]: the header, comm[16] and ifname[16]
CONFIG = struct.Struct("<17I16s7I")  # struct dt_config
INSN = struct.Struct("<HBBI")  # struct dt_insn
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
        d = {k: getattr(self, k) for k in SCHEMA_KEYS}
        if with_stack:
            d["stack"] = self.stack
        return d


SCHEMA_KEYS = ("time", "reason", "reason_code", "location", "l3", "l4", "saddr", "daddr", "sport",
               "dport", "tcp_flags", "icmp_type", "icmp_code", "len", "mark", "ifindex", "ifname",
               "netns", "cpu", "pid", "tid", "comm")


class Converter:
    """Turns raw ring-buffer records into Events (or straight into JSON lines).

    A drop storm repeats itself: the same location, reason, interface and flow,
    packet after packet. What is decoded from those is cached, keyed by the
    record's constant parts and the packet bytes minus the IPv4 ID and header
    checksum (which change per packet but do not change what is decoded), so a
    storm costs an unpack and a format per event.
    """

    CACHE_MAX = 8192

    def __init__(self, reason_name: Callable[[int], str], symbolize: Callable[[int], str],
                 mono_to_wall_ns: int, with_stack: bool = False, snap_area: int = SNAP_MAX) -> None:
        self.snap_area = snap_area  # bytes of packet room in each record: SNAP_MAX or SNAP_BIG
        self.record_size = HDR_SIZE + snap_area  # plus STACK.size with a stack
        self.reason_name = reason_name
        self.symbolize = symbolize
        self.offset_ns = mono_to_wall_ns
        self.with_stack = with_stack
        self._static: Dict[tuple, tuple] = {}
        self._comms: Dict[bytes, tuple] = {}
        self._stacks: Dict[bytes, tuple] = {}
        self._sec = -1
        self._sec_prefix = ""
        self._tz = ""

    # -- shared pieces ---------------------------------------------------
    def time_iso(self, wall_ns: int) -> str:
        """ISO-8601, microseconds, local offset; the date part is cached per second."""
        sec, rest = divmod(wall_ns, 1_000_000_000)
        if sec != self._sec:
            t = time.localtime(sec)
            z = time.strftime("%z", t)
            self._tz = f"{z[:3]}:{z[3:]}" if len(z) == 5 else "+00:00"
            self._sec_prefix = time.strftime("%Y-%m-%dT%H:%M:%S", t)
            self._sec = sec
        return f"{self._sec_prefix}.{rest // 1000:06d}{self._tz}"

    def _key(self, raw: bytes, net_off: int, cap_len: int) -> bytes:
        """The record minus what changes per packet of a storm: time, task, CPU, length,
        and the IPv4 ID and header checksum (none of which changes what is decoded)."""
        end = HDR_SIZE + min(cap_len, self.snap_area)
        ip = HDR_SIZE + net_off
        if ip + 12 < end and raw[ip] >> 4 == 4:
            return (raw[8:20] + raw[36:58] + raw[64:68] + raw[88:ip + 4] + raw[ip + 6:ip + 10]
                    + raw[ip + 12:end])
        return raw[8:20] + raw[36:58] + raw[64:68] + raw[88:end]

    def _static_for(self, raw: bytes, h: tuple) -> tuple:
        key = self._key(raw, h[12], h[13])
        hit = self._static.get(key)
        if hit is not None:
            return hit
        (_ts, location, reason, _pid, _tid, _cpu, _length, mark, ifindex, netns, protocol, mac_off,
         net_off, cap_len, dev_type, _stack_len, _data_off, _pad, flags, _reserved) = h
        captured = raw[HDR_SIZE:HDR_SIZE + min(cap_len, self.snap_area)]
        ifname = raw[88:104]
        pkt = decode(captured, mac_off, net_off, protocol, dev_type)
        has_reason = bool(flags & F_HAS_REASON)
        skb = not flags & F_NO_SKB
        static = {
            "reason": self.reason_name(reason) if has_reason else None,
            "reason_code": reason if has_reason else None,
            "location": self.symbolize(location),
            "l3": pkt.l3, "l4": pkt.l4, "saddr": pkt.saddr, "daddr": pkt.daddr, "sport": pkt.sport,
            "dport": pkt.dport, "tcp_flags": pkt.tcp_flags, "icmp_type": pkt.icmp_type,
            "icmp_code": pkt.icmp_code, "mark": mark if skb else None,
            "ifindex": ifindex or None,
            "ifname": ifname.split(b"\0", 1)[0].decode(errors="replace") or None,
            "netns": netns or None,
        }
        part_a = dumps({k: static[k] for k in _PART_A})[1:-1]
        part_b = dumps({k: static[k] for k in _PART_B})[1:-1]
        ethernet = mac_off == 0 and dev_type in (1, 772) and len(captured) >= 14
        hit = (static, b'",' + part_a + b',"len":', b"," + part_b + b',"cpu":', skb, ethernet)
        if len(self._static) >= self.CACHE_MAX:
            self._static.clear()
        self._static[key] = hit
        return hit

    def _comm(self, comm: bytes) -> tuple:
        hit = self._comms.get(comm)
        if hit is None:
            text = comm.split(b"\0", 1)[0].decode(errors="replace")
            if len(self._comms) >= self.CACHE_MAX:
                self._comms.clear()
            hit = self._comms[comm] = (text, dumps(text))
        return hit

    def _stack(self, raw: bytes, stack_len: int) -> tuple:
        at = self.record_size
        if len(raw) < at + STACK.size:
            return [], b"[]"
        key = raw[at:at + min(stack_len, STACK.size)]
        hit = self._stacks.get(key)
        if hit is None:
            frames = STACK.unpack_from(raw, at)[: min(stack_len, STACK.size) // 8]
            names = trim_stack([self.symbolize(a) for a in frames if a])
            if len(self._stacks) >= self.CACHE_MAX:
                self._stacks.clear()
            hit = self._stacks[key] = (names, dumps(names))
        return hit

    # -- the two outputs ---------------------------------------------------
    def convert(self, raw: bytes) -> Event:
        if len(raw) < self.record_size:
            raw = raw.ljust(self.record_size, b"\0")
        h = HDR.unpack_from(raw)
        ts, length, stack_len, data_off = h[0], h[6], h[15], h[16]
        static, _a, _b, skb, ethernet = self._static_for(raw, h)
        captured = raw[HDR_SIZE:HDR_SIZE + min(h[13], self.snap_area)]
        wall = ts + self.offset_ns
        return Event(time=self.time_iso(wall), len=length if skb else None, cpu=h[5],
                     pid=h[3], tid=h[4], comm=self._comm(raw[72:88])[0],
                     stack=list(self._stack(raw, stack_len)[0]) if self.with_stack else None,
                     packet=captured, link_ethernet=ethernet, ts_ns=wall,
                     wire_len=max(len(captured), length + data_off if skb else 0), **static)

    def json_line(self, raw: bytes) -> bytes:
        """The --json object for a record, without building an Event (the storm path)."""
        if len(raw) < self.record_size:
            raw = raw.ljust(self.record_size, b"\0")
        h = HDR.unpack_from(raw)
        _static, part_a, part_b, skb, _eth = self._static_for(raw, h)
        line = b'{"time":"%s%s%s%s%d,"pid":%d,"tid":%d,"comm":%s' % (
            self.time_iso(h[0] + self.offset_ns).encode(), part_a,
            b"%d" % h[6] if skb else b"null", part_b, h[5], h[3], h[4], self._comm(raw[72:88])[1])
        if self.with_stack:
            line += b',"stack":' + self._stack(raw, h[15])[1]
        return line + b"}"


_PART_A = ("reason", "reason_code", "location", "l3", "l4", "saddr", "daddr", "sport", "dport",
           "tcp_flags", "icmp_type", "icmp_code")
_PART_B = ("mark", "ifindex", "ifname", "netns")


def trim_stack(frames: List[str]) -> List[str]:
    """Drop the tracer's own frames (BPF program, trace glue) from the top."""
    i = 0
    while i < len(frames) and frames[i].startswith(_TRACE_FRAMES):
        i += 1
    return frames[i:]
