// Proves the engine end to end on a real SQLite database (in memory and on disk): writes with
// expected versions and idempotent retries, reads, deletes, transactions, subscriptions, users.
#include "worker/engine/engine.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <future>

namespace chorus {
namespace {

const Principal kAdmin{"admin", {"$admins"}};

NewEvent event(const std::string& type, const std::string& data = "{}") {
  return NewEvent{random_guid(), type, true, false, data, ""};
}

class EngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    EngineConfig c;
    c.in_memory = true;
    engine_ = Engine::open(c);
  }
  WriteResult append(const std::string& s, int64_t expected, std::vector<NewEvent> events,
                     Principal who = Principal::anon()) {
    std::promise<WriteResult> p;
    engine_->append(who, s, expected, std::move(events), [&](WriteResult r) { p.set_value(r); });
    return p.get_future().get();
  }
  ReadStreamResult read(const std::string& s, int64_t from, int32_t count, bool forward) {
    std::promise<ReadStreamResult> p;
    engine_->read_stream(kAdmin, s, from, count, forward, false,
                         [&](ReadStreamResult r) { p.set_value(std::move(r)); });
    return p.get_future().get();
  }
  DeleteResult remove(const std::string& s, int64_t expected, bool hard) {
    std::promise<DeleteResult> p;
    engine_->delete_stream(kAdmin, s, expected, hard, [&](DeleteResult r) { p.set_value(r); });
    return p.get_future().get();
  }
  std::unique_ptr<Engine> engine_;
};

TEST_F(EngineTest, AppendsAndReadsBack) {
  auto w = append("s", kExpectedNoStream, {event("a"), event("b")});
  ASSERT_EQ(w.result, OperationResult::Success);
  EXPECT_EQ(w.first_event_number, 0);
  EXPECT_EQ(w.last_event_number, 1);
  EXPECT_GT(w.position.commit, 0);
  auto r = read("s", 0, 10, true);
  ASSERT_EQ(r.status, ReadStreamStatus::Success);
  ASSERT_EQ(r.events.size(), 2u);
  EXPECT_EQ(r.events[0].event->event_type, "a");
  EXPECT_EQ(r.next_event_number, 2);
  EXPECT_EQ(r.last_event_number, 1);
  EXPECT_TRUE(r.is_end_of_stream);
  EXPECT_EQ(read("missing", 0, 10, true).status, ReadStreamStatus::NoStream);
}

TEST_F(EngineTest, IdempotentRetryReturnsTheFirstResult) {
  std::vector<NewEvent> events{event("a"), event("b")};
  auto first = append("s", kExpectedNoStream, events);
  auto again = append("s", kExpectedNoStream, events);
  EXPECT_EQ(again.result, OperationResult::Success);
  EXPECT_EQ(again.last_event_number, first.last_event_number);
  EXPECT_EQ(again.position, first.position);
  auto any = append("s", kExpectedAny, events);
  EXPECT_EQ(any.result, OperationResult::Success);
  EXPECT_EQ(read("s", 0, 10, true).events.size(), 2u);
  EXPECT_EQ(append("s", 5, {event("c")}).result, OperationResult::WrongExpectedVersion);
}

TEST_F(EngineTest, SoftDeleteThenUndeleteContinuesNumbering) {
  append("s", kExpectedNoStream, {event("a"), event("b")});
  ASSERT_EQ(remove("s", 1, false).result, OperationResult::Success);
  EXPECT_EQ(read("s", 0, 10, true).status, ReadStreamStatus::NoStream);
  EXPECT_EQ(append("s", kExpectedStreamExists, {event("x")}).result,
            OperationResult::StreamDeleted);
  auto w = append("s", kExpectedAny, {event("c")});
  ASSERT_EQ(w.result, OperationResult::Success);
  EXPECT_EQ(w.first_event_number, 2);
  auto r = read("s", 0, 10, true);
  ASSERT_EQ(r.status, ReadStreamStatus::Success);
  ASSERT_EQ(r.events.size(), 1u);
  EXPECT_EQ(r.events[0].event->number, 2);
}

TEST_F(EngineTest, HardDeleteIsFinal) {
  append("s", kExpectedNoStream, {event("a")});
  ASSERT_EQ(remove("s", kExpectedAny, true).result, OperationResult::Success);
  EXPECT_EQ(read("s", 0, 10, true).status, ReadStreamStatus::StreamDeleted);
  EXPECT_EQ(append("s", kExpectedAny, {event("b")}).result, OperationResult::StreamDeleted);
  EXPECT_EQ(remove("s", kExpectedAny, false).result, OperationResult::StreamDeleted);
  EXPECT_EQ(read("$$s", 0, 10, true).status, ReadStreamStatus::StreamDeleted);
}

TEST_F(EngineTest, AclOnMetadataDeniesAnonymous) {
  auto meta = NewEvent{random_guid(), "$metadata", true, false, R"({"$acl":{"$w":"$admins"}})", ""};
  ASSERT_EQ(append("$$s", kExpectedAny, {meta}, kAdmin).result, OperationResult::Success);
  EXPECT_EQ(append("s", kExpectedAny, {event("a")}).result, OperationResult::AccessDenied);
  EXPECT_EQ(append("s", kExpectedAny, {event("a")}, kAdmin).result, OperationResult::Success);
}

// Keeps what a read hands to its sink (TCP's reads encode it straight away).
struct RecordingSink final : ReadSink {
  void row(const RecordView& record) override { events.push_back(to_record(record)); }
  void resolved(const ResolvedEvent& e) override { links.push_back(e); }
  std::vector<EventRecord> events;
  std::vector<ResolvedEvent> links;
};

TEST_F(EngineTest, ReadsIntoASinkGiveTheSameEventsAndRefuseAlike) {
  ASSERT_EQ(append("s", kExpectedNoStream, {event("a"), event("b"), event("c")}).result,
            OperationResult::Success);
  const auto link = NewEvent{random_guid(), "$>", false, false, "0@s", ""};
  ASSERT_EQ(append("l", kExpectedAny, {link}).result, OperationResult::Success);

  auto stream_into = [&](const Principal& who, const std::string& s, bool resolve) {
    auto sink = std::make_shared<RecordingSink>();
    std::promise<ReadStreamResult> p;
    engine_->read_stream_into(who, s, 0, 10, true, resolve, sink,
                              [&](ReadStreamResult r) { p.set_value(std::move(r)); });
    return std::make_pair(p.get_future().get(), sink);
  };
  auto [r, sink] = stream_into(kAdmin, "s", false);
  ASSERT_EQ(r.status, ReadStreamStatus::Success);
  EXPECT_TRUE(r.events.empty());
  const auto collected = read("s", 0, 10, true);
  ASSERT_EQ(sink->events.size(), collected.events.size());
  for (size_t i = 0; i < sink->events.size(); ++i) {
    EXPECT_EQ(sink->events[i].event_id, collected.events[i].event->event_id);
    EXPECT_EQ(sink->events[i].position, collected.events[i].event->position);
  }
  EXPECT_EQ(r.next_event_number, collected.next_event_number);
  EXPECT_TRUE(r.is_end_of_stream);

  // A link read with resolve_links comes resolved; without, as the stored record.
  auto [linked, linked_sink] = stream_into(kAdmin, "l", true);
  ASSERT_EQ(linked_sink->links.size(), 1u);
  EXPECT_EQ(linked_sink->links[0].event->event_type, "a");
  auto [unresolved, unresolved_sink] = stream_into(kAdmin, "l", false);
  ASSERT_EQ(unresolved_sink->events.size(), 1u);
  EXPECT_EQ(unresolved_sink->events[0].event_type, "$>");

  // The stream's ACL and $all's admins-only rule hold on this path too: nothing reaches the sink.
  const auto meta =
      NewEvent{random_guid(), "$metadata", true, false, R"({"$acl":{"$r":"$admins"}})", ""};
  ASSERT_EQ(append("$$s", kExpectedAny, {meta}, kAdmin).result, OperationResult::Success);
  auto [denied, denied_sink] = stream_into(Principal::anon(), "s", false);
  EXPECT_EQ(denied.status, ReadStreamStatus::AccessDenied);
  EXPECT_TRUE(denied_sink->events.empty());
  // Nor through a link: the target it may not read resolves as missing.
  auto [via_link, via_link_sink] = stream_into(Principal::anon(), "l", true);
  ASSERT_EQ(via_link.status, ReadStreamStatus::Success);
  ASSERT_EQ(via_link_sink->links.size(), 1u);
  EXPECT_FALSE(via_link_sink->links[0].event);

  for (const Principal& who : {Principal::anon(), Principal{"ann", {"$ops"}}}) {
    auto all_sink = std::make_shared<RecordingSink>();
    std::promise<ReadAllResult> p;
    engine_->read_all_into(who, Position::start(), 10, true, false, all_sink,
                           [&](ReadAllResult result) { p.set_value(std::move(result)); });
    EXPECT_EQ(p.get_future().get().status, ReadAllStatus::AccessDenied);
    EXPECT_TRUE(all_sink->events.empty());
  }
  auto all_sink = std::make_shared<RecordingSink>();
  std::promise<ReadAllResult> p;
  engine_->read_all_into(kAdmin, Position::start(), 2, true, false, all_sink,
                         [&](ReadAllResult result) { p.set_value(std::move(result)); });
  const ReadAllResult all = p.get_future().get();
  ASSERT_EQ(all.status, ReadAllStatus::Success);
  ASSERT_EQ(all_sink->events.size(), 2u);
  EXPECT_EQ(all.next.prepare, all_sink->events[1].log_end);
}

TEST_F(EngineTest, BuiltInUsersAuthenticate) {
  std::promise<std::optional<Principal>> good, bad;
  std::promise<bool> bad_not_ready;
  engine_->authenticate("admin", "changeit", [&](AuthResult r) { good.set_value(r.principal); });
  engine_->authenticate("admin", "wrong", [&](AuthResult r) {
    bad_not_ready.set_value(r.not_ready);
    bad.set_value(r.principal);
  });
  const auto g = good.get_future().get();
  ASSERT_TRUE(g);
  EXPECT_TRUE(g->is_admin());
  EXPECT_FALSE(bad.get_future().get());
  EXPECT_FALSE(bad_not_ready.get_future().get()) << "a single node can always check a login";
}

TEST_F(EngineTest, SubscriptionSeesCommittedEventsInOrder) {
  std::promise<std::optional<int64_t>> confirmed;
  std::promise<std::vector<std::string>> got;
  auto seen = std::make_shared<std::vector<std::string>>();
  SubscriptionCallbacks cb;
  cb.confirmed = [&](int64_t, std::optional<int64_t> last) { confirmed.set_value(last); };
  cb.event_appeared = [&, seen](const ResolvedEvent& e) {
    seen->push_back(e.event->event_type);
    if (seen->size() == 2) got.set_value(*seen);
  };
  cb.dropped = [](DropReason) {};
  engine_->subscribe(Principal::anon(), "sub", false, cb);
  EXPECT_EQ(confirmed.get_future().get(), -1);
  append("sub", kExpectedAny, {event("one"), event("two")});
  EXPECT_EQ(got.get_future().get(), (std::vector<std::string>{"one", "two"}));
}

EngineConfig on_disk(const std::string& folder) {
  EngineConfig c;
  c.db_folder = folder;
  return c;
}

TEST(EngineOnDisk, SurvivesReopen) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("chorus-engine-" + to_string(random_guid()));
  {
    auto e = Engine::open(on_disk(dir.string()));
    std::promise<WriteResult> p;
    e->append(Principal::anon(), "s", kExpectedNoStream, {event("a")},
              [&](WriteResult r) { p.set_value(r); });
    ASSERT_EQ(p.get_future().get().result, OperationResult::Success);
  }
  {
    auto e = Engine::open(on_disk(dir.string()));
    std::promise<ReadEventResult> p;
    e->read_event(Principal::anon(), "s", -1, false, [&](ReadEventResult r) { p.set_value(r); });
    const auto r = p.get_future().get();
    ASSERT_EQ(r.status, ReadEventStatus::Success);
    EXPECT_EQ(r.event->event->event_type, "a");
  }
  std::filesystem::remove_all(dir);
}

// Security hole 2: a link must not reveal a target its reader may not read. Anonymous links to
// the admin's user record (which holds the password hash); reading it back with links resolved
// gives the link alone, while the admin, who may read the target, gets it.
TEST_F(EngineTest, LinksResolveOnlyTargetsTheReaderMayRead) {
  NewEvent link{random_guid(), "$>", false, false, "0@$user-admin", ""};
  ASSERT_EQ(append("hole2", kExpectedNoStream, {link}).result, OperationResult::Success);
  auto read_as = [&](const Principal& who) {
    std::promise<ReadStreamResult> p;
    engine_->read_stream(who, "hole2", 0, 10, true, true,
                         [&](ReadStreamResult r) { p.set_value(std::move(r)); });
    return p.get_future().get();
  };
  const auto anon = read_as(Principal::anon());
  ASSERT_EQ(anon.events.size(), 1u);
  EXPECT_FALSE(anon.events[0].event) << "the target leaked";
  ASSERT_TRUE(anon.events[0].link);
  const auto admin = read_as(kAdmin);
  ASSERT_EQ(admin.events.size(), 1u);
  ASSERT_TRUE(admin.events[0].event);
  EXPECT_EQ(admin.events[0].event->stream, "$user-admin");
}

}  // namespace
}  // namespace chorus
