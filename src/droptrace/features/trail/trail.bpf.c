// SPDX-License-Identifier: GPL-2.0
/* droptrace trail: the path a packet took before it was dropped, from tracepoints only.
 *
 * Every program here is a BTF tracepoint (tp_btf: the arguments are typed pointers, so the skb's
 * fields are plain loads, not helper calls; trail needs BTF anyway) on one networking step
 * (enum dt_hook). The skb is
 * the key: the first time droptrace sees one where a packet can start (received, queued to a
 * device, dropped), the filters run (namespace, device, mark, the tcpdump expression) and a
 * trail is created, or the skb is remembered as rejected (per CPU); every later step costs an
 * array load and, for a tracked skb, one hop written in place. When
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

struct dt_trail_config {
	DT_SHARED_CONFIG
	__u32 trail_all;        /* emit every trail when it ends, not only dropped ones */
	__u64 trail_gap_ns;     /* a trail idle this long belongs to an earlier packet */
	__u8 trail_skb_arg[DT_HOOK_NUM]; /* which tracepoint argument is the skb (this kernel's BTF) */
	__u8 trail_dev_arg[DT_HOOK_NUM]; /* ... is the device (net_dev_xmit's, not skb->dev), or 0xff */
	__u32 trail_returns;    /* --returns: each followed function's return value in its hop */
};

const volatile struct dt_trail_config cfg = {};

char LICENSE[] SEC("license") = "GPL";

#include "common.bpf.h"
#include "ring.bpf.h"
#include "capture.bpf.h"
#include "cbpf.bpf.h"
#include "headers.bpf.h"

/* Trails by skb address: sets of two slots, an address hashes to a set and its trail is in one of
 * the two. Finding, starting and ending a trail are a few loads and stores (a hash map's update
 * and delete cost hundreds of nanoseconds, paid by every packet when everything is followed). A
 * new trail takes a free slot of its set, else the one idle longer: skbs freed where no
 * tracepoint is (6.18 defers the free of an skb read by a socket) leave their trails until then.
 * Two CPUs starting trails in one set at the same instant may take the same slot: one packet is
 * then followed from its next step on. */
#define TRAIL_SETS 4096
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2 * TRAIL_SETS);
	__type(key, __u32);
	__type(value, struct dt_trail);
} trails SEC(".maps");

/* How many tracked skbs hash to each slot (by address): a slot at zero means "not tracked"
 * without a look in trails, whose slots are big and many (cache misses), as most packets on the
 * host are never tracked. */
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

static __always_inline struct dt_trail *trail_at(__u32 i)
{
	return bpf_map_lookup_elem(&trails, &i);
}

static __always_inline __u32 set_of(__u64 skb)
{
	return (__u32)(((skb >> 8) ^ (skb >> 21)) & (TRAIL_SETS - 1)) * 2;
}

static __always_inline struct dt_trail *find(__u64 key)
{
	__u32 i = set_of(key);
	struct dt_trail *t = trail_at(i);

	if (t && t->skb == key)
		return t;
	t = trail_at(i + 1);
	return t && t->skb == key ? t : NULL;
}

/* The slot is free again, and its skb's tracked count one fewer. */
static __always_inline void end_trail(struct dt_trail *t)
{
	__u64 key = t->skb;

	t->skb = 0;
	if (key) {
		__u32 *n = tracked_slot(key);
		if (n && *n)
			__sync_fetch_and_add(n, -1);
	}
}

/* A slot for a new trail of skb `key`, started at `now`. */
static __always_inline struct dt_trail *new_trail(__u64 key, __u64 now)
{
	__u32 i = set_of(key);
	struct dt_trail *a = trail_at(i), *b = trail_at(i + 1);
	__u32 *n = tracked_slot(key);

	if (!a || !b || !n)
		return NULL;
	struct dt_trail *t = !a->skb ? a : !b->skb ? b : a->last_ns <= b->last_ns ? a : b;
	end_trail(t);
	__sync_fetch_and_add(n, 1);
	t->nhops = 0;
	t->first.has_flow = 0;
	t->now.has_flow = 0;
	t->last_ns = now;
	t->selected = !cfg.netns_on && !cfg.ifname_on;
	t->skb = key;
	return t;
}

/* The skbs the filters rejected lately on this CPU, so the filters run once per packet: a
 * per-CPU table indexed by address (one compare to look up, to forget), not a shared map, as
 * every packet on the host may land here (a packet that moves to another CPU is filtered again
 * there, with the same answer). An entry is forgotten when its skb is freed or read by a socket
 * where a tracepoint sees it, and is ignored after REJECT_NS: a freed skb's address is soon
 * another packet's, and not every free passes a tracepoint (6.18 defers some): a packet rejected
 * by "udp" (the new links' IPv6 neighbour discovery, likely), freed unseen, and a wanted UDP packet
 * at its address within the second the trail gap allowed, made that packet invisible (the trail
 * e2e tests failed one run in two or four here).
 * A rejected packet's steps are microseconds apart; one held longer is only filtered again. */
#define REJECT_SLOTS 256
#define REJECT_NS 2000000ULL
struct dt_reject {
	__u64 skb;
	__u64 ts;
};

struct dt_rejects {
	struct dt_reject slot[REJECT_SLOTS];
	__u64 addr; /* address_of()'s */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct dt_rejects);
} rejects SEC(".maps");

/* Argument i of the tracepoint, i a constant to the verifier (.rodata): one load from the
 * argument array at a constant offset. Written as assembly, as a compiler may fold a switch of
 * loads into one load at a computed offset, which the verifier refuses (and only the offset of
 * the case taken may be verified: a tracepoint with one argument refuses a program that reads a
 * second). */
#define DT_ARG_LOAD(n) asm volatile("%0 = *(u64 *)(%1 + " #n ")" : "=r"(v) : "r"(args))
static __always_inline void *arg(__u64 *args, __u32 i)
{
	__u64 v = 0;

	switch (i) {
	case 0: DT_ARG_LOAD(0); break;
	case 1: DT_ARG_LOAD(8); break;
	case 2: DT_ARG_LOAD(16); break;
	case 3: DT_ARG_LOAD(24); break;
	}
	return (void *)v;
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

	return dev ? dev : skb->dev;
}

/* The filters on the packet as first seen: its mark and the tcpdump expression. The namespace and
 * device filters select trails by any hop (add_hop), not here. */
static __always_inline bool wanted(struct sk_buff *skb, struct net_device *dev)
{
	if (cfg.mark_on && (skb->mark & cfg.mark_mask) != cfg.mark)
		return false;
	if (cfg.filter_on && !filter_accepts(skb, dev, true))
		return false;
	return true;
}

static __always_inline bool same_headers(const struct dt_headers *a, const struct dt_headers *b)
{
	const __u64 *x = (const __u64 *)a, *y = (const __u64 *)b;

#pragma unroll
	for (int i = 0; i < sizeof(*a) / 8; i++)
		if (x[i] != y[i])
			return false;
	return true;
}

/* The packet's headers at this hop (addresses, protocol, ports: NAT rewrites them in place, a
 * tunnel puts its own in front and takes them off again, and the skb stays the same). The first
 * read are the trail's `first`; where they differ from the latest, a hop of their own
 * (DT_HOP_HEADERS) after this one records the new ones. A hop where none can be read (not IP, no
 * network header yet) changes nothing. */
static __always_inline void note_headers(struct dt_trail *t, struct sk_buff *skb, __u32 len, __u64 now,
					 bool direct)
{
	struct dt_headers h = {};

	dt_read_headers(&h, skb, direct);
	if (!h.has_flow)
		return;
	if (!t->now.has_flow) {
		t->first = h;
		t->now = h;
		return;
	}
	if (same_headers(&h, &t->now))
		return;
	t->now = h;
	struct dt_hop *x = &t->hops[t->nhops & (DT_TRAIL_HOPS - 1)];
	x->ts_ns = now;
	x->hook = DT_HOP_HEADERS;
	x->cpu = bpf_get_smp_processor_id();
	x->len = len;
	x->headers = h;
	t->nhops += 1;
}

/* One hop written in place, and one more after it where the packet's headers changed (the
 * returned pointer is the step's hop). `direct`: skb and dev are typed pointers (tp_btf), else addresses
 * read through the helpers (a kprobe's registers). */
static __always_inline struct dt_hop *add_hop(struct dt_trail *t, struct sk_buff *skb, struct net_device *dev,
					      __u32 netns, __u16 hook, __u64 now, bool direct)
{
	struct dt_hop *h = &t->hops[t->nhops & (DT_TRAIL_HOPS - 1)];

	h->ts_ns = now;
	h->hook = hook;
	h->func = 0;
	h->caller = 0;
	h->ret = 0;
	h->cpu = bpf_get_smp_processor_id();
	h->len = DT_RD(direct, skb, len);
	h->netns = netns;
	if (dev) {
		h->ifindex = DT_RD(direct, dev, ifindex);
		if (direct)
			__builtin_memcpy(h->ifname, dev->name, sizeof(h->ifname));
		else
			bpf_core_read(h->ifname, sizeof(h->ifname), &dev->name);
	} else {
		h->ifindex = DT_RD(direct, skb, skb_iif);
		__builtin_memset(h->ifname, 0, sizeof(h->ifname));
	}
	t->nhops += 1;
	t->last_ns = now;
	/* --netns and -i select a trail by any of its hops: one in that namespace, on that device */
	if (!t->selected && netns_wanted(netns) && ifname_wanted(dev))
		t->selected = 1;
	note_headers(t, skb, h->len, now, direct);
	return h;
}

/* The skb's address as a number, the trails' key. A tp_btf argument is a typed pointer on which
 * the verifier allows no arithmetic (hashing it); stored into a map and read back, it is a
 * number (to a privileged program, as droptrace's are). Cheaper than a helper call. */
static __always_inline __u64 address_of(struct sk_buff *skb)
{
	__u32 zero = 0;
	struct dt_rejects *r = bpf_map_lookup_elem(&rejects, &zero);

	if (!r)
		return 0;
	*(volatile __u64 *)&r->addr = (__u64)skb;
	return *(volatile __u64 *)&r->addr;
}

static __always_inline struct dt_reject *reject_slot(__u64 skb)
{
	__u32 zero = 0;
	struct dt_rejects *r = bpf_map_lookup_elem(&rejects, &zero);

	return r ? &r->slot[((skb >> 8) ^ (skb >> 16)) & (REJECT_SLOTS - 1)] : NULL;
}

static __always_inline void forget_rejected(__u64 key)
{
	struct dt_reject *r = reject_slot(key);

	if (r && r->skb == key)
		r->skb = 0;
}

/* Where the filters run: a step that may be the first droptrace sees of a packet. */
static __always_inline struct dt_trail *start_trail(__u64 *args, enum dt_hook hook, struct sk_buff *skb,
						    __u64 key, __u64 now, struct net_device **dev, __u32 *netns)
{
	struct dt_reject *r = reject_slot(key);

	if (r && r->skb == key && now - r->ts <= REJECT_NS)
		return NULL;
	*dev = dev_of(args, hook, skb);
	*netns = netns_of(*dev, skb, true);
	if (!wanted(skb, *dev)) {
		if (r) {
			r->skb = key;
			r->ts = now;
		}
		return NULL;
	}
	return new_trail(key, now);
}

/* The trail of this skb, if one is tracked (and is not an earlier packet's at a reused
 * address); else, at a step that may start one (`entry`), a new trail if the filters want the
 * skb. Most packets on the host are never tracked: for them a step that cannot start a trail
 * costs the argument and one array load, and the clock is read only past that. */
static __always_inline struct dt_trail *track(__u64 *args, enum dt_hook hook, bool entry, struct sk_buff *skb,
					      __u64 key, __u64 *now, struct net_device **dev, __u32 *netns)
{
	struct dt_trail *t = NULL;

	if (maybe_tracked(key))
		t = find(key);
	if (!t && !entry)
		return NULL;
	*now = bpf_ktime_get_ns();
	if (t) {
		if (*now - t->last_ns <= cfg.trail_gap_ns) {
			*dev = dev_of(args, hook, skb);
			*netns = netns_of(*dev, skb, true);
			return t;
		}
		end_trail(t); /* an earlier packet's: the address was reused */
	}
	return entry ? start_trail(args, hook, skb, key, *now, dev, netns) : NULL;
}

/* A step. `entry`: a packet may be first seen here (it is received, or queued to a device, or
 * dropped); the other steps only follow a packet already tracked. `forget`: the skb's life
 * ends here as far as the filters know (read by a socket, whose free 6.18 may defer where no
 * tracepoint is), so its rejection is forgotten before the address is reused. */
static __always_inline int on_hop(__u64 *args, enum dt_hook hook, bool entry, bool forget)
{
#ifdef DT_TRAIL_FLOOR
	return 0;
#endif
	struct sk_buff *skb = skb_of(args, hook);
	if (!skb)
		return 0;
	struct net_device *dev = NULL;
	__u32 netns = 0;
	__u64 now = 0, key = address_of(skb);
	struct dt_trail *t = track(args, hook, entry, skb, key, &now, &dev, &netns);
	if (t)
		add_hop(t, skb, dev, netns, hook, now, true);
	else if (forget)
		forget_rejected(key);
	return 0;
}

/* A trail shows the packet's headers, never its payload: its capture stops at the end of what
 * is decoded (the ports, TCP's flags, ICMP's type and code), and the bytes there that change
 * from one packet of a flow to the next (IPv4's ID and checksum, TCP's sequence numbers) are
 * zeroed. The trails of one flow that took one path are then alike but for their times and
 * lengths, and user space makes their text once. IPv6 with extension headers, and what is not
 * IP, are kept as captured. */
static __always_inline void zero2(struct dt_event *e, __u32 at)
{
	e->data[at & (DT_SNAP_MAX - 1)] = 0;
	e->data[(at + 1) & (DT_SNAP_MAX - 1)] = 0;
}

static __always_inline void headers_only(struct dt_event *e)
{
	__u32 ip = e->net_off, l4, proto;

	if (ip >= DT_SNAP_MAX - 64 || ip + 20 > e->cap_len)
		return;
	__u8 first = e->data[ip & (DT_SNAP_MAX - 1)];
	if (first >> 4 == 4 && (first & 0xf) >= 5) {
		l4 = ip + (first & 0xf) * 4;
		proto = e->data[(ip + 9) & (DT_SNAP_MAX - 1)];
		zero2(e, ip + 4);  /* ID */
		zero2(e, ip + 10); /* checksum */
	} else if (first >> 4 == 6 && ip + 40 <= e->cap_len) {
		l4 = ip + 40;
		proto = e->data[(ip + 6) & (DT_SNAP_MAX - 1)];
		if (proto != 6 && proto != 17 && proto != 33 && proto != 58 && proto != 132 && proto != 136)
			return; /* an extension header, or no transport header */
	} else {
		return;
	}
	__u32 end = l4;
	if (proto == 6) {
		end = l4 + 14; /* ports, sequence numbers, flags */
#pragma unroll
		for (int i = 4; i < 12; i += 2)
			zero2(e, l4 + i);
	} else if (proto == 17 || proto == 33 || proto == 132 || proto == 136) {
		end = l4 + 4; /* ports */
	} else if (proto == 1 || proto == 58) {
		end = l4 + 2; /* type, code */
	}
	if (end < e->cap_len)
		e->cap_len = end;
}

/* Calls of followed functions in progress on this CPU, innermost last, for their return: with
 * --returns (the value goes into the call's hop) and for the functions that make clones and
 * copies (the new skb's trail goes on from the original's). Only calls on a tracked skb are
 * remembered: for any other the return costs one array load. */
struct dt_call {
	__u64 func;
	__u64 skb;    /* the original's address */
	__u32 hop;    /* its hop's index (nhops then) */
	__u32 clone;  /* a clone or copy function: the returned skb continues the trail */
};

struct dt_calls {
	__u32 depth;
	__u32 _pad;
	struct dt_call call[DT_FN_CALLS];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct dt_calls);
} calls SEC(".maps");


/* A trail that ended inside followed calls still in progress (--returns): a function that frees the
 * packet and then returns its verdict (nf_hook_slow on an nft drop: kfree_skb, then -EPERM) would
 * otherwise show no return value, as the trail is emitted at the free. The record is kept here,
 * per CPU, instead, the returns of those calls are written into its hops, and it is emitted when
 * the last of them returns (or, should a return be missed, before the next such record). */
struct dt_pending {
	__u64 skb;    /* the freed skb's address; 0: nothing pending */
	struct dt_trail_event te;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct dt_pending);
} pending SEC(".maps");

/* A call on skb `key` in progress on this CPU (remembered: with --returns, any followed call) */
static __always_inline bool in_call(struct dt_calls *c, __u64 key)
{
#pragma unroll
	for (int i = 0; i < DT_FN_CALLS; i++)
		if (i < c->depth && c->call[i].skb == key)
			return true;
	return false;
}

static __always_inline void emit_pending(struct dt_pending *p)
{
	if (!p->skb)
		return;
	p->skb = 0;
	if (dt_output(&p->te, sizeof(p->te)))
		count(DT_STAT_EMITTED);
	else
		count(DT_STAT_LOST);
}

/* The trail event of trail t, its packet at its end. */
static __always_inline void fill_trail_event(struct dt_trail_event *te, struct dt_trail *t, struct sk_buff *skb,
					     struct net_device *dev, __u64 location, __u32 reason,
					     enum dt_verdict verdict, __u32 netns)
{
	__u32 ifindex = dev ? dev->ifindex : skb->skb_iif;
	fill_event(&te->ev, skb, dev, location, reason, cfg.has_reason && verdict == DT_VERDICT_DROPPED,
		   netns, ifindex, skb->mark, bpf_get_current_pid_tgid(), true);
	copy_headers(&te->ev, skb, DT_SNAP_MAX, true);
	headers_only(&te->ev);
	bpf_probe_read_kernel(&te->trail, sizeof(te->trail), t);
	te->verdict = verdict;
	te->_pad = 0;
}

/* The skb is freed: emit its trail (dropped, or with cfg.trail_all consumed), forget it. A drop
 * may start a trail (a packet created here and dropped before any other step); a consumed skb
 * never seen before is not a packet droptrace followed. */
static __always_inline int on_end(__u64 *args, enum dt_hook hook, __u64 location, __u32 reason,
				  enum dt_verdict verdict)
{
#ifdef DT_TRAIL_FLOOR
	return 0;
#endif
	struct sk_buff *skb = skb_of(args, hook);
	if (!skb)
		return 0;
	__u64 key = address_of(skb);
	bool emit = verdict == DT_VERDICT_DROPPED ? (!cfg.has_reason || reason_wanted(reason)) : cfg.trail_all;

	if (!emit) {
		/* most frees on the host: an array load, and more only for a tracked skb */
		struct dt_trail *t = maybe_tracked(key) ? find(key) : NULL;
		if (t)
			end_trail(t);
		forget_rejected(key);
		return 0;
	}
	struct net_device *dev = NULL;
	__u32 netns = 0;
	__u64 now = 0;
	struct dt_trail *t = track(args, hook, verdict == DT_VERDICT_DROPPED, skb, key, &now, &dev, &netns);
	if (!t) {
		forget_rejected(key);
		return 0;
	}
	add_hop(t, skb, dev, netns, hook, now, true);
	if (!t->selected) { /* it never passed the namespaces or devices asked for */
		end_trail(t);
		forget_rejected(key);
		return 0;
	}

	__u32 zero = 0;
	struct dt_calls *c = cfg.trail_returns ? bpf_map_lookup_elem(&calls, &zero) : NULL;
	struct dt_pending *p = c ? bpf_map_lookup_elem(&pending, &zero) : NULL;
	if (p) {
		emit_pending(p); /* one whose calls' returns were missed: before this one */
		if (in_call(c, key)) { /* freed inside followed calls: emitted when they have returned */
			fill_trail_event(&p->te, t, skb, dev, location, reason, verdict, netns);
			p->skb = key;
			end_trail(t);
			return 0;
		}
	}
	__u64 size;
	void *ring;
	struct dt_trail_event *te = DT_RESERVE(ring, struct dt_trail_event, size);
	if (!te) {
		count(DT_STAT_LOST);
		end_trail(t);
		return 0;
	}
	fill_trail_event(te, t, skb, dev, location, reason, verdict, netns);
	dt_submit(ring, te, size);
	count(DT_STAT_EMITTED);
	end_trail(t);
	return 0;
}

#define HOP(name, id, entry, forget)                                    \
	SEC("tp_btf/" #name)                                            \
	int dt_trail_##name(__u64 *ctx)                                 \
	{                                                               \
		return on_hop(ctx, id, entry, forget);                  \
	}

/* where a packet enters the stack, or a device's queue: a trail may start here */
HOP(netif_receive_skb, DT_HOOK_NETIF_RECEIVE_SKB, true, false)
HOP(netif_rx, DT_HOOK_NETIF_RX, true, false)
HOP(napi_gro_receive_entry, DT_HOOK_NAPI_GRO_RECEIVE_ENTRY, true, false)
HOP(net_dev_queue, DT_HOOK_NET_DEV_QUEUE, true, false)
/* the steps after those */
HOP(net_dev_start_xmit, DT_HOOK_NET_DEV_START_XMIT, false, false)
HOP(net_dev_xmit, DT_HOOK_NET_DEV_XMIT, false, false)
HOP(qdisc_enqueue, DT_HOOK_QDISC_ENQUEUE, false, false)
HOP(qdisc_dequeue, DT_HOOK_QDISC_DEQUEUE, false, false)
HOP(skb_copy_datagram_iovec, DT_HOOK_SKB_COPY_DATAGRAM_IOVEC, false, true)
HOP(tcp_retransmit_skb, DT_HOOK_TCP_RETRANSMIT_SKB, false, false)
HOP(tcp_send_reset, DT_HOOK_TCP_SEND_RESET, false, false)
HOP(sock_rcvqueue_full, DT_HOOK_SOCK_RCVQUEUE_FULL, false, false)
HOP(udp_fail_queue_rcv_skb, DT_HOOK_UDP_FAIL_QUEUE_RCV_SKB, false, false)
HOP(icmp_send, DT_HOOK_ICMP_SEND, false, false)
SEC("tp_btf/consume_skb")
int dt_trail_consume_skb(__u64 *ctx)
{
	return on_end(ctx, DT_HOOK_CONSUME_SKB, 0, 0, DT_VERDICT_CONSUMED);
}

SEC("tp_btf/kfree_skb")
int dt_trail_kfree_skb(__u64 *ctx)
{
	/* (skb, location[, reason]): the reason exists from 5.17 (cfg.has_reason) */
	__u32 reason = cfg.has_reason ? (__u32)ctx[2] : 0;
	return on_end(ctx, DT_HOOK_KFREE_SKB, ctx[1], reason, DT_VERDICT_DROPPED);
}

/* --functions: a kernel function that takes the skb (found in the kernel's BTF by user space, which
 * attaches the program for the argument the skb is). It only follows: a hop for an skb already
 * tracked, and for any other skb the same array load as a tracepoint step that cannot start a
 * trail. `regs`: a kprobe's registers, whose stack pointer holds the return address at entry
 * (the caller); NULL for fentry. `clone`: the function makes a clone or copy of the skb. */
static __always_inline int on_function(void *ctx, struct sk_buff *skb, struct pt_regs *regs, bool clone)
{
#ifdef DT_TRAIL_FLOOR
	return 0;
#endif
	if (!skb)
		return 0;
	__u64 key = address_of(skb);
	if (!maybe_tracked(key))
		return 0;
	struct dt_trail *t = find(key);
	if (!t)
		return 0;
	__u64 now = bpf_ktime_get_ns();
	if (now - t->last_ns > cfg.trail_gap_ns)
		return 0;
	struct net_device *dev = BPF_CORE_READ(skb, dev);
	__u32 at = t->nhops;
	struct dt_hop *h = add_hop(t, skb, dev, netns_of(dev, skb, false), DT_FN_HOOK, now, false);
	h->func = bpf_get_func_ip(ctx);
	if (regs)
		bpf_probe_read_kernel(&h->caller, sizeof(h->caller), (void *)regs->sp);
	if (!cfg.trail_returns && !clone)
		return 0;
	__u32 zero = 0;
	struct dt_calls *c = bpf_map_lookup_elem(&calls, &zero);
	if (!c)
		return 0;
	if (c->depth >= DT_FN_CALLS)
		c->depth = 0; /* returns missed (a full kretprobe instance pool): start again */
	struct dt_call *call = &c->call[c->depth & (DT_FN_CALLS - 1)];
	call->func = h->func;
	call->skb = key;
	call->hop = at;
	call->clone = clone;
	c->depth += 1;
	return 0;
}

/* --returns: the value a followed call returned, into its hop (if that hop is still kept). */
static __always_inline void set_return(struct dt_trail *t, struct dt_call *call, __u64 func, __s64 ret)
{
	struct dt_hop *h = &t->hops[call->hop & (DT_TRAIL_HOPS - 1)];

	if (h->func == func && t->nhops - call->hop <= DT_TRAIL_HOPS) {
		h->ret = ret;
		h->hook = DT_FN_RETURNED;
	}
}

/* The return of a call on an skb freed inside it: into its trail, kept pending (the free happened
 * inside this call, or one it made), which is emitted once no call on the skb is left. */
static __always_inline void pending_return(struct dt_calls *c, struct dt_call *call, __u64 func, __s64 ret)
{
	__u32 zero = 0;
	struct dt_pending *p = bpf_map_lookup_elem(&pending, &zero);

	if (!p || !p->skb || p->skb != call->skb)
		return;
	set_return(&p->te.trail, call, func, ret);
	if (!in_call(c, p->skb))
		emit_pending(p);
}

/* The return of a followed function: the call's hop gets the value (--returns); a clone or copy
 * function's new skb gets a trail that goes on from the original's (its hops, then one saying
 * it is a clone), so filters and the verdict apply to it as to the original. */
static __always_inline int on_return(void *ctx, __s64 ret)
{
#ifdef DT_TRAIL_FLOOR
	return 0;
#endif
	__u32 zero = 0;
	struct dt_calls *c = bpf_map_lookup_elem(&calls, &zero);

	if (!c || !c->depth || c->depth > DT_FN_CALLS)
		return 0;
	struct dt_call *call = &c->call[(c->depth - 1) & (DT_FN_CALLS - 1)];
	__u64 func = bpf_get_func_ip(ctx);
	if (call->func != func)
		return 0; /* a call not remembered (not on a tracked skb) */
	c->depth -= 1;
	struct dt_trail *t = find(call->skb);
	if (!t) {
		if (cfg.trail_returns)
			pending_return(c, call, func, ret);
		return 0;
	}
	if (cfg.trail_returns)
		set_return(t, call, func, ret);
	if (!call->clone || !ret || (__u64)ret >= (__u64)-4095)
		return 0; /* no copy made: NULL, or an error pointer (skb_segment) */
	/* skb_segment returns its segments linked by ->next; the other functions a single skb, whose
	 * ->next is NULL: each gets a trail that goes on from the original's */
	struct sk_buff *skb = (struct sk_buff *)ret;
	__u64 now = bpf_ktime_get_ns();
	for (int i = 0; i < DT_FN_SEGMENTS && skb; i++) {
		__u64 key = (__u64)skb;
		struct dt_trail *n = new_trail(key, now);
		if (!n || t->skb != call->skb)
			return 0; /* the original's slot was taken (a copy in its set): its hops are gone */
		bpf_probe_read_kernel(n->hops, sizeof(n->hops), t->hops);
		n->nhops = t->nhops;
		n->selected = t->selected;
		n->first = t->first;
		n->now = t->now;
		struct net_device *dev = BPF_CORE_READ(skb, dev);
		struct dt_hop *h = add_hop(n, skb, dev, netns_of(dev, skb, false), DT_FN_CLONE, now, false);
		h->func = func;
		skb = BPF_CORE_READ(skb, next);
	}
	return 0;
}

#if defined(__TARGET_ARCH_x86)
/* One program per argument position and attach method: the position is a constant of the program
 * (a register, or a slot of fentry's arguments), not looked up per call. */
#define FUNCTION(n, reg)                                                                  \
	SEC("kprobe.multi")                                                               \
	int dt_fn_multi_##n(struct pt_regs *ctx)                                          \
	{                                                                                 \
		return on_function(ctx, (struct sk_buff *)ctx->reg, ctx, false);         \
	}                                                                                 \
	SEC("kprobe")                                                                     \
	int dt_fn_kprobe_##n(struct pt_regs *ctx)                                         \
	{                                                                                 \
		return on_function(ctx, (struct sk_buff *)ctx->reg, ctx, false);          \
	}                                                                                 \
	SEC("fentry")                                                                     \
	int dt_fn_fentry_##n(__u64 *ctx)                                                  \
	{                                                                                 \
		return on_function(ctx, (struct sk_buff *)ctx[n], NULL, false);           \
	}

FUNCTION(0, di)
FUNCTION(1, si)
FUNCTION(2, dx)
FUNCTION(3, cx)
FUNCTION(4, r8)

/* The functions that make a clone or copy (the original is their first argument), and the
 * returns (kretprobe-multi, or one kretprobe each). */
SEC("kprobe.multi")
int dt_fn_clone_multi(struct pt_regs *ctx)
{
	return on_function(ctx, (struct sk_buff *)ctx->di, ctx, true);
}

SEC("kprobe")
int dt_fn_clone_kprobe(struct pt_regs *ctx)
{
	return on_function(ctx, (struct sk_buff *)ctx->di, ctx, true);
}

SEC("kretprobe.multi")
int dt_fn_ret_multi(struct pt_regs *ctx)
{
	return on_return(ctx, (__s64)ctx->ax);
}

SEC("kretprobe")
int dt_fn_ret_kprobe(struct pt_regs *ctx)
{
	return on_return(ctx, (__s64)ctx->ax);
}
#endif
