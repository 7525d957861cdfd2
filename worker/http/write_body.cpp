// The body of a POST /streams request (see write_body.hpp). Status codes and texts follow
// EventStore's Configure.cs (PROTOCOL.md E2).
#include "worker/http/write_body.hpp"

#include "worker/http/feed.hpp"
#include "worker/http/headers.hpp"

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/JSON/Stringifier.h>

#include <algorithm>
#include <cctype>
#include <sstream>

namespace chorus::http {
namespace {

std::string media_base(const std::optional<std::string>& content_type) {
  if (!content_type) return "";
  std::string type = content_type->substr(0, content_type->find(';'));
  type.erase(std::remove_if(type.begin(), type.end(), [](unsigned char c) { return c == ' '; }),
             type.end());
  std::transform(type.begin(), type.end(), type.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return type;
}

std::string stringify(const Poco::Dynamic::Var& value) {
  std::ostringstream out;
  Poco::JSON::Stringifier::stringify(value, out);
  return out.str();
}

bool is_json_container(const Poco::Dynamic::Var& value) {
  return value.type() == typeid(Poco::JSON::Object::Ptr) ||
         value.type() == typeid(Poco::JSON::Array::Ptr);
}

// data/metadata of a JSON event: objects and arrays (or strings holding them) are JSON; other
// strings are stored raw; numbers and booleans as their JSON text.
void set_payload(const Poco::Dynamic::Var& value, std::string& bytes, bool& is_json) {
  is_json = false;
  bytes.clear();
  if (value.isEmpty()) return;
  if (is_json_container(value)) {
    bytes = stringify(value);
    is_json = true;
    return;
  }
  if (value.isString()) {
    bytes = value.extract<std::string>();
    try {
      Poco::JSON::Parser parser;
      is_json = is_json_container(parser.parse(bytes));
    } catch (const Poco::Exception&) {
      is_json = false;
    }
    return;
  }
  bytes = stringify(value);
  is_json = true;
}

std::optional<NewEvent> event_from_object(const Poco::JSON::Object& object, std::string& error) {
  NewEvent event;
  const std::optional<Guid> id =
      object.has("eventId") ? parse_guid(object.getValue<std::string>("eventId")) : std::nullopt;
  if (!id) {
    error = "Write request body invalid: eventId is missing or not a GUID.";
    return std::nullopt;
  }
  event.event_id = *id;
  if (!object.has("eventType") || object.getValue<std::string>("eventType").empty()) {
    error = "Write request body invalid: eventType is missing.";
    return std::nullopt;
  }
  event.event_type = object.getValue<std::string>("eventType");
  set_payload(object.get("data"), event.data, event.data_is_json);
  set_payload(object.get("metadata"), event.metadata, event.metadata_is_json);
  return event;
}

ParsedWrite refuse(Reply reply) {
  ParsedWrite parsed;
  parsed.refusal = std::move(reply);
  return parsed;
}

ParsedWrite parse_event_array(const std::string& body) {
  Poco::Dynamic::Var root;
  try {
    Poco::JSON::Parser parser;
    root = parser.parse(body);
  } catch (const Poco::Exception& e) {
    return refuse(text_reply(400, "Malformed JSON: " + e.displayText()));
  }
  if (root.type() != typeid(Poco::JSON::Array::Ptr)) {
    return refuse(text_reply(400, "Write request body invalid: expected an array of events."));
  }
  const Poco::JSON::Array::Ptr array = root.extract<Poco::JSON::Array::Ptr>();
  ParsedWrite parsed;
  for (size_t i = 0; i < array->size(); ++i) {
    const Poco::JSON::Object::Ptr object = array->getObject(static_cast<unsigned>(i));
    if (object.isNull()) {
      return refuse(text_reply(400, "Write request body invalid: events must be objects."));
    }
    std::string error;
    std::optional<NewEvent> event = event_from_object(*object, error);
    if (!event) return refuse(text_reply(400, error));
    parsed.events.push_back(std::move(*event));
  }
  return parsed;
}

}  // namespace

ParsedWrite parse_write_body(const Request& request, const std::string& stream,
                             const std::string& default_type) {
  const std::string type = media_base(request.header("Content-Type"));
  if (type == "application/vnd.eventstore.events+json" ||
      type == "application/vnd.eventstore.atom+json") {
    return parse_event_array(request.body);
  }
  NewEvent event;
  event.event_type = request.header("ES-EventType").value_or(default_type);
  if (event.event_type.empty()) {
    return refuse(
        text_reply(400,
                   "Must include an event type with the request either in body or as ES-EventType "
                   "header."));
  }
  const std::optional<std::string> id_text = request.header("ES-EventId");
  if (!id_text) {
    Reply redirect = text_reply(307, "Temporary Redirect");
    redirect.headers["Location"] =
        request.base_url + stream_path(stream) + "/incoming/" + to_string(random_guid());
    return refuse(redirect);
  }
  const std::optional<Guid> id = parse_guid(*id_text);
  if (!id) return refuse(text_reply(400, header_error_text("ES-EventId")));
  event.event_id = *id;
  event.data = request.body;
  if (type == "application/json") {
    try {
      Poco::JSON::Parser parser;
      parser.parse(request.body);
    } catch (const Poco::Exception& e) {
      return refuse(text_reply(400, "Malformed JSON: " + e.displayText()));
    }
    event.data_is_json = true;
  }
  ParsedWrite parsed;
  parsed.events.push_back(std::move(event));
  return parsed;
}

}  // namespace chorus::http
