// UserProjections: see user_projections.hpp. A page goes: core thread reads $all (links
// resolved) -> a projection thread feeds the events under the projection's mutex -> the core
// thread records the outcome and reads on. A removed or stopped projection's page in flight is
// dropped when it comes back.
#include "worker/services/user_projections.hpp"

#include "worker/engine/reads.hpp"

#include <boost/asio/post.hpp>

#include <algorithm>

namespace chorus {
namespace {

using projections::Outcome;
using projections::ProjectionOutcome;
using projections::ProjectionReply;

ProjectionReply reply(ProjectionOutcome outcome, std::string message = "") {
  ProjectionReply r;
  r.outcome = outcome;
  r.message = std::move(message);
  return r;
}

bool may_manage(const Principal& who) { return who.is_admin() || who.in_role("$ops"); }

std::optional<std::string> bad_name(const std::string& name) {
  if (name.empty()) return "a projection needs a name (?name=)";
  if (name.size() > kProjectionNameBytesMax) {
    return "a projection name has at most " + std::to_string(kProjectionNameBytesMax) + " bytes";
  }
  if (name[0] == '$') return "names starting with '$' are the system's";
  return std::nullopt;
}

projections::ProjectionEvent to_event(const EventRecord& r, const std::string& read_stream) {
  projections::ProjectionEvent e;
  e.read_stream = read_stream;
  e.stream = r.stream;
  e.number = r.number;
  e.event_type = r.event_type;
  e.event_id = to_string(r.event_id);
  e.is_json = r.data_is_json;
  e.data = r.data;
  e.metadata = r.metadata;
  return e;
}

// What a record of $all is to `p`: a link is fed resolved only to a projection that reads its
// stream by name (fromStream('$ce-x')); others see the raw link, which they skip unless they
// ask for links. Everything else is fed as it is.
std::optional<projections::ProjectionEvent> as_seen_by(const projections::Projection& p,
                                                       const ResolvedEvent& e) {
  if (!e.link) return e.event ? std::optional(to_event(*e.event, e.event->stream)) : std::nullopt;
  const auto& named = p.sources().streams;
  const bool by_name = std::find(named.begin(), named.end(), e.link->stream) != named.end();
  if (!by_name || !e.event) return to_event(*e.link, e.link->stream);
  auto resolved = to_event(*e.event, e.link->stream);
  resolved.link_metadata = e.link->metadata;
  resolved.resolved_link = true;
  return resolved;
}

// Feeds one page on a projection thread; returns the fault ("" when none). Stops early when
// the service stops, so that shutdown does not wait for a whole page of slow handlers.
std::string feed(projections::Projection& p, const std::vector<ResolvedEvent>& events,
                 int64_t& processed, const std::atomic<bool>& running) {
  for (const ResolvedEvent& e : events) {
    if (!running) return "";
    const auto event = as_seen_by(p, e);
    if (!event) continue;
    const auto r = p.process(*event);
    if (r.outcome == Outcome::Faulted) return p.fault();
    if (r.outcome != Outcome::Processed) continue;
    processed += 1;
    if (!r.emitted.empty()) {
      return "'emit' and 'linkTo' are not allowed in a transient projection";
    }
  }
  return "";
}

}  // namespace

UserProjections::UserProjections(int threads, Post post_to_core)
    : pool_(static_cast<size_t>(std::max(1, threads))), post_(std::move(post_to_core)) {}

UserProjections::~UserProjections() {
  if (running_) running_->store(false);
  pool_.join();
}

void UserProjections::start(LeaderContext& context) {
  context_ = &context;
  running_ = std::make_shared<std::atomic<bool>>(true);
  entries_.clear();
  auto token = running_;
  context_->after(kUserPollMs, [this, token] {
    if (*token) poll();
  });
}

void UserProjections::stop() {
  if (running_) running_->store(false);
  for (auto& [name, entry] : entries_) entry->removed = true;
  entries_.clear();  // transient: they live as long as this node leads
}

void UserProjections::on_record_committed(const EventRecord& /*record*/) {
  for (auto& [name, entry] : entries_) {
    if (entry->busy) {
      entry->wake = true;
    } else {
      pump(entry);
    }
  }
}

void UserProjections::poll() {
  for (auto& [name, entry] : entries_) pump(entry);
  auto token = running_;
  context_->after(kUserPollMs, [this, token] {
    if (*token) poll();
  });
}

void UserProjections::create_transient(const Principal& who, const std::string& name,
                                       const std::string& query,
                                       std::function<void(ProjectionReply)> done) {
  if (!may_manage(who)) return done(reply(ProjectionOutcome::AccessDenied, "Access denied."));
  if (auto bad = bad_name(name)) return done(reply(ProjectionOutcome::Invalid, *bad));
  if (entries_.count(name) != 0) {
    return done(reply(ProjectionOutcome::Exists, "Projection " + name + " exists."));
  }
  if (entries_.size() >= kUserProjectionsMax) {
    return done(reply(ProjectionOutcome::Invalid,
                      "at most " + std::to_string(kUserProjectionsMax) + " projections"));
  }
  // Compiling runs the query's body: on a projection thread, under its limits.
  auto token = running_;
  boost::asio::post(pool_, [this, token, name, query, done = std::move(done)]() mutable {
    auto compiled = projections::Projection::compile(name, query, projections::JsLimits{});
    post_([this, token, name, query, done = std::move(done),
           compiled =
               std::make_shared<projections::Projection::Compiled>(std::move(compiled))]() mutable {
      if (!*token) return done(ProjectionReply{NotHandledReason::NotLeader, {}, {}, {}});
      if (!compiled->projection) return done(reply(ProjectionOutcome::Invalid, compiled->error));
      if (entries_.count(name) != 0) {
        return done(reply(ProjectionOutcome::Exists, "Projection " + name + " exists."));
      }
      auto entry = std::make_shared<Entry>();
      entry->name = name;
      entry->query = query;
      entry->projection = std::move(compiled->projection);
      entries_[name] = entry;
      done(reply(ProjectionOutcome::Ok));
      pump(entry);
    });
  });
}

void UserProjections::remove(const Principal& who, const std::string& name,
                             std::function<void(ProjectionReply)> done) {
  if (!may_manage(who)) return done(reply(ProjectionOutcome::AccessDenied, "Access denied."));
  auto it = entries_.find(name);
  if (it == entries_.end()) {
    return done(reply(ProjectionOutcome::NotFound, "Projection " + name + " not found."));
  }
  it->second->removed = true;
  entries_.erase(it);
  done(reply(ProjectionOutcome::Ok));
}

void UserProjections::state(const std::string& name, const std::string& partition, bool result,
                            std::function<void(ProjectionReply)> done) {
  auto it = entries_.find(name);
  if (it == entries_.end()) {
    return done(reply(ProjectionOutcome::NotFound, "Projection " + name + " not found."));
  }
  auto entry = it->second;
  boost::asio::post(pool_, [this, entry, partition, result, done = std::move(done)]() mutable {
    std::string body;
    {
      std::lock_guard lock(*entry->mutex);
      const auto json =
          result ? entry->projection->result(partition) : entry->projection->state(partition);
      body = json.value_or("");
    }
    post_([body = std::move(body), done = std::move(done)]() mutable {
      ProjectionReply r;
      r.body = std::move(body);
      done(std::move(r));
    });
  });
}

void UserProjections::query(const std::string& name, std::function<void(ProjectionReply)> done) {
  auto it = entries_.find(name);
  if (it == entries_.end()) {
    return done(reply(ProjectionOutcome::NotFound, "Projection " + name + " not found."));
  }
  ProjectionReply r;
  r.body = it->second->query;
  done(std::move(r));
}

void UserProjections::pump(const std::shared_ptr<Entry>& entry) {
  if (entry->busy || entry->removed || !entry->fault.empty() || !running()) return;
  entry->busy = true;
  entry->wake = false;
  auto token = running_;
  context_->read_all(entry->cursor, kUserPageRecords, true,
                     [this, token, entry](ReadAllResult page) {
                       if (!*token || entry->removed) return;
                       on_page(entry, std::move(page));
                     });
}

void UserProjections::on_page(const std::shared_ptr<Entry>& entry, ReadAllResult page) {
  if (page.status != ReadAllStatus::Success) {
    entry->busy = false;  // read again at the next poll
    return;
  }
  auto token = running_;
  boost::asio::post(pool_, [this, token, entry, page = std::move(page)]() mutable {
    int64_t processed = 0;
    std::string fault;
    {
      std::lock_guard lock(*entry->mutex);
      fault = feed(*entry->projection, page.events, processed, *token);
    }
    post_([this, token, entry, processed, fault, next = page.next,
           full = static_cast<int32_t>(page.events.size()) >= kUserPageRecords] {
      if (!*token || entry->removed) return;  // also when feed() stopped early
      entry->busy = false;
      entry->processed += processed;
      if (!fault.empty()) {
        entry->fault = fault;
        return;
      }
      entry->cursor = std::max(entry->cursor, next);
      if (full || entry->wake) pump(entry);
    });
  });
}

std::vector<projections::ProjectionStatus> UserProjections::describe() const {
  std::vector<projections::ProjectionStatus> out;
  const int64_t head = context_ ? context_->commit_position() + 1 : 0;
  for (const auto& [name, entry] : entries_) {
    projections::ProjectionStatus s;
    s.name = name;
    s.mode = "Transient";
    s.status = entry->fault.empty() ? "Running" : "Faulted";
    s.state_reason = entry->fault;
    s.position = s.checkpoint = entry->cursor;
    s.events_processed = entry->processed;
    s.progress = head <= 0 ? 100.0
                           : std::min(100.0, 100.0 * static_cast<double>(entry->cursor.prepare) /
                                                 static_cast<double>(head));
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace chorus
