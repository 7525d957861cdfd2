#!/usr/bin/env python3
"""Where a write's time goes, seen from the wire (issue 16): the server's part and the client's.

Reads a packet capture (tcpdump -w, plain TCP, no TLS) of a node's external TCP port while a client
writes one event per WriteEvents, reassembles both directions of every connection to that port,
and pairs each WriteEvents (0x82) with its WriteEventsCompleted (0x83) by correlation id:

- server: request's last byte on the wire -> its reply's last byte on the wire. What the node's
  own write duration (chorus_write_duration_seconds) misses is in here too: the request waiting
  in the socket before the node reads it, and the reply waiting to be sent.
- client: a reply on the wire -> the next request of the same stream on the wire (each writer of
  bench/peers/driver.mjs has its own stream). The client's own work, its event loop, and its
  kernel's holding of small writes (Nagle's algorithm: EventStore's clients leave it on).

Also counts frames per TCP segment in each direction (how writes and replies travel together).
Timestamps are the capture's, on the loopback device, so both parts add up to what the client
measures minus its own time before the first and after the last byte.

  tcpdump -i lo -s 0 -w cap.pcap 'tcp port 1112' ; bench/latency_split.py cap.pcap 1112[,2112,...]
"""
import collections
import statistics
import struct
import sys

CMD_WRITE_EVENTS = 0x82
CMD_WRITE_EVENTS_COMPLETED = 0x83
FLAG_AUTHENTICATED = 0x01
HEADER_BYTES = 18  # command, flags, correlation id (after the 4-byte length)


def packets(path):
    """Yields (time s, src ip, src port, dst ip, dst port, seq, payload) of each TCP segment."""
    with open(path, 'rb') as f:
        head = f.read(24)
        if len(head) < 24:
            raise SystemExit(f'{path}: not a pcap file')
        magic = struct.unpack('<I', head[:4])[0]
        if magic not in (0xa1b2c3d4, 0xa1b23c4d):
            raise SystemExit(f'{path}: not a little-endian pcap file (magic {magic:#x})')
        scale = 1e9 if magic == 0xa1b23c4d else 1e6
        link = struct.unpack('<I', head[20:24])[0]
        offset = {1: 14, 113: 16, 0: 4, 101: 0}.get(link)
        if offset is None:
            raise SystemExit(f'{path}: link type {link} not handled (capture on lo or an Ethernet device)')
        while True:
            rec = f.read(16)
            if len(rec) < 16:
                return
            sec, frac, incl, _ = struct.unpack('<IIII', rec)
            data = f.read(incl)
            ip = data[offset:]
            if len(ip) < 20 or ip[0] >> 4 != 4 or ip[9] != 6:
                continue  # IPv4 TCP only
            ihl = (ip[0] & 15) * 4
            total = struct.unpack('>H', ip[2:4])[0]
            tcp = ip[ihl:total]
            sport, dport, seq = struct.unpack('>HHI', tcp[:8])
            payload = tcp[(tcp[12] >> 4) * 4:]
            if payload:
                yield sec + frac / scale, ip[12:16], sport, ip[16:20], dport, seq, payload


KNOWN_COMMANDS = {0x01, 0x02, 0x03, 0x04, 0x82, 0x83, 0xF0, 0xF1, 0xF2, 0xF3, 0xF4, 0xF5}
FRAME_BYTES_MAX = 64 << 20


def plausible(buf, at):
    """A frame seems to start at `at`, and another right after it (for resynchronizing)."""
    for _ in range(2):
        if len(buf) < at + 5:
            return False
        n = struct.unpack('<I', buf[at:at + 4])[0]
        if n < HEADER_BYTES or n > FRAME_BYTES_MAX or buf[at + 4] not in KNOWN_COMMANDS:
            return False
        at += 4 + n
    return True


def frames(segments, lost):
    """Reassembles one direction and yields (time of the segment that completed the frame, frame
    without its length). Segments are put in sequence order (a capture on two CPUs may list them
    out of order); retransmitted bytes are skipped. After a hole (a segment the capture lost,
    counted in lost[0]) it resynchronizes on the next two frames that look whole."""
    if not segments:
        return
    first = segments[0][1]
    ordered = sorted(((seq - first) % (1 << 32), t, payload) for t, seq, payload in segments)
    buf = bytearray()
    expected = ordered[0][0]
    resync = False
    for offset, t, payload in ordered:
        if offset < expected:  # a retransmission, or a duplicate
            if offset + len(payload) <= expected:
                continue
            payload = payload[expected - offset:]
        elif offset > expected:
            lost[0] += 1
            buf.clear()
            resync = True
        expected = max(expected, offset) + len(payload)
        buf += payload
        if resync:
            at = next((i for i in range(len(buf)) if plausible(buf, i)), None)
            if at is None:
                continue
            del buf[:at]
            resync = False
        while len(buf) >= 4:
            n = struct.unpack('<I', buf[:4])[0]
            if len(buf) < 4 + n:
                break
            yield t, bytes(buf[4:4 + n])
            del buf[:4 + n]


def varint(data, i):
    v = shift = 0
    while True:
        b = data[i]
        i += 1
        v |= (b & 127) << shift
        shift += 7
        if b < 128:
            return v, i


def first_string_field(data, field):
    """The bytes of protobuf field `field` (length-delimited), or None."""
    i = 0
    while i < len(data):
        key, i = varint(data, i)
        number, wire = key >> 3, key & 7
        if wire == 2:
            n, i = varint(data, i)
            if number == field:
                return data[i:i + n]
            i += n
        elif wire == 0:
            _, i = varint(data, i)
        elif wire == 1:
            i += 8
        elif wire == 5:
            i += 4
        else:
            return None
    return None


def quantile(values, q):
    s = sorted(values)
    return s[int(q * (len(s) - 1))] * 1000


def summary(name, values):
    return (f'{name}: mean {statistics.mean(values) * 1000:.3f} ms, p50 {quantile(values, .5):.3f}, '
            f'p90 {quantile(values, .9):.3f}, p99 {quantile(values, .99):.3f}')


def main():
    if len(sys.argv) != 3:
        raise SystemExit('usage: latency_split.py CAPTURE.pcap PORT[,PORT...] (the nodes\' external TCP ports)')
    ports = {int(p) for p in sys.argv[2].split(',')}
    flows = collections.defaultdict(list)  # (src, sport, dst, dport) -> [(t, seq, payload)]
    for t, src, sport, dst, dport, seq, payload in packets(sys.argv[1]):
        if sport in ports or dport in ports:
            flows[(src, sport, dst, dport)].append((t, seq, payload))
    requests = {}  # correlation id -> (time, stream)
    replies = {}
    per_segment = {'requests': [], 'replies': []}
    lost = [0]
    for (src, sport, dst, dport), segments in flows.items():
        to_server = dport in ports
        last_t, count = None, 0
        for t, frame in frames(segments, lost):
            command, flags, correlation = frame[0], frame[1], frame[2:HEADER_BYTES]
            body = frame[HEADER_BYTES:]
            if to_server and command == CMD_WRITE_EVENTS:
                if flags & FLAG_AUTHENTICATED:
                    body = body[1 + body[0]:]
                    body = body[1 + body[0]:]
                requests[correlation] = (t, first_string_field(body, 1))
            elif not to_server and command == CMD_WRITE_EVENTS_COMPLETED:
                replies[correlation] = t
            else:
                continue
            if t != last_t and last_t is not None:
                per_segment['requests' if to_server else 'replies'].append(count)
                count = 0
            last_t = t
            count += 1
        if count:
            per_segment['requests' if to_server else 'replies'].append(count)
    server = []
    by_stream = collections.defaultdict(list)  # every request, answered or not
    for correlation, (t, stream) in requests.items():
        by_stream[stream].append((t, correlation))
        if correlation in replies:
            server.append(replies[correlation] - t)
    client = []
    for writes in by_stream.values():
        writes.sort()
        for (_, correlation), (request, _) in zip(writes, writes[1:]):
            if correlation in replies and request >= replies[correlation]:
                client.append(request - replies[correlation])
    if not server or not client:
        raise SystemExit('no WriteEvents with replies in the capture (wrong ports, TLS, or too short)')
    print(f'writes paired {len(server)} in {len(by_stream)} streams'
          + (f' ({lost[0]} holes in the capture, skipped)' if lost[0] else ''))
    print(summary('server (request -> reply, on the wire)', server))
    print(summary('client (reply -> next request of its stream, on the wire)', client))
    for k, v in per_segment.items():
        if v:
            print(f"{k} completed per segment: mean {statistics.mean(v):.1f} ({len(v)} segments)")


if __name__ == '__main__':
    main()
