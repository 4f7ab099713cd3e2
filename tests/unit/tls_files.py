"""A certificate authority and a server certificate for 127.0.0.1, made with the openssl command, and
web configuration files that use them (tests of --web.config.file)."""
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import bcrypt

USER, PASSWORD = "prometheus", "s3cret drops"


@dataclass
class TlsFiles:
    ca: Path
    cert: Path
    key: Path
    config: Path  # tls_server_config with cert and key, basic_auth_users with USER


def openssl(*args: str, cwd: Path) -> None:
    binary = shutil.which("openssl")
    assert binary, "the openssl command (Debian's openssl package) is needed"
    subprocess.run([binary, *args], cwd=cwd, check=True, capture_output=True)


def make_tls_files(where: Path, rounds: int = 4) -> TlsFiles:
    """CA, server certificate (SAN 127.0.0.1, localhost) signed by it, and a web config naming them with
    relative paths (exporter-toolkit takes them from the file's directory)."""
    where.mkdir(parents=True, exist_ok=True)
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
            "-subj", "/CN=droptrace test CA", "-keyout", "ca.key", "-out", "ca.crt", cwd=where)
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=localhost",
            "-keyout", "server.key", "-out", "server.csr", cwd=where)
    (where / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
            "-days", "2", "-extfile", "san.ext", "-out", "server.crt", cwd=where)
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds)).decode()
    config = where / "web-config.yml"
    config.write_text("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
                      f"basic_auth_users:\n  {USER}: '{hashed}'\n")
    return TlsFiles(where / "ca.crt", where / "server.crt", where / "server.key", config)


def make_client_cert(tls: TlsFiles, name: str) -> tuple:
    """(certificate, key) of a client signed by tls's CA, with `name` as its DNS subjectAltName."""
    where = tls.ca.parent
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", f"/CN={name}",
            "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=where)
    (where / f"{name}.ext").write_text(f"subjectAltName=DNS:{name}\nextendedKeyUsage=clientAuth\n")
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
            "-days", "2", "-extfile", f"{name}.ext", "-out", f"{name}.crt", cwd=where)
    return where / f"{name}.crt", where / f"{name}.key"
