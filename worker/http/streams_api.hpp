// StreamsApi: the /streams routes (writes, reads, feeds, long polls, deletes, metadata, $all).
// Maps HTTP to Engine calls and Engine results to EventStore's status codes (PROTOCOL.md E2);
// every rule (versions, ACLs, paging, deletes) stays in the engine. Handlers run on Poco request
// threads and block on the engine with a deadline.
#pragma once

#include "worker/http/request.hpp"
#include "worker/http/router.hpp"
#include "worker/http/write_body.hpp"

#include <atomic>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace chorus {
class Engine;
}

namespace chorus::http {

// Status and headers of a write result (201 + Location, 400 + ES-CurrentVersion, ...).
Reply write_reply(const WriteResult& result, const std::string& location);
// Status of a read result without a body (404, 410, 401, 500) or nullopt for success.
std::optional<Reply> read_status_reply(ReadStreamStatus status, const std::string& error);
// 503 (not ready, too busy) or 307 to the same path on the leader (NotLeader, leader known);
// 507 Insufficient Storage with `message` when the leader is too low on disk to take writes.
Reply not_handled_reply(NotHandledReason reason, const Request& request,
                        const std::function<std::optional<LeaderHttp>()>& leader_http,
                        const std::string& message = "");
// 401 with EventStore's challenge header.
Reply unauthorized(const std::string& message);
// What a request with credentials gets when their check did not accept them: 401 when they are
// wrong, 503 "Server Is Not Ready" (with Retry-After) when this node cannot check them yet
// (AuthResult::not_ready); nullopt when they were accepted.
std::optional<Reply> login_refusal(const AuthResult& result);

class StreamsApi {
 public:
  // `leader_http` names the leader's external HTTP "host:port" when this node is not the leader
  // (for EventStore's 307 on NotLeader); empty or nullopt -> 503 Not Ready.
  StreamsApi(Engine& engine, const std::atomic<bool>& stopping,
             std::function<std::optional<LeaderHttp>()> leader_http);
  void register_routes(Router& router);

 private:
  // A 307 (or 503) when the client requires the leader and this node is not it.
  std::optional<Reply> leader_required(const Request& request) const;
  Reply post_events(Request& request, const std::string& stream, const std::string& default_type,
                    const std::optional<Guid>& event_id);
  Reply get_stream_page(Request& request, const std::string& stream, const std::string& from,
                        const std::string& direction, const std::string& count);
  Reply get_all_page(Request& request, const std::string& from, bool forward, int32_t count,
                     bool resolve);
  Reply get_event(Request& request, const std::string& stream, const std::string& number);
  Reply delete_stream(Request& request, const std::string& stream);
  Reply visible_here(Reply leader_answer);
  std::optional<ReadStreamResult> read_stream_waiting(const Request& request,
                                                      const std::string& stream, int64_t from,
                                                      int32_t count, bool resolve,
                                                      int long_poll_seconds);

  Engine& engine_;
  const std::atomic<bool>& stopping_;
  std::atomic<int> long_polls_waiting_{0};  // bounded by kLongPollsWaitingMax
  const std::function<std::optional<LeaderHttp>()> leader_http_;
};

}  // namespace chorus::http
