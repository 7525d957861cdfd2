// The log record codec: encode_record writes LogRecord's wire format by hand, so its bytes are
// compared with protobuf's own serialization, and decoding gives the record back.
#include "worker/engine/log_codec.hpp"

#include "replication.pb.h"

#include <gtest/gtest.h>

#include <limits>

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
    EXPECT_EQ(back->stream, r.stream);
    EXPECT_EQ(back->number, r.number);
    EXPECT_EQ(back->event_id, r.event_id);
    EXPECT_EQ(back->event_type, r.event_type);
    EXPECT_EQ(back->data_is_json, r.data_is_json);
    EXPECT_EQ(back->metadata_is_json, r.metadata_is_json);
    EXPECT_EQ(back->created_ms, r.created_ms);
    EXPECT_EQ(back->data, r.data);
    EXPECT_EQ(back->metadata, r.metadata);
    EXPECT_EQ(back->position.prepare, 100);
    EXPECT_EQ(back->log_end, 500);
  }
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

}  // namespace
}  // namespace chorus
