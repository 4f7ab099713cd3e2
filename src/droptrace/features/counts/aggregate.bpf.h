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

/* TCP, UDP, DCCP, SCTP, UDP-Lite: their first four bytes are the ports. The
 * key says (DT_FLOW_PORTS) whether they were read, so user space keeps no
 * list of its own. */
static __always_inline bool dt_carries_ports(__u8 proto)
{
	return proto == 6 || proto == 17 || proto == 33 || proto == 132 || proto == 136;
}

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct dt_agg_key);
	__type(value, struct dt_agg_val);
} agg SEC(".maps");

/* Fill the flow part of an aggregation key from the network header, read in one go: 64 bytes
 * cover an IPv4 header with the most options or an IPv6 header, and the ports after either.
 * (A header near the end of its page may not have 64 readable bytes after it: then 44, the
 * ports behind an IPv6 or option-less IPv4 header.) */
static __always_inline void agg_flow(struct dt_agg_key *k, struct sk_buff *skb, bool direct)
{
	unsigned char *head = DT_RD(direct, skb, head);
	__u32 net = DT_RD(direct, skb, network_header);
	__u8 h[64] = {};
	__u32 got = sizeof(h), l4off;

	if (net == DT_OFF_UNSET)
		return;
	if (bpf_probe_read_kernel(h, sizeof(h), head + net)) {
		got = 44;
		if (bpf_probe_read_kernel(h, 44, head + net))
			return;
	}
	if ((h[0] >> 4) == 4 && k->l3proto == 0x0800) {
		k->l4proto = h[9];
		__builtin_memcpy(k->saddr, h + 12, 4);
		__builtin_memcpy(k->daddr, h + 16, 4);
		if (((h[6] << 8) | h[7]) & 0x1fff) { /* a later fragment: no ports */
			k->has_flow = DT_FLOW_ADDRS;
			return;
		}
		l4off = (h[0] & 0xf) * 4;
	} else if ((h[0] >> 4) == 6 && k->l3proto == 0x86dd) {
		k->l4proto = h[6];
		__builtin_memcpy(k->saddr, h + 8, 16);
		__builtin_memcpy(k->daddr, h + 24, 16);
		l4off = 40;
	} else {
		return;
	}
	k->has_flow = DT_FLOW_ADDRS;
	l4off &= 0x3c; /* a multiple of 4, at most 60: the verifier sees the bound */
	if (dt_carries_ports(k->l4proto) && l4off + 4 <= got) {
		k->sport = (h[l4off] << 8) | h[l4off + 1];
		k->dport = (h[l4off + 2] << 8) | h[l4off + 3];
		k->has_flow = DT_FLOW_ADDRS | DT_FLOW_PORTS;
	}
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
