#!/usr/bin/env python3
"""Writes the seed corpus of every fuzz target into tests/fuzz/corpus/<name>/ (committed; rerun
after changing an input format). Seeds are small valid inputs that reach deep code at once;
libFuzzer mutates from there. Protobuf messages are encoded by hand (no python protobuf here)."""
import os
import struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def write(target, name, data):
    folder = os.path.join(ROOT, target)
    os.makedirs(folder, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


# ---------------------------------------------------------------- protobuf by hand
def varint(n):
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field_varint(number, value):
    return varint(number << 3) + varint(int(value))


def field_bytes(number, value):
    if isinstance(value, str):
        value = value.encode()
    return varint((number << 3) | 2) + varint(len(value)) + value


def envelope(sender, body_field, body):
    return (field_bytes(1, sender) + field_bytes(2, "10.0.0.1:1112") + field_bytes(3, "fuzz") +
            field_bytes(body_field, body))


def entry(position, payload, epoch, is_epoch_record=False):
    end = position + 64 + len(payload)
    data = (field_varint(1, position) + field_varint(2, end) + field_varint(3, epoch) +
            field_varint(4, is_epoch_record) + field_bytes(5, payload))
    return data, end


def append(sender, epoch, start, sync, entries, commit_end, session=0):
    body = field_varint(1, epoch) + field_varint(2, start) + field_varint(3, sync)
    for e in entries:
        body += field_bytes(4, e)
    body += field_varint(5, commit_end) + field_varint(6, session)
    return envelope(sender, 13, body)


def vote_request(sender, epoch, last_epoch, log_end, pre):
    body = (field_varint(1, epoch) + field_varint(2, last_epoch) + field_varint(3, log_end) +
            field_varint(4, 0) + field_varint(5, pre))
    return envelope(sender, 10, body)


def vote_response(sender, epoch, granted, pre):
    body = field_varint(1, epoch) + field_varint(2, granted) + field_varint(3, pre)
    return envelope(sender, 11, body)


def subscribe(sender, epoch, log_end, session=0):
    body = field_varint(1, epoch) + field_varint(2, log_end) + field_varint(4, session)
    return envelope(sender, 12, body)


def append_ack(sender, epoch, log_end, durable_end, session=0):
    body = (field_varint(1, epoch) + field_varint(2, log_end) + field_varint(3, durable_end) +
            field_varint(4, session))
    return envelope(sender, 14, body)


# Opcodes of replication_fuzz.cpp.
TICK, MESSAGE, IN_SESSION, DURABLE, PROPOSE, SET_PEERS = range(6)


def op_message(message, in_session=False):
    return bytes([IN_SESSION if in_session else MESSAGE]) + struct.pack("<H", len(message)) + message


def replication_seeds():
    n2, n3 = "10.0.0.2:1112", "10.0.0.3:1112"
    guid = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
    rec, end0 = entry(0, f"epoch 1 0 {guid} {n2}", 1, True)
    data1, end1 = entry(end0, "event one", 1)
    data2, end2 = entry(end1, "event two", 1)
    follower = (bytes([SET_PEERS]) + op_message(append(n2, 1, 0, False, [], 0)) +
                op_message(append(n2, 1, 0, True, [rec, data1], 0), True) + bytes([DURABLE]) +
                op_message(append(n2, 1, end1, False, [data2], end1), True) + bytes([DURABLE]) +
                bytes([TICK, 20]))
    write("replication", "follower_sync", follower)
    leader = (bytes([SET_PEERS, TICK, 255]) + op_message(vote_response(n2, 1, True, True)) +
              op_message(vote_response(n2, 1, True, False)) + bytes([DURABLE]) +
              op_message(subscribe(n2, 1, 0)) + bytes([PROPOSE, 5]) + b"hello" + b"\x00" +
              bytes([DURABLE]) + op_message(append_ack(n2, 1, 200, 200), True) + bytes([TICK, 10]))
    write("replication", "leader_elected", leader)
    voter = (bytes([SET_PEERS]) + op_message(vote_request(n3, 2, 0, 0, True)) +
             op_message(vote_request(n3, 2, 0, 0, False)) + bytes([TICK, 255, TICK, 255]))
    write("replication", "vote_for_peer", voter)
    stale = (op_message(append(n2, 3, 0, False, [], 0)) + op_message(append(n3, 2, 0, False, [], 0)) +
             op_message(append_ack(n3, 1, 0, 0)))
    write("replication", "stale_leader", stale)
    # A peer announcing the largest epoch: the next election must not overflow it.
    huge = (bytes([SET_PEERS]) + op_message(vote_request(n3, (1 << 63) - 1, 0, 0, False)) +
            bytes([TICK, 255, TICK, 255, TICK, 255]))
    write("replication", "huge_epoch", huge)
    # Appends in shapes the frame reader leaves to protobuf (worker/cluster/append_frame.hpp):
    # the sender field again (protobuf takes the last) and an unknown field (protobuf keeps it);
    # then the plain shape it reads, so mutations move between the two readers.
    plain = append(n2, 1, 0, True, [rec, data1], 0)
    odd = (bytes([SET_PEERS]) + op_message(plain + field_bytes(1, n3)) +
           op_message(plain + field_varint(20, 1), True) + op_message(plain, True) +
           bytes([DURABLE]))
    write("replication", "append_shapes", odd)


# ---------------------------------------------------------------- TCP framing
def package(command, payload=b"", login=None, password=None, correlation=bytes(range(16))):
    flags = 0x01 if login is not None else 0x00
    body = bytes([command, flags]) + correlation
    if login is not None:
        body += bytes([len(login)]) + login + bytes([len(password)]) + password
    body += payload
    return struct.pack("<i", len(body)) + body


def framing_seeds():
    chunks = bytes([1, 3, 7, 15])
    write("framing", "heartbeat", chunks + package(0x01))
    write("framing", "write_with_credentials",
          chunks + package(0x82, b"\x0a\x06stream\x10\xfe\xff\xff\xff\xff\xff\xff\xff\xff\x01",
                           b"admin", b"changeit"))
    write("framing", "two_frames", chunks + package(0x03) + package(0xB0, b"\x0a\x01s\x10\x00"))
    write("framing", "bad_length", chunks + struct.pack("<i", -5) + b"xxxx")
    write("framing", "partial", chunks + package(0xF2)[:-3])


# ---------------------------------------------------------------- JSON documents
def gossip_seeds():
    member = ('{"instanceId":"4c1e8f2a-6d3b-4f5e-9a7c-0b1d2e3f4a5c","timeStamp":'
              '"2026-01-02T03:04:05.000000Z","state":"%s","isAlive":true,'
              '"internalTcpIp":"127.0.0.%d","internalTcpPort":1112,"internalSecureTcpPort":0,'
              '"externalTcpIp":"127.0.0.%d","externalTcpPort":1113,"externalSecureTcpPort":0,'
              '"internalHttpIp":"127.0.0.%d","internalHttpPort":2112,"externalHttpIp":'
              '"127.0.0.%d","externalHttpPort":2113,"lastCommitPosition":100,'
              '"writerCheckpoint":200,"chaserCheckpoint":200,"epochPosition":0,"epochNumber":%d,'
              '"epochId":"0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0","nodePriority":0,'
              '"isReadOnlyReplica":false}')
    leader = member % ("Leader", 2, 2, 2, 2, 3)
    follower = member % ("Follower", 3, 3, 3, 3, 3)
    self_claim = member % ("Leader", 1, 1, 1, 1, 9)
    write("gossip", "v5", '{"members":[%s,%s],"serverIp":"127.0.0.2","serverPort":2112}'
          % (leader, follower))
    write("gossip", "named", '{"members":[%s],"serverIp":"127.0.0.2","serverPort":2112,'
          '"clusterName":"fuzz"}' % leader)
    write("gossip", "other_cluster", '{"members":[%s],"clusterName":"other"}' % leader)
    write("gossip", "claims_self", '{"members":[%s,%s]}' % (leader, self_claim))
    write("gossip", "v20", '{"members":[{"instanceId":"4c1e8f2a-6d3b-4f5e-9a7c-0b1d2e3f4a5c",'
          '"state":"Manager","isAlive":true,"httpEndPointIp":"127.0.0.5","httpEndPointPort":30778,'
          '"internalHttpIp":"127.0.0.5","internalHttpPort":30777}]}')


def fdp_string(text):
    """A string as FuzzedDataProvider::ConsumeRandomLengthString reads it (ends at '\\' + x)."""
    return text.replace("\\", "\\\\") + "\\x"


def acl_seeds():
    tail = bytes(range(1, 17))
    metadata = ('{"$maxCount":10,"$maxAge":3600,"$tb":2,"$cacheControl":5,"$tmp":false,'
                '"$acl":{"$r":["$all"],"$w":"ops","$d":["$admins"],"$mr":[],"$mw":"alice"},'
                '"custom":{"k":[1,2]}}')
    settings = ('{"$userStreamAcl":{"$r":"$all","$w":["$all"]},'
                '"$systemStreamAcl":{"$r":"$admins","$w":"$admins"}}')
    write("acl", "user_stream", fdp_string("orders-1") + fdp_string("alice") +
          fdp_string(settings) + metadata + tail.decode("latin-1"))
    write("acl", "metastream", fdp_string("$$orders-1") + fdp_string("") + fdp_string("{}") +
          metadata + tail.decode("latin-1"))
    write("acl", "system_stream", fdp_string("$settings") + fdp_string("ops") +
          fdp_string(settings) + '{"$acl":{"$r":"$$"}}' + tail.decode("latin-1"))


def users_seeds():
    write("users", "admin", fdp_string("admin") + fdp_string("changeit") +
          '{"loginName":"admin","fullName":"Administrator","salt":"c2FsdHNhbHRzYWx0c2FsdA==",'
          '"hash":"aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g=","disabled":false,'
          '"groups":["$admins","$ops"]}')
    write("users", "disabled", fdp_string("a\\") + fdp_string("") +
          '{"loginName":"ops","salt":"","hash":"","disabled":true,"groups":[]}')


def http_seeds():
    events = ('[{"eventId":"fbf4a1a1-b4a3-4dfe-a01f-ec52c34e16e4","eventType":"event-type",'
              '"data":{"a":"1"},"metadata":"not json"},'
              '{"eventId":"0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0","eventType":"other",'
              '"data":"[1,2]","metadata":{"m":true}}]')
    # Consumption order: stream (front), then bools/picks from the back, then the rest as body.
    write("http_write", "events_array", fdp_string("orders") + fdp_string("") + fdp_string("") +
          events + "\x00\x00\x00\x01\x00\x01")
    write("http_write", "single_json", fdp_string("orders") + fdp_string("my-type") +
          fdp_string("fbf4a1a1-b4a3-4dfe-a01f-ec52c34e16e4") + '{"a":1}' +
          "\x01\x01\x01\x02\x01\x01")
    write("http_headers", "stream_page", fdp_string("admin") + fdp_string("changeit") +
          fdp_string("0000000000000010000000000000000F") + "/streams/a%2Fb/10/forward/20" +
          "\x01" * 20)
    write("http_headers", "expected_version", fdp_string("user") + fdp_string("pa:ss") +
          fdp_string(" -2 ") + "/streams/$$orders/metadata" + "\x00" * 20)
    write("http_headers", "accept", fdp_string("") + fdp_string("") +
          fdp_string("text/html;q=0.9, application/vnd.eventstore.atom+json") +
          "/users/$current/" + "\x03" * 20)


def manager_config_seeds():
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "..", "..", "manager", "examples", "local-3-nodes.yaml")) as f:
        yaml = f.read()
    write("manager_config", "local_3_nodes", yaml + "\n----\n\n----\n\n----\n--what-if")
    write("manager_config", "watchdog", "EnableWatchdog: true\nWatchdogConfig: /fuzz/watchdog\n"
          "\n----\n--ext-tcp-port=1113 --int-tcp-port=1112 --db=./a\n"
          "--ext-tcp-port=1213 --int-tcp-port=1212 --int-http-port=2212 --ext-http-port=2213\n"
          "\n----\nCHORUS_MANAGER_EXT_HTTP_PORT=31778\n\n----\n")
    write("manager_config", "args", "Nodes:\n  - Name: a\n    Options: {MemDb: true}\n"
          "  - Name: b\n    Cluster: two\n    Options:\n      ClusterSize: 1\n      "
          "IntTcpPort: 1212\n      ExtTcpPort: 1213\n      IntHttpPort: 2212\n      "
          "ExtHttpPort: 2213\n      GossipSeed: [\"127.0.0.1:1\"]\n"
          "\n----\n\n----\nCHORUS_MANAGER_LOG=/tmp/x\n\n----\n--int-http-port=40000\n--name=m1")


if __name__ == "__main__":
    replication_seeds()
    framing_seeds()
    gossip_seeds()
    acl_seeds()
    users_seeds()
    http_seeds()
    manager_config_seeds()
