// Unit tests of the SystemProjections leader service against an in-memory log (a fake
// LeaderContext with the write path's idempotency by event id): links land once and in source
// order when writes time out (whether or not they happened), when a target refuses them for
// good, and when the service restarts from its checkpoint on the same log; a projection
// disabled, enabled and reset at run time (also with a log that no longer remembers the links'
// ids) ends with each link once, in order, and keeps its state on the next leader; its query
// text changes how categories are cut.
#include "worker/services/system_projections.hpp"

#include <gtest/gtest.h>

#include <deque>
#include <map>
#include <optional>
#include <set>

using namespace chorus;
using projections::SystemProjection;

namespace {

// A log on one thread: appends become visible at once; answers and timers run from run_until().
class FakeLog {
 public:
  struct Failure {
    OperationResult result;
    bool applied;  // the write happened although it was reported as failed
  };
  std::vector<EventRecord> records;
  std::function<std::optional<Failure>(const std::string& stream)> fail;
  // false: as a log whose memory of recent event ids has moved past the links (a long history).
  bool remember_ids = true;
  SystemProjections* service = nullptr;
  int64_t now_ms = 0;

  LeaderContext context() {
    LeaderContext c;
    c.append = [this](const Principal&, const std::string& stream, int64_t,
                      std::vector<NewEvent> events, std::function<void(WriteResult)> done) {
      tasks_.push_back([this, stream, events = std::move(events), done = std::move(done)] {
        done(append(stream, events.front()));
      });
    };
    c.last_number = [this](const std::string& stream) { return last_number(stream); };
    c.read_stream = [this](const std::string& stream, int64_t, int32_t, bool, bool,
                           std::function<void(ReadStreamResult)> done) {
      tasks_.push_back([this, stream, done = std::move(done)] {
        ReadStreamResult r;
        r.status = ReadStreamStatus::NoStream;
        for (auto it = records.rbegin(); it != records.rend(); ++it) {
          if (it->stream != stream) continue;
          r.status = ReadStreamStatus::Success;
          r.events.push_back(ResolvedEvent{*it, std::nullopt});
          break;
        }
        done(std::move(r));
      });
    };
    c.read_all = [this](Position from, int32_t count, bool,
                        std::function<void(ReadAllResult)> done) {
      tasks_.push_back([this, from, count, done = std::move(done)] {
        ReadAllResult r;
        const auto size = static_cast<int64_t>(records.size());
        int64_t i = std::max<int64_t>(from.prepare, 0);
        for (; i < size && static_cast<int32_t>(r.events.size()) < count; ++i) {
          r.events.push_back(ResolvedEvent{records[static_cast<size_t>(i)], std::nullopt});
        }
        r.next = Position{i, i};
        done(std::move(r));
      });
    };
    c.after = [this](int delay_ms, std::function<void()> work) {
      timers_.emplace(now_ms + delay_ms, std::move(work));
    };
    c.commit_position = [this] { return static_cast<int64_t>(records.size()) - 1; };
    return c;
  }

  void write(const std::string& stream, const std::string& type) {
    append(stream, NewEvent{random_guid(), type, true, false, "{}", ""});
  }

  void run_until(int64_t until_ms) {
    for (int steps = 0; steps < 1'000'000; ++steps) {
      if (!tasks_.empty()) {
        auto task = std::move(tasks_.front());
        tasks_.pop_front();
        task();
        continue;
      }
      if (timers_.empty() || timers_.begin()->first > until_ms) return;
      auto timer = timers_.begin();
      now_ms = std::max(now_ms, timer->first);
      auto work = std::move(timer->second);
      timers_.erase(timer);
      work();
    }
    FAIL() << "the fake log did not settle";
  }

  // The "<number>@<stream>" data of every link in `stream`, in order.
  std::vector<std::string> links_in(const std::string& stream) const {
    std::vector<std::string> out;
    for (const auto& r : records) {
      if (r.stream == stream) out.push_back(r.data);
    }
    return out;
  }

  // What $ce-<category> should hold: each event of the category's streams once, in log order.
  std::vector<std::string> expected_category(const std::string& category) const {
    std::vector<std::string> out;
    for (const auto& r : records) {
      if (r.stream.rfind(category + "-", 0) == 0) {
        out.push_back(std::to_string(r.number) + "@" + r.stream);
      }
    }
    return out;
  }

 private:
  int64_t last_number(const std::string& stream) const {
    int64_t last = -1;
    for (const auto& r : records) {
      if (r.stream == stream) last = r.number;
    }
    return last;
  }

  WriteResult append(const std::string& stream, const NewEvent& e) {
    WriteResult w;
    for (const auto& r : records) {
      if (remember_ids && r.stream == stream && r.event_id == e.event_id) return w;  // retry
    }
    const auto failure = fail ? fail(stream) : std::nullopt;
    if (!failure || failure->applied) {
      EventRecord r;
      r.stream = stream;
      r.number = last_number(stream) + 1;
      r.event_id = e.event_id;
      r.event_type = e.event_type;
      r.data = e.data;
      r.metadata = e.metadata;
      r.position =
          Position{static_cast<int64_t>(records.size()), static_cast<int64_t>(records.size())};
      records.push_back(r);
      if (service != nullptr) {
        tasks_.push_back([this, r] { service->on_record_committed(r); });
      }
    }
    if (failure) w.result = failure->result;
    return w;
  }

  std::deque<std::function<void()>> tasks_;
  std::multimap<int64_t, std::function<void()>> timers_;
};

projections::ProjectionReply run_command(FakeLog& log, SystemProjections& service,
                                         SystemProjection p, const std::string& command) {
  projections::ProjectionReply answer;
  answer.outcome = projections::ProjectionOutcome::Invalid;
  answer.message = "no answer";
  service.command(Principal{"admin", {"$admins"}}, p, command,
                  [&](projections::ProjectionReply r) { answer = std::move(r); });
  log.run_until(log.now_ms);
  return answer;
}

std::vector<SystemProjection> all_projections() {
  return {projections::kSystemProjections.begin(), projections::kSystemProjections.end()};
}

void write_sources(FakeLog& log, int count) {
  for (int i = 0; i < count; ++i) {
    log.write("order-" + std::to_string(i % 7), i % 2 == 0 ? "Placed" : "Paid");
    log.write("user-" + std::to_string(i % 3), "Seen");
  }
}

}  // namespace

// Every source event is linked once, in log order, in $ce- and $et-; $streams has each stream's
// first event once.
TEST(SystemProjectionsService, LinksOnceInOrder) {
  FakeLog log;
  write_sources(log, 1'500);
  SystemProjections service(all_projections(), [&] { return log.now_ms; });
  log.service = &service;
  LeaderContext context = log.context();
  service.start(context);
  log.run_until(10'000);
  EXPECT_EQ(log.links_in("$ce-order"), log.expected_category("order"));
  EXPECT_EQ(log.links_in("$ce-user"), log.expected_category("user"));
  EXPECT_EQ(log.links_in("$et-Seen").size(), 1'500u);
  EXPECT_EQ(log.links_in("$streams").size(), 10u);
  EXPECT_EQ(log.links_in("$category-order").size(), 7u);
  EXPECT_FALSE(log.links_in("$projections-$by_category-checkpoint").empty());
  service.stop();
}

// Writes that time out after they happened, and a spell in which the log refuses every write
// (as a node that is briefly not ready), are written again by id: no link is lost or doubled
// and the order holds. (A refused write is only ever followed by refusals in a real log: it
// proposes in order and refuses only when it does not lead.)
TEST(SystemProjectionsService, TimeoutsAndRefusalsAreRetriedWithoutGapsOrDuplicates) {
  FakeLog log;
  write_sources(log, 1'000);
  int n = 0;
  int64_t refuse_until_ms = -1;
  log.fail = [&](const std::string& stream) -> std::optional<FakeLog::Failure> {
    if (stream.rfind("$ce-", 0) != 0 && stream.rfind("$et-", 0) != 0) return std::nullopt;
    n += 1;
    if (log.now_ms < refuse_until_ms)
      return FakeLog::Failure{OperationResult::PrepareTimeout, false};
    if (n == 1'500) {
      refuse_until_ms = log.now_ms + 700;
      return FakeLog::Failure{OperationResult::PrepareTimeout, false};
    }
    if (n % 97 == 0) return FakeLog::Failure{OperationResult::CommitTimeout, true};
    return std::nullopt;
  };
  SystemProjections service(all_projections(), [&] { return log.now_ms; });
  log.service = &service;
  LeaderContext context = log.context();
  service.start(context);
  log.run_until(60'000);
  EXPECT_GT(n, 4'100);  // the failures happened and the pages were written again
  EXPECT_EQ(log.links_in("$ce-order"), log.expected_category("order"));
  EXPECT_EQ(log.links_in("$ce-user"), log.expected_category("user"));
  EXPECT_EQ(log.links_in("$et-Seen").size(), 1'000u);
  service.stop();
}

// A target that refuses for good (here: every $bc- write) does not hold the others back.
TEST(SystemProjectionsService, PermanentRefusalSkipsOnlyThatLink) {
  FakeLog log;
  for (int i = 0; i < 50; ++i) {
    log.write("tag-" + std::to_string(i), "Tagged");
    log.records.back().metadata = R"({"$correlationId":"c1"})";
  }
  log.fail = [](const std::string& stream) -> std::optional<FakeLog::Failure> {
    if (stream.rfind("$bc-", 0) == 0)
      return FakeLog::Failure{OperationResult::StreamDeleted, false};
    return std::nullopt;
  };
  SystemProjections service(all_projections(), [&] { return log.now_ms; });
  log.service = &service;
  LeaderContext context = log.context();
  service.start(context);
  log.run_until(10'000);
  EXPECT_TRUE(log.links_in("$bc-c1").empty());
  EXPECT_EQ(log.links_in("$ce-tag"), log.expected_category("tag"));
  service.stop();
}

// A new leader (a new service on the same log) resumes from the checkpoint: links written after
// the checkpoint are recognised by id, and new events are linked after them.
TEST(SystemProjectionsService, RestartResumesWithoutDuplicates) {
  FakeLog log;
  write_sources(log, 600);
  {
    SystemProjections first(all_projections(), [&] { return log.now_ms; });
    log.service = &first;
    LeaderContext context = log.context();
    first.start(context);
    log.run_until(log.now_ms + 500);  // before its first checkpoint is due
    first.stop();
    log.run_until(log.now_ms);  // answers in flight reach a stopped service
    log.service = nullptr;
  }
  EXPECT_TRUE(log.links_in("$projections-$by_category-checkpoint").empty());
  EXPECT_FALSE(log.links_in("$ce-order").empty());
  write_sources(log, 300);
  SystemProjections second(all_projections(), [&] { return log.now_ms; });
  log.service = &second;
  LeaderContext context = log.context();
  second.start(context);
  log.run_until(log.now_ms + 20'000);
  EXPECT_EQ(log.links_in("$ce-order"), log.expected_category("order"));
  EXPECT_EQ(log.links_in("$ce-user"), log.expected_category("user"));
  second.stop();
}

// A disabled $by_category links nothing new while the others go on; enabled again it links
// what it missed, each event once and in order; a reset relinks nothing its stream already
// holds, even when the log no longer recognises the links' ids.
TEST(SystemProjectionsService, DisableEnableResetLinkEachEventOnce) {
  FakeLog log;
  write_sources(log, 300);
  SystemProjections service(all_projections(), [&] { return log.now_ms; });
  log.service = &service;
  LeaderContext context = log.context();
  service.start(context);
  log.run_until(log.now_ms + 5'000);
  ASSERT_EQ(log.links_in("$ce-order"), log.expected_category("order"));

  const auto disabled = run_command(log, service, SystemProjection::ByCategory, "disable");
  EXPECT_EQ(disabled.outcome, projections::ProjectionOutcome::Ok) << disabled.message;
  const size_t linked = log.links_in("$ce-order").size();
  write_sources(log, 200);
  log.run_until(log.now_ms + 5'000);
  EXPECT_EQ(log.links_in("$ce-order").size(), linked);
  EXPECT_EQ(log.links_in("$et-Seen").size(), 500u);  // the others went on
  for (const auto& s : service.describe()) {
    if (s.name == "$by_category") {
      EXPECT_EQ(s.status, "Stopped");
    }
  }

  EXPECT_EQ(run_command(log, service, SystemProjection::ByCategory, "enable").outcome,
            projections::ProjectionOutcome::Ok);
  log.run_until(log.now_ms + 5'000);
  EXPECT_EQ(log.links_in("$ce-order"), log.expected_category("order"));
  EXPECT_EQ(log.links_in("$ce-user"), log.expected_category("user"));
  EXPECT_EQ(log.links_in("$et-Seen").size(), 500u);

  log.remember_ids = false;
  EXPECT_EQ(run_command(log, service, SystemProjection::ByCategory, "reset").outcome,
            projections::ProjectionOutcome::Ok);
  write_sources(log, 100);
  log.run_until(log.now_ms + 10'000);
  EXPECT_EQ(log.links_in("$ce-order"), log.expected_category("order"));
  EXPECT_EQ(log.links_in("$ce-user"), log.expected_category("user"));
  EXPECT_EQ(log.links_in("$et-Seen").size(), 600u);
  EXPECT_EQ(run_command(log, service, SystemProjection::ByCategory, "jump").outcome,
            projections::ProjectionOutcome::NotFound);
  service.stop();
}

// Commands take $admins or $ops; a disabled projection stays disabled on the next leader, which
// reads its definition, and its query ("last" separator) is kept too.
TEST(SystemProjectionsService, DefinitionSurvivesTheLeaderAndRefusesOthers) {
  FakeLog log;
  log.write("shop-eu-1", "Sold");
  {
    SystemProjections first(all_projections(), [&] { return log.now_ms; });
    log.service = &first;
    LeaderContext context = log.context();
    first.start(context);
    log.run_until(log.now_ms + 2'000);
    projections::ProjectionReply refused;
    first.command(Principal{"bob", {"devs"}}, SystemProjection::Streams, "disable",
                  [&](projections::ProjectionReply r) { refused = std::move(r); });
    EXPECT_EQ(refused.outcome, projections::ProjectionOutcome::AccessDenied);
    first.update_query(Principal{"ops", {"$ops"}}, SystemProjection::ByCategory, "last\n-",
                       [](projections::ProjectionReply) {});
    projections::ProjectionReply bad;
    first.update_query(Principal{"ops", {"$ops"}}, SystemProjection::ByCategory, "middle\n-",
                       [&](projections::ProjectionReply r) { bad = std::move(r); });
    EXPECT_EQ(bad.outcome, projections::ProjectionOutcome::Invalid);
    EXPECT_EQ(run_command(log, first, SystemProjection::Streams, "disable").outcome,
              projections::ProjectionOutcome::Ok);
    log.run_until(log.now_ms + 2'000);
    first.stop();
    log.run_until(log.now_ms);
  }
  EXPECT_EQ(log.links_in("$ce-shop"), (std::vector<std::string>{"0@shop-eu-1"}));
  SystemProjections second(all_projections(), [&] { return log.now_ms; });
  log.service = &second;
  LeaderContext context = log.context();
  second.start(context);
  log.write("shop-us-2", "Sold");
  log.run_until(log.now_ms + 5'000);
  EXPECT_EQ(log.links_in("$ce-shop-us"), (std::vector<std::string>{"0@shop-us-2"}));
  EXPECT_EQ(log.links_in("$streams"), (std::vector<std::string>{"0@shop-eu-1"}));
  projections::ProjectionReply query;
  second.query(SystemProjection::ByCategory,
               [&](projections::ProjectionReply r) { query = std::move(r); });
  EXPECT_EQ(query.body, "last\n-");
  for (const auto& s : second.describe()) {
    EXPECT_EQ(s.status, s.name == "$streams" ? "Stopped" : "Running") << s.name;
  }
  second.stop();
}
