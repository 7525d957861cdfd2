// UserProjections, the running half (see user_projections.hpp): pages of $all through the
// projection threads, emitted events and checkpoints of continuous projections, and loading them
// from their streams when this node starts leading or after a failed write.
#include "worker/services/user_projections.hpp"

#include "worker/engine/reads.hpp"
#include "worker/projections/system_projections.hpp"

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <boost/asio/post.hpp>
#include <boost/uuid/name_generator_sha1.hpp>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <sstream>

namespace chorus {
namespace {

using projections::Outcome;

const Principal kSystem{"$system", {"$admins"}};
constexpr const char* kRegistryStream = "$projections-$all";
constexpr const char* kCreatedType = "$ProjectionCreated";
constexpr const char* kCheckpointType = "$ProjectionCheckpoint";
constexpr const char* kTrackedType = "$StreamTracked";
constexpr const char* kResultType = "Result";
constexpr const char* kResultRemovedType = "ResultRemoved";
constexpr const char* kLinkType = "$>";
// The namespace of emitted events' ids (a fixed random UUID; SHA-1 name-based ids).
const Guid kEmitIdNamespace = {{0x3f, 0x8a, 0x12, 0xc4, 0x5e, 0x77, 0x4b, 0x02, 0x9d, 0x61, 0xa0,
                                0x2e, 0x4c, 0xb3, 0x58, 0xe9}};

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

Guid emit_id(const std::string& projection, const Position& source, size_t index) {
  boost::uuids::name_generator_sha1 generate(kEmitIdNamespace);
  return generate(projection + "@" + std::to_string(source.commit) + "/" +
                  std::to_string(source.prepare) + "#" + std::to_string(index));
}

bool transient_failure(const WriteResult& w) {
  return w.not_handled != NotHandledReason::None || w.result == OperationResult::PrepareTimeout ||
         w.result == OperationResult::CommitTimeout || w.result == OperationResult::ForwardTimeout;
}

// The checkpoint's metadata: the $all position and the id of the projection it belongs to.
std::string checkpoint_tag(const Position& p, const std::string& id) {
  Poco::JSON::Object o(Poco::JSON_PRESERVE_KEY_ORDER);
  o.set("$c", p.commit);
  o.set("$p", p.prepare);
  if (!id.empty()) o.set("$i", id);
  std::ostringstream out;
  o.stringify(out);
  return out.str();
}

// A Result event's metadata: the source position it reflects and the event that changed it
// (EventStore's $c, $p and $causedBy).
std::string result_tag(const Position& p, const std::string& caused_by) {
  Poco::JSON::Object o(Poco::JSON_PRESERVE_KEY_ORDER);
  o.set("$c", p.commit);
  o.set("$p", p.prepare);
  o.set("$causedBy", caused_by);
  std::ostringstream out;
  o.stringify(out);
  return out.str();
}

// The position of a checkpoint of the projection `id` (a checkpoint without an id was written
// before ids existed and belongs to any).
std::optional<Position> parse_tag(const std::string& metadata, const std::string& id) {
  try {
    Poco::JSON::Parser parser;
    auto o = parser.parse(metadata).extract<Poco::JSON::Object::Ptr>();
    const std::string owner = o->optValue<std::string>("$i", "");
    if (!owner.empty() && owner != id) return std::nullopt;
    return Position{o->getValue<int64_t>("$c"), o->getValue<int64_t>("$p")};
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

// The creation id in a definition ("" when it has none).
std::string id_in(const std::string& definition) {
  try {
    Poco::JSON::Parser parser;
    auto o = parser.parse(definition).extract<Poco::JSON::Object::Ptr>();
    return o->optValue<std::string>("id", "");
  } catch (const std::exception&) {
    return "";
  }
}

std::optional<EventRecord> last_event(const ReadStreamResult& r) {
  if (r.status != ReadStreamStatus::Success || r.events.empty() || !r.events.front().event) {
    return std::nullopt;
  }
  return r.events.front().event;
}

}  // namespace

// ---------------------------------------------------------------- pages

void UserProjections::pump(const std::shared_ptr<Entry>& entry) {
  if (entry->busy || entry->removed || !entry->enabled || entry->completed ||
      !entry->fault.empty() || !entry->projection || !running()) {
    return;
  }
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
  // Due a second after the last one or after checkpointHandledThreshold events, never sooner
  // than checkpointAfterMs (EventStore's settings).
  const int64_t now = now_ms_();
  const int64_t since = now - entry->last_checkpoint_ms;
  // A one-time projection's last page always ends with a checkpoint: its final state. A
  // caught-up projection checkpoints what it processed since the last one too (an empty page).
  const bool last_page = entry->one_time && !(page.next < entry->stop_at);
  const bool snapshot =
      entry->persistent && (!page.events.empty() || entry->processed_unchecked > 0) &&
      (last_page || (since >= entry->config.checkpoint_after_ms &&
                     (since >= kUserCheckpointMs ||
                      entry->processed_unchecked >= entry->config.checkpoint_handled_threshold)));
  if (snapshot) entry->last_checkpoint_ms = now;
  const bool full = static_cast<int32_t>(page.events.size()) >= kUserPageRecords;
  auto token = running_;
  boost::asio::post(pool_, [this, token, entry, snapshot, full, page = std::move(page)]() mutable {
    Fed fed;
    const auto began = std::chrono::steady_clock::now();
    {
      std::lock_guard lock(*entry->mutex);
      projections::Projection& p = *entry->projection;
      const bool results = entry->persistent && p.sources().produces_results;
      std::vector<ResultUpdate> touched;  // each partition once, at its last event of the page
      std::map<std::string, size_t> touched_at;
      for (const ResolvedEvent& e : page.events) {
        if (!*token) return;  // stopping: the page is dropped anyway
        const auto event = as_seen_by(p, e);
        if (!event) continue;
        const auto r = p.process(*event);
        if (r.outcome == Outcome::Faulted) {
          fed.fault = p.fault();
          break;
        }
        if (r.outcome != Outcome::Processed) continue;
        fed.processed += 1;
        const Position source = e.original().position;
        if (results) {
          auto [at, fresh] = touched_at.try_emplace(r.partition, touched.size());
          if (fresh) touched.push_back(ResultUpdate{r.partition, std::nullopt, {}, ""});
          touched[at->second].at = source;
          touched[at->second].caused_by = to_string(e.original().event_id);
        }
        for (size_t i = 0; i < r.emitted.size(); ++i) {
          const auto& out = r.emitted[i];
          fed.emitted.emplace_back(
              out.stream, NewEvent{emit_id(entry->name, source, i), out.event_type, out.is_json,
                                   !out.metadata.empty(), out.data, out.metadata});
        }
      }
      if (fed.fault.empty() && results) {
        fed.result_stream = p.result_stream();
        collect_results(p, entry->result_hashes, std::move(touched), fed);
      }
      if (fed.fault.empty() && snapshot) {
        fed.snapshot = p.snapshot();
        if (!fed.snapshot) fed.fault = p.fault();
      }
    }
    fed.elapsed_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::steady_clock::now() - began)
                         .count();
    post_([this, token, entry, fed = std::move(fed), next = page.next, full]() mutable {
      if (!*token || entry->removed) return;
      on_fed(entry, std::move(fed), next, full);
    });
  });
}

void UserProjections::on_fed(const std::shared_ptr<Entry>& entry, Fed fed, Position next,
                             bool full) {
  entry->processed += fed.processed;
  entry->processed_unchecked = fed.snapshot ? 0 : entry->processed_unchecked + fed.processed;
  entry->core_ms += fed.elapsed_ms;
  if (fed.fault.empty() && !fed.emitted.empty() && !entry->config.emit_enabled) {
    fed.fault = entry->persistent && !entry->one_time
                    ? "'emit' and 'linkTo' need the projection created with emit enabled"
                    : "'emit' and 'linkTo' are not allowed in a transient or one-time projection";
  }
  if (fed.fault.empty() && fed.snapshot && fed.snapshot->size() > kEventBytesMax) {
    fed.fault = "the state (" + std::to_string(fed.snapshot->size()) +
                " bytes) is larger than a checkpoint may be (" + std::to_string(kEventBytesMax) +
                " bytes)";
  }
  for (const auto& [stream, event] : fed.emitted) {
    if (!fed.fault.empty()) break;
    if (!stream.empty() && stream[0] == '$') {
      fed.fault = "a projection may not emit to the system stream " + stream;
    } else if (!context_->can_access(stream, StreamAccess::Write, entry->run_as)) {
      fed.fault = "access denied: " + entry->run_as.login + " may not write to " + stream;
    }
  }
  if (!fed.fault.empty()) {
    entry->fault = fed.fault;
    entry->busy = false;
    return;
  }
  for (const auto& u : fed.results) {
    if (u.result && u.result->size() > kEventBytesMax) {
      fed.fault = "the result of partition '" + u.partition + "' (" +
                  std::to_string(u.result->size()) + " bytes) is larger than an event may be";
      entry->fault = fed.fault;
      entry->busy = false;
      return;
    }
  }
  if (fed.emitted.empty()) return write_results(entry, std::move(fed), next, full);
  if (entry->config.track_emitted_streams) {
    for (const auto& [stream, event] : fed.emitted) track_emitted(entry, stream);
  }
  write_emitted(entry, std::move(fed), next, full);
}

// One append per event, in order: the write path recognises an event written again (after a
// reload) by its id only when it is the first of its batch.
void UserProjections::write_emitted(const std::shared_ptr<Entry>& entry, Fed fed, Position next,
                                    bool full) {
  struct Pending {
    size_t remaining;
    bool retry = false;
    std::string fault;
    Fed rest;  // the page's results and checkpoint, written after its emitted events
  };
  auto emitted = std::move(fed.emitted);
  auto pending = std::make_shared<Pending>(Pending{emitted.size(), false, "", std::move(fed)});
  auto token = running_;
  for (auto& [stream, event] : emitted) {
    context_->append(
        kSystem, stream, kExpectedAny, {std::move(event)},
        [this, token, entry, pending, next, full, stream = stream](const WriteResult& w) {
          if (!*token || entry->removed) return;
          if (transient_failure(w)) {
            pending->retry = true;
          } else if (w.result != OperationResult::Success && pending->fault.empty()) {
            pending->fault = "writing to " + stream + " failed: " + w.message;
          }
          if (--pending->remaining > 0) return;
          if (!pending->fault.empty()) {
            entry->fault = pending->fault;
            entry->busy = false;
          } else if (pending->retry) {
            reload_later(entry);
          } else {
            write_results(entry, std::move(pending->rest), next, full);
          }
        });
  }
}

// A page's changed results, after its emitted events and before its checkpoint: each one as a
// Result event in its partition's result stream (all at once), then the links to the
// partitions' ones in the root result stream in one append, in page order (a link names the
// event number its Result got). A failed write is handled as an emitted event's.
void UserProjections::write_results(const std::shared_ptr<Entry>& entry, Fed fed, Position next,
                                    bool full) {
  if (fed.results.empty()) return page_done(entry, std::move(fed.snapshot), next, full);
  struct Pending {
    size_t remaining;
    bool retry = false;
    std::string fault;
    std::vector<std::optional<NewEvent>> links;  // by result, for the partitions' ones
    std::optional<std::string> snapshot;
  };
  auto pending = std::make_shared<Pending>();
  pending->remaining = fed.results.size();
  pending->links.resize(fed.results.size());
  pending->snapshot = std::move(fed.snapshot);
  const std::string root = fed.result_stream;
  auto token = running_;
  for (size_t i = 0; i < fed.results.size(); ++i) {
    auto& u = fed.results[i];
    const bool partitioned = !u.partition.empty();
    const std::string stream =
        partitioned ? projections::partition_result_stream_of(entry->name, u.partition) : root;
    std::string tag = result_tag(u.at, u.caused_by);
    NewEvent e{random_guid(),         u.result ? kResultType : kResultRemovedType,
               u.result.has_value(),  true,
               u.result.value_or(""), tag};
    context_->append(
        kSystem, stream, kExpectedAny, {std::move(e)},
        [this, token, entry, pending, i, partitioned, stream, root, tag = std::move(tag), next,
         full](const WriteResult& w) {
          if (!*token || entry->removed) return;
          if (transient_failure(w)) {
            pending->retry = true;
          } else if (w.result != OperationResult::Success) {
            if (pending->fault.empty()) {
              pending->fault = "writing to " + stream + " failed: " + w.message;
            }
          } else if (partitioned) {
            pending->links[i] = NewEvent{random_guid(),
                                         kLinkType,
                                         false,
                                         true,
                                         std::to_string(w.first_event_number) + "@" + stream,
                                         tag};
          }
          if (--pending->remaining > 0) return;
          if (!pending->fault.empty()) {
            entry->fault = pending->fault;
            entry->busy = false;
            return;
          }
          if (pending->retry) return reload_later(entry);
          std::vector<NewEvent> links;
          for (auto& link : pending->links) {
            if (link) links.push_back(std::move(*link));
          }
          link_results(entry, std::move(links), root, std::move(pending->snapshot), next, full);
        });
  }
}

void UserProjections::link_results(const std::shared_ptr<Entry>& entry, std::vector<NewEvent> links,
                                   const std::string& stream, std::optional<std::string> snapshot,
                                   Position next, bool full) {
  if (links.empty()) return page_done(entry, std::move(snapshot), next, full);
  auto token = running_;
  context_->append(kSystem, stream, kExpectedAny, std::move(links),
                   [this, token, entry, stream, snapshot = std::move(snapshot), next,
                    full](const WriteResult& w) mutable {
                     if (!*token || entry->removed) return;
                     if (transient_failure(w)) return reload_later(entry);
                     if (w.result != OperationResult::Success) {
                       entry->fault = "writing to " + stream + " failed: " + w.message;
                       entry->busy = false;
                       return;
                     }
                     page_done(entry, std::move(snapshot), next, full);
                   });
}

void UserProjections::page_done(const std::shared_ptr<Entry>& entry,
                                std::optional<std::string> snapshot, Position next, bool full) {
  entry->cursor = std::max(entry->cursor, next);
  entry->busy = false;
  if (snapshot) {
    NewEvent e{random_guid(), kCheckpointType,      true,
               true,          std::move(*snapshot), checkpoint_tag(entry->cursor, entry->id)};
    entry->checkpoint = entry->cursor;
    context_->append(kSystem, projections::checkpoint_stream_of(entry->name), kExpectedAny, {e},
                     [](const WriteResult&) {});
  }
  if (entry->one_time && !(entry->cursor < entry->stop_at)) {
    entry->completed = true;
    return;
  }
  if (full || entry->wake) pump(entry);
}

// Which of the page's touched partitions have a result other than the one last written
// (REQUIRES: the projection's mutex held; on a projection thread).
void UserProjections::collect_results(projections::Projection& p,
                                      std::map<std::string, size_t>& written,
                                      std::vector<ResultUpdate> touched, Fed& fed) {
  for (auto& u : touched) {
    u.result = p.result(u.partition);
    if (p.faulted()) {
      fed.fault = p.fault();
      return;
    }
    // 0 stands for no result; a present one's hash is made odd so it never is 0.
    const size_t hash = u.result ? (std::hash<std::string>{}(*u.result) | 1u) : 0u;
    auto it = written.try_emplace(u.partition, 0u).first;
    if (it->second == hash) continue;
    it->second = hash;
    fed.results.push_back(std::move(u));
  }
}

// ---------------------------------------------------------------- loading continuous ones

void UserProjections::load_registry() {
  auto token = running_;
  context_->read_stream(kRegistryStream, 0, kReadCountMax, true, false,
                        [this, token](ReadStreamResult r) {
                          if (!*token || r.status != ReadStreamStatus::Success) return;
                          std::vector<std::string> names;
                          for (const auto& e : r.events) {
                            if (!e.event) continue;
                            const std::string& name = e.event->data;
                            names.erase(std::remove(names.begin(), names.end(), name), names.end());
                            if (e.event->event_type == kCreatedType) names.push_back(name);
                          }
                          for (const auto& name : names) load(name);
                        });
}

void UserProjections::load(const std::string& name) {
  // What the loaded projection replaces; a reset or another load in the meantime wins.
  auto found = entries_.find(name);
  std::shared_ptr<Entry> replaced = found == entries_.end() ? nullptr : found->second;
  auto token = running_;
  context_->read_stream(
      "$projections-" + name, -1, 1, false, false,
      [this, token, name, replaced](ReadStreamResult d) {
        if (!*token) return;
        const auto definition = last_event(d);
        if (!definition) return;
        context_->read_stream(
            projections::checkpoint_stream_of(name), -1, 1, false, false,
            [this, token, name, replaced, data = definition->data](ReadStreamResult c) {
              if (!*token) return;
              auto now = entries_.find(name);
              if ((now == entries_.end() ? nullptr : now->second) != replaced) return;
              std::optional<std::pair<std::string, Position>> checkpoint;
              if (const auto e = last_event(c)) {
                if (const auto at = parse_tag(e->metadata, id_in(data)))
                  checkpoint.emplace(e->data, *at);
              }
              install(name, data, checkpoint);
            });
      });
}

void UserProjections::install(const std::string& name, const std::string& definition,
                              std::optional<std::pair<std::string, Position>> checkpoint) {
  auto entry = std::make_shared<Entry>();
  entry->name = name;
  entry->persistent = true;
  entry->busy = true;  // until compiled
  try {
    Poco::JSON::Parser parser;
    auto o = parser.parse(definition).extract<Poco::JSON::Object::Ptr>();
    entry->query = o->getValue<std::string>("query");
    entry->id = o->optValue<std::string>("id", "");
    entry->one_time = o->optValue<std::string>("mode", "") == "OneTime";
    if (auto stop = o->getObject("stopAt")) {
      entry->stop_at = Position{stop->getValue<int64_t>("$c"), stop->getValue<int64_t>("$p")};
    }
    entry->version = o->optValue<int64_t>("version", 0);
    if (auto config = o->getObject("config")) {
      std::ostringstream text;
      config->stringify(text);
      std::string error;
      if (auto parsed = projections::parse_config(text.str(), {}, &error)) entry->config = *parsed;
    }
    entry->config.emit_enabled = o->optValue<bool>("emitEnabled", false);
    entry->enabled = o->optValue<bool>("enabled", true);
    entry->run_as.login = o->optValue<std::string>("runAs", "");
    if (auto groups = o->getArray("runAsGroups")) {
      for (size_t i = 0; i < groups->size(); ++i) {
        entry->run_as.groups.push_back(groups->getElement<std::string>(i));
      }
    }
  } catch (const std::exception& e) {
    entry->fault = std::string("its definition is not readable: ") + e.what();
  }
  if (checkpoint) entry->cursor = entry->checkpoint = checkpoint->second;
  // A one-time projection whose last checkpoint reached its end is done: its state is restored
  // and shown, nothing more is read.
  entry->completed = entry->one_time && checkpoint && !(checkpoint->second < entry->stop_at);
  if (auto old = entries_.find(name); old != entries_.end()) old->second->removed = true;
  entries_[name] = entry;
  if (!entry->fault.empty()) return;
  auto token = running_;
  boost::asio::post(pool_, [this, token, entry, checkpoint]() {
    auto compiled = projections::Projection::compile(entry->name, entry->query, {});
    std::string fault = compiled.error;
    if (compiled.projection && checkpoint && !compiled.projection->restore(checkpoint->first)) {
      fault = "its checkpoint could not be restored: " + compiled.projection->fault();
    }
    auto shared = std::shared_ptr<projections::Projection>(std::move(compiled.projection));
    post_([this, token, entry, shared, fault] {
      if (!*token || entry->removed) return;
      entry->busy = false;
      if (!fault.empty()) {
        entry->fault = fault;
        return;
      }
      entry->projection = shared;
      add(entry);
    });
  });
}

// A write failed in a way that may pass: the projection's state ran ahead of what is written, so
// it starts again from its checkpoint (what it writes again is recognised by id).
void UserProjections::reload_later(const std::shared_ptr<Entry>& entry) {
  entry->busy = true;
  auto token = running_;
  context_->after(kUserReloadMs, [this, token, entry] {
    if (!*token || entry->removed) return;
    load(entry->name);
  });
}

// Records a stream the projection emits to in $projections-<name>-emittedstreams the first time
// (before the emitted event: appends keep their order), for DELETE's deleteEmittedStreams.
void UserProjections::track_emitted(const std::shared_ptr<Entry>& entry,
                                    const std::string& stream) {
  if (!entry->tracked.insert(stream).second) return;
  NewEvent e{random_guid(), kTrackedType, false, false, stream, ""};
  context_->append(kSystem, "$projections-" + entry->name + "-emittedstreams", kExpectedAny, {e},
                   [](const WriteResult&) {});
}

}  // namespace chorus
