/* ==== In-kernel counting: `droptrace top` ===========================
 * Each drop adds to a hash map keyed by reason, location, namespace,
 * interface and (with cfg.agg_flows) the flow. Nothing crosses to user space
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

/* Fill the flow part of an aggregation key from the network header. */
static __always_inline void agg_flow(struct dt_agg_key *k, struct sk_buff *skb)
{
	unsigned char *head = BPF_CORE_READ(skb, head);
	__u32 net = BPF_CORE_READ(skb, network_header);
	__u8 vhl = 0;

	if (net == DT_OFF_UNSET)
		return;
	unsigned char *ip = head + net;
	bpf_probe_read_kernel(&vhl, 1, ip);
	__u32 l4off;
	if ((vhl >> 4) == 4 && k->l3proto == 0x0800) {
		bpf_probe_read_kernel(&k->l4proto, 1, ip + 9);
		bpf_probe_read_kernel(k->saddr, 4, ip + 12);
		bpf_probe_read_kernel(k->daddr, 4, ip + 16);
		__u16 frag = 0;
		bpf_probe_read_kernel(&frag, 2, ip + 6);
		if (dt_ntohs(frag) & 0x1fff)
			goto done;
		l4off = (vhl & 0xf) * 4;
	} else if ((vhl >> 4) == 6 && k->l3proto == 0x86dd) {
		bpf_probe_read_kernel(&k->l4proto, 1, ip + 6);
		bpf_probe_read_kernel(k->saddr, 16, ip + 8);
		bpf_probe_read_kernel(k->daddr, 16, ip + 24);
		l4off = 40;
	} else {
		return;
	}
	if (dt_carries_ports(k->l4proto)) {
		__u16 ports[2] = {};
		bpf_probe_read_kernel(ports, sizeof(ports), ip + l4off);
		k->sport = dt_ntohs(ports[0]);
		k->dport = dt_ntohs(ports[1]);
		k->has_flow = DT_FLOW_ADDRS | DT_FLOW_PORTS;
		return;
	}
done:
	k->has_flow = DT_FLOW_ADDRS;
}

static __always_inline void aggregate(struct sk_buff *skb, struct net_device *dev, __u64 location,
				      __u32 reason, __u32 netns, __u32 ifindex)
{
	struct dt_agg_key k = {};
	struct dt_agg_val zero = {}, *v;
	__u64 len = BPF_CORE_READ(skb, len);

	k.location = location;
	k.reason = reason;
	k.netns = netns;
	k.ifindex = ifindex;
	k.l3proto = dt_ntohs(BPF_CORE_READ(skb, protocol));
	if (cfg.agg_flows)
		agg_flow(&k, skb);
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
	v->bytes += len;
}

#endif
