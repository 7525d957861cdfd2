// Unit tests of the projection runtime (worker/projections/projection): EventStore's projection
// language on event sequences (sources, partitions, handlers, emit, linkTo, results, $deleted)
// and its failures (throws, compile errors, the time and memory limits).
#include "worker/projections/projection.hpp"

#include <gtest/gtest.h>
#include <pthread.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>

using namespace chorus::projections;

namespace {

ProjectionEvent ev(std::string stream, int64_t number, std::string type, std::string data,
                   std::string metadata = "") {
  ProjectionEvent e;
  e.stream = std::move(stream);
  e.number = number;
  e.event_type = std::move(type);
  e.is_json = true;
  e.data = std::move(data);
  e.metadata = std::move(metadata);
  e.event_id = "00000000-0000-0000-0000-" + std::to_string(100000000000 + number);
  return e;
}

std::unique_ptr<Projection> compile_ok(const std::string& query, JsLimits limits = {}) {
  auto c = Projection::compile("test", query, limits);
  EXPECT_EQ(c.error, "");
  EXPECT_NE(c.projection, nullptr);
  return std::move(c.projection);
}

const char* kBalance = R"(
  fromCategory('account').foreachStream().when({
    $init: function () { return { balance: 0, count: 0 }; },
    Deposited: function (s, e) { s.balance += e.body.amount; s.count++; },
    Withdrawn: function (s, e) { s.balance -= e.data.amount; s.count++; return s; }
  });
)";

}  // namespace

// A foreachStream fold keeps one state per stream, starts each from $init and ignores events of
// other categories and of types without a handler.
TEST(ProjectionRuntime, ForeachStreamFoldsEachStreamFromInit) {
  auto p = compile_ok(kBalance);
  EXPECT_TRUE(p->sources().by_streams);
  EXPECT_EQ(p->sources().categories, std::vector<std::string>{"account"});
  EXPECT_EQ(p->process(ev("account-1", 0, "Deposited", R"({"amount":10})")).outcome,
            Outcome::Processed);
  EXPECT_EQ(p->process(ev("account-2", 0, "Deposited", R"({"amount":5})")).partition, "account-2");
  EXPECT_EQ(p->process(ev("account-1", 1, "Withdrawn", R"({"amount":3})")).outcome,
            Outcome::Processed);
  EXPECT_EQ(p->process(ev("account-1", 2, "Renamed", R"({})")).outcome, Outcome::Skipped);
  EXPECT_EQ(p->process(ev("order-1", 0, "Deposited", R"({"amount":99})")).outcome,
            Outcome::Skipped);
  EXPECT_EQ(p->state("account-1"), R"({"balance":7,"count":2})");
  EXPECT_EQ(p->state("account-2"), R"({"balance":5,"count":1})");
  EXPECT_EQ(p->state("order-1"), std::nullopt);
  EXPECT_FALSE(p->faulted());
}

// The balance projection gives the right totals after 10,000 events.
TEST(ProjectionRuntime, BalanceAfterTenThousandEvents) {
  auto p = compile_ok(kBalance);
  int64_t expected[10] = {};
  for (int i = 0; i < 10'000; ++i) {
    const int account = i % 10;
    const int amount = i % 7 + 1;
    const bool deposit = i % 3 != 0;
    expected[account] += deposit ? amount : -amount;
    auto r = p->process(ev("account-" + std::to_string(account), i / 10,
                           deposit ? "Deposited" : "Withdrawn",
                           R"({"amount":)" + std::to_string(amount) + "}"));
    ASSERT_EQ(r.outcome, Outcome::Processed) << p->fault();
  }
  for (int a = 0; a < 10; ++a) {
    EXPECT_EQ(p->state("account-" + std::to_string(a)),
              R"({"balance":)" + std::to_string(expected[a]) + R"(,"count":1000})");
  }
}

// partitionBy puts events into the partition the function names; $any runs before the typed
// handler and both see the same event.
TEST(ProjectionRuntime, PartitionByAndAnyThenTypedHandler) {
  auto p = compile_ok(R"(
    fromAll().partitionBy(function (e) { return e.body.region; }).when({
      $init: function () { return { seen: [] }; },
      $any: function (s, e) { s.seen.push('any:' + e.eventType); },
      Sold: function (s, e) { s.seen.push('sold:' + e.body.qty); }
    });
  )");
  p->process(ev("shop-1", 0, "Sold", R"({"region":"north","qty":2})"));
  p->process(ev("shop-2", 0, "Opened", R"({"region":"south"})"));
  p->process(ev("shop-2", 1, "Sold", R"({"region":"north","qty":5})"));
  EXPECT_EQ(p->state("north"), R"({"seen":["any:Sold","sold:2","any:Sold","sold:5"]})");
  EXPECT_EQ(p->state("south"), R"({"seen":["any:Opened"]})");
  EXPECT_EQ(p->state(""), std::nullopt);
}

// The event object carries EventStore's fields: body/data (parsed JSON), bodyRaw, streamId,
// sequenceNumber, eventType, category, partition, metadata (parsed lazily), linkMetadata, isJson.
TEST(ProjectionRuntime, EventObjectHasEventStoresFields) {
  auto p = compile_ok(R"(
    fromStream('$ce-user').when({
      $any: function (s, e) {
        return { body: e.body.name, data: e.data.name, raw: e.bodyRaw, stream: e.streamId,
                 n: e.sequenceNumber, type: e.eventType, cat: e.category, part: e.partition,
                 meta: e.metadata.who, link: e.linkMetadata.via, json: e.isJson, id: e.eventId };
      }
    });
  )");
  auto e = ev("user-7", 3, "Named", R"({"name":"ann"})", R"({"who":"ops"})");
  e.read_stream = "$ce-user";
  e.resolved_link = true;
  e.link_metadata = R"({"via":"ce"})";
  ASSERT_EQ(p->process(e).outcome, Outcome::Processed) << p->fault();
  EXPECT_EQ(p->state(""), R"({"body":"ann","data":"ann","raw":"{\"name\":\"ann\"}",)"
                          R"("stream":"user-7","n":3,"type":"Named","cat":"user","part":"",)"
                          R"("meta":"ops","link":"ce","json":true,)"
                          R"("id":"00000000-0000-0000-0000-100000000003"})");
  // An event read from another stream is not this projection's.
  EXPECT_EQ(p->process(ev("user-7", 4, "Named", R"({"name":"bob"})")).outcome, Outcome::Skipped);
}

// A binary (non-JSON) event has isJson false, no parsed body and its raw text in bodyRaw; a
// query without when() keeps the last event as its state, as EventStore's default handler.
TEST(ProjectionRuntime, NonJsonEventsAndTheDefaultHandler) {
  auto p = compile_ok(R"(fromStreams(['a', 'b']).when({
    $any: function (s, e) { return { json: e.isJson, body: e.body, raw: e.bodyRaw }; } });)");
  auto e = ev("a", 0, "Blob", "not json");
  e.is_json = false;
  p->process(e);
  EXPECT_EQ(p->state(""), R"({"json":false,"body":null,"raw":"not json"})");
  EXPECT_EQ(p->process(ev("c", 0, "Blob", "{}")).outcome, Outcome::Skipped);

  auto q = compile_ok("fromStream('s');");
  q->process(ev("s", 0, "Any", R"({"v":1})"));
  EXPECT_EQ(q->state(""), R"({"v":1})");
}

// emit() and linkTo() hand back the events to write; linkTo's data is "<number>@<stream>".
TEST(ProjectionRuntime, EmitAndLinkTo) {
  auto p = compile_ok(R"(
    fromCategory('order').when({
      Placed: function (s, e) {
        emit('audit-' + e.body.id, 'OrderSeen', { id: e.body.id }, { source: e.streamId });
        linkTo('big-orders', e);
      }
    });
  )");
  auto r = p->process(ev("order-9", 4, "Placed", R"({"id":9})"));
  ASSERT_EQ(r.outcome, Outcome::Processed) << p->fault();
  ASSERT_EQ(r.emitted.size(), 2u);
  EXPECT_EQ(r.emitted[0].stream, "audit-9");
  EXPECT_EQ(r.emitted[0].event_type, "OrderSeen");
  EXPECT_TRUE(r.emitted[0].is_json);
  EXPECT_EQ(r.emitted[0].data, R"({"id":9})");
  EXPECT_EQ(r.emitted[0].metadata, R"({"source":"order-9"})");
  EXPECT_EQ(r.emitted[1].stream, "big-orders");
  EXPECT_EQ(r.emitted[1].event_type, "$>");
  EXPECT_FALSE(r.emitted[1].is_json);
  EXPECT_EQ(r.emitted[1].data, "4@order-9");
  // The next event starts with nothing emitted.
  EXPECT_TRUE(p->process(ev("order-9", 5, "Shipped", "{}")).emitted.empty());
}

// outputState, transformBy and filterBy shape the result; options name the result stream.
TEST(ProjectionRuntime, ResultsTransformAndFilter) {
  auto p = compile_ok(R"(
    fromStream('s').when({ $init: function () { return { n: 0 }; },
                           $any: function (s) { s.n++; } })
      .filterBy(function (s) { return s.n % 2 === 0; })
      .transformBy(function (s) { return { doubled: s.n * 2 }; });
  )");
  EXPECT_TRUE(p->sources().produces_results);
  EXPECT_EQ(p->result_stream(), "$projections-test-result");
  p->process(ev("s", 0, "X", "{}"));
  EXPECT_EQ(p->state(""), R"({"n":1})");
  EXPECT_EQ(p->result(""), std::nullopt);  // filtered out: n is odd
  p->process(ev("s", 1, "X", "{}"));
  EXPECT_EQ(p->result(""), R"({"doubled":4})");

  auto q = compile_ok(R"(options({ resultStreamName: 'totals', $includeLinks: true,
                                   reorderEvents: false, processingLag: 500 });
                         fromAll().when({ $any: function (s) { return s; } }).outputState();)");
  EXPECT_EQ(q->result_stream(), "totals");
  EXPECT_TRUE(q->sources().include_links);
  EXPECT_EQ(q->sources().processing_lag_ms, 500);
}

// Link records reach a fromAll projection only with $includeLinks.
TEST(ProjectionRuntime, LinksOnlyWithIncludeLinks) {
  auto link = ev("$ce-a", 0, "$>", "0@a-1");
  link.is_json = false;
  auto without = compile_ok("fromAll().when({ $any: function (s) { return s; } });");
  EXPECT_EQ(without->process(link).outcome, Outcome::Skipped);
  auto with = compile_ok(R"(options({ $includeLinks: true });
                            fromAll().when({ $any: function (s) { return s; } });)");
  EXPECT_EQ(with->process(link).outcome, Outcome::Processed);
}

// $deleted runs with the deleted stream's partition (foreachStream), and $initShared gives every
// handler [state, sharedState].
TEST(ProjectionRuntime, DeletedAndSharedState) {
  auto p = compile_ok(R"(
    fromCategory('cart').foreachStream().when({
      $init: function () { return { items: 0 }; },
      Added: function (s) { s.items++; },
      $deleted: function (s, notice) {
        emit('carts-deleted', 'CartDeleted', { cart: notice.partition, soft: notice.isSoftDeleted,
                                               items: s.items });
        return { deleted: true };
      }
    });
  )");
  p->process(ev("cart-1", 0, "Added", "{}"));
  p->process(ev("cart-1", 1, "Added", "{}"));
  auto r = p->stream_deleted("cart-1", true);
  ASSERT_EQ(r.outcome, Outcome::Processed) << p->fault();
  ASSERT_EQ(r.emitted.size(), 1u);
  EXPECT_EQ(r.emitted[0].data, R"({"cart":"cart-1","soft":true,"items":2})");
  EXPECT_EQ(p->state("cart-1"), R"({"deleted":true})");
  EXPECT_EQ(p->stream_deleted("order-1", false).outcome, Outcome::Skipped);

  auto shared = compile_ok(R"(
    fromAll().foreachStream().when({
      $init: function () { return { mine: 0 }; },
      $initShared: function () { return { total: 0 }; },
      $any: function (s) { s[0].mine++; s[1].total++; return s; }
    });
  )");
  shared->process(ev("a", 0, "X", "{}"));
  shared->process(ev("b", 0, "X", "{}"));
  shared->process(ev("a", 1, "X", "{}"));
  EXPECT_EQ(shared->state("a"), R"({"mine":2})");
  EXPECT_EQ(shared->shared_state(), R"({"total":3})");
}

// A state restored from a checkpoint is where folding resumes.
TEST(ProjectionRuntime, LoadStateResumes) {
  auto p = compile_ok(kBalance);
  ASSERT_TRUE(p->load_state("account-1", R"({"balance":100,"count":10})"));
  p->process(ev("account-1", 10, "Deposited", R"({"amount":1})"));
  EXPECT_EQ(p->state("account-1"), R"({"balance":101,"count":11})");
}

// A handler that throws faults the projection with its message; nothing runs after that.
TEST(ProjectionRuntime, ThrowingHandlerFaults) {
  auto p = compile_ok(R"(fromStream('s').when({
    $init: function () { return { n: 0 }; },
    Bad: function () { throw new Error('amount missing'); },
    Good: function (s) { s.n++; } });)");
  EXPECT_EQ(p->process(ev("s", 0, "Good", "{}")).outcome, Outcome::Processed);
  EXPECT_EQ(p->process(ev("s", 1, "Bad", "{}")).outcome, Outcome::Faulted);
  EXPECT_TRUE(p->faulted());
  EXPECT_NE(p->fault().find("amount missing"), std::string::npos) << p->fault();
  EXPECT_EQ(p->process(ev("s", 2, "Good", "{}")).outcome, Outcome::Faulted);
  EXPECT_EQ(p->state(""), R"({"n":1})");  // the last good state stays readable
}

// A query that does not compile, selects no source or names an unknown option is refused with
// a message that says why.
TEST(ProjectionRuntime, BadQueriesAreRefused) {
  auto syntax = Projection::compile("x", "fromAll().when({", {});
  EXPECT_EQ(syntax.projection, nullptr);
  EXPECT_NE(syntax.error.find("SyntaxError"), std::string::npos) << syntax.error;
  auto none = Projection::compile("x", "var a = 1;", {});
  EXPECT_NE(none.error.find("selects no source"), std::string::npos) << none.error;
  auto option = Projection::compile("x", "options({ bogus: 1 }); fromAll();", {});
  EXPECT_NE(option.error.find("Unrecognized option: bogus"), std::string::npos) << option.error;
  auto twice = Projection::compile("x", "fromAll(); fromStream('a');", {});
  EXPECT_NE(twice.error.find("once"), std::string::npos) << twice.error;
  auto huge = Projection::compile("x", std::string(kQueryBytesMax + 1, ' '), {});
  EXPECT_NE(huge.error.find("limit"), std::string::npos) << huge.error;
}

// A runaway handler is stopped at its time limit (in about that time, not forever) and faults
// the projection; so is a runaway query body at compile time.
TEST(ProjectionRuntime, RunawayHandlerHitsTheTimeLimit) {
  JsLimits limits;
  limits.call_time_ms = 50;
  auto p = compile_ok("fromStream('s').when({ $any: function () { for (;;) {} } });", limits);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(p->process(ev("s", 0, "X", "{}")).outcome, Outcome::Faulted);
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_LT(took, std::chrono::seconds(2));
  EXPECT_NE(p->fault().find("limit of 50 ms"), std::string::npos) << p->fault();

  // A try/catch in the query cannot swallow the timeout.
  auto sneaky = compile_ok(R"(fromStream('s').when({ $any: function () {
    for (;;) { try { for (;;) {} } catch (e) {} } } });)",
                           limits);
  EXPECT_EQ(sneaky->process(ev("s", 0, "X", "{}")).outcome, Outcome::Faulted);
  EXPECT_NE(sneaky->fault().find("limit of 50 ms"), std::string::npos) << sneaky->fault();

  auto at_compile = Projection::compile("x", "for (;;) {}", limits);
  EXPECT_NE(at_compile.error.find("limit of 50 ms"), std::string::npos) << at_compile.error;
}

// The time limit counts the handler's own CPU time, not the wall clock: a handler that is slow
// only because its thread waits for a CPU (here it shares one CPU, as SCHED_IDLE, with a busy
// thread of normal priority, so it gets a small fraction of that CPU) is not faulted, however
// long it takes.
TEST(ProjectionRuntime, TheTimeLimitCountsCpuTimeNotTheWaitForACpu) {
  JsLimits limits;
  limits.call_time_ms = 100;
  auto p = compile_ok(R"(fromStream('s').when({ $any: function () {
    var x = 0; for (var i = 0; i < 200000; i++) { x += i % 7; } return { x: x }; } });)",
                      limits);
  const auto thread_cpu = [] {
    timespec t{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return std::chrono::seconds(t.tv_sec) + std::chrono::nanoseconds(t.tv_nsec);
  };
  // Alone, one call costs far less CPU than the limit (else this machine cannot show anything).
  const auto cpu_before = thread_cpu();
  ASSERT_EQ(p->process(ev("s", 0, "X", "{}")).outcome, Outcome::Processed) << p->fault();
  const auto alone = thread_cpu() - cpu_before;
  if (alone > std::chrono::milliseconds(limits.call_time_ms / 2)) {
    GTEST_SKIP() << "one call alone took " << alone.count() << " ns of CPU";
  }

  cpu_set_t one_cpu;
  CPU_ZERO(&one_cpu);
  CPU_SET(sched_getcpu(), &one_cpu);
  std::atomic<bool> busy{true};
  std::atomic<bool> pinned{false};
  int hog_pinned = -1;  // pthread calls' results: 0 when done
  std::thread hog([&] {
    hog_pinned = pthread_setaffinity_np(pthread_self(), sizeof one_cpu, &one_cpu);
    pinned = true;
    while (busy) {
    }
  });
  std::chrono::steady_clock::duration wall{};
  ProcessResult slow;
  int starved_pinned = -1;
  int starved_idle = -1;
  std::thread starved([&] {
    starved_pinned = pthread_setaffinity_np(pthread_self(), sizeof one_cpu, &one_cpu);
    sched_param idle{};
    starved_idle = pthread_setschedparam(pthread_self(), SCHED_IDLE, &idle);
    while (!pinned) std::this_thread::yield();
    const auto start = std::chrono::steady_clock::now();
    slow = p->process(ev("s", 1, "X", "{}"));
    wall = std::chrono::steady_clock::now() - start;
  });
  starved.join();
  busy = false;
  hog.join();
  ASSERT_EQ(hog_pinned, 0) << "pinning the busy thread";
  ASSERT_EQ(starved_pinned, 0) << "pinning the handler's thread";
  ASSERT_EQ(starved_idle, 0) << "SCHED_IDLE for the handler's thread";
  EXPECT_EQ(slow.outcome, Outcome::Processed) << p->fault();
  // The call really took longer than the limit by the wall clock (else this proves nothing).
  EXPECT_GT(wall, std::chrono::milliseconds(limits.call_time_ms)) << alone.count() << " ns alone";
}

// A handler that grows its state past the heap limit faults with the memory limit's message;
// the heap never grows past the limit.
TEST(ProjectionRuntime, MemoryHogHitsTheHeapLimit) {
  JsLimits limits;
  limits.heap_bytes_max = 8u * 1024u * 1024u;
  limits.call_time_ms = 5'000;
  auto p = compile_ok(R"(fromStream('s').when({
    $init: function () { return { junk: [] }; },
    $any: function (s) { for (var i = 0; ; i++) s.junk.push('x' + i + 'yyyyyyyyyyyyyyyy'); } });)",
                      limits);
  EXPECT_EQ(p->process(ev("s", 0, "X", "{}")).outcome, Outcome::Faulted);
  EXPECT_NE(p->fault().find("memory limit of 8388608 bytes"), std::string::npos) << p->fault();
}

// A handler may emit at most 1,000 events for one event (each is a write).
TEST(ProjectionRuntime, EmitLimitPerEvent) {
  auto p = compile_ok(R"(fromStream('s').when({ $any: function () {
    for (var i = 0; i < 1001; i++) emit('out', 'E', { i: i }); } });)");
  EXPECT_EQ(p->process(ev("s", 0, "X", "{}")).outcome, Outcome::Faulted);
  EXPECT_NE(p->fault().find("at most 1000"), std::string::npos) << p->fault();
}

// The heap is a sandbox: no Duktape internals, no require, no print; log() is kept, bounded.
TEST(ProjectionRuntime, SandboxHasNoHostAccess) {
  auto p = compile_ok(R"(fromStream('s').when({ $any: function () {
    log('checked');
    return { duktape: typeof Duktape, require: typeof require, print: typeof print }; } });)");
  p->process(ev("s", 0, "X", "{}"));
  EXPECT_EQ(p->state(""), R"({"duktape":"undefined","require":"undefined","print":"undefined"})");
  EXPECT_EQ(p->log_lines(), std::vector<std::string>{"checked"});
}

// A snapshot of every partition (and the shared state) restores into a fresh projection, which
// folds on from there: what a checkpoint of a continuous projection holds.
TEST(ProjectionRuntime, SnapshotRestoresEveryPartition) {
  const char* query = R"(fromAll().foreachStream().when({
    $init: function () { return { n: 0 }; },
    $initShared: function () { return { total: 0 }; },
    $any: function (s) { s[0].n++; s[1].total++; return s; } });)";
  auto p = compile_ok(query);
  p->process(ev("a", 0, "X", "{}"));
  p->process(ev("b", 0, "X", "{}"));
  p->process(ev("a", 1, "X", "{}"));
  const auto snap = p->snapshot();
  ASSERT_TRUE(snap);
  auto q = compile_ok(query);
  ASSERT_TRUE(q->restore(*snap)) << q->fault();
  q->process(ev("b", 1, "X", "{}"));
  EXPECT_EQ(q->state("a"), R"({"n":2})");
  EXPECT_EQ(q->state("b"), R"({"n":2})");
  EXPECT_EQ(q->shared_state(), R"({"total":4})");
  EXPECT_FALSE(q->restore("not json"));
  EXPECT_TRUE(q->faulted());
}

// A partition's state is read out of a checkpoint's document as the projection shows it: what a
// node answers for a kept projection that is not running there.
TEST(ProjectionRuntime, PartitionStateInSnapshot) {
  auto p = compile_ok(kBalance);
  p->process(ev("account-1", 0, "Deposited", R"({"amount":5})"));
  p->process(ev("account-2", 0, "Deposited", R"({"amount":7})"));
  const auto snap = p->snapshot();
  ASSERT_TRUE(snap);
  EXPECT_EQ(partition_state_in(*snap, "account-1"), p->state("account-1"));
  EXPECT_EQ(partition_state_in(*snap, "account-2"), R"({"balance":7,"count":1})");
  EXPECT_EQ(partition_state_in(*snap, "account-3"), std::nullopt);
  EXPECT_EQ(partition_state_in(*snap, ""), std::nullopt);
  EXPECT_EQ(partition_state_in("not json", "account-1"), std::nullopt);
}
