// Fuzz target: replication messages as they arrive on the internal TCP port (protobuf bytes),
// range-checked and decoded as the transport does (worker/cluster/message_check, message_codec;
// an Append read straight from its frame, worker/cluster/append_frame, as followers read it)
// and stepped into a replication core, interleaved with ticks, proposals and "durable" notices.
// Properties: nothing throws (a peer's bytes are input, not a programmer error); the epoch, the
// persisted hard state and the commit position never decrease; the commit position stays within the
// log; what the core hands to storage is contiguous with the log it has; whatever the frame reader
// accepts (the message's bytes as they came, and as the transport would receive the message
// addressed to this core), protobuf accepts too and reads the same way: envelope, field-check
// finding and every field and entry of the Append.
//
// Input: a sequence of operations, each an opcode byte then its operands (see run_op). A message
// operand is a 2-byte little-endian length and that many protobuf bytes; its `to` is set to the
// core under test (the transport drops other messages). Opcode kInSession also replaces the
// message's session with the one this core last sent to that peer, so the fuzzer can reach
// synced states without guessing a random 64-bit session.
#include "replication.pb.h"
#include "tests/fuzz/fuzz_check.hpp"
#include "worker/cluster/append_frame.hpp"
#include "worker/cluster/message_check.hpp"
#include "worker/cluster/message_codec.hpp"
#include "worker/replication/core.hpp"

#include <cstddef>
#include <cstdint>
#include <exception>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace {

namespace rep = chorus::replication;

// Nodes are named by instance id in the core and on the wire (from_instance, to_instance).
const rep::NodeId kSelf = "5f1d3a2b-0c4e-4d6f-8a7b-9c0d1e2f3a01";
const std::vector<rep::NodeId> kVoters = {"5f1d3a2b-0c4e-4d6f-8a7b-9c0d1e2f3a02",
                                          "5f1d3a2b-0c4e-4d6f-8a7b-9c0d1e2f3a03"};

enum Op : uint8_t { kTick, kMessage, kInSession, kDurable, kPropose, kSetPeers, kOpCount };

// Storage as the engine keeps it: entries in order, what is durable readable by the core.
class MemLog final : public rep::LogReader {
 public:
  std::vector<rep::Entry> read(int64_t from, size_t bytes_max) override {
    std::vector<rep::Entry> out;
    size_t bytes = 0;
    for (const auto& e : entries_) {
      if (e.position < from || e.end > durable_end_) continue;
      if (!out.empty() && bytes + static_cast<size_t>(e.end - e.position) > bytes_max) break;
      bytes += static_cast<size_t>(e.end - e.position);
      out.push_back(e);
    }
    return out;
  }
  int64_t end() const { return entries_.empty() ? base_end_ : entries_.back().end; }
  void truncate(int64_t position) {
    std::erase_if(entries_, [&](const rep::Entry& e) { return e.position >= position; });
    durable_end_ = std::min(durable_end_, position);
    base_end_ = std::min(base_end_, position);
  }
  void append(const rep::Entry& e) {
    FUZZ_CHECK(e.position == end(), "storage asked to append with a gap");
    FUZZ_CHECK(e.end > e.position, "storage asked to append an empty entry");
    entries_.push_back(e);
  }
  void make_durable() { durable_end_ = end(); }

 private:
  std::vector<rep::Entry> entries_;
  int64_t base_end_ = 0;
  int64_t durable_end_ = 0;
};

// The frame reader's reading of `bytes` (a frame without its length prefix), checked against
// protobuf's as the unit test does (tests/unit/cluster_append_frame_test.cpp): nullopt when the
// reader leaves the bytes to protobuf.
std::optional<chorus::cluster::AppendFrame> read_as_protobuf_does(
    const std::shared_ptr<const std::string>& bytes) {
  std::optional<chorus::cluster::AppendFrame> fast = chorus::cluster::read_append_frame(bytes);
  if (!fast) return std::nullopt;
  chorus::internal::ReplicationMessage m;
  FUZZ_CHECK(m.ParseFromString(*bytes), "the frame reader accepted what protobuf refuses");
  FUZZ_CHECK(m.has_append(), "the frame reader read an Append where protobuf has none");
  FUZZ_CHECK(fast->from == m.from() && fast->to == m.to() && fast->cluster == m.cluster() &&
                 fast->from_instance == m.from_instance() && fast->to_instance == m.to_instance(),
             "the frame reader's envelope differs from protobuf's");
  FUZZ_CHECK(
      chorus::cluster::check_message_fields(*fast) == chorus::cluster::check_message_fields(m),
      "the frame reader's field check differs from protobuf's");
  const auto message = chorus::cluster::from_proto(m);
  FUZZ_CHECK(message.has_value(),
             "protobuf's Append does not decode where the frame reader's does");
  const auto& a = std::get<rep::Append>(message->body);
  const rep::Append& f = fast->append;
  FUZZ_CHECK(f.epoch == a.epoch && f.start == a.start && f.sync == a.sync &&
                 f.commit_end == a.commit_end && f.session == a.session &&
                 f.commit_only == a.commit_only && f.relaxed == a.relaxed,
             "the frame reader's Append fields differ from protobuf's");
  FUZZ_CHECK(f.entries == a.entries, "the frame reader's entries differ from protobuf's");
  return fast;
}

class Reader {
 public:
  Reader(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  bool done() const { return at_ >= size_; }
  uint8_t byte() { return at_ < size_ ? data_[at_++] : 0; }
  std::string bytes(size_t n) {
    n = std::min(n, size_ - at_);
    std::string out(reinterpret_cast<const char*>(data_ + at_), n);
    at_ += n;
    return out;
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t at_ = 0;
};

struct Harness {
  MemLog log;
  rep::Core core;
  std::map<rep::NodeId, uint64_t> sessions;  // last session this core sent to each peer
  int64_t epoch = 0;
  int64_t hard_epoch = 0;
  int64_t commit_end = 0;

  Harness() : core(config(), {}, log) { core.set_voters(kVoters); }

  static rep::Config config() {
    rep::Config c;
    c.self = kSelf;
    c.cluster_size = 3;
    c.seed = 7;
    return c;
  }

  void drain() {
    rep::Ready ready = core.ready();
    if (ready.hard_state) {
      FUZZ_CHECK(ready.hard_state->epoch >= hard_epoch, "persisted epoch went back");
      hard_epoch = ready.hard_state->epoch;
    }
    if (ready.truncate_to) {
      FUZZ_CHECK(*ready.truncate_to >= commit_end, "truncation below the commit position");
      log.truncate(*ready.truncate_to);
    }
    for (const auto& e : ready.append) log.append(e);
    for (const auto& m : ready.messages) {
      if (const auto* s = std::get_if<rep::Subscribe>(&m.body)) sessions[m.to] = s->session;
      if (const auto* a = std::get_if<rep::AppendAck>(&m.body)) sessions[m.to] = a->session;
      if (const auto* a = std::get_if<rep::Append>(&m.body)) sessions[m.to] = a->session;
      (void)chorus::cluster::to_proto(m, "fuzz", "10.0.0.1:1112",
                                      "10.0.0.2:1112");  // what the transport would send
    }
    FUZZ_CHECK(core.epoch() >= epoch, "epoch went back");
    epoch = core.epoch();
    FUZZ_CHECK(core.commit_end() >= commit_end, "commit position went back");
    commit_end = core.commit_end();
    FUZZ_CHECK(commit_end <= core.log_end(), "commit position beyond the log");
    FUZZ_CHECK(log.end() == core.log_end(), "storage and core disagree on the log end");
  }

  void message(Reader& in, bool in_session) {
    const size_t length = in.byte() | (size_t{in.byte()} << 8);
    const auto raw = std::make_shared<const std::string>(in.bytes(length));
    (void)read_as_protobuf_does(raw);  // the bytes as they came, odd shapes included
    chorus::internal::ReplicationMessage proto;
    if (!proto.ParseFromString(*raw)) return;
    proto.set_to("10.0.0.1:1112");
    proto.set_to_instance(kSelf);
    // Most messages come from a voter (the core drops the others at once); some stay outsiders.
    const size_t pick = proto.from_instance().size();
    if (pick % 8 != 0) proto.set_from_instance(kVoters[pick % 2]);
    if (in_session) {
      const uint64_t session = sessions[proto.from_instance()];
      if (proto.has_append()) proto.mutable_append()->set_session(session);
      if (proto.has_append_ack()) proto.mutable_append_ack()->set_session(session);
      if (proto.has_subscribe()) proto.mutable_subscribe()->set_session(session);
    }
    // As the transport receives the message addressed to this core: an Append read from its
    // frame when the reader takes it, else parsed by protobuf.
    const auto frame = std::make_shared<const std::string>(proto.SerializeAsString());
    if (auto fast = read_as_protobuf_does(frame)) {
      if (!chorus::cluster::check_message_fields(*fast).empty()) return;
      core.step(rep::Message{std::string(fast->from_instance), std::string(fast->to_instance),
                             std::move(fast->append)});
      return;
    }
    // The transport refuses (and disconnects) a message with a field out of range (finding F2).
    if (!chorus::cluster::check_message_fields(proto).empty()) return;
    const auto decoded = chorus::cluster::from_proto(proto);
    if (decoded) core.step(*decoded);
  }

  void run_op(Reader& in) {
    switch (in.byte() % kOpCount) {
      case kTick:
        for (int n = in.byte(); n >= 0; --n) core.tick();
        break;
      case kMessage:
        message(in, false);
        break;
      case kInSession:
        message(in, true);
        break;
      case kDurable:
        log.make_durable();
        core.durable(log.end());
        break;
      case kPropose:
        (void)core.propose({in.bytes(in.byte() % 32)}, in.byte() % 2 == 0);
        break;
      case kSetPeers:
        core.set_voters(kVoters);
        break;
    }
    drain();
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Reader in(data, size);
  try {
    Harness h;
    h.drain();
    while (!in.done()) h.run_op(in);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fuzz property broken: the core threw: %s\n", e.what());
    std::abort();
  }
  return 0;
}
