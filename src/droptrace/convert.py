"""Raw ring-buffer records (struct dt_event) to Events, or straight to JSON lines.

Fields are found by name in the BPF object's BTF (kernel/contract.py), never
by position: the header is unpacked once per record and read through indexes
computed here from the layout.
"""
from __future__ import annotations

import operator
import socket
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Tuple

from .event import PER_PACKET_KEYS, SCHEMA_KEYS, Event, dumps, iso_parts
from .kernel.contract import Contract, contract
from .packet.decode import ETHERTYPES, IPPROTOS, decode

# Frames of the tracing machinery itself, trimmed from the top of stacks.
_TRACE_FRAMES = ("bpf_prog_", "bpf_trace_run", "__bpf_trace_", "perf_trace_", "trace_event_raw_")
# The scalar fields of struct dt_event read here, by name.
HEADER_FIELDS = ("ts_ns", "location", "reason", "pid", "tid", "cpu", "len", "mark", "ifindex", "netns",
                 "protocol", "mac_off", "net_off", "cap_len", "dev_type", "stack_len", "data_off", "flags")
# Fields that change per packet of one flow (time, task, CPU, length) or only matter per packet:
# the decode cache's key is every other byte of the header.
_NOT_KEYED = ("ts_ns", "pid", "tid", "cpu", "len", "stack_len", "data_off", "_pad", "_reserved", "comm",
              "data")
# The JSON object is the cached static part with the per-packet values spliced in: schema keys
# between `time` and `len`, and between `len` and `cpu`.
_PART_A = SCHEMA_KEYS[SCHEMA_KEYS.index("time") + 1:SCHEMA_KEYS.index("len")]
_PART_B = SCHEMA_KEYS[SCHEMA_KEYS.index("len") + 1:SCHEMA_KEYS.index("cpu")]
assert SCHEMA_KEYS[SCHEMA_KEYS.index("cpu"):] == ("cpu", "pid", "tid", "comm"), SCHEMA_KEYS
assert set(PER_PACKET_KEYS) == set(SCHEMA_KEYS) - set(_PART_A) - set(_PART_B)


class Decoded(NamedTuple):
    """What a record's static part decodes to, cached per key: the Event fields, the two runs of
    its JSON object between the per-packet values, whether it came with an skb (mark is
    meaningful), and whether its bytes are an Ethernet frame."""

    fields: Dict[str, Any]
    json_a: bytes  # from after `time` up to `"len":`
    json_b: bytes  # from after the length up to `"cpu":`
    skb: bool
    ethernet: bool


def _ranges(spans: List[Tuple[int, int]]) -> List[Tuple[int, int]]:
    out: List[Tuple[int, int]] = []
    for a, b in sorted(spans):
        if out and out[-1][1] == a:
            out[-1] = (out[-1][0], b)
        else:
            out.append((a, b))
    return out


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
                 mono_to_wall_ns: int, with_stack: bool = False, big: bool = False,
                 layouts: Optional[Contract] = None) -> None:
        c = layouts or contract()
        ev = self.event = c.struct("dt_event")  # the layout, also for formats/compiled.py
        self.header, idx = ev.struct(HEADER_FIELDS)
        self.idx = idx
        self._i_cap, self._i_net = idx["cap_len"], idx["net_off"]  # read for every record
        self.data_at = ev.offset("data")
        plain, stacked = ("dt_event_big", "dt_event_big_stack") if big else ("dt_event", "dt_event_stack")
        self.record_size = c.struct(plain).size  # plus the stack with --stack
        self.snap_area = self.record_size - self.data_at  # bytes of packet room in each record
        self.stack_at = c.struct(stacked).offset("stack")
        self.stack_bytes = c.struct(stacked).field("stack").size
        comm, ifname = ev.field("comm"), ev.field("ifname")
        self.comm_slice = slice(comm.offset, comm.offset + comm.size)
        self.ifname_slice = slice(ifname.offset, ifname.offset + ifname.size)
        keyed = self.keyed = _ranges([(f.offset, f.offset + f.size) for f in ev.fields.values()
                                      if f.name not in _NOT_KEYED])
        self._key_parts = operator.itemgetter(*(slice(a, b) for a, b in keyed), slice(0, 0))
        self.reason_name = reason_name
        self.symbolize = symbolize
        self.offset_ns = mono_to_wall_ns
        self.with_stack = with_stack
        self.has_reason_flag = c.const["DT_F_HAS_REASON"]
        self.no_skb_flag = c.const["DT_F_NO_SKB"]
        self._static: Dict[bytes, Decoded] = {}
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
            self._sec_prefix, self._tz = iso_parts(sec)
            self._sec = sec
        return f"{self._sec_prefix}.{rest // 1000:06d}{self._tz}"

    def _key(self, raw: bytes, net_off: int, cap_len: int) -> bytes:
        """The record minus what changes per packet of a storm: time, task, CPU, length,
        and the IPv4 ID and header checksum (none of which changes what is decoded)."""
        head = b"".join(self._key_parts(raw))
        at = self.data_at
        end = at + min(cap_len, self.snap_area)
        ip = at + net_off
        if ip + 12 < end and raw[ip] >> 4 == 4:
            return head + raw[at:ip + 4] + raw[ip + 6:ip + 10] + raw[ip + 12:end]
        return head + raw[at:end]

    def _static_for(self, raw: bytes, h: tuple) -> Decoded:
        cap_len, net_off = h[self._i_cap], h[self._i_net]
        key = self._key(raw, net_off, cap_len)
        hit = self._static.get(key)
        if hit is not None:
            return hit
        i = self.idx
        mac_off, protocol, dev_type = h[i["mac_off"]], h[i["protocol"]], h[i["dev_type"]]
        reason, flags = h[i["reason"]], h[i["flags"]]
        captured = raw[self.data_at:self.data_at + min(cap_len, self.snap_area)]
        pkt = decode(captured, mac_off, net_off, protocol, dev_type)
        has_reason = bool(flags & self.has_reason_flag)
        skb = not flags & self.no_skb_flag
        static = {
            "reason": self.reason_name(reason) if has_reason else None,
            "reason_code": reason if has_reason else None,
            "location": self.symbolize(h[i["location"]]),
            "l3": pkt.l3, "l4": pkt.l4, "saddr": pkt.saddr, "daddr": pkt.daddr, "sport": pkt.sport,
            "dport": pkt.dport, "tcp_flags": pkt.tcp_flags, "icmp_type": pkt.icmp_type,
            "icmp_code": pkt.icmp_code, "mark": h[i["mark"]] if skb else None,
            "ifindex": h[i["ifindex"]] or None,
            "ifname": raw[self.ifname_slice].split(b"\0", 1)[0].decode(errors="replace") or None,
            "netns": h[i["netns"]] or None,
        }
        part_a = dumps({k: static[k] for k in _PART_A})[1:-1]
        part_b = dumps({k: static[k] for k in _PART_B})[1:-1]
        ethernet = mac_off == 0 and dev_type in (1, 772) and len(captured) >= 14
        hit = Decoded(static, b'",' + part_a + b',"len":', b"," + part_b + b',"cpu":', skb, ethernet)
        if len(self._static) >= self.CACHE_MAX:
            self._static.clear()
        self._static[key] = hit
        return hit

    def comm_text(self, comm: bytes) -> tuple:
        """(name, its JSON) of a record's comm bytes, cached: a storm has few task names."""
        hit = self._comms.get(comm)
        if hit is None:
            text = comm.split(b"\0", 1)[0].decode(errors="replace")
            if len(self._comms) >= self.CACHE_MAX:
                self._comms.clear()
            hit = self._comms[comm] = (text, dumps(text))
        return hit

    def _stack(self, raw: bytes, stack_len: int) -> tuple:
        at, size = self.stack_at, self.stack_bytes
        if len(raw) < at + size:
            return [], b"[]"
        return self.stack_names(raw[at:at + min(stack_len, size)])

    def stack_names(self, key: bytes) -> tuple:
        """(frames symbolized and trimmed, their JSON) of a record's valid stack bytes, cached."""
        hit = self._stacks.get(key)
        if hit is None:
            frames = [int.from_bytes(key[j:j + 8], "little") for j in range(0, len(key) - 7, 8)]
            names = trim_stack([self.symbolize(a) for a in frames if a])
            if len(self._stacks) >= self.CACHE_MAX:
                self._stacks.clear()
            hit = self._stacks[key] = (names, dumps(names))
        return hit

    def check(self, raw: bytes) -> None:
        """A record of a size this object does not write means a stale install: say so once.
        (Without a stack, BPF trims a record to its packet: any size from data_at up.)"""
        if len(raw) not in (self.record_size, self.stack_at + self.stack_bytes) and not (
                self.data_at <= len(raw) < self.record_size):
            from .errors import DroptraceError

            raise DroptraceError(f"event of {len(raw)} bytes from BPF, expected {self.record_size}: the "
                                 "BPF object and this droptrace disagree; reinstall droptrace")

    # -- the two outputs ---------------------------------------------------
    def convert(self, raw: bytes) -> Event:
        if len(raw) < self.record_size:
            raw = raw.ljust(self.record_size, b"\0")
        h = self.header.unpack_from(raw)
        i = self.idx
        length, stack_len, data_off = h[i["len"]], h[i["stack_len"]], h[i["data_off"]]
        static, _a, _b, skb, ethernet = self._static_for(raw, h)
        captured = raw[self.data_at:self.data_at + min(h[i["cap_len"]], self.snap_area)]
        wall = h[i["ts_ns"]] + self.offset_ns
        return Event(time=self.time_iso(wall), len=length if skb else None, cpu=h[i["cpu"]],
                     pid=h[i["pid"]], tid=h[i["tid"]], comm=self.comm_text(raw[self.comm_slice])[0],
                     stack=list(self._stack(raw, stack_len)[0]) if self.with_stack else None,
                     packet=captured, link_ethernet=ethernet, ts_ns=wall,
                     wire_len=max(len(captured), length + data_off if skb else 0), **static)

    def json_lines(self, records: List[bytes]) -> List[bytes]:
        """The --json objects for a batch of records, without building Events (the storm path)."""
        i = self.idx
        its, ilen, icpu, ipid, itid, istack = (i["ts_ns"], i["len"], i["cpu"], i["pid"], i["tid"],
                                               i["stack_len"])
        unpack, static_for, time_iso, comm_of = (self.header.unpack_from, self._static_for,
                                                 self.time_iso, self.comm_text)
        comm_slice, offset, size = self.comm_slice, self.offset_ns, self.record_size
        stack = self._stack if self.with_stack else None
        out = []
        for raw in records:
            if len(raw) < size:
                raw = raw.ljust(size, b"\0")
            h = unpack(raw)
            _static, part_a, part_b, skb, _eth = static_for(raw, h)
            line = b'{"time":"%s%s%s%s%d,"pid":%d,"tid":%d,"comm":%s' % (
                time_iso(h[its] + offset).encode(), part_a, b"%d" % h[ilen] if skb else b"null",
                part_b, h[icpu], h[ipid], h[itid], comm_of(raw[comm_slice])[1])
            if stack is not None:
                line += b',"stack":' + stack(raw, h[istack])[1]
            out.append(line + b"}")
        return out

    def json_line(self, raw: bytes) -> bytes:
        return self.json_lines([raw])[0]


def describe_aggregate(key: Dict[str, Any], ifname: str, reason_name: Callable[[int], str],
                       symbolize: Callable[[int], str], addrs_bit: int, ports_bit: int) -> Dict[str, Any]:
    """A key of the in-kernel counts (struct dt_agg_key, by name) as the event's fields: the
    reason and location named, the flow only as far as its DT_FLOW_* bits say it was read."""
    netns, ifindex = key["netns"], key["ifindex"]
    d: Dict[str, Any] = {"reason": reason_name(key["reason"]), "location": symbolize(key["location"]),
                         "netns": netns or None, "ifname": ifname or None, "ifindex": ifindex or None}
    d.update(describe_flow(key, addrs_bit, ports_bit))
    return d


def describe_flow(flow: Dict[str, Any], addrs_bit: int, ports_bit: int) -> Dict[str, Any]:
    """A packet's identity as the kernel read it from its network header (the fields l3proto,
    l4proto, has_flow, saddr, daddr, sport, dport of struct dt_agg_key or dt_headers, by name) as
    the event's l3, l4, saddr, daddr, sport, dport: each only as far as has_flow says it was read."""
    l3proto = flow["l3proto"]
    l3 = ETHERTYPES.get(l3proto, f"0x{l3proto:04x}") if l3proto else None
    d: Dict[str, Any] = dict(l3=l3, l4=None, saddr=None, daddr=None, sport=None, dport=None)
    bits = flow["has_flow"]
    if bits & addrs_bit and l3 in ("ipv4", "ipv6"):
        fam, n = (socket.AF_INET, 4) if l3 == "ipv4" else (socket.AF_INET6, 16)
        d.update(l4=IPPROTOS.get(flow["l4proto"], flow["l4proto"]),
                 saddr=socket.inet_ntop(fam, flow["saddr"][:n]),
                 daddr=socket.inet_ntop(fam, flow["daddr"][:n]))
        if bits & ports_bit:
            d.update(sport=flow["sport"], dport=flow["dport"])
    return d


def trim_stack(frames: List[str]) -> List[str]:
    """Drop the tracer's own frames (BPF program, trace glue) from the top."""
    i = 0
    while i < len(frames) and frames[i].startswith(_TRACE_FRAMES):
        i += 1
    return frames[i:]
