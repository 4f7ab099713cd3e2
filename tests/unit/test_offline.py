"""Reading back captures droptrace did not write (tcpdump's, dumpcap's classic pcap), as a user
does: the text stream shows them, and the filters refuse unknown names as the live ones do."""
import struct
import subprocess
import sys

import pytest

pytestmark = pytest.mark.host_only


def classic_pcap(path, packets=2):
    """A classic pcap (tcpdump's format) of Ethernet frames: UDP 10.0.0.1:1234 -> 10.0.0.2:7003."""
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 28, 1, 0, 64, 17, 0, bytes([10, 0, 0, 1]),
                     bytes([10, 0, 0, 2]))
    frame = b"\x02" * 6 + b"\x04" * 6 + b"\x08\x00" + ip + struct.pack("!HHHH", 1234, 7003, 8, 0)
    record = struct.pack("<IIII", 1_700_000_000, 5, len(frame), len(frame)) + frame
    path.write_bytes(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1) + record * packets)
    return path


def droptrace(*args, stdin=None):
    return subprocess.run([sys.executable, "-m", "droptrace", *args], capture_output=True, text=True,
                          timeout=60, stdin=stdin)


def test_another_tools_capture_in_text(tmp_path):
    pcap = classic_pcap(tmp_path / "x.pcap")
    for r in (droptrace("-r", str(pcap)), droptrace("-r", "-", stdin=pcap.open("rb"))):
        assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
        lines = r.stdout.splitlines()
        assert lines[0].startswith("TIME") and len(lines) == 3
        assert "10.0.0.1:1234" in lines[1] and "10.0.0.2:7003" in lines[1] and " -  len=42" in lines[1]
        assert "not written by droptrace" in r.stderr


@pytest.mark.parametrize("flag", ["--reason", "--exclude-reason"])
def test_an_unknown_reason_name_is_refused_as_live(tmp_path, flag):
    pcap = classic_pcap(tmp_path / "x.pcap")
    r = droptrace("-r", str(pcap), flag, "NO_SOCKT")
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.count("\n") == 1 and "did you mean NO_SOCKET" in r.stderr
    assert droptrace("-r", str(pcap), flag, "no_socket").returncode == 0


@pytest.mark.parametrize("out_name", ["y.pcapng", "y.pcap"])
def test_json_lines_become_packets_rebuilt_from_their_fields(tmp_path, out_name):
    """JSON lines keep no bytes: the packets written are rebuilt from each line's fields, said once,
    and what is read back is the line's own fields; tshark finds nothing malformed."""
    import shutil

    pcap = classic_pcap(tmp_path / "x.pcap", packets=3)
    jsonl = tmp_path / "x.jsonl"
    assert droptrace("record", "-r", str(pcap), "-w", str(jsonl)).returncode == 0
    out = tmp_path / out_name
    r = droptrace("record", "-r", str(jsonl), "-w", str(out))
    assert r.returncode == 0 and r.stderr.count("rebuilt from each drop's fields") == 1, r.stderr
    assert "3 drops written" in r.stderr
    back = droptrace("-r", str(out), "--json", "udp dst port 7003")
    assert back.returncode == 0 and len(back.stdout.splitlines()) == 3, back.stderr
    if shutil.which("tshark"):
        t = subprocess.run(["tshark", "-r", str(out)], capture_output=True, text=True, timeout=60)
        assert t.returncode == 0 and t.stdout.count("1234 → 7003") == 3 and "Malformed" not in t.stdout
