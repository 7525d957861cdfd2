// Goal: the client's operations encode their requests as EventStore expects (GUIDs in .NET order,
// every field set) and read every reply right: results, the official clients' retry decisions
// (NotReady, TooBusy, commit timeouts), NotHandled(NotLeader) naming the leader, BadRequest and
// NotAuthenticated, unexpected commands, and a subscription's confirmation, events and drop.
#include "client/operations.hpp"

#include <gtest/gtest.h>

#include <optional>

#include "common/guid.hpp"
#include "messages.pb.h"

namespace chorus::client {
namespace {

namespace msg = EventStore::Client::Messages;
using wire::Command;

wire::Package reply(Command command, const std::string& payload) {
  wire::Package p;
  p.command = static_cast<uint8_t>(command);
  p.correlation_id = random_guid();
  p.payload = payload;
  return p;
}

std::string not_handled(msg::NotHandled::NotHandledReason reason, const std::string& host = "",
                        int port = 0) {
  msg::NotHandled nh;
  nh.set_reason(reason);
  if (!host.empty()) {
    msg::NotHandled::MasterInfo info;
    info.set_external_tcp_address(host);
    info.set_external_tcp_port(port);
    info.set_external_http_address(host);
    info.set_external_http_port(2113);
    nh.set_additional_info(info.SerializeAsString());
  }
  return nh.SerializeAsString();
}

std::string write_completed(msg::OperationResult result, int64_t last = 0) {
  msg::WriteEventsCompleted c;
  c.set_result(result);
  c.set_first_event_number(last);
  c.set_last_event_number(last);
  c.set_prepare_position(100);
  c.set_commit_position(100);
  if (result == msg::WrongExpectedVersion) c.set_current_version(7);
  return c.SerializeAsString();
}

struct AppendProbe {
  std::optional<Result<WriteResult>> result;
  std::unique_ptr<Operation> op;
  EventData event{*parse_guid("00112233-4455-6677-8899-aabbccddeeff"), "t", true, "{}", ""};

  AppendProbe() {
    op = make_append("s", 3, {event}, true, [this](Result<WriteResult> r) { result = r; });
  }
};

TEST(ClientOperations, AppendEncodesTheRequestWithDotNetGuidOrder) {
  AppendProbe probe;
  msg::WriteEvents write;
  ASSERT_TRUE(write.ParseFromString(probe.op->payload()));
  EXPECT_EQ(probe.op->command(), Command::WriteEvents);
  EXPECT_EQ(write.event_stream_id(), "s");
  EXPECT_EQ(write.expected_version(), 3);
  EXPECT_TRUE(write.require_master());
  ASSERT_EQ(write.events_size(), 1);
  const std::string expected_id("\x33\x22\x11\x00\x55\x44\x77\x66\x88\x99\xaa\xbb\xcc\xdd\xee\xff",
                                16);
  EXPECT_EQ(write.events(0).event_id(), expected_id);
  EXPECT_EQ(write.events(0).data_content_type(), 1);
  EXPECT_EQ(write.events(0).data(), "{}");
}

TEST(ClientOperations, AppendSuccessRunsTheHandlerOnce) {
  AppendProbe probe;
  const Decision d =
      probe.op->inspect(reply(Command::WriteEventsCompleted, write_completed(msg::Success, 4)));
  EXPECT_EQ(d.kind, Decision::Kind::Complete);
  ASSERT_TRUE(probe.result && probe.result->ok());
  EXPECT_EQ(probe.result->value().next_expected_version, 4);
  EXPECT_EQ(probe.result->value().position.commit, 100);
  probe.result.reset();
  probe.op->fail(Error{ErrorKind::ConnectionClosed, "x", {}});
  EXPECT_FALSE(probe.result) << "the handler ran twice";
}

TEST(ClientOperations, ServerTimeoutsAreRetriedWithoutRunningTheHandler) {
  for (auto result : {msg::PrepareTimeout, msg::CommitTimeout, msg::ForwardTimeout}) {
    AppendProbe probe;
    const Decision d =
        probe.op->inspect(reply(Command::WriteEventsCompleted, write_completed(result)));
    EXPECT_EQ(d.kind, Decision::Kind::Retry);
    EXPECT_FALSE(probe.result);
  }
}

TEST(ClientOperations, WrongExpectedVersionFailsWithTheCurrentVersion) {
  AppendProbe probe;
  probe.op->inspect(
      reply(Command::WriteEventsCompleted, write_completed(msg::WrongExpectedVersion)));
  ASSERT_TRUE(probe.result && !probe.result->ok());
  EXPECT_EQ(probe.result->error().kind, ErrorKind::WrongExpectedVersion);
  EXPECT_EQ(probe.result->error().current_version, 7);
}

TEST(ClientOperations, NotReadyAndTooBusyAreRetried) {
  for (auto reason : {msg::NotHandled::NotReady, msg::NotHandled::TooBusy}) {
    AppendProbe probe;
    EXPECT_EQ(probe.op->inspect(reply(Command::NotHandled, not_handled(reason))).kind,
              Decision::Kind::Retry);
    EXPECT_FALSE(probe.result);
  }
}

TEST(ClientOperations, NotLeaderReconnectsToTheNamedLeader) {
  AppendProbe probe;
  const Decision d = probe.op->inspect(
      reply(Command::NotHandled, not_handled(msg::NotHandled::NotMaster, "127.0.0.9", 4113)));
  EXPECT_EQ(d.kind, Decision::Kind::Reconnect);
  EXPECT_EQ(d.leader, (Endpoint{"127.0.0.9", 4113}));
  EXPECT_FALSE(probe.result);
}

TEST(ClientOperations, NotLeaderWithoutALeaderIsRetriedLater) {
  AppendProbe probe;
  EXPECT_EQ(
      probe.op->inspect(reply(Command::NotHandled, not_handled(msg::NotHandled::NotMaster))).kind,
      Decision::Kind::Retry);
}

TEST(ClientOperations, BadRequestAndNotAuthenticatedFailTheOperation) {
  AppendProbe bad;
  bad.op->inspect(reply(Command::BadRequest, "no such thing"));
  ASSERT_TRUE(bad.result && !bad.result->ok());
  EXPECT_EQ(bad.result->error().kind, ErrorKind::BadRequest);
  EXPECT_EQ(bad.result->error().message, "Bad request: no such thing");
  AppendProbe auth;
  auth.op->inspect(reply(Command::NotAuthenticated, "Not Authenticated"));
  ASSERT_TRUE(auth.result && !auth.result->ok());
  EXPECT_EQ(auth.result->error().kind, ErrorKind::NotAuthenticated);
}

TEST(ClientOperations, UnexpectedCommandIsAProtocolError) {
  AppendProbe probe;
  probe.op->inspect(reply(Command::ReadEventCompleted, ""));
  ASSERT_TRUE(probe.result && !probe.result->ok());
  EXPECT_EQ(probe.result->error().kind, ErrorKind::ProtocolError);
}

TEST(ClientOperations, ReadStreamReportsMissingStreamsAsAStatus) {
  std::optional<Result<StreamSlice>> result;
  auto op = make_read_stream("s", 0, 10, ReadDirection::Backward, false, false,
                             [&](Result<StreamSlice> r) { result = r; });
  EXPECT_EQ(op->command(), Command::ReadStreamEventsBackward);
  msg::ReadStreamEventsCompleted c;
  c.set_result(msg::ReadStreamEventsCompleted::NoStream);
  c.set_next_event_number(-1);
  c.set_last_event_number(-1);
  c.set_is_end_of_stream(true);
  c.set_last_commit_position(0);
  // A reply of the other direction is not this operation's.
  op->inspect(reply(Command::ReadStreamEventsBackwardCompleted, c.SerializeAsString()));
  ASSERT_TRUE(result && result->ok());
  EXPECT_EQ(result->value().status, ReadStatus::NoStream);
  EXPECT_TRUE(result->value().is_end_of_stream);
}

TEST(ClientOperations, MetadataOfADeletedStream) {
  std::optional<Result<StreamMetadataResult>> result;
  auto op = make_get_metadata("s", true, [&](Result<StreamMetadataResult> r) { result = r; });
  msg::ReadEvent read;
  ASSERT_TRUE(read.ParseFromString(op->payload()));
  EXPECT_EQ(read.event_stream_id(), "$$s");
  EXPECT_EQ(read.event_number(), -1);
  msg::ReadEventCompleted c;
  c.set_result(msg::ReadEventCompleted::StreamDeleted);
  c.mutable_event();
  op->inspect(reply(Command::ReadEventCompleted, c.SerializeAsString()));
  ASSERT_TRUE(result && result->ok());
  EXPECT_TRUE(result->value().is_stream_deleted);
}

TEST(ClientOperations, SubscriptionConfirmsDeliversAndDrops) {
  std::optional<SubscriptionConfirmation> confirmed;
  int events = 0;
  std::optional<DropReason> dropped;
  SubscriptionHandlers h{[&](const SubscriptionConfirmation& c) { confirmed = c; },
                         [&](const ResolvedEvent&) { ++events; },
                         [&](DropReason r, const std::string&) { dropped = r; }};
  SubscriptionOperation sub(1, "$all", false, h);
  msg::SubscribeToStream request;
  ASSERT_TRUE(request.ParseFromString(sub.payload()));
  EXPECT_EQ(request.event_stream_id(), "") << "$all is the empty stream name on the wire";
  msg::SubscriptionConfirmation c;
  c.set_last_commit_position(10);
  EXPECT_EQ(sub.inspect(reply(Command::SubscriptionConfirmation, c.SerializeAsString())).kind,
            Decision::Kind::Subscribed);
  ASSERT_TRUE(confirmed);
  EXPECT_FALSE(confirmed->last_event_number);
  msg::StreamEventAppeared appeared;
  appeared.mutable_event()->set_commit_position(11);
  appeared.mutable_event()->set_prepare_position(11);
  EXPECT_FALSE(sub.handle_live(reply(Command::StreamEventAppeared, appeared.SerializeAsString())));
  EXPECT_EQ(events, 1);
  msg::SubscriptionDropped d;
  d.set_reason(msg::SubscriptionDropped::Unsubscribed);
  EXPECT_TRUE(sub.handle_live(reply(Command::SubscriptionDropped, d.SerializeAsString())));
  EXPECT_EQ(dropped, DropReason::Unsubscribed);
}

TEST(ClientOperations, SubscriptionDeniedBeforeConfirmationDrops) {
  std::optional<DropReason> dropped;
  SubscriptionOperation sub(
      2, "s", false, {nullptr, nullptr, [&](DropReason r, const std::string&) { dropped = r; }});
  msg::SubscriptionDropped d;
  d.set_reason(msg::SubscriptionDropped::AccessDenied);
  EXPECT_EQ(sub.inspect(reply(Command::SubscriptionDropped, d.SerializeAsString())).kind,
            Decision::Kind::Complete);
  EXPECT_EQ(dropped, DropReason::AccessDenied);
}

}  // namespace
}  // namespace chorus::client
