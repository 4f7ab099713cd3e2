// SPDX-License-Identifier: GPL-2.0
/* droptrace trail: the path a packet took before it was dropped, from tracepoints only.
 *
 * Every program here is a raw tracepoint on one networking step (enum dt_hook). The skb is
 * the key: the first time droptrace sees one, the filters run (namespace, device, mark, the
 * tcpdump expression) and a trail is created, or the skb is remembered as rejected (per CPU);
 * every later step costs one map lookup and, for a tracked skb, one hop written in place. When
 * the skb is freed, skb:kfree_skb ends its trail as dropped (emitted), skb:consume_skb as
 * consumed (emitted only with cfg.trail_all). A clone or copy is a new skb, seen anew.
 * Which argument is the skb differs between tracepoints and kernels: user space reads it
 * from this kernel's BTF (btf_trace_<name>) into cfg.trail_skb_arg.
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

/* skb address -> its trail. An LRU with a list per CPU (BPF_F_NO_COMMON_LRU): skbs freed where
 * no tracepoint is (6.18 defers the free of a skb read by a socket) leave their trails here
 * until evicted, and a shared LRU list would serialise every CPU on its lock under load. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(map_flags, 2 /* BPF_F_NO_COMMON_LRU */);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct dt_trail);
} trails SEC(".maps");

/* How many tracked skbs hash to each slot (by address): a slot at zero means "not tracked"
 * without a lookup in trails, as an array lookup is a few instructions and most packets on the
 * host are never tracked. A trail evicted from the LRU leaves its slot counted: that only costs a
 * lookup. */
#define TRACKED_SLOTS 65536
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, TRACKED_SLOTS);
	__type(key, __u32);
	__type(value, __u32);
} tracked SEC(".maps");

static __always_inline __u32 *tracked_slot(__u64 skb)
{
	__u32 i = (__u32)((skb >> 8) ^ (skb >> 24)) & (TRACKED_SLOTS - 1); /* skbs are 256-aligned */

	return bpf_map_lookup_elem(&tracked, &i);
}

static __always_inline bool maybe_tracked(__u64 skb)
{
	__u32 *n = tracked_slot(skb);

	return !n || *n;
}

/* A trail was deleted (not evicted): its slot counts one fewer. */
static __always_inline void untrack(__u64 key)
{
	if (bpf_map_delete_elem(&trails, &key) == 0) {
		__u32 *n = tracked_slot(key);
		if (n && *n)
			__sync_fetch_and_add(n, -1);
	}
}

/* The skbs the filters rejected lately on this CPU, so the filters run once per packet: a
 * per-CPU ring, not a shared map, as every packet on the host may land here (a packet that moves
 * to another CPU is filtered again there, with the same answer). */
#define REJECT_SLOTS 16
struct dt_rejects {
	__u64 skb[REJECT_SLOTS];
	__u64 ts[REJECT_SLOTS];
	__u32 next;
	__u32 _pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct dt_rejects);
} rejects SEC(".maps");

/* A zeroed trail to create entries from (too big for the stack). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct dt_trail);
} blank SEC(".maps");

/* Argument i of the tracepoint, i a constant to the verifier (.rodata); read through a
 * helper, as a compiler may turn a switch of loads into one load at a computed ctx offset,
 * which the verifier refuses. */
static __always_inline void *arg(__u64 *args, __u32 i)
{
	void *p = NULL;

	if (i > 3)
		return NULL;
	bpf_probe_read_kernel(&p, sizeof(p), &args[i]);
	return p;
}

static __always_inline struct sk_buff *skb_of(__u64 *args, enum dt_hook hook)
{
	return arg(args, cfg.trail_skb_arg[hook]);
}

/* The device of this step: the tracepoint's own where it has one (after a veth transmit,
 * skb->dev is already the peer), else skb->dev. */
static __always_inline struct net_device *dev_of(__u64 *args, enum dt_hook hook, struct sk_buff *skb)
{
	struct net_device *dev = cfg.trail_dev_arg[hook] <= 3 ? arg(args, cfg.trail_dev_arg[hook]) : NULL;

	return dev ? dev : BPF_CORE_READ(skb, dev);
}

static __always_inline bool wanted(struct sk_buff *skb, struct net_device *dev, __u32 netns)
{
	if (!netns_wanted(netns) || !ifname_wanted(dev))
		return false;
	if (cfg.mark_on && (BPF_CORE_READ(skb, mark) & cfg.mark_mask) != cfg.mark)
		return false;
	if (cfg.filter_on && !filter_accepts(skb, dev))
		return false;
	return true;
}

static __always_inline void add_hop(struct dt_trail *t, struct sk_buff *skb, struct net_device *dev,
				    __u32 netns, enum dt_hook hook, __u64 now)
{
	struct dt_hop *h = &t->hops[t->nhops & (DT_TRAIL_HOPS - 1)];

	h->ts_ns = now;
	h->hook = hook;
	h->cpu = bpf_get_smp_processor_id();
	h->len = BPF_CORE_READ(skb, len);
	h->netns = netns;
	if (dev) {
		h->ifindex = BPF_CORE_READ(dev, ifindex);
		bpf_probe_read_kernel(h->ifname, sizeof(h->ifname), dev->name);
	} else {
		h->ifindex = BPF_CORE_READ(skb, skb_iif);
		__builtin_memset(h->ifname, 0, sizeof(h->ifname));
	}
	t->nhops += 1;
	t->last_ns = now;
}

static __always_inline struct dt_rejects *rejects_here(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&rejects, &zero);
}

static __always_inline bool rejected_lately(struct dt_rejects *r, __u64 key, __u64 now)
{
	if (!r)
		return false;
#pragma unroll
	for (int i = 0; i < REJECT_SLOTS; i++)
		if (r->skb[i] == key && now - r->ts[i] <= cfg.trail_gap_ns)
			return true;
	return false;
}

static __always_inline void remember_rejected(struct dt_rejects *r, __u64 key, __u64 now)
{
	if (!r)
		return;
	__u32 i = r->next++ & (REJECT_SLOTS - 1);
	r->skb[i] = key;
	r->ts[i] = now;
}

static __always_inline void forget_rejected(struct dt_rejects *r, __u64 key)
{
	if (!r)
		return;
#pragma unroll
	for (int i = 0; i < REJECT_SLOTS; i++)
		if (r->skb[i] == key)
			r->skb[i] = 0;
}

/* The trail of this skb: the one tracked (if it is not an earlier packet's at a reused
 * address), else a new one if the filters want the skb; NULL if not tracked. Device and
 * namespace are read only past the cheap lookups: every packet on the host comes here. */
static __always_inline struct dt_trail *track(__u64 *args, enum dt_hook hook, struct sk_buff *skb,
					      __u64 now, struct net_device **dev, __u32 *netns)
{
	__u64 key = (__u64)skb;
	struct dt_trail *t = maybe_tracked(key) ? bpf_map_lookup_elem(&trails, &key) : NULL;

	if (t) {
		if (now - t->last_ns <= cfg.trail_gap_ns)
			goto found;
		untrack(key); /* an earlier packet's: the address was reused */
	}
	struct dt_rejects *r = rejects_here();
	if (rejected_lately(r, key, now))
		return NULL;
	*dev = dev_of(args, hook, skb);
	*netns = netns_of(*dev, skb, false);
	if (!wanted(skb, *dev, *netns)) {
		remember_rejected(r, key, now);
		return NULL;
	}
	__u32 zero = 0;
	struct dt_trail *b = bpf_map_lookup_elem(&blank, &zero);
	__u32 *n = tracked_slot(key);
	if (!b || !n)
		return NULL;
	__sync_fetch_and_add(n, 1); /* before the trail exists: another CPU never misses it */
	if (bpf_map_update_elem(&trails, &key, b, BPF_ANY)) {
		__sync_fetch_and_add(n, -1);
		return NULL;
	}
	return bpf_map_lookup_elem(&trails, &key);
found:
	*dev = dev_of(args, hook, skb);
	*netns = netns_of(*dev, skb, false);
	return t;
}

static __always_inline int on_hop(__u64 *args, enum dt_hook hook)
{
	struct sk_buff *skb = skb_of(args, hook);
	if (!skb)
		return 0;
	struct net_device *dev = NULL;
	__u32 netns = 0;
	__u64 now = bpf_ktime_get_ns();
	struct dt_trail *t = track(args, hook, skb, now, &dev, &netns);
	if (t)
		add_hop(t, skb, dev, netns, hook, now);
	return 0;
}

/* The skb is freed: emit its trail (dropped, or with cfg.trail_all consumed), forget it. */
static __always_inline int on_end(__u64 *args, enum dt_hook hook, __u64 location, __u32 reason,
				  enum dt_verdict verdict)
{
	struct sk_buff *skb = skb_of(args, hook);
	if (!skb)
		return 0;
	__u64 key = (__u64)skb;
	bool emit = verdict == DT_VERDICT_DROPPED ? (!cfg.has_reason || reason_wanted(reason)) : cfg.trail_all;

	if (!emit) {
		/* most frees on the host: an array lookup, and a delete only for a tracked skb */
		if (maybe_tracked(key))
			untrack(key);
		forget_rejected(rejects_here(), key);
		return 0;
	}
	struct net_device *dev = NULL;
	__u32 netns = 0;
	__u64 now = bpf_ktime_get_ns();
	struct dt_trail *t = track(args, hook, skb, now, &dev, &netns);
	if (!t) {
		forget_rejected(rejects_here(), key);
		return 0;
	}
	add_hop(t, skb, dev, netns, hook, now);

	__u64 size;
	struct dt_trail_event *te = DT_RESERVE(struct dt_trail_event, size);
	if (!te) {
		count(DT_STAT_LOST);
		goto forget;
	}
	__u32 ifindex = dev ? BPF_CORE_READ(dev, ifindex) : BPF_CORE_READ(skb, skb_iif);
	fill_event(&te->ev, skb, dev, location, reason, cfg.has_reason && verdict == DT_VERDICT_DROPPED,
		   netns, ifindex, BPF_CORE_READ(skb, mark), bpf_get_current_pid_tgid(), false);
	copy_headers(&te->ev, skb, DT_SNAP_MAX, false);
	bpf_probe_read_kernel(&te->trail, sizeof(te->trail), t);
	te->verdict = verdict;
	te->_pad = 0;
	dt_submit(te, size);
	count(DT_STAT_EMITTED);
forget:
	untrack(key);
	return 0;
}

#define HOP(name, id)                                                   \
	SEC("raw_tp/" #name)                                            \
	int dt_trail_##name(__u64 *ctx)        \
	{                                                               \
		return on_hop(ctx, id);                           \
	}

HOP(netif_receive_skb, DT_HOOK_NETIF_RECEIVE_SKB)
HOP(netif_rx, DT_HOOK_NETIF_RX)
HOP(napi_gro_receive_entry, DT_HOOK_NAPI_GRO_RECEIVE_ENTRY)
HOP(net_dev_queue, DT_HOOK_NET_DEV_QUEUE)
HOP(net_dev_start_xmit, DT_HOOK_NET_DEV_START_XMIT)
HOP(net_dev_xmit, DT_HOOK_NET_DEV_XMIT)
HOP(qdisc_enqueue, DT_HOOK_QDISC_ENQUEUE)
HOP(qdisc_dequeue, DT_HOOK_QDISC_DEQUEUE)
HOP(skb_copy_datagram_iovec, DT_HOOK_SKB_COPY_DATAGRAM_IOVEC)
HOP(tcp_retransmit_skb, DT_HOOK_TCP_RETRANSMIT_SKB)
HOP(tcp_send_reset, DT_HOOK_TCP_SEND_RESET)
HOP(sock_rcvqueue_full, DT_HOOK_SOCK_RCVQUEUE_FULL)
HOP(udp_fail_queue_rcv_skb, DT_HOOK_UDP_FAIL_QUEUE_RCV_SKB)
HOP(icmp_send, DT_HOOK_ICMP_SEND)

SEC("raw_tp/consume_skb")
int dt_trail_consume_skb(__u64 *ctx)
{
	return on_end(ctx, DT_HOOK_CONSUME_SKB, 0, 0, DT_VERDICT_CONSUMED);
}

SEC("raw_tp/kfree_skb")
int dt_trail_kfree_skb(__u64 *ctx)
{
	/* (skb, location[, reason]): the reason exists from 5.17 (cfg.has_reason) */
	__u32 reason = cfg.has_reason ? (__u32)ctx[2] : 0;
	return on_end(ctx, DT_HOOK_KFREE_SKB, ctx[1], reason, DT_VERDICT_DROPPED);
}
