// Goal: the OperationTable keeps the official clients' rules: a bounded queue and in-flight
// count, a new correlation id but the same body on every resend, timeouts and lost connections
// retried in order, delayed retries (NotReady) held until the next check, and the retry limit.
#include "client/operation_table.hpp"

#include <gtest/gtest.h>

#include <optional>

namespace chorus::client {
namespace {

struct Probe {
  std::optional<Error> error;
  bool done = false;
};

std::unique_ptr<Operation> op(Probe& probe, const std::string& stream = "s") {
  return make_append(stream, kExpectedVersionAny, {EventData{random_guid(), "t", true, "{}", ""}},
                     true, [&probe](Result<WriteResult> r) {
                       probe.done = true;
                       if (!r.ok()) probe.error = r.error();
                     });
}

TableLimits limits(int queue, int concurrent, int retries, int timeout_ms = 1000) {
  return TableLimits{queue, concurrent, retries, timeout_ms};
}

TEST(ClientTable, QueueIsBounded) {
  OperationTable table(limits(2, 10, 1));
  Probe a, b, c;
  EXPECT_EQ(table.enqueue(op(a)), nullptr);
  EXPECT_EQ(table.enqueue(op(b)), nullptr);
  EXPECT_NE(table.enqueue(op(c)), nullptr) << "the third operation must be handed back";
}

TEST(ClientTable, InFlightIsBoundedAndKeepsOrder) {
  OperationTable table(limits(10, 2, 1));
  Probe p[3];
  for (auto& probe : p) table.enqueue(op(probe, "s" + std::to_string(&probe - p)));
  std::vector<Operation*> started = table.start_waiting(0);
  ASSERT_EQ(started.size(), 2u);
  EXPECT_EQ(table.in_flight_count(), 2u);
  EXPECT_EQ(table.waiting_count(), 1u);
  EXPECT_NE(started[0]->correlation_id, started[1]->correlation_id);
  table.remove(started[0]->correlation_id);
  EXPECT_EQ(table.start_waiting(1).size(), 1u);
}

TEST(ClientTable, RetryResendsTheSameBodyWithANewCorrelationId) {
  OperationTable table(limits(10, 10, 3));
  Probe probe;
  table.enqueue(op(probe));
  Operation* first = table.start_waiting(0).front();
  const Guid first_id = first->correlation_id;
  const std::string body = first->payload();
  EXPECT_EQ(table.retry(first_id, false), nullptr);
  EXPECT_EQ(table.find(first_id), nullptr) << "a late reply to the old id must not match";
  Operation* again = table.start_waiting(5).front();
  EXPECT_NE(again->correlation_id, first_id);
  EXPECT_EQ(again->payload(), body) << "same event ids: the resend is idempotent";
  EXPECT_EQ(again->retries, 1);
}

TEST(ClientTable, DelayedRetriesWaitForTheNextCheck) {
  OperationTable table(limits(10, 10, 3));
  Probe probe;
  table.enqueue(op(probe));
  const Guid id = table.start_waiting(0).front()->correlation_id;
  table.retry(id, true);
  EXPECT_TRUE(table.start_waiting(1).empty());
  EXPECT_TRUE(table.check_timeouts(2).empty());
  EXPECT_EQ(table.start_waiting(2).size(), 1u);
}

TEST(ClientTable, TimeoutsAreRetriedUntilTheLimit) {
  OperationTable table(limits(10, 10, 2, 1000));
  Probe probe;
  table.enqueue(op(probe));
  int64_t now = 0;
  for (int round = 0; round < 2; ++round) {
    table.start_waiting(now);
    EXPECT_TRUE(table.check_timeouts(now + 999).empty()) << "not yet timed out";
    now += 1000;
    EXPECT_TRUE(table.check_timeouts(now).empty()) << "retry " << round + 1 << " is allowed";
  }
  table.start_waiting(now);
  std::vector<std::unique_ptr<Operation>> out = table.check_timeouts(now + 1000);
  ASSERT_EQ(out.size(), 1u) << "the third timeout exceeds max_retries 2";
  EXPECT_EQ(out[0]->retries, 3);
  EXPECT_EQ(table.total_count(), 0u);
}

TEST(ClientTable, LostConnectionResendsInFlightFirstInSendOrder) {
  OperationTable table(limits(10, 2, 5));
  Probe p[3];
  for (int i = 0; i < 3; ++i) table.enqueue(op(p[i], "s" + std::to_string(i)));
  std::vector<Operation*> started = table.start_waiting(0);
  started[1]->sent_ms = 5;  // sent later than the first
  const std::string first_body = started[0]->payload();
  EXPECT_TRUE(table.retry_all_in_flight().empty());
  EXPECT_EQ(table.in_flight_count(), 0u);
  std::vector<Operation*> resent = table.start_waiting(10);
  ASSERT_EQ(resent.size(), 2u);
  EXPECT_EQ(resent[0]->payload(), first_body);
  EXPECT_EQ(resent[0]->retries, 1);
  EXPECT_EQ(table.waiting_count(), 1u) << "the never-sent operation waits behind the resends";
}

TEST(ClientTable, UnlimitedRetries) {
  OperationTable table(limits(10, 10, -1, 10));
  Probe probe;
  table.enqueue(op(probe));
  for (int i = 0; i < 100; ++i) {
    table.start_waiting(i * 10);
    ASSERT_TRUE(table.check_timeouts(i * 10 + 10).empty());
  }
}

TEST(ClientTable, TakeAllEmptiesEveryQueue) {
  OperationTable table(limits(10, 1, 3));
  Probe p[3];
  for (auto& probe : p) table.enqueue(op(probe));
  const Guid id = table.start_waiting(0).front()->correlation_id;
  table.retry(id, true);
  table.start_waiting(0);
  EXPECT_EQ(table.take_all().size(), 3u);
  EXPECT_EQ(table.total_count(), 0u);
}

}  // namespace
}  // namespace chorus::client
