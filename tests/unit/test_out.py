"""Output writes every byte through real fds: slow, full, non-blocking, interrupted, broken, full disk."""
import fcntl
import os
import random
import select
import signal
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from droptrace.errors import DroptraceError
from droptrace.formats import out as outmod
from droptrace.formats.out import Output, OutputError

F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)  # the constants are in fcntl from Python 3.10
F_GETPIPE_SZ = getattr(fcntl, "F_GETPIPE_SZ", 1032)
SRC = str(Path(__file__).resolve().parents[2] / "src")


def payload(size: int, seed: int = 0) -> bytes:
    """Random bytes: a lost, repeated or reordered chunk cannot go unnoticed."""
    return random.Random(seed).getrandbits(8 * size).to_bytes(size, "little") if size else b""


def small_pipe():
    r, w = os.pipe()
    try:
        fcntl.fcntl(w, F_SETPIPE_SZ, 4096)
    except OSError:
        pass  # still correct, the payloads are just less "much larger" than the pipe
    return r, w


def set_nonblocking(fd: int, on: bool = True) -> None:
    flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    fcntl.fcntl(fd, fcntl.F_SETFL, flags | os.O_NONBLOCK if on else flags & ~os.O_NONBLOCK)


def fill(w: int) -> bytes:
    """Fill the pipe to capacity so that the next write has to wait for the reader."""
    was = fcntl.fcntl(w, fcntl.F_GETFL)
    set_nonblocking(w)
    chunks = []
    try:
        while True:
            chunk = payload(512, seed=len(chunks) + 1000)
            try:
                n = os.write(w, chunk)
            except BlockingIOError:
                break
            chunks.append(chunk[:n])
    finally:
        fcntl.fcntl(w, fcntl.F_SETFL, was)
    return b"".join(chunks)


class Reader(threading.Thread):
    """Reads the pipe to EOF in small chunks, once `go` is set; SIGALRM stays with the main thread."""

    def __init__(self, r: int, chunk: int = 1000, go: "threading.Event | None" = None) -> None:
        super().__init__(daemon=True)
        self.r, self.chunk, self.go = r, chunk, go
        self.parts = []

    def run(self) -> None:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
        if self.go is not None:
            self.go.wait()
        while True:
            data = os.read(self.r, self.chunk)
            if not data:
                break
            self.parts.append(data)
        os.close(self.r)

    def result(self) -> bytes:
        self.join(timeout=10)
        assert not self.is_alive()
        return b"".join(self.parts)


def test_slow_reader_gets_everything_in_order():
    r, w = small_pipe()
    go = threading.Event()
    reader = Reader(r, chunk=700, go=go)
    reader.start()
    before = fill(w)  # full: the write below blocks until the reader, released now, makes room
    go.set()
    data = payload(1 << 20)
    out = Output(w, "pipe")
    out.write(data)
    os.close(w)
    assert reader.result() == before + data
    assert out.bytes_written == len(data)


def test_nonblocking_fd_waits_in_poll_not_spinning(monkeypatch):
    r, w = small_pipe()
    before = fill(w)
    set_nonblocking(w)
    calls = {"ok": 0, "eagain": 0}
    real_write = os.write

    reader = Reader(r, chunk=300)

    def counting_write(fd, data):  # a spy: the writes are real, only counted
        try:
            n = real_write(fd, data)
        except BlockingIOError:
            calls["eagain"] += 1
            if calls["eagain"] == 1:  # the pipe is full with nobody reading: now someone does
                reader.start()
            raise
        calls["ok"] += 1
        return n

    data = payload(300_000, seed=1)
    monkeypatch.setattr(os, "write", counting_write)
    Output(w, "pipe").write(memoryview(bytearray(data)))
    monkeypatch.undo()
    os.close(w)
    assert reader.result() == before + data
    assert calls["eagain"] >= 1  # the pipe was full: the EAGAIN path ran
    assert calls["eagain"] <= calls["ok"] + 1  # each EAGAIN was followed by a wait that made room


@pytest.fixture
def sigalrm():
    """Install a SIGALRM handler that does not raise (like a resize or stats handler); return the calls."""
    old = signal.getsignal(signal.SIGALRM)
    try:
        yield lambda handler, interval: (signal.signal(signal.SIGALRM, handler),
                                         signal.setitimer(signal.ITIMER_REAL, interval, interval))
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def test_writes_cut_short_by_signals_are_continued(sigalrm, monkeypatch):
    """The bug: a blocked write into a full pipe returns a partial count when a signal arrives.

    Here the handler itself is the reader, and Python runs it only once the blocked write has
    returned: every write that does not fit in the pipe is cut short, deterministically.
    """
    r, w = small_pipe()
    capacity = fcntl.fcntl(w, F_GETPIPE_SZ)
    set_nonblocking(r)
    got, short = [], []
    real_write = os.write

    def drain(signum, frame):
        try:
            got.append(os.read(r, 1 << 17))  # more than the pipe holds: empties it
        except BlockingIOError:
            pass

    def spy_write(fd, data):  # real writes, only the short ones noted
        n = real_write(fd, data)
        if n < len(data):
            short.append(n)
        return n

    data = payload(200_000, seed=2)
    monkeypatch.setattr(os, "write", spy_write)
    sigalrm(drain, 0.0005)
    out = Output(w, "pipe")
    out.write(data)
    signal.setitimer(signal.ITIMER_REAL, 0)
    monkeypatch.undo()
    os.close(w)
    set_nonblocking(r, False)
    while True:
        rest = os.read(r, 1 << 17)
        if not rest:
            break
        got.append(rest)
    os.close(r)
    assert b"".join(got) == data
    assert out.bytes_written == len(data)
    assert len(short) >= len(data) // capacity - 1  # each write stopped once the pipe was full


def test_signals_while_a_reader_thread_drains(sigalrm):
    """The same with a reader thread that reads once per signal, so signals keep hitting blocked writes."""
    r, w = small_pipe()
    tick, finished = threading.Event(), threading.Event()
    parts = []

    def reader():
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
        while True:
            if not finished.is_set():
                tick.wait()
                tick.clear()
            data = os.read(r, 6000)
            if not data:
                break
            parts.append(data)
        os.close(r)

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    data = payload(300_000, seed=3)
    busy = []

    def alarm(signum, frame):  # a signal that lands inside this handler must not take tick's lock again
        if not busy:
            busy.append(1)
            tick.set()
            busy.clear()

    sigalrm(alarm, 0.0005)
    Output(w, "pipe").write(data)
    signal.setitimer(signal.ITIMER_REAL, 0)
    os.close(w)
    finished.set()
    tick.set()
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert b"".join(parts) == data


def test_full_disk_is_one_clear_error():
    with Output.open("/dev/full") as out:
        with pytest.raises(OutputError) as e:
            out.write(b"x" * 100_000)
    assert str(e.value) == "writing /dev/full: No space left on device"
    assert isinstance(e.value, DroptraceError) and e.value.exit_code == 1

    fd = os.open("/dev/full", os.O_WRONLY)
    try:
        with pytest.raises(OutputError, match=r"^writing stdout: No space left on device$"):
            Output(fd).write_text("hello\n")
    finally:
        os.close(fd)


def test_closed_reader_is_a_broken_pipe():
    r, w = os.pipe()
    os.close(r)
    try:
        with pytest.raises(BrokenPipeError) as e:
            Output(w).write(b"lost")
        assert not isinstance(e.value, DroptraceError)
    finally:
        os.close(w)


def test_reader_closing_while_waiting_for_room_is_a_broken_pipe(monkeypatch):
    """POLLERR from poll ends the wait, and the next write reports EPIPE: no hang, no spin."""
    r, w = small_pipe()
    fill(w)
    set_nonblocking(w)
    real_poll = select.poll

    class PollThatClosesTheReader:  # the real poll, once the reader is gone
        def __init__(self):
            self.p = real_poll()

        def register(self, fd, mask):
            self.p.register(fd, mask)

        def poll(self, *args):
            os.close(r)
            return self.p.poll(*args)

    monkeypatch.setattr(outmod.select, "poll", PollThatClosesTheReader)
    try:
        with pytest.raises(BrokenPipeError):
            Output(w, "pipe").write(b"y" * 10_000)
    finally:
        os.close(w)


@pytest.mark.parametrize("unbuffered", [True, False])
def test_open_dash_is_stdout_end_to_end(unbuffered):
    script = (
        "import sys\n"
        "from droptrace.formats.out import Output\n"
        "sys.stdout.write('printed first\\n')\n"
        "o = Output.open('-')\n"
        "o.write(b'raw bytes\\n')\n"
        "o.write_text('caf\\u00e9 \\udcff\\n')\n"
        "o.close(); o.close()\n"
        "print('stdout still open', o.bytes_written)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
    if unbuffered:
        env["PYTHONUNBUFFERED"] = "1"
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, timeout=30)
    assert proc.stderr == b""
    assert proc.stdout == ("printed first\nraw bytes\ncafé ?\nstdout still open 18\n").encode()


def test_open_creates_truncates_and_closes_its_own_fd(tmp_path):
    path = tmp_path / "drops.jsonl"
    old_umask = os.umask(0o022)
    try:
        with Output.open(str(path)):
            pass
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    path.write_bytes(b"old content that is longer")
    out = Output.open(str(path))
    fd = out.fileno()
    assert fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC
    out.write(b"new")
    out.close()
    out.close()
    assert path.read_bytes() == b"new"
    with pytest.raises(OSError):
        os.fstat(fd)


def test_open_of_unwritable_path_names_it(tmp_path):
    missing = tmp_path / "no" / "such" / "dir" / "x.pcapng"
    with pytest.raises(DroptraceError) as e:
        Output.open(str(missing))
    assert str(e.value) == f"cannot write {missing}: No such file or directory"
    assert e.value.exit_code == 1
    with pytest.raises(DroptraceError, match=f"^cannot write {tmp_path}: Is a directory$"):
        Output.open(str(tmp_path))


def test_does_not_close_what_it_did_not_open_and_flushes_file_objects_first(tmp_path):
    path = tmp_path / "mixed.txt"
    with open(path, "w", encoding="utf-8") as f:
        f.write("text through Python's buffer, ")
        with Output(f, str(path)) as out:
            out.write(bytearray(b"then bytes"))
            out.write(b"")
        assert not f.closed
        os.fstat(f.fileno())  # still open
    assert path.read_text() == "text through Python's buffer, then bytes"
    assert out.bytes_written == len(b"then bytes")
    with pytest.raises(ValueError):
        out.write(b"after close")


@settings(max_examples=40, deadline=None)
@given(sizes=st.lists(st.integers(0, 50_000), max_size=6), nonblocking=st.booleans(),
       chunk=st.integers(1, 9000), seed=st.integers(0, 2**32))
def test_any_sequence_of_writes_arrives_identical(sizes, nonblocking, chunk, seed):
    r, w = small_pipe()
    if nonblocking:
        set_nonblocking(w)
    reader = Reader(r, chunk=chunk)
    reader.start()
    pieces = [payload(size, seed + i) for i, size in enumerate(sizes)]
    out = Output(w, "pipe")
    for piece in pieces:
        out.write(piece)
    os.close(w)
    assert reader.result() == b"".join(pieces)
    assert out.bytes_written == sum(sizes)
