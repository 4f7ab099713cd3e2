"""The Internet checksum (RFC 1071), for headers droptrace builds: the lab's packets, and the
headers rebuilt from a JSON line's fields."""
import struct


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF
