"""One dropped packet as users see it: the Event, whose fields are the JSON schema.

The schema's keys and their order are the dataclass's fields marked
`schema`; every writer and reader takes them from SCHEMA_KEYS.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, fields
from typing import Any, Dict, List, Optional, Tuple, Union

try:  # orjson is several times faster; the stdlib is the fallback
    from orjson import dumps
except ImportError:  # pragma: no cover
    import json as _json

    def dumps(obj: Any) -> bytes:
        return _json.dumps(obj, separators=(",", ":")).encode()


def _schema() -> Any:
    return field(metadata={"schema": True})


@dataclass
class Event:
    """A dropped packet, with the fields of droptrace's JSON schema."""

    time: str = _schema()
    reason: Optional[str] = _schema()
    reason_code: Optional[int] = _schema()
    location: str = _schema()
    l3: Optional[str] = _schema()
    l4: Union[str, int, None] = _schema()
    saddr: Optional[str] = _schema()
    daddr: Optional[str] = _schema()
    sport: Optional[int] = _schema()
    dport: Optional[int] = _schema()
    tcp_flags: Optional[str] = _schema()
    icmp_type: Optional[int] = _schema()
    icmp_code: Optional[int] = _schema()
    len: Optional[int] = _schema()
    mark: Optional[int] = _schema()
    ifindex: Optional[int] = _schema()
    ifname: Optional[str] = _schema()
    netns: Optional[int] = _schema()
    cpu: int = _schema()
    pid: int = _schema()
    tid: int = _schema()
    comm: str = _schema()
    stack: Optional[List[str]] = None  # with --stack; a key of the JSON object only then
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

    def to_dict(self, with_stack: Optional[bool] = None) -> Dict[str, Any]:
        """The --json object. The stack is included when asked, or by default when there is one."""
        d = {k: getattr(self, k) for k in SCHEMA_KEYS}
        if with_stack or (with_stack is None and self.stack is not None):
            d["stack"] = self.stack
        return d


SCHEMA_KEYS: Tuple[str, ...] = tuple(f.name for f in fields(Event) if f.metadata.get("schema"))
# What changes from packet to packet of one flow; the rest is cached by the converter.
PER_PACKET_KEYS = ("time", "len", "cpu", "pid", "tid", "comm")


def iso_parts(sec: int) -> Tuple[str, str]:
    """(date and time to the second, UTC offset as +HH:MM) of a wall-clock second, local time."""
    t = time.localtime(sec)
    z = time.strftime("%z", t)
    return time.strftime("%Y-%m-%dT%H:%M:%S", t), (f"{z[:3]}:{z[3:]}" if len(z) == 5 else "+00:00")


def iso_time(wall_ns: int) -> str:
    """The `time` field: ISO-8601 with microseconds and the local UTC offset."""
    sec, rest = divmod(wall_ns, 1_000_000_000)
    prefix, tz = iso_parts(sec)
    return f"{prefix}.{rest // 1000:06d}{tz}"
