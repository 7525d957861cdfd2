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

// The tag and length of a bytes field (at most 1 + 5 bytes).
uint8_t* put_length(uint32_t field, size_t size, uint8_t* p) {
  p = Out::WriteTagToArray(field << 3 | kLengthDelimited, p);
  return Out::WriteVarint32ToArray(static_cast<uint32_t>(size), p);
}

// The fields before the data (record_bound less the data and metadata available).
uint8_t* put_record_head(const EventRecord& r, uint8_t* p) {
  const int flags =
      (r.data_is_json ? kFlagDataJson : 0) | (r.metadata_is_json ? kFlagMetadataJson : 0);
  p = put_bytes(1, r.stream.data(), r.stream.size(), p);
  p = put_varint(2, static_cast<uint64_t>(r.number), p);
  p = put_bytes(3, r.event_id.data, 16, p);  // the id's bytes in RFC order (to_raw_bytes)
  p = put_bytes(4, r.event_type.data(), r.event_type.size(), p);
  p = put_varint(5, static_cast<uint64_t>(static_cast<int64_t>(flags)), p);
  return put_varint(6, static_cast<uint64_t>(r.created_ms), p);
}

// Writes the record at p (record_bound bytes available); returns the end.
uint8_t* put_record(const EventRecord& r, uint8_t* p) {
  p = put_record_head(r, p);
  p = put_bytes(7, r.data.data(), r.data.size(), p);
  p = put_bytes(8, r.metadata.data(), r.metadata.size(), p);
  return p;
}

size_t bytes_field_size(size_t size) {
  return 1 + Out::VarintSize32(static_cast<uint32_t>(size)) + size;
}

size_t varint_field_size(uint64_t value) { return 1 + Out::VarintSize64(value); }

}  // namespace

void RecordPayload::write_to(char* out) const {
  put_record(record, reinterpret_cast<uint8_t*>(out));
}

void RecordPayload::write_parts(replication::Payload::PartSink& out) const {
  const EventRecord& r = record;
  std::string head(record_bound(r) - r.data.size() - r.metadata.size(), '\0');
  auto* const begin = reinterpret_cast<uint8_t*>(head.data());
  const uint8_t* const end = put_length(7, r.data.size(), put_record_head(r, begin));
  out.copy(std::string_view(head.data(), static_cast<size_t>(end - begin)));
  out.refer(r.data);
  uint8_t tag[8];
  const uint8_t* const tag_end = put_length(8, r.metadata.size(), tag);
  out.copy(
      std::string_view(reinterpret_cast<const char*>(tag), static_cast<size_t>(tag_end - tag)));
  out.refer(r.metadata);
}

std::string_view RecordPayload::bytes() const {
  std::call_once(encoded_once_, [this] { encoded_ = encode_record(record); });
  return encoded_;
}

size_t RecordPayload::size() const {
  const EventRecord& r = record;
  const int flags =
      (r.data_is_json ? kFlagDataJson : 0) | (r.metadata_is_json ? kFlagMetadataJson : 0);
  return bytes_field_size(r.stream.size()) + varint_field_size(static_cast<uint64_t>(r.number)) +
         bytes_field_size(16) + bytes_field_size(r.event_type.size()) +
         varint_field_size(static_cast<uint64_t>(static_cast<int64_t>(flags))) +
         varint_field_size(static_cast<uint64_t>(r.created_ms)) + bytes_field_size(r.data.size()) +
         bytes_field_size(r.metadata.size());
}

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
  const std::shared_ptr<const std::string> shared = buffer;
  auto* begin = reinterpret_cast<uint8_t*>(buffer->data());
  uint8_t* p = begin;
  std::vector<replication::Payload> out;
  out.reserve(records.size());
  for (const auto& r : records) {
    uint8_t* const start = p;
    p = put_record(r, p);
    out.emplace_back(shared, static_cast<size_t>(start - begin), static_cast<size_t>(p - start));
  }
  buffer->resize(static_cast<size_t>(p - begin));  // shrinks in place: the slices stay valid
  return out;
}

namespace {

// LogRecord read straight into the record. protobuf's parser made a heap string object for each
// field, which the record then emptied: four allocations per event on every follower. It accepts
// exactly what internal::LogRecord::ParseFromArray accepts (a unit test compares the two on
// mutated records): wire types, required fields, unknown fields and groups skipped, the last
// occurrence of a field winning.
class RecordReader {
 public:
  explicit RecordReader(std::string_view bytes)
      : p_(reinterpret_cast<const uint8_t*>(bytes.data())), end_(p_ + bytes.size()) {}

  bool read(EventRecord& r) {
    uint32_t seen = 0;
    int32_t flags = 0;
    while (p_ != end_) {
      uint32_t tag = 0;
      if (!read_tag(tag)) return false;
      const uint32_t field = tag >> 3;
      const uint32_t type = tag & 7;
      bool known = true;
      if (type == kLengthDelimited && (field == 1 || field == 4 || field == 7 || field == 8)) {
        std::string* out = field == 1   ? &r.stream
                           : field == 4 ? &r.event_type
                           : field == 7 ? &r.data
                                        : &r.metadata;
        size_t size = 0;
        if (!read_size(size)) return false;
        out->assign(reinterpret_cast<const char*>(p_), size);
        p_ += size;
      } else if (type == kLengthDelimited && field == 3) {
        size_t size = 0;
        if (!read_size(size)) return false;
        r.event_id = from_raw_bytes(std::string_view(reinterpret_cast<const char*>(p_), size))
                         .value_or(Guid{});
        p_ += size;
      } else if (type == kVarint && (field == 2 || field == 5 || field == 6)) {
        uint64_t v = 0;
        if (!read_varint(v)) return false;
        if (field == 2) r.number = static_cast<int64_t>(v);
        if (field == 5) flags = static_cast<int32_t>(v);
        if (field == 6) r.created_ms = static_cast<int64_t>(v);
      } else {
        known = false;
        if (!skip(tag, 0)) return false;
      }
      if (known) seen |= 1u << field;
    }
    constexpr uint32_t kRequired =
        (1u << 1) | (1u << 2) | (1u << 3) | (1u << 4) | (1u << 5) | (1u << 6) | (1u << 7);
    if ((seen & kRequired) != kRequired) return false;
    r.data_is_json = (flags & kFlagDataJson) != 0;
    r.metadata_is_json = (flags & kFlagMetadataJson) != 0;
    return true;
  }

 private:
  static constexpr int kGroupDepthMax = 100;  // protobuf's default recursion limit

  bool read_varint(uint64_t& v) {
    v = 0;
    for (int i = 0; i < 10; ++i) {
      if (p_ == end_) return false;
      const uint8_t b = *p_++;
      v |= static_cast<uint64_t>(b & 0x7F) << (7 * i);
      if ((b & 0x80) == 0) return true;
    }
    return false;  // more than ten bytes
  }
  // A tag: at most five bytes (bits beyond 32 dropped, as protobuf does), field number above 0.
  bool read_tag(uint32_t& tag) {
    uint64_t v = 0;
    const uint8_t* start = p_;
    if (!read_varint(v) || p_ - start > 5) return false;
    tag = static_cast<uint32_t>(v);
    return (tag >> 3) != 0;
  }
  // A length: at most five bytes and below 2^31, within the input.
  bool read_size(size_t& size) {
    uint64_t v = 0;
    const uint8_t* start = p_;
    if (!read_varint(v) || p_ - start > 5 || v > 0x7FFFFFFFu) return false;
    if (v > static_cast<uint64_t>(end_ - p_)) return false;
    size = static_cast<size_t>(v);
    return true;
  }
  bool skip(uint32_t tag, int depth) {
    switch (tag & 7) {
      case kVarint: {
        uint64_t v = 0;
        return read_varint(v);
      }
      case 1:  // fixed64
        if (end_ - p_ < 8) return false;
        p_ += 8;
        return true;
      case kLengthDelimited: {
        size_t size = 0;
        if (!read_size(size)) return false;
        p_ += size;
        return true;
      }
      case 3: {  // a group: skip to its end tag
        if (depth >= kGroupDepthMax) return false;
        while (true) {
          if (p_ == end_) return false;
          uint32_t inner = 0;
          if (!read_tag(inner)) return false;
          if ((inner & 7) == 4) return (inner >> 3) == (tag >> 3);
          if (!skip(inner, depth + 1)) return false;
        }
      }
      case 5:  // fixed32
        if (end_ - p_ < 4) return false;
        p_ += 4;
        return true;
      default:  // an end-group outside a group, or types 6 and 7
        return false;
    }
  }

  const uint8_t* p_;
  const uint8_t* end_;
};

}  // namespace

bool read_record(std::string_view bytes, EventRecord& record) {
  return RecordReader(bytes).read(record);
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
  EventRecord r;
  if (!read_record(entry.payload.view(), r)) return std::nullopt;
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
