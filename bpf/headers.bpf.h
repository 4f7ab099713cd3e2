/* ==== A packet's identity from its network header ======================
 * Addresses, protocol and ports, read in one go from the skb's network header:
 * top's and the exporter's flows (aggregate.bpf.h), and trail's headers at each
 * hop of a followed packet (where NAT or encapsulation changed them). */
#ifndef DROPTRACE_HEADERS_BPF_H
#define DROPTRACE_HEADERS_BPF_H

/* TCP, UDP, DCCP, SCTP, UDP-Lite: their first four bytes are the ports. The
 * flow says (DT_FLOW_PORTS) whether they were read, so user space keeps no
 * list of its own. */
static __always_inline bool dt_carries_ports(__u8 proto)
{
	return proto == 6 || proto == 17 || proto == 33 || proto == 132 || proto == 136;
}

/* h (zeroed by the caller) from the network header: 64 bytes cover an IPv4 header with the most
 * options or an IPv6 header, and the ports after either. (A header near the end of its page may
 * not have 64 readable bytes after it: then 44, the ports behind an IPv6 or option-less IPv4
 * header.) h->has_flow says what was read: nothing for a packet that is not IP, or whose
 * network header is unset or disagrees with skb->protocol. */
static __always_inline void dt_read_headers(struct dt_headers *h, struct sk_buff *skb, bool direct)
{
	unsigned char *head = DT_RD(direct, skb, head);
	__u32 net = DT_RD(direct, skb, network_header);
	__u8 b[64] = {};
	__u32 got = sizeof(b), l4off;

	h->l3proto = dt_ntohs(DT_RD(direct, skb, protocol));
	if (net == DT_OFF_UNSET)
		return;
	if (bpf_probe_read_kernel(b, sizeof(b), head + net)) {
		got = 44;
		if (bpf_probe_read_kernel(b, 44, head + net))
			return;
	}
	if ((b[0] >> 4) == 4 && h->l3proto == 0x0800) {
		h->l4proto = b[9];
		__builtin_memcpy(h->saddr, b + 12, 4);
		__builtin_memcpy(h->daddr, b + 16, 4);
		if (((b[6] << 8) | b[7]) & 0x1fff) { /* a later fragment: no ports */
			h->has_flow = DT_FLOW_ADDRS;
			return;
		}
		l4off = (b[0] & 0xf) * 4;
	} else if ((b[0] >> 4) == 6 && h->l3proto == 0x86dd) {
		h->l4proto = b[6];
		__builtin_memcpy(h->saddr, b + 8, 16);
		__builtin_memcpy(h->daddr, b + 24, 16);
		l4off = 40;
	} else {
		return;
	}
	h->has_flow = DT_FLOW_ADDRS;
	l4off &= 0x3c; /* a multiple of 4, at most 60: the verifier sees the bound */
	if (dt_carries_ports(h->l4proto) && l4off + 4 <= got) {
		h->sport = (b[l4off] << 8) | b[l4off + 1];
		h->dport = (b[l4off + 2] << 8) | b[l4off + 3];
		h->has_flow = DT_FLOW_ADDRS | DT_FLOW_PORTS;
	}
}

#endif
