// The stream subcommands: append, read, delete and meta, each one client call (read may page).
#include <Poco/JSON/Array.h>

#include <iostream>
#include <iterator>

#include "cli/app.hpp"
#include "cli/stream_output.hpp"
#include "cli/table.hpp"
#include "common/guid.hpp"

namespace chorus::cli {
namespace {

// A single read asks for at most this many events at once (the protocol's page limit).
constexpr int kPageEventsMax = client::kReadCountMax;
// `read` without --count.
constexpr int kReadCountDefault = 20;
// `read --count` is bounded so a typo cannot pull a whole database into memory.
constexpr int64_t kReadCountLimit = 1000000;

std::string read_stdin() {
  return std::string(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
}

}  // namespace

int cmd_append(const Context& ctx) {
  std::string stream;
  std::string type;
  std::string data;
  std::string metadata;
  std::string expected = "any";
  bool raw = false;
  po::options_description options("append options");
  options.add_options()("stream", po::value(&stream)->required(), "stream name")(
      "type", po::value(&type)->required(), "event type")(
      "data", po::value(&data), "event data ('-' reads stdin; default {})")(
      "expected-version", po::value(&expected),
      "any (default), no-stream, exists, or the stream's last event number")(
      "metadata", po::value(&metadata), "event metadata (JSON)")(
      "raw", po::bool_switch(&raw), "the data is not JSON (stored as bytes)");
  po::positional_options_description positional;
  positional.add("stream", 1).add("type", 1).add("data", 1);
  po::variables_map vm;
  if (!ctx.parse("append STREAM TYPE [DATA|-] [options]", options, positional, vm)) return kExitOk;
  const int64_t expected_version = parse_expected_version(expected);
  if (!vm.count("data")) data = raw ? "" : "{}";
  if (data == "-") data = read_stdin();
  if (!raw) require_json(data, "the data (use --raw for other bytes)", false);
  if (!metadata.empty()) require_json(metadata, "--metadata", true);
  client::Client c(ctx.client_settings());
  client::EventData event{random_guid(), type, !raw, data, metadata};
  const client::WriteResult r = call<client::WriteResult>(
      [&](auto done) { c.append(stream, expected_version, {event}, std::move(done)); });
  if (ctx.json) {
    Poco::JSON::Object::Ptr o = new Poco::JSON::Object(Poco::JSON_PRESERVE_KEY_ORDER);
    o->set("stream", stream);
    o->set("eventId", to_string(event.id));
    o->set("eventNumber", r.next_expected_version);
    o->set("commitPosition", r.position.commit);
    o->set("preparePosition", r.position.prepare);
    print_json(o);
  } else {
    std::cout << "appended " << stream << " #" << r.next_expected_version << " (id "
              << to_string(event.id) << ")\n";
  }
  return kExitOk;
}

namespace {

struct ReadRequest {
  std::string stream;
  int64_t from = 0;
  int64_t count = kReadCountDefault;
  bool backward = false;
  bool resolve = false;
};

// Pages through a stream until `count` events were read or its end; throws Failure for a
// missing or deleted stream.
std::vector<client::ResolvedEvent> read_events(client::Client& c, const ReadRequest& req) {
  std::vector<client::ResolvedEvent> events;
  int64_t next = req.from;
  const auto direction =
      req.backward ? client::ReadDirection::Backward : client::ReadDirection::Forward;
  while (static_cast<int64_t>(events.size()) < req.count) {
    const int page =
        static_cast<int>(std::min<int64_t>(kPageEventsMax, req.count - std::ssize(events)));
    client::StreamSlice slice = call<client::StreamSlice>([&](auto done) {
      c.read_stream(req.stream, next, page, direction, req.resolve, std::move(done));
    });
    if (slice.status == client::ReadStatus::NoStream) {
      throw Failure("stream '" + req.stream + "' not found");
    }
    if (slice.status == client::ReadStatus::StreamDeleted) {
      throw Failure("stream '" + req.stream + "' is deleted");
    }
    for (auto& e : slice.events) events.push_back(std::move(e));
    if (slice.is_end_of_stream || slice.events.empty()) break;
    next = slice.next_event_number;
  }
  return events;
}

}  // namespace

int cmd_read(const Context& ctx) {
  ReadRequest req;
  std::string from_text;
  po::options_description options("read options");
  options.add_options()("stream", po::value(&req.stream)->required(), "stream name")(
      "from", po::value(&from_text),
      "first event number (default 0, or the end with --backward; 'end' for the end)")(
      "count", po::value(&req.count)->default_value(kReadCountDefault), "events to read at most")(
      "backward", po::bool_switch(&req.backward), "newest first")(
      "resolve-links", po::bool_switch(&req.resolve), "show the events links point to");
  po::positional_options_description positional;
  positional.add("stream", 1);
  po::variables_map vm;
  if (!ctx.parse("read STREAM [--from N] [--count N] [--backward]", options, positional, vm)) {
    return kExitOk;
  }
  if (req.count < 1 || req.count > kReadCountLimit) {
    throw UsageError("--count must be 1.." + std::to_string(kReadCountLimit));
  }
  if (from_text.empty() || from_text == "end") {
    req.from = req.backward && from_text.empty() ? client::kStreamEnd
               : from_text == "end"              ? client::kStreamEnd
                                                 : 0;
  } else {
    try {
      req.from = std::stoll(from_text);
    } catch (const std::exception&) {
      throw UsageError("--from: '" + from_text + "' is not an event number");
    }
    if (req.from < 0) throw UsageError("--from must be >= 0 (or 'end')");
  }
  if (req.from == client::kStreamEnd && !req.backward) {
    throw UsageError("--from end only makes sense with --backward");
  }
  client::Client c(ctx.client_settings());
  const std::vector<client::ResolvedEvent> events = read_events(c, req);
  if (ctx.json) {
    Poco::JSON::Object::Ptr o = new Poco::JSON::Object(Poco::JSON_PRESERVE_KEY_ORDER);
    Poco::JSON::Array::Ptr list = new Poco::JSON::Array;
    for (const auto& e : events) list->add(event_json(e));
    o->set("stream", req.stream);
    o->set("events", list);
    print_json(o);
    return kExitOk;
  }
  Table table(event_headers());
  for (const auto& e : events) table.add(event_row(e));
  table.print(std::cout);
  return kExitOk;
}

int cmd_delete(const Context& ctx) {
  std::string stream;
  std::string expected = "any";
  bool hard = false;
  po::options_description options("delete options");
  options.add_options()("stream", po::value(&stream)->required(), "stream name")(
      "hard", po::bool_switch(&hard), "hard delete: the stream can never be written again")(
      "expected-version", po::value(&expected),
      "any (default), no-stream, exists, or the stream's last event number");
  po::positional_options_description positional;
  positional.add("stream", 1);
  po::variables_map vm;
  if (!ctx.parse("delete STREAM [--hard] [--expected-version V]", options, positional, vm)) {
    return kExitOk;
  }
  const int64_t expected_version = parse_expected_version(expected);
  client::Client c(ctx.client_settings());
  const client::DeleteResult r = call<client::DeleteResult>(
      [&](auto done) { c.delete_stream(stream, expected_version, hard, std::move(done)); });
  if (ctx.json) {
    Poco::JSON::Object::Ptr o = new Poco::JSON::Object(Poco::JSON_PRESERVE_KEY_ORDER);
    o->set("stream", stream);
    o->set("hard", hard);
    o->set("commitPosition", r.position.commit);
    o->set("preparePosition", r.position.prepare);
    print_json(o);
  } else {
    std::cout << (hard ? "hard-deleted " : "deleted ") << stream << "\n";
  }
  return kExitOk;
}

int cmd_meta(const Context& ctx) {
  std::string stream;
  std::string json;
  std::string expected = "any";
  po::options_description options("meta options");
  options.add_options()("stream", po::value(&stream)->required(), "stream name")(
      "set", po::value(&json), "replace the metadata with this JSON object ('-' reads stdin)")(
      "expected-version", po::value(&expected),
      "with --set: any (default), no-stream, or the metastream's last version");
  po::positional_options_description positional;
  positional.add("stream", 1);
  po::variables_map vm;
  if (!ctx.parse("meta STREAM [--set JSON]", options, positional, vm)) return kExitOk;
  client::Client c(ctx.client_settings());
  if (vm.count("set")) {
    if (json == "-") json = read_stdin();
    require_json(json, "--set", true);
    const int64_t expected_version = parse_expected_version(expected);
    const client::WriteResult r = call<client::WriteResult>(
        [&](auto done) { c.set_stream_metadata(stream, expected_version, json, std::move(done)); });
    if (ctx.json) {
      Poco::JSON::Object::Ptr o = new Poco::JSON::Object(Poco::JSON_PRESERVE_KEY_ORDER);
      o->set("stream", stream);
      o->set("metastreamVersion", r.next_expected_version);
      print_json(o);
    } else {
      std::cout << "metadata of " << stream << " set (version " << r.next_expected_version << ")\n";
    }
    return kExitOk;
  }
  const client::StreamMetadataResult m = call<client::StreamMetadataResult>(
      [&](auto done) { c.get_stream_metadata(stream, std::move(done)); });
  if (ctx.json) {
    Poco::JSON::Object::Ptr o = new Poco::JSON::Object(Poco::JSON_PRESERVE_KEY_ORDER);
    o->set("stream", stream);
    o->set("isDeleted", m.is_stream_deleted);
    o->set("metastreamVersion", m.metastream_version);
    client::ResolvedEvent holder;
    if (m.json.empty()) {
      o->set("metadata", Poco::Dynamic::Var());
    } else {
      holder.event = client::RecordedEvent{};
      holder.event->data = m.json;
      holder.event->is_json = true;
      o->set("metadata", event_json(holder)->get("data"));
    }
    print_json(o);
  } else if (m.is_stream_deleted) {
    std::cout << stream << " is deleted\n";
  } else if (m.json.empty()) {
    std::cout << stream << " has no metadata\n";
  } else {
    std::cout << m.json << "\n";
  }
  return kExitOk;
}

}  // namespace chorus::cli
