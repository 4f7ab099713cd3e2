"""The one interface trace_loop writes through: a sink takes a batch of raw records
(kernel.ringbuf.Batch) and says how many it wrote.

Most writers take the batch as Events (EventSink); --json's storm path and trail take the
raw records and decode only what they show. formats/compiled.py may stand in front of a
writer and render the batch in C where that writes the same bytes; nothing outside
formats/ knows whether it does.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, List, Protocol

if TYPE_CHECKING:
    from ..kernel.ringbuf import Batch


class Sink(Protocol):
    """What trace_loop writes to."""

    def write_batch(self, batch: "Batch") -> int:
        """Take the batch (once); how many records were written."""


class EventSink:
    """A writer of Events: write_batch() decodes the batch and hands it to write()."""

    def write(self, events: List[Any]) -> None:
        raise NotImplementedError

    def write_batch(self, batch: "Batch") -> int:
        events = batch.events()
        self.write(events)
        return len(events)
