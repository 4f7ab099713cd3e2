"""Recordings: where events are written (-w) and read back (report, droptrace.read).

pcapng keeps the packets for Wireshark and tshark; JSON lines keep the same
objects as --json. The format follows the file's extension unless --format
says otherwise; reading recognises both by their content.
"""
from __future__ import annotations

import json
import os
from datetime import datetime
from typing import BinaryIO, Iterator, List, Optional

from . import pcapng
from .errors import DroptraceError
from .event import Event
from .output import JsonWriter

FORMATS = ("pcapng", "jsonl")


def format_for(path: str, fmt: Optional[str]) -> str:
    if fmt:
        return fmt
    ext = os.path.splitext(path)[1].lower()
    if ext in (".jsonl", ".json", ".ndjson"):
        return "jsonl"
    if ext in (".pcapng", ".pcap", ".ntar", ""):
        return "pcapng"
    raise DroptraceError(f"cannot tell the format of {path!r} from its extension; "
                         "use .pcapng or .jsonl, or --format")


class FileSink:
    """A recording being written: every batch is flushed, so nothing is held back."""

    def __init__(self, path: str, fmt: str, stack: bool) -> None:
        self.path = path
        try:
            self._f: BinaryIO = open(path, "wb")
        except OSError as e:
            raise DroptraceError(f"cannot write {path}: {e.strerror}") from None
        try:
            self._writer = pcapng.Writer(self._f) if fmt == "pcapng" else JsonWriter(self._f, stack)
        except OSError as e:
            self._f.close()
            raise DroptraceError(f"writing {path}: {e.strerror}") from None

    def write(self, events: List[Event]) -> None:
        try:
            self._writer.write(events)
        except OSError as e:
            raise DroptraceError(f"writing {self.path}: {e.strerror}; "
                                 "the recording is complete up to the last whole drop") from None

    def close(self) -> None:
        try:
            self._f.close()
        except OSError as e:
            raise DroptraceError(f"closing {self.path}: {e.strerror}") from None


def read(path: str) -> Iterator[Event]:
    """Events from a droptrace recording, pcapng or JSON lines (by content)."""
    try:
        f = open(path, "rb")
    except OSError as e:
        raise DroptraceError(f"cannot read {path}: {e.strerror}") from None
    with f:
        head = f.read(4)
        f.seek(0)
        if head == b"\x0a\x0d\x0d\x0a":
            try:
                yield from pcapng.read(f)
            except (pcapng.PcapngError, ValueError) as e:
                raise DroptraceError(f"{path}: {e}") from None
            return
        lines = f.read().splitlines()
    for n, line in enumerate(lines, 1):
        line = line.strip()
        if not line:
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            if n == len(lines) and line.startswith(b"{"):
                return  # the torn last line of a killed recording
            raise DroptraceError(f"{path}:{n}: not a droptrace recording "
                                 "(neither pcapng nor JSON lines)") from None
        if not isinstance(obj, dict):
            raise DroptraceError(f"{path}:{n}: expected a JSON object per line")
        yield Event.from_dict(obj, ts_ns=_ts_ns(obj.get("time")))


def _ts_ns(text: Optional[str]) -> int:
    try:
        return int(datetime.fromisoformat(text).timestamp() * 1e9) if text else 0
    except (TypeError, ValueError):
        return 0
