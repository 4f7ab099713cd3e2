"""A drop flood: UDP datagrams to a closed port, for a fixed time.

Usage: flood.py SECONDS [DST [RATE]]: RATE paces it to that many datagrams
per second (default: as fast as one core sends). Run inside a private network namespace
(bench/run.py makes them): DST is 127.0.0.1 (loopback) or the peer of a veth
pair. Every datagram is dropped by the kernel as NO_SOCKET, in softirq on
the sender's CPU, so the send rate is the drop rate. Prints the number sent.
"""
import socket
import sys
import time


def main() -> None:
    seconds = float(sys.argv[1])
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # unconnected: no ICMP errors back
    dst = (sys.argv[2] if len(sys.argv) > 2 else "127.0.0.1", 9)
    rate = float(sys.argv[3]) if len(sys.argv) > 3 else 0.0
    sendto, payload, sent = s.sendto, b"droptrace-bench", 0
    start = time.monotonic()
    deadline = start + seconds
    while True:
        now = time.monotonic()
        if now >= deadline:
            break
        if rate and sent > (now - start) * rate:
            time.sleep(min(0.001, deadline - now))
            continue
        for _ in range(256):
            sendto(payload, dst)
        sent += 256
    print(sent)


if __name__ == "__main__":
    main()
