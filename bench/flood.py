"""A drop flood: UDP datagrams to a closed port on loopback, for a fixed time.

Run inside a private network namespace (bench/run.py makes one). Every
datagram is dropped by the kernel as NO_SOCKET in the sender's own context,
so the send rate is the drop rate. Prints the number sent.
"""
import socket
import sys
import time


def main() -> None:
    seconds = float(sys.argv[1])
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # unconnected: no ICMP errors back
    sendto, payload, dst, sent = s.sendto, b"droptrace-bench", ("127.0.0.1", 9), 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for _ in range(256):
            sendto(payload, dst)
        sent += 256
    print(sent)


if __name__ == "__main__":
    main()
