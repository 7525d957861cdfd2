// Proves, on three real engines replicating in one process, how the built-in users' default
// logins meet a cluster that is forming or catching up (worker/engine/builtin_user_gate.hpp):
// - right after the first election, while the leader's bootstrap write of admin and ops cannot
//   commit, admin's default login on the leader and on a follower is held rather than refused,
//   and accepted once the write commits; a wrong password is still refused, and other logins
//   are answered at once;
// - a follower restarted on an old log, whose log has admin's first record but not the change
//   of password (nor the disabling of ops) committed meanwhile, refuses the default passwords
//   even while it has applied only part of what the cluster committed, and accepts the new one
//   once caught up;
// - a check still held at its deadline, and one beyond kBuiltinUserWaitersMax, is answered
//   "not ready" (neither accepted nor refused as a wrong password), right password or not;
//   once the bootstrap commits a wrong password is refused as such.
// The network between the engines drops chosen Appends, so each state is held for as long as
// the test needs it, with no timing assumption beyond deadlines.
#include "tests/unit/engine_trio.hpp"
#include "tests/unit/eventually.hpp"
#include "worker/engine/builtin_user_gate.hpp"
#include "worker/engine/engine.hpp"
#include "worker/engine/users.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <vector>

namespace chorus {
namespace {

using namespace std::chrono_literals;
using test::Network;
using test::Trio;

const Principal kAdmin{"admin", {"$admins"}};
constexpr auto kDeadline = 20s;

// An Append carrying an entry whose bytes contain `text` (a stream name, an event type).
bool append_carries(const replication::Message& m, const std::string& text) {
  const auto* append = std::get_if<replication::Append>(&m.body);
  if (append == nullptr) return false;
  for (const replication::Entry& e : append->entries) {
    if (e.payload.view().find(text) != std::string_view::npos) return true;
  }
  return false;
}

std::future<AuthResult> login_later(Engine& engine, const std::string& user,
                                    const std::string& pw) {
  auto p = std::make_shared<std::promise<AuthResult>>();
  engine.authenticate(user, pw, [p](AuthResult checked) { p->set_value(std::move(checked)); });
  return p->get_future();
}

AuthResult result(std::future<AuthResult>& f) {
  EXPECT_EQ(f.wait_for(kDeadline), std::future_status::ready) << "no answer";
  return f.get();
}

// The principal a check accepted; nullopt when refused or not ready.
std::optional<Principal> answer(std::future<AuthResult>& f) { return result(f).principal; }

std::optional<Principal> login(Engine& engine, const std::string& user, const std::string& pw) {
  auto f = login_later(engine, user, pw);
  return answer(f);
}

WriteResult append(Engine& engine, const std::string& stream, std::vector<NewEvent> events) {
  std::promise<WriteResult> p;
  auto f = p.get_future();
  engine.append(kAdmin, stream, kExpectedAny, std::move(events),
                [&p](WriteResult r) { p.set_value(r); });
  EXPECT_EQ(f.wait_for(kDeadline), std::future_status::ready);
  return f.get();
}

// Writes on whichever node leads (an election under a loaded machine may move the leader); a
// retry carries the same event ids, so it is idempotent.
OperationResult append_on_leader(Trio& trio, const std::string& stream, std::vector<NewEvent> e) {
  WriteResult r;
  test::eventually(
      [&] {
        const int leader = trio.leader();
        if (leader < 0) return false;
        r = append(trio[leader], stream, e);
        return r.not_handled == NotHandledReason::None &&
               r.result != OperationResult::CommitTimeout;
      },
      kDeadline);
  return r.result;
}

NewEvent user_updated(const UserRecord& user) {
  return NewEvent{random_guid(), "$UserUpdated", true, false, user_to_json(user), ""};
}

TEST(BuiltinUsersInACluster, DefaultLoginWaitsForTheFirstLeadersBootstrap) {
  Trio trio(false);
  Network* network = &trio.network();
  // The bootstrap's records never reach a follower until released: nothing about them commits.
  network->set_drop([](const replication::Message& m) { return append_carries(m, "$user-"); });
  const int leader = trio.leader();
  const int follower = (leader + 1) % 3;

  auto on_leader = login_later(trio[leader], "admin", "changeit");
  auto on_follower = login_later(trio[follower], "admin", "changeit");
  auto ops = login_later(trio[leader], "ops", "changeit");
  auto wrong = login_later(trio[leader], "admin", "not-the-password");
  // Another login is not held: it has no record, so it is refused at once.
  EXPECT_FALSE(login(trio[leader], "alice", "changeit"));
  // Held, not refused, while the bootstrap cannot commit.
  EXPECT_EQ(on_leader.wait_for(300ms), std::future_status::timeout)
      << "admin's default login was answered before admin existed";
  EXPECT_EQ(on_follower.wait_for(0ms), std::future_status::timeout);

  network->set_drop(nullptr);
  const auto admin = answer(on_leader);
  ASSERT_TRUE(admin) << "admin's default login refused on the fresh leader";
  EXPECT_TRUE(admin->is_admin());
  EXPECT_TRUE(answer(on_follower)) << "admin's default login refused on a follower";
  EXPECT_TRUE(answer(ops));
  const AuthResult refused = result(wrong);
  EXPECT_FALSE(refused.principal) << "a wrong password was accepted";
  EXPECT_FALSE(refused.not_ready) << "a wrong password, once checkable, must be refused as such";
  // Once open, the gate lets checks straight through, and refusals still hold.
  EXPECT_TRUE(login(trio[follower], "admin", "changeit"));
  EXPECT_FALSE(login(trio[follower], "admin", "wrong"));
}

TEST(BuiltinUsersInACluster, AHoldThatEndsWithoutAnAnswerIsNotReadyWhateverThePassword) {
  Trio trio(false);
  trio.network().set_drop(
      [](const replication::Message& m) { return append_carries(m, "$user-"); });
  const int leader = trio.leader();
  const int follower = (leader + 1) % 3;

  const auto held_at = std::chrono::steady_clock::now();
  auto right = login_later(trio[leader], "admin", "changeit");
  auto wrong = login_later(trio[leader], "admin", "not-the-password");
  auto on_follower = login_later(trio[follower], "ops", "changeit");
  for (auto* f : {&right, &wrong, &on_follower}) {
    const AuthResult r = result(*f);
    EXPECT_FALSE(r.principal) << "accepted before the bootstrap committed";
    EXPECT_TRUE(r.not_ready) << "a held login that timed out was refused as a wrong password";
  }
  EXPECT_GE(std::chrono::steady_clock::now() - held_at,
            std::chrono::milliseconds(kBuiltinUserWaitMs))
      << "answered before its deadline";

  // Beyond the limit of held checks a check is answered at once, not ready too.
  std::vector<std::future<AuthResult>> held;
  for (size_t i = 0; i < kBuiltinUserWaitersMax; ++i) {
    held.push_back(login_later(trio[leader], i % 2 == 0 ? "admin" : "ops", "changeit"));
  }
  for (const char* pw : {"changeit", "not-the-password"}) {
    auto over = login_later(trio[leader], "admin", pw);
    ASSERT_EQ(over.wait_for(kBuiltinUserWaitMs * 1ms / 2), std::future_status::ready)
        << "a check beyond the limit was held";
    const AuthResult r = over.get();
    EXPECT_FALSE(r.principal);
    EXPECT_TRUE(r.not_ready) << "a check beyond the limit was refused as a wrong password";
  }
  EXPECT_EQ(held.front().wait_for(0ms), std::future_status::timeout);
  // The engines' shutdown answers the held checks (not ready).
}

TEST(BuiltinUsersInACluster, AFollowerRestartedOnAnOldLogNeverTakesAReplacedDefaultPassword) {
  Trio trio(true);
  const int leader = trio.leader();
  const int behind = (leader + 1) % 3;
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(test::eventually([&] { return login(trio[i], "admin", "changeit").has_value(); },
                                 kDeadline))
        << "node " << i << " never accepted admin's default login";
  }
  trio.stop(behind);

  // While it is down: more than one Append's worth of events, then admin's new password and
  // ops disabled (as POST /users/{login}/command/reset-password and .../disable write them).
  const std::string filler(400 * 1024, 'x');
  for (int i = 0; i < 4; ++i) {
    ASSERT_EQ(append_on_leader(trio, "filler",
                               {NewEvent{random_guid(), "Filler", false, false, filler, ""}}),
              OperationResult::Success);
  }
  UserRecord admin = make_user("admin", "Event Store Administrator", {"$admins"}, "new-pw");
  UserRecord ops = make_user("ops", "Event Store Operations", {"$ops"}, "changeit");
  ops.disabled = true;
  ASSERT_EQ(append_on_leader(trio, user_stream("admin"), {user_updated(admin)}),
            OperationResult::Success);
  ASSERT_EQ(append_on_leader(trio, user_stream("ops"), {user_updated(ops)}),
            OperationResult::Success);

  // Restarted, it catches up to the first events but never receives the changes, so what it
  // has applied shows admin's first record only.
  const std::string behind_id = trio.id(behind);
  trio.network().set_drop([behind_id](const replication::Message& m) {
    return m.to == behind_id && append_carries(m, "$UserUpdated");
  });
  trio.start(behind);
  ASSERT_TRUE(
      test::eventually([&] { return trio[behind].stats().commit_checkpoint > 0; }, kDeadline));
  auto old_admin = login_later(trio[behind], "admin", "changeit");
  auto old_ops = login_later(trio[behind], "ops", "changeit");
  auto new_admin = login_later(trio[behind], "admin", "new-pw");
  EXPECT_EQ(old_admin.wait_for(300ms), std::future_status::timeout)
      << "a node behind the cluster answered admin's login from a replaced record";

  trio.network().set_drop(nullptr);
  EXPECT_FALSE(answer(old_admin)) << "admin's replaced default password was accepted";
  EXPECT_FALSE(answer(old_ops)) << "disabled ops was accepted with its default password";
  EXPECT_TRUE(answer(new_admin)) << "admin's new password was refused once caught up";
}

}  // namespace
}  // namespace chorus
