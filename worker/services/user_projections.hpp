// UserProjections: the leader service that runs user projections in transient mode (EventStore's
// transient projections: held in the leader's memory only, gone when it stops leading). Each
// reads $all from the start in pages and feeds its Projection on the projection threads
// (--projection-threads); one page per projection is in flight, so a Projection is used by one
// thread at a time (its mutex also serialises state and result queries). Transient projections
// may not emit: a query that calls emit() or linkTo() faults, as EventStore's does.
// Threading: the public methods and the LeaderService hooks run on the engine's core thread;
// JavaScript runs on the service's own pool, which it joins when destroyed.
#pragma once

#include "worker/projections/projection.hpp"
#include "worker/projections/status.hpp"
#include "worker/services/leader_services.hpp"

#include <boost/asio/thread_pool.hpp>

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace chorus {

// Limits of the service (one place, with their reasons).
// Projections per leader: each holds a JavaScript heap of up to kJsHeapBytesDefault.
inline constexpr size_t kUserProjectionsMax = 32;
// Records of $all per page fed to one projection: bounds one page's time on a projection
// thread (and so how long a state query may wait for it).
inline constexpr int32_t kUserPageRecords = 200;
// A projection's name: a stream name part, not a document.
inline constexpr size_t kProjectionNameBytesMax = 200;
// A caught-up projection looks at $all at least this often.
inline constexpr int kUserPollMs = 500;

class UserProjections final : public LeaderService {
 public:
  using Post = std::function<void(std::function<void()>)>;
  // `post_to_core` runs work on the engine's core thread.
  UserProjections(int threads, Post post_to_core);
  ~UserProjections() override;

  std::string name() const override { return "user projections"; }
  void start(LeaderContext& context) override;
  void stop() override;
  void on_record_committed(const EventRecord& record) override;

  // Core thread. `done` runs on the core thread.
  void create_transient(const Principal& who, const std::string& name, const std::string& query,
                        std::function<void(projections::ProjectionReply)> done);
  void remove(const Principal& who, const std::string& name,
              std::function<void(projections::ProjectionReply)> done);
  // The state (or the result) of `partition` ("" the root) as JSON, "" when there is none.
  void state(const std::string& name, const std::string& partition, bool result,
             std::function<void(projections::ProjectionReply)> done);
  void query(const std::string& name, std::function<void(projections::ProjectionReply)> done);
  std::vector<projections::ProjectionStatus> describe() const;
  bool running() const { return running_ && *running_; }

 private:
  struct Entry {
    std::string name;
    std::string query;
    std::shared_ptr<projections::Projection> projection;  // used under `mutex` only
    std::shared_ptr<std::mutex> mutex = std::make_shared<std::mutex>();
    Position cursor = Position::start();
    bool busy = false;
    bool removed = false;
    bool wake = false;
    std::string fault;
    int64_t processed = 0;
  };

  void pump(const std::shared_ptr<Entry>& entry);
  void on_page(const std::shared_ptr<Entry>& entry, ReadAllResult page);
  void poll();

  boost::asio::thread_pool pool_;
  Post post_;
  LeaderContext* context_ = nullptr;
  std::shared_ptr<std::atomic<bool>> running_;
  std::map<std::string, std::shared_ptr<Entry>> entries_;
};

}  // namespace chorus
