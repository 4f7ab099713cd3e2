"""The few pieces of HTTP/1.1 the exporter speaks: a request head read, an answer written.

GET and HEAD of a path, with headers and no body: that is all Prometheus, a probe or a browser sends to
an exporter. Anything else is answered with an error and the connection closed.
"""
from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus
from typing import Dict, Mapping, Optional, Tuple

METHODS = ("GET", "HEAD")


class BadRequest(ValueError):
    """The head cannot be answered; args[0] is the status to answer with."""


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # without the query
    headers: Mapping[str, str]  # names in lower case
    keep_alive: bool


@dataclass(frozen=True)
class Response:
    status: int
    content_type: str
    body: bytes
    headers: Tuple[Tuple[str, str], ...] = ()


def parse_head(head: bytes) -> Request:
    """A request head (request line and headers, up to and including the blank line) as a Request;
    BadRequest if it is not one this server answers."""
    try:
        text = head.decode("ascii")
    except UnicodeDecodeError:
        raise BadRequest(HTTPStatus.BAD_REQUEST) from None
    lines = text.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[0] or not parts[1]:
        raise BadRequest(HTTPStatus.BAD_REQUEST)
    method, target, version = parts
    if version not in ("HTTP/1.0", "HTTP/1.1"):
        raise BadRequest(HTTPStatus.HTTP_VERSION_NOT_SUPPORTED)
    headers: Dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip() or not name.isprintable():
            raise BadRequest(HTTPStatus.BAD_REQUEST)
        headers[name.lower()] = value.strip(" \t")
    if headers.get("transfer-encoding") or headers.get("content-length", "0") != "0":
        raise BadRequest(HTTPStatus.BAD_REQUEST)  # a body: nothing here takes one
    if method not in METHODS:
        raise BadRequest(HTTPStatus.METHOD_NOT_ALLOWED)
    connection = headers.get("connection", "").lower()
    keep = connection != "close" if version == "HTTP/1.1" else connection == "keep-alive"
    return Request(method, target.split("?", 1)[0], headers, keep)


def render(response: Response, keep_alive: bool, head_only: bool = False,
           extra: Optional[Mapping[str, str]] = None) -> bytes:
    """The bytes of an answer: status line, headers, and the body unless head_only (HEAD)."""
    try:
        reason = HTTPStatus(response.status).phrase
    except ValueError:
        reason = "Status"
    connection = "keep-alive" if keep_alive else "close"
    lines = [f"HTTP/1.1 {response.status} {reason}", f"Content-Type: {response.content_type}",
             f"Content-Length: {len(response.body)}", f"Connection: {connection}"]
    lines += [f"{k}: {v}" for k, v in response.headers]
    lines += [f"{k}: {v}" for k, v in (extra or {}).items()]
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head if head_only else head + response.body


def error(status: int, why: str = "") -> Response:
    """A short plain-text answer for an error status."""
    text = why or HTTPStatus(status).phrase
    extra = (("Allow", ", ".join(METHODS)),) if status == HTTPStatus.METHOD_NOT_ALLOWED else ()
    return Response(status, "text/plain; charset=utf-8", f"{text}\n".encode(), extra)
