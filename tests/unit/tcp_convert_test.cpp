// Goal: engine types <-> protobuf conversions keep GUIDs in .NET order inside payloads, fill every
// proto2 required field of each reply (so strict decoders accept them), and carry the values the
// clients read (PROTOCOL.md C2/C3/C7); a forwarded answer is recognised as a successful write
// with its commit position (and only then), and turns into a complete CommitTimeout.
#include "worker/tcp/convert.hpp"

#include <gtest/gtest.h>

namespace chorus::tcp {
namespace {

const Guid kId = *parse_guid("00112233-4455-6677-8899-aabbccddeeff");
const std::string kIdDotnet("\x33\x22\x11\x00\x55\x44\x77\x66\x88\x99\xaa\xbb\xcc\xdd\xee\xff", 16);

EventRecord sample_record(int64_t number, Position position) {
  EventRecord r;
  r.stream = "orders-1";
  r.number = number;
  r.event_id = kId;
  r.event_type = "OrderPlaced";
  r.data_is_json = true;
  r.metadata_is_json = false;
  r.data = "{\"a\":1}";
  r.metadata = "meta";
  r.created_ms = 1700000000123;
  r.position = position;
  return r;
}

// ParseFromString (not Partial) fails when a required field is missing.
template <typename Message>
Message strict_parse(const std::string& bytes) {
  Message m;
  EXPECT_TRUE(m.ParseFromString(bytes)) << m.InitializationErrorString();
  return m;
}

TEST(Convert, NewEventFromProtoReadsDotnetGuid) {
  pb::NewEvent e;
  e.set_event_id(kIdDotnet);
  e.set_event_type("t");
  e.set_data_content_type(1);
  e.set_metadata_content_type(0);
  e.set_data("{}");
  const std::optional<NewEvent> converted = from_proto(e);
  ASSERT_TRUE(converted);
  EXPECT_EQ(converted->event_id, kId);
  EXPECT_TRUE(converted->data_is_json);
  EXPECT_FALSE(converted->metadata_is_json);
  EXPECT_EQ(converted->data, "{}");
  EXPECT_EQ(converted->metadata, "");
}

TEST(Convert, NewEventWithBadIdIsRefused) {
  pb::WriteEvents w;
  w.add_events()->set_event_id("short");
  EXPECT_FALSE(from_proto(w.events()));
}

TEST(Convert, EventRecordFields) {
  pb::EventRecord out;
  to_proto(sample_record(7, {100, 90}), &out);
  EXPECT_TRUE(out.IsInitialized());
  EXPECT_EQ(out.event_id(), kIdDotnet);
  EXPECT_EQ(out.event_number(), 7);
  EXPECT_EQ(out.data_content_type(), 1);
  EXPECT_EQ(out.metadata_content_type(), 1);  // echoes the data's type, as EventStore does
  EXPECT_EQ(out.created_epoch(), 1700000000123);
  EXPECT_EQ(out.created(), 1700000000123LL * 10000 + 621355968000000000LL);
  EXPECT_EQ(out.metadata(), "meta");
}

TEST(Convert, ReadEventCompletedAlwaysHasEvent) {
  ReadEventResult result;
  result.status = ReadEventStatus::NotFound;
  const std::string bytes = read_event_completed(result);
  const auto reply = strict_parse<pb::ReadEventCompleted>(bytes);
  EXPECT_TRUE(reply.has_event());
  EXPECT_FALSE(reply.event().has_event());
  EXPECT_EQ(reply.result(), pb::ReadEventCompleted::NotFound);
  // Field 2, length-delimited, empty: the bytes 0x12 0x00 must be on the wire.
  EXPECT_NE(bytes.find(std::string("\x12\x00", 2)), std::string::npos);
}

TEST(Convert, ReadEventCompletedWithLink) {
  ReadEventResult result;
  result.event = ResolvedEvent{sample_record(3, {50, 50}), sample_record(9, {70, 70})};
  const auto reply = strict_parse<pb::ReadEventCompleted>(read_event_completed(result));
  EXPECT_EQ(reply.event().event().event_number(), 3);
  EXPECT_EQ(reply.event().link().event_number(), 9);
}

TEST(Convert, WriteCompletedSuccessAndWrongExpectedVersion) {
  WriteResult ok;
  ok.first_event_number = 0;
  ok.last_event_number = 4;
  ok.position = {1234, 1200};
  auto reply = strict_parse<pb::WriteEventsCompleted>(write_completed(ok));
  EXPECT_EQ(reply.result(), pb::Success);
  EXPECT_EQ(reply.first_event_number(), 0);
  EXPECT_EQ(reply.last_event_number(), 4);
  EXPECT_EQ(reply.commit_position(), 1234);
  EXPECT_EQ(reply.prepare_position(), 1200);

  WriteResult wrong;
  wrong.result = OperationResult::WrongExpectedVersion;
  wrong.current_version = 5;
  reply = strict_parse<pb::WriteEventsCompleted>(write_completed(wrong));
  EXPECT_EQ(reply.result(), pb::WrongExpectedVersion);
  EXPECT_EQ(reply.current_version(), 5);
  EXPECT_EQ(reply.first_event_number(), kInvalidEventNumber);
  EXPECT_EQ(reply.last_event_number(), kInvalidEventNumber);
}

TEST(Convert, ForwardedWriteAnswers) {
  using wire::Command;
  WriteResult ok;
  ok.first_event_number = 3;
  ok.last_event_number = 4;
  ok.position = {1234, 1200};
  const std::string written = write_completed(ok);
  EXPECT_EQ(written_end(Command::WriteEventsCompleted, written), 1234);
  // Not a write, or not a success, or not the message it claims to be: nothing to wait for.
  EXPECT_EQ(written_end(Command::ReadEventCompleted, written), std::nullopt);
  WriteResult wrong;
  wrong.result = OperationResult::WrongExpectedVersion;
  EXPECT_EQ(written_end(Command::WriteEventsCompleted, write_completed(wrong)), std::nullopt);
  EXPECT_EQ(written_end(Command::WriteEventsCompleted, "\xff\xff"), std::nullopt);
  DeleteResult deleted;
  deleted.position = {999, 998};
  EXPECT_EQ(written_end(Command::DeleteStreamCompleted, delete_completed(deleted)), 999);

  auto timeout = strict_parse<pb::WriteEventsCompleted>(
      as_commit_timeout(Command::WriteEventsCompleted, written));
  EXPECT_EQ(timeout.result(), pb::CommitTimeout);
  EXPECT_EQ(timeout.first_event_number(), kInvalidEventNumber);
  EXPECT_EQ(timeout.commit_position(), -1);
  EXPECT_FALSE(timeout.message().empty());
  auto delete_timeout = strict_parse<pb::DeleteStreamCompleted>(
      as_commit_timeout(Command::DeleteStreamCompleted, delete_completed(deleted)));
  EXPECT_EQ(delete_timeout.result(), pb::CommitTimeout);
}

TEST(Convert, TransactionRepliesAreComplete) {
  TransactionResult r;
  r.transaction_id = 42;
  strict_parse<pb::TransactionStartCompleted>(transaction_start_completed(r));
  const auto write = strict_parse<pb::TransactionWriteCompleted>(
      transaction_write_completed(TransactionResult{}, 42));
  EXPECT_EQ(write.transaction_id(), 42);  // the request's id when the engine leaves it unset
  r.first_event_number = 1;
  r.last_event_number = 2;
  const auto commit =
      strict_parse<pb::TransactionCommitCompleted>(transaction_commit_completed(r, 42));
  EXPECT_EQ(commit.last_event_number(), 2);
  strict_parse<pb::DeleteStreamCompleted>(delete_completed(DeleteResult{}));
}

TEST(Convert, ReadStreamCompletedRoundTrip) {
  ReadStreamResult result;
  result.events.push_back(ResolvedEvent{sample_record(0, {10, 10}), std::nullopt});
  result.events.push_back(ResolvedEvent{sample_record(1, {20, 20}), std::nullopt});
  result.next_event_number = 2;
  result.last_event_number = 1;
  result.is_end_of_stream = true;
  result.last_commit_position = 20;
  const auto reply = strict_parse<pb::ReadStreamEventsCompleted>(read_stream_completed(result));
  ASSERT_EQ(reply.events_size(), 2);
  EXPECT_EQ(reply.events(1).event().event_number(), 1);
  EXPECT_EQ(reply.events(0).event().event_id(), kIdDotnet);
  EXPECT_EQ(reply.next_event_number(), 2);
  EXPECT_TRUE(reply.is_end_of_stream());
  EXPECT_EQ(reply.last_commit_position(), 20);

  ReadStreamResult none;
  none.status = ReadStreamStatus::NoStream;
  const auto empty = strict_parse<pb::ReadStreamEventsCompleted>(read_stream_completed(none));
  EXPECT_EQ(empty.result(), pb::ReadStreamEventsCompleted::NoStream);
  EXPECT_EQ(empty.next_event_number(), -1);
}

TEST(Convert, ReadAllCompletedPositions) {
  ReadAllResult result;
  result.from = {500, 500};
  result.next = {700, 700};
  // A resolved link: the position is the link's (the record that sits in $all).
  result.events.push_back(ResolvedEvent{sample_record(0, {10, 10}), sample_record(5, {600, 600})});
  const auto reply = strict_parse<pb::ReadAllEventsCompleted>(read_all_completed(result));
  EXPECT_EQ(reply.commit_position(), 500);
  EXPECT_EQ(reply.next_prepare_position(), 700);
  ASSERT_EQ(reply.events_size(), 1);
  EXPECT_EQ(reply.events(0).commit_position(), 600);
  EXPECT_EQ(reply.events(0).prepare_position(), 600);
  EXPECT_TRUE(reply.has_result());
}

// The read replies are written without building protobuf messages: their bytes must be exactly
// what protobuf serializes for the messages to_proto builds, for every shape of entry (plain
// event, resolved link, link whose target is gone, empty strings, negative and large numbers).
std::vector<ResolvedEvent> varied_events() {
  EventRecord empty_strings = sample_record(0, {0, 0});
  empty_strings.stream = "";
  empty_strings.event_type = "";
  empty_strings.data = "";
  empty_strings.metadata = "";
  empty_strings.data_is_json = false;
  empty_strings.created_ms = 0;
  EventRecord big = sample_record(kDeletedStreamNumber, {int64_t{1} << 40, (int64_t{1} << 40) + 7});
  big.data = std::string(300, 'x');  // a two-byte length
  big.stream = std::string(200, 's');
  return {ResolvedEvent{sample_record(1, {10, 10}), std::nullopt},
          ResolvedEvent{sample_record(2, {20, 30}), sample_record(5, {600, 650})},
          ResolvedEvent{std::nullopt, sample_record(6, {700, 760})},
          ResolvedEvent{empty_strings, std::nullopt}, ResolvedEvent{big, std::nullopt}};
}

TEST(Convert, ReadStreamCompletedBytesAreProtobufs) {
  for (const bool with_error : {false, true}) {
    ReadStreamResult result;
    result.events = varied_events();
    result.next_event_number = -1;
    result.last_event_number = int64_t{1} << 35;
    result.is_end_of_stream = true;
    result.last_commit_position = 123456789;
    if (with_error) {
      result.status = ReadStreamStatus::Error;
      result.error = "boom";
    }
    pb::ReadStreamEventsCompleted expected;
    for (const ResolvedEvent& e : result.events) to_proto(e, expected.add_events());
    expected.set_result(
        static_cast<pb::ReadStreamEventsCompleted::ReadStreamResult>(result.status));
    expected.set_next_event_number(result.next_event_number);
    expected.set_last_event_number(result.last_event_number);
    expected.set_is_end_of_stream(result.is_end_of_stream);
    expected.set_last_commit_position(result.last_commit_position);
    if (with_error) expected.set_error(result.error);
    EXPECT_EQ(read_stream_completed(result), expected.SerializeAsString());
  }
  EXPECT_EQ(read_stream_completed(ReadStreamResult{}),
            strict_parse<pb::ReadStreamEventsCompleted>(read_stream_completed(ReadStreamResult{}))
                .SerializeAsString());
}

TEST(Convert, ReadAllCompletedBytesAreProtobufs) {
  for (const bool with_error : {false, true}) {
    ReadAllResult result;
    result.from = {-1, -1};
    result.next = {int64_t{1} << 42, int64_t{1} << 42};
    result.events = varied_events();
    if (with_error) {
      result.status = ReadAllStatus::AccessDenied;
      result.error = "no";
    }
    pb::ReadAllEventsCompleted expected;
    expected.set_commit_position(result.from.commit);
    expected.set_prepare_position(result.from.prepare);
    for (const ResolvedEvent& e : result.events) to_proto(e, expected.add_events());
    expected.set_next_commit_position(result.next.commit);
    expected.set_next_prepare_position(result.next.prepare);
    expected.set_result(static_cast<pb::ReadAllEventsCompleted::ReadAllResult>(result.status));
    if (with_error) expected.set_error(result.error);
    EXPECT_EQ(read_all_completed(result), expected.SerializeAsString());
  }
}

TEST(Convert, StreamEventAppearedBytesAreProtobufs) {
  for (const ResolvedEvent& e : varied_events()) {
    pb::StreamEventAppeared expected;
    to_proto(e, expected.mutable_event());
    EXPECT_EQ(stream_event_appeared(e), expected.SerializeAsString());
  }
}

// TCP's reads encode each event as the engine reads it (ReadReplyEncoder as a ReadSink, rows
// from storage's memory): the reply must be byte for byte the one the whole result gives.
void feed(ReadReplyEncoder& encoder, const std::vector<ResolvedEvent>& events) {
  encoder.expect(events.size());
  for (const ResolvedEvent& e : events) {
    if (e.link || !e.event) {
      encoder.resolved(e);
    } else {
      encoder.row(view_of(*e.event));
    }
  }
}

TEST(Convert, ReadReplyEncoderGivesTheWholeResultsBytes) {
  ReadStreamResult stream;
  stream.events = varied_events();
  stream.next_event_number = 7;
  stream.last_event_number = 9;
  stream.is_end_of_stream = false;
  stream.last_commit_position = 4242;
  ReadReplyEncoder stream_encoder(ReadReplyEncoder::Kind::Stream);
  feed(stream_encoder, stream.events);
  EXPECT_EQ(stream_encoder.events(), static_cast<int32_t>(stream.events.size()));
  ReadStreamResult without_events = stream;
  without_events.events.clear();
  EXPECT_EQ(stream_encoder.finish(without_events), read_stream_completed(stream));

  ReadAllResult all;
  all.from = {10, 10};
  all.next = {int64_t{1} << 41, int64_t{1} << 41};
  all.events = varied_events();
  all.last_commit_position = 77;
  ReadReplyEncoder all_encoder(ReadReplyEncoder::Kind::All);
  all_encoder.start(all.from);
  feed(all_encoder, all.events);
  ReadAllResult all_without_events = all;
  all_without_events.events.clear();
  EXPECT_EQ(all_encoder.finish(all_without_events), read_all_completed(all));
}

TEST(Convert, ReadReplyEncoderWithoutEventsOrAfterDiscard) {
  // A refused $all read never starts: the positions still come first, as protobuf writes them.
  ReadAllResult refused;
  refused.status = ReadAllStatus::AccessDenied;
  refused.from = {5, 5};
  ReadReplyEncoder refused_encoder(ReadReplyEncoder::Kind::All);
  EXPECT_EQ(refused_encoder.finish(refused), read_all_completed(refused));

  // A read that failed part way answers with its status and none of the events it had.
  ReadAllResult failed;
  failed.status = ReadAllStatus::Error;
  failed.error = "disk I/O error";
  failed.from = {1, 1};
  ReadReplyEncoder all_encoder(ReadReplyEncoder::Kind::All);
  all_encoder.start(failed.from);
  feed(all_encoder, varied_events());
  all_encoder.discard();
  EXPECT_EQ(all_encoder.events(), 0);
  EXPECT_EQ(all_encoder.finish(failed), read_all_completed(failed));

  ReadStreamResult stream_failed;
  stream_failed.status = ReadStreamStatus::Error;
  stream_failed.error = "disk I/O error";
  ReadReplyEncoder stream_encoder(ReadReplyEncoder::Kind::Stream);
  feed(stream_encoder, varied_events());
  stream_encoder.discard();
  EXPECT_EQ(stream_encoder.finish(stream_failed), read_stream_completed(stream_failed));
}

TEST(Convert, ReadReplyEncoderTakesAnIdOfAnyLengthAsZeros) {
  // Storage hands over the id's raw bytes; one that is not 16 bytes reads as the nil id, as
  // from_raw_bytes(...).value_or(Guid{}) gave before.
  EventRecord r = sample_record(1, {10, 20});
  RecordView short_id = view_of(r);
  short_id.event_id = std::string_view("abc");
  ReadReplyEncoder encoder(ReadReplyEncoder::Kind::Stream);
  encoder.row(short_id);
  const auto reply =
      strict_parse<pb::ReadStreamEventsCompleted>(encoder.finish(ReadStreamResult{}));
  ASSERT_EQ(reply.events_size(), 1);
  EXPECT_EQ(reply.events(0).event().event_id(), std::string(16, '\0'));
  EXPECT_EQ(reply.events(0).event().data(), r.data);
}

TEST(Convert, SubscriptionConfirmationLastEventNumber) {
  auto stream = strict_parse<pb::SubscriptionConfirmation>(subscription_confirmation(99, -1));
  ASSERT_TRUE(stream.has_last_event_number());  // explicit -1 for a missing stream
  EXPECT_EQ(stream.last_event_number(), -1);
  auto all =
      strict_parse<pb::SubscriptionConfirmation>(subscription_confirmation(99, std::nullopt));
  EXPECT_FALSE(all.has_last_event_number());
  EXPECT_EQ(all.last_commit_position(), 99);
}

TEST(Convert, StreamEventAppearedCarriesPosition) {
  const auto reply = strict_parse<pb::StreamEventAppeared>(
      stream_event_appeared(ResolvedEvent{sample_record(2, {300, 290}), std::nullopt}));
  EXPECT_EQ(reply.event().commit_position(), 300);
  EXPECT_EQ(reply.event().prepare_position(), 290);
  EXPECT_EQ(reply.event().event().event_id(), kIdDotnet);
}

TEST(Convert, OtherRepliesAreComplete) {
  EXPECT_EQ(strict_parse<pb::SubscriptionDropped>(subscription_dropped(DropReason::AccessDenied))
                .reason(),
            pb::SubscriptionDropped::AccessDenied);
  const auto scavenge = strict_parse<pb::ScavengeDatabaseCompleted>(scavenge_failed("no"));
  EXPECT_EQ(scavenge.result(), pb::ScavengeDatabaseCompleted::Failed);
  PersistentResult exists;
  exists.status = PersistentStatus::Exists;
  exists.reason = "x";
  const auto created =
      strict_parse<pb::CreatePersistentSubscriptionCompleted>(create_persistent_completed(exists));
  EXPECT_EQ(created.result(), pb::CreatePersistentSubscriptionCompleted::AlreadyExists);
  strict_parse<pb::UpdatePersistentSubscriptionCompleted>(update_persistent_completed(exists));
  strict_parse<pb::DeletePersistentSubscriptionCompleted>(delete_persistent_completed(exists));
  strict_parse<pb::PersistentSubscriptionConfirmation>(persistent_confirmation("s::g", 5, -1));
  strict_parse<pb::NotHandled>(not_handled(pb::NotHandled::NotReady, std::nullopt));
}

}  // namespace
}  // namespace chorus::tcp
