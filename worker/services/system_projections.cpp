// SystemProjections: see system_projections.hpp. One read of $all is in flight at a time and
// pages are issued in log order, so links reach each target stream in source order (appends are
// ordered on the core thread). Pages complete in order; the checkpoint never passes a page with a
// link not acknowledged. A transient failure rewinds to the oldest incomplete page and writes
// from there again: links that did land are answered as idempotent retries by their ids, and
// rewriting cannot reorder a target stream: the log commits in order (a timed-out link that a
// later one follows was committed too), and it refuses a write only when it does not lead, so
// a refused link is followed by refusals only (services_system_projections_test checks both).
// Each projection links the records from its own `start` on; enabling or resetting one rewinds
// the shared cursor to its start while the others move their start up to what is acknowledged,
// so they write nothing twice (what was in flight is answered by id).
#include "worker/services/system_projections.hpp"

#include "worker/engine/reads.hpp"
#include "worker/projections/config.hpp"

#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>

#include <algorithm>
#include <iostream>
#include <sstream>

namespace chorus {
namespace {

using projections::ProjectionOutcome;
using projections::ProjectionReply;
using projections::SystemProjection;

const Principal kSystem{"$system", {"$admins"}};
constexpr const char* kCheckpointEventType = "$ProjectionCheckpoint";
constexpr const char* kDefinitionEventType = "$ProjectionUpdated";
// No link yet in a target stream: before every source position.
constexpr Position kNoLink{-1, -1};

Poco::JSON::Object::Ptr parse_object(const std::string& json) {
  try {
    Poco::JSON::Parser parser;
    return parser.parse(json).extract<Poco::JSON::Object::Ptr>();
  } catch (const std::exception&) {
    return nullptr;
  }
}

// A position as {"$c": commit, "$p": prepare} (checkpoint tags and link metadata).
std::optional<Position> position_in(const Poco::JSON::Object::Ptr& o) {
  if (!o || !o->has("$c") || !o->has("$p")) return std::nullopt;
  try {
    return Position{o->getValue<int64_t>("$c"), o->getValue<int64_t>("$p")};
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

Poco::JSON::Object::Ptr position_object(const Position& p) {
  Poco::JSON::Object::Ptr o = new Poco::JSON::Object(Poco::JSON_PRESERVE_KEY_ORDER);
  o->set("$c", p.commit);
  o->set("$p", p.prepare);
  return o;
}

std::string stringify(const Poco::JSON::Object::Ptr& o) {
  std::ostringstream out;
  o->stringify(out);
  return out.str();
}

// A write that may succeed when tried again (this node is busy or lost the lead, or the write
// timed out and may or may not have happened). Anything else (the target was hard-deleted, say)
// would fail again, so that link is skipped rather than blocking every projection.
bool transient_failure(const WriteResult& w) {
  return w.not_handled != NotHandledReason::None || w.result == OperationResult::PrepareTimeout ||
         w.result == OperationResult::CommitTimeout || w.result == OperationResult::ForwardTimeout;
}

ProjectionReply reply(ProjectionOutcome outcome, std::string message = "") {
  ProjectionReply r;
  r.outcome = outcome;
  r.message = std::move(message);
  return r;
}

bool may_manage(const Principal& who) { return who.is_admin() || who.in_role("$ops"); }

std::string definition_stream_of(SystemProjection p) {
  return std::string("$projections-") + projections::name_of(p);
}

// Sets $maxCount on a stream of the service's own once (when it has no metadata yet).
void keep_last(LeaderContext& context, const std::string& stream, int count) {
  if (context.last_number("$$" + stream) >= 0) return;
  const std::string meta = R"({"$maxCount":)" + std::to_string(count) + "}";
  NewEvent e{random_guid(), "$metadata", true, false, meta, ""};
  context.append(kSystem, "$$" + stream, kExpectedAny, {e}, [](const WriteResult&) {});
}

}  // namespace

SystemProjections::SystemProjections(std::vector<SystemProjection> started, NowMs now_ms)
    : started_(started.begin(), started.end()), now_ms_(std::move(now_ms)) {}

void SystemProjections::start(LeaderContext& context) {
  context_ = &context;
  running_ = std::make_shared<std::atomic<bool>>(true);
  standard_.clear();
  for (SystemProjection p : projections::kSystemProjections) {
    standard_[p].enabled = started_.count(p) != 0;
  }
  pages_.clear();
  replayed_last_.clear();
  loaded_ = reading_ = wake_ = retry_scheduled_ = false;
  generation_ += 1;
  links_unchecked_ = 0;
  records_read_ = 0;
  last_checkpoint_ms_ = now_ms_();
  load();
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

// ---------------------------------------------------------------- loading

void SystemProjections::load() {
  loads_pending_ = 2 * standard_.size();
  auto token = running_;
  for (auto& [p, s] : standard_) {
    const std::string checkpoints = projections::checkpoint_stream_of(projections::name_of(p));
    keep_last(*context_, checkpoints, kSystemCheckpointsKept);
    keep_last(*context_, definition_stream_of(p), kSystemDefinitionsKept);
    const SystemProjection q = p;
    context_->read_stream(definition_stream_of(p), -1, 1, false, false,
                          [this, token, q](ReadStreamResult r) {
                            if (alive(token)) on_definition_loaded(q, r);
                          });
    context_->read_stream(checkpoints, -1, 1, false, false, [this, token, q](ReadStreamResult r) {
      if (alive(token)) on_checkpoint_loaded(q, r);
    });
  }
}

void SystemProjections::on_definition_loaded(SystemProjection p, const ReadStreamResult& r) {
  Standard& s = standard_[p];
  s.definition_loaded = true;
  const bool found =
      r.status == ReadStreamStatus::Success && !r.events.empty() && r.events.front().event;
  if (!found) {
    save_definition(p, [](const ProjectionReply&) {});  // EventStore keeps one for each
    return maybe_begin();
  }
  const auto o = parse_object(r.events.front().event->data);
  if (!o) {
    std::cerr << "chorus-worker: " << projections::name_of(p)
              << ": unreadable definition; running with the defaults" << std::endl;
    return maybe_begin();
  }
  s.enabled = o->optValue<bool>("enabled", s.enabled);
  s.version = o->optValue<int64_t>("version", 0);
  s.epoch = o->optValue<int64_t>("epoch", 0);
  std::string error;
  if (auto rules = projections::parse_query(p, o->optValue<std::string>("query", ""), {}, &error)) {
    s.rules = *rules;
  } else {
    std::cerr << "chorus-worker: " << projections::name_of(p) << ": " << error
              << "; running with the default settings" << std::endl;
  }
  maybe_begin();
}

void SystemProjections::on_checkpoint_loaded(SystemProjection p, const ReadStreamResult& r) {
  Standard& s = standard_[p];
  s.checkpoint_loaded = true;
  if (r.status == ReadStreamStatus::Success && !r.events.empty() && r.events.front().event) {
    const EventRecord& e = *r.events.front().event;
    if (auto tag = position_in(parse_object(e.metadata))) {
      s.start = s.checkpoint = *tag;
      if (auto data = parse_object(e.data); data && data->has("replay")) {
        s.replay = position_in(data->getObject("replay"));
      }
    } else {
      std::cerr << "chorus-worker: " << projections::name_of(p)
                << ": unreadable checkpoint; starting from the beginning of $all" << std::endl;
    }
  }
  maybe_begin();
}

void SystemProjections::maybe_begin() {
  if (--loads_pending_ > 0) return;
  std::optional<Position> from;
  for (const auto& [p, s] : standard_) {
    if (s.enabled) from = from ? std::min(*from, s.start) : s.start;
  }
  // Nothing enabled: nothing to read until a projection is enabled (restart_from).
  cursor_ = acked_ =
      from.value_or(Position{context_->commit_position() + 1, context_->commit_position() + 1});
  loaded_ = true;
  read_next();
}

// ---------------------------------------------------------------- linking

bool SystemProjections::wants(const Standard& s, const Position& at) const {
  if (at < s.start) return false;  // linked before its checkpoint
  return s.enabled || (s.stop && at < *s.stop);
}

Position SystemProjections::progress_of(const Standard& s) const {
  if (!loaded_) return s.checkpoint;
  if (!s.enabled && !s.stop) return s.start;
  const Position done = std::max(s.start, acked_);
  return s.stop && !s.enabled ? std::min(done, std::max(s.start, *s.stop)) : done;
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
  const bool any = std::any_of(standard_.begin(), standard_.end(), [this](const auto& e) {
    return e.second.enabled || (e.second.stop && cursor_ < *e.second.stop);
  });
  if (!any) return;
  reading_ = true;
  wake_ = false;
  auto token = running_;
  const uint64_t generation = generation_;
  context_->read_all(cursor_, kSystemPageRecords, false,
                     [this, token, generation](ReadAllResult page) {
                       if (!alive(token) || generation != generation_) return;
                       on_page(std::move(page));
                     });
}

void SystemProjections::on_page(ReadAllResult page) {
  if (page.status != ReadAllStatus::Success) {
    std::cerr << "chorus-worker: system projections: reading $all failed: " << page.error
              << std::endl;
    reading_ = false;
    return rewind(acked_);
  }
  std::vector<PendingLink> links;
  bool replaying = false;
  records_read_ += static_cast<int64_t>(page.events.size());
  for (const ResolvedEvent& e : page.events) {
    if (!e.event) continue;
    const EventRecord& record = *e.event;
    for (const auto& [p, s] : standard_) {
      if (!wants(s, record.position)) continue;
      if (auto link = projections::link_for(p, record, s.rules)) {
        const bool replayed = s.replay && record.position < *s.replay;
        replaying = replaying || replayed;
        links.push_back(PendingLink{p, std::move(*link), record.position, replayed});
      }
    }
  }
  const bool more = static_cast<int32_t>(page.events.size()) >= kSystemPageRecords;
  if (replaying) return check_replayed(cursor_, page.next, std::move(links), more);
  issue(cursor_, page.next, std::move(links), more);
}

// A reset projection's links of records before its replay mark may be in their target streams
// already: each target's last link is looked up once (on a reader), and links at or before its
// source position are dropped. `reading_` stays set meanwhile, so pages keep their order.
void SystemProjections::check_replayed(Position from, Position next, std::vector<PendingLink> links,
                                       bool more) {
  std::set<std::string> unknown;
  for (const auto& l : links) {
    if (l.replayed && replayed_last_.count(l.link.stream) == 0) unknown.insert(l.link.stream);
  }
  auto finish = [this, from, next, more](std::vector<PendingLink> pending) {
    std::vector<PendingLink> kept;
    for (auto& l : pending) {
      if (l.replayed && !(replayed_last_[l.link.stream] < l.source)) continue;
      kept.push_back(std::move(l));
    }
    issue(from, next, std::move(kept), more);
  };
  if (unknown.empty()) return finish(std::move(links));
  auto remaining = std::make_shared<size_t>(unknown.size());
  auto shared = std::make_shared<std::vector<PendingLink>>(std::move(links));
  auto token = running_;
  const uint64_t generation = generation_;
  for (const std::string& target : unknown) {
    context_->read_stream(
        target, -1, 1, false, false,
        [this, token, generation, target, remaining, shared, finish](ReadStreamResult r) {
          if (!alive(token) || generation != generation_) return;
          Position last = kNoLink;
          if (r.status == ReadStreamStatus::Success && !r.events.empty() &&
              r.events.front().event) {
            last = position_in(parse_object(r.events.front().event->metadata)).value_or(kNoLink);
          }
          replayed_last_[target] = last;
          if (--*remaining == 0) finish(std::move(*shared));
        });
  }
}

void SystemProjections::issue(Position from, Position next, std::vector<PendingLink> links,
                              bool more) {
  reading_ = false;
  Page issued{next_page_id_++, from, next, links.size(), links.size(), false};
  pages_.push_back(issued);
  cursor_ = std::max(cursor_, next);
  auto token = running_;
  const uint64_t generation = generation_;
  for (auto& l : links) {
    const std::string stream = l.link.stream;
    context_->append(kSystem, stream, kExpectedAny, {std::move(l.link.event)},
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
  if (more || wake_) read_next();
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
  bool replaying = false;
  for (auto& [p, s] : standard_) {
    if (s.replay && !(acked_ < *s.replay)) {
      s.replay.reset();
      links_unchecked_ += 1;  // the checkpoint forgets the mark
    }
    replaying = replaying || s.replay.has_value();
  }
  if (!replaying) replayed_last_.clear();
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

void SystemProjections::maybe_checkpoint(bool force) {
  if (!loaded_ || (!force && links_unchecked_ == 0)) return;
  if (!force && now_ms_() - last_checkpoint_ms_ < kSystemCheckpointMs) return;
  for (auto& [p, s] : standard_) {
    const Position at = progress_of(s);
    if (at == s.checkpoint && !force) continue;
    Poco::JSON::Object::Ptr data = new Poco::JSON::Object;
    if (s.replay) data->set("replay", position_object(*s.replay));
    NewEvent e{random_guid(), kCheckpointEventType, true,
               true,          stringify(data),      stringify(position_object(at))};
    context_->append(kSystem, projections::checkpoint_stream_of(projections::name_of(p)),
                     kExpectedAny, {e}, [](const WriteResult&) {});
    s.checkpoint = at;
  }
  links_unchecked_ = 0;
  last_checkpoint_ms_ = now_ms_();
}

// ---------------------------------------------------------------- commands

void SystemProjections::save_definition(SystemProjection p, Done done) {
  const Standard& s = standard_[p];
  Poco::JSON::Object::Ptr o = new Poco::JSON::Object(Poco::JSON_PRESERVE_KEY_ORDER);
  o->set("query", projections::query_of(p, s.rules));
  o->set("mode", "Continuous");
  o->set("enabled", s.enabled);
  o->set("emitEnabled", true);
  o->set("version", s.version);
  o->set("epoch", s.epoch);
  NewEvent e{random_guid(), kDefinitionEventType, true, false, stringify(o), ""};
  auto token = running_;
  context_->append(kSystem, definition_stream_of(p), kExpectedAny, {e},
                   [token, done = std::move(done)](const WriteResult& w) {
                     if (!token || !*token || w.not_handled != NotHandledReason::None) {
                       return done(ProjectionReply{NotHandledReason::NotLeader, {}, {}, {}});
                     }
                     if (w.result != OperationResult::Success) {
                       return done(reply(ProjectionOutcome::Invalid, "not saved: " + w.message));
                     }
                     done(reply(ProjectionOutcome::Ok));
                   });
}

// `p` links again from `from`: the shared cursor goes back there, every other projection moves
// its start up to what is acknowledged (it wrote everything before), pages in flight are dropped.
void SystemProjections::restart_from(SystemProjection p, Position from) {
  for (auto& [q, s] : standard_) {
    if (q != p) s.start = std::max(s.start, acked_);
  }
  standard_[p].start = from;
  generation_ += 1;
  pages_.clear();
  reading_ = false;
  cursor_ = acked_ = std::min(acked_, from);
  read_next();
}

void SystemProjections::command(const Principal& who, SystemProjection p,
                                const std::string& command, Done done) {
  if (!may_manage(who)) return done(reply(ProjectionOutcome::AccessDenied, "Access denied."));
  if (!loaded_) {
    return done(reply(ProjectionOutcome::Invalid,
                      std::string(projections::name_of(p)) + " is still loading; try again"));
  }
  Standard& s = standard_[p];
  if (command == "disable" || command == "abort") {
    if (s.enabled) {
      s.enabled = false;
      s.stop = cursor_;
    }
  } else if (command == "enable") {
    if (!s.enabled) {
      const Position from = progress_of(s);
      s.enabled = true;
      s.stop.reset();
      if (from < cursor_) restart_from(p, from);
      read_next();
    }
  } else if (command == "reset") {
    // Links written so far stay; the replay mark keeps them from being written twice.
    const Position written = std::max(progress_of(s), s.stop.value_or(cursor_));
    s.replay = std::max(s.replay.value_or(Position::start()), written);
    s.epoch += 1;
    s.stop.reset();
    if (s.enabled)
      restart_from(p, Position::start());
    else
      s.start = Position::start();
  } else {
    return done(reply(ProjectionOutcome::NotFound, "Unknown command " + command + "."));
  }
  s.version += 1;
  maybe_checkpoint(true);
  save_definition(p, std::move(done));
}

void SystemProjections::query(SystemProjection p, Done done) const {
  ProjectionReply r;
  r.body = projections::query_of(p, standard_.at(p).rules);
  done(std::move(r));
}

void SystemProjections::update_query(const Principal& who, SystemProjection p,
                                     const std::string& query, Done done) {
  if (!may_manage(who)) return done(reply(ProjectionOutcome::AccessDenied, "Access denied."));
  if (!loaded_) {
    return done(reply(ProjectionOutcome::Invalid,
                      std::string(projections::name_of(p)) + " is still loading; try again"));
  }
  Standard& s = standard_[p];
  std::string error;
  auto rules = projections::parse_query(p, query, s.rules, &error);
  if (!rules) return done(reply(ProjectionOutcome::Invalid, error));
  s.rules = *rules;
  s.version += 1;
  save_definition(p, std::move(done));
}

void SystemProjections::manage(const Principal& who, SystemProjection p,
                               const projections::ProjectionManagement& request, Done done) {
  using Kind = projections::ProjectionManagement::Kind;
  const std::string name = projections::name_of(p);
  switch (request.kind) {
    case Kind::UpdateQuery:
      return update_query(who, p, request.body, std::move(done));
    case Kind::Delete:
      if (!may_manage(who)) return done(reply(ProjectionOutcome::AccessDenied, "Access denied."));
      return done(reply(ProjectionOutcome::Invalid,
                        "The standard projection " + name + " cannot be deleted; disable it"));
    case Kind::PutConfig:
      if (!may_manage(who)) return done(reply(ProjectionOutcome::AccessDenied, "Access denied."));
      return done(
          reply(ProjectionOutcome::Invalid, "The config of " + name + " cannot be changed"));
    case Kind::GetConfig: {
      if (!may_manage(who)) return done(reply(ProjectionOutcome::AccessDenied, "Access denied."));
      projections::ProjectionConfig config;
      config.emit_enabled = true;
      config.checkpoint_after_ms = kSystemCheckpointMs;
      ProjectionReply r;
      r.body = projections::config_json(config);
      return done(std::move(r));
    }
    case Kind::GetQueryConfig: {
      Poco::JSON::Object::Ptr o = new Poco::JSON::Object(Poco::JSON_PRESERVE_KEY_ORDER);
      o->set("name", name);
      o->set("type", "native");
      o->set("query", projections::query_of(p, standard_.at(p).rules));
      o->set("emitEnabled", true);
      ProjectionReply r;
      r.body = stringify(o);
      return done(std::move(r));
    }
  }
}

std::vector<projections::ProjectionStatus> SystemProjections::describe() const {
  std::vector<projections::ProjectionStatus> out;
  // Positions are log offsets: the share of the committed log that is processed.
  const int64_t head = context_ ? context_->commit_position() + 1 : 0;
  int64_t in_flight = 0;
  for (const Page& page : pages_) in_flight += static_cast<int64_t>(page.remaining);
  for (const auto& [p, s] : standard_) {
    projections::ProjectionStatus st;
    st.name = projections::name_of(p);
    st.status = !loaded_ ? "Preparing" : s.enabled ? "Running" : "Stopped";
    st.position = progress_of(s);
    st.checkpoint = s.checkpoint;
    st.events_processed = s.enabled ? records_read_ : 0;
    st.writes_in_progress = s.enabled ? in_flight : 0;
    st.reads_in_progress = s.enabled && reading_ ? 1 : 0;
    st.version = s.version;
    st.epoch = s.epoch;
    st.progress = !loaded_    ? 0
                  : head <= 0 ? 100.0
                              : std::min(100.0, 100.0 * static_cast<double>(st.position.prepare) /
                                                    static_cast<double>(head));
    out.push_back(std::move(st));
  }
  return out;
}

}  // namespace chorus
