// The /streams routes (see streams_api.hpp). Status codes and texts follow EventStore's
// Configure.cs (PROTOCOL.md E2).
#include "worker/http/streams_api.hpp"

#include "worker/http/proxy.hpp"

#include "worker/engine/engine.hpp"
#include "worker/http/engine_wait.hpp"
#include "worker/http/feed.hpp"
#include "worker/http/headers.hpp"
#include "worker/http/limits.hpp"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

namespace chorus::http {
namespace {

constexpr const char* kAllStream = "$all";
constexpr const char* kTimeoutText = "Operation timed out";
// Retry-After of a login this node cannot check yet: the next second is the soonest a held
// login's answer can change in practice (a replication round under load), and it matches
// node-eventstore-client's 1 s retry period over TCP.
constexpr int kNotReadyRetryAfterSeconds = 1;

Reply timeout_reply() { return text_reply(500, kTimeoutText); }

// On a successful write or delete: its commit position (the log position its last record ends
// at), so that a follower that passed the request on can wait until it shows the write.
constexpr const char* kCommitPositionHeader = "Chorus-Commit-Position";

std::optional<Reply> check_event_sizes(const std::vector<NewEvent>& events) {
  for (const NewEvent& event : events) {
    if (event.data.size() + event.metadata.size() > kHttpEventBytesMax) {
      return text_reply(413, "Event too large");
    }
  }
  return std::nullopt;
}

template <typename Status>
std::optional<Reply> common_read_status(Status status, const std::string& error) {
  switch (status) {
    case Status::Success:
      return std::nullopt;
    case Status::StreamDeleted:
      return text_reply(410, "Stream deleted");
    case Status::AccessDenied:
      return unauthorized("Access denied");
    case Status::Error:
      return text_reply(500, error.empty() ? std::string("Error") : error);
    default:
      return text_reply(404, "Not Found");
  }
}

// Waits for one event of a subscription (or its drop), with a deadline and the stop flag.
struct EventWaiter {
  std::mutex mutex;
  std::condition_variable changed;
  bool confirmed = false;
  bool fired = false;

  void mark(bool event) {
    std::lock_guard lock(mutex);
    confirmed = true;
    fired = fired || event;
    changed.notify_all();
  }

  // Waits until `done()` holds, the deadline passes or the server stops.
  template <typename Done>
  bool wait(std::chrono::steady_clock::time_point deadline, const std::atomic<bool>& stopping,
            Done done) {
    std::unique_lock lock(mutex);
    while (!done()) {
      if (stopping.load() || std::chrono::steady_clock::now() >= deadline) return false;
      changed.wait_for(lock, std::chrono::milliseconds(kLongPollSliceMs));
    }
    return true;
  }
};

Reply with_cache_headers(Reply reply, const std::string& etag, bool head) {
  reply.headers["ETag"] = "\"" + etag + "\"";
  reply.headers["Cache-Control"] =
      head ? "max-age=0, no-cache, must-revalidate" : "max-age=31536000, public";
  reply.headers["Vary"] = "Accept";
  return reply;
}

Reply typed_reply(MediaType type, std::string body) {
  Reply reply = json_reply(200, std::move(body));
  reply.content_type = std::string(media_type_name(type)) + "; charset=utf-8";
  return reply;
}

}  // namespace

Reply unauthorized(const std::string& message) {
  Reply reply = text_reply(401, message);
  reply.headers["WWW-Authenticate"] = "BasicCustom realm=\"ES\"";
  return reply;
}

std::optional<Reply> login_refusal(const AuthResult& result) {
  if (result.principal) return std::nullopt;
  if (!result.not_ready) return unauthorized("Not Authenticated");
  // EventStore's reason for a node that is not ready; the body says why to an operator, and
  // nothing about the password (a wrong one gets the same answer until it can be checked).
  Reply reply = text_reply(503, "Server Is Not Ready");
  reply.body =
      "Server Is Not Ready: this node cannot check this login until it has caught up with the "
      "cluster (forming or catching up); retry shortly.";
  reply.headers["Retry-After"] = std::to_string(kNotReadyRetryAfterSeconds);
  return reply;
}

// ES-RequireMaster (v5) or ES-RequireLeader (v20) set to true.
bool requires_leader(const Request& request) {
  for (const char* name : {"ES-RequireMaster", "ES-RequireLeader"}) {
    const auto value = parse_bool_header(request.header(name), false);
    if (value && *value) return true;
  }
  return false;
}

Reply not_handled_reply(NotHandledReason reason, const Request& request,
                        const std::function<std::optional<LeaderHttp>()>& leader_http,
                        const std::string& message) {
  // TooBusy with a message: the leader's disk is low (EngineConfig::low_disk_refusal).
  if (reason == NotHandledReason::TooBusy && !message.empty()) return text_reply(507, message);
  if (reason == NotHandledReason::TooBusy) return text_reply(503, "Server Is Too Busy");
  const std::optional<LeaderHttp> leader =
      reason == NotHandledReason::NotLeader && leader_http ? leader_http() : std::nullopt;
  if (!leader) return text_reply(503, "Server Is Not Ready");
  // Writes are passed on to the leader unless the client insists on the leader itself.
  if (request.method != "GET" && !requires_leader(request)) {
    return proxy_to_leader(leader->internal, request, leader->tls);
  }
  Reply redirect = text_reply(307, "Temporary Redirect");
  std::string target =
      (leader->tls.isNull() ? "http://" : "https://") + leader->external + request.path;
  if (!request.raw_query.empty()) target += "?" + request.raw_query;
  redirect.headers["Location"] = target;
  return redirect;
}

Reply write_reply(const WriteResult& result, const std::string& location) {
  switch (result.result) {
    case OperationResult::Success: {
      Reply reply = text_reply(201, "Created");
      reply.body.clear();
      reply.headers["Location"] = location + "/" + std::to_string(result.first_event_number);
      reply.headers[kCommitPositionHeader] = std::to_string(result.position.commit);
      return reply;
    }
    case OperationResult::WrongExpectedVersion: {
      Reply reply = text_reply(400, "Wrong expected EventNumber");
      reply.headers["ES-CurrentVersion"] = std::to_string(result.current_version);
      return reply;
    }
    case OperationResult::StreamDeleted:
      return text_reply(410, "Stream deleted");
    case OperationResult::AccessDenied:
      return unauthorized("Access denied");
    case OperationResult::InvalidTransaction:
      return text_reply(500, "Invalid transaction");
    default:
      return text_reply(500, "Write timeout");
  }
}

std::optional<Reply> read_status_reply(ReadStreamStatus status, const std::string& error) {
  if (status == ReadStreamStatus::NotModified) return text_reply(304, "Not Modified");
  return common_read_status(status, error);
}

StreamsApi::StreamsApi(Engine& engine, const std::atomic<bool>& stopping,
                       std::function<std::optional<LeaderHttp>()> leader_http)
    : engine_(engine), stopping_(stopping), leader_http_(std::move(leader_http)) {}

std::optional<Reply> StreamsApi::leader_required(const Request& request) const {
  const NodeStatus status = engine_.status();
  if (status.is_leader) return std::nullopt;
  if (!requires_leader(request)) {
    // A follower serves reads once caught up; before that its answers could go back in time
    // (404 for a stream the client just wrote), so it says it is not ready (503), as EventStore.
    if (status.state == "Follower") return std::nullopt;
    return not_handled_reply(NotHandledReason::NotReady, request, leader_http_);
  }
  return not_handled_reply(
      status.leader_id ? NotHandledReason::NotLeader : NotHandledReason::NotReady, request,
      leader_http_);
}

void StreamsApi::register_routes(Router& router) {
  router.add("POST", "/streams/{stream}/metadata", [this](Request& r) {
    return post_events(r, "$$" + r.param("stream"), "$metadata", std::nullopt);
  });
  router.add("GET", "/streams/{stream}/metadata", [this](Request& r) {
    if (auto redirect = leader_required(r)) return *redirect;
    return get_event(r, "$$" + r.param("stream"), "head");
  });
  router.add("POST", "/streams/{stream}",
             [this](Request& r) { return post_events(r, r.param("stream"), "", std::nullopt); });
  router.add("POST", "/streams/{stream}/incoming/{guid}", [this](Request& r) {
    const std::optional<Guid> id = parse_guid(r.param("guid"));
    if (!id) return text_reply(400, "Invalid event id in URL.");
    return post_events(r, r.param("stream"), "", id);
  });
  router.add("DELETE", "/streams/{stream}",
             [this](Request& r) { return delete_stream(r, r.param("stream")); });
  // Reads are served here from committed data unless the client requires the leader.
  router.add("GET", "/streams/{stream}", [this](Request& r) {
    if (auto redirect = leader_required(r)) return *redirect;
    return get_stream_page(r, r.param("stream"), "head", "backward", "");
  });
  router.add("GET", "/streams/{stream}/{event}", [this](Request& r) {
    if (auto redirect = leader_required(r)) return *redirect;
    return get_event(r, r.param("stream"), r.param("event"));
  });
  router.add("GET", "/streams/{stream}/{from}/{direction}", [this](Request& r) {
    if (auto redirect = leader_required(r)) return *redirect;
    return get_stream_page(r, r.param("stream"), r.param("from"), r.param("direction"), "");
  });
  router.add("GET", "/streams/{stream}/{from}/{direction}/{count}", [this](Request& r) {
    if (auto redirect = leader_required(r)) return *redirect;
    return get_stream_page(r, r.param("stream"), r.param("from"), r.param("direction"),
                           r.param("count"));
  });
}

// The leader's answer to a write this node passed on: a success is returned only once this node
// shows the write (its commit position is visible here), so the client reads its own write on
// the node it talks to; 500 (EventStore's CommitTimeout) if that takes longer than the commit
// timeout. Other answers (refusals, 307, 503) are returned as they are.
Reply StreamsApi::visible_here(Reply leader_answer) {
  const auto header = leader_answer.headers.find(kCommitPositionHeader);
  if (leader_answer.status / 100 != 2 || header == leader_answer.headers.end()) {
    return leader_answer;
  }
  int64_t end = 0;
  const std::string& text = header->second;
  const auto [rest, error] = std::from_chars(text.data(), text.data() + text.size(), end);
  if (error != std::errc() || rest != text.data() + text.size()) return leader_answer;
  const std::optional<bool> visible =
      wait_for_engine<bool>([&](auto done) { engine_.when_visible(end, std::move(done)); });
  if (!visible || !*visible) return text_reply(500, "Write timeout");
  return leader_answer;
}

Reply StreamsApi::post_events(Request& request, const std::string& stream,
                              const std::string& default_type,
                              const std::optional<Guid>& event_id) {
  const std::optional<int64_t> expected =
      parse_expected_version(request.header("ES-ExpectedVersion"));
  if (!expected) return text_reply(400, header_error_text("ES-ExpectedVersion"));
  if (!parse_bool_header(request.header("ES-RequireMaster"), false)) {
    return text_reply(400, header_error_text("ES-RequireMaster"));
  }
  Request effective = request;
  if (event_id) effective.headers["ES-EventId"] = to_string(*event_id);
  ParsedWrite parsed = parse_write_body(effective, stream, default_type);
  if (parsed.refusal) return *parsed.refusal;
  if (std::optional<Reply> too_large = check_event_sizes(parsed.events)) return *too_large;
  const std::optional<WriteResult> result = wait_for_engine<WriteResult>([&](auto done) {
    engine_.append(request.who, stream, *expected, std::move(parsed.events), std::move(done));
  });
  if (!result) return timeout_reply();
  if (result->not_handled != NotHandledReason::None) {
    return visible_here(
        not_handled_reply(result->not_handled, request, leader_http_, result->message));
  }
  // A follower may have passed this write on and answers its client only once it shows it:
  // the followers hear the commit position now (Engine::announce_commit).
  if (result->result == OperationResult::Success) engine_.announce_commit();
  return write_reply(*result, request.base_url + stream_path(stream));
}

Reply StreamsApi::delete_stream(Request& request, const std::string& stream) {
  const std::optional<int64_t> expected =
      parse_expected_version(request.header("ES-ExpectedVersion"));
  if (!expected) return text_reply(400, header_error_text("ES-ExpectedVersion"));
  const std::optional<bool> hard = parse_bool_header(request.header("ES-HardDelete"), false);
  if (!hard) return text_reply(400, header_error_text("ES-HardDelete"));
  const std::optional<DeleteResult> result = wait_for_engine<DeleteResult>([&](auto done) {
    engine_.delete_stream(request.who, stream, *expected, *hard, std::move(done));
  });
  if (!result) return timeout_reply();
  if (result->not_handled != NotHandledReason::None) {
    return visible_here(
        not_handled_reply(result->not_handled, request, leader_http_, result->message));
  }
  if (result->result == OperationResult::Success) {
    engine_.announce_commit();  // as for a write: a follower may wait to show it
    Reply reply = text_reply(204, "Stream deleted");
    reply.body.clear();
    reply.content_type.clear();
    reply.headers[kCommitPositionHeader] = std::to_string(result->position.commit);
    return reply;
  }
  WriteResult as_write;
  as_write.result = result->result;
  as_write.current_version = result->current_version;
  return write_reply(as_write, "");
}

std::optional<ReadStreamResult> StreamsApi::read_stream_waiting(const Request& request,
                                                                const std::string& stream,
                                                                int64_t from, int32_t count,
                                                                bool resolve,
                                                                int long_poll_seconds) {
  auto read = [&] {
    return wait_for_engine<ReadStreamResult>([&](auto done) {
      engine_.read_stream(request.who, stream, from, count, true, resolve, std::move(done));
    });
  };
  if (long_poll_seconds <= 0) return read();
  // A slot among kLongPollsWaitingMax, or no wait at all: answered as if the poll timed out.
  if (long_polls_waiting_.fetch_add(1) >= kLongPollsWaitingMax) {
    long_polls_waiting_.fetch_sub(1);
    return read();
  }
  struct Release {
    std::atomic<int>& count;
    ~Release() { count.fetch_sub(1); }
  } release{long_polls_waiting_};
  // Subscribe before reading so that an event written between the read and the wait wakes us.
  auto waiter = std::make_shared<EventWaiter>();
  SubscriptionCallbacks callbacks;
  callbacks.confirmed = [waiter](int64_t, std::optional<int64_t>) { waiter->mark(false); };
  callbacks.event_appeared = [waiter](const ResolvedEvent&) { waiter->mark(true); };
  callbacks.dropped = [waiter](DropReason) { waiter->mark(true); };
  const uint64_t id = engine_.subscribe(request.who, stream, false, std::move(callbacks));
  const auto start = std::chrono::steady_clock::now();
  waiter->wait(start + std::chrono::milliseconds(kEngineWaitMs), stopping_,
               [&] { return waiter->confirmed; });
  std::optional<ReadStreamResult> result = read();
  const bool waitable =
      result && result->events.empty() &&
      (result->status == ReadStreamStatus::Success || result->status == ReadStreamStatus::NoStream);
  if (waitable && waiter->wait(start + std::chrono::seconds(long_poll_seconds), stopping_,
                               [&] { return waiter->fired; })) {
    result = read();
  }
  engine_.forget_subscription(id);
  return result;
}

Reply StreamsApi::get_stream_page(Request& request, const std::string& stream,
                                  const std::string& from_text, const std::string& direction,
                                  const std::string& count_text) {
  const bool forward = direction == "forward";
  if (!forward && direction != "backward") return text_reply(404, "Not Found");
  const std::optional<MediaType> type = negotiate(request.header("Accept"), MediaType::Json);
  if (!type) return text_reply(406, "Not Acceptable");
  const std::optional<bool> resolve = parse_bool_header(request.header("ES-ResolveLinkTos"), true);
  if (!resolve) return text_reply(400, header_error_text("ES-ResolveLinkTos"));
  const std::optional<int> long_poll = parse_long_poll(request.header("ES-LongPoll"));
  if (!long_poll) return text_reply(400, header_error_text("ES-LongPoll"));
  int32_t count = kFeedCountDefault;
  if (!count_text.empty()) {
    const std::optional<int64_t> parsed = parse_non_negative(count_text);
    if (!parsed || *parsed == 0) return text_reply(400, "Invalid count: " + count_text);
    count = static_cast<int32_t>(std::min<int64_t>(*parsed, kFeedCountMax));
  }
  if (stream == kAllStream) {
    request.params["from"] = from_text;
    return get_all_page(request, from_text, forward, count, *resolve);
  }
  int64_t from = -1;
  if (from_text != "head" || forward) {
    const std::optional<int64_t> parsed = parse_non_negative(from_text);
    if (!parsed) return text_reply(400, "Invalid from: " + from_text);
    from = *parsed;
  }
  std::optional<ReadStreamResult> result;
  if (forward) {
    result = read_stream_waiting(request, stream, from, count, *resolve, *long_poll);
  } else {
    result = wait_for_engine<ReadStreamResult>([&](auto done) {
      engine_.read_stream(request.who, stream, from, count, false, *resolve, std::move(done));
    });
  }
  if (!result) return timeout_reply();
  if (std::optional<Reply> refused = read_status_reply(result->status, result->error)) {
    return *refused;
  }
  const StreamFeedRequest feed{
      request.base_url, stream, from, count, forward, parse_embed(request.query_value("embed"))};
  const std::string etag = stream_etag(result->last_event_number, *type);
  const bool head = stream_head_of_stream(feed, *result);
  if (etag_matches(request.header("If-None-Match"), etag)) {
    Reply not_modified = text_reply(304, "Not Modified");
    not_modified.body.clear();
    not_modified.content_type.clear();
    return with_cache_headers(not_modified, etag, head);
  }
  return with_cache_headers(typed_reply(*type, stream_feed_json(feed, *result)), etag, head);
}

Reply StreamsApi::get_all_page(Request& request, const std::string& from_text, bool forward,
                               int32_t count, bool resolve) {
  const std::optional<MediaType> type = negotiate(request.header("Accept"), MediaType::Json);
  if (!type) return text_reply(406, "Not Acceptable");
  Position from = Position::end();
  const bool from_head = from_text == "head";
  if (!from_head || forward) {
    const std::optional<Position> parsed = parse_position(from_text);
    if (!parsed) return text_reply(400, "Invalid position: " + from_text);
    from = *parsed;
  }
  const std::optional<ReadAllResult> result = wait_for_engine<ReadAllResult>([&](auto done) {
    engine_.read_all(request.who, from, count, forward, resolve, std::move(done));
  });
  if (!result) return timeout_reply();
  if (result->status == ReadAllStatus::AccessDenied) return unauthorized("Access denied");
  if (result->status == ReadAllStatus::NotModified) return text_reply(304, "Not Modified");
  if (result->status == ReadAllStatus::Error) return text_reply(500, result->error);
  const AllFeedRequest feed{request.base_url, from_head, count, forward,
                            parse_embed(request.query_value("embed"))};
  Reply reply = typed_reply(*type, all_feed_json(feed, *result));
  reply.headers["Vary"] = "Accept";
  reply.headers["Cache-Control"] = "max-age=0, no-cache, must-revalidate";
  return reply;
}

Reply StreamsApi::get_event(Request& request, const std::string& stream,
                            const std::string& number_text) {
  const std::optional<MediaType> type = negotiate(request.header("Accept"), MediaType::Json);
  if (!type) return text_reply(406, "Not Acceptable");
  const std::optional<bool> resolve = parse_bool_header(request.header("ES-ResolveLinkTos"), true);
  if (!resolve) return text_reply(400, header_error_text("ES-ResolveLinkTos"));
  int64_t number = -1;
  if (number_text != "head") {
    const std::optional<int64_t> parsed = parse_non_negative(number_text);
    if (!parsed) return text_reply(400, "Invalid event number: " + number_text);
    number = *parsed;
  }
  const std::optional<ReadEventResult> result = wait_for_engine<ReadEventResult>([&](auto done) {
    engine_.read_event(request.who, stream, number, *resolve, std::move(done));
  });
  if (!result) return timeout_reply();
  if (result->status != ReadEventStatus::Success || !result->event) {
    if (result->status == ReadEventStatus::Success) return text_reply(404, "Not Found");
    return *common_read_status(result->status, result->error);
  }
  const ResolvedEvent& event = *result->event;
  const EventRecord& shown = event.event ? *event.event : event.original();
  Reply reply;
  if (*type == MediaType::Json) {
    reply = json_reply(200, shown.data);
    if (!shown.data_is_json) reply.content_type = "application/octet-stream";
  } else {
    reply = typed_reply(*type, event_entry_json(request.base_url, event, *type));
  }
  reply.headers["Vary"] = "Accept";
  reply.headers["Cache-Control"] = "max-age=31536000, public";
  return reply;
}

}  // namespace chorus::http
