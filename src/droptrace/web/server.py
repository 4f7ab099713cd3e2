"""The exporter's HTTP server: safe to leave listening on a node's network.

One asyncio loop in one thread holds every connection, so a client that connects and then sends
its request slowly, or never, costs a socket and a small buffer, not a thread: the head of each
request must arrive within READ_TIMEOUT (TLS handshake included), be at most MAX_HEAD bytes, and
at most MAX_CONNECTIONS connections are open at once (those past it are closed at once). Answers
are built by `handle` in a small pool of threads; requests for a path whose answer is being built
wait for that answer instead of building another (a burst of scrapes reads the kernel's map once).
A client that goes away early is one short line on stderr, at most once per LOG_EVERY seconds,
never a traceback. With a WebConfig: TLS, and HTTP basic authentication against bcrypt hashes.
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import logging
import resource
import socket
import ssl
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus
from typing import Any, Callable, Dict, Optional, Tuple

from .config import WebConfig
from .http import BadRequest, Request, Response, error, parse_head, render

READ_TIMEOUT = 10.0  # seconds for a request head (and the TLS handshake) to arrive, or an idle keep-alive
WRITE_TIMEOUT = 30.0  # seconds for an answer to be taken by the client
MAX_HEAD = 8192  # bytes of request line and headers
MAX_CONNECTIONS = 1024  # open at once; lowered to what RLIMIT_NOFILE allows
BACKLOG = 1024  # connections the kernel queues before we accept them (capped by net.core.somaxconn)
LOG_EVERY = 60.0  # seconds between two lines about clients that went away (or timed out)
BUILDERS = 2  # threads that build answers
VERIFIED_CACHE = 64  # (user, password) pairs that passed bcrypt, remembered: bcrypt is slow on purpose
FD_SPARE = 64  # descriptors kept for the BPF objects, /proc and /sys reads


class RateLimitedLog:
    """One line per `every` seconds at most; the lines held back are counted in the next one."""

    def __init__(self, write: Callable[[str], None], every: float = LOG_EVERY) -> None:
        self.write, self.every = write, every
        self.last: Optional[float] = None
        self.held = 0

    def note(self, line: str) -> None:
        now = time.monotonic()
        if self.last is not None and now - self.last < self.every:
            self.held += 1
            return
        more = f" (and {self.held} more like it in the last {now - self.last:.0f} s)" if self.held else ""
        self.write(line + more)
        self.last, self.held = now, 0


def _raise_fd_limit(wanted: int) -> int:
    """Raise the soft RLIMIT_NOFILE towards `wanted` (as far as the hard limit allows); the soft
    limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft


class WebServer:
    """Serves `handle(path) -> Response` on `address` until close()."""

    def __init__(self, address: Tuple[str, int], handle: Callable[[str], Response],
                 config: Optional[WebConfig] = None, write_log: Callable[[str], None] = print,
                 public: Tuple[str, ...] = (), name: str = "droptrace exporter") -> None:
        self.address, self.handle, self.public, self.name = address, handle, public, name
        self.config = config or WebConfig()
        self.log = RateLimitedLog(write_log)
        self.builders = ThreadPoolExecutor(BUILDERS, thread_name_prefix="web-answer")
        self.checker = ThreadPoolExecutor(1, thread_name_prefix="web-bcrypt")  # never starves the builders
        self.building: Dict[str, asyncio.Future] = {}
        self.verified: Dict[bytes, None] = {}
        self.writers: set = set()  # one per open connection
        self.loop: Optional[asyncio.AbstractEventLoop] = None
        self.thread: Optional[threading.Thread] = None
        self.sock: Optional[socket.socket] = None
        self.max_connections = MAX_CONNECTIONS

    # -- life cycle -------------------------------------------------------------------------------
    def start(self) -> Tuple[str, int]:
        """Bind and listen now (OSError to the caller), then serve from a thread; the bound address."""
        limit = _raise_fd_limit(MAX_CONNECTIONS + FD_SPARE)
        self.max_connections = max(16, min(MAX_CONNECTIONS, limit - FD_SPARE))
        host, port = self.address
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.create_server((host, port), family=family, backlog=BACKLOG)
        self.sock.setblocking(False)
        self.loop = asyncio.new_event_loop()
        self.loop.set_exception_handler(self._loop_error)
        # asyncio reports a peer that vanished mid-write as a warning of its own: it is ours to say.
        logging.getLogger("asyncio").setLevel(logging.CRITICAL)
        started = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(started,), name="web", daemon=True)
        self.thread.start()
        started.wait()
        return self.sock.getsockname()[:2]

    def _run(self, started: threading.Event) -> None:
        loop = self.loop
        asyncio.set_event_loop(loop)
        server = loop.run_until_complete(asyncio.start_server(
            self._client, sock=self.sock, backlog=BACKLOG, limit=MAX_HEAD, ssl=self.config.tls,
            ssl_handshake_timeout=READ_TIMEOUT if self.config.tls else None))
        started.set()
        try:
            loop.run_forever()
        finally:
            server.close()
            for writer in list(self.writers):
                writer.transport.abort()
            tasks = asyncio.all_tasks(loop)
            for task in tasks:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            loop.run_until_complete(asyncio.sleep(0))  # the aborted transports' last callbacks
            loop.close()

    def close(self) -> None:
        if self.loop is not None and self.thread is not None:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
        self.builders.shutdown(wait=False)
        self.checker.shutdown(wait=False)
        if self.sock is not None:
            self.sock.close()

    def _loop_error(self, loop: asyncio.AbstractEventLoop, context: Dict[str, Any]) -> None:
        exc = context.get("exception")
        self.log.note(f"{self.name}: {context.get('message', 'error')}"
                      + (f": {type(exc).__name__}: {exc}" if exc else ""))

    # -- one connection ---------------------------------------------------------------------------
    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self.writers) >= self.max_connections:
            writer.transport.abort()
            self.log.note(f"{self.name}: {self.max_connections} connections open; closed a new one")
            return
        self.writers.add(writer)
        peer = writer.get_extra_info("peername")
        who = f"[{peer[0]}]:{peer[1]}" if peer and ":" in str(peer[0]) else (
            f"{peer[0]}:{peer[1]}" if peer else "a client")
        try:
            if self.config.allowed_sans and not self._allowed(writer):
                return
            while await self._exchange(reader, writer, who):
                pass
        except (ConnectionError, ssl.SSLError, OSError) as e:
            self.log.note(f"{self.name}: {who} went away before its answer ({type(e).__name__})")
        except asyncio.TimeoutError:
            self.log.note(f"{self.name}: {who} did not take its answer in {WRITE_TIMEOUT:.0f} s")
        finally:
            self.writers.discard(writer)
            if writer.transport.is_closing():
                writer.transport.abort()
            else:
                writer.close()  # after what is queued has been sent

    def _allowed(self, writer: asyncio.StreamWriter) -> bool:
        """Whether the client certificate names one of client_allowed_sans."""
        cert = writer.get_extra_info("peercert") or {}
        names = {value for _kind, value in cert.get("subjectAltName", ())}
        return bool(names & set(self.config.allowed_sans))

    async def _exchange(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, who: str) -> bool:
        """Read one request and answer it; whether the connection stays open for another."""
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_TIMEOUT)
        except asyncio.IncompleteReadError as e:  # closed: between requests (fine) or in the middle of one
            if e.partial:
                self.log.note(f"{self.name}: {who} went away in the middle of its request")
            return False
        except asyncio.TimeoutError:
            return False  # a slow or idle client: closed, as a keep-alive timeout would
        except asyncio.LimitOverrunError:
            await self._send(writer, error(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE), False, False)
            return False
        try:
            request = parse_head(head)
        except BadRequest as e:
            await self._send(writer, error(e.args[0]), False, False)
            return False
        response = await self._answer(request)
        await self._send(writer, response, request.keep_alive, request.method == "HEAD")
        return request.keep_alive

    async def _send(self, writer: asyncio.StreamWriter, response: Response, keep: bool,
                    head_only: bool) -> None:
        if writer.transport.is_closing():
            raise ConnectionResetError("closed by the peer")
        writer.write(render(response, keep, head_only, self.config.headers))
        await asyncio.wait_for(writer.drain(), WRITE_TIMEOUT)

    async def _answer(self, request: Request) -> Response:
        if self.config.users and request.path not in self.public and not await self._authorized(request):
            return Response(HTTPStatus.UNAUTHORIZED, "text/plain; charset=utf-8", b"Unauthorized\n",
                            (("WWW-Authenticate", 'Basic realm="droptrace"'),))
        path = request.path
        future = self.building.get(path)
        if future is None:
            future = asyncio.get_running_loop().run_in_executor(self.builders, self.handle, path)
            self.building[path] = future
            future.add_done_callback(lambda _f: self.building.pop(path, None))
        try:
            return await asyncio.shield(future)
        except Exception as e:  # a bug in handle: one line, and a 500
            self.log.note(f"{self.name}: answering {path} failed: {type(e).__name__}: {e}")
            return error(HTTPStatus.INTERNAL_SERVER_ERROR)

    async def _authorized(self, request: Request) -> bool:
        """HTTP basic authentication against the bcrypt hashes of basic_auth_users."""
        import bcrypt

        scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, sep, password = base64.b64decode(credentials.strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        if not sep:
            return False
        users = self.config.users
        key = hashlib.sha256(b"\0".join((user.encode(), password.encode(), users.get(user, b"")))).digest()
        if key in self.verified:
            return True
        # An unknown user costs one bcrypt check too, so the time taken does not tell which users exist.
        hashed = users.get(user) or next(iter(users.values()))
        try:
            ok = await asyncio.get_running_loop().run_in_executor(
                self.checker, bcrypt.checkpw, password.encode(), hashed)
        except ValueError:  # a hash bcrypt cannot read
            ok = False
        if not ok or user not in users:
            return False
        if len(self.verified) >= VERIFIED_CACHE:
            self.verified.pop(next(iter(self.verified)))
        self.verified[key] = None
        return True
