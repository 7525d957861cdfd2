// LeaderServices: the things that run only while this node leads (user bootstrap, persistent
// subscriptions, system projections; user projections and scavenging next). Each is started
// when the node becomes leader with its epoch committed and stopped on any role change, so no
// two nodes run one at once for long, and a new leader starts from what is committed in the log.
// Threading: start_all/stop_all and the services' start/stop run on the engine's core thread;
// a service that needs its own thread owns it and joins it in stop().
#pragma once

#include "worker/engine/acl.hpp"
#include "worker/engine/types.hpp"

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace chorus {

// What a leader service may do with the node (a narrow slice of the engine, core thread only).
struct LeaderContext {
  // Appends as `who` without an ACL check (the node's own writes).
  std::function<void(const Principal& who, const std::string& stream, int64_t expected,
                     std::vector<NewEvent> events, std::function<void(WriteResult)> done)>
      append;
  // The last event number of a stream in the local log (-1 when it has none).
  std::function<int64_t(const std::string& stream)> last_number;
  // Deletes as `who` without an ACL check.
  std::function<void(const Principal& who, const std::string& stream, int64_t expected, bool hard,
                     std::function<void(DeleteResult)> done)>
      delete_stream;
  // Reads committed events with every right (on a reader thread); `done` runs on the core thread.
  std::function<void(const std::string& stream, int64_t from, int32_t count, bool forward,
                     bool resolve_links, std::function<void(ReadStreamResult)> done)>
      read_stream;
  // Reads committed records of $all forward from `from` with every right (on a reader thread);
  // `done` runs on the core thread.
  std::function<void(Position from, int32_t count, bool resolve_links,
                     std::function<void(ReadAllResult)> done)>
      read_all;
  // EventStore's ACL check for `who` (settings and stream metadata as this node knows them).
  std::function<bool(const std::string& stream, StreamAccess access, const Principal& who)>
      can_access;
  // Runs `work` on the core thread after `delay_ms`.
  std::function<void(int delay_ms, std::function<void()> work)> after;
  // The position of the last committed record (for confirmations).
  std::function<int64_t()> commit_position;
};

class LeaderService {
 public:
  virtual ~LeaderService() = default;
  virtual std::string name() const = 0;
  virtual void start(LeaderContext& context) = 0;
  // Stops at once; work in flight may still answer later and must then do nothing.
  virtual void stop() = 0;
  // A record became visible (committed), in log order; only called while started.
  virtual void on_record_committed(const EventRecord& record) { (void)record; }
};

class LeaderServices {
 public:
  explicit LeaderServices(LeaderContext context) : context_(std::move(context)) {}
  void add(std::unique_ptr<LeaderService> service) { services_.push_back(std::move(service)); }
  void start_all();
  void stop_all();
  void on_record_committed(const EventRecord& record);
  bool running() const { return running_; }

 private:
  LeaderContext context_;
  std::vector<std::unique_ptr<LeaderService>> services_;
  bool running_ = false;
};

}  // namespace chorus
