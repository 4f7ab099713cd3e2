"""The one place droptrace writes bytes out: every byte, or one clear error line.

Why not sys.stdout.buffer.write()? With PYTHONUNBUFFERED=1 (most container
images) that is a raw FileIO, and a raw write may write only part of its data:
a signal whose handler does not raise ends a write blocked on a full pipe early
(write(1, 76018 bytes) = 57344), and a non-blocking stdout returns EAGAIN.
Callers that ignore the count lose data; this loop does not.
"""
from __future__ import annotations

import errno
import os
import select
import sys
from typing import IO, Any, Optional, Union

from ..errors import DroptraceError

_ERROR_EVENTS = select.POLLERR | select.POLLHUP


class OutputError(DroptraceError):
    """Writing failed for a reason the user can act on (disk full, I/O error...): exit 1."""


class Output:
    """Writes every byte or fails with one clear line.

    EPIPE stays a BrokenPipeError, so the CLI can exit quietly when the reader
    went away (`droptrace | head`); any other write error is an OutputError
    such as "writing stdout: No space left on device".
    """

    def __init__(self, fd_or_file: Union[int, IO[Any]], name: str = "stdout") -> None:
        self.name = name
        self.bytes_written = 0  # bytes that reached the fd, also when a write then fails
        self._owned = False
        self._closed = False
        self._poller: Optional[select.poll] = None
        self._file: Optional[IO[Any]] = None
        if isinstance(fd_or_file, int):
            self._fd = fd_or_file
            return
        # Kept so the file object, and with it the fd, stays alive while we write to it.
        self._file = fd_or_file
        flush = getattr(fd_or_file, "flush", None)
        if flush is not None:  # what was written through the object goes out before our bytes
            try:
                flush()
            except BrokenPipeError:
                raise
            except OSError as e:
                raise self._error(e) from e
        self._fd = fd_or_file.fileno()

    @classmethod
    def stdout(cls) -> "Output":
        """sys.stdout's fd, after flushing what was printed to sys.stdout so far.

        Falls back to fd 1 when sys.stdout is None or has no usable fd (replaced by a
        StringIO, closed): the bytes then still go to the process's standard output.
        """
        f = sys.stdout
        if f is not None:
            try:
                f.fileno()
            except (AttributeError, ValueError, OSError):  # io.UnsupportedOperation is both
                f = None
        return cls(f if f is not None else 1, "stdout")

    @classmethod
    def open(cls, path: str) -> "Output":
        """A new (truncated) file at path, or stdout for "-"; close() closes the file."""
        if path == "-":
            return cls.stdout()
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        except OSError as e:
            raise DroptraceError(f"cannot write {path}: {e.strerror or e}") from e
        out = cls(fd, path)
        out._owned = True
        return out

    def fileno(self) -> int:
        return self._fd

    def write(self, data: Union[bytes, bytearray, memoryview]) -> None:
        """Write all of data, however many os.write calls that takes."""
        if self._closed:
            raise ValueError(f"write to {self.name} after close()")
        view = memoryview(data).cast("B")  # slices of a memoryview do not copy the rest each time
        done, total = 0, len(view)
        hung_up = False
        while done < total:
            try:
                n = os.write(self._fd, view[done:])
            except InterruptedError:  # only if a handler asked for it; Python retries otherwise
                continue
            except BlockingIOError:  # non-blocking fd, full: sleep in poll until there is room
                if hung_up:  # poll said error/hang-up but write still says "later": not spinning on it
                    raise OutputError(f"writing {self.name}: the reader hung up") from None
                hung_up = self._wait_writable()
                continue
            except BrokenPipeError:
                raise
            except OSError as e:
                raise self._error(e) from e
            if n == 0:  # would loop forever otherwise
                raise OutputError(f"writing {self.name}: the device accepted no data")
            done += n
            self.bytes_written += n
            hung_up = False

    def write_text(self, text: str) -> None:
        """UTF-8; characters UTF-8 cannot carry (lone surrogates) become "?" rather than fail."""
        self.write(text.encode("utf-8", "replace"))

    def close(self) -> None:
        """Closes the fd only if open() opened it; calling it again does nothing."""
        if self._closed:
            return
        self._closed = True
        self._poller = None
        if self._owned:
            try:
                os.close(self._fd)  # on NFS, close() is where a late ENOSPC or EIO shows up
            except OSError as e:
                raise self._error(e) from e

    def __enter__(self) -> "Output":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _wait_writable(self) -> bool:
        """Block until the fd takes data; True if it reported an error or hang-up instead.

        After an error or hang-up the caller writes again so the real errno (EPIPE...)
        is what gets reported.
        """
        if self._poller is None:
            self._poller = select.poll()
            self._poller.register(self._fd, select.POLLOUT)
        while True:
            events = self._poller.poll()  # no timeout: a slow reader is allowed; EINTR is retried
            mask = 0
            for _fd, ev in events:
                mask |= ev
            if mask & select.POLLNVAL:
                raise OutputError(f"writing {self.name}: {os.strerror(errno.EBADF)}")
            if mask & select.POLLOUT:
                return False
            if mask & _ERROR_EVENTS:
                return True

    def _error(self, e: OSError) -> OutputError:
        return OutputError(f"writing {self.name}: {e.strerror or e}")
