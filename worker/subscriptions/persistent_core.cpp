// PersistentCore: see persistent_core.hpp. Design notes:
// - Sequence: events are taken in number order, from reads (history) or live records once a read
//   reached the end. A live record that does not follow the last one taken (a gap, a full live
//   buffer, a link to resolve) sends the core back to reading, so nothing is skipped.
// - Checkpoint = the lowest number not yet done - 1 (done: acked, skipped or parked), so after a
//   failover only what was not acknowledged, plus what was acked since the last checkpoint, is
//   delivered again.
#include "worker/subscriptions/persistent_core.hpp"

#include <algorithm>
#include <numeric>

namespace chorus {
namespace {

// FNV-1a: a stable hash of the source stream (EventStore uses xxHash; clients cannot tell).
uint32_t stream_hash(const std::string& stream) {
  uint32_t h = 2166136261u;
  for (unsigned char c : stream) {
    h ^= c;
    h *= 16777619u;
  }
  return h;
}

}  // namespace

std::vector<LatencyMeasurement> latency_statistics(std::vector<int64_t> samples_ms) {
  std::vector<LatencyMeasurement> out;
  if (samples_ms.empty()) return out;
  std::sort(samples_ms.begin(), samples_ms.end());
  const auto size = static_cast<int64_t>(samples_ms.size());
  // EventStore's index of a percentile (here in per mille, exact): truncated, at most the last.
  auto at = [&](int64_t per_mille) {
    return samples_ms[static_cast<size_t>(std::min(size - 1, per_mille * size / 1000))];
  };
  const int64_t sum = std::accumulate(samples_ms.begin(), samples_ms.end(), int64_t{0});
  out.push_back({"Mean", sum / size});
  out.push_back({"Median", samples_ms[static_cast<size_t>(size / 2)]});
  out.push_back({"Fastest", samples_ms.front()});
  for (int64_t i = 0; i < 5; ++i) out.push_back({"Quintile " + std::to_string(i + 1), at(i * 200)});
  const std::pair<const char*, int64_t> percentiles[] = {
      {"90%", 900}, {"95%", 950}, {"99%", 990}, {"99.5%", 995}, {"99.9%", 999}};
  for (const auto& [key, per_mille] : percentiles) out.push_back({key, at(per_mille)});
  out.push_back({"Highest", samples_ms.back()});
  return out;
}

std::optional<ConsumerStrategy> parse_strategy(const std::string& name) {
  if (name.empty() || name == "RoundRobin") return ConsumerStrategy::RoundRobin;
  if (name == "DispatchToSingle") return ConsumerStrategy::DispatchToSingle;
  if (name == "Pinned") return ConsumerStrategy::Pinned;
  return std::nullopt;
}

std::string strategy_name(ConsumerStrategy strategy) {
  switch (strategy) {
    case ConsumerStrategy::RoundRobin:
      return "RoundRobin";
    case ConsumerStrategy::DispatchToSingle:
      return "DispatchToSingle";
    case ConsumerStrategy::Pinned:
      return "Pinned";
  }
  return "RoundRobin";
}

std::optional<std::string> validate(const PersistentSettings& s) {
  if (s.read_batch_size <= 0) return "readBatchSize must be greater than 0";
  if (s.buffer_size <= 0) return "bufferSize must be greater than 0";
  if (s.live_buffer_size <= 0) return "liveBufferSize must be greater than 0";
  if (s.buffer_size <= s.read_batch_size) return "bufferSize must be greater than readBatchSize";
  if (s.buffer_size > kPersistentBufferMax || s.live_buffer_size > kPersistentBufferMax) {
    return "buffer sizes may not exceed " + std::to_string(kPersistentBufferMax);
  }
  if (s.message_timeout_ms < 0 || s.checkpoint_after_ms < 0) return "times may not be negative";
  if (s.max_retry_count < 0) return "maxRetryCount may not be negative";
  if (s.min_checkpoint_count < 0 || s.max_checkpoint_count < 0) {
    return "checkpoint counts may not be negative";
  }
  if (s.min_checkpoint_count > s.max_checkpoint_count) {
    return "minCheckPointCount may not exceed maxCheckPointCount";
  }
  if (s.max_subscriber_count < 0) return "maxSubscriberCount may not be negative";
  if (s.start_from < -1) return "startFrom must be -1 (the end) or an event number";
  return std::nullopt;
}

PersistentCore::PersistentCore(PersistentSettings settings, std::optional<int64_t> checkpoint,
                               int64_t last_number, int64_t now_ms)
    : settings_(settings), last_known_(last_number), last_checkpoint_ms_(now_ms) {
  if (checkpoint) {
    next_number_ = *checkpoint + 1;
  } else if (settings_.start_from >= 0) {
    next_number_ = settings_.start_from;
  } else {
    // "From the end" is fixed once, by a checkpoint, so a new leader does not move it forward.
    next_number_ = last_number + 1;
    actions_.push_back(persistent::Checkpoint{last_number});
  }
  last_checkpoint_ = next_number_ - 1;
  maybe_read();
}

// ---------------------------------------------------------------- consumers

bool PersistentCore::connect(uint64_t consumer, int32_t allowed_in_flight, int64_t now_ms) {
  const auto count = static_cast<int32_t>(order_.size());
  if ((settings_.max_subscriber_count > 0 && count >= settings_.max_subscriber_count) ||
      count >= kPersistentConsumersMax || consumers_.count(consumer) != 0) {
    actions_.push_back(persistent::Drop{consumer, DropReason::SubscriberMaxCountReached});
    return false;
  }
  Consumer& c = consumers_[consumer];
  c.slots = std::clamp(allowed_in_flight, 1, kPersistentInFlightMax);
  order_.push_back(consumer);
  dispatch(now_ms);
  return true;
}

void PersistentCore::disconnect(uint64_t consumer, int64_t now_ms) {
  auto it = consumers_.find(consumer);
  if (it == consumers_.end()) return;
  std::vector<PersistentMessage> back;
  for (const Guid& id : it->second.in_flight) {
    auto f = in_flight_.find(id);
    if (f == in_flight_.end()) continue;
    back.push_back(std::move(f->second.message));
    in_flight_.erase(f);
  }
  consumers_.erase(it);
  const auto pos = std::find(order_.begin(), order_.end(), consumer);
  const auto index = static_cast<size_t>(pos - order_.begin());
  order_.erase(pos);
  if (next_round_robin_ > index) --next_round_robin_;
  std::sort(back.begin(), back.end(),
            [](const auto& a, const auto& b) { return a.number < b.number; });
  for (auto& m : back) retry(std::move(m), "consumer disconnected");
  dispatch(now_ms);
}

std::vector<PersistentMessage> PersistentCore::pull(int32_t count, int64_t now_ms) {
  std::vector<PersistentMessage> out;
  for (auto* queue : {&retry_, &buffer_}) {
    while (!queue->empty() && static_cast<int32_t>(out.size()) < count) {
      PersistentMessage m = std::move(queue->front());
      const bool from_buffer = queue == &buffer_;
      queue->pop_front();
      if (from_buffer && !m.replayed) first_hand_out(m.number);
      if (in_flight_.count(m.id) != 0) continue;
      hand_out(0, m, now_ms);
      out.push_back(std::move(m));
    }
  }
  maybe_read();
  return out;
}

// ---------------------------------------------------------------- acks

std::optional<PersistentMessage> PersistentCore::take_in_flight(const Guid& id) {
  auto f = in_flight_.find(id);
  if (f == in_flight_.end()) return std::nullopt;
  InFlight entry = std::move(f->second);
  in_flight_.erase(f);
  auto c = consumers_.find(entry.consumer);
  if (c != consumers_.end()) c->second.in_flight.erase(id);
  return std::move(entry.message);
}

void PersistentCore::measure(const InFlight& entry, int64_t now_ms) {
  if (!settings_.extra_statistics) return;
  auto c = consumers_.find(entry.consumer);
  if (c == consumers_.end()) return;  // pulled over HTTP: no connection to measure
  auto& window = c->second.latencies_ms;
  if (window.size() >= kLatencyWindow) window.pop_front();
  window.push_back(std::max<int64_t>(0, now_ms - entry.handed_out_ms));
}

void PersistentCore::ack(const std::vector<Guid>& ids, int64_t now_ms) {
  for (const Guid& id : ids) {
    auto f = in_flight_.find(id);
    if (f == in_flight_.end()) continue;  // late (timed out and retried) or unknown: ignored
    measure(f->second, now_ms);
    auto c = consumers_.find(f->second.consumer);
    if (c != consumers_.end()) c->second.acked += 1;
    auto message = take_in_flight(id);
    done(*message);
    acked_since_checkpoint_ += 1;
  }
  last_hand_out_ms_ = now_ms;
  maybe_checkpoint(now_ms, false);
  dispatch(now_ms);
}

void PersistentCore::nak(uint64_t consumer, const std::vector<Guid>& ids, NakAction action,
                         const std::string& reason, int64_t now_ms) {
  for (const Guid& id : ids) {
    if (auto f = in_flight_.find(id); f != in_flight_.end()) measure(f->second, now_ms);
    auto message = take_in_flight(id);
    if (!message) continue;
    switch (action) {
      case NakAction::Park:
        actions_.push_back(persistent::Park{std::move(*message), reason});
        break;
      case NakAction::Skip:
        done(*message);
        acked_since_checkpoint_ += 1;
        break;
      case NakAction::Unknown:
      case NakAction::Retry:
      case NakAction::Stop:
        retry(std::move(*message), reason);
        break;
    }
  }
  if (action == NakAction::Stop && consumers_.count(consumer) != 0) {
    // The consumer asked to stop: it leaves, and what it holds goes to the others.
    actions_.push_back(persistent::Drop{consumer, DropReason::Unsubscribed});
    disconnect(consumer, now_ms);
  }
  maybe_checkpoint(now_ms, false);
  dispatch(now_ms);
}

void PersistentCore::retry(PersistentMessage message, const std::string& reason) {
  if (message.retry_count >= settings_.max_retry_count) {
    actions_.push_back(
        persistent::Park{std::move(message), "max retry count reached (" + reason + ")"});
    return;
  }
  message.retry_count += 1;
  retry_.push_back(std::move(message));
}

void PersistentCore::done(const PersistentMessage& message) {
  if (!message.replayed) {
    auto it = outstanding_.find(message.number);
    if (it != outstanding_.end()) outstanding_.erase(it);
  }
  processed_total_ += 1;
}

void PersistentCore::on_parked(const PersistentMessage& message) { done(message); }

void PersistentCore::replay(std::vector<PersistentMessage> messages, int64_t now_ms) {
  for (auto& m : messages) {
    m.replayed = true;
    m.retry_count = 0;
    retry_.push_back(std::move(m));
  }
  dispatch(now_ms);
}

// ---------------------------------------------------------------- reading

void PersistentCore::maybe_read() {
  if (live_ || reading_ || read_after_tick_) return;
  const auto buffered = static_cast<int32_t>(buffer_.size());
  if (buffered >= settings_.buffer_size) return;
  const int32_t count = std::min(settings_.read_batch_size, settings_.buffer_size - buffered);
  reading_ = true;
  actions_.push_back(persistent::Read{next_number_, count});
}

void PersistentCore::on_read(int64_t from, std::vector<PersistentMessage> messages,
                             int64_t next_number, bool end_of_stream, int64_t now_ms) {
  if (!reading_ || from != next_number_) return;  // an answer to a read we no longer want
  reading_ = false;
  // At the end without progress (a record seen live is not readable yet): wait for a tick
  // rather than read again at once.
  read_after_tick_ = end_of_stream && messages.empty() && next_number <= next_number_;
  for (auto& m : messages) {
    if (m.number < next_number_) continue;
    last_known_ = std::max(last_known_, m.number);
    next_number_ = m.number + 1;
    buffer_.push_back(std::move(m));
  }
  next_number_ = std::max(next_number_, next_number);
  // Caught up, unless a live record was seen beyond what this read could see.
  if (end_of_stream && next_number_ > last_known_) live_ = true;
  dispatch(now_ms);
  maybe_read();
}

void PersistentCore::on_read_failed() { reading_ = false; }

void PersistentCore::on_live(int64_t number, std::optional<PersistentMessage> message,
                             int64_t now_ms) {
  last_known_ = std::max(last_known_, number);
  // Something new was written: an empty read no longer has to wait for the tick.
  if (number >= next_number_) read_after_tick_ = false;
  if (!live_) return maybe_read();  // a read is out, or the next tick reads
  if (number < next_number_) return;
  if (number == next_number_ && message &&
      static_cast<int32_t>(buffer_.size()) < settings_.live_buffer_size) {
    buffer_.push_back(std::move(*message));
    next_number_ = number + 1;
    dispatch(now_ms);
    return;
  }
  live_ = false;  // a gap, a link to resolve or a full live buffer: read instead
  maybe_read();
}

// ---------------------------------------------------------------- dispatching

std::optional<uint64_t> PersistentCore::pick(const PersistentMessage& message) {
  const size_t n = order_.size();
  if (n == 0) return std::nullopt;
  auto has_slot = [this](uint64_t id) {
    const Consumer& c = consumers_.at(id);
    return static_cast<int32_t>(c.in_flight.size()) < c.slots;
  };
  switch (settings_.strategy) {
    case ConsumerStrategy::RoundRobin:
      for (size_t k = 0; k < n; ++k) {
        const size_t index = (next_round_robin_ + k) % n;
        if (has_slot(order_[index])) {
          next_round_robin_ = (index + 1) % n;
          return order_[index];
        }
      }
      return std::nullopt;
    case ConsumerStrategy::DispatchToSingle:
      for (uint64_t id : order_) {
        if (has_slot(id)) return id;
      }
      return std::nullopt;
    case ConsumerStrategy::Pinned: {
      const uint32_t bucket = stream_hash(message.source_stream) % kPinnedBuckets;
      const uint64_t id = order_[bucket % n];
      if (has_slot(id)) return id;
      return std::nullopt;
    }
  }
  return std::nullopt;
}

void PersistentCore::hand_out(uint64_t consumer, PersistentMessage message, int64_t now_ms) {
  const Guid id = message.id;
  if (consumer != 0) {
    Consumer& c = consumers_.at(consumer);
    c.in_flight.insert(id);
    c.delivered += 1;
    actions_.push_back(persistent::Deliver{consumer, message});
  }
  in_flight_[id] =
      InFlight{std::move(message), consumer, now_ms + settings_.message_timeout_ms, now_ms};
  last_hand_out_ms_ = now_ms;
}

bool PersistentCore::dispatch_one(PersistentMessage& message, int64_t now_ms) {
  const auto consumer = pick(message);
  if (!consumer) return false;
  hand_out(*consumer, std::move(message), now_ms);
  return true;
}

void PersistentCore::dispatch(int64_t now_ms) {
  const bool pinned = settings_.strategy == ConsumerStrategy::Pinned;
  for (auto* queue : {&retry_, &buffer_}) {
    const bool from_buffer = queue == &buffer_;
    size_t i = 0;
    while (i < queue->size()) {
      PersistentMessage& m = (*queue)[i];
      if (in_flight_.count(m.id) != 0) {  // a replayed copy of a message already out
        queue->erase(queue->begin() + static_cast<std::ptrdiff_t>(i));
        continue;
      }
      const int64_t number = m.number;
      const bool replayed = m.replayed;
      if (!dispatch_one(m, now_ms)) {
        if (!pinned) break;  // nobody has a free slot
        ++i;                 // its consumer is full; others may take later messages
        continue;
      }
      if (from_buffer && !replayed) first_hand_out(number);
      queue->erase(queue->begin() + static_cast<std::ptrdiff_t>(i));
    }
  }
  maybe_read();
}

// ---------------------------------------------------------------- time and checkpoints

void PersistentCore::tick(int64_t now_ms) {
  std::vector<Guid> expired;
  for (const auto& [id, entry] : in_flight_) {
    if (entry.deadline_ms <= now_ms) expired.push_back(id);
  }
  std::vector<PersistentMessage> back;
  for (const Guid& id : expired) back.push_back(*take_in_flight(id));
  std::sort(back.begin(), back.end(),
            [](const auto& a, const auto& b) { return a.number < b.number; });
  for (auto& m : back) retry(std::move(m), "message timeout");
  maybe_checkpoint(now_ms, true);
  read_after_tick_ = false;
  maybe_read();
  dispatch(now_ms);
}

int64_t PersistentCore::low_water() const {
  int64_t low = next_number_;
  if (!outstanding_.empty()) low = std::min(low, *outstanding_.begin());
  for (const auto& m : buffer_) {
    if (!m.replayed) {
      low = std::min(low, m.number);
      break;
    }
  }
  return low;
}

void PersistentCore::maybe_checkpoint(int64_t now_ms, bool timed) {
  const int64_t checkpoint = low_water() - 1;
  if (checkpoint <= last_checkpoint_) return;
  const bool due_by_count = acked_since_checkpoint_ >= settings_.max_checkpoint_count;
  const bool due_by_time = timed && now_ms - last_checkpoint_ms_ >= settings_.checkpoint_after_ms &&
                           acked_since_checkpoint_ >= settings_.min_checkpoint_count;
  if (!due_by_count && !due_by_time) return;
  actions_.push_back(persistent::Checkpoint{checkpoint});
  last_checkpoint_ = checkpoint;
  acked_since_checkpoint_ = 0;
  last_checkpoint_ms_ = now_ms;
}

void PersistentCore::first_hand_out(int64_t number) {
  outstanding_.insert(number);
  // Each number enters the buffer once (the sequence only moves forward), so this counts events.
  if (resume_ && number <= resume_last_) resume_->delivered += 1;
}

void PersistentCore::mark_resumed() {
  resume_ = ResumeStats{last_checkpoint_, std::max<int64_t>(0, last_known_ - last_checkpoint_), 0};
  resume_last_ = last_known_;
}

void PersistentCore::drop_all(DropReason reason) {
  for (uint64_t id : order_) actions_.push_back(persistent::Drop{id, reason});
  const std::vector<uint64_t> ids = order_;
  for (uint64_t id : ids) disconnect(id, last_hand_out_ms_);
}

std::vector<persistent::Action> PersistentCore::take_actions() {
  std::vector<persistent::Action> out;
  out.swap(actions_);
  return out;
}

std::vector<ConsumerStats> PersistentCore::consumers(bool with_extra_statistics) const {
  std::vector<ConsumerStats> out;
  for (uint64_t id : order_) {
    const Consumer& c = consumers_.at(id);
    ConsumerStats stats{id, static_cast<int32_t>(c.in_flight.size()), c.slots, c.delivered, c.acked,
                        {}};
    if (with_extra_statistics && settings_.extra_statistics) {
      stats.extra_statistics =
          latency_statistics(std::vector<int64_t>(c.latencies_ms.begin(), c.latencies_ms.end()));
    }
    out.push_back(std::move(stats));
  }
  return out;
}

int64_t PersistentCore::stalled_ms(int64_t now_ms) const {
  if (retry_.empty() && buffer_.empty()) return 0;
  return std::max<int64_t>(0, now_ms - last_hand_out_ms_);
}

}  // namespace chorus
