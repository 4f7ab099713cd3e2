"""`droptrace report`'s summary: buckets that hold what their label says, missing values shown as -."""
from droptrace.commands.report import summarise, text
from droptrace.event import Event, iso_time

SECOND = 1_000_000_000
T0 = 1_700_000_041 * SECOND  # a whole second


def ev(ts_ns, **kw):
    base = dict(time="x", reason="NO_SOCKET", reason_code=3, location="udp_rcv+0x1", l3="ipv4", l4="udp",
                saddr="10.0.0.1", daddr="10.0.0.2", sport=1, dport=2, tcp_flags=None, icmp_type=None,
                icmp_code=None, len=28, mark=None, ifindex=2, ifname="eth0", netns=1, cpu=0, pid=1, tid=1,
                comm="x", ts_ns=ts_ns)
    base.update(kw)
    return Event(**base)


def test_buckets_start_on_whole_multiples_of_their_size():
    s = summarise([ev(T0 + SECOND * 9 // 10), ev(T0 + SECOND + SECOND // 10), ev(T0 + 2 * SECOND + 5)])
    assert s["bucket_seconds"] == 1
    assert [b["count"] for b in s["over_time"]] == [1, 1, 1]
    assert [b["start"] for b in s["over_time"]] == [iso_time(T0 + i * SECOND) for i in range(3)]
    labels = [ln.split()[0] for ln in text(s, "f").split("over time")[1].splitlines()[1:]]
    assert labels == [iso_time(T0 + i * SECOND)[11:19] for i in range(3)]


def test_a_foreign_capture_shows_dashes_not_none():
    s = summarise([ev(T0, reason=None, reason_code=None, location=None, pid=None, comm=None)])
    assert s["by_reason"][0]["reason"] == "-" and s["by_location"][0]["location"] == "-"
    assert "None" not in text(s, "f")
