// Projection: see projection.hpp. The query runs once after the prelude; its definition comes
// back as JSON and is parsed here. Each event then costs one or two entries into JavaScript
// (partitionBy, then the handlers), each under the heap's limits.
#include "worker/projections/projection.hpp"

#include "worker/projections/prelude.hpp"
#include "worker/projections/system_projections.hpp"

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/JSON/Stringifier.h>

#include <algorithm>
#include <sstream>
#include <stdexcept>

namespace chorus::projections {
namespace {

constexpr const char* kLinkType = "$>";

std::vector<std::string> strings_of(const Poco::JSON::Object::Ptr& o, const std::string& key) {
  std::vector<std::string> out;
  auto a = o->getArray(key);
  for (size_t i = 0; a && i < a->size(); ++i) out.push_back(a->getElement<std::string>(i));
  return out;
}

SourceDefinition parse_definition(const std::string& json) {
  Poco::JSON::Parser parser;
  auto o = parser.parse(json).extract<Poco::JSON::Object::Ptr>();
  SourceDefinition d;
  d.all_streams = o->optValue<bool>("allStreams", false);
  d.streams = strings_of(o, "streams");
  d.categories = strings_of(o, "categories");
  d.all_events = o->optValue<bool>("allEvents", true);
  d.events = strings_of(o, "events");
  d.by_streams = o->optValue<bool>("byStreams", false);
  d.by_custom_partitions = o->optValue<bool>("byCustomPartitions", false);
  d.defines_fold = o->optValue<bool>("definesFold", false);
  d.produces_results = o->optValue<bool>("producesResults", false);
  d.defines_state_transform = o->optValue<bool>("definesStateTransform", false);
  d.handles_deleted = o->optValue<bool>("handlesDeleted", false);
  d.bi_state = o->optValue<bool>("biState", false);
  if (!o->isNull("resultStreamName") && o->has("resultStreamName")) {
    d.result_stream_name = o->getValue<std::string>("resultStreamName");
  }
  d.include_links = o->optValue<bool>("includeLinks", false);
  d.reorder_events = o->optValue<bool>("reorderEvents", false);
  d.processing_lag_ms = static_cast<int64_t>(o->optValue<double>("processingLag", 0));
  return d;
}

bool contains(const std::vector<std::string>& list, const std::string& value) {
  return std::find(list.begin(), list.end(), value) != list.end();
}

std::vector<JsArg> envelope_args(const ProjectionEvent& e, const std::string& category) {
  return {e.data,
          e.is_json,
          e.stream,
          e.event_type,
          category.empty() ? JsArg{nullptr} : JsArg{category},
          static_cast<double>(e.number),
          e.metadata,
          e.link_metadata,
          e.event_id};
}

}  // namespace

Projection::Projection(std::string name, JsLimits limits)
    : name_(std::move(name)), heap_(std::make_unique<JsHeap>(limits)) {}

Projection::Compiled Projection::compile(const std::string& name, const std::string& query,
                                         JsLimits limits) {
  Compiled c;
  if (query.size() > kQueryBytesMax) {
    c.error = "the query has " + std::to_string(query.size()) + " bytes; the limit is " +
              std::to_string(kQueryBytesMax);
    return c;
  }
  std::unique_ptr<Projection> p;
  try {
    p.reset(new Projection(name, limits));
  } catch (const std::runtime_error& e) {
    c.error = e.what();
    return c;
  }
  JsResult r = p->heap_->eval("prelude", kPrelude);
  if (!r.ok) throw std::logic_error("the projection prelude failed: " + r.error);
  r = p->heap_->eval(name, query);
  if (r.ok) r = p->heap_->call("__chorus_definition", {});
  if (!r.ok || !r.value) {
    c.error = r.ok ? "the query defined nothing" : r.error;
    return c;
  }
  try {
    p->sources_ = parse_definition(*r.value);
  } catch (const std::exception& e) {
    c.error = std::string("the query's definition could not be read: ") + e.what();
    return c;
  }
  c.projection = std::move(p);
  return c;
}

std::string Projection::result_stream() const {
  return sources_.result_stream_name.value_or("$projections-" + name_ + "-result");
}

bool Projection::selects(const std::string& read_stream, const std::string& stream) const {
  if (sources_.all_streams || contains(sources_.streams, read_stream)) return true;
  if (sources_.categories.empty()) return false;
  const auto category = category_of(stream);
  return category && contains(sources_.categories, *category);
}

bool Projection::wants(const ProjectionEvent& e) const {
  if (e.event_type == kLinkType && !e.resolved_link && !sources_.include_links) return false;
  if (!selects(e.read_stream.empty() ? e.stream : e.read_stream, e.stream)) return false;
  return sources_.all_events || contains(sources_.events, e.event_type);
}

ProcessResult Projection::process(const ProjectionEvent& e) {
  ProcessResult result;
  if (faulted()) {
    result.outcome = Outcome::Faulted;
    return result;
  }
  if (!wants(e)) return result;
  const std::string category = category_of(e.stream).value_or("");
  const auto partition = partition_of(e, category);
  if (!partition) {
    result.outcome = Outcome::Faulted;
    return result;
  }
  std::vector<JsArg> args = envelope_args(e, category);
  args.insert(args.begin(), *partition);
  const auto emitted = enter("__chorus_process", args);
  if (!emitted || !parse_emitted(*emitted, result.emitted)) {
    result.emitted.clear();
    result.outcome = Outcome::Faulted;
    return result;
  }
  result.outcome = Outcome::Processed;
  result.partition = *partition;
  return result;
}

ProcessResult Projection::stream_deleted(const std::string& stream, bool soft) {
  ProcessResult result;
  if (faulted()) {
    result.outcome = Outcome::Faulted;
    return result;
  }
  if (!sources_.handles_deleted || !sources_.by_streams) return result;
  if (!selects(stream, stream)) return result;
  const auto emitted = enter("__chorus_deleted", {stream, soft});
  if (!emitted || !parse_emitted(*emitted, result.emitted)) {
    result.outcome = Outcome::Faulted;
    return result;
  }
  result.outcome = Outcome::Processed;
  result.partition = stream;
  return result;
}

std::optional<std::string> Projection::partition_of(const ProjectionEvent& e,
                                                    const std::string& category) {
  if (sources_.by_streams) return e.stream;
  if (!sources_.by_custom_partitions) return std::string();
  const auto p = enter("__chorus_partition", envelope_args(e, category));
  if (faulted()) return std::nullopt;
  return p.value_or("");
}

std::optional<std::string> Projection::state(const std::string& partition) {
  return enter("__chorus_state", {partition});
}

std::optional<std::string> Projection::shared_state() { return enter("__chorus_shared_state", {}); }

std::optional<std::string> Projection::result(const std::string& partition) {
  return enter("__chorus_result", {partition});
}

bool Projection::load_state(const std::string& partition, const std::string& json) {
  enter("__chorus_load_state", {partition, json});
  return !faulted();
}

bool Projection::load_shared_state(const std::string& json) {
  enter("__chorus_load_shared_state", {json});
  return !faulted();
}

std::optional<std::string> Projection::snapshot() { return enter("__chorus_snapshot", {}); }

bool Projection::restore(const std::string& json) {
  enter("__chorus_restore", {json});
  return !faulted();
}

std::vector<std::string> Projection::log_lines() {
  std::vector<std::string> lines;
  const auto json = enter("__chorus_log", {});
  if (!json) return lines;
  Poco::JSON::Parser parser;
  auto a = parser.parse(*json).extract<Poco::JSON::Array::Ptr>();
  for (size_t i = 0; i < a->size(); ++i) lines.push_back(a->getElement<std::string>(i));
  return lines;
}

// One entry into JavaScript; a failure faults the projection. A faulted projection still
// answers queries of its state (EventStore shows a faulted projection's last state).
std::optional<std::string> Projection::enter(const std::string& function,
                                             const std::vector<JsArg>& args) {
  JsResult r = heap_->call(function, args);
  if (!r.ok) {
    fail(r.error);
    return std::nullopt;
  }
  return r.value;
}

bool Projection::parse_emitted(const std::string& json, std::vector<EmittedEvent>& out) {
  try {
    Poco::JSON::Parser parser;
    auto a = parser.parse(json).extract<Poco::JSON::Array::Ptr>();
    for (size_t i = 0; i < a->size(); ++i) {
      auto o = a->getObject(static_cast<unsigned>(i));
      out.push_back(
          EmittedEvent{o->getValue<std::string>("streamId"), o->getValue<std::string>("eventType"),
                       o->optValue<bool>("isJson", false), o->optValue<std::string>("data", ""),
                       o->optValue<std::string>("metadata", "")});
    }
    return true;
  } catch (const std::exception& e) {
    fail(std::string("the emitted events could not be read: ") + e.what());
    return false;
  }
}

std::optional<std::string> partition_state_in(const std::string& snapshot,
                                              const std::string& partition) {
  try {
    Poco::JSON::Parser parser;
    auto o = parser.parse(snapshot).extract<Poco::JSON::Object::Ptr>();
    auto states = o->getObject("states");
    if (!states || !states->has(partition)) return std::nullopt;
    std::ostringstream out;
    Poco::JSON::Stringifier::stringify(states->get(partition), out);
    return out.str();
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

void Projection::fail(std::string message) {
  if (fault_.empty()) fault_ = message.empty() ? "the projection failed" : std::move(message);
}

}  // namespace chorus::projections
