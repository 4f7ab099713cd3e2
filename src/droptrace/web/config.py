"""`--web.config.file`: TLS and basic authentication, in the Prometheus exporter-toolkit's format.

Operators who run node_exporter already have such a file (and the habit of writing one): the same
keys mean the same things here. Paths are relative to the file's directory, as in exporter-toolkit.

    tls_server_config:
      cert_file: server.crt
      key_file: server.key
      client_auth_type: RequireAndVerifyClientCert   # optional
      client_ca_file: clients.crt                    # needed by the *Verify* types
      min_version: TLS12                             # optional (TLS10..TLS13)
    http_server_config:
      headers: {X-Frame-Options: deny}               # optional, added to every answer
      http2: false                                   # accepted; droptrace speaks HTTP/1.1
    basic_auth_users:
      prometheus: $2b$12$...                         # bcrypt hashes (htpasswd -B, python -m bcrypt)

A file that is wrong is refused before anything is served, in one line that names the key.
"""
from __future__ import annotations

import os
import ssl
from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional

from ..errors import UsageError

FLAG = "--web.config.file"
TLS_VERSIONS = {"TLS10": ssl.TLSVersion.TLSv1, "TLS11": ssl.TLSVersion.TLSv1_1,
                "TLS12": ssl.TLSVersion.TLSv1_2, "TLS13": ssl.TLSVersion.TLSv1_3}
DEFAULT_MIN_VERSION = "TLS12"  # exporter-toolkit's default
# exporter-toolkit's client_auth_type values that OpenSSL can honour through Python's ssl module:
# it can verify a client certificate against a CA (optionally or always), not ask for one and accept
# whatever comes (RequestClientCert, RequireAnyClientCert).
CLIENT_AUTH = {"NoClientCert": ssl.CERT_NONE, "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
               "RequireAndVerifyClientCert": ssl.CERT_REQUIRED}
UNSUPPORTED_CLIENT_AUTH = ("RequestClientCert", "RequireAnyClientCert")
TLS_KEYS = ("cert_file", "key_file", "client_auth_type", "client_ca_file", "min_version", "max_version",
            "client_allowed_sans", "cipher_suites", "curve_preferences", "prefer_server_cipher_suites",
            "cert", "key")
# Keys of exporter-toolkit that this server does not implement: refused rather than ignored, so that
# nobody believes a setting is in force when it is not.
TLS_UNSUPPORTED = ("cipher_suites", "curve_preferences", "cert", "key")
BCRYPT_PREFIXES = ("$2a$", "$2b$", "$2y$")


@dataclass(frozen=True)
class WebConfig:
    """What the HTTP server enforces: TLS (None: plain HTTP), users and their bcrypt hashes, and
    headers added to every answer."""

    tls: Optional[ssl.SSLContext] = None
    users: Mapping[str, bytes] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    allowed_sans: tuple = ()  # client certificates must carry one of these names (empty: any)


def _fail(path: str, what: str) -> UsageError:
    return UsageError(f"{path}: {what}")  # argparse says which flag


def _mapping(path: str, value: Any, where: str) -> Dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _fail(path, f"{where}: expected a mapping of keys, got {type(value).__name__}")
    return value


def _known(path: str, section: Mapping[str, Any], keys: tuple, where: str) -> None:
    for key in section:
        if key not in keys:
            raise _fail(path, f"{where}: unknown key {key!r} (known: {', '.join(keys)})")


def _text(path: str, section: Mapping[str, Any], key: str, where: str) -> str:
    value = section.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _fail(path, f"{where}.{key}: expected a string")
    return value


def load(path: str) -> WebConfig:
    """The web configuration in `path`; UsageError (one line) if it is unreadable or wrong."""
    import yaml

    try:
        with open(path, encoding="utf-8") as f:
            doc = yaml.safe_load(f)
    except OSError as e:
        raise _fail(path, e.strerror or str(e)) from None
    except UnicodeDecodeError:
        raise _fail(path, "not UTF-8 text") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise _fail(path, f"not valid YAML{where}: {problem}") from None
    return parse(doc, path)


def parse(doc: Any, path: str = "<web config>") -> WebConfig:
    """A parsed YAML document as a WebConfig; relative file names are taken from path's directory."""
    top = _mapping(path, doc, "the file")
    _known(path, top, ("tls_server_config", "http_server_config", "basic_auth_users"), "the file")
    base = os.path.dirname(os.path.abspath(path))
    tls_section = _mapping(path, top.get("tls_server_config"), "tls_server_config")
    tls, sans = _tls(path, tls_section, base)
    http = _mapping(path, top.get("http_server_config"), "http_server_config")
    _known(path, http, ("headers", "http2"), "http_server_config")
    headers = _mapping(path, http.get("headers"), "http_server_config.headers")
    for name, value in headers.items():
        if not isinstance(name, str) or not isinstance(value, str) or "\n" in name + value or ":" in name:
            raise _fail(path, f"http_server_config.headers: {name!r}: expected a header name and a string")
    users = _users(path, _mapping(path, top.get("basic_auth_users"), "basic_auth_users"))
    return WebConfig(tls, users, dict(headers), sans)


def _users(path: str, section: Mapping[str, Any]) -> Dict[str, bytes]:
    users = {}
    for user, hashed in section.items():
        if not isinstance(user, str) or ":" in user or not user:
            raise _fail(path, f"basic_auth_users: {user!r} is not a user name (no ':', not empty)")
        if not isinstance(hashed, str) or not hashed.startswith(BCRYPT_PREFIXES) or len(hashed) != 60:
            raise _fail(path, f"basic_auth_users.{user}: expected a bcrypt hash ($2b$..., 60 characters), "
                        "e.g. from `htpasswd -nBC 10 \"\" | tr -d ':\\n'`")
        users[user] = hashed.encode()
    return users


def _tls(path: str, section: Mapping[str, Any], base: str) -> tuple:
    where = "tls_server_config"
    _known(path, section, TLS_KEYS, where)
    for key in TLS_UNSUPPORTED:
        if section.get(key):
            raise _fail(path, f"{where}.{key} is not supported by droptrace (OpenSSL chooses ciphers and "
                        "curves; give certificates as files)")
    cert, key = _text(path, section, "cert_file", where), _text(path, section, "key_file", where)
    auth = _text(path, section, "client_auth_type", where) or "NoClientCert"
    ca = _text(path, section, "client_ca_file", where)
    sans = section.get("client_allowed_sans") or []
    if not isinstance(sans, list) or not all(isinstance(s, str) for s in sans):
        raise _fail(path, f"{where}.client_allowed_sans: expected a list of names")
    if not cert and not key:
        if section:
            raise _fail(path, f"{where}: cert_file and key_file are needed for TLS")
        return None, ()
    if not cert or not key:
        raise _fail(path, f"{where}: {'key_file' if cert else 'cert_file'} is missing (both are needed)")
    if auth in UNSUPPORTED_CLIENT_AUTH:
        raise _fail(path, f"{where}.client_auth_type {auth} is not supported: use VerifyClientCertIfGiven "
                    "or RequireAndVerifyClientCert with client_ca_file")
    if auth not in CLIENT_AUTH:
        raise _fail(path, f"{where}.client_auth_type {auth!r}: expected one of {', '.join(CLIENT_AUTH)}")
    if ca and auth == "NoClientCert":
        raise _fail(path, f"{where}: client_ca_file is given but client_auth_type is NoClientCert")
    if auth != "NoClientCert" and not ca:
        raise _fail(path, f"{where}: client_auth_type {auth} needs client_ca_file")
    if sans and auth != "RequireAndVerifyClientCert":
        raise _fail(path, f"{where}: client_allowed_sans needs client_auth_type RequireAndVerifyClientCert")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    for bound in ("min_version", "max_version"):
        name = _text(path, section, bound, where) or (DEFAULT_MIN_VERSION if bound == "min_version" else "")
        if name:
            if name not in TLS_VERSIONS:
                raise _fail(path, f"{where}.{bound} {name!r}: expected one of {', '.join(TLS_VERSIONS)}")
            # the file's min_version/max_version: SSLContext's minimum_version/maximum_version
            attr = "minimum_version" if bound == "min_version" else "maximum_version"
            setattr(ctx, attr, TLS_VERSIONS[name])
    cert, key = (os.path.join(base, p) for p in (cert, key))
    try:
        ctx.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as e:
        raise _fail(path, f"{where}: cannot load cert_file {cert} with key_file {key}: "
                    f"{getattr(e, 'strerror', None) or getattr(e, 'reason', None) or e}") from None
    if ca:
        ca = os.path.join(base, ca)
        try:
            ctx.load_verify_locations(cafile=ca)
        except (OSError, ssl.SSLError) as e:
            raise _fail(path, f"{where}: cannot load client_ca_file {ca}: "
                        f"{getattr(e, 'strerror', None) or getattr(e, 'reason', None) or e}") from None
    ctx.verify_mode = CLIENT_AUTH[auth]
    if section.get("prefer_server_cipher_suites", True):
        ctx.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    return ctx, tuple(sans)
