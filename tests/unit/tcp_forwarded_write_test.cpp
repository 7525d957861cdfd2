// Goal: a node's own forwarded writes (its $stats-<endpoint> statistics) round-trip: the request
// decodes to the same stream, version and events (ids in .NET order), the leader's answers turn
// into WriteResults; and the leader lets a request forwarded as "$system" through only when it is
// a WriteEvents to a statistics stream or its metadata stream, never any other stream or command.
#include "worker/tcp/forwarded_write.hpp"

#include "messages.pb.h"
#include "worker/tcp/convert.hpp"

#include <gtest/gtest.h>

namespace chorus::tcp {
namespace {

NewEvent stats_event() {
  return NewEvent{*parse_guid("00112233-4455-6677-8899-aabbccddeeff"),
                  "$statsCollected",
                  true,
                  false,
                  "{\"process\":{}}",
                  ""};
}

constexpr auto kWriteEvents = static_cast<uint8_t>(wire::Command::WriteEvents);

TEST(ForwardedWrite, RequestDecodesToTheSameWrite) {
  const std::string payload =
      write_events_request("$stats-127.0.0.1:2113", kExpectedAny, {stats_event()});
  pb::WriteEvents request;
  ASSERT_TRUE(request.ParseFromString(payload));
  EXPECT_EQ(request.event_stream_id(), "$stats-127.0.0.1:2113");
  EXPECT_EQ(request.expected_version(), kExpectedAny);
  ASSERT_EQ(request.events_size(), 1);
  const auto event = from_proto(request.events(0));
  ASSERT_TRUE(event);
  EXPECT_EQ(event->event_id, stats_event().event_id);
  EXPECT_EQ(event->event_type, "$statsCollected");
  EXPECT_TRUE(event->data_is_json);
  EXPECT_EQ(event->data, "{\"process\":{}}");
}

TEST(ForwardedWrite, AnswersBecomeWriteResults) {
  WriteResult ok;
  ok.first_event_number = ok.last_event_number = 4;
  const WriteResult done =
      forwarded_write_result(wire::Command::WriteEventsCompleted, write_completed(ok));
  EXPECT_EQ(done.not_handled, NotHandledReason::None);
  EXPECT_EQ(done.result, OperationResult::Success);
  EXPECT_EQ(done.last_event_number, 4);

  WriteResult wrong;
  wrong.result = OperationResult::WrongExpectedVersion;
  wrong.current_version = 0;
  EXPECT_EQ(
      forwarded_write_result(wire::Command::WriteEventsCompleted, write_completed(wrong)).result,
      OperationResult::WrongExpectedVersion);
  EXPECT_EQ(forwarded_write_result(wire::Command::NotHandled, "").not_handled,
            NotHandledReason::NotLeader);
  const WriteResult refused = forwarded_write_result(wire::Command::NotAuthenticated, "no");
  EXPECT_EQ(refused.not_handled, NotHandledReason::None);
  EXPECT_NE(refused.result, OperationResult::Success);
  EXPECT_NE(refused.message.find("NotAuthenticated"), std::string::npos) << refused.message;
}

TEST(ForwardedWrite, SystemMayForwardStatisticsWritesOnly) {
  for (const char* stream : {"$stats-127.0.0.1:2113", "$$$stats-127.0.0.1:2113"}) {
    EXPECT_TRUE(system_forward_allowed(kWriteEvents,
                                       write_events_request(stream, kExpectedAny, {stats_event()})))
        << stream;
  }
  for (const char* stream : {"orders-1", "$settings", "$$$settings", "$users", "stats-1",
                             "$statistics", "$$orders", ""}) {
    EXPECT_FALSE(system_forward_allowed(
        kWriteEvents, write_events_request(stream, kExpectedAny, {stats_event()})))
        << stream;
  }
  const std::string stats = write_events_request("$stats-a:1", kExpectedAny, {stats_event()});
  EXPECT_FALSE(system_forward_allowed(static_cast<uint8_t>(wire::Command::DeleteStream), stats));
  EXPECT_FALSE(
      system_forward_allowed(static_cast<uint8_t>(wire::Command::TransactionStart), stats));
  EXPECT_FALSE(system_forward_allowed(kWriteEvents, "not a protobuf message \xff\xff"));
}

}  // namespace
}  // namespace chorus::tcp
