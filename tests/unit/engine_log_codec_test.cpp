// The log record codec: encode_record writes LogRecord's wire format by hand, so its bytes are
// compared with protobuf's own serialization, and decoding gives the record back.
#include "worker/engine/log_codec.hpp"

#include "replication.pb.h"
#include "tests/unit/event_record_checks.hpp"

#include <gtest/gtest.h>

#include <limits>
#include <random>

namespace chorus {
namespace {

std::string by_protobuf(const EventRecord& r) {
  internal::LogRecord m;
  m.set_stream(r.stream);
  m.set_number(r.number);
  m.set_event_id(to_raw_bytes(r.event_id));
  m.set_event_type(r.event_type);
  m.set_flags((r.data_is_json ? 1 : 0) | (r.metadata_is_json ? 2 : 0));
  m.set_created_ms(r.created_ms);
  m.set_data(r.data);
  m.set_metadata(r.metadata);
  return m.SerializeAsString();
}

EventRecord record(std::string stream, int64_t number, std::string data, std::string metadata) {
  EventRecord r;
  r.stream = std::move(stream);
  r.number = number;
  r.event_id = random_guid();
  r.event_type = "SomethingHappened";
  r.data_is_json = true;
  r.created_ms = 1'764'700'000'000;
  r.data = std::move(data);
  r.metadata = std::move(metadata);
  r.position = Position{500, 100};
  r.log_end = 500;
  return r;
}

TEST(LogCodec, EncodesAsProtobufAndDecodesBack) {
  std::vector<EventRecord> cases = {
      record("s", 0, "{}", ""),
      record("a-stream-with-a-longer-name", 123456789, std::string(300, 'x'), "{\"m\":1}"),
      record("$$meta", -1, "", ""),  // a negative number takes ten bytes
      record("tombstoned", kDeletedStreamNumber, "", ""),
      record(std::string(200, 's'), 1, std::string(70'000, '\0'), std::string(20'000, 'm')),
  };
  cases[2].metadata_is_json = true;
  cases[2].created_ms = -5;
  for (const auto& r : cases) {
    const auto bytes = encode_record(r);
    EXPECT_EQ(bytes, by_protobuf(r)) << r.stream;
    replication::Entry e;
    e.position = 100;
    e.end = 500;
    e.payload = bytes;
    const auto decoded = decode_entry(e);
    ASSERT_TRUE(decoded.has_value());
    const auto* back = std::get_if<EventRecord>(&*decoded);
    ASSERT_NE(back, nullptr);
    test_support::expect_same_event(*back, r);
    EXPECT_EQ(back->position.prepare, 100);
    EXPECT_EQ(back->log_end, 500);
  }
}

// A record proposed as it is (RecordPayload): its size, the bytes it writes on demand and its
// bytes in one piece are encode_record's, and a payload made of it reads as those bytes.
TEST(LogCodec, ARecordPayloadWritesTheRecordsBytesOnDemand) {
  std::vector<EventRecord> cases = {
      record("s", 0, "{}", ""),
      record("a-stream-with-a-longer-name", 123456789, std::string(300, 'x'), "{\"m\":1}"),
      record("$$meta", -1, "", ""),
      record("tombstoned", kDeletedStreamNumber, "", ""),
      record(std::string(200, 's'), 1, std::string(70'000, '\0'), std::string(20'000, 'm')),
  };
  cases[2].metadata_is_json = true;
  cases[2].created_ms = -5;
  for (const auto& r : cases) {
    const std::string expected = encode_record(r);
    auto source = std::make_shared<RecordPayload>(r);
    EXPECT_EQ(source->size(), expected.size()) << r.stream;
    std::string written(expected.size() + 1, '#');
    source->write_to(written.data());
    EXPECT_EQ(written.substr(0, expected.size()), expected) << r.stream;
    EXPECT_EQ(written.back(), '#') << "wrote past its size: " << r.stream;
    const replication::Payload payload(source, source->size());
    EXPECT_EQ(payload, expected) << r.stream;
    std::string copied(expected.size(), '\0');
    payload.copy_to(copied.data());
    EXPECT_EQ(copied, expected) << r.stream;
  }
}

// A frame to a follower takes a record in parts (Payload::write_parts): the parts are
// encode_record's bytes, and the data and metadata are handed over in place, not copied.
class Parts final : public replication::Payload::PartSink {
 public:
  void copy(std::string_view bytes) override { parts.push_back({std::string(bytes), nullptr}); }
  void refer(std::string_view bytes) override {
    parts.push_back({std::string(bytes), bytes.data()});
  }
  std::string joined() const {
    std::string out;
    for (const auto& p : parts) out += p.bytes;
    return out;
  }
  struct Part {
    std::string bytes;
    const char* referred;  // where a referred part's bytes were; null when copied
  };
  std::vector<Part> parts;
};

TEST(LogCodec, ARecordPayloadHandsItsDataAndMetadataOverInPlace) {
  std::vector<EventRecord> cases = {
      record("s", 0, "{}", ""),
      record("$$meta", -1, "", ""),
      record(std::string(200, 's'), 1, std::string(3 << 20, 'd'), std::string(70'000, 'm')),
  };
  cases[1].created_ms = -5;
  for (const auto& r : cases) {
    auto source = std::make_shared<RecordPayload>(r);
    Parts parts;
    replication::Payload(source, source->size()).write_parts(parts);
    EXPECT_EQ(parts.joined(), encode_record(r)) << r.stream;
    // head, data, metadata's tag and length, metadata
    ASSERT_EQ(parts.parts.size(), 4u) << r.stream;
    EXPECT_EQ(parts.parts[1].referred, source->record.data.data()) << r.stream;
    EXPECT_EQ(parts.parts[3].referred, source->record.metadata.data()) << r.stream;
  }
  // A payload of its own bytes is one part, referred to where it is.
  const replication::Payload own(std::string(100, 'o'));
  Parts parts;
  own.write_parts(parts);
  ASSERT_EQ(parts.parts.size(), 1u);
  EXPECT_EQ(parts.parts[0].referred, own.data());
}

// A burst encoded into one buffer: each payload holds exactly that record's bytes.
TEST(LogCodec, EncodesABurstIntoOneBufferOfSlices) {
  const std::vector<EventRecord> burst = {
      record("s", 0, "{}", ""),
      record(std::string(200, 's'), 1, std::string(70'000, 'd'), std::string(20'000, 'm')),
      record("$$meta", -1, "", ""),
  };
  const auto payloads = encode_records(burst);
  ASSERT_EQ(payloads.size(), burst.size());
  for (size_t i = 0; i < burst.size(); ++i) {
    EXPECT_EQ(payloads[i], encode_record(burst[i])) << i;
    if (i > 0) {
      EXPECT_EQ(payloads[i].data(), payloads[i - 1].data() + payloads[i - 1].size());
    }
  }
  EXPECT_TRUE(encode_records({}).empty());
}

// read_record accepts exactly what protobuf's parser accepts, and reads the same fields: records
// with random bytes flipped, cut, inserted, unknown fields (varint, fixed, length-delimited,
// groups), fields repeated, required fields left out.
std::string hex(const std::string& bytes) {
  std::string out;
  for (unsigned char c : bytes) {
    out += "0123456789abcdef"[c >> 4];
    out += "0123456789abcdef"[c & 15];
    out += ' ';
  }
  return out;
}

TEST(LogCodec, ReadsWhatProtobufReadsAndRefusesWhatItRefuses) {
  std::mt19937_64 rng(7);
  const std::vector<EventRecord> seeds = {
      record("s", 0, "{}", ""),
      record("a-stream-with-a-longer-name", 123456789, std::string(300, 'x'), "{\"m\":1}"),
      record("$$meta", -1, "", ""),
  };
  const auto byte = [&] { return static_cast<char>(rng() & 0xFF); };
  int accepted = 0, refused = 0;
  for (int i = 0; i < 200'000; ++i) {
    std::string bytes = encode_record(seeds[rng() % seeds.size()]);
    const int edits = 1 + static_cast<int>(rng() % 3);
    for (int k = 0; k < edits; ++k) {
      const size_t at = bytes.empty() ? 0 : rng() % bytes.size();
      switch (rng() % 8) {
        case 0:
          if (!bytes.empty()) bytes[at] = byte();
          break;
        case 1:
          bytes.resize(at);
          break;
        case 2:
          bytes.insert(at, 1, byte());
          break;
        case 3: {  // an unknown field of a random wire type, sometimes with a group around it
          const uint32_t field = 9 + static_cast<uint32_t>(rng() % 20);
          const uint32_t type = static_cast<uint32_t>(rng() % 6);
          std::string f(1, static_cast<char>(field << 3 | type));
          if (type == 0) f += "\x96\x01";
          if (type == 1) f += std::string(8, 'f');
          if (type == 2)
            f += std::string(
                "\x03"
                "abc");
          if (type == 3) f += std::string("\x08\x01") + static_cast<char>(field << 3 | 4);
          if (type == 5) f += std::string(4, 'f');
          bytes += f;
          break;
        }
        case 4:  // a field again (the later one wins)
          bytes += rng() % 2 ? std::string("\x0a\x02zz") : std::string("\x10\x05");
          break;
        case 5:  // a known field with the wrong wire type
          bytes += std::string("\x0d") + std::string(4, 'w');
          break;
        case 6:  // a required field cut out: the stream's (first) field
          if (bytes.size() > 2) bytes.erase(0, 2 + static_cast<uint8_t>(bytes[1]));
          break;
        default:
          bytes.insert(at, std::string(1, '\0'));
          break;
      }
    }
    internal::LogRecord m;
    const bool by_protobuf = m.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()));
    EventRecord r;
    const bool ours = read_record(bytes, r);
    ASSERT_EQ(ours, by_protobuf) << i << " " << hex(bytes);
    if (!ours) {
      ++refused;
      continue;
    }
    ++accepted;
    EXPECT_EQ(r.stream, m.stream());
    EXPECT_EQ(r.number, m.number());
    EXPECT_EQ(r.event_id, from_raw_bytes(m.event_id()).value_or(Guid{}));
    EXPECT_EQ(r.event_type, m.event_type());
    EXPECT_EQ(r.data_is_json, (m.flags() & 1) != 0);
    EXPECT_EQ(r.metadata_is_json, (m.flags() & 2) != 0);
    EXPECT_EQ(r.created_ms, m.created_ms());
    EXPECT_EQ(r.data, m.data());
    EXPECT_EQ(r.metadata, m.metadata());
  }
  EXPECT_GT(accepted, 1000);
  EXPECT_GT(refused, 1000);
}

}  // namespace
}  // namespace chorus
