// SPDX-License-Identifier: GPL-2.0
/* droptrace: one event per dropped packet, from the skb:kfree_skb tracepoint.
 *
 * Three programs share one body, handle(), and differ only in how they
 * receive the tracepoint's arguments: tp_btf (typed, preferred), raw_tp
 * (untyped args array) and the classic tracepoint (fields at the offsets the
 * format file gives). User space enables exactly one with
 * bpf_program__set_autoload(). The reason travels as its raw enum value:
 * names come from the running kernel's BTF in user space, never from a table
 * here.
 *
 * handle() filters in order of cost (reason, namespace, device, pid, mark,
 * then the tcpdump expression), then either counts the drop (top) or writes
 * an event to the ring buffer. Each feature lives in its own header:
 *   common.bpf.h     configuration, events/stats maps, reason and pid filters
 *   capture.bpf.h    namespace, device filters, copying the packet's headers
 *   cbpf.bpf.h       the tcpdump filter: a classic BPF interpreter
 *   aggregate.bpf.h  in-kernel counting for top
 *   ratelimit.bpf.h  --rate-limit
 */
#include "vmlinux_min.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "droptrace.h"

char LICENSE[] SEC("license") = "GPL";

#include "common.bpf.h"
#include "capture.bpf.h"
#include "cbpf.bpf.h"
#include "aggregate.bpf.h"
#include "ratelimit.bpf.h"

/* direct: the skb is a typed pointer (tp_btf), its fields are loaded, not probe-read.
 * Each value is read only once a filter or the output needs it: counting a drop with no
 * filter reads the device, namespace, interface, protocol and length, nothing else. */
static __always_inline int handle(void *ctx, struct sk_buff *skb, __u64 location,
				  __u32 reason, bool has_reason, bool direct)
{
	if (has_reason && !reason_wanted(reason))
		return 0;

	struct net_device *dev = DT_RD(direct, skb, dev);
	__u32 netns = netns_of(dev, skb, direct);

	if (!netns_wanted(netns))
		return 0;
	if (!ifname_wanted(dev))
		return 0;
	if (cfg.pid && !pid_wanted(bpf_get_current_pid_tgid()))
		return 0;
	if (cfg.mark_on && (DT_RD(direct, skb, mark) & cfg.mark_mask) != cfg.mark)
		return 0;
	if (cfg.filter_on && !filter_accepts(skb, dev, direct))
		return 0;

	__u32 ifindex = dev ? DT_RD(direct, dev, ifindex) : DT_RD(direct, skb, skb_iif);
	if (cfg.aggregate) {
		aggregate(skb, dev, location, reason, netns, ifindex, direct);
		return 0;
	}

	if (!rate_allows())
		return 0;

	struct dt_event *e;
	bool big = cfg.snaplen > DT_SNAP_MAX;
	__u64 size; /* of the record reserved: dt_submit() wakes the reader by it */
	if (big && cfg.want_stack)
		e = DT_RESERVE(struct dt_event_big_stack, size);
	else if (big)
		e = DT_RESERVE(struct dt_event_big, size);
	else if (cfg.want_stack)
		e = DT_RESERVE(struct dt_event_stack, size);
	else
		e = DT_RESERVE(struct dt_event, size);
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
	dt_submit(e, size);
	count(DT_STAT_EMITTED);
	return 0;
}

SEC("tp_btf/kfree_skb")
int BPF_PROG(dt_tp_btf, struct sk_buff *skb, void *location)
{
	/* ctx[2] is the reason; it exists only on kernels >= 5.17 and the
	 * verifier skips the read when cfg.has_reason is 0. */
	__u32 reason = cfg.has_reason ? (__u32)ctx[2] : 0;
	return handle(ctx, skb, (__u64)location, reason, cfg.has_reason, true);
}

SEC("raw_tp/kfree_skb")
int BPF_PROG(dt_raw_tp, struct sk_buff *skb, void *location)
{
	__u32 reason = cfg.has_reason ? (__u32)ctx[2] : 0;
	return handle(ctx, skb, (__u64)location, reason, cfg.has_reason, false);
}

SEC("tracepoint/skb/kfree_skb")
int dt_tracepoint(void *ctx)
{
	struct dt_tp_fields f = {};

	read_tp_fields(ctx, &f);
	if (!f.skb)
		return 0;
	return handle(ctx, f.skb, f.location, f.reason, cfg.has_reason, false);
}
