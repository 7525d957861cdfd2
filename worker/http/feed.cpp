// Feed and entry JSON (see feed.hpp). Follows EventStore v5's Convert.ToStreamEvent*Feed and
// ToEntry: link relations, newest-first entries, `data` as a string of JSON text.
#include "worker/http/feed.hpp"

#include "common/gossip.hpp"

#include <Poco/Base64Encoder.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/URI.h>

#include <algorithm>
#include <sstream>

namespace chorus::http {
namespace {

using Poco::JSON::Array;
using Poco::JSON::Object;

// ES writes DateTime.MinValue for an empty feed.
constexpr const char* kMinTime = "0001-01-01T00:00:00Z";

Object::Ptr new_object() { return new Object(Poco::JSON_PRESERVE_KEY_ORDER); }

std::string stringify(const Object::Ptr& object) {
  std::ostringstream out;
  object->stringify(out);
  return out.str();
}

std::string base64(const std::string& bytes) {
  std::ostringstream out;
  Poco::Base64Encoder encoder(out);
  encoder.rdbuf()->setLineLength(0);
  encoder << bytes;
  encoder.close();
  return out.str();
}

Object::Ptr author() {
  Object::Ptr a = new_object();
  a->set("name", "EventStore");
  return a;
}

void add_link(Array::Ptr& links, const std::string& uri, const char* relation) {
  Object::Ptr link = new_object();
  link->set("uri", uri);
  link->set("relation", relation);
  links->add(link);
}

std::string event_url(const std::string& base_url, const EventRecord& record) {
  return base_url + stream_path(record.stream) + "/" + std::to_string(record.number);
}

void add_data(Object::Ptr& entry, const char* text_key, const char* base64_key, bool is_json,
              const std::string& bytes) {
  if (bytes.empty()) return;
  if (is_json) {
    entry->set(text_key, bytes);
  } else {
    entry->set(base64_key, base64(bytes));
  }
}

void add_rich_fields(Object::Ptr& entry, const ResolvedEvent& event, bool with_body) {
  const EventRecord& original = event.original();
  const EventRecord& shown = event.event ? *event.event : original;
  entry->set("eventId", to_string(shown.event_id));
  entry->set("eventType", shown.event_type);
  entry->set("eventNumber", shown.number);
  if (with_body) {
    add_data(entry, "data", "dataBase64", shown.data_is_json, shown.data);
    // As EventStore's ToEntry: metadata is shown as text when the data is JSON.
    add_data(entry, "metaData", "metaDataBase64", shown.data_is_json, shown.metadata);
    if (event.link && event.event) {
      add_data(entry, "linkMetaData", "linkMetaDataBase64", shown.data_is_json,
               event.link->metadata);
    }
  }
  entry->set("streamId", shown.stream);
  entry->set("isJson", shown.data_is_json);
  entry->set("isMetaData", !shown.metadata.empty());
  entry->set("isLinkMetaData", event.link && event.event && !event.link->metadata.empty());
  entry->set("positionEventNumber", original.number);
  entry->set("positionStreamId", original.stream);
}

Object::Ptr content_object(const EventRecord& shown) {
  Object::Ptr content = new_object();
  content->set("eventStreamId", shown.stream);
  content->set("eventNumber", shown.number);
  content->set("eventType", shown.event_type);
  content->set("eventId", to_string(shown.event_id));
  content->set("data", shown.data_is_json ? shown.data : base64(shown.data));
  content->set("metadata", shown.metadata_is_json ? shown.metadata : base64(shown.metadata));
  return content;
}

Object::Ptr entry_object(const std::string& base_url, const ResolvedEvent& event, Embed embed) {
  const EventRecord& shown = event.event ? *event.event : event.original();
  const std::string url = event_url(base_url, shown);
  Object::Ptr entry = new_object();
  entry->set("title", std::to_string(shown.number) + "@" + shown.stream);
  entry->set("id", url);
  entry->set("updated", iso_time_ms(shown.created_ms));
  entry->set("author", author());
  entry->set("summary", event.event ? shown.event_type : std::string("$>"));
  if (embed >= Embed::Rich) add_rich_fields(entry, event, embed >= Embed::Body);
  if (embed == Embed::Content && event.event) entry->set("content", content_object(shown));
  Array::Ptr links = new Array;
  add_link(links, url, "edit");
  add_link(links, url, "alternate");
  entry->set("links", links);
  return entry;
}

Object::Ptr feed_header(const std::string& title, const std::string& self, const std::string& id,
                        const std::string& updated, bool head_of_stream) {
  Object::Ptr feed = new_object();
  feed->set("title", title);
  feed->set("id", id);
  feed->set("updated", updated);
  feed->set("author", author());
  feed->set("headOfStream", head_of_stream);
  feed->set("selfUrl", self);
  return feed;
}

template <typename Events>
std::string first_updated(const Events& events, bool forward) {
  if (events.empty()) return kMinTime;
  const ResolvedEvent& newest = forward ? events.back() : events.front();
  return iso_time_ms(newest.original().created_ms);
}

template <typename Events>
Array::Ptr entries_newest_first(const std::string& base_url, const Events& events, bool forward,
                                Embed embed) {
  Array::Ptr entries = new Array;
  if (forward) {
    for (auto it = events.rbegin(); it != events.rend(); ++it) {
      entries->add(entry_object(base_url, *it, embed));
    }
  } else {
    for (const ResolvedEvent& event : events) entries->add(entry_object(base_url, event, embed));
  }
  return entries;
}

}  // namespace

std::string stream_path(const std::string& stream) {
  std::string escaped;
  Poco::URI::encode(stream, "/?#%&+ ", escaped);
  return "/streams/" + escaped;
}

std::string iso_time_ms(int64_t unix_ms) { return iso8601_utc(unix_ms * 1000); }

bool stream_head_of_stream(const StreamFeedRequest& request, const ReadStreamResult& result) {
  return request.forward ? result.is_end_of_stream : request.from < 0;
}

std::string stream_feed_json(const StreamFeedRequest& request, const ReadStreamResult& result) {
  const std::string self = request.base_url + stream_path(request.stream);
  const std::string count = std::to_string(request.count);
  const bool head = stream_head_of_stream(request, result);
  Object::Ptr feed = feed_header("Event stream '" + request.stream + "'", self, self,
                                 first_updated(result.events, request.forward), head);
  feed->set("streamId", request.stream);
  Array::Ptr links = new Array;
  add_link(links, self, "self");
  add_link(links, self + "/head/backward/" + count, "first");
  if (request.forward) {
    const int64_t previous =
        std::min(request.from + request.count - 1, result.last_event_number) + 1;
    const int64_t next = request.from - 1;
    if (next >= 0) {
      add_link(links, self + "/0/forward/" + count, "last");
      add_link(links, self + "/" + std::to_string(next) + "/backward/" + count, "next");
    }
    if (!result.is_end_of_stream || !result.events.empty()) {
      add_link(links, self + "/" + std::to_string(previous) + "/forward/" + count, "previous");
    }
  } else {
    const int64_t from = request.from < 0 ? result.last_event_number : request.from;
    const int64_t previous = std::min(from, result.last_event_number) + 1;
    const int64_t next = from - request.count;
    if (!result.is_end_of_stream && next >= 0) {
      add_link(links, self + "/0/forward/" + count, "last");
      add_link(links, self + "/" + std::to_string(next) + "/backward/" + count, "next");
    }
    add_link(links, self + "/" + std::to_string(previous) + "/forward/" + count, "previous");
  }
  add_link(links, self + "/metadata", "metadata");
  feed->set("links", links);
  feed->set("entries",
            entries_newest_first(request.base_url, result.events, request.forward, request.embed));
  return stringify(feed);
}

std::string all_feed_json(const AllFeedRequest& request, const ReadAllResult& result) {
  const std::string self = request.base_url + "/streams/%24all";
  const std::string count = std::to_string(request.count);
  const bool end = static_cast<int32_t>(result.events.size()) < request.count;
  const bool head = request.forward ? end : request.from_head;
  Object::Ptr feed =
      feed_header("All events", self, self, first_updated(result.events, request.forward), head);
  Array::Ptr links = new Array;
  add_link(links, self, "self");
  add_link(links, self + "/head/backward/" + count, "first");
  // Backward: `from` is the newest bound, `next` the oldest event read. Forward: the reverse.
  const Position older = request.forward ? result.from : result.next;
  const Position newer = request.forward ? result.next : result.from;
  if (!(request.forward ? older == Position::start() : end)) {
    add_link(links, self + "/" + format_position(Position::start()) + "/forward/" + count, "last");
    add_link(links, self + "/" + format_position(older) + "/backward/" + count, "next");
  }
  add_link(links, self + "/" + format_position(newer) + "/forward/" + count, "previous");
  add_link(links, self + "/metadata", "metadata");
  feed->set("links", links);
  feed->set("entries",
            entries_newest_first(request.base_url, result.events, request.forward, request.embed));
  return stringify(feed);
}

std::string competing_feed_json(const CompetingFeedRequest& request,
                                const std::vector<ResolvedEvent>& events) {
  std::string stream_escaped;
  std::string group_escaped;
  Poco::URI::encode(request.stream, "/?#%&+ ", stream_escaped);
  Poco::URI::encode(request.group, "/?#%&+ ", group_escaped);
  const std::string base =
      request.base_url + "/subscriptions/" + stream_escaped + "/" + group_escaped;
  const std::string self = base + "/" + std::to_string(request.count);
  Object::Ptr feed = feed_header("All Events Persistent Subscription", self, self,
                                 first_updated(events, true), false);
  Array::Ptr links = new Array;
  // Acks name the original record (the link when the event came through one), as ES does.
  std::string ids;
  for (const ResolvedEvent& e : events) {
    if (!ids.empty()) ids += ",";
    ids += to_string(e.original().event_id);
  }
  if (!events.empty()) {
    add_link(links, base + "/ack?ids=" + ids, "ackAll");
    add_link(links, base + "/nack?ids=" + ids, "nackAll");
  }
  add_link(links, self, "previous");
  add_link(links, self, "self");
  feed->set("links", links);
  Array::Ptr entries = new Array;
  for (auto it = events.rbegin(); it != events.rend(); ++it) {
    Object::Ptr entry = entry_object(request.base_url, *it, request.embed);
    Array::Ptr entry_links = entry->getArray("links");
    const std::string id = to_string(it->original().event_id);
    add_link(entry_links, base + "/ack/" + id, "ack");
    add_link(entry_links, base + "/nack/" + id, "nack");
    entries->add(entry);
  }
  feed->set("entries", entries);
  return stringify(feed);
}

std::string event_entry_json(const std::string& base_url, const ResolvedEvent& event,
                             MediaType type) {
  const Embed embed = type == MediaType::AtomJson ? Embed::Content : Embed::Body;
  return stringify(entry_object(base_url, event, embed));
}

}  // namespace chorus::http
