/* ==== In-kernel counting: `droptrace top` ===========================
 * Each drop adds to a hash map keyed by reason, location, namespace,
 * interface and (with cfg.agg_flows) the flow. Without flows, user space sets
 * the map's key size to the flow-less prefix of struct dt_agg_key (up to saddr),
 * so the kernel hashes and compares a third of the bytes, and the packet's
 * headers are not read at all. Nothing crosses to user space
 * per drop. When the map is full a new flow is folded into its flow-less key,
 * so per-reason counts stay exact. The map is per CPU: each CPU adds to its own
 * copy of a key's counts, with no atomic instruction and no cache line bouncing
 * between CPUs during a storm; user space sums the copies when it reads. */
#ifndef DROPTRACE_AGGREGATE_BPF_H
#define DROPTRACE_AGGREGATE_BPF_H

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct dt_agg_key);
	__type(value, struct dt_agg_val);
} agg SEC(".maps");

/* The flow part of an aggregation key, from the network header (headers.bpf.h). */
static __always_inline void agg_flow(struct dt_agg_key *k, struct sk_buff *skb, bool direct)
{
	struct dt_headers h = {};

	dt_read_headers(&h, skb, direct);
	k->l4proto = h.l4proto;
	k->has_flow = h.has_flow;
	__builtin_memcpy(k->saddr, h.saddr, sizeof(k->saddr));
	__builtin_memcpy(k->daddr, h.daddr, sizeof(k->daddr));
	k->sport = h.sport;
	k->dport = h.dport;
}

static __always_inline void aggregate(struct sk_buff *skb, struct net_device *dev, __u64 location,
				      __u32 reason, __u32 netns, __u32 ifindex, bool direct)
{
	struct dt_agg_key k = {};
	struct dt_agg_val zero = {}, *v;

	k.location = location;
	k.reason = reason;
	k.netns = netns;
	k.ifindex = ifindex;
	k.l3proto = dt_ntohs(DT_RD(direct, skb, protocol));
	if (cfg.agg_flows)
		agg_flow(&k, skb, direct);
	v = bpf_map_lookup_elem(&agg, &k);
	if (!v) {
		if (dev)
			bpf_probe_read_kernel_str(zero.ifname, sizeof(zero.ifname), dev->name);
		if (bpf_map_update_elem(&agg, &k, &zero, BPF_NOEXIST) && cfg.agg_flows) {
			/* full: fold this flow into its flow-less key, so counts stay exact */
			count(DT_STAT_AGG_FOLDED);
			__builtin_memset(&k.l4proto, 0, sizeof(k) - offsetof(struct dt_agg_key, l4proto));
			bpf_map_update_elem(&agg, &k, &zero, BPF_NOEXIST);
		}
		v = bpf_map_lookup_elem(&agg, &k);
		if (!v) {
			count(DT_STAT_AGG_LOST);
			return;
		}
	}
	v->count += 1;  /* this CPU's copy: nothing else writes it while this program runs */
	v->bytes += DT_RD(direct, skb, len);
}

#endif
