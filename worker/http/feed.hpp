// Feed JSON: EventStore's atom-style feeds (E1) for stream and $all reads and the entry of one
// event, built from the engine's read results. Entries are newest-first in both directions.
// Pure functions; any thread.
#pragma once

#include "worker/engine/types.hpp"
#include "worker/http/headers.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace chorus::http {

struct StreamFeedRequest {
  std::string base_url;  // "http://host:port"
  std::string stream;
  int64_t from = -1;  // -1 = head (backward only)
  int32_t count = 20;
  bool forward = false;
  Embed embed = Embed::None;
};

// Whether a stream page is the head of the stream (E1).
bool stream_head_of_stream(const StreamFeedRequest& request, const ReadStreamResult& result);
std::string stream_feed_json(const StreamFeedRequest& request, const ReadStreamResult& result);

struct AllFeedRequest {
  std::string base_url;
  bool from_head = false;
  int32_t count = 20;
  bool forward = false;
  Embed embed = Embed::None;
};
std::string all_feed_json(const AllFeedRequest& request, const ReadAllResult& result);

// Competing-consumer reads of a persistent subscription group (E4): entries newest-first with
// `ack` and `nack` links, and `ackAll`/`nackAll` feed links when there are entries.
struct CompetingFeedRequest {
  std::string base_url;
  std::string stream;
  std::string group;
  int32_t count = 1;
  Embed embed = Embed::None;
};
std::string competing_feed_json(const CompetingFeedRequest& request,
                                const std::vector<ResolvedEvent>& events);

// One event as an entry: the rich entry with data (events+json) or with `content` (atom+json).
std::string event_entry_json(const std::string& base_url, const ResolvedEvent& event,
                             MediaType type);

// "/streams/<escaped stream>" (stream names may hold any character).
std::string stream_path(const std::string& stream);
// ISO-8601 UTC with microseconds for a time in milliseconds since the epoch.
std::string iso_time_ms(int64_t unix_ms);

}  // namespace chorus::http
