// SPDX-License-Identifier: GPL-2.0
/* The drops feature: one event per dropped packet, from skb:kfree_skb
 * (bpf/kfree_skb.bpf.h: its three program variants and the filters), written
 * to the ring buffer with the packet's headers, and a stack on request.
 * Each part lives in its own header:
 *   common.bpf.h     the stats map, reason and pid filters
 *   ring.bpf.h       the per-CPU ring buffers
 *   capture.bpf.h    namespace, device filters, copying the packet's headers
 *   cbpf.bpf.h       the tcpdump filter: a classic BPF interpreter
 *   kfree_skb.bpf.h  the hook's programs and the filters, which call handle()
 *   ratelimit.bpf.h  --rate-limit
 */
#include "vmlinux_min.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "droptrace.h"
#include "drops.h"

char LICENSE[] SEC("license") = "GPL";

#include "common.bpf.h"
#include "ring.bpf.h"
#include "capture.bpf.h"
#include "cbpf.bpf.h"
#include "kfree_skb.bpf.h"
#include "ratelimit.bpf.h"

/* A drop without a stack, at the default snap length: built here, then copied into the ring only
 * as long as its packet (the header and cap_len bytes, to 8). In a storm of small packets a
 * record is half the full size, so the ring holds twice the drops while the reader is held off
 * its CPU (BENCHMARKS.md). User space reads a short record as if zero-padded to dt_event. One
 * buffer a CPU is enough: a program does not run nested on its CPU (the kernel skips it). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct dt_event);
} event_buf SEC(".maps");

static __always_inline int emit_trimmed(struct sk_buff *skb, struct net_device *dev, __u64 location,
					__u32 reason, bool has_reason, __u32 netns, __u32 ifindex, bool direct)
{
	__u32 zero = 0;
	struct dt_event *e = bpf_map_lookup_elem(&event_buf, &zero);

	if (!e)
		return 0;
	fill_event(e, skb, dev, location, reason, has_reason, netns, ifindex, DT_RD(direct, skb, mark),
		   bpf_get_current_pid_tgid(), direct);
	copy_headers(e, skb, DT_SNAP_MAX, direct);
	__u64 size = __builtin_offsetof(struct dt_event, data) + (((__u64)e->cap_len + 7) & ~7ULL);
	if (size > sizeof(*e))
		size = sizeof(*e);
	if (!dt_output(e, size)) {
		count(DT_STAT_LOST);
		return 0;
	}
	count(DT_STAT_EMITTED);
	return 0;
}

static __always_inline int handle(void *ctx, struct sk_buff *skb, struct net_device *dev, __u64 location,
				  __u32 reason, bool has_reason, __u32 netns, __u32 ifindex, bool direct)
{
	if (!rate_allows())
		return 0;

	struct dt_event *e;
	bool big = cfg.snaplen > DT_SNAP_MAX;
	if (!big && !cfg.want_stack)
		return emit_trimmed(skb, dev, location, reason, has_reason, netns, ifindex, direct);
	__u64 size; /* of the record reserved: dt_submit() wakes the reader by it */
	void *ring;
	if (big && cfg.want_stack)
		e = DT_RESERVE(ring, struct dt_event_big_stack, size);
	else if (big)
		e = DT_RESERVE(ring, struct dt_event_big, size);
	else if (cfg.want_stack)
		e = DT_RESERVE(ring, struct dt_event_stack, size);
	else
		e = DT_RESERVE(ring, struct dt_event, size);
	if (!e) {
		count(DT_STAT_LOST);
		return 0;
	}

	fill_event(e, skb, dev, location, reason, has_reason, netns, ifindex, DT_RD(direct, skb, mark),
		   bpf_get_current_pid_tgid(), direct);
	if (big)
		copy_headers(e, skb, DT_SNAP_BIG, direct);
	else
		copy_headers(e, skb, DT_SNAP_MAX, direct);

	if (cfg.want_stack) {
		__u64 *stack = big ? ((struct dt_event_big_stack *)e)->stack
				   : ((struct dt_event_stack *)e)->stack;
		long n = bpf_get_stack(ctx, stack, DT_STACK_MAX * sizeof(__u64), 0);
		e->stack_len = n > 0 ? n : 0;
	}
	dt_submit(ring, e, size);
	count(DT_STAT_EMITTED);
	return 0;
}
