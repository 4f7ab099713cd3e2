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


def test_folded_stacks_outermost_first_with_the_reason_as_leaf():
    from droptrace.commands.report import folded

    rcv = ["__udp4_lib_rcv+0x4bc", "ip_protocol_deliver_rcu+0x1a", "ip_local_deliver_finish+0x70"]
    nft = ["nft_do_chain+0x46f", "nf_hook_slow+0x41"]
    events = [ev(T0, stack=rcv)] * 3 + [ev(T0, stack=nft, reason="NETFILTER_DROP"), ev(T0, stack=None),
                                        ev(T0, stack=["odd;frame x+0x1"], reason=None)]
    lines, missing = folded(events)
    assert lines == ["ip_local_deliver_finish+0x70;ip_protocol_deliver_rcu+0x1a;__udp4_lib_rcv+0x4bc;"
                     "[NO_SOCKET] 3", "nf_hook_slow+0x41;nft_do_chain+0x46f;[NETFILTER_DROP] 1",
                     "odd:frame_x+0x1;[no_reason] 1"]
    assert missing == 1
    for line in lines:  # what flamegraph.pl and speedscope parse: frames, one space, a count
        stack, count = line.rsplit(" ", 1)
        assert " " not in stack and int(count) > 0


def test_folded_from_the_command_line(tmp_path):
    import json
    import subprocess
    import sys

    rec = tmp_path / "s.jsonl"
    rows = [ev(T0 + i, stack=["b+0x1", "a+0x2"]).to_dict() for i in range(2)] + [ev(T0 + 5).to_dict()]
    rec.write_text("".join(json.dumps(r) + "\n" for r in rows))
    run = [sys.executable, "-m", "droptrace", "report", str(rec), "--folded"]
    r = subprocess.run(run, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout == "a+0x2;b+0x1;[NO_SOCKET] 2\n", r.stderr
    assert "1 drops without a stack" in r.stderr
    r = subprocess.run(run + ["--reason", "OTHERHOST"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout == ""
    rec.write_text(json.dumps(rows[2]) + "\n")
    r = subprocess.run(run, capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "record with --stack" in r.stderr and r.stderr.count("\n") == 1
