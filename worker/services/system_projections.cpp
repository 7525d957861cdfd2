// SystemProjections: see system_projections.hpp. One read of $all is in flight at a time and
// pages are issued in log order, so links reach each target stream in source order (appends are
// ordered on the core thread). Pages complete in order; the checkpoint never passes a page with a
// link not acknowledged. A transient failure rewinds to the oldest incomplete page and writes
// from there again: links that did land are answered as idempotent retries by their ids, and
// rewriting cannot reorder a target stream: the log commits in order (a timed-out link that a
// later one follows was committed too), and it refuses a write only when it does not lead, so
// a refused link is followed by refusals only (services_system_projections_test checks both).
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
  start_.clear();
  pages_.clear();
  loaded_ = reading_ = wake_ = retry_scheduled_ = false;
  generation_ += 1;
  links_unchecked_ = 0;
  records_read_ = 0;
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
  pages_.clear();
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
      if (alive(token)) on_checkpoint_loaded(p, r);
    });
  }
}

void SystemProjections::on_checkpoint_loaded(SystemProjection p, const ReadStreamResult& r) {
  Position from = Position::start();
  if (r.status == ReadStreamStatus::Success && !r.events.empty() && r.events.front().event) {
    if (auto tag = parse_checkpoint(r.events.front().event->metadata)) {
      from = *tag;
    } else {
      std::cerr << "chorus-worker: " << projections::name_of(p)
                << ": unreadable checkpoint; starting from the beginning of $all" << std::endl;
    }
  }
  start_[p] = from;
  if (--checkpoints_pending_ > 0) return;
  cursor_ = start_.begin()->second;
  for (const auto& [q, at] : start_) cursor_ = std::min(cursor_, at);
  acked_ = checkpoint_ = cursor_;
  loaded_ = true;
  read_next();
}

void SystemProjections::on_record_committed(const EventRecord& /*record*/) {
  if (!loaded_) return;
  if (reading_ || retry_scheduled_ || pages_.size() >= kSystemPagesInFlightMax) {
    wake_ = true;
    return;
  }
  read_next();
}

void SystemProjections::poll() {
  if (loaded_ && !retry_scheduled_) read_next();
  maybe_checkpoint();
  auto token = running_;
  context_->after(kSystemPollMs, [this, token] {
    if (alive(token)) poll();
  });
}

void SystemProjections::read_next() {
  if (reading_ || !loaded_ || pages_.size() >= kSystemPagesInFlightMax) return;
  reading_ = true;
  wake_ = false;
  auto token = running_;
  const uint64_t generation = generation_;
  context_->read_all(cursor_, kSystemPageRecords, false,
                     [this, token, generation](ReadAllResult page) {
                       if (!alive(token) || generation != generation_) return;
                       reading_ = false;
                       on_page(std::move(page));
                     });
}

void SystemProjections::on_page(ReadAllResult page) {
  if (page.status != ReadAllStatus::Success) {
    std::cerr << "chorus-worker: system projections: reading $all failed: " << page.error
              << std::endl;
    return rewind(acked_);
  }
  std::vector<projections::Link> links;
  records_read_ += static_cast<int64_t>(page.events.size());
  for (const ResolvedEvent& e : page.events) {
    if (!e.event) continue;
    const EventRecord& record = *e.event;
    for (SystemProjection p : enabled_) {
      if (record.position < start_[p]) continue;  // linked before this projection's checkpoint
      if (auto link = projections::link_for(p, record)) links.push_back(std::move(*link));
    }
  }
  Page issued{next_page_id_++, cursor_, page.next, links.size(), links.size(), false};
  pages_.push_back(issued);
  cursor_ = std::max(cursor_, page.next);
  auto token = running_;
  const uint64_t generation = generation_;
  for (auto& link : links) {
    const std::string stream = link.stream;
    context_->append(kSystem, stream, kExpectedAny, {std::move(link.event)},
                     [this, token, generation, id = issued.id, stream](const WriteResult& w) {
                       if (!alive(token)) return;
                       const bool transient = transient_failure(w);
                       if (!transient && w.result != OperationResult::Success) {
                         std::cerr << "chorus-worker: system projections: skipped a link to "
                                   << stream << ": " << w.message << std::endl;
                       }
                       on_link_written(generation, id, transient);
                     });
  }
  if (links.empty()) complete_pages();
  // A full page means more is there already; otherwise wait for commits (or the poll).
  if (static_cast<int32_t>(page.events.size()) >= kSystemPageRecords || wake_) read_next();
}

void SystemProjections::on_link_written(uint64_t generation, uint64_t page_id, bool transient) {
  if (generation != generation_) return;
  for (Page& page : pages_) {
    if (page.id != page_id) continue;
    page.remaining -= 1;
    page.failed = page.failed || transient;
    break;
  }
  complete_pages();
}

void SystemProjections::complete_pages() {
  while (!pages_.empty() && pages_.front().remaining == 0) {
    const Page page = pages_.front();
    if (page.failed) return rewind(page.from);
    pages_.pop_front();
    acked_ = std::max(acked_, page.next);
    links_unchecked_ += static_cast<int64_t>(page.links);
  }
  maybe_checkpoint();
  if (wake_) read_next();
}

// Forgets every page in flight and reads again from `from` after kSystemRetryMs.
void SystemProjections::rewind(Position from) {
  generation_ += 1;
  pages_.clear();
  reading_ = false;
  cursor_ = from;
  if (retry_scheduled_) return;
  retry_scheduled_ = true;
  auto token = running_;
  context_->after(kSystemRetryMs, [this, token] {
    if (!alive(token)) return;
    retry_scheduled_ = false;
    read_next();
  });
}

void SystemProjections::maybe_checkpoint() {
  if (!loaded_ || links_unchecked_ == 0) return;
  if (now_ms_() - last_checkpoint_ms_ < kSystemCheckpointMs) return;
  const std::string tag = checkpoint_metadata(acked_);
  for (SystemProjection p : enabled_) {
    NewEvent e{random_guid(), kCheckpointEventType, true, true, "{}", tag};
    context_->append(kSystem, projections::checkpoint_stream_of(projections::name_of(p)),
                     kExpectedAny, {e}, [](const WriteResult&) {});
  }
  links_unchecked_ = 0;
  checkpoint_ = acked_;
  last_checkpoint_ms_ = now_ms_();
}

std::vector<projections::ProjectionStatus> SystemProjections::describe() const {
  std::vector<projections::ProjectionStatus> out;
  // Positions are log offsets: the share of the committed log that is processed.
  const int64_t head = context_ ? context_->commit_position() + 1 : 0;
  const double progress = head <= 0 ? 100.0
                                    : std::min(100.0, 100.0 * static_cast<double>(acked_.prepare) /
                                                          static_cast<double>(head));
  int64_t in_flight = 0;
  for (const Page& page : pages_) in_flight += static_cast<int64_t>(page.remaining);
  for (SystemProjection p : enabled_) {
    projections::ProjectionStatus s;
    s.name = projections::name_of(p);
    s.status = loaded_ ? "Running" : "Preparing";
    s.position = acked_;
    s.checkpoint = checkpoint_;
    s.events_processed = records_read_;
    s.writes_in_progress = in_flight;
    s.progress = loaded_ ? progress : 0;
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace chorus
