// UserProjections: see user_projections.hpp. A page goes: core thread reads $all (links
// resolved) -> a projection thread feeds the events under the projection's mutex (and takes a
// snapshot of every state when a checkpoint is due) -> the core thread writes what was emitted,
// one event per append in order, and once all are acknowledged moves the cursor and writes the
// checkpoint. A write that fails reloads the projection from its last checkpoint: its state must
// not run ahead of what is written. A removed or stopped projection's answers in flight are
// dropped when they come back.
#include "worker/services/user_projections.hpp"

#include "worker/engine/reads.hpp"
#include "worker/projections/system_projections.hpp"

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <boost/asio/post.hpp>

#include <algorithm>
#include <set>
#include <sstream>

namespace chorus {
namespace {

using projections::ProjectionOutcome;
using projections::ProjectionReply;

const Principal kSystem{"$system", {"$admins"}};
constexpr const char* kRegistryStream = "$projections-$all";
constexpr const char* kCreatedType = "$ProjectionCreated";
constexpr const char* kDeletedType = "$ProjectionDeleted";
constexpr const char* kDefinitionType = "$ProjectionUpdated";

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

std::string definition_stream(const std::string& name) { return "$projections-" + name; }

std::string to_json(const Poco::JSON::Object& o) {
  std::ostringstream out;
  o.stringify(out);
  return out.str();
}

// Whether a checkpoint's metadata names the projection `id` (or no id: written before ids).
bool checkpoint_is_of(const std::string& metadata, const std::string& id) {
  try {
    Poco::JSON::Parser parser;
    auto o = parser.parse(metadata).extract<Poco::JSON::Object::Ptr>();
    const std::string owner = o->optValue<std::string>("$i", "");
    return owner.empty() || owner == id;
  } catch (const std::exception&) {
    return false;
  }
}

}  // namespace

UserProjections::UserProjections(int threads, Post post_to_core, NowMs now_ms)
    : pool_(static_cast<size_t>(std::max(1, threads))),
      post_(std::move(post_to_core)),
      now_ms_(std::move(now_ms)) {}

UserProjections::~UserProjections() {
  if (running_) running_->store(false);
  pool_.join();
}

void UserProjections::start(LeaderContext& context) {
  context_ = &context;
  running_ = std::make_shared<std::atomic<bool>>(true);
  entries_.clear();
  load_registry();
  auto token = running_;
  context_->after(kUserPollMs, [this, token] {
    if (*token) poll();
  });
}

void UserProjections::stop() {
  if (running_) running_->store(false);
  for (auto& [name, entry] : entries_) entry->removed = true;
  entries_.clear();  // transient ones die here; continuous ones are loaded by the next leader
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

void UserProjections::add(std::shared_ptr<Entry> entry) {
  entry->last_checkpoint_ms = now_ms_();
  entries_[entry->name] = entry;
  pump(entry);
}

// ---------------------------------------------------------------- create, remove, read

void UserProjections::create(const Principal& who, const std::string& mode, const std::string& name,
                             const std::string& query, bool emit, bool track_emitted_streams,
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
  auto entry = std::make_shared<Entry>();
  entry->name = name;
  entry->query = query;
  // One-time projections are kept too (EventStore's are): a new leader finishes them, and a
  // completed one's state is restored from its last checkpoint.
  entry->persistent = mode == "continuous" || mode == "onetime";
  entry->one_time = mode == "onetime";
  if (entry->one_time) {
    const int64_t head = context_->commit_position() + 1;
    entry->stop_at = Position{head, head};
  }
  entry->config.emit_enabled = mode == "continuous" && emit;
  entry->config.track_emitted_streams = entry->config.emit_enabled && track_emitted_streams;
  entry->id = to_string(random_guid());
  entry->run_as = who;
  // Compiling runs the query's body: on a projection thread, under its limits.
  auto token = running_;
  boost::asio::post(pool_, [this, token, entry, done = std::move(done)]() mutable {
    auto compiled = projections::Projection::compile(entry->name, entry->query, {});
    post_([this, token, entry, done = std::move(done),
           compiled =
               std::make_shared<projections::Projection::Compiled>(std::move(compiled))]() mutable {
      if (!*token) return done(ProjectionReply{NotHandledReason::NotLeader, {}, {}, {}});
      if (!compiled->projection) return done(reply(ProjectionOutcome::Invalid, compiled->error));
      if (entries_.count(entry->name) != 0) {
        return done(reply(ProjectionOutcome::Exists, "Projection " + entry->name + " exists."));
      }
      entry->projection = std::move(compiled->projection);
      if (!entry->persistent) {
        add(entry);
        return done(reply(ProjectionOutcome::Ok));
      }
      persist(entry, std::move(done));
    });
  });
}

// Writes a continuous projection's definition, then its registry entry; it runs once both are
// acknowledged.
void UserProjections::persist(const std::shared_ptr<Entry>& entry,
                              std::function<void(ProjectionReply)> done) {
  entries_[entry->name] = entry;  // holds the name while the writes are in flight
  entry->busy = true;
  auto token = running_;
  auto failed = [this, entry](const WriteResult& w) {
    entries_.erase(entry->name);
    entry->removed = true;
    ProjectionReply r = reply(ProjectionOutcome::Invalid, "not saved: " + w.message);
    r.not_handled = w.not_handled;
    return r;
  };
  NewEvent definition{random_guid(), kDefinitionType, true, false, definition_of(*entry), ""};
  context_->append(
      kSystem, definition_stream(entry->name), kExpectedAny, {definition},
      [this, token, entry, failed, done = std::move(done)](const WriteResult& w) mutable {
        if (!*token) return done(ProjectionReply{NotHandledReason::NotLeader, {}, {}, {}});
        if (w.not_handled != NotHandledReason::None || w.result != OperationResult::Success) {
          return done(failed(w));
        }
        NewEvent created{random_guid(), kCreatedType, false, false, entry->name, ""};
        context_->append(
            kSystem, kRegistryStream, kExpectedAny, {created},
            [this, token, entry, failed, done = std::move(done)](const WriteResult& w2) mutable {
              if (!*token) {
                return done(ProjectionReply{NotHandledReason::NotLeader, {}, {}, {}});
              }
              if (w2.not_handled != NotHandledReason::None ||
                  w2.result != OperationResult::Success) {
                return done(failed(w2));
              }
              entry->busy = false;
              add(entry);
              done(reply(ProjectionOutcome::Ok));
            });
      });
}

void UserProjections::remove(const Principal& who, const projections::ProjectionManagement& request,
                             std::function<void(ProjectionReply)> done) {
  if (!may_manage(who)) return done(reply(ProjectionOutcome::AccessDenied, "Access denied."));
  const std::string& name = request.name;
  auto it = entries_.find(name);
  if (it == entries_.end()) {
    return done(reply(ProjectionOutcome::NotFound, "Projection " + name + " not found."));
  }
  auto entry = it->second;
  if (request.delete_emitted_streams && !entry->config.track_emitted_streams) {
    return done(reply(ProjectionOutcome::Invalid,
                      "Cannot delete the emitted streams of a projection that does not track "
                      "them (trackEmittedStreams)"));
  }
  entry->removed = true;
  entries_.erase(it);
  if (!entry->persistent) return done(reply(ProjectionOutcome::Ok));
  auto forget = [this](const std::string& stream) {
    context_->delete_stream(kSystem, stream, kExpectedAny, false, [](const DeleteResult&) {});
  };
  // A namesake created later does not take these over: its checkpoints carry its own id.
  if (request.delete_checkpoint_stream) forget(projections::checkpoint_stream_of(name));
  if (request.delete_state_stream) {
    delete_results(
        entry->projection ? entry->projection->result_stream() : "$projections-" + name + "-result",
        0, {});
  }
  if (request.delete_emitted_streams) delete_emitted(name);
  NewEvent deleted{random_guid(), kDeletedType, false, false, name, ""};
  auto token = running_;
  context_->append(kSystem, kRegistryStream, kExpectedAny, {deleted},
                   [token, done = std::move(done)](const WriteResult& w) {
                     if (!*token || w.not_handled != NotHandledReason::None) {
                       return done(ProjectionReply{NotHandledReason::NotLeader, {}, {}, {}});
                     }
                     if (w.result != OperationResult::Success) {
                       return done(reply(ProjectionOutcome::Invalid, "not deleted: " + w.message));
                     }
                     done(reply(ProjectionOutcome::Ok));
                   });
}

// Soft-deletes every stream recorded in $projections-<name>-emittedstreams, then that stream.
void UserProjections::delete_emitted(const std::string& name) {
  const std::string tracking = "$projections-" + name + "-emittedstreams";
  auto token = running_;
  context_->read_stream(
      tracking, 0, kReadCountMax, true, false, [this, token, tracking](ReadStreamResult r) {
        if (!*token || r.status != ReadStreamStatus::Success) return;
        std::set<std::string> streams;
        for (const auto& e : r.events) {
          if (e.event) streams.insert(e.event->data);
        }
        streams.insert(tracking);
        for (const auto& stream : streams) {
          context_->delete_stream(kSystem, stream, kExpectedAny, false, [](const DeleteResult&) {});
        }
      });
}

// Soft-deletes the partitions' result streams the result stream links to (read a page at a time
// from `from`), then the result stream.
void UserProjections::delete_results(const std::string& stream, int64_t from,
                                     std::set<std::string> partition_streams) {
  auto token = running_;
  context_->read_stream(
      stream, from, kReadCountMax, true, false,
      [this, token, stream,
       partition_streams = std::move(partition_streams)](ReadStreamResult r) mutable {
        if (!*token) return;
        for (const auto& e : r.events) {
          if (!e.event || e.event->event_type != "$>") continue;
          const auto at = e.event->data.find('@');
          if (at == std::string::npos) continue;
          std::string target = e.event->data.substr(at + 1);
          // Only a projection's own result streams, whatever else was linked there.
          if (target.rfind("$projections-", 0) == 0 && target.size() > 7 &&
              target.compare(target.size() - 7, 7, "-result") == 0) {
            partition_streams.insert(std::move(target));
          }
        }
        if (r.status == ReadStreamStatus::Success && !r.is_end_of_stream) {
          return delete_results(stream, r.next_event_number, std::move(partition_streams));
        }
        partition_streams.insert(stream);
        for (const auto& s : partition_streams) {
          context_->delete_stream(kSystem, s, kExpectedAny, false, [](const DeleteResult&) {});
        }
      });
}

void UserProjections::state(const std::string& name, const std::string& partition, bool result,
                            std::function<void(ProjectionReply)> done) {
  auto it = entries_.find(name);
  if (it == entries_.end() || (!it->second->projection && !it->second->persistent)) {
    return done(reply(ProjectionOutcome::NotFound, "Projection " + name + " not found."));
  }
  auto entry = it->second;
  if (!entry->projection) return stored_state(*entry, partition, result, std::move(done));
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

// A kept projection not (yet) running here (loading on a new leader, or faulted before it could
// run): its result from its result stream, its state from its last checkpoint.
void UserProjections::stored_state(const Entry& entry, const std::string& partition, bool result,
                                   std::function<void(ProjectionReply)> done) {
  auto answer = [done = std::move(done)](std::string body) {
    ProjectionReply r;
    r.body = std::move(body);
    done(std::move(r));
  };
  if (result) {
    const std::string stream = partition.empty()
                                   ? "$projections-" + entry.name + "-result"
                                   : projections::partition_result_stream_of(entry.name, partition);
    return context_->read_stream(
        stream, -1, 1, false, false, [answer = std::move(answer)](ReadStreamResult r) {
          const bool found = r.status == ReadStreamStatus::Success && !r.events.empty() &&
                             r.events[0].event && r.events[0].event->event_type == "Result";
          answer(found ? r.events[0].event->data : "");
        });
  }
  context_->read_stream(
      projections::checkpoint_stream_of(entry.name), -1, 1, false, false,
      [partition, id = entry.id, answer = std::move(answer)](ReadStreamResult r) {
        if (r.status != ReadStreamStatus::Success || r.events.empty() || !r.events[0].event ||
            !checkpoint_is_of(r.events[0].event->metadata, id)) {
          return answer("");
        }
        answer(projections::partition_state_in(r.events[0].event->data, partition).value_or(""));
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

void UserProjections::command(const Principal& who, const std::string& name,
                              const std::string& command,
                              std::function<void(ProjectionReply)> done) {
  if (!may_manage(who)) return done(reply(ProjectionOutcome::AccessDenied, "Access denied."));
  auto it = entries_.find(name);
  if (it == entries_.end()) {
    return done(reply(ProjectionOutcome::NotFound, "Projection " + name + " not found."));
  }
  auto entry = it->second;
  if (command == "enable" || command == "disable" || command == "abort") {
    entry->enabled = command == "enable";
    if (entry->enabled) pump(entry);
    if (!entry->persistent) return done(reply(ProjectionOutcome::Ok));
    return save_definition(entry, std::move(done));
  }
  if (command != "reset") {
    return done(reply(ProjectionOutcome::NotFound, "Unknown command " + command + "."));
  }
  // A fresh entry from the query: the old one's pages in flight are dropped when they return.
  entry->removed = true;
  auto fresh = std::make_shared<Entry>();
  fresh->name = entry->name;
  fresh->query = entry->query;
  fresh->persistent = entry->persistent;
  fresh->config = entry->config;
  fresh->id = entry->id;
  fresh->version = entry->version + 1;
  fresh->tracked = entry->tracked;
  fresh->one_time = entry->one_time;
  fresh->stop_at = entry->stop_at;
  fresh->enabled = entry->one_time || entry->enabled;  // a completed one-time one runs again
  fresh->run_as = entry->run_as;
  fresh->busy = true;
  entries_[name] = fresh;
  if (fresh->persistent) {
    context_->delete_stream(kSystem, projections::checkpoint_stream_of(name), kExpectedAny, false,
                            [](const DeleteResult&) {});
  }
  auto token = running_;
  boost::asio::post(pool_, [this, token, fresh]() {
    auto compiled = projections::Projection::compile(fresh->name, fresh->query, {});
    auto shared = std::shared_ptr<projections::Projection>(std::move(compiled.projection));
    post_([this, token, fresh, shared, error = compiled.error] {
      if (!*token || fresh->removed) return;
      fresh->busy = false;
      if (!shared) {
        fresh->fault = error;
        return;
      }
      fresh->projection = shared;
      add(fresh);
    });
  });
  done(reply(ProjectionOutcome::Ok));
}

void UserProjections::update_query(const Principal& who, const std::string& name,
                                   const std::string& query, std::optional<bool> emit,
                                   std::function<void(ProjectionReply)> done) {
  if (!may_manage(who)) return done(reply(ProjectionOutcome::AccessDenied, "Access denied."));
  if (entries_.count(name) == 0) {
    return done(reply(ProjectionOutcome::NotFound, "Projection " + name + " not found."));
  }
  auto token = running_;
  boost::asio::post(pool_, [this, token, name, query, emit, done = std::move(done)]() mutable {
    const auto compiled = projections::Projection::compile(name, query, {});
    const std::string error = compiled.projection ? "" : compiled.error;
    post_([this, token, name, query, emit, error, done = std::move(done)]() mutable {
      if (!*token) return done(ProjectionReply{NotHandledReason::NotLeader, {}, {}, {}});
      auto it = entries_.find(name);
      if (it == entries_.end()) {
        return done(reply(ProjectionOutcome::NotFound, "Projection " + name + " not found."));
      }
      if (!error.empty()) return done(reply(ProjectionOutcome::Invalid, error));
      auto entry = it->second;
      if (emit && *emit && (!entry->persistent || entry->one_time)) {
        return done(
            reply(ProjectionOutcome::Invalid, "only continuous projections may emit (emit=yes)"));
      }
      entry->query = query;
      entry->version += 1;
      if (emit) entry->config.emit_enabled = *emit;
      if (entry->persistent) {
        // Saved, then loaded again from the streams: the new query on the last checkpoint.
        entry->busy = true;
        return save_definition(
            entry, [this, token, name, done = std::move(done)](ProjectionReply r) mutable {
              if (*token && r.not_handled == NotHandledReason::None &&
                  r.outcome == ProjectionOutcome::Ok) {
                load(name);
              }
              done(std::move(r));
            });
      }
      command(kSystem, name, "reset", std::move(done));
    });
  });
}

// Rewrites a continuous projection's definition (its enabled flag changed).
void UserProjections::save_definition(const std::shared_ptr<Entry>& entry,
                                      std::function<void(ProjectionReply)> done) {
  NewEvent definition{random_guid(), kDefinitionType, true, false, definition_of(*entry), ""};
  auto token = running_;
  context_->append(kSystem, definition_stream(entry->name), kExpectedAny, {definition},
                   [token, done = std::move(done)](const WriteResult& w) {
                     if (!*token || w.not_handled != NotHandledReason::None) {
                       return done(ProjectionReply{NotHandledReason::NotLeader, {}, {}, {}});
                     }
                     if (w.result != OperationResult::Success) {
                       return done(reply(ProjectionOutcome::Invalid, "not saved: " + w.message));
                     }
                     done(reply(ProjectionOutcome::Ok));
                   });
}

std::string UserProjections::definition_of(const Entry& entry) const {
  Poco::JSON::Object o(Poco::JSON_PRESERVE_KEY_ORDER);
  o.set("query", entry.query);
  o.set("mode", entry.one_time ? "OneTime" : "Continuous");
  if (entry.one_time) {
    Poco::JSON::Object::Ptr stop = new Poco::JSON::Object(Poco::JSON_PRESERVE_KEY_ORDER);
    stop->set("$c", entry.stop_at.commit);
    stop->set("$p", entry.stop_at.prepare);
    o.set("stopAt", stop);
  }
  o.set("id", entry.id);
  o.set("version", entry.version);
  o.set("emitEnabled", entry.config.emit_enabled);
  o.set("enabled", entry.enabled);
  o.set("runAs", entry.run_as.login);
  Poco::JSON::Array::Ptr groups = new Poco::JSON::Array;
  for (const auto& g : entry.run_as.groups) groups->add(g);
  o.set("runAsGroups", groups);
  Poco::JSON::Parser parser;
  o.set("config", parser.parse(projections::config_json(entry.config)));
  return to_json(o);
}

void UserProjections::config(const Principal& who, const projections::ProjectionManagement& request,
                             std::function<void(ProjectionReply)> done) {
  using Kind = projections::ProjectionManagement::Kind;
  // EventStore: the config takes $ops; a query (with its settings) is shown to any user.
  if (request.kind != Kind::GetQueryConfig && !may_manage(who)) {
    return done(reply(ProjectionOutcome::AccessDenied, "Access denied."));
  }
  auto it = entries_.find(request.name);
  if (it == entries_.end()) {
    return done(reply(ProjectionOutcome::NotFound, "Projection " + request.name + " not found."));
  }
  auto entry = it->second;
  ProjectionReply r;
  if (request.kind == Kind::GetConfig) {
    r.body = projections::config_json(entry->config);
    return done(std::move(r));
  }
  if (request.kind == Kind::GetQueryConfig) {
    Poco::JSON::Object o(Poco::JSON_PRESERVE_KEY_ORDER);
    o.set("name", entry->name);
    o.set("type", "JS");
    o.set("query", entry->query);
    o.set("emitEnabled", entry->config.emit_enabled);
    o.set("trackEmittedStreams", entry->config.track_emitted_streams);
    r.body = to_json(o);
    return done(std::move(r));
  }
  std::string error;
  auto parsed = projections::parse_config(request.body, entry->config, &error);
  if (!parsed) return done(reply(ProjectionOutcome::Invalid, error));
  if (parsed->emit_enabled && (!entry->persistent || entry->one_time)) {
    return done(reply(ProjectionOutcome::Invalid, "only continuous projections may emit"));
  }
  entry->config = *parsed;
  entry->version += 1;
  if (!entry->persistent) return done(reply(ProjectionOutcome::Ok));
  save_definition(entry, std::move(done));
}

std::vector<projections::ProjectionStatus> UserProjections::describe() const {
  std::vector<projections::ProjectionStatus> out;
  const int64_t head = context_ ? context_->commit_position() + 1 : 0;
  for (const auto& [name, entry] : entries_) {
    projections::ProjectionStatus s;
    s.name = name;
    s.mode = entry->one_time ? "OneTime" : entry->persistent ? "Continuous" : "Transient";
    s.status = !entry->fault.empty() ? "Faulted"
               : entry->completed    ? "Completed"
               : !entry->projection  ? "Preparing"
               : entry->enabled      ? "Running"
                                     : "Stopped";
    s.state_reason = entry->fault;
    s.position = entry->cursor;
    s.checkpoint = entry->checkpoint;
    s.events_processed = entry->processed;
    s.version = entry->version;
    s.core_processing_time_ms = entry->core_ms;
    s.reads_in_progress = entry->busy && entry->projection ? 1 : 0;
    s.progress = head <= 0 ? 100.0
                           : std::min(100.0, 100.0 * static_cast<double>(entry->cursor.prepare) /
                                                 static_cast<double>(head));
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace chorus
