// SPDX-License-Identifier: GPL-2.0
/* The counts feature (`top`, the exporter): every drop the filters pass adds to
 * a per-CPU hash map in the kernel (aggregate.bpf.h); nothing crosses to user
 * space per drop. The hook and its filters are the drops feature's
 * (bpf/kfree_skb.bpf.h). */
#include "vmlinux_min.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "droptrace.h"

struct dt_counts_config {
	DT_SHARED_CONFIG
	__u32 agg_flows;        /* include addresses and ports in the key */
};

const volatile struct dt_counts_config cfg = {};

char LICENSE[] SEC("license") = "GPL";

#include "common.bpf.h"
#include "capture.bpf.h"
#include "cbpf.bpf.h"
#include "kfree_skb.bpf.h"
#include "headers.bpf.h"
#include "aggregate.bpf.h"

/* Counting a drop with no filter reads the device, namespace, interface, protocol and length,
 * nothing else. */
static __always_inline int handle(void *ctx, struct sk_buff *skb, struct net_device *dev, __u64 location,
				  __u32 reason, bool has_reason, __u32 netns, __u32 ifindex, bool direct)
{
	aggregate(skb, dev, location, reason, netns, ifindex, direct);
	return 0;
}
