// OperationTable: the operations of one client, waiting or in flight, with the official clients'
// rules: a bounded queue, a bounded number in flight, a new correlation id for every send,
// resends after a timeout or a lost connection, and a retry limit. Pure: time is passed in (ms of
// a steady clock) and nothing is sent here; the ClientCore sends what start_waiting() returns.
// Not thread-safe; the ClientCore's strand owns it.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <unordered_map>
#include <vector>

#include "client/operations.hpp"

namespace chorus::client {

struct TableLimits {
  int max_queue_size = 5000;        // waiting + in flight
  int max_concurrent_items = 5000;  // in flight
  int max_retries = 10;             // -1: unlimited
  int operation_timeout_ms = 7000;
};

class OperationTable {
 public:
  using OperationPtr = std::unique_ptr<Operation>;

  explicit OperationTable(TableLimits limits);

  // Queues an operation; hands it back when the table is full (the caller fails it).
  OperationPtr enqueue(OperationPtr op);
  // Moves waiting operations in flight, oldest first, up to max_concurrent_items; each gets a new
  // correlation id and `now_ms` as its send time. The caller sends them in the returned order.
  std::vector<Operation*> start_waiting(int64_t now_ms);
  // The in-flight operation with this correlation id, or null (late or unknown reply).
  Operation* find(const Guid& correlation_id) const;
  // Takes an in-flight operation out (it completed or became a live subscription).
  OperationPtr remove(const Guid& correlation_id);
  // Resends an in-flight operation: at the next check_timeouts() when `delayed` (NotReady,
  // TooBusy), else with the next start_waiting(). Counts a retry; hands the operation back when
  // that exceeds max_retries (the caller fails it).
  OperationPtr retry(const Guid& correlation_id, bool delayed);
  // The connection was lost: every in-flight operation is retried. Returns those out of retries.
  std::vector<OperationPtr> retry_all_in_flight();
  // Retries in-flight operations sent more than operation_timeout_ms ago and releases delayed
  // retries into the waiting queue. Returns the operations out of retries.
  std::vector<OperationPtr> check_timeouts(int64_t now_ms);
  // Removes the operation (waiting, delayed or in flight) for which `match` is true.
  OperationPtr take_if(const std::function<bool(const Operation&)>& match);
  // Everything, for failing at close.
  std::vector<OperationPtr> take_all();

  size_t waiting_count() const { return waiting_.size() + delayed_.size(); }
  size_t in_flight_count() const { return in_flight_.size(); }
  size_t total_count() const { return waiting_count() + in_flight_count(); }

 private:
  // Counts a retry; true when the operation may be resent.
  bool count_retry(Operation& op) const;

  struct GuidHash {
    size_t operator()(const Guid& g) const;
  };

  TableLimits limits_;
  std::deque<OperationPtr> waiting_;
  std::deque<OperationPtr> delayed_;
  std::unordered_map<Guid, OperationPtr, GuidHash> in_flight_;
};

}  // namespace chorus::client
