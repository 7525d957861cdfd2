// Append frames read without protobuf (see append_frame.hpp). protobuf's parser copied every
// entry's payload into a string of its own (then a shared buffer each) on a per-message arena;
// here the frame is the one buffer. Field numbers as in common/proto/replication.proto.
#include "worker/cluster/append_frame.hpp"

#include <cstdint>

namespace chorus::cluster {
namespace {

constexpr uint32_t kVarint = 0;
constexpr uint32_t kLengthDelimited = 2;
// ReplicationMessage: from 1, to 2, cluster 3, from_instance 4, to_instance 5, append 13.
constexpr uint32_t kMessageAppend = 13;
constexpr uint32_t kMessageRequired = (1u << 1) | (1u << 2) | (1u << 3) | (1u << kMessageAppend);
// Append: epoch 1, start 2, sync 3, entries 4 (repeated), commit_end 5, session 6,
// commit_only 7, relaxed 8 (optional).
constexpr uint32_t kAppendEntries = 4;
constexpr uint32_t kAppendRequired = (1u << 1) | (1u << 2) | (1u << 3) | (1u << 5) | (1u << 6);
// Entry: position 1, end 2, epoch 3, is_epoch_record 4, payload 5, is_gap 6 (optional).
constexpr uint32_t kEntryPayload = 5;
constexpr uint32_t kEntryRequired = (1u << 1) | (1u << 2) | (1u << 3) | (1u << 4) | (1u << 5);

// Reads [p, end) of the frame. Varints, tags and lengths as protobuf's parser takes them (the
// same rules as log_codec.cpp's RecordReader); anything it would refuse, or read differently
// (a repeated singular field, whose last occurrence wins), makes the reading fail.
class Reader {
 public:
  Reader(const std::string& frame, size_t begin, size_t end)
      : base_(reinterpret_cast<const uint8_t*>(frame.data())),
        p_(base_ + begin),
        end_(base_ + end) {}

  bool done() const { return p_ == end_; }
  size_t offset() const { return static_cast<size_t>(p_ - base_); }

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
  // A tag: field numbers 1..31 only (every field read here has one); false for anything else.
  bool read_field(uint32_t& field, uint32_t& type) {
    uint64_t v = 0;
    const uint8_t* start = p_;
    if (!read_varint(v) || p_ - start > 5) return false;
    const auto tag = static_cast<uint32_t>(v);
    field = tag >> 3;
    type = tag & 7;
    if (field == 0 || field > 31) return false;
    return true;
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
  bool read_bytes(std::string_view& out) {
    size_t size = 0;
    if (!read_size(size)) return false;
    out = std::string_view(reinterpret_cast<const char*>(p_), size);
    p_ += size;
    return true;
  }
  // The sub-message's range: [offset(), offset() + size) before skipping it.
  bool read_range(size_t& begin, size_t& end) {
    size_t size = 0;
    if (!read_size(size)) return false;
    begin = offset();
    end = begin + size;
    p_ += size;
    return true;
  }

 private:
  const uint8_t* base_;
  const uint8_t* p_;
  const uint8_t* end_;
};

// Marks `field` seen; false when it was seen before.
bool first_time(uint32_t field, uint32_t& seen) {
  if ((seen & (1u << field)) != 0) return false;
  seen |= 1u << field;
  return true;
}

std::optional<replication::Entry> read_entry(const std::shared_ptr<const std::string>& frame,
                                             size_t begin, size_t end) {
  Reader r(*frame, begin, end);
  replication::Entry e;
  uint32_t seen = 0;
  while (!r.done()) {
    uint32_t field = 0, type = 0;
    if (!r.read_field(field, type) || !first_time(field, seen)) return std::nullopt;
    if (field == kEntryPayload && type == kLengthDelimited) {
      std::string_view bytes;
      if (!r.read_bytes(bytes)) return std::nullopt;
      const size_t offset = static_cast<size_t>(bytes.data() - frame->data());
      e.payload = replication::Payload(frame, offset, bytes.size());
      continue;
    }
    uint64_t v = 0;
    if (type != kVarint || !r.read_varint(v)) return std::nullopt;
    switch (field) {
      case 1:
        e.position = static_cast<int64_t>(v);
        break;
      case 2:
        e.end = static_cast<int64_t>(v);
        break;
      case 3:
        e.epoch = static_cast<int64_t>(v);
        break;
      case 4:
        e.is_epoch_record = v != 0;
        break;
      case 6:
        e.is_gap = v != 0;
        break;
      default:
        return std::nullopt;
    }
  }
  if ((seen & kEntryRequired) != kEntryRequired) return std::nullopt;
  return e;
}

bool read_append(const std::shared_ptr<const std::string>& frame, size_t begin, size_t end,
                 replication::Append& a) {
  Reader r(*frame, begin, end);
  uint32_t seen = 0;
  while (!r.done()) {
    uint32_t field = 0, type = 0;
    if (!r.read_field(field, type)) return false;
    if (field == kAppendEntries && type == kLengthDelimited) {
      size_t entry_begin = 0, entry_end = 0;
      if (!r.read_range(entry_begin, entry_end)) return false;
      auto e = read_entry(frame, entry_begin, entry_end);
      if (!e) return false;
      a.entries.push_back(std::move(*e));
      continue;
    }
    uint64_t v = 0;
    if (!first_time(field, seen) || type != kVarint || !r.read_varint(v)) return false;
    switch (field) {
      case 1:
        a.epoch = static_cast<int64_t>(v);
        break;
      case 2:
        a.start = static_cast<int64_t>(v);
        break;
      case 3:
        a.sync = v != 0;
        break;
      case 5:
        a.commit_end = static_cast<int64_t>(v);
        break;
      case 6:
        a.session = v;
        break;
      case 7:
        a.commit_only = v != 0;
        break;
      case 8:
        a.relaxed = v != 0;
        break;
      default:
        return false;
    }
  }
  return (seen & kAppendRequired) == kAppendRequired;
}

}  // namespace

std::optional<AppendFrame> read_append_frame(const std::shared_ptr<const std::string>& frame) {
  Reader r(*frame, 0, frame->size());
  AppendFrame out;
  uint32_t seen = 0;
  while (!r.done()) {
    uint32_t field = 0, type = 0;
    if (!r.read_field(field, type) || !first_time(field, seen)) return std::nullopt;
    if (type != kLengthDelimited) return std::nullopt;
    if (field == kMessageAppend) {
      size_t begin = 0, end = 0;
      if (!r.read_range(begin, end) || !read_append(frame, begin, end, out.append)) {
        return std::nullopt;
      }
      continue;
    }
    std::string_view* text = field == 1   ? &out.from
                             : field == 2 ? &out.to
                             : field == 3 ? &out.cluster
                             : field == 4 ? &out.from_instance
                             : field == 5 ? &out.to_instance
                                          : nullptr;
    if (text == nullptr || !r.read_bytes(*text)) return std::nullopt;
  }
  if ((seen & kMessageRequired) != kMessageRequired) return std::nullopt;
  return out;
}

}  // namespace chorus::cluster
