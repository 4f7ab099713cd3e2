"""What each drop reason means: the catalogue behind `droptrace explain`, `--explain` and diagnose.

One entry per reason of enum skb_drop_reason (names without the SKB_DROP_REASON_ prefix; every
reason of 6.1 and 6.18 has one, tests/unit/test_explain.py checks it), and one per subsystem of
the SUBSYS:NAME reasons. Written by us from the kernel's comments in
include/net/dropreason-core.h and the code that uses each reason. `since` is the first mainline
release with the reason, where it was verified against that release's sources (None otherwise;
stable kernels may carry backports). `counters` are nstat names; `checks` are (what, command),
with <placeholders>.
"""

ENTRIES = [
    dict(
        reason="NOT_SPECIFIED",
        summary="The packet was dropped, but the code that freed it did not record a specific reason.",
        details=(
            "This is the default value: plain kfree_skb() calls, and any path not converted to "
            "kfree_skb_reason(), report it, and many receive functions start with it before a more "
            "specific reason is chosen. It is not one condition but a catch-all, so the drop location (the "
            "kernel function reported with the event) and its call stack are the only reliable clues. "
            "Expect it from drivers, tunnels and rare error branches in every layer."
        ),
        causes=[
            "A driver, tunnel or protocol path that still frees packets with plain kfree_skb()",
            (
                "An early error branch (for example a failed pskb_may_pull() in tcp_v4_rcv()) taken before "
                "a specific reason was set"
            ),
            "TCP/UDP receiving a frame that was not addressed to this host (pkt_type is not PACKET_HOST)",
        ],
        counters=[],
        checks=[
            (
                "call stacks of unspecified drops",
                (
                    "perf record -g -e skb:kfree_skb -a -- sleep 10; perf script | grep -A15 'reason: "
                    "NOT_SPECIFIED' | head -80"
                ),
            ),
            (
                "drop locations ranked",
                "perf script | grep -o 'location=[^ ]*' | sort | uniq -c | sort -rn | head",
            ),
        ],
        since="5.17",
    ),
    dict(
        reason="NO_SOCKET",
        summary="No socket matched the packet's destination address and port, so nothing could receive it.",
        details=(
            "Raised at the transport layer after the socket lookup fails: "
            "__udp4_lib_rcv()/__udp6_lib_rcv() for UDP (which also answers with ICMP port unreachable and "
            "counts UdpNoPorts) and tcp_v4_rcv()/tcp_v6_rcv() for TCP (which answers with a RST when the "
            "checksum is valid). The TCP handshake and SYN-cookie code also use it when no valid request "
            "or child socket is left. Lookups are per network namespace and respect sockets bound to a "
            "device or VRF."
        ),
        causes=[
            "Service not running, or listening on another port or address (for example only 127.0.0.1)",
            "Packet delivered into the wrong network namespace or VRF, or socket bound to a different device",
            "Late packets for a connection that was already closed and torn down",
            "Port scans or stale UDP clients sending to a closed port",
        ],
        counters=["UdpNoPorts", "Udp6NoPorts", "TcpOutRsts"],
        checks=[
            ("who listens on the port", "ip netns exec <ns> ss -lntup 'sport = :<port>'"),
            ("no-port counters", "ip netns exec <ns> nstat -az UdpNoPorts Udp6NoPorts TcpOutRsts"),
        ],
        since="5.17",
    ),
    dict(
        reason="SOCKET_CLOSE",
        summary="Data still queued on an AF_UNIX socket was discarded because the socket was closed.",
        details=(
            "Used by AF_UNIX when a socket is released while its receive queue still holds unread messages "
            "(unix_release_sock() and the socket destructor), and when the unix garbage collector frees "
            "in-flight messages of socket cycles that are no longer reachable. It means a local peer wrote "
            "data that the owning process never read before closing; TCP and UDP do not use it."
        ),
        causes=[
            "A process exited or closed a unix socket while messages were still queued",
            "A client disconnected before reading the server's last replies",
            "Garbage collection of unreachable sockets that were passed around with SCM_RIGHTS",
        ],
        counters=[],
        checks=[
            ("unix sockets holding unread data", "ss -xp | awk 'NR == 1 || $3 > 0'"),
            ("owner of a given socket path", "ss -xp src <path>"),
        ],
        since="6.14",
    ),
    dict(
        reason="SOCKET_FILTER",
        summary="A filter attached to the receiving socket (or its cgroup) rejected the packet.",
        details=(
            "Raised when sk_filter()/sk_filter_trim_cap() refuses a packet at socket delivery, for example "
            "in tcp_v4_rcv()/tcp_v6_rcv() via tcp_filter(), in udp_queue_rcv_one_skb() (which also counts "
            "UdpInErrors) and in sock_queue_rcv_skb_reason(). The verdict comes from a classic or eBPF "
            "socket filter (SO_ATTACH_FILTER/SO_ATTACH_BPF) or from a cgroup BPF ingress program; on older "
            "kernels LSM denials in this function were reported here too, newer ones use SECURITY_HOOK for "
            "them."
        ),
        causes=[
            "Socket filter installed by the application that intentionally drops traffic",
            "cgroup BPF ingress program denying traffic (systemd IPAddressDeny=, container network policy)",
            "A buggy filter that rejects valid packets",
        ],
        counters=["UdpInErrors", "Udp6InErrors"],
        checks=[
            ("socket filter BPF programs", "bpftool prog show | grep -A3 socket_filter"),
            ("cgroup BPF programs", "bpftool cgroup tree /sys/fs/cgroup"),
            ("UDP error counters", "ip netns exec <ns> nstat -az UdpInErrors Udp6InErrors"),
        ],
        since="5.17",
    ),
    dict(
        reason="SOCKET_RCVBUFF",
        summary="The receiving socket's buffer was full, so the packet could not be queued.",
        details=(
            "Raised when queueing to a socket fails because the memory already charged to it is at its "
            "receive buffer limit (sk_rcvbuf): __udp_queue_rcv_skb()/__udpv6_queue_rcv_skb() for UDP, and "
            "sock_queue_rcv_skb_reason() for raw sockets and other datagram users. The application is not "
            "reading fast enough for the arrival rate, or SO_RCVBUF is too small for the bursts it "
            "receives."
        ),
        causes=[
            "Application too slow or blocked (GC pause, CPU starvation) while traffic keeps arriving",
            "SO_RCVBUF or net.core.rmem_default too small for the burst size",
            "A single receiver thread for a high-rate UDP flow (no SO_REUSEPORT spreading)",
        ],
        counters=["UdpRcvbufErrors", "UdpInErrors", "Udp6RcvbufErrors", "Udp6InErrors"],
        checks=[
            ("queue size and drops per socket (d in skmem)", "ip netns exec <ns> ss -umnp 'sport = :<port>'"),
            ("buffer limits", "sysctl net.core.rmem_default net.core.rmem_max"),
            ("UDP buffer error counters", "ip netns exec <ns> nstat -az UdpRcvbufErrors Udp6RcvbufErrors"),
        ],
        since="5.18",
    ),
    dict(
        reason="UNIX_DISCONNECT",
        summary="Queued AF_UNIX datagrams were discarded because the socket was disconnected from its peer.",
        details=(
            "AF_UNIX SOCK_DGRAM and SOCK_SEQPACKET sockets purge their receive queue in "
            "unix_dgram_disconnected() when they connect() to a different peer, or when a send finds that "
            "the connected peer has been closed. Messages still waiting in that queue are dropped with "
            "this reason; the old peer may get ECONNRESET."
        ),
        causes=[
            "A datagram client re-connect()s to another socket while replies are still queued",
            "The peer (for example a log daemon behind /dev/log) restarted and closed its old socket",
            "Application logic that repeatedly connects a datagram socket to new addresses",
        ],
        counters=[],
        checks=[
            ("unix datagram and seqpacket sockets", "ss -xp -A unix_dgram,unix_seqpacket"),
            ("connect calls of the process", "strace -f -e trace=connect -p <pid>"),
        ],
        since="6.14",
    ),
    dict(
        reason="UNIX_SKIP_OOB",
        summary="An AF_UNIX out-of-band byte was skipped by a normal read and thrown away.",
        details=(
            "AF_UNIX stream sockets support MSG_OOB. When the receiver reads the stream without MSG_OOB "
            "and without SO_OOBINLINE, the pending out-of-band skb is discarded as the read passes it "
            "(manage_oob(), and unix_stream_read_skb() for sockmap/BPF readers). It points at an "
            "application protocol mismatch, not at a network problem."
        ),
        causes=[
            "Sender uses send(..., MSG_OOB) but the receiver never reads with MSG_OOB",
            "SO_OOBINLINE not set on the receiver although inline urgent data was expected",
        ],
        counters=[],
        checks=[
            ("find the unix stream sockets of the process", "ss -xp -A unix_stream | grep <process>"),
            ("look for out-of-band sends", "strace -f -e trace=sendto,sendmsg -p <pid> 2>&1 | grep MSG_OOB"),
        ],
        since="6.14",
    ),
    dict(
        reason="PKT_TOO_SMALL",
        summary="The packet was shorter than its headers claim, or too short to hold the protocol header.",
        details=(
            "Length sanity checks: ip_rcv_core() when the buffer is shorter than the IPv4 total length "
            "(IpExtInTruncatedPkts), UDP when the datagram is shorter than its UDP length field, and TCP "
            "when the data offset is smaller than a TCP header (tcp_v4_rcv(), tcp_rcv_established(); "
            "TcpInErrs). IPv6 input, extension headers, ICMP and neighbour discovery parsing use it for "
            "truncated headers as well."
        ),
        causes=[
            "Truncation by a broken NIC, driver or middlebox",
            "Crafted or mangled packets (fuzzing, scanning, wrong encapsulation offsets)",
            "Tunnel or MTU bugs that cut packets",
        ],
        counters=["IpExtInTruncatedPkts", "UdpInErrors", "TcpInErrs"],
        checks=[
            (
                "length error counters",
                "ip netns exec <ns> nstat -az IpExtInTruncatedPkts UdpInErrors TcpInErrs",
            ),
            ("NIC level errors", "ethtool -S <dev> | grep -i -E 'err|short|trunc'"),
            ("capture the short packets", "tcpdump -ni <dev> -vv host <addr>"),
        ],
        since="5.17",
    ),
    dict(
        reason="TCP_CSUM",
        summary="The TCP checksum did not verify.",
        details=(
            "tcp_v4_rcv()/tcp_v6_rcv() and the established-state receive path verify the TCP checksum "
            "unless the NIC already did; a mismatch increments TcpInCsumErrors and TcpInErrs and the "
            "segment is dropped silently. Real corruption is rare on modern links, so suspect checksum "
            "offload problems, bad cables or optics, or a middlebox that rewrites packets without fixing "
            "the checksum."
        ),
        causes=[
            "Faulty NIC checksum offload or driver bug (often virtual NICs or tunnels)",
            "Bit errors on the link (cable, optic, switch port)",
            "NAT or middlebox rewriting headers without updating the checksum",
        ],
        counters=["TcpInCsumErrors", "TcpInErrs"],
        checks=[
            ("checksum counters", "ip netns exec <ns> nstat -az TcpInCsumErrors TcpInErrs"),
            ("checksum offload settings", "ethtool -k <dev> | grep -i checksum"),
            ("link level errors", "ip -s -s link show dev <dev>"),
        ],
        since="5.17",
    ),
    dict(
        reason="UDP_CSUM",
        summary="The UDP checksum did not verify.",
        details=(
            "Checked in __udp4_lib_rcv()/__udp6_lib_rcv(), and again when the datagram is queued to a "
            "socket that has a filter; a mismatch increments UdpInCsumErrors and UdpInErrors (Udp6* for "
            "IPv6) and the datagram is discarded. The usual causes are the same as for TCP: offload bugs, "
            "link corruption, or devices that rewrite packets without updating checksums."
        ),
        causes=[
            "Faulty NIC checksum offload or driver bug",
            "Bit errors on the link",
            "NAT, load balancer or tunnel endpoint rewriting UDP packets incorrectly",
        ],
        counters=["UdpInCsumErrors", "UdpInErrors", "Udp6InCsumErrors", "Udp6InErrors"],
        checks=[
            ("checksum counters", "ip netns exec <ns> nstat -az UdpInCsumErrors Udp6InCsumErrors"),
            ("checksum offload settings", "ethtool -k <dev> | grep -i checksum"),
            ("link level errors", "ip -s -s link show dev <dev>"),
        ],
        since="5.17",
    ),
    dict(
        reason="NETFILTER_DROP",
        summary="A netfilter hook (iptables, nftables, conntrack, ...) returned a DROP verdict.",
        details=(
            "Reported by nf_hook_slow() when a hook returns NF_DROP, so it covers "
            "iptables/ip6tables/ebtables rules (DROP and REJECT targets) as well as conntrack and "
            "SYNPROXY; nf_tables reports its drop verdicts and drop chain policies with the same reason. "
            "The hook may sit in PREROUTING, INPUT, FORWARD, OUTPUT or POSTROUTING, so use the drop "
            "location and the packet direction to find the table and chain."
        ),
        causes=[
            "DROP or REJECT rule, or a chain policy of drop, in iptables or nftables",
            "conntrack table full (dmesg shows 'nf_conntrack: table full, dropping packet')",
            "Rules added by firewall managers (firewalld, ufw, Docker, kube-proxy) that were not expected",
        ],
        counters=[],
        checks=[
            ("nftables rules with counters", "ip netns exec <ns> nft list ruleset"),
            ("iptables rules with hit counters", "ip netns exec <ns> iptables-save -c"),
            (
                "conntrack usage and errors",
                (
                    "ip netns exec <ns> conntrack -S; sysctl net.netfilter.nf_conntrack_count "
                    "net.netfilter.nf_conntrack_max"
                ),
            ),
        ],
        since="5.18",
    ),
    dict(
        reason="OTHERHOST",
        summary="The frame was addressed to another host's MAC address, so IP refused it.",
        details=(
            "ip_rcv_core() and ipv6_rcv() drop packets whose pkt_type is PACKET_OTHERHOST, i.e. the "
            "destination MAC is not one of ours. Such frames only reach IP when the interface is in "
            "promiscuous mode (packet capture, bridge ports, some virtual setups) or the NIC's filter is "
            "open. The device's rx_otherhost_dropped core statistic counts them."
        ),
        causes=[
            "Interface in promiscuous mode (tcpdump without -p, bridge or monitoring setup)",
            "Switch flooding unknown unicast frames (MAC table aging or overflow)",
            "MAC address changes or duplicate MACs among VMs or containers",
        ],
        counters=[],
        checks=[
            ("promiscuous flag and per-device statistics", "ip -s -s -d link show dev <dev>"),
            ("who enabled promiscuous mode", "dmesg | grep -i promiscuous"),
        ],
        since="5.18",
    ),
    dict(
        reason="IP_CSUM",
        summary="The IPv4 header checksum was wrong.",
        details=(
            "Checked in ip_rcv_core(); a bad header checksum increments IpExtInCsumErrors and "
            "IpInHdrErrors and the packet is discarded before routing. IPv6 has no header checksum, so "
            "this reason is IPv4 only."
        ),
        causes=[
            "Corruption on the link or in a NIC or driver",
            "Middlebox or tunnel endpoint rewriting the IP header without recomputing the checksum",
            "Crafted or malformed traffic",
        ],
        counters=["IpExtInCsumErrors", "IpInHdrErrors"],
        checks=[
            ("header error counters", "ip netns exec <ns> nstat -az IpExtInCsumErrors IpInHdrErrors"),
            ("link level errors", "ip -s -s link show dev <dev>"),
            ("capture with checksum verification", "tcpdump -ni <dev> -vv ip and host <addr>"),
        ],
        since="5.18",
    ),
    dict(
        reason="IP_INHDR",
        summary="The IP header was invalid, or the TTL / hop limit ran out while forwarding.",
        details=(
            "Covers IPv4 header validation in ip_rcv_core() (version not 4, IHL below 5, total length "
            "smaller than the header, header not pullable), IPv6 header and extension header errors, and "
            "forwarding with a TTL or hop limit of 1 or less in ip_forward()/ip6_forward(), where an ICMP "
            "time exceeded is sent back. These cases increment IpInHdrErrors or Ip6InHdrErrors."
        ),
        causes=[
            "Routing loop making the TTL expire",
            "Malformed or truncated IP headers from buggy devices or scanners",
            "Invalid IPv6 extension headers or options",
        ],
        counters=["IpInHdrErrors", "Ip6InHdrErrors"],
        checks=[
            ("header error counters", "ip netns exec <ns> nstat -az IpInHdrErrors Ip6InHdrErrors"),
            (
                "check the forwarding path for a loop",
                "ip netns exec <ns> ip route get <daddr> from <saddr> iif <dev>",
            ),
            (
                "see time exceeded messages",
                "tcpdump -ni <dev> 'icmp[icmptype] == icmp-timxceed or (icmp6 and ip6[40] == 3)'",
            ),
        ],
        since="5.18",
    ),
    dict(
        reason="IP_RPFILTER",
        summary=(
            "Reverse path filtering rejected the packet: its source is not routed back via this interface."
        ),
        details=(
            "During the input route lookup, fib_validate_source() checks that the source address is "
            "reachable through the interface the packet came in on (strict, rp_filter=1) or through any "
            "interface (loose, rp_filter=2). On failure ip_rcv_finish_core() drops the packet and counts "
            "TcpExtIPReversePathFilter. The effective mode is the maximum of net.ipv4.conf.all.rp_filter "
            "and the per-device value; IPv4 only."
        ),
        causes=[
            "Asymmetric routing (multi-homed hosts, ECMP, replies arriving on another interface)",
            "Policy routing or VRF setups where the reverse lookup uses a different table",
            "Missing route for the source prefix on a secondary interface",
            "Spoofed source addresses",
        ],
        counters=["TcpExtIPReversePathFilter"],
        checks=[
            (
                "rp_filter settings",
                "ip netns exec <ns> sysctl net.ipv4.conf.all.rp_filter net.ipv4.conf.<dev>.rp_filter",
            ),
            ("reverse route lookup", "ip netns exec <ns> ip route get <saddr> from <daddr> iif <dev>"),
            (
                "log martian packets",
                "sysctl -w net.ipv4.conf.<dev>.log_martians=1; dmesg -w | grep -i martian",
            ),
        ],
        since="5.18",
    ),
    dict(
        reason="UNICAST_IN_L2_MULTICAST",
        summary=(
            "A unicast IP packet arrived in an L2 broadcast/multicast frame and local policy drops those."
        ),
        details=(
            "With net.ipv4.conf.<dev>.drop_unicast_in_l2_multicast (or "
            "net.ipv6.conf.<dev>.drop_unicast_in_l2_multicast) enabled, ip_rcv_finish_core() and "
            "ip6_rcv_core() discard packets whose IP destination is unicast while the link-layer "
            "destination was broadcast or multicast (RFC 1122 3.3.6). The option is off by default and "
            "exists to protect Wi-Fi clients from the 'hole-196' attack; the IPv6 path also counts "
            "Ip6InHdrErrors."
        ),
        causes=[
            (
                "drop_unicast_in_l2_multicast enabled on purpose (sometimes done on Wi-Fi hosts and access "
                "points)"
            ),
            "A host or access point sending unicast IP to a broadcast or multicast MAC",
            "Multicast-to-unicast conversion done incorrectly by a wireless device",
        ],
        counters=["Ip6InHdrErrors"],
        checks=[
            ("policy sysctls", "sysctl -a 2>/dev/null | grep drop_unicast_in_l2_multicast"),
            (
                "capture offending frames",
                (
                    "tcpdump -eni <dev> '(ether broadcast or ether multicast) and not (ip multicast or ip "
                    "broadcast or ip6 multicast)'"
                ),
            ),
        ],
        since="5.18",
    ),
    dict(
        reason="XFRM_POLICY",
        summary="An IPsec (xfrm) policy check failed for the packet.",
        details=(
            "xfrm4_policy_check()/xfrm6_policy_check() run on local delivery (ip_protocol_deliver_rcu(), "
            "TCP, UDP, raw, ICMP) and xfrm route/policy checks run on forwarding (ip_forward(), "
            "ip6_forward()). The packet is dropped when a policy requires IPsec protection it did not "
            "have, a block policy matches, or no usable state or route exists for forwarding. Details are "
            "in /proc/net/xfrm_stat rather than in nstat."
        ),
        causes=[
            "Plaintext traffic matching an 'in' or 'fwd' policy that requires ESP/AH",
            "Missing or expired security association (IKE daemon down, failed rekey)",
            "Missing 'fwd' policy on an IPsec gateway",
            "A block policy matching the traffic",
        ],
        counters=[],
        checks=[
            ("xfrm error counters", "ip netns exec <ns> cat /proc/net/xfrm_stat"),
            ("policies", "ip netns exec <ns> ip xfrm policy"),
            ("security associations", "ip netns exec <ns> ip -s xfrm state"),
        ],
        since="5.18",
    ),
    dict(
        reason="IP_NOPROTO",
        summary="No handler or raw socket exists for the packet's IP protocol number.",
        details=(
            "In ip_protocol_deliver_rcu() (IPv4) and ip6_protocol_deliver_rcu() (IPv6) a locally delivered "
            "packet whose protocol / next header has no registered handler and no matching raw socket is "
            "dropped. IpInUnknownProtos or Ip6InUnknownProtos increases and, if the xfrm policy allows, an "
            "ICMP protocol unreachable (ICMPv6 parameter problem) is returned."
        ),
        causes=[
            "Protocol module not loaded (sctp, gre, ipip, l2tp, ...)",
            "Tunnel or IPsec traffic arriving without the matching tunnel or xfrm configuration",
            "Probing with unusual protocol numbers",
        ],
        counters=["IpInUnknownProtos", "Ip6InUnknownProtos"],
        checks=[
            (
                "unknown protocol counters",
                "ip netns exec <ns> nstat -az IpInUnknownProtos Ip6InUnknownProtos",
            ),
            ("which protocol arrives", "tcpdump -ni <dev> 'not tcp and not udp and not icmp and not icmp6'"),
            ("loaded protocol modules", "lsmod | grep -E 'sctp|gre|ipip|l2tp|esp'"),
        ],
        since="5.18",
    ),
    dict(
        reason="PROTO_MEM",
        summary="Protocol memory accounting (udp_mem/tcp_mem or the socket's charge) refused the packet.",
        details=(
            "UDP returns it from __udp_queue_rcv_skb() when __udp_enqueue_schedule_skb() cannot charge "
            "memory because the global udp_mem limit is hit (UdpMemErrors). TCP uses it in "
            "tcp_data_queue() (TcpExtTCPRcvQDrop) and tcp_data_queue_ofo() (TcpExtTCPOFODrop) when the "
            "receive memory cannot be charged even after pruning, which happens with a full receive buffer "
            "or tcp_mem pressure; sock_queue_rcv_skb_reason() maps -ENOBUFS to it as well."
        ),
        causes=[
            "Global UDP or TCP memory limits reached (net.ipv4.udp_mem, net.ipv4.tcp_mem)",
            "Many sockets with large unread queues consuming protocol memory",
            "TCP receiver not reading, so its receive buffer cannot take more data",
        ],
        counters=["UdpMemErrors", "Udp6MemErrors", "TcpExtTCPRcvQDrop", "TcpExtTCPOFODrop"],
        checks=[
            ("protocol memory in use (pages)", "cat /proc/net/sockstat /proc/net/sockstat6"),
            ("protocol memory limits (pages)", "sysctl net.ipv4.udp_mem net.ipv4.tcp_mem"),
            ("sockets with the largest receive queues", "ip netns exec <ns> ss -tuna | sort -k3 -n | tail"),
        ],
        since="5.18",
    ),
    dict(
        reason="TCP_AUTH_HDR",
        summary="The TCP-MD5/TCP-AO option in the segment was malformed or present more than once.",
        details=(
            "tcp_inbound_hash() first parses the authentication options with tcp_parse_auth_options(); an "
            "invalid option, a duplicated one, or TCP-MD5 and TCP-AO together make the segment drop before "
            "any key lookup. Any segment can hit this, but in practice it is seen with BGP or LDP peers "
            "that use TCP-MD5 (RFC 2385) or TCP-AO (RFC 5925)."
        ),
        causes=[
            "Peer sending both TCP-MD5 and TCP-AO options in one segment",
            "A middlebox or buggy stack corrupting TCP options",
            "Half-finished migration from TCP-MD5 to TCP-AO on one side",
        ],
        counters=[],
        checks=[
            ("TCP hash tracepoints", "perf record -e 'tcp:tcp_hash_*' -a -- sleep 30; perf script"),
            ("inspect TCP options", "tcpdump -ni <dev> -vv tcp port <port>"),
        ],
        since="6.7",
    ),
    dict(
        reason="TCP_MD5NOTFOUND",
        summary="A TCP-MD5 key is configured for the peer, but the segment carried no MD5 signature.",
        details=(
            "In tcp_inbound_hash(), an unsigned segment from an address that has a TCP-MD5 key "
            "(TCP_MD5SIG) is rejected and TcpExtTCPMD5NotFound increases. Typical for BGP sessions where "
            "only one side has the password configured."
        ),
        causes=[
            "Password configured locally but not on the peer",
            "Peer's key set for a different address, prefix or VRF, so it does not sign",
            "A middlebox stripping TCP options",
        ],
        counters=["TcpExtTCPMD5NotFound"],
        checks=[
            ("TCP-MD5 counters", "ip netns exec <ns> nstat -az 'TcpExtTCPMD5*'"),
            ("see whether segments carry the MD5 option", "tcpdump -ni <dev> -vv tcp port <port>"),
        ],
        since="5.18",
    ),
    dict(
        reason="TCP_MD5UNEXPECTED",
        summary="The segment carried a TCP-MD5 signature, but no MD5 key is configured for that peer.",
        details=(
            "tcp_inbound_md5_hash() finds no key matching the segment's source (address, prefix length, L3 "
            "device) although the MD5 option is present, so the segment is dropped and "
            "TcpExtTCPMD5Unexpected increases. Usually the peer has a password that this side lacks, or "
            "the key was added for another address or VRF."
        ),
        causes=[
            "Peer has a password configured but this side does not",
            "Key installed for the wrong address, prefix length or VRF device",
            "Key removed while the session was still up",
        ],
        counters=["TcpExtTCPMD5Unexpected"],
        checks=[
            ("TCP-MD5 counters", "ip netns exec <ns> nstat -az 'TcpExtTCPMD5*'"),
            ("see whether segments carry the MD5 option", "tcpdump -ni <dev> -vv tcp port <port>"),
        ],
        since="5.18",
    ),
    dict(
        reason="TCP_MD5FAILURE",
        summary="The TCP-MD5 signature did not match the configured key.",
        details=(
            "tcp_inbound_md5_hash() recomputes the MD5 digest and it differs from the one in the segment "
            "(or cannot be computed), so the segment is dropped and TcpExtTCPMD5Failure increases. Usually "
            "a password mismatch; it also happens when something on the path rewrites addresses, ports or "
            "options covered by the digest."
        ),
        causes=[
            "Different passwords configured on the two peers",
            "NAT or a middlebox rewriting addresses, ports or TCP options",
            "Key changed on one side only during a rollover",
        ],
        counters=["TcpExtTCPMD5Failure"],
        checks=[
            ("TCP-MD5 counters", "ip netns exec <ns> nstat -az 'TcpExtTCPMD5*'"),
            ("see whether segments carry the MD5 option", "tcpdump -ni <dev> -vv tcp port <port>"),
        ],
        since="5.18",
    ),
    dict(
        reason="TCP_AONOTFOUND",
        summary="TCP-AO is required for the peer, but the segment carried no TCP-AO option.",
        details=(
            "In tcp_inbound_hash(), an unsigned segment from a peer that matches a configured TCP-AO key "
            "(tcp_ao_required()) is rejected and TcpExtTCPAORequired increases. This is the TCP "
            "Authentication Option (RFC 5925) counterpart of TCP_MD5NOTFOUND."
        ),
        causes=[
            "TCP-AO configured locally but not on the peer",
            "Peer's keys configured for a different address, prefix or VRF",
            "A middlebox stripping TCP options",
        ],
        counters=["TcpExtTCPAORequired"],
        checks=[
            ("TCP-AO counters", "ip netns exec <ns> nstat -az 'TcpExtTCPAO*'"),
            (
                "TCP-AO tracepoints",
                "perf record -e 'tcp:tcp_ao_*' -e 'tcp:tcp_hash_*' -a -- sleep 30; perf script",
            ),
        ],
        since="6.7",
    ),
    dict(
        reason="TCP_AOUNEXPECTED",
        summary="The segment carried a TCP-AO option, but the socket has no TCP-AO configuration.",
        details=(
            "tcp_inbound_ao_hash() finds no TCP-AO information on the receiving socket for a segment that "
            "includes the AO option and drops it. The kernel counts this case in TcpExtTCPAOKeyNotFound; "
            "there is no separate counter."
        ),
        causes=[
            "Peer signs with TCP-AO but no keys are configured on this side",
            "Keys configured on a different socket, address family or VRF than the one receiving the traffic",
        ],
        counters=["TcpExtTCPAOKeyNotFound"],
        checks=[
            ("TCP-AO counters", "ip netns exec <ns> nstat -az 'TcpExtTCPAO*'"),
            (
                "TCP-AO tracepoints",
                "perf record -e 'tcp:tcp_ao_*' -e 'tcp:tcp_hash_*' -a -- sleep 30; perf script",
            ),
        ],
        since="6.7",
    ),
    dict(
        reason="TCP_AOKEYNOTFOUND",
        summary="The segment's TCP-AO key ID matches no key configured for the peer.",
        details=(
            "The socket uses TCP-AO, but tcp_inbound_ao_hash() cannot find a key for the peer address and "
            "the KeyID carried in the segment, so the segment is dropped and TcpExtTCPAOKeyNotFound "
            "increases. Common during key rollover when the two sides' key sets diverge."
        ),
        causes=[
            "Peers configured with different KeyIDs",
            "Key rollover where the new key was added on one side only",
            "Key configured for the wrong peer address or prefix",
        ],
        counters=["TcpExtTCPAOKeyNotFound"],
        checks=[
            ("TCP-AO counters", "ip netns exec <ns> nstat -az 'TcpExtTCPAO*'"),
            (
                "TCP-AO tracepoints",
                "perf record -e 'tcp:tcp_ao_*' -e 'tcp:tcp_hash_*' -a -- sleep 30; perf script",
            ),
        ],
        since="6.7",
    ),
    dict(
        reason="TCP_AOFAILURE",
        summary=(
            "TCP-AO verification failed: wrong MAC, wrong MAC length, or AO use not matching the handshake."
        ),
        details=(
            "Returned when tcp_ao_verify_hash() sees a MAC length different from the key's or a MAC that "
            "does not match, and when a segment's use of TCP-AO differs from what was negotiated for the "
            "request socket; TcpExtTCPAOBad increases. Per-key bad packet counts are also kept on the "
            "socket."
        ),
        causes=[
            "Different secrets or algorithms configured on the two peers",
            "NAT or a middlebox rewriting parts of the segment covered by the MAC",
            "Peer switching between signed and unsigned segments during the handshake",
        ],
        counters=["TcpExtTCPAOBad"],
        checks=[
            ("TCP-AO counters", "ip netns exec <ns> nstat -az 'TcpExtTCPAO*'"),
            (
                "TCP-AO tracepoints",
                "perf record -e 'tcp:tcp_ao_*' -e 'tcp:tcp_hash_*' -a -- sleep 30; perf script",
            ),
        ],
        since="6.7",
    ),
    dict(
        reason="SOCKET_BACKLOG",
        summary=(
            "TCP could not queue the segment to a busy socket's backlog because the backlog limit was "
            "reached."
        ),
        details=(
            "While a user thread owns the socket lock, tcp_v4_rcv()/tcp_v6_rcv() put incoming segments on "
            "the socket backlog with tcp_add_backlog(). If sk_add_backlog() fails because backlog plus "
            "receive memory exceed the limit (roughly twice the receive buffer plus some headroom), the "
            "segment is dropped and TcpExtTCPBacklogDrop increases. The application holds the socket for "
            "long periods while data keeps arriving."
        ),
        causes=[
            "Application holding the socket in long send/receive calls while a burst arrives",
            "Receive buffer too small for the bandwidth-delay product",
            "CPU contention delaying the thread that owns the socket",
        ],
        counters=["TcpExtTCPBacklogDrop"],
        checks=[
            ("backlog drop counter", "ip netns exec <ns> nstat -az TcpExtTCPBacklogDrop"),
            ("socket memory of the flows", "ip netns exec <ns> ss -tmi 'sport = :<port>'"),
            ("TCP buffer limits", "sysctl net.ipv4.tcp_rmem net.core.rmem_max"),
        ],
        since="5.18",
    ),
    dict(
        reason="TCP_FLAGS",
        summary="The TCP flag combination is not acceptable in the socket's current state.",
        details=(
            "Used by the TCP state machine for segments carrying none of ACK, RST or SYN "
            "(tcp_rcv_established() slow path, tcp_rcv_state_process()), for an ACK, a SYN+FIN or another "
            "non-SYN segment sent to a LISTEN socket (an ACK to a listener is answered with a RST), and "
            "for a non-SYN segment in SYN-SENT. TCP-AO also uses it when a listener gets a segment it "
            "cannot tie to a handshake."
        ),
        causes=[
            (
                "ACKs reaching a listener after connection state was lost (restart, expired request, SYN "
                "cookies off)"
            ),
            "Scanners sending NULL, XMAS or SYN+FIN segments",
            "A middlebox rewriting or stripping TCP flags",
        ],
        counters=[],
        checks=[
            (
                "capture segments without ACK/RST/SYN or with SYN+FIN",
                (
                    "tcpdump -ni <dev> 'tcp port <port> and (tcp[tcpflags] & (tcp-syn|tcp-ack|tcp-rst) == "
                    "0 or tcp[tcpflags] & (tcp-syn|tcp-fin) == (tcp-syn|tcp-fin))'"
                ),
            ),
            ("listener state", "ip netns exec <ns> ss -ltn 'sport = :<port>'"),
        ],
        since="5.18",
    ),
    dict(
        reason="TCP_ABORT_ON_DATA",
        summary="Data arrived on a TCP connection that the application had already closed, so TCP reset it.",
        details=(
            "In tcp_rcv_state_process(), a socket in FIN_WAIT1/FIN_WAIT2 whose receive side is shut down "
            "(after close()) must not accept new data (RFC 1122): the connection is reset and "
            "TcpExtTCPAbortOnData increases. The same reason is used when an orphaned FIN_WAIT1 socket is "
            "finished early because TCP_LINGER2 is negative, or receives data or an out-of-order FIN after "
            "close()."
        ),
        causes=[
            "Application closes the socket while the peer is still sending (keep-alive or pipelining races)",
            "Server closing idle connections at the moment the client sends a new request",
            "Application closing without reading the whole request or response",
        ],
        counters=["TcpExtTCPAbortOnData", "TcpOutRsts"],
        checks=[
            ("abort counters", "ip netns exec <ns> nstat -az TcpExtTCPAbortOnData TcpOutRsts"),
            (
                "sockets in FIN-WAIT states",
                "ip netns exec <ns> ss -tn state fin-wait-1 state fin-wait-2 'sport = :<port>'",
            ),
        ],
        since="6.9",
    ),
    dict(
        reason="TCP_ZEROWINDOW",
        summary="The segment was dropped because our advertised TCP receive window was zero.",
        details=(
            "In tcp_data_queue(), in-sequence data that arrives while tcp_receive_window() is 0 (the "
            "receive buffer is full because the application is not reading) is discarded, an immediate ACK "
            "is scheduled and TcpExtTCPZeroWindowDrop increases; a bare FIN is still accepted. Persistent "
            "drops mean a slow or stuck reader, not a network fault."
        ),
        causes=[
            "Receiving application stalled or too slow to read",
            "Receive buffer too small (tcp_rmem maximum, or a fixed SO_RCVBUF)",
            "Peer sending data into a closed window",
        ],
        counters=["TcpExtTCPZeroWindowDrop"],
        checks=[
            (
                "zero window counters",
                "ip netns exec <ns> nstat -az TcpExtTCPZeroWindowDrop TcpExtTCPToZeroWindowAdv",
            ),
            ("receive queue and window per socket", "ip netns exec <ns> ss -tmi 'sport = :<port>'"),
        ],
        since="5.18",
    ),
    dict(
        reason="TCP_OLD_DATA",
        summary="The segment only carried data that had already been received (a retransmission).",
        details=(
            "In tcp_data_queue(), a segment whose end sequence is not after rcv_nxt is a duplicate: TCP "
            "schedules an immediate ACK (with a D-SACK block if enabled), counts TcpExtDelayedACKLost and "
            "drops it. Occasional hits are normal; many of them suggest lost or delayed ACKs, a too "
            "aggressive retransmission timer on the peer, or duplication in the network."
        ),
        causes=[
            "Our ACKs were lost or delayed, so the peer retransmitted",
            "Spurious retransmission timeouts on the sender",
            "Packet duplication in the path (mirroring, bonding or switch issues)",
        ],
        counters=["TcpExtDelayedACKLost", "TcpExtTCPDSACKOldSent"],
        checks=[
            (
                "duplicate data counters",
                "ip netns exec <ns> nstat -az TcpExtDelayedACKLost TcpExtTCPDSACKOldSent",
            ),
            ("retransmissions seen by the sender", "ss -ti 'dst <addr>'"),
        ],
        since="5.18",
    ),
    dict(
        reason="TCP_OVERWINDOW",
        summary="The segment started at or beyond the right edge of our receive window.",
        details=(
            "tcp_data_queue() drops data whose first sequence number is at or beyond rcv_nxt plus the "
            "receive window, for example probes carrying data into a closed window. Since 6.15 "
            "tcp_check_req() also uses it for out-of-window segments sent to a pending (SYN_RECV) request "
            "socket. Most out-of-window segments are caught earlier by tcp_validate_incoming() and "
            "reported as TCP_INVALID_SEQUENCE instead."
        ),
        causes=[
            "Peer ignoring the advertised window (buggy stack)",
            "Window scaling mismatch, e.g. a middlebox removed the window scale option",
            "Window probes that carry payload",
        ],
        counters=[],
        checks=[
            ("window scale and receive window", "ip netns exec <ns> ss -ti 'sport = :<port>'"),
            (
                "capture the handshake options",
                "tcpdump -ni <dev> -vv 'tcp port <port> and tcp[tcpflags] & tcp-syn != 0'",
            ),
        ],
        since="5.18",
    ),
    dict(
        reason="TCP_OFOMERGE",
        summary="An out-of-order segment was redundant: its data was already in the out-of-order queue.",
        details=(
            "tcp_data_queue_ofo() drops a new out-of-order segment fully covered by one already queued, "
            "and frees queued segments that a new larger segment fully covers. Each case increments "
            "TcpExtTCPOFOMerge and generates a D-SACK. It shows duplicated or retransmitted data during "
            "reordering or loss recovery."
        ),
        causes=[
            "Sender retransmitting segments that were only reordered, not lost",
            "Packet duplication in the network",
            "Heavy reordering (ECMP or LAG hashing, multipath)",
        ],
        counters=["TcpExtTCPOFOMerge"],
        checks=[
            ("out-of-order counters", "ip netns exec <ns> nstat -az TcpExtTCPOFOMerge TcpExtTCPOFOQueue"),
            ("reordering seen per socket", "ss -ti 'dst <addr>'"),
        ],
        since="5.18",
    ),
    dict(
        reason="TCP_RFC7323_PAWS",
        summary="The TCP timestamp was older than the last one seen from the peer (PAWS check failed).",
        details=(
            "Protection Against Wrapped Sequences (RFC 7323): tcp_validate_incoming() rejects non-RST "
            "segments whose TSval is older than the recorded ts_recent, counts TcpExtPAWSEstab and sends a "
            "(rate limited) duplicate ACK. The reason is also used in SYN-SENT when the SYN-ACK echoes a "
            "TSecr outside the range we sent (TcpExtPAWSActive), and since 6.15 in tcp_check_req() for "
            "pending request sockets."
        ),
        causes=[
            "Several clients behind one NAT address with different timestamp clocks",
            "Peer reusing a 4-tuple after a reboot, with a lower timestamp",
            "Late, reordered segments (on 6.14+ pure old ACKs are reported as TCP_RFC7323_PAWS_ACK instead)",
        ],
        counters=["TcpExtPAWSEstab", "TcpExtPAWSActive"],
        checks=[
            ("PAWS counters", "ip netns exec <ns> nstat -az 'TcpExtPAWS*'"),
            (
                "timestamps on the wire",
                (
                    "tcpdump -ni <dev> -vv 'host <addr> and tcp port <port>' | grep -o 'TS val [0-9]* ecr "
                    "[0-9]*'"
                ),
            ),
        ],
        since="5.19",
    ),
    dict(
        reason="TCP_RFC7323_PAWS_ACK",
        summary="An old pure ACK failed the PAWS timestamp check and was quietly ignored.",
        details=(
            "Split out of TCP_RFC7323_PAWS for a harmless case: tcp_validate_incoming() recognises a pure "
            "ACK whose sequence is before rcv_nxt and whose timestamp is stale as an old, reordered ACK. "
            "It is dropped without sending a duplicate ACK and counted in TcpExtPAWSOldAck rather than "
            "TcpExtPAWSEstab. A common cause is the peer sending pure ACKs and data of one flow through "
            "different TX queues."
        ),
        causes=[
            "TX queue (XPS) reordering between pure ACKs and data segments on the sender",
            "Reordering in the network (ECMP, LAG)",
            "ACKs delayed in a congested queue",
        ],
        counters=["TcpExtPAWSOldAck"],
        checks=[
            ("PAWS counters", "ip netns exec <ns> nstat -az TcpExtPAWSOldAck TcpExtPAWSEstab"),
            ("XPS configuration on the sending host", "grep . /sys/class/net/<dev>/queues/tx-*/xps_cpus"),
        ],
        since="6.14",
    ),
    dict(
        reason="TCP_RFC7323_TW_PAWS",
        summary="A segment for a TIME_WAIT connection failed the PAWS timestamp check.",
        details=(
            "tcp_timewait_state_process() rejects segments whose timestamp is older than the one recorded "
            "for the TIME_WAIT socket; the segment is dropped and counted in TcpExtPAWSTimewait. Often "
            "seen when a client reconnects quickly with the same 4-tuple while its timestamp clock is "
            "behind, for example several hosts behind one NAT address."
        ),
        causes=[
            "Clients behind NAT sharing an address but using different timestamp offsets",
            (
                "Fast port reuse toward the same server from a host whose timestamps went backwards "
                "(reboot, migration)"
            ),
            "Late duplicates from the previous connection",
        ],
        counters=["TcpExtPAWSTimewait"],
        checks=[
            ("TIME_WAIT sockets for the peer", "ip netns exec <ns> ss -tan state time-wait 'dst <addr>'"),
            ("PAWS counters", "ip netns exec <ns> nstat -az TcpExtPAWSTimewait TcpExtPAWSEstab"),
        ],
        since="6.16",
    ),
    dict(
        reason="TCP_RFC7323_TSECR",
        summary="An ACK for a pending handshake echoed a timestamp that we never sent (bad TSecr).",
        details=(
            "tcp_check_req() checks the TSecr of a segment completing a SYN_RECV request socket against "
            "the range of timestamps sent in our SYN-ACKs. On mismatch it replies with a (rate limited) "
            "ACK, drops the segment and increments TcpExtTSEcrRejected. This protects passive opens from "
            "stale or spoofed ACKs."
        ),
        causes=[
            "Stale ACK from an earlier connection attempt on the same 4-tuple",
            "A middlebox rewriting TCP timestamps",
            "Spoofed or blind ACKs aimed at the listener",
        ],
        counters=["TcpExtTSEcrRejected"],
        checks=[
            ("counters", "ip netns exec <ns> nstat -az TcpExtTSEcrRejected TcpExtTCPACKSkippedSynRecv"),
            (
                "capture the handshake",
                "tcpdump -ni <dev> -vv 'tcp port <port> and tcp[tcpflags] & (tcp-syn|tcp-ack) != 0'",
            ),
        ],
        since="6.15",
    ),
    dict(
        reason="TCP_LISTEN_OVERFLOW",
        summary="The handshake could not complete because the listener's accept queue was full.",
        details=(
            "When the final ACK of a 3-way handshake arrives, tcp_check_req() asks the listener to create "
            "the child socket. If the accept queue is full (the application does not call accept() fast "
            "enough) or the child cannot be created, the ACK is dropped with this reason and "
            "ListenOverflows/ListenDrops increase. Unless net.ipv4.tcp_abort_on_overflow is set, the "
            "request is kept and a retransmitted ACK may still succeed."
        ),
        causes=[
            "Application accept() loop too slow or blocked",
            "listen() backlog too small, or capped by net.core.somaxconn",
            "Connection bursts, e.g. mass reconnects after an outage",
        ],
        counters=["TcpExtListenOverflows", "TcpExtListenDrops"],
        checks=[
            (
                "accept queue (Recv-Q) against backlog (Send-Q)",
                "ip netns exec <ns> ss -ltn 'sport = :<port>'",
            ),
            ("overflow counters", "ip netns exec <ns> nstat -az TcpExtListenOverflows TcpExtListenDrops"),
            ("backlog limits", "ip netns exec <ns> sysctl net.core.somaxconn net.ipv4.tcp_abort_on_overflow"),
        ],
        since="6.15",
    ),
    dict(
        reason="TCP_OLD_SEQUENCE",
        summary="The segment lies entirely before the receive window: an old duplicate.",
        details=(
            "tcp_sequence(), called from tcp_validate_incoming(), returns this when the segment's end "
            "sequence is before rcv_wup, so all of it was already acknowledged. Unless it is a RST, a "
            "duplicate ACK is sent (rate limited). Duplicates are common, so they were split out of "
            "TCP_INVALID_SEQUENCE to keep that reason meaningful."
        ),
        causes=[
            "Retransmissions of data we had already acknowledged (lost ACKs, spurious timeouts)",
            "Duplicated packets in the network",
            "Zero window probes that use an old sequence number",
        ],
        counters=[],
        checks=[
            (
                "duplicate and skipped-ACK counters",
                "ip netns exec <ns> nstat -az TcpExtTCPACKSkippedSeq TcpExtDelayedACKLost",
            ),
            ("retransmissions seen by the sender", "ss -ti 'dst <addr>'"),
        ],
        since="6.6",
    ),
    dict(
        reason="TCP_INVALID_SEQUENCE",
        summary="The segment's sequence number is beyond the right edge of the receive window.",
        details=(
            "tcp_sequence(), called from tcp_validate_incoming(), rejects segments whose start sequence is "
            "after rcv_nxt plus the receive window. Non-RST segments get a (rate limited) duplicate ACK, "
            "while a SYN takes the challenge ACK path and is reported as TCP_INVALID_SYN. Since 6.17 these "
            "drops also increment TcpExtBeyondWindow."
        ),
        causes=[
            "Peer sending more than the advertised window (buggy stack, window scale mismatch)",
            "Blind injection attempts or spoofed segments",
            "Stale segments from a previous connection on the same 4-tuple",
        ],
        counters=["TcpExtBeyondWindow"],
        checks=[
            (
                "out-of-window counters",
                "ip netns exec <ns> nstat -az TcpExtBeyondWindow TcpExtTCPACKSkippedSeq",
            ),
            ("window information per socket", "ip netns exec <ns> ss -ti 'dst <addr>'"),
        ],
        since="5.19",
    ),
    dict(
        reason="TCP_INVALID_END_SEQUENCE",
        summary="The segment starts inside the receive window but ends beyond it.",
        details=(
            "Introduced when TCP began requiring that a whole segment fit in the advertised window: "
            "tcp_sequence() returns it when end_seq is past rcv_nxt plus the window and the receive queue "
            "is not empty (with an empty queue the segment is still accepted so buggy peers do not stall). "
            "TcpExtBeyondWindow increases. Large aggregated packets from a peer that overshoots a "
            "shrinking window are a typical trigger."
        ),
        causes=[
            "Peer overrunning the advertised window, e.g. after our window shrank",
            "Very large GRO/LRO aggregates that extend past the window",
            "Window scaling mismatch",
        ],
        counters=["TcpExtBeyondWindow"],
        checks=[
            ("out-of-window counters", "ip netns exec <ns> nstat -az TcpExtBeyondWindow"),
            ("receive window and memory per socket", "ip netns exec <ns> ss -tmi 'dst <addr>'"),
        ],
        since="6.17",
    ),
    dict(
        reason="TCP_INVALID_ACK_SEQUENCE",
        summary="In SYN-SENT, the SYN-ACK acknowledged a sequence number outside what we sent.",
        details=(
            "tcp_rcv_synsent_state_process() requires the ACK of a reply to our SYN to be after the "
            "initial sequence and not after snd_nxt. Otherwise the segment is dropped with this reason and "
            "answered with a RST (unless it is a RST itself). It marks a SYN-ACK that does not belong to "
            "our connection attempt."
        ),
        causes=[
            "Stale SYN-ACK from an earlier attempt on the same 4-tuple",
            "NAT or load balancer mixing up connections after port reuse",
            "Spoofed SYN-ACKs",
        ],
        counters=["TcpOutRsts"],
        checks=[
            (
                "capture the flow with absolute sequence numbers",
                "tcpdump -ni <dev> -S 'host <addr> and tcp port <port>'",
            ),
            ("connections stuck in SYN-SENT", "ip netns exec <ns> ss -tn state syn-sent 'dst <addr>'"),
        ],
        since="6.9",
    ),
    dict(
        reason="TCP_RESET",
        summary="A TCP RST was not accepted (sequence not exact) or arrived where it must be ignored.",
        details=(
            "Valid resets close the connection and are not reported as drops. This reason marks RSTs that "
            "tcp_validate_incoming() refuses because the sequence is in the window but not exact (RFC "
            "5961: a challenge ACK is sent instead, TcpExtTCPChallengeACK), RSTs without ACK in SYN-SENT, "
            "and RSTs sent to a listening socket."
        ),
        causes=[
            "Blind RST injection attempts (the RFC 5961 protection working)",
            "Late RSTs from a middlebox or load balancer with stale state",
            "RST racing with in-flight data so its sequence no longer matches",
        ],
        counters=["TcpExtTCPChallengeACK"],
        checks=[
            (
                "challenge ACK counters",
                "ip netns exec <ns> nstat -az TcpExtTCPChallengeACK TcpExtTCPACKSkippedChallenge",
            ),
            ("capture resets", "tcpdump -ni <dev> -S 'tcp[tcpflags] & tcp-rst != 0 and host <addr>'"),
        ],
        since="5.19",
    ),
    dict(
        reason="TCP_INVALID_SYN",
        summary="A SYN arrived on an already synchronized connection and was answered with a challenge ACK.",
        details=(
            "Following RFC 5961 4.2, tcp_validate_incoming() treats an unexpected SYN on an established "
            "(or later) connection, including SYNs that fail the PAWS or sequence checks, as suspicious: "
            "it sends a challenge ACK, increments TcpExtTCPSYNChallenge (and TcpInErrs on the established "
            "path) and drops the SYN. A client that really lost its state answers the challenge ACK with a "
            "RST and can then reconnect."
        ),
        causes=[
            "Client reconnecting with the same 4-tuple after losing its state (reboot, NAT port reuse)",
            "Retransmitted SYN arriving after the connection was established",
            "Blind SYN injection attempts",
        ],
        counters=["TcpExtTCPSYNChallenge", "TcpExtTCPChallengeACK"],
        checks=[
            (
                "challenge counters",
                "ip netns exec <ns> nstat -az TcpExtTCPSYNChallenge TcpExtTCPChallengeACK",
            ),
            (
                "capture SYNs on the connection",
                "tcpdump -ni <dev> 'tcp[tcpflags] & tcp-syn != 0 and host <addr> and port <port>'",
            ),
        ],
        since="5.19",
    ),
    dict(
        reason="TCP_CLOSE",
        summary="A segment reached a TCP socket that is already in CLOSE state.",
        details=(
            "tcp_rcv_state_process() drops any segment for a socket in TCP_CLOSE. This is mostly a short "
            "race: the socket was reset or aborted but was still found by the lookup. TCP-AO also returns "
            "it for sockets that are already closed."
        ),
        causes=[
            "Packets racing with connection teardown (RST or abort just processed)",
            "Connection aborted locally (ss -K, SO_LINGER with zero timeout) with packets already in flight",
        ],
        counters=[],
        checks=[
            (
                "reset and abort counters",
                "ip netns exec <ns> nstat -az TcpEstabResets TcpExtTCPAbortOnClose TcpExtTCPAbortOnData",
            ),
            ("socket states toward the peer", "ip netns exec <ns> ss -tan 'dst <addr>'"),
        ],
        since="5.19",
    ),
    dict(
        reason="TCP_FASTOPEN",
        summary="A segment for a TCP Fast Open connection was rejected by its pending request check.",
        details=(
            "For a passive TFO connection still tied to its request socket, tcp_rcv_state_process() runs "
            "tcp_check_req() on incoming segments; if that check rejects the segment (bad sequence, ACK or "
            "timestamp) it is dropped with this reason. Only server-side (passive) Fast Open connections "
            "can hit it, i.e. listeners that accept TFO data in the SYN."
        ),
        causes=[
            "TFO clients retransmitting or sending out-of-window data during the handshake",
            "Middleboxes mangling TFO SYN data or cookies",
            "Race with a reset of the half-open TFO connection",
        ],
        counters=[],
        checks=[
            ("Fast Open counters", "ip netns exec <ns> nstat -az 'TcpExtTCPFastOpen*'"),
            ("Fast Open setting", "ip netns exec <ns> sysctl net.ipv4.tcp_fastopen"),
        ],
        since="5.19",
    ),
    dict(
        reason="TCP_OLD_ACK",
        summary="In SYN_RECV, an ACK that acknowledged nothing new was rejected and answered with a RST.",
        details=(
            "tcp_rcv_state_process() calls tcp_ack(); when a full socket is still in SYN_RECV and the ACK "
            "is old (but in the window), the segment is refused with this reason and the caller sends one "
            "RST. Full sockets in SYN_RECV only exist for TCP Fast Open passive opens and simultaneous "
            "open; elsewhere old ACKs are simply ignored."
        ),
        causes=[
            "Duplicate or delayed ACK from the client during a Fast Open handshake",
            "Simultaneous open with crossed or reordered segments",
        ],
        counters=["TcpOutRsts"],
        checks=[
            (
                "capture the flow with absolute sequence numbers",
                "tcpdump -ni <dev> -S 'host <addr> and tcp port <port>'",
            ),
            ("Fast Open counters", "ip netns exec <ns> nstat -az 'TcpExtTCPFastOpen*'"),
        ],
        since="5.19",
    ),
    dict(
        reason="TCP_TOO_OLD_ACK",
        summary="The ACK number is older than anything that could be in flight (blind injection check).",
        details=(
            "In tcp_ack(), an ACK below snd_una minus the maximum window seen (RFC 5961 5.2) is treated as "
            "invalid: a challenge ACK is sent unless suppressed, and the segment, including any data it "
            "carries, is discarded. Normal traffic rarely triggers it; repeated hits point to injection "
            "attempts or to a device that corrupts sequence numbers."
        ),
        causes=[
            "Blind data injection attempts",
            "Very old duplicated segments released by a stuck middlebox",
            "Sequence or ACK rewriting bugs in NAT or load balancers",
        ],
        counters=["TcpExtTCPChallengeACK"],
        checks=[
            (
                "challenge ACK counters",
                "ip netns exec <ns> nstat -az TcpExtTCPChallengeACK TcpExtTCPACKSkippedChallenge",
            ),
            (
                "capture the flow with absolute sequence numbers",
                "tcpdump -ni <dev> -S 'host <addr> and tcp port <port>'",
            ),
        ],
        since="5.19",
    ),
    dict(
        reason="TCP_ACK_UNSENT_DATA",
        summary="The ACK acknowledges data that we have not sent yet.",
        details=(
            "tcp_ack() returns this when the ACK number is after snd_nxt (RFC 793 3.9) and the segment is "
            "discarded; on a socket in SYN_RECV the caller answers with a RST. It usually means the two "
            "ends disagree about sequence numbers, often because of a middlebox."
        ),
        causes=[
            "Middlebox or NAT rewriting sequence numbers in only one direction",
            "Connection state mismatch after a load balancer or firewall failover",
            "Spoofed segments",
        ],
        counters=[],
        checks=[
            (
                "capture the flow with absolute sequence numbers",
                "tcpdump -ni <dev> -S 'host <addr> and tcp port <port>'",
            ),
            ("sequence state of the socket", "ip netns exec <ns> ss -tni 'dst <addr>'"),
        ],
        since="5.19",
    ),
    dict(
        reason="TCP_OFO_QUEUE_PRUNE",
        summary="Out-of-order data was thrown away to reclaim the socket's receive memory.",
        details=(
            "When a socket runs over its receive memory, tcp_prune_ofo_queue() discards queued "
            "out-of-order segments, starting from the highest sequence, until enough memory is freed; "
            "TcpExtOfoPruned increases. The related receive queue collapsing shows up in TcpExtPruneCalled "
            "and TcpExtRcvPruned. The sender has to retransmit the discarded data."
        ),
        causes=[
            "Heavy loss or reordering filling the out-of-order queue with a small receive buffer",
            "Application not reading, so receive memory stays at the limit",
            "Global tcp_mem pressure",
        ],
        counters=["TcpExtOfoPruned", "TcpExtPruneCalled"],
        checks=[
            (
                "prune counters",
                "ip netns exec <ns> nstat -az TcpExtOfoPruned TcpExtPruneCalled TcpExtRcvPruned",
            ),
            ("socket memory", "ip netns exec <ns> ss -tmi 'sport = :<port>'"),
            ("TCP memory settings", "sysctl net.ipv4.tcp_rmem net.ipv4.tcp_mem"),
        ],
        since="5.19",
    ),
    dict(
        reason="TCP_OFO_DROP",
        summary="A queued out-of-order segment turned out to be already received once the gap was filled.",
        details=(
            "tcp_ofo_queue() moves out-of-order segments to the receive queue when rcv_nxt advances. "
            "Segments whose data now lies entirely before rcv_nxt (it was delivered by other segments) are "
            "dropped with this reason. It is a by-product of retransmissions overlapping reordered data "
            "and is normally harmless."
        ),
        causes=[
            "Retransmitted segments overlapping reordered originals",
            "Packet duplication in the network",
        ],
        counters=[],
        checks=[
            ("out-of-order counters", "ip netns exec <ns> nstat -az TcpExtTCPOFOQueue TcpExtTCPOFOMerge"),
        ],
        since="5.19",
    ),
    dict(
        reason="IP_OUTNOROUTES",
        summary="No route was found for an outgoing packet.",
        details=(
            "Set by __ip_queue_xmit() when the route lookup for a socket's packet fails (IpOutNoRoutes; "
            "the sender gets EHOSTUNREACH), by IPv6 ip6_pkt_drop() for locally sent packets hitting "
            "unreachable or prohibit routes (Ip6OutNoRoutes, plus an ICMPv6 unreachable), and by the "
            "SYN-cookie code when the reply to a cookie ACK cannot be routed. The routing table and policy "
            "rules of the sending namespace decide this, so check them from inside that namespace."
        ),
        causes=[
            "Missing default route, or the route vanished (interface down, DHCP lease lost)",
            "Policy routing rule sending the lookup to an empty table",
            "IPv6 unreachable or prohibit routes, or VRF misconfiguration",
        ],
        counters=["IpOutNoRoutes", "Ip6OutNoRoutes"],
        checks=[
            ("route for the destination", "ip netns exec <ns> ip route get <daddr>"),
            ("policy routing rules", "ip netns exec <ns> ip rule show"),
            ("no-route counters", "ip netns exec <ns> nstat -az IpOutNoRoutes Ip6OutNoRoutes"),
        ],
        since="5.18",
    ),
    dict(
        reason="BPF_CGROUP_EGRESS",
        summary="A cgroup BPF egress program denied the outgoing packet.",
        details=(
            "ip_finish_output(), ip_mc_finish_output() and ip6_finish_output() run the "
            "BPF_CGROUP_INET_EGRESS programs attached to the sending socket's cgroup; any verdict other "
            "than pass drops the packet here. Such programs are installed by systemd (IPAddressDeny=, "
            "IPEgressFilterPath=), container and Kubernetes networking agents, and security tools."
        ),
        causes=[
            "systemd unit with IPAddressDeny= / IPAddressAllow= restrictions",
            "Container or Kubernetes policy agent using cgroup skb programs",
            "Custom eBPF egress filter or accounting program returning drop",
        ],
        counters=[],
        checks=[
            ("cgroup BPF attachments", "bpftool cgroup tree /sys/fs/cgroup"),
            ("cgroup of the sending process", "cat /proc/<pid>/cgroup"),
            ("systemd IP restrictions of a unit", "systemctl show <unit> -p IPAddressDeny -p IPAddressAllow"),
        ],
        since="5.18",
    ),
    dict(
        reason="IPV6DISABLED",
        summary="IPv6 is disabled on the interface, so the packet could not be sent or received.",
        details=(
            "With net.ipv6.conf.<dev>.disable_ipv6=1, ip6_output() drops outgoing IPv6 packets "
            "(Ip6OutDiscards) and the IPv6 receive path drops incoming ones (Ip6InDiscards); extension "
            "header handling and bridge netfilter use the same reason. It usually means IPv6 was turned "
            "off on purpose while something still sends or receives IPv6."
        ),
        causes=[
            "disable_ipv6 set for the interface or for all interfaces",
            "Applications or resolvers still using IPv6 destinations (AAAA records) on a host without IPv6",
            "IPv6 traffic (router advertisements, multicast) arriving on an interface with IPv6 disabled",
        ],
        counters=["Ip6OutDiscards", "Ip6InDiscards"],
        checks=[
            (
                "disable_ipv6 settings",
                "ip netns exec <ns> sysctl net.ipv6.conf.all.disable_ipv6 net.ipv6.conf.<dev>.disable_ipv6",
            ),
            (
                "per-device IPv6 discards",
                "ip netns exec <ns> grep -E 'Ip6(In|Out)Discards' /proc/net/dev_snmp6/<dev>",
            ),
        ],
        since="5.18",
    ),
    dict(
        reason="NEIGH_CREATEFAIL",
        summary="The kernel could not create a neighbour (ARP/NDP) entry for the next hop.",
        details=(
            "ip_finish_output2() and ip6_finish_output2() need a neighbour entry for the next hop; if "
            "creating one fails the packet is dropped (IPv6 also counts Ip6OutNoRoutes). The usual reason "
            "is a full neighbour table: more entries than gc_thresh3 and nothing could be garbage "
            "collected, which logs a 'neighbor table overflow' message."
        ),
        causes=[
            "Neighbour table full (large L2 segments, scanning a big subnet)",
            "gc_thresh3 too low for the number of peers (Kubernetes nodes, big flat LANs)",
            "Memory allocation failure, or the device being removed",
        ],
        counters=["Ip6OutNoRoutes"],
        checks=[
            (
                "neighbour table statistics (table_fulls)",
                "ip netns exec <ns> ip -s ntable show name arp_cache",
            ),
            (
                "entry count and limit",
                (
                    "ip netns exec <ns> sh -c 'ip -4 neigh show | wc -l; sysctl "
                    "net.ipv4.neigh.default.gc_thresh3'"
                ),
            ),
            ("overflow messages", "dmesg | grep -i 'table overflow'"),
        ],
        since="5.18",
    ),
    dict(
        reason="NEIGH_FAILED",
        summary="Address resolution (ARP/NDP) for the next hop failed, so waiting packets were dropped.",
        details=(
            "When a neighbour entry goes to FAILED after its probes time out, the packets queued on it are "
            "handed to the protocol's error_report handler; for IPv4 arp_error_report() drops them with "
            "this reason and reports an unreachable to the sender. __neigh_event_send() also drops right "
            "away, marking the entry FAILED, when no probes are allowed at all (probe counts set to zero)."
        ),
        causes=[
            "Next hop or destination host down or absent on the L2 segment",
            "Wrong subnet or gateway configuration, so ARP asks for an address nobody owns",
            "ARP/ND replies blocked (firewall, arp_ignore/arp_filter on the target, switch ACLs)",
            "VLAN or bridge misconfiguration",
        ],
        counters=[],
        checks=[
            ("failed neighbour entries", "ip netns exec <ns> ip neigh show dev <dev> nud failed"),
            ("resolution failures (res_failed)", "ip netns exec <ns> ip -s ntable show dev <dev>"),
            (
                "watch ARP/ND on the wire",
                "tcpdump -eni <dev> 'arp or (icmp6 and (ip6[40] == 135 or ip6[40] == 136))'",
            ),
        ],
        since="5.18",
    ),
    dict(
        reason="NEIGH_QUEUEFULL",
        summary=(
            "Too many packets were waiting for ARP/NDP resolution, so the oldest queued ones were dropped."
        ),
        details=(
            "While a neighbour entry is INCOMPLETE, __neigh_event_send() queues packets on it up to "
            "unres_qlen_bytes. To make room for a new packet the oldest queued ones are dropped with this "
            "reason, and the table's unresolved_discards statistic increases."
        ),
        causes=[
            "Bursty sender toward a host whose MAC address is not resolved yet",
            "Slow or failing resolution, so the queue keeps filling",
            "unres_qlen_bytes too small for the burst size",
        ],
        counters=[],
        checks=[
            (
                "queue limit",
                (
                    "ip netns exec <ns> sysctl net.ipv4.neigh.<dev>.unres_qlen_bytes "
                    "net.ipv6.neigh.<dev>.unres_qlen_bytes"
                ),
            ),
            ("unresolved discards", "ip netns exec <ns> ip -s ntable show dev <dev>"),
            ("entries still resolving", "ip netns exec <ns> ip neigh show nud incomplete"),
        ],
        since="5.18",
    ),
    dict(
        reason="NEIGH_DEAD",
        summary="The neighbour entry used to send the packet had already been removed (dead).",
        details=(
            "__neigh_event_send() drops packets for a neighbour entry marked dead, which happens when the "
            "entry is being deleted (device down or removed, neighbours flushed, garbage collection) while "
            "a sender still uses it. It is usually transient during reconfiguration."
        ),
        causes=[
            "Interface going down or being deleted (link flap, container teardown)",
            "'ip neigh flush' or address and route changes during traffic",
            "Neighbour garbage collection under heavy churn",
        ],
        counters=[],
        checks=[
            ("link state changes", "ip -s link show dev <dev>; dmesg | grep -i 'link is'"),
            ("watch neighbour events", "ip netns exec <ns> ip monitor neigh"),
        ],
        since="5.18",
    ),
    dict(
        reason="NEIGH_HH_FILLFAIL",
        summary="Building the link-layer header for an outgoing packet failed.",
        details=(
            "neigh_resolve_output() and neigh_connected_output() call dev_hard_header() to write the L2 "
            "header from the neighbour's address; if the device's header_ops->create() returns an error "
            "the packet is dropped with this reason (older kernels dropped it without a reason). It is "
            "rare and points at the device type or driver rather than at routing."
        ),
        causes=[
            (
                "Device whose header_ops cannot build a header for this packet or neighbour (unusual L2 "
                "types, tunnels)"
            ),
            "Driver or virtual device bug",
            "Invalid hardware address stored in the neighbour entry",
        ],
        counters=[],
        checks=[
            ("device type and details", "ip netns exec <ns> ip -d link show dev <dev>"),
            ("neighbour entries on the device", "ip netns exec <ns> ip neigh show dev <dev>"),
        ],
        since="6.16",
    ),
    dict(
        reason="TC_EGRESS",
        summary="A tc egress filter/action or a tcx BPF program on the device dropped the packet.",
        details=(
            "sch_handle_egress(), called from __dev_queue_xmit(), runs clsact egress filters and tcx "
            "egress BPF programs; a TC_ACT_SHOT verdict drops the packet with this reason unless the "
            "classifier recorded a more specific tc drop reason. Typical sources are eBPF datapaths, "
            "police actions and explicit drop actions."
        ),
        causes=[
            "eBPF datapath (Cilium, Calico eBPF, custom tc programs) enforcing policy",
            "tc police action dropping traffic above the configured rate",
            "Explicit 'tc filter ... action drop' rule",
        ],
        counters=[],
        checks=[
            ("tc egress filters with statistics", "ip netns exec <ns> tc -s filter show dev <dev> egress"),
            ("BPF programs attached to the device", "ip netns exec <ns> bpftool net show dev <dev>"),
        ],
        since="5.18",
    ),
    dict(
        reason="SECURITY_HOOK",
        summary="A Linux Security Module (SELinux, Smack, AppArmor, ...) hook denied the packet.",
        details=(
            "Introduced for the SYN-cookie path: when security_inet_conn_request() refuses the connection "
            "in cookie_v4_check()/cookie_v6_check(), the ACK is dropped with this reason. Recent kernels "
            "also report denials from security_sock_rcv_skb() inside sk_filter_trim_cap() with it (older "
            "ones called those SOCKET_FILTER)."
        ),
        causes=[
            (
                "SELinux, Smack or AppArmor policy denying the peer or packet label (labeled networking, "
                "NetLabel)"
            ),
            "Policy refusing a connection that completes through SYN cookies",
            "Missing or wrong peer/secmark labels after a policy change",
        ],
        counters=[],
        checks=[
            (
                "LSM denials in the kernel log",
                "journalctl -k | grep -i -E 'avc:|apparmor=\"DENIED\"|smack' | tail",
            ),
            ("active security modules", "cat /sys/kernel/security/lsm"),
            ("SELinux mode", "getenforce"),
        ],
        since="6.9",
    ),
    dict(
        reason="QDISC_DROP",
        summary="The queueing discipline refused or discarded the packet on transmit.",
        details=(
            "__dev_xmit_skb() sets this as the default reason before enqueueing, so any packet a qdisc "
            "drops (queue limit reached, shaping or policing, AQM, or the qdisc being deactivated while "
            "the device goes down) is reported with it, unless the qdisc sets a more specific reason "
            "(newer kernels add QDISC_OVERLIMIT, QDISC_CONGESTED and fq/cake specific ones). The drops "
            "show up in the qdisc 'dropped' statistics."
        ),
        causes=[
            "Transmit queue full: txqueuelen or qdisc limit too small for bursts",
            "Shaping or policing qdisc (tbf, htb, fq maxrate) limiting the rate",
            "AQM (fq_codel, cake, pie, red) dropping under congestion",
            "Device going down or being reconfigured while packets are queued",
        ],
        counters=[],
        checks=[
            ("qdisc drop and overlimit statistics", "ip netns exec <ns> tc -s qdisc show dev <dev>"),
            ("device TX drops and queue length", "ip netns exec <ns> ip -s link show dev <dev>"),
        ],
        since="5.18",
    ),

    dict(
        reason="QDISC_OVERLIMIT",
        summary="A qdisc dropped the packet because its total queue length or memory limit was reached.",
        details=(
            "Raised by egress queueing disciplines when the qdisc instance as a whole is full: codel, pie, "
            "red, gred, sfb, fq_pie and dualpi2 refuse new packets at their packet limit, fq_codel and cake "
            "evict packets from the largest flow when their packet or memory limit is exceeded, and "
            "pfifo_fast drops when its per-band ring (sized by txqueuelen) is full. The packet is put on "
            "the qdisc's to-free list and released later, so the reported drop location is usually the "
            "generic transmit code in net/core/dev.c rather than the qdisc itself."
        ),
        causes=[
            "Offered egress load persistently above the link or shaping rate",
            "qdisc limit / memory_limit (or txqueuelen for pfifo_fast) too small for the traffic",
            "A few bulk flows filling fq_codel or cake so packets are evicted from the fattest flow",
        ],
        counters=[],
        checks=[
            ("qdisc drop and overlimit statistics", "ip netns exec <ns> tc -s qdisc show dev <dev>"),
            ("queue length and TX drops of the device", "ip netns exec <ns> ip -s link show <dev>"),
        ],
        since="6.14",
    ),
    dict(
        reason="QDISC_CONGESTED",
        summary="An active queue management (AQM) qdisc dropped the packet to signal congestion.",
        details=(
            "Used when an AQM algorithm decides to drop rather than ECN-mark: codel and fq_codel at "
            "dequeue when the queueing delay stays above target, red, gred, sfb, pie and fq_pie according "
            "to their drop probability, cake's COBALT for packets that cannot be marked, and the classic "
            "queue of dualpi2. It means a standing queue built up, not that a hard size limit was hit."
        ),
        causes=[
            "Sustained congestion: offered load above the link or shaper rate",
            "Flows that do not use ECN, so the AQM has to drop instead of marking",
            "AQM target/interval or RED thresholds tuned aggressively for the link",
        ],
        counters=[],
        checks=[
            ("AQM statistics (dropped, ecn_mark, drop_overlimit)", "tc -s qdisc show dev <dev>"),
            ("whether local TCP negotiates ECN", "sysctl net.ipv4.tcp_ecn"),
        ],
        since="6.14",
    ),
    dict(
        reason="CAKE_FLOOD",
        summary="CAKE's flood protection (BLUE) dropped a packet from a flow that keeps overflowing.",
        details=(
            "CAKE pairs its CoDel-like AQM with a BLUE component: each time a flow's queue overflows the "
            "flow's drop probability is raised, and it decays again when the queue empties. At dequeue "
            "(cobalt_should_drop) packets of that flow are dropped randomly with this probability, which "
            "mainly hits senders that ignore congestion signals."
        ),
        causes=[
            "Unresponsive high-rate flows (UDP floods, misbehaving senders) through a CAKE-shaped link",
            "CAKE bandwidth configured far below the offered load",
        ],
        counters=[],
        checks=[
            ("CAKE per-tin drop and mark statistics", "tc -s qdisc show dev <dev>"),
        ],
        since="6.14",
    ),
    dict(
        reason="FQ_BAND_LIMIT",
        summary="The fq qdisc dropped a packet because its priority band already holds 'limit' packets.",
        details=(
            "fq_enqueue() maps skb->priority to one of fq's bands and drops the packet when that band's "
            "packet count has reached the qdisc packet limit (default 10000). It means the fq qdisc is "
            "saturated by traffic of that priority."
        ),
        causes=[
            "Egress backlog of one priority band larger than the fq limit",
            "Link slower than the aggregate send rate of many sockets behind one fq instance",
        ],
        counters=[],
        checks=[
            ("fq statistics and limit", "tc -s qdisc show dev <dev>"),
        ],
        since="6.14",
    ),
    dict(
        reason="FQ_HORIZON_LIMIT",
        summary="The fq qdisc dropped a packet whose departure timestamp is too far in the future.",
        details=(
            "fq honours Earliest Departure Time timestamps in skb->tstamp (set via SO_TXTIME, BPF or TCP "
            "pacing). If a timestamp lies beyond now + horizon (default 10 s) and horizon_drop is enabled "
            "(the default), fq_enqueue() drops the packet; with horizon_cap it is clamped instead."
        ),
        causes=[
            "Application or BPF program setting SO_TXTIME/skb->tstamp far in the future or in a wrong clock",
            "Very low pacing rates producing departure times beyond the horizon",
            "horizon configured too short for the workload",
        ],
        counters=[],
        checks=[
            ("fq horizon settings and horizon_drops", "tc -s qdisc show dev <dev>"),
        ],
        since="6.14",
    ),
    dict(
        reason="FQ_FLOW_LIMIT",
        summary="The fq qdisc dropped a packet because its flow already has flow_limit packets queued.",
        details=(
            "fq keeps a separate queue per flow (usually per socket) and fq_enqueue() drops the packet when "
            "that flow's queue has reached flow_limit (default 100 packets), counting it as flows_plimit. "
            "It points at one flow sending faster than fq drains it (pacing rate, maxrate or link speed)."
        ),
        causes=[
            "A single unpaced bulk sender (often UDP) exceeding flow_limit",
            "maxrate or a slow link delaying dequeue of that flow",
            "flow_limit too low for high bandwidth-delay flows",
        ],
        counters=[],
        checks=[
            ("fq statistics (flows_plimit) and flow_limit", "tc -s qdisc show dev <dev>"),
        ],
        since="6.14",
    ),
    dict(
        reason="CPU_BACKLOG",
        summary="The packet could not be queued to a CPU's input backlog because it was full.",
        details=(
            "enqueue_to_backlog() in net/core/dev.c queues packets on a per-CPU softnet input queue; this "
            "path is used by RPS/RFS steering and by devices that hand packets over with netif_rx(), such "
            "as loopback and veth. The packet is dropped when that queue already holds "
            "net.core.netdev_max_backlog packets or when the RPS flow limit trims a dominating flow. The "
            "drop also shows in the second column of /proc/net/softnet_stat and in the device's rx_dropped."
        ),
        causes=[
            "Bursts larger than net.core.netdev_max_backlog (default 1000)",
            "Softirq processing starved on the target CPU (CPU saturated or RPS to busy CPUs)",
            "Very high packet rates over loopback or veth pairs",
            "RPS flow limit (net.core.flow_limit_cpu_bitmap) dropping an elephant flow",
        ],
        counters=[],
        checks=[
            ("per-CPU backlog drops (2nd column)", "cat /proc/net/softnet_stat"),
            ("backlog limit", "sysctl net.core.netdev_max_backlog"),
            ("RPS configuration of the RX queues", "grep . /sys/class/net/<dev>/queues/rx-*/rps_cpus"),
        ],
        since=None,
    ),
    dict(
        reason="XDP",
        summary="A generic (skb-mode) XDP program redirected the packet and the redirect failed.",
        details=(
            "do_xdp_generic() runs XDP programs attached in generic/SKB mode (also used by tun); when the "
            "program returns XDP_REDIRECT and xdp_do_generic_redirect() fails, the skb is freed with this "
            "reason. XDP_DROP and XDP_ABORTED verdicts in generic mode are freed without a specific reason, "
            "and native (driver-mode) XDP drops never create an skb, so they do not appear here."
        ),
        causes=[
            "Redirect target device down or packet larger than its MTU",
            "Missing devmap/cpumap/xskmap entry for the redirect index",
            "AF_XDP socket not bound to the queue or its RX ring full",
        ],
        counters=[],
        checks=[
            ("XDP attach mode (xdpgeneric) on the device", "ip -d link show <dev>"),
            ("attached BPF programs", "bpftool net show dev <dev>"),
            ("redirect errors", "perf stat -e xdp:xdp_redirect_err -a -- sleep 10"),
        ],
        since=None,
    ),
    dict(
        reason="TC_INGRESS",
        summary="A tc ingress filter or tcx/BPF program on the receiving device dropped the packet.",
        details=(
            "sch_handle_ingress() in net/core/dev.c runs clsact/ingress filters and tcx BPF programs before "
            "the protocol layers. A TC_ACT_SHOT verdict (gact drop, a policer exceeding its rate, a BPF "
            "program returning TC_ACT_SHOT) frees the packet with this reason unless the classifier "
            "recorded a more specific one; egress drops are reported as TC_EGRESS."
        ),
        causes=[
            "Explicit drop action or policer in an ingress tc filter",
            "BPF datapath (Cilium, Calico eBPF, custom tcx program) enforcing policy",
            "Ingress policer rate or burst set too low",
        ],
        counters=[],
        checks=[
            (
                "ingress filters with hit/drop counters",
                "ip netns exec <ns> tc -s filter show dev <dev> ingress",
            ),
            ("tc/tcx BPF programs on the device", "ip netns exec <ns> bpftool net show dev <dev>"),
        ],
        since=None,
    ),
    dict(
        reason="UNHANDLED_PROTO",
        summary="No protocol handler accepted the packet (unknown EtherType, IP version or option).",
        details=(
            "Mostly seen in __netif_receive_skb_core() when no packet_type handler is registered for the "
            "frame's EtherType, e.g. LLDP or vendor frames with nothing listening; the device counts them "
            "as rx_dropped or rx_nohandler. It is also used when an IPv6 header's version field is not 6, "
            "for unknown IPv6 hop-by-hop/destination options whose type says 'discard', and for ICMP types "
            "above the known range."
        ),
        causes=[
            (
                "L2 protocols (LLDP, CDP, STP, vendor EtherTypes) arriving with no daemon or module to "
                "handle them"
            ),
            "Frames for a protocol whose kernel module is not loaded",
            "Traffic on inactive bond slaves, counted as rx_nohandler",
            "Unknown IPv6 options or ICMP types from a buggy or hostile sender",
        ],
        counters=[],
        checks=[
            ("rx_dropped / nohandler counters", "ip -s -s link show <dev>"),
            ("non-IP EtherTypes arriving", "tcpdump -eni <dev> -c 50 'not ip and not ip6 and not arp'"),
        ],
        since=None,
    ),
    dict(
        reason="SKB_CSUM",
        summary="Computing or verifying the packet checksum in software failed.",
        details=(
            "In macvtap/ipvtap (drivers/net/tap.c) a CHECKSUM_PARTIAL packet is queued to a reader without "
            "checksum offload and skb_checksum_help() fails. For IPv6 raw sockets (rawv6_rcv_skb/rawv6_rcv) "
            "it means the full checksum verification required by IPV6_CHECKSUM, a socket filter or "
            "IP_HDRINCL failed, i.e. the packet is corrupt."
        ),
        causes=[
            "Corrupted IPv6 packets delivered to a raw socket (e.g. OSPFv3 or other routing daemons)",
            "Offload mismatch between the lower NIC and a tap reader without checksum offload",
            "NIC or driver delivering packets with bad checksums",
        ],
        counters=[],
        checks=[
            ("checksum offload settings", "ethtool -k <dev> | grep -i checksum"),
            ("IPv6 raw sockets and their owners", "ss -w -a -p -6"),
        ],
        since=None,
    ),
    dict(
        reason="SKB_GSO_SEG",
        summary="Software GSO segmentation of a large packet failed.",
        details=(
            "Seen in tap.c (macvtap/ipvtap) when a GSO packet has to be split before being queued to a "
            "reader that does not accept that offload and __skb_gso_segment() returns an error. It usually "
            "means the packet's GSO metadata is inconsistent with its contents or the enabled features."
        ),
        causes=[
            "Malformed GSO packet (bad gso_type or gso_size), often from a VM or encapsulation bug",
            "Offload feature mismatch between the lower device and the tap reader",
            "Memory allocation failure while segmenting",
        ],
        counters=[],
        checks=[
            (
                "offload features of the tap and lower device",
                "ethtool -k <dev> | grep -E 'segmentation|offload'",
            ),
            ("macvtap/ipvtap mode and lower device", "ip -d link show <dev>"),
        ],
        since=None,
    ),
    dict(
        reason="SKB_UCOPY_FAULT",
        summary="Copying packet data from user space (or orphaning zerocopy pages) failed.",
        details=(
            "Used by tun/tap and macvtap/ipvtap: on a write from user space when zerocopy_sg_from_iter() or "
            "skb_copy_datagram_from_iter() fails (typically EFAULT), and in tun_net_xmit() when "
            "skb_orphan_frags_rx() cannot copy zerocopy fragments before queueing to the reader. It points "
            "at a bad user buffer or memory pressure, not at the network."
        ),
        causes=[
            "VMM or VPN daemon passing an invalid or unmapped buffer",
            "Memory pressure while copying zerocopy fragments",
            "Bugs in the VMM's virtio-net/vhost handling",
        ],
        counters=[],
        checks=[
            ("tun/tap devices and attached processes", "ip tuntap show"),
            ("available memory", "grep -E 'MemAvailable|MemFree' /proc/meminfo"),
            ("drop counters of the device", "ip -s link show <dev>"),
        ],
        since=None,
    ),
    dict(
        reason="DEV_HDR",
        summary="The device-specific header (virtio-net vnet header) supplied with the packet is invalid.",
        details=(
            "In tap.c (macvtap/ipvtap) tap_get_user() converts the virtio_net_hdr written by user space into "
            "GSO and checksum metadata; if tun_vnet_hdr_to_skb() rejects it (bad GSO type, size or "
            "checksum offsets) the packet is dropped. It points at the VMM or guest driver producing "
            "inconsistent offload metadata."
        ),
        causes=[
            "Guest virtio-net driver or VMM emitting an invalid vnet header",
            "Offload feature negotiation mismatch between host and guest",
            "Wrong vnet header size configured on the queue",
        ],
        counters=[],
        checks=[
            ("macvtap/ipvtap device details", "ip -d link show <dev>"),
            ("offload features", "ethtool -k <dev>"),
        ],
        since=None,
    ),
    dict(
        reason="DEV_READY",
        summary="The device, or the queue behind it, was not up or not ready for the packet.",
        details=(
            "A generic reason for a device precondition that failed: tun_net_xmit() finding no user-space "
            "reader attached to the TX queue, tun_get_user() writing to a device that is not IFF_UP, "
            "enqueue_to_backlog() seeing the device no longer running, or vxlan receiving on a down vxlan "
            "device. openvswitch and br_netfilter also use it when the bridge port or output device has "
            "gone away."
        ),
        causes=[
            "tun/tap interface up but the owning process (VPN, QEMU) not attached or exited",
            "Interface administratively down or being torn down while traffic is in flight",
            "VXLAN device down while its UDP socket still receives traffic, or a bridge port removed",
        ],
        counters=[],
        checks=[
            ("link state and flags", "ip netns exec <ns> ip -d link show <dev>"),
            ("tun/tap devices and attached processes", "ip netns exec <ns> ip tuntap show"),
            ("per-device drop counters", "ip netns exec <ns> ip -s link show <dev>"),
        ],
        since=None,
    ),
    dict(
        reason="FULL_RING",
        summary="The packet was dropped because a ring buffer towards its reader was full.",
        details=(
            "Mainly tun/tap (tun_net_xmit) and macvtap/ipvtap (tap_handle_frame): each queue has a ptr_ring "
            "sized from the device's txqueuelen, drained by a user-space reader such as QEMU/vhost or a VPN "
            "daemon. When the reader cannot keep up, new packets are dropped and counted as TX drops on the "
            "device; the xfrm IP-TFS code uses the same reason when its queue is full."
        ),
        causes=[
            "Reader process (QEMU/vhost, OpenVPN, wireguard-go, tailscaled) too slow or CPU-starved",
            "txqueuelen too small for bursts (tun defaults to 500)",
            "Reader stopped reading without closing the device",
        ],
        counters=[],
        checks=[
            ("TX drops on the tun/tap device", "ip -s link show <dev>"),
            ("ring size (qlen)", "ip link show <dev>"),
            ("CPU usage of the reader process", "top -H -p <pid>"),
        ],
        since=None,
    ),
    dict(
        reason="NOMEM",
        summary="A memory allocation needed to process the packet failed.",
        details=(
            "Generic out-of-memory reason used across the stack: IPv4/IPv6 input and routing (dst "
            "allocation in ip_route_input_slow), ICMP, neighbour discovery, bridge and br_netfilter, VXLAN "
            "decapsulation, tc classification, openvswitch and tun. It reflects a failed atomic allocation "
            "(skb clone or copy, header expansion, dst or metadata) in softirq context."
        ),
        causes=[
            "System low on free memory or badly fragmented, so atomic allocations fail first",
            "vm.min_free_kbytes too low for the packet rate",
            "Memory cgroup pressure or a kernel memory leak",
        ],
        counters=[],
        checks=[
            ("free memory and slab usage", "grep -E 'MemAvailable|MemFree|Slab' /proc/meminfo"),
            ("atomic allocation failures", "dmesg | grep -i 'page allocation failure'"),
            ("reserve for atomic allocations", "sysctl vm.min_free_kbytes"),
        ],
        since=None,
    ),
    dict(
        reason="HDR_TRUNC",
        summary="The packet was too short to pull the expected protocol header.",
        details=(
            "Defined for failures to extract a header from the skb with pskb_may_pull(). In current "
            "kernels it is used by tun_get_user(): a frame written in fragments to a TAP (IFF_TAP) device "
            "did not contain a complete Ethernet header."
        ),
        causes=[
            "User space writing truncated frames to a TAP device",
            "Application using TAP mode but writing frames without an Ethernet header (TUN/TAP mixup)",
        ],
        counters=[],
        checks=[
            ("tun or tap mode of the device", "ip -d link show <dev>"),
            ("device error counters", "ip -s link show <dev>"),
        ],
        since=None,
    ),
    dict(
        reason="TAP_FILTER",
        summary="An eBPF filter attached to a tun/tap device (TUNSETFILTEREBPF) dropped the packet.",
        details=(
            "In tun_net_xmit(), before a packet is queued to the user-space reader, tun runs the program "
            "attached with the TUNSETFILTEREBPF ioctl; a returned length of 0 drops it. Only packets going "
            "from the kernel to the tun/tap reader are affected."
        ),
        causes=[
            "Filter installed by the VMM or VPN intentionally rejecting the traffic",
            "Stale or buggy filter program after a configuration change",
        ],
        counters=[],
        checks=[
            ("loaded socket-filter BPF programs", "bpftool prog show"),
            ("tun/tap devices and attached processes", "ip tuntap show"),
        ],
        since=None,
    ),
    dict(
        reason="TAP_TXFILTER",
        summary="The tun/tap device's MAC address filter (TUNSETTXFILTER) rejected the packet.",
        details=(
            "TAP devices can carry a destination MAC filter set via TUNSETTXFILTER, typically by QEMU to "
            "mirror the guest NIC's receive filter. tun_net_xmit() drops frames whose destination MAC does "
            "not pass that filter before they reach the reader."
        ),
        causes=[
            "Frame for a unicast MAC that is not the guest's while the guest is not promiscuous",
            "Multicast group not registered by the guest, so its MAC is not in the filter",
            "Guest changed its MAC address but the filter was not updated",
        ],
        counters=[],
        checks=[
            ("MAC address and flags of the tap device", "ip link show <dev>"),
            ("destination MACs of frames sent to the tap", "tcpdump -eni <dev> -c 20"),
        ],
        since=None,
    ),
    dict(
        reason="ICMP_CSUM",
        summary="An ICMP or ICMPv6 message was dropped because its checksum is wrong.",
        details=(
            "icmp_rcv() (IPv4) and icmpv6_rcv() (IPv6) verify the checksum and drop the message on a "
            "mismatch, incrementing the ICMP checksum-error and input-error counters. The corruption "
            "happened on the wire, in the sender, or in NIC/driver checksum handling."
        ),
        causes=[
            "Corruption on the path (bad cable or optic, faulty switch)",
            "Middlebox rewriting ICMP payloads (NAT of embedded headers) incorrectly",
            "NIC or driver checksum offload bug",
        ],
        counters=["IcmpInCsumErrors", "IcmpInErrors", "Icmp6InCsumErrors", "Icmp6InErrors"],
        checks=[
            ("ICMP checksum counters", "nstat -az IcmpInCsumErrors Icmp6InCsumErrors"),
            ("checksum offloads", "ethtool -k <dev> | grep -i checksum"),
            ("interface error counters", "ip -s link show <dev>"),
        ],
        since=None,
    ),
    dict(
        reason="INVALID_PROTO",
        summary="The packet breaks protocol rules, e.g. an ICMP echo or timestamp sent to broadcast.",
        details=(
            "icmp_rcv() uses it for ICMP to a broadcast or multicast address that must be ignored: echo and "
            "timestamp requests when net.ipv4.icmp_echo_ignore_broadcasts is 1 (the default), and types "
            "that are never valid to broadcast. IPv4 input routing also returns it when a non-IPv4 frame "
            "reaches broadcast/multicast source validation, and IPv6 for Home Address options carrying a "
            "non-unicast address."
        ),
        causes=[
            "Hosts or scanners pinging a subnet broadcast address",
            "Devices sending other ICMP types to broadcast or multicast addresses",
            "Malformed Mobile IPv6 Home Address options",
        ],
        counters=["IcmpInErrors"],
        checks=[
            ("broadcast echo policy", "sysctl net.ipv4.icmp_echo_ignore_broadcasts"),
            (
                "who sends broadcast/multicast ICMP",
                "tcpdump -ni <dev> 'icmp and (ip broadcast or ip multicast)'",
            ),
        ],
        since=None,
    ),
    dict(
        reason="IP_INADDRERRORS",
        summary="The packet is not for this host and the host will not forward it (host unreachable).",
        details=(
            "IPv4: ip_error() uses it when a packet not addressed to a local address arrives on an interface "
            "with forwarding disabled. IPv6: ip6_forward() uses it when forwarding is off or the source is "
            "unspecified, multicast, loopback or link-local; ip6_pkt_drop() when the destination is ::; "
            "and IPv6 input for multicast to a group that was not joined."
        ),
        causes=[
            "Neighbours still sending to an IP this host no longer owns (stale ARP/NDP, moved VIP)",
            "Host used as a gateway while net.ipv4.ip_forward or net.ipv6.conf.all.forwarding is 0",
            "Packets with invalid IPv6 source addresses reaching a router",
        ],
        counters=["IpInAddrErrors", "Ip6InAddrErrors"],
        checks=[
            (
                "forwarding sysctls",
                "ip netns exec <ns> sysctl net.ipv4.ip_forward net.ipv6.conf.all.forwarding",
            ),
            (
                "routing decision for the packet",
                "ip netns exec <ns> ip route get <daddr> from <saddr> iif <dev>",
            ),
            ("addresses owned by the host", "ip netns exec <ns> ip addr show"),
        ],
        since=None,
    ),
    dict(
        reason="IP_INNOROUTES",
        summary="No route matched the destination of a packet to be forwarded (network unreachable).",
        details=(
            "IPv4: the input route lookup in ip_route_input_slow() found no route on a forwarding-enabled "
            "interface, so ip_error() drops the packet and sends ICMP network unreachable. IPv6: "
            "ip6_pkt_drop() handles input packets hitting the no-route or a reject route and sends ICMPv6 "
            "destination unreachable."
        ),
        causes=[
            "Missing specific or default route on a router or forwarding host",
            "Routing daemon withdrew the prefix (BGP/OSPF flap)",
            "Policy routing rules pointing to an empty or wrong table",
            "IPv6 unreachable/prohibit routes installed on purpose",
        ],
        counters=["IpExtInNoRoutes", "Ip6InNoRoutes"],
        checks=[
            ("route lookup for the packet", "ip netns exec <ns> ip route get <daddr> from <saddr> iif <dev>"),
            ("policy routing rules", "ip netns exec <ns> ip rule show"),
            ("no-route counters", "ip netns exec <ns> nstat -az IpExtInNoRoutes Ip6InNoRoutes"),
        ],
        since=None,
    ),
    dict(
        reason="IP_LOCAL_SOURCE",
        summary="An incoming IPv4 packet has one of this host's own addresses as its source.",
        details=(
            "fib_validate_source() rejects packets whose source address is local unless "
            "net.ipv4.conf.<dev>.accept_local is set. The packet is treated as a martian source "
            "(in_martian_src in /proc/net/stat/rt_cache, logged when log_martians is on) and usually "
            "indicates a loop or a duplicate address."
        ),
        causes=[
            "Layer-2 loop or reflection sending the host's own packets back",
            "Another host or namespace using the same IP address",
            "Setups that legitimately need accept_local (e.g. traffic between local addresses via a wire)",
            "Spoofed packets",
        ],
        counters=[],
        checks=[
            ("who owns the source address", "ip netns exec <ns> ip addr show | grep <saddr>"),
            (
                "accept_local and rp_filter",
                "sysctl net.ipv4.conf.<dev>.accept_local net.ipv4.conf.<dev>.rp_filter",
            ),
            ("martian log entries (need log_martians=1)", "dmesg | grep -i martian"),
        ],
        since="6.13",
    ),
    dict(
        reason="IP_INVALID_SOURCE",
        summary="An incoming IPv4 packet has an invalid source address (multicast, broadcast or 0.0.0.0).",
        details=(
            "Raised during input routing (ip_route_input_slow, ip_route_use_hint, ip_mc_validate_source) "
            "when the source is multicast or limited broadcast, or 0.0.0.0 for anything but IGMP, local "
            "multicast and limited broadcast destinations. fib_validate_source() also uses it when the "
            "source resolves to a route that is neither unicast nor local, e.g. a broadcast address."
        ),
        causes=[
            "Misconfigured or spoofing hosts using broadcast or multicast source addresses",
            "Clients sending from 0.0.0.0 to unicast destinations",
            "Peer with a wrong netmask using this subnet's broadcast address as its own",
        ],
        counters=[],
        checks=[
            (
                "reproduce the routing decision",
                "ip netns exec <ns> ip route get <daddr> from <saddr> iif <dev>",
            ),
            ("martian source counters", "cat /proc/net/stat/rt_cache"),
            ("capture the offending packets", "tcpdump -ni <dev> src host <saddr>"),
        ],
        since="6.13",
    ),
    dict(
        reason="IP_LOCALNET",
        summary="An IPv4 packet with a 127.0.0.0/8 source or destination arrived on a non-loopback device.",
        details=(
            "ip_route_input_slow() and related helpers treat loopback addresses seen on a real interface as "
            "martians unless net.ipv4.conf.<dev>.route_localnet is enabled. A 127.x destination is counted "
            "as a martian destination, a 127.x source as a martian source."
        ),
        causes=[
            (
                "DNAT or port forwarding to 127.0.0.1 (container/kube-proxy style rules) without "
                "route_localnet=1"
            ),
            "Spoofed or leaked packets carrying loopback addresses",
        ],
        counters=[],
        checks=[
            (
                "route_localnet setting",
                "sysctl net.ipv4.conf.<dev>.route_localnet net.ipv4.conf.all.route_localnet",
            ),
            ("NAT rules targeting loopback", "iptables-save -t nat | grep 127.0.0"),
            ("routing decision", "ip netns exec <ns> ip route get <daddr> from <saddr> iif <dev>"),
        ],
        since="6.13",
    ),
    dict(
        reason="IP_INVALID_DEST",
        summary="An incoming IPv4 packet has an unusable destination (0.0.0.0 or a non-unicast route).",
        details=(
            "ip_route_input_slow() drops packets addressed to 0.0.0.0/8 and, on forwarding interfaces, "
            "packets whose matching route is not of unicast type (e.g. anycast or multicast route types). "
            "Both are counted as martian destinations (in_martian_dst) and logged when log_martians is on."
        ),
        causes=[
            "Broken clients or scanners sending to 0.0.0.0",
            "Route of a special type (anycast/multicast) covering a destination that should be forwarded",
        ],
        counters=[],
        checks=[
            ("routing decision", "ip netns exec <ns> ip route get <daddr> from <saddr> iif <dev>"),
            ("martian destination counters", "cat /proc/net/stat/rt_cache"),
        ],
        since="6.13",
    ),
    dict(
        reason="PKT_TOO_BIG",
        summary="The packet is larger than the MTU of its path and could not be fragmented.",
        details=(
            "IPv4 ip_forward() drops forwarded packets that exceed the egress MTU when they may not be "
            "fragmented and sends ICMP 'fragmentation needed'; IPv6 ip6_forward() does the same and sends "
            "ICMPv6 Packet Too Big, and ip6_xmit() drops locally generated packets larger than the MTU. "
            "openvswitch and xfrm IP-TFS also use it for oversize packets."
        ),
        causes=[
            "Reduced MTU on tunnels or overlays (VXLAN, WireGuard, IPsec) not reflected in the sender's MTU",
            "Path MTU discovery broken because ICMP is filtered somewhere",
            "Jumbo frames forwarded into a 1500-byte segment",
        ],
        counters=["IpFragFails", "Ip6FragFails", "Ip6InTooBigErrors"],
        checks=[
            ("egress device MTU", "ip netns exec <ns> ip link show <dev>"),
            ("route and cached path MTU", "ip netns exec <ns> ip route get <daddr>"),
            ("path MTU towards the destination", "tracepath -n <daddr>"),
        ],
        since=None,
    ),
    dict(
        reason="DUP_FRAG",
        summary="An IP fragment was dropped as a duplicate of data already queued or reassembled.",
        details=(
            "ip_frag_queue() (IPv4), ip6_frag_queue() (IPv6) and the IPv6 conntrack defragmenter discard a "
            "fragment when its datagram has already been reassembled or when it exactly duplicates a "
            "fragment already in the queue. Fragments that overlap with different data are handled "
            "separately and kill the whole queue."
        ),
        causes=[
            "Duplicated fragments on the path (retransmitting links, mirrored or doubled traffic)",
            "A fragment arriving after its datagram was already reassembled",
            "Misconfigured bonding or port mirroring duplicating frames",
        ],
        counters=[],
        checks=[
            ("reassembly counters", "nstat -az IpReasmReqds IpReasmFails IpExtReasmOverlaps"),
            ("capture IPv4 fragments", "tcpdump -ni <dev> 'ip[6:2] & 0x3fff != 0'"),
        ],
        since="6.2",
    ),
    dict(
        reason="FRAG_REASM_TIMEOUT",
        summary="Fragments were discarded because their datagram was not reassembled in time.",
        details=(
            "When a fragment queue's timer expires (net.ipv4.ipfrag_time / net.ipv6.ip6frag_time, 30 s by "
            "default), ip_expire() and ip6_expire_frag_queue() free the queued fragments with this reason "
            "and, if the first fragment was received, send ICMP 'fragment reassembly time exceeded'. It is "
            "also the default reason when an incomplete fragment queue is flushed or destroyed."
        ),
        causes=[
            "One or more fragments lost on the path",
            "Fragments of one datagram hashed to different paths or hosts (ECMP/LAG/load balancers)",
            "Firewalls or middleboxes dropping non-first fragments",
        ],
        counters=["IpReasmTimeout", "IpReasmFails", "Ip6ReasmTimeout", "Ip6ReasmFails"],
        checks=[
            (
                "reassembly timeout and failure counters",
                "nstat -az IpReasmTimeout IpReasmFails Ip6ReasmTimeout",
            ),
            ("timeout and memory limits", "sysctl net.ipv4.ipfrag_time net.ipv4.ipfrag_high_thresh"),
            ("fragment memory in use", "cat /proc/net/sockstat"),
        ],
        since="6.2",
    ),
    dict(
        reason="FRAG_TOO_FAR",
        summary="An IPv4 fragment queue was flushed because too many other fragments from that peer arrived.",
        details=(
            "With net.ipv4.ipfrag_max_dist non-zero (default 64), ip_frag_queue() counts fragments per "
            "source host; if more than that many arrived from the same source since this datagram's "
            "previous fragment, the queue is considered stale and its fragments are flushed "
            "(ip_frag_reinit). This "
            "protects against mixing fragments of different datagrams that reuse an IP ID."
        ),
        causes=[
            "High-rate fragmented traffic from one source with heavy reordering or loss",
            "Some fragments delayed much longer than their siblings (different paths)",
            "ipfrag_max_dist too low for fragment-heavy workloads (UDP NFS, tunnels)",
        ],
        counters=["IpReasmFails"],
        checks=[
            ("reorder distance setting", "sysctl net.ipv4.ipfrag_max_dist"),
            ("reassembly counters", "nstat -az IpReasmFails IpReasmReqds"),
        ],
        since="6.2",
    ),
    dict(
        reason="TCP_MINTTL",
        summary="A TCP segment's TTL/hop limit was below the socket's IP_MINTTL/IPV6_MINHOPCOUNT.",
        details=(
            "tcp_v4_rcv() and tcp_v6_rcv() enforce the minimum TTL or hop limit set on the socket, the "
            "Generalized TTL Security Mechanism (RFC 5082) used e.g. by BGP 'ttl-security'. Lower-TTL "
            "segments are dropped and counted in TCPMinTTLDrop; only sockets that set the option are "
            "affected."
        ),
        causes=[
            "Peer more hops away than the configured ttl-security/GTSM allows",
            "Peer not sending with TTL 255 as GTSM requires",
            "Spoofed packets from off-link sources (the intended effect)",
        ],
        counters=["TcpExtTCPMinTTLDrop"],
        checks=[
            ("drop counter", "nstat -az TcpExtTCPMinTTLDrop"),
            ("TTL of incoming segments", "tcpdump -vni <dev> 'tcp port <port>'"),
        ],
        since="6.3",
    ),
    dict(
        reason="IPV6_BAD_EXTHDR",
        summary="An ICMPv6 error quoted an IPv6 packet whose extension headers could not be parsed.",
        details=(
            "icmpv6_notify() walks the extension headers of the offending packet embedded in an ICMPv6 "
            "error (Packet Too Big, Destination Unreachable, ...) to find the upper-layer protocol. If "
            "ipv6_skip_exthdr() fails the ICMPv6 message is dropped, so the error never reaches the socket "
            "it concerned (e.g. a PMTU update is lost)."
        ),
        causes=[
            "Routers quoting too little of the original packet in ICMPv6 errors",
            "Malformed extension header chains in the original packet",
            "Crafted ICMPv6 error messages",
        ],
        counters=[],
        checks=[
            ("capture ICMPv6 error messages", "tcpdump -vni <dev> 'icmp6 and ip6[40] < 128'"),
            ("ICMPv6 error counters", "nstat -az Icmp6InErrors Icmp6InPktTooBigs Icmp6InDestUnreachs"),
        ],
        since="6.3",
    ),
    dict(
        reason="IPV6_TOO_MANY_EXTHDRS",
        summary="An IPv6 packet carried more extension headers than the kernel walks (IP6_MAX_EXT_HDRS_CNT).",
        details=(
            "ip6_protocol_deliver_rcu() counts the extension headers it hands from one handler to the next "
            "(Hop-by-Hop counts as one) and, past IP6_MAX_EXT_HDRS_CNT (12; RFC 8200's ordering rules "
            "allow about 8), drops the packet with this reason instead of resubmitting it. The limit was "
            "added against crafted chains of minimal 8-byte headers that made the walk cost thousands of "
            "iterations per packet; ipv6_skip_exthdr() and ipv6_find_hdr() stop at the same count (their "
            "callers, e.g. netfilter or ICMPv6 errors, then drop or ignore the packet for their own "
            "reasons). Mainline commit 3744b0964d52 ('ipv6: Implement limits on extension header "
            "parsing', 2026), backported to stable kernels."
        ),
        causes=[
            "Crafted or fuzzing IPv6 traffic with long chains of Destination Options or other headers",
            "A quirky setup stacking many headers (segment routing, several tunnels' options)",
            "A buggy sender repeating an extension header",
        ],
        counters=["Ip6InDiscards"],
        checks=[
            ("the packets' header chains", "tcpdump -vvni <dev> 'ip6 and not (tcp or udp or icmp6)'"),
            ("where they are dropped", "droptrace --reason IPV6_TOO_MANY_EXTHDRS --stack"),
        ],
        since=None,
    ),
    dict(
        reason="IPV6_NDISC_FRAG",
        summary="A fragmented IPv6 Neighbor Discovery message was dropped (suppress_frag_ndisc).",
        details=(
            "ndisc_rcv() drops ND messages (RS, RA, NS, NA, Redirect) that arrived fragmented while "
            "net.ipv6.conf.<dev>.suppress_frag_ndisc is 1, the default (RFC 6980), and logs 'Received "
            "fragmented ndisc packet'. It is also returned when the interface has no IPv6 state."
        ),
        causes=[
            "Router sending very large RAs (many prefixes or options) that get fragmented",
            "Attack traffic using fragmented ND to evade RA-Guard",
            "Very small link MTU",
        ],
        counters=[],
        checks=[
            ("suppress_frag_ndisc setting", "sysctl net.ipv6.conf.<dev>.suppress_frag_ndisc"),
            ("kernel warning", "dmesg | grep -i 'fragmented ndisc'"),
        ],
        since="6.3",
    ),
    dict(
        reason="IPV6_NDISC_HOP_LIMIT",
        summary="An IPv6 Neighbor Discovery message arrived with a hop limit other than 255.",
        details=(
            "ndisc_rcv() requires ND messages to have hop limit 255, which proves they originated on the "
            "local link (RFC 4861). Anything else, such as an ND packet that crossed a router, is dropped."
        ),
        causes=[
            "ND packets forwarded or tunnelled across a router",
            "Spoofed ND from off-link sources",
            "Middlebox rewriting the hop limit",
        ],
        counters=[],
        checks=[
            ("hop limit of ND packets", "tcpdump -vni <dev> 'icmp6 and ip6[40] >= 133 and ip6[40] <= 137'"),
        ],
        since="6.3",
    ),
    dict(
        reason="IPV6_NDISC_BAD_CODE",
        summary="An IPv6 Neighbor Discovery message had a non-zero ICMPv6 code.",
        details=(
            "ndisc_rcv() drops RS, RA, NS, NA and Redirect messages whose ICMPv6 code field is not 0, as "
            "RFC 4861 requires. Such packets are malformed or crafted."
        ),
        causes=[
            "Buggy ND implementation on a peer or embedded device",
            "Crafted or fuzzing traffic",
        ],
        counters=[],
        checks=[
            (
                "capture ND packets with details",
                "tcpdump -vvni <dev> 'icmp6 and ip6[40] >= 133 and ip6[40] <= 137'",
            ),
        ],
        since="6.3",
    ),
    dict(
        reason="IPV6_NDISC_BAD_OPTIONS",
        summary="An IPv6 Neighbor Discovery message contained malformed options.",
        details=(
            "While handling an NS, NA, RS, RA or Redirect, ndisc_parse_options() failed, e.g. because an "
            "option has length 0 or runs past the end of the packet. The whole message is ignored."
        ),
        causes=[
            "Buggy router or host ND implementation",
            "Truncated or corrupted ND packets",
            "Crafted ND packets",
        ],
        counters=[],
        checks=[
            (
                "capture ND packets with details",
                "tcpdump -vvni <dev> 'icmp6 and ip6[40] >= 133 and ip6[40] <= 137'",
            ),
            ("ND message counters", "nstat -az Icmp6InRouterAdvertisements Icmp6InNeighborSolicits"),
        ],
        since="6.3",
    ),
    dict(
        reason="IPV6_NDISC_NS_OTHERHOST",
        summary="An IPv6 Neighbor Solicitation asked for a target address this host does not own.",
        details=(
            "ndisc_recv_ns() ignores an NS whose target is not an address of the interface, not an anycast "
            "address and not covered by proxy NDP. This is usually harmless: solicited-node multicast groups "
            "are shared by addresses with the same low 24 bits, and switches may flood NS messages."
        ),
        causes=[
            "Solicited-node multicast collisions (addresses sharing the last 24 bits)",
            "Switch flooding without MLD snooping",
            "Address expected to be proxied but proxy_ndp or the proxy entry is missing",
            "Peers with stale caches asking for an address that moved",
        ],
        counters=[],
        checks=[
            ("addresses on the interface", "ip netns exec <ns> ip -6 addr show dev <dev>"),
            ("proxy NDP setting and entries", "sysctl net.ipv6.conf.<dev>.proxy_ndp; ip -6 neigh show proxy"),
        ],
        since="6.3",
    ),
    dict(
        reason="QUEUE_PURGE",
        summary="Queued packets were freed in bulk because their queue was purged.",
        details=(
            "skb_queue_purge() and __skb_queue_purge() use this reason by default, e.g. when a socket is "
            "destroyed with unread data in its receive or error queue, when packets waiting for ARP/ND "
            "resolution are discarded as a neighbour entry is flushed or destroyed, or when a device or "
            "qdisc is reset. It normally reflects teardown rather than a datapath failure."
        ),
        causes=[
            "Application closing a UDP, raw or packet socket with unread data",
            "Neighbour entries flushed (link down, ip neigh flush) while packets await resolution",
            "Interface or qdisc reset or removal",
        ],
        counters=[],
        checks=[
            ("sockets with unread data", "ss -uanp | awk 'NR > 1 && $2 > 0'"),
            ("neighbour entries on the device", "ip neigh show dev <dev>"),
        ],
        since="6.6",
    ),
    dict(
        reason="TC_COOKIE_ERROR",
        summary="tc could not resume classification from a hardware-offload miss cookie.",
        details=(
            "When tc rules are offloaded to a NIC (e.g. by OVS or switchdev) and the hardware stops partway "
            "through a rule's actions, it passes the packet to software with a miss cookie so that "
            "tcf_classify() continues at the right filter and action. If that filter or its actions were "
            "replaced or deleted in the meantime, the lookup fails and the packet is dropped."
        ),
        causes=[
            "tc/OVS flow rules modified while offloaded traffic is in flight (transient)",
            "Hardware rules left behind after the software rules were removed",
            "Driver offload bugs",
        ],
        counters=[],
        checks=[
            ("filters and their offload state (in_hw)", "tc -s filter show dev <dev> ingress"),
            ("hardware tc offload enabled", "ethtool -k <dev> | grep hw-tc-offload"),
        ],
        since="6.8",
    ),
    dict(
        reason="PACKET_SOCK_ERROR",
        summary="A packet socket (AF_PACKET, e.g. tcpdump) could not queue its copy of a matching packet.",
        details=(
            "packet_rcv() and tpacket_rcv() drop their copy when the socket's receive buffer or ring is full "
            "or cloning/copying fails, after the socket filter already matched. Only the capturing socket's "
            "copy is lost; the original packet continues through the stack, and the socket's drop count "
            "(tcpdump's 'dropped by kernel') increases."
        ),
        causes=[
            "Capture or L2 tool (tcpdump, IDS, DHCP/LLDP daemon) too slow for the traffic rate",
            "SO_RCVBUF or TPACKET ring too small",
            "Memory pressure when cloning packets",
        ],
        counters=[],
        checks=[
            ("packet sockets and their owners", "ss -0 -a -p"),
            ("per-socket memory of packet sockets", "cat /proc/net/packet"),
        ],
        since="6.8",
    ),
    dict(
        reason="TC_CHAIN_NOTFOUND",
        summary="tc could not find the filter chain a packet was sent to (goto chain or hardware miss).",
        details=(
            "tcf_classify() drops the packet when a hardware-offload miss asks software to continue in a "
            "chain that does not exist in the block, and tcf_action_exec() drops it when a 'goto chain' "
            "action has no chain attached. The packet is shot as if a drop action had matched."
        ),
        causes=[
            "Hardware offload (e.g. OVS-TC on a smart NIC) passing up a miss for a chain missing in software",
            "Chain deleted or never created while traffic is still steered to it",
        ],
        counters=[],
        checks=[
            ("chains on the device", "tc chain show dev <dev> ingress"),
            ("filters including goto chain actions", "tc -s filter show dev <dev> ingress"),
        ],
        since="6.8",
    ),
    dict(
        reason="TC_RECLASSIFY_LOOP",
        summary="tc classification looped too often (reclassify/goto chain) and the packet was dropped.",
        details=(
            "tcf_classify() restarts classification on TC_ACT_RECLASSIFY and jumps on 'goto chain'; after "
            "16 restarts it gives up, logs 'reclassify loop, rule prio ...' and drops the packet. This "
            "indicates a rule set that loops."
        ),
        causes=[
            "Filter with 'action reclassify' that matches again on every pass",
            "'goto chain' rules forming a cycle",
            "Actions rewriting the packet so it matches the same rules again",
        ],
        counters=[],
        checks=[
            ("kernel notice", "dmesg | grep -i 'reclassify loop'"),
            ("filters on all chains", "tc -s filter show dev <dev> ingress"),
            ("chains configured", "tc chain show dev <dev> ingress"),
        ],
        since="6.8",
    ),
    dict(
        reason="VXLAN_INVALID_HDR",
        summary="A packet received on a VXLAN UDP port had an invalid VXLAN header.",
        details=(
            "vxlan_rcv() drops packets whose 'I' (valid VNI) flag is not set, and packets with reserved "
            "flag or VNI bits set that the receiving vxlan device was not configured for (GBP, GPE, remote "
            "checksum offload). The latter case also counts as rx_frame_errors on the vxlan device."
        ),
        causes=[
            "Non-VXLAN traffic sent to the VXLAN port (IANA 4789, Linux default 8472)",
            "Extension mismatch between VTEPs (GBP/GPE/RCO enabled on one side only)",
            "Another encapsulation sharing the same UDP port",
        ],
        counters=[],
        checks=[
            ("vxlan devices, ports and extensions", "ip netns exec <ns> ip -d link show type vxlan"),
            ("vxlan error counters", "ip netns exec <ns> ip -s -s link show <dev>"),
            ("what arrives on the port", "tcpdump -ni <dev> udp port 4789"),
        ],
        since="6.13",
    ),
    dict(
        reason="VXLAN_VNI_NOT_FOUND",
        summary="No VXLAN device exists for the VNI of a received (or locally bypassed) packet.",
        details=(
            "vxlan_rcv() looks up the VNI on the receiving UDP socket and drops the packet if no vxlan "
            "device (or no VNI in a vnifilter device) serves it. It is also used on transmit with local "
            "bypass when the destination VTEP is local but no local vxlan device carries the VNI."
        ),
        causes=[
            "Remote VTEP sending VNIs not configured locally (EVPN/controller mismatch)",
            "vxlan device bound to a different local address or interface than the traffic uses",
            "VNI missing from a vnifilter-enabled (collect_metadata) device",
            "Device deleted while peers still send to it",
        ],
        counters=[],
        checks=[
            ("vxlan devices, VNIs and ports", "ip netns exec <ns> ip -d link show type vxlan"),
            ("VNI filter entries", "bridge vni show"),
            ("VNIs arriving on the wire", "tcpdump -ni <dev> udp port 4789"),
        ],
        since="6.13",
    ),
    dict(
        reason="MAC_INVALID_SOURCE",
        summary="The frame's source MAC address is invalid (multicast, broadcast or all zeros).",
        details=(
            "The bridge (br_handle_frame) drops frames whose source MAC is not a valid unicast address "
            "before learning it. VXLAN with learning enabled (vxlan_snoop) drops decapsulated frames whose "
            "inner source MAC is invalid in the same way."
        ),
        causes=[
            "NIC, driver or VM emitting zero or multicast source MACs",
            "Corrupted frames",
            "Crafted frames trying to pollute forwarding tables",
        ],
        counters=[],
        checks=[
            (
                "capture offending frames",
                "tcpdump -eni <dev> 'ether src 00:00:00:00:00:00 or ether[6] & 1 != 0'",
            ),
            ("bridge ports", "bridge link show"),
        ],
        since="6.13",
    ),
    dict(
        reason="VXLAN_ENTRY_EXISTS",
        summary="VXLAN learning refused to move a static or nexthop FDB entry, so the packet was dropped.",
        details=(
            "With learning enabled, vxlan_snoop() checks the inner source MAC against the FDB. If the MAC is "
            "known via a static (permanent/noarp) entry pointing to another remote, or via an entry using a "
            "nexthop group, the entry is not migrated and the packet is dropped."
        ),
        causes=[
            "MAC moved to another VTEP while a static FDB entry still points to the old one",
            "Duplicate MAC address behind two VTEPs",
            "Controller-installed (EVPN) entries conflicting with data-plane learning",
        ],
        counters=[],
        checks=[
            ("FDB entry for the MAC", "bridge fdb show dev <dev> | grep -i <mac>"),
            ("learning setting of the vxlan device", "ip -d link show <dev>"),
        ],
        since="6.13",
    ),
    dict(
        reason="NO_TX_TARGET",
        summary="There was nowhere to send the packet: no FDB/MDB entry, remote or eligible port.",
        details=(
            "vxlan_xmit() drops frames when neither the destination MAC nor a default all-zero FDB entry "
            "exists (optionally raising an L2 miss notification) or when the matching FDB/MDB entry has no "
            "remote; the vxlan device counts a TX drop. The bridge uses it in br_flood() and "
            "br_multicast_flood() when no port is eligible to receive a flooded frame. In 6.13 the VXLAN "
            "case was named VXLAN_NO_REMOTE."
        ),
        causes=[
            "Missing default (00:00:00:00:00:00) FDB entry or remote on a VXLAN device",
            "EVPN/controller has not installed the MAC or flood list yet",
            "Bridge ports with flood, mcast_flood or bcast_flood turned off",
            "Bridge where the ingress port is the only candidate port",
        ],
        counters=[],
        checks=[
            ("FDB entries", "bridge fdb show dev <dev>"),
            ("port flood flags", "bridge -d link show"),
            ("TX drops", "ip -s link show <dev>"),
        ],
        since="6.14",
    ),
    dict(
        reason="IP_TUNNEL_ECN",
        summary="Decapsulation dropped a packet whose outer header is CE but the inner one is Not-ECT.",
        details=(
            "RFC 6040 section 4.2 requires a tunnel endpoint to drop a packet whose outer header carries CE "
            "when the inner packet is not ECN-capable, because the congestion mark cannot be passed on. "
            "vxlan_rcv() applies this rule, logs 'non-ECT from ...' when the vxlan log_ecn_error module "
            "parameter is set (default on) and counts rx_frame_errors."
        ),
        causes=[
            (
                "Remote encapsulator setting ECT on the outer header for non-ECN inner traffic, plus a "
                "congested ECN-marking underlay"
            ),
            "Middlebox rewriting the outer ECN bits",
        ],
        counters=[],
        checks=[
            ("kernel log", "dmesg | grep -i 'non-ECT'"),
            ("vxlan frame errors", "ip -s -s link show <dev>"),
            ("outer TOS/ECN of received packets", "tcpdump -vni <dev> udp port 4789"),
        ],
        since="6.13",
    ),
    dict(
        reason="TUNNEL_TXINFO",
        summary="A metadata-mode ('external') tunnel device got a packet without tunnel TX metadata.",
        details=(
            "Devices in collect_metadata/'external' mode (e.g. vxlan external as used by Cilium, OVS or "
            "flow-based routing) need per-packet tunnel info (remote, VNI) attached by tc tunnel_key, "
            "bpf_skb_set_tunnel_key() or an lwtunnel encap route. vxlan_xmit() drops packets that reach "
            "such a device without it."
        ),
        causes=[
            "Traffic routed into an external-mode tunnel device without any metadata-setting rule",
            "Agent (Cilium, OVS) not running or its programs/rules detached",
            "Locally generated packets (e.g. IPv6 ND, multicast) sent out of the metadata device",
        ],
        counters=[],
        checks=[
            ("is the device in external mode", "ip -d link show <dev>"),
            ("BPF programs that may set tunnel keys", "bpftool net show"),
            ("routes with encap", "ip route show | grep encap"),
        ],
        since="6.13",
    ),
    dict(
        reason="LOCAL_MAC",
        summary="A decapsulated VXLAN frame carried this VXLAN device's own MAC address as its source.",
        details=(
            "vxlan_set_mac(), called from vxlan_rcv(), drops frames whose inner source MAC equals the vxlan "
            "device's own address. Such frames are treated as loops or as echoes of our own multicast (BUM) "
            "traffic."
        ),
        causes=[
            "Multicast-underlay VXLAN receiving its own flooded frames back",
            "Two VTEPs using the same vxlan device MAC (cloned VM images or templates)",
            "Forwarding loop in the overlay",
        ],
        counters=[],
        checks=[
            ("vxlan device MAC", "ip link show <dev>"),
            ("remote/group configuration", "ip -d link show <dev>"),
        ],
        since="6.13",
    ),
    dict(
        reason="ARP_PVLAN_DISABLE",
        summary=(
            "A non-IP (ARP) packet would be routed back out its input interface with proxy_arp_pvlan off."
        ),
        details=(
            "ip_mkroute_input() refuses an input route for a non-IPv4 skb (an ARP request checked for proxy "
            "ARP) when the output device equals the input device and net.ipv4.conf.<dev>.proxy_arp_pvlan "
            "is 0. arp_process() only uses the failed lookup to skip the proxy ARP reply, so this reason is "
            "rarely reported for an actually dropped packet."
        ),
        causes=[
            (
                "Private VLAN or port-isolation setups expecting proxy ARP on the same interface without "
                "proxy_arp_pvlan=1"
            ),
            "proxy_arp enabled where requester and target share the segment",
        ],
        counters=[],
        checks=[
            ("proxy ARP sysctls", "sysctl net.ipv4.conf.<dev>.proxy_arp net.ipv4.conf.<dev>.proxy_arp_pvlan"),
            ("ARP requests and replies", "tcpdump -eni <dev> arp"),
        ],
        since="6.13",
    ),
    dict(
        reason="MAC_IEEE_MAC_CONTROL",
        summary="A bridge dropped an IEEE 802.3 MAC Control frame (e.g. PAUSE) sent to 01:80:C2:00:00:01.",
        details=(
            "br_handle_frame() never forwards frames addressed to the MAC Control group address, which "
            "carry link-local flow-control messages, and drops them on the bridge port. NICs normally "
            "consume these frames, so seeing them means they were passed up to the stack."
        ),
        causes=[
            "Link partner sending PAUSE frames that the port's NIC/driver hands to the host",
            "Virtual ports (veth/tap) carrying MAC Control frames generated by a VM or test tool",
        ],
        counters=[],
        checks=[
            ("pause settings and counters", "ethtool -a <dev>; ethtool -S <dev> | grep -i pause"),
            ("capture MAC Control frames", "tcpdump -eni <dev> ether dst 01:80:c2:00:00:01"),
        ],
        since="6.14",
    ),
    dict(
        reason="BRIDGE_INGRESS_STP_STATE",
        summary="The bridge port's STP state does not allow it to forward the incoming frame.",
        details=(
            "br_handle_frame() drops frames arriving on ports in the disabled, blocking or listening state, "
            "and br_handle_frame_finish() drops data frames on disabled ports and, after learning the "
            "source MAC, on ports in the learning state. Drops are expected while STP converges or on a "
            "port blocked to break a loop."
        ),
        causes=[
            "Port still in listening/learning after link up (forward_delay)",
            "STP/RSTP blocking the port to break a loop",
            "Port disabled administratively or by link loss",
            "Port state set by a user-space STP daemon (mstpd) or switchdev driver",
        ],
        counters=[],
        checks=[
            ("port STP states", "bridge link show"),
            ("bridge STP settings", "ip -d link show <br>"),
            ("per-port details", "bridge -d link show dev <dev>"),
        ],
        since="6.14",
    ),
    dict(
        reason="CAN_RX_INVALID_FRAME",
        summary=(
            "AF_CAN dropped a received Classical CAN frame that is malformed or came from a non-CAN device."
        ),
        details=(
            "can_rcv() in net/can/af_can.c only accepts ETH_P_CAN packets from devices of type ARPHRD_CAN "
            "with CAN private data and a correctly sized Classical CAN frame. Otherwise it logs 'PF_CAN: "
            "dropped non conform CAN skbuff' once and drops the packet."
        ),
        causes=[
            "CAN frames injected through a non-CAN interface (packet socket, tun, veth)",
            "Driver delivering frames with a wrong length",
            "CAN driver or virtual CAN tunnel bug",
        ],
        counters=[],
        checks=[
            ("device type and MTU (16 = Classical CAN)", "ip -d -s link show <dev>"),
            ("one-time kernel warning", "dmesg | grep 'PF_CAN: dropped'"),
        ],
        since="6.17",
    ),
    dict(
        reason="CANFD_RX_INVALID_FRAME",
        summary="AF_CAN dropped a received CAN FD frame that is malformed or came from a non-CAN device.",
        details=(
            "canfd_rcv() in net/can/af_can.c only accepts ETH_P_CANFD packets from devices of type "
            "ARPHRD_CAN with CAN private data and a correctly sized CAN FD frame. Otherwise it logs "
            "'PF_CAN: dropped non conform CAN FD skbuff' once and drops the packet."
        ),
        causes=[
            "CAN FD frames injected through a non-CAN interface",
            "Driver delivering CAN FD frames with a wrong length",
            "CAN driver or virtual CAN tunnel bug",
        ],
        counters=[],
        checks=[
            ("device type and MTU (72 = CAN FD)", "ip -d -s link show <dev>"),
            ("one-time kernel warning", "dmesg | grep 'PF_CAN: dropped'"),
        ],
        since="6.17",
    ),
    dict(
        reason="CANXL_RX_INVALID_FRAME",
        summary="AF_CAN dropped a received CAN XL frame that is malformed or came from a non-CAN device.",
        details=(
            "canxl_rcv() in net/can/af_can.c only accepts ETH_P_CANXL packets from devices of type "
            "ARPHRD_CAN with CAN private data and a valid CAN XL frame. Otherwise it logs 'PF_CAN: dropped "
            "non conform CAN XL skbuff' once and drops the packet."
        ),
        causes=[
            "CAN XL frames injected through a non-CAN interface",
            "Driver delivering CAN XL frames with an invalid length",
            "CAN driver or virtual CAN tunnel bug",
        ],
        counters=[],
        checks=[
            ("device type and MTU", "ip -d -s link show <dev>"),
            ("one-time kernel warning", "dmesg | grep 'PF_CAN: dropped'"),
        ],
        since="6.17",
    ),
    dict(
        reason="PFMEMALLOC",
        summary="A packet allocated from emergency memory reserves reached a user not allowed to use them.",
        details=(
            "Under memory pressure drivers may allocate receive buffers from pfmemalloc reserves. "
            "__netif_receive_skb_core() drops such packets unless they are ARP, IPv4, IPv6 or VLAN, "
            "sk_filter_trim_cap() drops them for sockets without SOCK_MEMALLOC (counting PFMemallocDrop), "
            "and socket/TCP backlog queueing drops them too. Older kernels reported these drops as "
            "SOCKET_FILTER, SOCKET_BACKLOG or UNHANDLED_PROTO."
        ),
        causes=[
            "Severe memory pressure (free memory near the min watermark)",
            "vm.min_free_kbytes too low for the network load",
        ],
        counters=["TcpExtPFMemallocDrop"],
        checks=[
            ("drop counter", "nstat -az TcpExtPFMemallocDrop"),
            ("free memory", "grep -E 'MemFree|MemAvailable' /proc/meminfo"),
            ("watermark reserve", "sysctl vm.min_free_kbytes"),
        ],
        since="6.17",
    ),
    dict(
        reason="DUALPI2_STEP_DROP",
        summary="The DualPI2 qdisc dropped a non-ECN packet from its L4S queue above the step threshold.",
        details=(
            "DualPI2 (RFC 9332) runs a step AQM on its low-latency L4S queue. At dequeue, if the L-queue "
            "delay (or length, when the threshold is in packets) exceeds step_thresh (default 1 ms), "
            "ECN-capable packets are CE-marked, while packets that are not ECN-capable are dropped with "
            "this reason."
        ),
        causes=[
            "Non-ECN packets classified into the L4S queue (e.g. by a tc filter)",
            "L4S traffic not reacting to marks, so the L queue stays above step_thresh",
            "step_thresh set too low for the link",
        ],
        counters=[],
        checks=[
            ("DualPI2 statistics and parameters", "tc -s qdisc show dev <dev>"),
        ],
        since="6.17",
    ),
    dict(
        reason="PSP_INPUT",
        summary="A received packet failed the PSP (PSP Security Protocol) policy check of its TCP socket.",
        details=(
            "For connections using PSP encryption offload, tcp_v4_rcv()/tcp_v6_rcv() and TIME_WAIT handling "
            "check that the packet carries PSP decryption metadata matching the socket's association (SPI, "
            "generation, version, device). Clear-text packets where encryption is required, packets using "
            "a stale key, or PSP packets for a socket without an association are dropped."
        ),
        causes=[
            "Peer still using an old SPI/key after a key rotation",
            "Clear-text segments arriving after PSP was enabled on the connection",
            "Traffic arriving through a different NIC than the one holding the association",
        ],
        counters=[],
        checks=[
            ("device the flow arrives on", "ip route get <saddr>"),
            ("NIC PSP statistics", "ethtool -S <dev> | grep -i psp"),
        ],
        since="6.18",
    ),
    dict(
        reason="PSP_OUTPUT",
        summary="A packet failed PSP transmit checks, e.g. it is leaving via a device without its PSP state.",
        details=(
            "psp_validate_xmit() drops packets whose PSP association belongs to a different PSP device than "
            "the egress device, and drivers (mlx5, netdevsim) use it when they cannot encrypt a PSP packet. "
            "This typically follows a routing change that moves a PSP-protected connection to another NIC."
        ),
        causes=[
            "Route or bond change moving an encrypted connection to another NIC",
            "Driver unable to apply PSP encryption to the packet",
        ],
        counters=[],
        checks=[
            ("egress device towards the peer", "ip route get <daddr>"),
            ("NIC PSP statistics", "ethtool -S <dev> | grep -i psp"),
        ],
        since="6.18",
    ),
    dict(
        reason="RECURSION_LIMIT",
        summary=(
            "The transmit recursion limit was hit on a virtual device, most likely a routing/tunnel loop."
        ),
        details=(
            "__dev_queue_xmit() on devices without a qdisc (noqueue, typical for tunnels, vlan or veth) "
            "tracks per-CPU transmit nesting. When a packet re-enters transmit too deeply it logs 'Dead "
            "loop on virtual device <dev>, fix it urgently!' and drops the packet with this reason; the "
            "same reason is used when such a device asks to queue the packet."
        ),
        causes=[
            "Tunnel whose underlay route to the remote endpoint points back into the tunnel",
            "Device stacking or tc/BPF redirect loops between virtual devices",
            "Policy routing sending encapsulated packets back to the encapsulating device",
        ],
        counters=[],
        checks=[
            ("kernel log", "dmesg | grep -iE 'dead loop|asks to queue'"),
            ("route used for the tunnel remote", "ip route get <remote>"),
            ("TX drops on the device", "ip -s link show <dev>"),
        ],
        since=None,
    ),
    dict(
        reason="SKB_RX_HEADROOM",
        summary="A received packet lacked the headroom its receive path needed, and no room could be made.",
        details=(
            "The newest core reason of this kernel line (after RECURSION_LIMIT), named for the skb core "
            "(SKB_) and the receive side (RX): the headroom is the free space in front of the packet "
            "data that later steps push headers into (encapsulation, a VLAN tag, XDP's and tc's "
            "bpf_skb_adjust_room(), a device's hard_header_len). A packet arriving with less than a "
            "step requires, where copying it into a larger buffer failed or is not done, is dropped "
            "with this reason. Its kernel comment was not in the sources droptrace was checked "
            "against: the drop location and --stack name the function that decided."
        ),
        causes=[
            "A driver or virtual device that builds receive buffers with little headroom feeding a path "
            "that needs more (tunnels, VLAN, XDP or tc programs growing the headers)",
            "Memory pressure making the copy into a larger buffer fail",
        ],
        counters=[],
        checks=[
            ("where it is dropped", "droptrace --reason SKB_RX_HEADROOM --stack"),
            ("XDP and tc programs on the device", "bpftool net show dev <dev>"),
            ("the device's receive drops", "ip -s -d link show <dev>"),
        ],
        since=None,
    ),
]

# Subsystem reasons (upper 16 bits of the value): named SUBSYS:NAME, one entry per subsystem.
SUBSYSTEMS = {
    "OPENVSWITCH": dict(
        reason="OPENVSWITCH",
        summary="Open vSwitch's datapath dropped the packet (the name after ':' says why)",
        details=("The openvswitch kernel module gives its own drop reasons, in the OPENVSWITCH subsystem "
                 "of the drop reason space: an explicit drop action of a flow, the end of a flow's "
                 "action list, an action error, a failed recirculation or a full fragment queue. The "
                 "flow tables of ovs-vswitchd decide what the datapath does, so the answer is usually "
                 "in them."),
        causes=["a flow whose actions end without an output (OVS_DROP_LAST_ACTION)",
                "an OpenFlow rule with an explicit drop (OVS_DROP_EXPLICIT*)",
                "a recirculation or fragment-reassembly limit"],
        counters=[],
        checks=[("the datapath flows and their actions", "ovs-dpctl dump-flows"),
                ("how OpenFlow treats a packet like it", "ovs-appctl ofproto/trace <bridge> <flow>")],
        since=None,
    ),
    "MAC80211_UNUSABLE": dict(
        reason="MAC80211_UNUSABLE",
        summary="the Wi-Fi stack (mac80211) dropped a received frame it could not use",
        details=("mac80211 names the reasons it drops received frames in its own subsystem: frames "
                 "that fail decryption or integrity checks, replays, frames from unknown or "
                 "unauthorised stations, malformed management frames. These are drops of the wireless "
                 "link layer, before the packet reaches the IP stack."),
        causes=["decryption or MIC failures (key mismatch, replay)",
                "frames from a station not associated or not authorised yet",
                "malformed or unexpected frames"],
        counters=[],
        checks=[("the interface's link and station state", "iw dev <dev> link; iw dev <dev> station dump")],
        since=None,
    ),
    "MAC80211_MONITOR": dict(
        reason="MAC80211_MONITOR",
        summary="mac80211 dropped a received frame that only monitor interfaces were meant to see",
        details=("Frames that mac80211 hands to monitor-mode interfaces but that no regular interface "
                 "accepts are freed with a reason of this subsystem; it is normal on hosts with a "
                 "monitor interface."),
        causes=["a monitor-mode interface is up"],
        counters=[],
        checks=[("interfaces in monitor mode", "iw dev")],
        since=None,
    ),
}
