// Log record codec.
#include "worker/engine/log_codec.hpp"

#include "replication.pb.h"

namespace chorus {
namespace {

constexpr int kFlagDataJson = 1;
constexpr int kFlagMetadataJson = 2;

}  // namespace

std::string encode_record(const EventRecord& r) {
  internal::LogRecord m;
  m.set_stream(r.stream);
  m.set_number(r.number);
  m.set_event_id(to_raw_bytes(r.event_id));
  m.set_event_type(r.event_type);
  m.set_flags((r.data_is_json ? kFlagDataJson : 0) | (r.metadata_is_json ? kFlagMetadataJson : 0));
  m.set_created_ms(r.created_ms);
  m.set_data(r.data);
  m.set_metadata(r.metadata);
  return m.SerializeAsString();
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
    const auto space = entry.payload.rfind(' ');
    row.leader = space == std::string::npos ? "" : entry.payload.substr(space + 1);
    return row;
  }
  internal::LogRecord m;
  if (!m.ParseFromString(entry.payload)) return std::nullopt;
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
  const auto& r = std::get<EventRecord>(stored);
  e.position = r.position.prepare;
  e.end = r.log_end;
  e.payload = encode_record(r);
  return e;
}

}  // namespace chorus
