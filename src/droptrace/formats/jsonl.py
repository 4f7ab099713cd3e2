"""JSON lines: one --json object per drop, nothing else on the stream."""
from __future__ import annotations

from typing import TYPE_CHECKING, List, Optional

from ..event import Event, dumps
from .out import Output
from .sink import EventSink

if TYPE_CHECKING:
    from ..kernel.ringbuf import Batch


class JsonWriter(EventSink):
    """Events as JSON lines (recordings, and --json when events are already built)."""

    def __init__(self, out: Output, stack: Optional[bool] = None) -> None:
        self.out = out
        self.stack = stack

    def write(self, events: List[Event]) -> None:
        if events:
            self.out.write(self.render(events))

    def render(self, events: List[Event]) -> bytes:
        """The lines of these events, as write() writes them."""
        return b"".join([dumps(e.to_dict(with_stack=self.stack)) + b"\n" for e in events])


class RawJsonWriter:
    """--json straight from raw records (Converter.json_lines): the drop-storm path."""

    def __init__(self, out: Output) -> None:
        self.out = out

    def write_batch(self, batch: "Batch") -> int:
        records = batch.records()
        if records:
            self.out.write(b"\n".join(batch.converter.json_lines(records)) + b"\n")
        return len(records)
