// Log record codec.
#include "worker/engine/log_codec.hpp"

#include "replication.pb.h"

#include <google/protobuf/io/coded_stream.h>

namespace chorus {
namespace {

constexpr int kFlagDataJson = 1;
constexpr int kFlagMetadataJson = 2;

// LogRecord's wire format written straight into one buffer: building the message first copied
// every field (stream, type, data, metadata) into it and allocated each, once per event.
// The bytes are those of internal::LogRecord::SerializeAsString (a unit test compares them).

using Out = google::protobuf::io::CodedOutputStream;
constexpr uint32_t kVarint = 0;
constexpr uint32_t kLengthDelimited = 2;

uint8_t* put_varint(uint32_t field, uint64_t value, uint8_t* p) {
  p = Out::WriteTagToArray(field << 3 | kVarint, p);
  return Out::WriteVarint64ToArray(value, p);
}

uint8_t* put_bytes(uint32_t field, const void* data, size_t size, uint8_t* p) {
  p = Out::WriteTagToArray(field << 3 | kLengthDelimited, p);
  p = Out::WriteVarint32ToArray(static_cast<uint32_t>(size), p);
  return Out::WriteRawToArray(data, static_cast<int>(size), p);
}

// Tags take one byte (fields 1-8), lengths at most 5 and integers at most 10.
size_t record_bound(const EventRecord& r) {
  return r.stream.size() + 16 + r.event_type.size() + r.data.size() + r.metadata.size() + 8 +
         5 * 5 + 3 * 10;
}

// Writes the record at p (record_bound bytes available); returns the end.
uint8_t* put_record(const EventRecord& r, uint8_t* p) {
  const int flags =
      (r.data_is_json ? kFlagDataJson : 0) | (r.metadata_is_json ? kFlagMetadataJson : 0);
  p = put_bytes(1, r.stream.data(), r.stream.size(), p);
  p = put_varint(2, static_cast<uint64_t>(r.number), p);
  p = put_bytes(3, r.event_id.data, 16, p);  // the id's bytes in RFC order (to_raw_bytes)
  p = put_bytes(4, r.event_type.data(), r.event_type.size(), p);
  p = put_varint(5, static_cast<uint64_t>(static_cast<int64_t>(flags)), p);
  p = put_varint(6, static_cast<uint64_t>(r.created_ms), p);
  p = put_bytes(7, r.data.data(), r.data.size(), p);
  p = put_bytes(8, r.metadata.data(), r.metadata.size(), p);
  return p;
}

}  // namespace

std::string encode_record(const EventRecord& r) {
  std::string out(record_bound(r), '\0');
  auto* begin = reinterpret_cast<uint8_t*>(out.data());
  out.resize(static_cast<size_t>(put_record(r, begin) - begin));
  return out;
}

std::vector<replication::Payload> encode_records(const std::vector<EventRecord>& records) {
  size_t bound = 0;
  for (const auto& r : records) bound += record_bound(r);
  auto buffer = std::make_shared<std::string>(bound, '\0');
  auto* begin = reinterpret_cast<uint8_t*>(buffer->data());
  uint8_t* p = begin;
  std::vector<std::pair<size_t, size_t>> spans;
  spans.reserve(records.size());
  for (const auto& r : records) {
    uint8_t* const start = p;
    p = put_record(r, p);
    spans.emplace_back(static_cast<size_t>(start - begin), static_cast<size_t>(p - start));
  }
  buffer->resize(static_cast<size_t>(p - begin));  // shrinks in place: the slices stay valid
  std::shared_ptr<const std::string> shared = std::move(buffer);
  std::vector<replication::Payload> out;
  out.reserve(records.size());
  for (const auto& [offset, size] : spans) out.emplace_back(shared, offset, size);
  return out;
}

std::optional<StoredEntry> decode_entry(const replication::Entry& entry) {
  if (entry.is_gap) {
    if (entry.end <= entry.position || entry.is_epoch_record) return std::nullopt;
    return GapRow{entry.position, entry.end};
  }
  if (entry.is_epoch_record) {
    const auto record = replication::Core::parse_epoch_payload(entry.payload);
    if (!record) return std::nullopt;
    EpochRow row;
    row.number = record->number;
    row.position = entry.position;
    row.end = entry.end;
    row.id = record->id;
    const std::string_view payload = entry.payload;
    const auto space = payload.rfind(' ');
    row.leader = space == std::string_view::npos ? "" : std::string(payload.substr(space + 1));
    return row;
  }
  internal::LogRecord m;
  if (!m.ParseFromArray(entry.payload.data(), static_cast<int>(entry.payload.size()))) {
    return std::nullopt;
  }
  EventRecord r;
  // The parsed message is thrown away: its strings move instead of being copied.
  r.stream = std::move(*m.mutable_stream());
  r.number = m.number();
  r.event_id = from_raw_bytes(m.event_id()).value_or(Guid{});
  r.event_type = std::move(*m.mutable_event_type());
  r.data_is_json = (m.flags() & kFlagDataJson) != 0;
  r.metadata_is_json = (m.flags() & kFlagMetadataJson) != 0;
  r.created_ms = m.created_ms();
  r.data = std::move(*m.mutable_data());
  r.metadata = std::move(*m.mutable_metadata());
  r.position = Position{entry.end, entry.position};
  r.log_end = entry.end;
  return r;
}

replication::Entry encode_entry(const StoredEntry& stored) {
  replication::Entry e;
  if (const auto* gap = std::get_if<GapRow>(&stored)) {
    e.position = gap->position;
    e.end = gap->end;
    e.is_gap = true;
    return e;
  }
  if (const auto* epoch = std::get_if<EpochRow>(&stored)) {
    e.position = epoch->position;
    e.end = epoch->end;
    e.epoch = epoch->number;
    e.is_epoch_record = true;
    e.payload = replication::Core::epoch_payload(
        replication::EpochRecord{epoch->number, epoch->position, epoch->id}, epoch->leader);
    return e;
  }
  const auto& r = *event_record(stored);
  e.position = r.position.prepare;
  e.end = r.log_end;
  e.payload = encode_record(r);
  return e;
}

}  // namespace chorus
