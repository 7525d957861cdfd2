// expect_same_event: every field of an event that the log carries (stream, number, id, type,
// flags, creation time, data, metadata) is the one written, for the codec and storage tests.
#pragma once

#include "worker/engine/types.hpp"

#include <gtest/gtest.h>

namespace chorus::test_support {

inline void expect_same_event(const EventRecord& got, const EventRecord& want) {
  SCOPED_TRACE(want.stream + " #" + std::to_string(want.number));
  EXPECT_EQ(got.stream, want.stream);
  EXPECT_EQ(got.number, want.number);
  EXPECT_EQ(got.event_id, want.event_id);
  EXPECT_EQ(got.event_type, want.event_type);
  EXPECT_EQ(got.data_is_json, want.data_is_json);
  EXPECT_EQ(got.metadata_is_json, want.metadata_is_json);
  EXPECT_EQ(got.created_ms, want.created_ms);
  EXPECT_EQ(got.data, want.data);
  EXPECT_EQ(got.metadata, want.metadata);
}

}  // namespace chorus::test_support
