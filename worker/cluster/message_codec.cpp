// Replication message codec.
#include "worker/cluster/message_codec.hpp"

#include <google/protobuf/io/coded_stream.h>

namespace chorus::cluster {
namespace {

using Out = google::protobuf::io::CodedOutputStream;
constexpr uint32_t kVarint = 0;
constexpr uint32_t kLengthDelimited = 2;
// Field numbers of ReplicationMessage, Append and Entry (common/proto/replication.proto).
constexpr uint32_t kMessageFrom = 1, kMessageTo = 2, kMessageCluster = 3, kMessageFromInstance = 4,
                   kMessageToInstance = 5, kMessageAppend = 13;
constexpr uint32_t kAppendEpoch = 1, kAppendStart = 2, kAppendSync = 3, kAppendEntries = 4,
                   kAppendCommitEnd = 5, kAppendSession = 6, kAppendCommitOnly = 7,
                   kAppendRelaxed = 8;
constexpr uint32_t kEntryPosition = 1, kEntryEnd = 2, kEntryEpoch = 3, kEntryIsEpochRecord = 4,
                   kEntryPayload = 5, kEntryIsGap = 6;

size_t tag_size(uint32_t field) { return Out::VarintSize32(field << 3); }
size_t varint_field_size(uint32_t field, uint64_t v) {
  return tag_size(field) + Out::VarintSize64(v);
}
size_t bytes_field_size(uint32_t field, size_t n) {
  return tag_size(field) + Out::VarintSize32(static_cast<uint32_t>(n)) + n;
}
uint8_t* put_varint(uint32_t field, uint64_t v, uint8_t* p) {
  p = Out::WriteTagToArray(field << 3 | kVarint, p);
  return Out::WriteVarint64ToArray(v, p);
}
uint8_t* put_length(uint32_t field, size_t n, uint8_t* p) {
  p = Out::WriteTagToArray(field << 3 | kLengthDelimited, p);
  return Out::WriteVarint32ToArray(static_cast<uint32_t>(n), p);
}
uint8_t* put_bytes(uint32_t field, std::string_view bytes, uint8_t* p) {
  p = put_length(field, bytes.size(), p);
  return Out::WriteRawToArray(bytes.data(), static_cast<int>(bytes.size()), p);
}
uint64_t u64(int64_t v) { return static_cast<uint64_t>(v); }

size_t entry_size(const replication::Entry& e) {
  return varint_field_size(kEntryPosition, u64(e.position)) +
         varint_field_size(kEntryEnd, u64(e.end)) + varint_field_size(kEntryEpoch, u64(e.epoch)) +
         varint_field_size(kEntryIsEpochRecord, e.is_epoch_record ? 1 : 0) +
         bytes_field_size(kEntryPayload, e.payload.size()) +
         (e.is_gap ? varint_field_size(kEntryIsGap, 1) : 0);
}

size_t append_size(const replication::Append& a) {
  size_t append = varint_field_size(kAppendEpoch, u64(a.epoch)) +
                  varint_field_size(kAppendStart, u64(a.start)) +
                  varint_field_size(kAppendSync, a.sync ? 1 : 0) +
                  varint_field_size(kAppendCommitEnd, u64(a.commit_end)) +
                  varint_field_size(kAppendSession, a.session) +
                  (a.commit_only ? varint_field_size(kAppendCommitOnly, 1) : 0) +
                  (a.relaxed ? varint_field_size(kAppendRelaxed, 1) : 0);
  for (const auto& e : a.entries) append += bytes_field_size(kAppendEntries, entry_size(e));
  return append;
}

size_t message_size(const replication::Message& m, size_t append, const std::string& cluster,
                    const std::string& from_endpoint, const std::string& to_endpoint) {
  return bytes_field_size(kMessageFrom, from_endpoint.size()) +
         bytes_field_size(kMessageTo, to_endpoint.size()) +
         bytes_field_size(kMessageCluster, cluster.size()) +
         bytes_field_size(kMessageFromInstance, m.from.size()) +
         bytes_field_size(kMessageToInstance, m.to.size()) +
         bytes_field_size(kMessageAppend, append);
}

// An Append's entry up to its payload's bytes: the entry's length, its fields, the payload's
// tag and length (both encoders write the payload after it).
uint8_t* put_entry_head(const replication::Entry& e, uint8_t* p) {
  p = put_length(kAppendEntries, entry_size(e), p);
  p = put_varint(kEntryPosition, u64(e.position), p);
  p = put_varint(kEntryEnd, u64(e.end), p);
  p = put_varint(kEntryEpoch, u64(e.epoch), p);
  p = put_varint(kEntryIsEpochRecord, e.is_epoch_record ? 1 : 0, p);
  return put_length(kEntryPayload, e.payload.size(), p);
}

uint8_t* put_prefix(size_t size, uint8_t* p) {
  const auto n = static_cast<uint32_t>(size);
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>((n >> (8 * i)) & 0xFF);
  return p + 4;
}

// An Append frame's length prefix and every field before its entries, in number order as
// protobuf writes them (shared by the one-buffer and the gather-list encoders).
uint8_t* put_append_head(const replication::Message& m, const replication::Append& a, size_t append,
                         size_t size, const std::string& cluster, const std::string& from_endpoint,
                         const std::string& to_endpoint, uint8_t* p) {
  p = put_prefix(size, p);
  p = put_bytes(kMessageFrom, from_endpoint, p);
  p = put_bytes(kMessageTo, to_endpoint, p);
  p = put_bytes(kMessageCluster, cluster, p);
  p = put_bytes(kMessageFromInstance, m.from, p);
  p = put_bytes(kMessageToInstance, m.to, p);
  p = put_length(kMessageAppend, append, p);
  p = put_varint(kAppendEpoch, u64(a.epoch), p);
  p = put_varint(kAppendStart, u64(a.start), p);
  p = put_varint(kAppendSync, a.sync ? 1 : 0, p);
  return p;
}

std::string frame_append(const replication::Message& m, const replication::Append& a,
                         const std::string& cluster, const std::string& from_endpoint,
                         const std::string& to_endpoint) {
  const size_t append = append_size(a);
  const size_t size = message_size(m, append, cluster, from_endpoint, to_endpoint);
  std::string out(4 + size, '\0');
  auto* const begin = reinterpret_cast<uint8_t*>(out.data());
  uint8_t* p = put_append_head(m, a, append, size, cluster, from_endpoint, to_endpoint, begin);
  for (const auto& e : a.entries) {
    p = put_entry_head(e, p);
    // A leader's own record is written here straight from the record (no encoded copy first).
    e.payload.copy_to(reinterpret_cast<char*>(p));
    p += e.payload.size();
    if (e.is_gap) p = put_varint(kEntryIsGap, 1, p);
  }
  p = put_varint(kAppendCommitEnd, u64(a.commit_end), p);
  p = put_varint(kAppendSession, a.session, p);
  if (a.commit_only) p = put_varint(kAppendCommitOnly, 1, p);
  if (a.relaxed) p = put_varint(kAppendRelaxed, 1, p);
  out.resize(static_cast<size_t>(p - begin));  // equal unless a size above was wrong
  return out;
}

// Collects a frame's parts: small ones appended to the frame's own bytes, large ones referred to.
class FrameParts final : public replication::Payload::PartSink {
 public:
  explicit FrameParts(OutFrame& f) : f_(f) {}
  void copy(std::string_view bytes) override { f_.bytes.append(bytes); }
  void refer(std::string_view bytes) override {
    if (bytes.size() < kFramePartByReferenceBytesMin) return copy(bytes);
    close_owned();
    f_.parts.push_back(OutFrame::Part{bytes.data(), 0, bytes.size()});
    referred_ += bytes.size();
  }
  void put(const uint8_t* begin, const uint8_t* end) {
    copy(std::string_view(reinterpret_cast<const char*>(begin), static_cast<size_t>(end - begin)));
  }
  // The frame's size as written.
  size_t finish() {
    close_owned();
    return f_.bytes.size() + referred_;
  }

 private:
  void close_owned() {
    if (f_.bytes.size() > mark_) {
      f_.parts.push_back(OutFrame::Part{nullptr, mark_, f_.bytes.size() - mark_});
    }
    mark_ = f_.bytes.size();
  }
  OutFrame& f_;
  size_t mark_ = 0;
  size_t referred_ = 0;
};

// frame_append's bytes as parts: the fields written here, the payloads' large parts referred to.
OutFrame frame_append_parts(const replication::Message& m, const replication::Append& a,
                            const std::string& cluster, const std::string& from_endpoint,
                            const std::string& to_endpoint) {
  const size_t append = append_size(a);
  const size_t size = message_size(m, append, cluster, from_endpoint, to_endpoint);
  OutFrame f;
  f.size = 4 + size;
  f.keep.reserve(a.entries.size());
  FrameParts out(f);
  // Tags take one byte, lengths at most five, integers at most ten.
  std::string head(4 + 6 * 6 + from_endpoint.size() + to_endpoint.size() + cluster.size() +
                       m.from.size() + m.to.size() + 3 * 11,
                   '\0');
  auto* const begin = reinterpret_cast<uint8_t*>(head.data());
  uint8_t* p = put_append_head(m, a, append, size, cluster, from_endpoint, to_endpoint, begin);
  out.put(begin, p);
  uint8_t fields[6 + 4 * 11 + 6];
  for (const auto& e : a.entries) {
    p = put_entry_head(e, fields);
    out.put(fields, p);
    e.payload.write_parts(out);
    f.keep.push_back(e.payload);
    if (e.is_gap) out.put(fields, put_varint(kEntryIsGap, 1, fields));
  }
  p = put_varint(kAppendCommitEnd, u64(a.commit_end), fields);
  p = put_varint(kAppendSession, a.session, p);
  if (a.commit_only) p = put_varint(kAppendCommitOnly, 1, p);
  if (a.relaxed) p = put_varint(kAppendRelaxed, 1, p);
  out.put(fields, p);
  if (out.finish() != f.size) {  // a payload wrote other than its size() bytes: not sent so
    return OutFrame(frame_append(m, a, cluster, from_endpoint, to_endpoint));
  }
  return f;
}

void to_proto(replication::Entry& e, internal::Entry* out) {
  out->set_position(e.position);
  out->set_end(e.end);
  out->set_epoch(e.epoch);
  out->set_is_epoch_record(e.is_epoch_record);
  out->set_payload(e.payload.data(), e.payload.size());
  if (e.is_gap) out->set_is_gap(true);
}

replication::Entry from_proto(internal::Entry& e) {
  return replication::Entry{
      e.position(), e.end(), e.epoch(), e.is_epoch_record(), std::move(*e.mutable_payload()),
      e.is_gap()};
}

}  // namespace

std::string frame(const internal::ReplicationMessage& m) {
  const size_t size = m.ByteSizeLong();
  std::string out(4 + size, '\0');
  const auto n = static_cast<uint32_t>(size);
  for (int i = 0; i < 4; ++i)
    out[static_cast<size_t>(i)] = static_cast<char>((n >> (8 * i)) & 0xFF);
  m.SerializeWithCachedSizesToArray(reinterpret_cast<uint8_t*>(out.data() + 4));
  return out;
}

OutFrame encode_out_frame(replication::Message m, const std::string& cluster,
                          const std::string& from_endpoint, const std::string& to_endpoint) {
  if (const auto* a = std::get_if<replication::Append>(&m.body)) {
    for (const auto& e : a->entries) {
      if (e.payload.size() >= kFramePartByReferenceBytesMin) {
        return frame_append_parts(m, *a, cluster, from_endpoint, to_endpoint);
      }
    }
  }
  return OutFrame(encode_frame(std::move(m), cluster, from_endpoint, to_endpoint));
}

std::string encode_frame(replication::Message m, const std::string& cluster,
                         const std::string& from_endpoint, const std::string& to_endpoint) {
  if (const auto* a = std::get_if<replication::Append>(&m.body)) {
    return frame_append(m, *a, cluster, from_endpoint, to_endpoint);
  }
  return frame(to_proto(std::move(m), cluster, from_endpoint, to_endpoint));
}

internal::ReplicationMessage to_proto(replication::Message m, const std::string& cluster,
                                      const std::string& from_endpoint,
                                      const std::string& to_endpoint) {
  internal::ReplicationMessage out;
  out.set_from(from_endpoint);
  out.set_to(to_endpoint);
  out.set_cluster(cluster);
  out.set_from_instance(m.from);
  out.set_to_instance(m.to);
  std::visit(
      [&](auto& b) {
        using T = std::decay_t<decltype(b)>;
        if constexpr (std::is_same_v<T, replication::VoteRequest>) {
          auto* p = out.mutable_vote_request();
          p->set_epoch(b.epoch);
          p->set_last_epoch(b.last_epoch);
          p->set_log_end(b.log_end);
          p->set_priority(b.priority);
          p->set_pre(b.pre);
        } else if constexpr (std::is_same_v<T, replication::VoteResponse>) {
          auto* p = out.mutable_vote_response();
          p->set_epoch(b.epoch);
          p->set_granted(b.granted);
          p->set_pre(b.pre);
        } else if constexpr (std::is_same_v<T, replication::Subscribe>) {
          auto* p = out.mutable_subscribe();
          p->set_epoch(b.epoch);
          p->set_log_end(b.log_end);
          p->set_session(b.session);
          for (const auto& e : b.epochs) {
            auto* x = p->add_epochs();
            x->set_number(e.number);
            x->set_position(e.position);
            x->set_id(to_raw_bytes(e.id));
          }
        } else if constexpr (std::is_same_v<T, replication::Append>) {
          auto* p = out.mutable_append();
          p->set_epoch(b.epoch);
          p->set_start(b.start);
          p->set_sync(b.sync);
          p->set_commit_end(b.commit_end);
          p->set_session(b.session);
          if (b.commit_only) p->set_commit_only(true);
          if (b.relaxed) p->set_relaxed(true);
          p->mutable_entries()->Reserve(static_cast<int>(b.entries.size()));
          for (auto& e : b.entries) to_proto(e, p->add_entries());
        } else if constexpr (std::is_same_v<T, replication::AppendAck>) {
          auto* p = out.mutable_append_ack();
          p->set_epoch(b.epoch);
          p->set_log_end(b.log_end);
          p->set_durable_end(b.durable_end);
          p->set_session(b.session);
        }
      },
      m.body);
  return out;
}

std::optional<replication::Message> from_proto(internal::ReplicationMessage m) {
  return take_from_proto(m);
}

std::optional<replication::Message> take_from_proto(internal::ReplicationMessage& m) {
  replication::Message out;
  out.from = std::move(*m.mutable_from_instance());
  out.to = std::move(*m.mutable_to_instance());
  switch (m.body_case()) {
    case internal::ReplicationMessage::kVoteRequest: {
      const auto& p = m.vote_request();
      out.body =
          replication::VoteRequest{p.epoch(), p.last_epoch(), p.log_end(), p.priority(), p.pre()};
      break;
    }
    case internal::ReplicationMessage::kVoteResponse:
      out.body = replication::VoteResponse{m.vote_response().epoch(), m.vote_response().granted(),
                                           m.vote_response().pre()};
      break;
    case internal::ReplicationMessage::kSubscribe: {
      const auto& p = m.subscribe();
      replication::Subscribe s{p.epoch(), p.log_end(), {}, p.session()};
      for (const auto& e : p.epochs()) {
        const auto id = from_raw_bytes(e.id());
        if (!id) return std::nullopt;
        s.epochs.push_back(replication::EpochRecord{e.number(), e.position(), *id});
      }
      out.body = std::move(s);
      break;
    }
    case internal::ReplicationMessage::kAppend: {
      auto& p = *m.mutable_append();
      replication::Append a{p.epoch(),      p.start(),   p.sync(),        {},
                            p.commit_end(), p.session(), p.commit_only(), p.relaxed()};
      a.entries.reserve(static_cast<size_t>(p.entries_size()));
      for (auto& e : *p.mutable_entries()) a.entries.push_back(from_proto(e));
      out.body = std::move(a);
      break;
    }
    case internal::ReplicationMessage::kAppendAck: {
      const auto& p = m.append_ack();
      out.body = replication::AppendAck{p.epoch(), p.log_end(), p.durable_end(), p.session()};
      break;
    }
    default:
      return std::nullopt;
  }
  return out;
}

}  // namespace chorus::cluster
