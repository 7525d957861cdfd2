// SystemProjections: see system_projections.hpp. The pipeline has one step in flight at a time
// (a read of $all, or the writes of one page), so links reach each target stream in source
// order and a checkpoint never passes a link that is not acknowledged.
#include "worker/services/system_projections.hpp"

#include "worker/engine/reads.hpp"

#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>

#include <algorithm>
#include <iostream>
#include <sstream>

namespace chorus {
namespace {

using projections::SystemProjection;

const Principal kSystem{"$system", {"$admins"}};
constexpr const char* kCheckpointEventType = "$ProjectionCheckpoint";

// The checkpoint tag in a checkpoint event's metadata: {"$c": commit, "$p": prepare}.
std::optional<Position> parse_checkpoint(const std::string& metadata) {
  try {
    Poco::JSON::Parser parser;
    auto o = parser.parse(metadata).extract<Poco::JSON::Object::Ptr>();
    if (!o || !o->has("$c") || !o->has("$p")) return std::nullopt;
    return Position{o->getValue<int64_t>("$c"), o->getValue<int64_t>("$p")};
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

std::string checkpoint_metadata(const Position& p) {
  Poco::JSON::Object o;
  o.set("$c", p.commit);
  o.set("$p", p.prepare);
  std::ostringstream out;
  o.stringify(out);
  return out.str();
}

// A write that may succeed when tried again (this node is busy or lost the lead, or the write
// timed out and may or may not have happened). Anything else (the target was hard-deleted, say)
// would fail again, so that link is skipped rather than blocking every projection.
bool transient_failure(const WriteResult& w) {
  return w.not_handled != NotHandledReason::None || w.result == OperationResult::PrepareTimeout ||
         w.result == OperationResult::CommitTimeout || w.result == OperationResult::ForwardTimeout;
}

}  // namespace

SystemProjections::SystemProjections(std::vector<SystemProjection> enabled, NowMs now_ms)
    : enabled_(std::move(enabled)), now_ms_(std::move(now_ms)) {}

void SystemProjections::start(LeaderContext& context) {
  context_ = &context;
  running_ = std::make_shared<std::atomic<bool>>(true);
  done_.clear();
  loaded_ = busy_ = wake_ = retry_scheduled_ = false;
  links_unchecked_ = 0;
  last_checkpoint_ms_ = now_ms_();
  if (enabled_.empty()) return;
  load_checkpoints();
  auto token = running_;
  context_->after(kSystemPollMs, [this, token] {
    if (alive(token)) poll();
  });
}

void SystemProjections::stop() {
  if (running_) running_->store(false);
  loaded_ = false;
}

void SystemProjections::load_checkpoints() {
  checkpoints_pending_ = enabled_.size();
  for (SystemProjection p : enabled_) {
    const std::string stream = projections::checkpoint_stream_of(projections::name_of(p));
    if (context_->last_number("$$" + stream) < 0) {
      const std::string meta = R"({"$maxCount":)" + std::to_string(kSystemCheckpointsKept) + "}";
      NewEvent e{random_guid(), kMetadataEventType, true, false, meta, ""};
      context_->append(kSystem, "$$" + stream, kExpectedAny, {e}, [](const WriteResult&) {});
    }
    auto token = running_;
    context_->read_stream(stream, -1, 1, false, false, [this, token, p](ReadStreamResult r) {
      if (!alive(token)) return;
      Position from = Position::start();
      if (r.status == ReadStreamStatus::Success && !r.events.empty() && r.events.front().event) {
        const auto& e = *r.events.front().event;
        if (auto tag = parse_checkpoint(e.metadata)) {
          from = *tag;
        } else {
          std::cerr << "chorus-worker: " << projections::name_of(p)
                    << ": unreadable checkpoint; starting from the beginning of $all" << std::endl;
        }
      }
      done_[p] = from;
      if (--checkpoints_pending_ > 0) return;
      cursor_ = done_.begin()->second;
      for (const auto& [q, at] : done_) cursor_ = std::min(cursor_, at);
      loaded_ = true;
      read_next();
    });
  }
}

void SystemProjections::on_record_committed(const EventRecord& /*record*/) {
  if (!loaded_) return;
  if (busy_ || retry_scheduled_) {
    wake_ = true;
    return;
  }
  read_next();
}

void SystemProjections::poll() {
  if (!busy_ && !retry_scheduled_ && loaded_) read_next();
  maybe_checkpoint(false);
  auto token = running_;
  context_->after(kSystemPollMs, [this, token] {
    if (alive(token)) poll();
  });
}

void SystemProjections::read_next() {
  if (busy_ || !loaded_) return;
  busy_ = true;
  wake_ = false;
  auto token = running_;
  context_->read_all(cursor_, kSystemPageRecords, [this, token](ReadAllResult page) {
    if (!alive(token)) return;
    on_page(std::move(page));
  });
}

void SystemProjections::on_page(ReadAllResult page) {
  if (page.status != ReadAllStatus::Success) {
    std::cerr << "chorus-worker: system projections: reading $all failed: " << page.error
              << std::endl;
    return retry_later();
  }
  std::vector<projections::Link> links;
  for (const ResolvedEvent& e : page.events) {
    if (!e.event) continue;
    const EventRecord& record = *e.event;
    for (SystemProjection p : enabled_) {
      if (record.position < done_[p]) continue;  // written before this projection's checkpoint
      if (auto link = projections::link_for(p, record)) links.push_back(std::move(*link));
    }
  }
  const bool full = static_cast<int32_t>(page.events.size()) >= kSystemPageRecords;
  if (full) wake_ = true;  // more to read at once
  write_links(std::move(links), page.next);
}

void SystemProjections::write_links(std::vector<projections::Link> links, Position next) {
  if (links.empty()) return on_links_written(next, 0, true);
  auto remaining = std::make_shared<size_t>(links.size());
  auto all_ok = std::make_shared<bool>(true);
  const size_t count = links.size();
  auto token = running_;
  for (auto& link : links) {
    const std::string stream = link.stream;
    context_->append(kSystem, stream, kExpectedAny, {std::move(link.event)},
                     [this, token, remaining, all_ok, next, count, stream](const WriteResult& w) {
                       if (!alive(token)) return;
                       if (transient_failure(w)) {
                         *all_ok = false;
                       } else if (w.result != OperationResult::Success) {
                         std::cerr << "chorus-worker: system projections: skipped a link to "
                                   << stream << ": " << w.message << std::endl;
                       }
                       if (--*remaining == 0) on_links_written(next, count, *all_ok);
                     });
  }
}

void SystemProjections::on_links_written(Position next, size_t count, bool all_ok) {
  busy_ = false;
  // A failed page is written again from the same position: the links that did land are
  // answered as idempotent retries by their ids.
  if (!all_ok) return retry_later();
  cursor_ = std::max(cursor_, next);
  for (auto& [p, at] : done_) at = std::max(at, cursor_);
  links_written_ += static_cast<int64_t>(count);
  links_unchecked_ += static_cast<int64_t>(count);
  maybe_checkpoint(false);
  if (wake_) read_next();
}

void SystemProjections::maybe_checkpoint(bool force) {
  if (!loaded_ || links_unchecked_ == 0) return;
  if (!force && now_ms_() - last_checkpoint_ms_ < kSystemCheckpointMs) return;
  const std::string tag = checkpoint_metadata(cursor_);
  for (SystemProjection p : enabled_) {
    NewEvent e{random_guid(), kCheckpointEventType, true, true, "{}", tag};
    context_->append(kSystem, projections::checkpoint_stream_of(projections::name_of(p)),
                     kExpectedAny, {e}, [](const WriteResult&) {});
  }
  links_unchecked_ = 0;
  last_checkpoint_ms_ = now_ms_();
}

void SystemProjections::retry_later() {
  busy_ = false;
  retry_scheduled_ = true;
  auto token = running_;
  context_->after(kSystemRetryMs, [this, token] {
    if (!alive(token)) return;
    retry_scheduled_ = false;
    read_next();
  });
}

}  // namespace chorus
