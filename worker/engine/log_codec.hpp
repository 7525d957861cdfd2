// Conversions between the replication core's entries (opaque payloads) and what storage keeps:
// event records (serialized as chorus.internal.LogRecord) and epoch records. Pure; any thread.
#pragma once

#include "worker/engine/storage.hpp"
#include "worker/replication/core.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace chorus {

std::string encode_record(const EventRecord& record);
// The records encoded one after another into one buffer, one payload for each pointing into it:
// a burst's proposal costs one allocation instead of one per record.
std::vector<replication::Payload> encode_records(const std::vector<EventRecord>& records);
// Reads a LogRecord's bytes into `record`'s fields (not its positions); false when protobuf's
// parser would refuse them.
bool read_record(std::string_view bytes, EventRecord& record);
// nullopt when the payload is not a valid record.
std::optional<StoredEntry> decode_entry(const replication::Entry& entry);
replication::Entry encode_entry(const StoredEntry& stored);

}  // namespace chorus
