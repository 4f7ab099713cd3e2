"""The exporter's HTTP server (droptrace.web) on loopback, without BPF: request heads, --web.config.file,
TLS and basic authentication, and clients that misbehave (slow, half-sent, gone before the answer)."""
import base64
import http.client
import socket
import ssl
import struct
import subprocess
import threading
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from droptrace.errors import UsageError
from droptrace.web import config as web_config
from droptrace.web.http import BadRequest, Response, parse_head, render
from droptrace.web.server import MAX_HEAD, WebServer

from .tls_files import PASSWORD, USER, make_client_cert, make_tls_files

# --- request heads ----------------------------------------------------------------------------------


def test_a_scrape_head():
    r = parse_head(b"GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\nAuthorization: Basic eA==\r\n\r\n")
    assert (r.method, r.path, r.keep_alive) == ("GET", "/metrics", True)
    assert r.headers["authorization"] == "Basic eA=="
    assert not parse_head(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n").keep_alive
    assert not parse_head(b"GET / HTTP/1.0\r\n\r\n").keep_alive


@pytest.mark.parametrize("head,status", [(b"POST / HTTP/1.1\r\n\r\n", 405), (b"GET / HTTP/2.0\r\n\r\n", 505),
                                         (b"GET / HTTP/1.1\r\nContent-Length: 3\r\n\r\n", 400),
                                         (b"GET /\r\n\r\n", 400),
                                         (b"GET / HTTP/1.1\r\nno colon\r\n\r\n", 400),
                                         (b"GET /\xff HTTP/1.1\r\n\r\n", 400)])
def test_heads_refused(head, status):
    with pytest.raises(BadRequest) as e:
        parse_head(head)
    assert e.value.args[0] == status


@given(st.binary(max_size=300))
def test_any_bytes_are_a_request_or_bad_request(data):
    try:
        parse_head(data + b"\r\n\r\n")
    except BadRequest:
        pass


_token = st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyz-"), min_size=1, max_size=12)


@given(st.sampled_from(["GET", "HEAD"]), st.text(st.characters(min_codepoint=33, max_codepoint=126),
                                                 min_size=1, max_size=40).map(lambda s: "/" + s),
       st.dictionaries(_token, st.text(st.characters(min_codepoint=33, max_codepoint=126), max_size=20),
                       max_size=5))
def test_heads_read_back(method, target, headers):
    headers.pop("content-length", None)
    headers.pop("transfer-encoding", None)
    head = f"{method} {target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    r = parse_head(head.encode())
    assert (r.method, r.path) == (method, target.split("?", 1)[0])
    assert dict(r.headers) == headers


def test_render_head_only_has_the_length_and_no_body():
    out = render(Response(200, "text/plain", b"abc"), False, head_only=True, extra={"X-A": "b"})
    assert out.endswith(b"\r\n\r\n") and b"Content-Length: 3\r\n" in out and b"X-A: b\r\n" in out
    assert b"Connection: close" in out


# --- --web.config.file ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    return make_tls_files(tmp_path_factory.mktemp("tls"))


def write(tmp_path, text):
    path = tmp_path / "web.yml"
    path.write_text(text)
    return str(path)


def test_config_with_tls_and_users(tls):
    cfg = web_config.load(str(tls.config))
    assert cfg.tls is not None and cfg.tls.minimum_version == ssl.TLSVersion.TLSv1_2
    assert set(cfg.users) == {USER}


def test_an_empty_file_is_plain_http(tmp_path):
    cfg = web_config.load(write(tmp_path, ""))
    assert cfg.tls is None and not cfg.users


@pytest.mark.parametrize("text,message", [
    ("tls_server_config:\n  cert_file: server.crt\n", "key_file is missing"),
    ("tls_server_config:\n  cert_file: server.crt\n  key_file: nothere.key\n", "cannot load cert_file"),
    ("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_ca_file: ca.crt\n",
     "client_auth_type is NoClientCert"),
    ("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
     "  client_auth_type: RequireAndVerifyClientCert\n", "needs client_ca_file"),
    ("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_auth_type: Maybe\n",
     "client_auth_type 'Maybe'"),
    ("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
     "  client_auth_type: RequireAnyClientCert\n", "not supported"),
    ("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  min_version: TLS14\n",
     "min_version 'TLS14'"),
    ("tls_server_config:\n  cipher_suites: [TLS_AES_128_GCM_SHA256]\n", "not supported by droptrace"),
    ("tls_config:\n  cert_file: a\n", "unknown key 'tls_config'"),
    ("basic_auth_users:\n  alice: secret\n", "expected a bcrypt hash"),
    ("basic_auth_users: [alice]\n", "expected a mapping"),
    ("tls_server_config: {cert_file: [\n", "not valid YAML (line 2)"),
    ("- just\n- a list\n", "expected a mapping"),
])
def test_bad_config_is_one_line(tls, text, message):
    path = tls.config.parent / "bad.yml"  # beside the certificate files, which it names relatively
    path.write_text(text)
    with pytest.raises(UsageError) as e:
        web_config.load(str(path))
    assert message in str(e.value) and "\n" not in str(e.value) and str(path) in str(e.value)


def test_missing_file_is_one_line(tmp_path):
    with pytest.raises(UsageError, match="No such file"):
        web_config.load(str(tmp_path / "none.yml"))


# --- the server --------------------------------------------------------------------------------


class Served:
    def __init__(self, config=None, handle=None):
        self.log = []
        self.calls = 0

        def default(path):
            self.calls += 1
            return Response(200, "text/plain", f"page {path}\n".encode())
        self.server = WebServer(("127.0.0.1", 0), handle or default, config, write_log=self.log.append,
                                public=("/healthz",))
        self.host, self.port = self.server.start()

    def request(self, path="/metrics", headers=None, context=None):
        if context is None:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
        else:
            conn = http.client.HTTPSConnection(self.host, self.port, timeout=10, context=context)
        try:
            conn.request("GET", path, headers=headers or {})
            r = conn.getresponse()
            return r.status, r.read(), r.getheader("WWW-Authenticate")
        finally:
            conn.close()


@pytest.fixture
def served():
    made = []

    def start(config=None, handle=None):
        s = Served(config, handle)
        made.append(s)
        return s
    yield start
    for s in made:
        s.server.close()


def basic(user, password):
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_tls_and_basic_auth(served, tls):
    s = served(web_config.load(str(tls.config)))
    ctx = ssl.create_default_context(cafile=str(tls.ca))
    assert s.request(context=ctx)[:2] == (401, b"Unauthorized\n")
    assert s.request(context=ctx)[2].startswith("Basic")
    assert s.request(headers=basic(USER, "wrong"), context=ctx)[0] == 401
    assert s.request(headers=basic("nobody", PASSWORD), context=ctx)[0] == 401
    assert s.request(headers={"Authorization": "Basic !!"}, context=ctx)[0] == 401
    assert s.request(headers=basic(USER, PASSWORD), context=ctx)[:2] == (200, b"page /metrics\n")
    assert s.request(headers=basic(USER, PASSWORD), context=ctx)[0] == 200  # from the cache this time
    assert s.request("/healthz", context=ctx)[0] == 200  # probes need no credentials
    with pytest.raises((ssl.SSLError, ConnectionError, http.client.HTTPException)):
        s.request(headers=basic(USER, PASSWORD))  # plain HTTP to a TLS port: no answer


def test_client_certificates(served, tls):
    """RequireAndVerifyClientCert with client_ca_file and client_allowed_sans: a client without a
    certificate, or with one naming another client, gets no answer; the allowed one does."""
    good, other = make_client_cert(tls, "prometheus-a"), make_client_cert(tls, "someone-else")
    path = tls.config.parent / "mtls.yml"
    path.write_text("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
                    "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n"
                    "  client_allowed_sans: [prometheus-a]\n")
    s = served(web_config.load(str(path)))

    def context(cert=None):
        ctx = ssl.create_default_context(cafile=str(tls.ca))
        if cert:
            ctx.load_cert_chain(*map(str, cert))
        return ctx
    assert s.request(context=context(good))[:2] == (200, b"page /metrics\n")
    for ctx in (context(), context(other)):
        with pytest.raises((ssl.SSLError, ConnectionError, http.client.HTTPException)):
            s.request(context=ctx)


def test_keep_alive_serves_several_requests_on_one_connection(served):
    s = served()
    conn = http.client.HTTPConnection(s.host, s.port, timeout=10)
    for path in ("/a", "/b", "/c"):
        conn.request("GET", path)
        assert conn.getresponse().read() == f"page {path}\n".encode()
    conn.close()


def test_the_listen_backlog_is_at_least_128(served):
    s = served()
    # Linux shows a listening socket's backlog as its Send-Q.
    out = subprocess.run(["ss", "-Hltn", f"sport = :{s.port}"], capture_output=True, text=True).stdout
    assert int(out.split()[2]) >= 128, out


def test_half_sent_requests_do_not_hold_up_scrapes(served):
    """500 connections that sent half a request and wait: every one of 100 concurrent scrapes is answered,
    and no thread is spent on the waiting ones."""
    s = served()
    held = []
    for _ in range(500):
        c = socket.create_connection((s.host, s.port))
        c.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        held.append(c)
    threads_before = threading.active_count()
    got = []

    def scrape():
        try:
            got.append(s.request()[0])
        except OSError as e:
            got.append(repr(e))
    burst = [threading.Thread(target=scrape) for _ in range(100)]
    for t in burst:
        t.start()
    for t in burst:
        t.join()
    assert got == [200] * 100
    assert threads_before < 10
    for c in held:
        c.close()


def test_an_oversized_head_is_refused(served):
    s = served()
    with socket.create_connection((s.host, s.port), timeout=10) as c:
        c.sendall(b"GET / HTTP/1.1\r\nX: " + b"a" * (2 * MAX_HEAD) + b"\r\n\r\n")
        assert c.recv(100).startswith(b"HTTP/1.1 431 ")


def test_clients_gone_before_the_answer_are_one_short_line(served):
    release = threading.Event()

    def slow(path):
        release.wait(10)
        return Response(200, "text/plain", b"x" * 100000)
    s = served(handle=slow)
    for _ in range(5):  # each asks, then resets the connection before the answer
        c = socket.create_connection((s.host, s.port))
        c.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        c.close()
    release.set()
    deadline = time.monotonic() + 10
    while not s.log and time.monotonic() < deadline:
        time.sleep(0.05)
    assert s.request()[0] == 200  # still serving
    assert len(s.log) == 1 and "went away" in s.log[0] and "\n" not in s.log[0], s.log


def test_a_failing_page_is_a_500_and_one_line(served):
    def broken(path):
        raise RuntimeError("no map")
    s = served(handle=broken)
    assert s.request()[0] == 500
    assert s.log == ["droptrace exporter: answering /metrics failed: RuntimeError: no map"]


_scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=12)
_keys = st.sampled_from(["tls_server_config", "basic_auth_users", "http_server_config", "cert_file",
                         "key_file", "client_auth_type", "client_ca_file", "min_version", "headers",
                         "client_allowed_sans", "prometheus", "x"])
_docs = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_keys, inner,
                                                                                           max_size=4),
                     max_leaves=12)


@given(_docs)
def test_any_document_is_a_config_or_one_line(doc):
    try:
        web_config.parse(doc, "/nonexistent/web.yml")
    except UsageError as e:
        assert "\n" not in str(e)


def test_tls_version_bounds_reach_the_context(tls, tmp_path):
    """min_version/max_version are the context's own bounds (not attributes beside them): a TLS13
    floor and a TLS12 ceiling, as written, whatever this Python's OpenSSL defaults to."""
    import shutil

    shutil.copy(tls.cert, tmp_path / "server.crt")
    shutil.copy(tls.key, tmp_path / "server.key")
    head = "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
    cfg = web_config.load(write(tmp_path, head + "  min_version: TLS13\n"))
    assert cfg.tls.minimum_version == ssl.TLSVersion.TLSv1_3
    cfg = web_config.load(write(tmp_path, head + "  max_version: TLS12\n"))
    assert cfg.tls.maximum_version == ssl.TLSVersion.TLSv1_2
    assert cfg.tls.minimum_version == ssl.TLSVersion.TLSv1_2  # the default floor, as exporter-toolkit's
