"""trail's pure parts: hook names from the contract, the skb/device argument from kernel BTF,
and how a consumed packet's end is named."""
import os

import pytest

from droptrace.features.trail.output import verdict_of
from droptrace.features.trail.tracer import Hop, TrailTracer, hooks, pointer_arguments
from droptrace.kernel import btf
from droptrace.kernel.contract import contract

VMLINUX = "/sys/kernel/btf/vmlinux"


def test_hook_names_come_from_the_enum():
    names = hooks(contract(TrailTracer.OBJECTS[0]).const)
    assert names[contract(TrailTracer.OBJECTS[0]).const["DT_HOOK_NETIF_RX"]] == "netif_rx"
    assert set(names.values()) >= {"kfree_skb", "consume_skb", "net_dev_xmit", "qdisc_enqueue", "icmp_send"}
    assert len(names) == contract(TrailTracer.OBJECTS[0]).const["DT_HOOK_NUM"]


@pytest.mark.skipif(not os.path.exists(VMLINUX), reason="no kernel BTF")
def test_arguments_from_this_kernels_btf():
    k = btf.kernel(VMLINUX)
    skb = pointer_arguments(k, ["kfree_skb", "qdisc_dequeue", "tcp_send_reset", "no_such_tp"], "sk_buff")
    assert skb == {"kfree_skb": 0, "qdisc_dequeue": 3, "tcp_send_reset": 1, "no_such_tp": None}
    dev = pointer_arguments(k, ["net_dev_xmit", "net_dev_start_xmit", "kfree_skb"], "net_device")
    assert dev == {"net_dev_xmit": 2, "net_dev_start_xmit": 1, "kfree_skb": None}


def hop(name, ifname="eth0"):
    return Hop(0, name, 1, ifname, 1, 60, 0)


def test_how_a_trail_ended():
    rx = [hop("netif_receive_skb")]
    assert verdict_of("dropped", rx + [hop("kfree_skb")]) == "dropped"
    assert verdict_of("consumed", rx + [hop("skb_copy_datagram_iovec", ""), hop("consume_skb", "")]) == \
        "delivered"
    assert verdict_of("consumed", rx + [hop("consume_skb", "")]) == "delivered"  # UDP's linear copy
    assert verdict_of("consumed", [hop("net_dev_queue"), hop("net_dev_xmit"), hop("consume_skb")]) == \
        "transmitted"
    assert verdict_of("consumed", rx + [hop("consume_skb")]) == "consumed"
