/* ==== Reading the skb: namespace, device filters, header copying =====
 * What the CO-RE object reads from the skb before anything else, and the
 * filters that need it (--netns, --interface). The packet is copied from its
 * first known header, so user space decodes addresses and ports from the
 * packet itself: skb->sk is NULL for most receive-path drops. */
#ifndef DROPTRACE_CAPTURE_BPF_H
#define DROPTRACE_CAPTURE_BPF_H

/* netns inode -> 1, consulted when cfg.netns_on */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, DT_LIST_MAX);
	__type(key, __u32);
	__type(value, __u8);
} netns_filter SEC(".maps");

/* device name -> 1, consulted when cfg.ifname_on */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, DT_LIST_MAX);
	__type(key, struct dt_ifname);
	__type(value, __u8);
} ifname_filter SEC(".maps");

static __always_inline __u32 netns_of(struct net_device *dev, struct sk_buff *skb, bool direct)
{
	if (dev)
		return direct ? dev->nd_net.net->ns.inum : BPF_CORE_READ(dev, nd_net.net, ns.inum);
	struct sock *sk = DT_RD(direct, skb, sk);
	if (sk)
		return direct ? sk->__sk_common.skc_net.net->ns.inum
			      : BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
	return 0;
}

static __always_inline bool netns_wanted(__u32 netns)
{
	if (!cfg.netns_on)
		return true;
	if (cfg.netns_few_n) { /* a few constants: cheaper than a hash lookup per drop */
		for (int i = 0; i < DT_NETNS_FEW; i++)
			if (i < cfg.netns_few_n && cfg.netns_few[i] == netns)
				return true;
		return false;
	}
	return bpf_map_lookup_elem(&netns_filter, &netns) != NULL;
}

static __always_inline bool ifname_wanted(struct net_device *dev)
{
	struct dt_ifname key = {};

	if (!cfg.ifname_on)
		return true;
	if (!dev)
		return false;
	bpf_probe_read_kernel_str(key.name, sizeof(key.name), dev->name);
	return bpf_map_lookup_elem(&ifname_filter, &key) != NULL;
}

/* Copy the packet from its first known header: MAC, else network, else data. */
static __always_inline void copy_headers(struct dt_event *e, struct sk_buff *skb, __u32 limit, bool direct)
{
	unsigned char *head = DT_RD(direct, skb, head);
	unsigned char *data = DT_RD(direct, skb, data);
	__u32 mac = DT_RD(direct, skb, mac_header);
	__u32 net = DT_RD(direct, skb, network_header);
	__u32 tail = DT_RD(direct, skb, tail);
	__u32 start;

	if (mac != DT_OFF_UNSET && (net == DT_OFF_UNSET || mac <= net))
		start = mac;
	else if (net != DT_OFF_UNSET)
		start = net;
	else
		start = (__u32)(data - head);

	__u32 data_off = (__u32)(data - head);
	e->data_off = data_off >= start && data_off - start < DT_OFF_UNSET ? data_off - start : 0;
	e->mac_off = mac != DT_OFF_UNSET && mac >= start ? mac - start : DT_OFF_UNSET;
	e->net_off = net != DT_OFF_UNSET && net >= start ? net - start : DT_OFF_UNSET;

	__u32 cap = tail > start ? tail - start : 0;
	if (cap > cfg.snaplen)
		cap = cfg.snaplen;
	if (cap > limit) /* the room reserved after e->data's start: a constant per call site */
		cap = limit;
	e->cap_len = cap;
	if (cap)
		bpf_probe_read_kernel(e->data, cap, head + start);
}

/* Everything of an event but the packet bytes and the stack: when, where, why, which task,
 * device and namespace. */
static __always_inline void fill_event(struct dt_event *e, struct sk_buff *skb, struct net_device *dev,
				       __u64 location, __u32 reason, bool has_reason, __u32 netns,
				       __u32 ifindex, __u32 mark, __u64 pid_tgid, bool direct)
{
	e->ts_ns = bpf_ktime_get_ns();
	e->location = location;
	e->reason = reason;
	e->pid = pid_tgid >> 32;
	e->tid = (__u32)pid_tgid;
	e->cpu = bpf_get_smp_processor_id();
	e->len = DT_RD(direct, skb, len);
	e->mark = mark;
	e->ifindex = ifindex;
	e->netns = netns;
	e->protocol = dt_ntohs(DT_RD(direct, skb, protocol));
	e->flags = has_reason ? DT_F_HAS_REASON : 0;
	e->stack_len = 0;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	/* Ring buffer memory is not zeroed: fill every byte user space may key on. */
	e->_pad = 0;
	e->_reserved = 0;
	if (dev) {
		e->dev_type = DT_RD(direct, dev, type);
		if (direct)
			__builtin_memcpy(e->ifname, dev->name, sizeof(e->ifname));
		else
			bpf_probe_read_kernel(e->ifname, sizeof(e->ifname), dev->name);
	} else {
		e->dev_type = 0xffff;
		__builtin_memset(e->ifname, 0, sizeof(e->ifname));
	}
}

#endif
