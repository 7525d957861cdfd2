// Conversions between the replication core's entries (opaque payloads) and what storage keeps:
// event records (serialized as chorus.internal.LogRecord) and epoch records. Pure; any thread.
#pragma once

#include "worker/engine/storage.hpp"
#include "worker/replication/core.hpp"

#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace chorus {

std::string encode_record(const EventRecord& record);
// The records encoded one after another into one buffer, one payload for each pointing into it:
// a burst's proposal costs one allocation instead of one per record.
std::vector<replication::Payload> encode_records(const std::vector<EventRecord>& records);
// A record a leader proposes, as it is: its LogRecord bytes are written on demand (into the
// Appends to followers), never when the node writes alone. Storage and the commit notices share
// `record` (an aliasing pointer), so it is not copied either. `record`'s positions are set after
// the proposal (they are not part of its bytes); nothing else changes once proposed.
class RecordPayload final : public replication::Payload::Source {
 public:
  explicit RecordPayload(EventRecord r) : record(std::move(r)) {}
  void write_to(char* out) const override;
  std::string_view bytes() const override;
  // The fields before the data, and between data and metadata, copied; the data and metadata
  // referred to in place (`record` never changes once proposed).
  void write_parts(replication::Payload::PartSink& out) const override;
  // encode_record(record).size(), without encoding.
  size_t size() const;

  EventRecord record;

 private:
  mutable std::once_flag encoded_once_;
  mutable std::string encoded_;
};

// Reads a LogRecord's bytes into `record`'s fields (not its positions); false when protobuf's
// parser would refuse them.
bool read_record(std::string_view bytes, EventRecord& record);
// nullopt when the payload is not a valid record.
std::optional<StoredEntry> decode_entry(const replication::Entry& entry);
replication::Entry encode_entry(const StoredEntry& stored);

}  // namespace chorus
