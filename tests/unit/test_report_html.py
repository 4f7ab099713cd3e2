"""`droptrace report --html`: one self-contained page, opened in a real browser (Debian's headless
Chromium) with no network: the charts are drawn, every reason is there, nothing is fetched."""
import datetime
import json
import os
import re
import shutil
import struct
import subprocess
import sys

import pytest

pytestmark = pytest.mark.host_only
CHROMIUM = shutil.which("chromium")
REASONS = {"NO_SOCKET": ["__udp4_lib_rcv+0x4bc", "ip_local_deliver_finish+0x70"],
           "NETFILTER_DROP": ["nft_do_chain+0x46f", "nf_hook_slow+0x41", "ip_forward+0x1e0"],
           "SOCKET_RCVBUFF": ["__udp_enqueue_schedule_skb+0x2a", "udp_queue_rcv_one_skb+0x1f"]}
# Chromium's own background services, which the flags below cannot all silence; the page's
# requests would be anything else.
BROWSER_HOSTS = ("google.com", "googleapis.com", "gvt1.com", "gstatic.com")


def recording(path, stacks=True):
    rows = []
    for i in range(90):
        reason = list(REASONS)[i % 3] if i < 60 else "NO_SOCKET"
        t = datetime.datetime.fromtimestamp(1_700_000_000 + i * 0.1, datetime.timezone.utc).isoformat()
        rows.append({"time": t, "reason": reason, "reason_code": 3, "location": REASONS[reason][0],
                     "l3": "ipv4", "l4": "udp", "saddr": "10.0.0.1", "daddr": "10.0.0.2", "sport": 1,
                     "dport": 7000 + i % 4, "tcp_flags": None, "icmp_type": None, "icmp_code": None,
                     "len": 60, "mark": 0, "ifindex": 2, "ifname": "eth0", "netns": 4026531840, "cpu": 0,
                     "pid": 0, "tid": 0, "comm": "swapper/0"})
        if stacks:
            rows[-1]["stack"] = REASONS[reason]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def report(*args):
    return subprocess.run([sys.executable, "-m", "droptrace", "report", *map(str, args)],
                          capture_output=True, text=True, timeout=120)


def browse(page, tmp_path, *extra):
    """Chromium on the page with every connection sent to a dead proxy, logging what it fetched."""
    netlog = tmp_path / "net.json"
    r = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                        "--no-first-run", "--disable-background-networking", "--disable-component-update",
                        "--disable-sync",
                        f"--user-data-dir={tmp_path / 'profile'}", "--proxy-server=http://127.0.0.1:9",
                        f"--log-net-log={netlog}", "--virtual-time-budget=10000", *extra, page.as_uri()],
                       capture_output=True, text=True, timeout=120)
    urls = set(re.findall(r'"url":"([^"]+)"', netlog.read_text())) if netlog.exists() else set()
    return r, urls


def test_the_page_draws_its_charts_offline(tmp_path):
    if not CHROMIUM:  # scripts/install-system-deps installs it: a CI run without it is broken
        (pytest.fail if os.environ.get("CI") else pytest.skip)("chromium is not installed")
    page = tmp_path / "report.html"
    r = report(recording(tmp_path / "s.jsonl"), "--html", page)
    assert r.returncode == 0 and f"report written to {page}" in r.stderr, r.stderr
    text = page.read_text()
    assert not re.search(r"<(script|link|img|iframe)[^>]+(src|href)=", text), "an external resource"
    r, urls = browse(page, tmp_path, "--dump-dom")
    assert r.returncode == 0, r.stderr[-2000:]
    dom = r.stdout
    assert dom.count('class="main-svg"') >= 2, "the time chart and the stacks chart are drawn"
    assert re.search(r'id="over-time".*class="trace bars"', dom, re.S)
    assert "all drops" in dom and "[NETFILTER_DROP]" in dom  # the icicle's root and a leaf
    for reason in REASONS:
        assert dom.count(reason) >= 3, reason  # in the legend, the table and the stacks
    assert "No socket matched the packet" in dom  # each reason's one-line explanation
    page_urls = [u for u in urls if not u.startswith("file:") and not any(h in u for h in BROWSER_HOSTS)]
    assert not page_urls, page_urls
    shot = tmp_path / "shot.png"
    r, _ = browse(page, tmp_path, f"--screenshot={shot}", "--window-size=1280,2200")
    width, height = struct.unpack(">II", shot.read_bytes()[16:24])
    assert (width, height) == (1280, 2200) and shot.stat().st_size > 60_000, "a page with charts, not blank"


def test_html_refusals(tmp_path):
    rec = recording(tmp_path / "s.jsonl", stacks=False)
    r = report(rec, "--html", tmp_path / "p.html", "--folded")
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    r = report(rec, "--html", tmp_path / "no" / "such" / "dir.html")
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    kept = rec.read_bytes()
    r = report(rec, "--html", rec)  # the recording is not written over
    assert r.returncode == 2 and "same file" in r.stderr and rec.read_bytes() == kept
    r = report(rec, "--html", tmp_path / "p.html")
    assert r.returncode == 0 and "record with --stack" in (tmp_path / "p.html").read_text()
    assert os.path.getsize(tmp_path / "p.html") > 1_000_000  # plotly.js inlined
