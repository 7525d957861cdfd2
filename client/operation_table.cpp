// OperationTable: queue, in-flight map and retry counting (see operation_table.hpp).
#include "client/operation_table.hpp"

#include <boost/functional/hash.hpp>
#include <boost/uuid/uuid_hash.hpp>

#include <algorithm>
#include <utility>

#include "common/guid.hpp"

namespace chorus::client {

size_t OperationTable::GuidHash::operator()(const Guid& g) const { return boost::hash<Guid>()(g); }

OperationTable::OperationTable(TableLimits limits) : limits_(limits) {}

OperationTable::OperationPtr OperationTable::enqueue(OperationPtr op) {
  if (total_count() >= static_cast<size_t>(std::max(limits_.max_queue_size, 0))) return op;
  waiting_.push_back(std::move(op));
  return nullptr;
}

std::vector<Operation*> OperationTable::start_waiting(int64_t now_ms) {
  std::vector<Operation*> started;
  const auto max_in_flight = static_cast<size_t>(std::max(limits_.max_concurrent_items, 1));
  while (!waiting_.empty() && in_flight_.size() < max_in_flight) {
    OperationPtr op = std::move(waiting_.front());
    waiting_.pop_front();
    op->correlation_id = random_guid();
    op->sent_ms = now_ms;
    started.push_back(op.get());
    in_flight_.emplace(op->correlation_id, std::move(op));
  }
  return started;
}

Operation* OperationTable::find(const Guid& correlation_id) const {
  auto it = in_flight_.find(correlation_id);
  return it == in_flight_.end() ? nullptr : it->second.get();
}

OperationTable::OperationPtr OperationTable::remove(const Guid& correlation_id) {
  auto it = in_flight_.find(correlation_id);
  if (it == in_flight_.end()) return nullptr;
  OperationPtr op = std::move(it->second);
  in_flight_.erase(it);
  return op;
}

bool OperationTable::count_retry(Operation& op) const {
  ++op.retries;
  op.sent_ms = -1;
  return limits_.max_retries < 0 || op.retries <= limits_.max_retries;
}

OperationTable::OperationPtr OperationTable::retry(const Guid& correlation_id, bool delayed) {
  OperationPtr op = remove(correlation_id);
  if (!op) return nullptr;
  if (!count_retry(*op)) return op;
  (delayed ? delayed_ : waiting_).push_back(std::move(op));
  return nullptr;
}

std::vector<OperationTable::OperationPtr> OperationTable::retry_all_in_flight() {
  // Oldest first, so the resends keep the order the operations were sent in.
  std::vector<OperationPtr> ops;
  for (auto& [id, op] : in_flight_) ops.push_back(std::move(op));
  in_flight_.clear();
  std::sort(ops.begin(), ops.end(),
            [](const OperationPtr& a, const OperationPtr& b) { return a->sent_ms < b->sent_ms; });
  std::vector<OperationPtr> exhausted;
  std::deque<OperationPtr> resend;
  for (OperationPtr& op : ops) {
    if (count_retry(*op)) {
      resend.push_back(std::move(op));
    } else {
      exhausted.push_back(std::move(op));
    }
  }
  // Resends go ahead of operations that were never sent.
  for (auto it = resend.rbegin(); it != resend.rend(); ++it) waiting_.push_front(std::move(*it));
  return exhausted;
}

std::vector<OperationTable::OperationPtr> OperationTable::check_timeouts(int64_t now_ms) {
  std::vector<Guid> expired;
  for (const auto& [id, op] : in_flight_) {
    if (now_ms - op->sent_ms >= limits_.operation_timeout_ms) expired.push_back(id);
  }
  std::vector<OperationPtr> exhausted;
  for (const Guid& id : expired) {
    if (OperationPtr op = retry(id, false)) exhausted.push_back(std::move(op));
  }
  while (!delayed_.empty()) {
    waiting_.push_back(std::move(delayed_.front()));
    delayed_.pop_front();
  }
  return exhausted;
}

OperationTable::OperationPtr OperationTable::take_if(
    const std::function<bool(const Operation&)>& match) {
  for (auto* queue : {&waiting_, &delayed_}) {
    auto it = std::find_if(queue->begin(), queue->end(),
                           [&](const OperationPtr& op) { return match(*op); });
    if (it != queue->end()) {
      OperationPtr op = std::move(*it);
      queue->erase(it);
      return op;
    }
  }
  for (auto it = in_flight_.begin(); it != in_flight_.end(); ++it) {
    if (match(*it->second)) {
      OperationPtr op = std::move(it->second);
      in_flight_.erase(it);
      return op;
    }
  }
  return nullptr;
}

std::vector<OperationTable::OperationPtr> OperationTable::take_all() {
  std::vector<OperationPtr> all;
  for (auto* queue : {&waiting_, &delayed_}) {
    for (OperationPtr& op : *queue) all.push_back(std::move(op));
    queue->clear();
  }
  for (auto& [id, op] : in_flight_) all.push_back(std::move(op));
  in_flight_.clear();
  return all;
}

}  // namespace chorus::client
