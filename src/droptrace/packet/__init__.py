"""Packets: decoding the captured headers, and compiling tcpdump expressions with libpcap."""
