// PersistentSubscriptions: the leader service that runs persistent-subscription groups. At start
// it loads `$persistentSubscriptionConfig` and each group's checkpoint (PROTOCOL.md G4), then
// feeds each group's PersistentCore with history read in readBatchSize pages and with committed
// records, and carries out what the cores ask: deliveries to consumers, checkpoint and park
// writes (through the write path, replicated like any write). On any role change it stops and
// drops every consumer; the next leader starts again from the checkpoints.
// Threading: everything runs on the engine's core thread; the PersistentApi methods post there.
#pragma once

#include "worker/services/leader_services.hpp"
#include "worker/subscriptions/persistent_api.hpp"
#include "worker/subscriptions/persistent_core.hpp"

#include <atomic>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace chorus {

// Limits of the service (one place, with their reasons).
// Groups per node: each holds buffers in memory and its config is rewritten in one event.
inline constexpr size_t kPersistentGroupsMax = 1'000;
// Consumers across all groups of the node (each holds in-flight messages).
inline constexpr size_t kPersistentConsumersTotalMax = 10'000;
// Parked messages one replayParked call reads back (the rest wait for the next call).
inline constexpr int32_t kReplayParkedMax = 10'000;
// Requests that wait while the service loads its groups after becoming leader.
inline constexpr size_t kPersistentWaitingMax = 10'000;
// The service's clock: message timeouts and checkpoints are checked this often (only while a
// group exists: a leader without groups does not wake for them).
inline constexpr int kPersistentTickMs = 100;

inline constexpr const char* kPersistentConfigStream = "$persistentSubscriptionConfig";
std::string persistent_key(const std::string& stream, const std::string& group);
std::string checkpoint_stream(const std::string& stream, const std::string& group);
std::string parked_stream(const std::string& stream, const std::string& group);

class PersistentSubscriptions final : public LeaderService, public PersistentApi {
 public:
  using Post = std::function<void(std::function<void()>)>;
  using NowMs = std::function<int64_t()>;
  PersistentSubscriptions(Post post, NowMs now_ms);

  std::string name() const override { return "persistent subscriptions"; }
  void start(LeaderContext& context) override;
  void stop() override;
  void on_record_committed(const EventRecord& record) override;

  void create(Principal who, std::string stream, std::string group, PersistentSettings settings,
              std::function<void(PersistentResult)> done) override;
  void update(Principal who, std::string stream, std::string group, PersistentSettings settings,
              std::function<void(PersistentResult)> done) override;
  void remove(Principal who, std::string stream, std::string group,
              std::function<void(PersistentResult)> done) override;
  uint64_t connect(Principal who, std::string stream, std::string group, int32_t allowed_in_flight,
                   std::string from, PersistentCallbacks callbacks) override;
  void ack(uint64_t consumer, std::vector<Guid> ids) override;
  void nak(uint64_t consumer, std::vector<Guid> ids, NakAction action, std::string reason) override;
  void disconnect(uint64_t consumer, bool notify) override;
  void pull(Principal who, std::string stream, std::string group, int32_t count,
            std::function<void(PersistentPullResult)> done) override;
  void ack_ids(Principal who, std::string stream, std::string group, std::vector<Guid> ids,
               std::optional<NakAction> nak, std::function<void(PersistentResult)> done) override;
  void replay_parked(Principal who, std::string stream, std::string group,
                     std::function<void(PersistentResult)> done) override;
  void list(Principal who, std::string stream,
            std::function<void(PersistentListResult)> done) override;
  void info(Principal who, std::string stream, std::string group,
            std::function<void(PersistentInfoResult)> done) override;

 private:
  struct Group {
    std::string stream;
    std::string group;
    PersistentSettings settings;
    std::unique_ptr<PersistentCore> core;
    int64_t parked_count = 0;
    int64_t oldest_parked_ms = 0;  // 0: none known
    int64_t taken_total = 0;       // events taken from the stream
    // Rates over the last measurement window.
    int64_t window_start_ms = 0;
    int64_t window_taken = 0, window_processed = 0;
    double rate_in = 0, rate_out = 0;
    bool replaying = false;
  };
  struct Consumer {
    std::string key;
    Principal who;
    std::string from;
    PersistentCallbacks callbacks;
  };

  // Runs `work` on the core thread once the groups are loaded; NotLeader otherwise.
  void when_ready(std::function<void()> work, std::function<void()> refuse);
  bool allowed_to_manage(const Principal& who) const;
  void load_config();
  void on_config_loaded(const std::string& json);
  void load_group(const std::string& key);
  void finish_loading();
  // `loaded`: read back after a leader change or restart (counts possible redeliveries).
  void start_group(Group& g, std::optional<int64_t> checkpoint, bool loaded = false);
  void write_config(std::function<void(bool ok, std::string error)> done);
  void ensure_metadata(const std::string& stream, const std::string& json);
  void drop_group(const std::string& key, DropReason reason);
  void process(Group& g);
  void do_read(Group& g, const persistent::Read& r);
  void do_park(Group& g, const persistent::Park& p);
  void do_checkpoint(Group& g, int64_t number);
  void tick();
  void arm_tick();  // the next tick, unless one is already due
  void measure(Group& g, int64_t now);
  // `detail`: with each consumer's extraStatistics (for /info; lists and metrics skip them).
  PersistentGroupInfo describe(const Group& g, int64_t now, bool detail) const;
  void do_replay(Group& g, std::function<void(PersistentResult)> done);
  std::optional<PersistentMessage> to_message(const ResolvedEvent& e) const;
  bool alive(const std::shared_ptr<std::atomic<bool>>& token) const { return token && *token; }

  Post post_;
  NowMs now_ms_;
  LeaderContext* context_ = nullptr;
  std::shared_ptr<std::atomic<bool>> running_;  // shared with callbacks in flight
  bool loaded_ = false;
  bool tick_armed_ = false;
  size_t loads_pending_ = 0;
  std::deque<std::function<void()>> waiting_;
  std::map<std::string, Group> groups_;  // by "<stream>::<group>"
  std::unordered_map<uint64_t, Consumer> consumers_;
  std::atomic<uint64_t> next_consumer_{1};
};

}  // namespace chorus
