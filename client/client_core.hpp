// ClientCore: the state machine behind Client. It owns the OperationTable, the current Connection
// and the live subscriptions, and moves between Idle, Discovering, Connecting, Connected and
// Closed: discovery runs on a thread of its own (blocking HTTP) and posts its answer back;
// NotHandled(NotLeader) reconnects to the named leader; a lost connection resends in-flight
// operations on the next one, after reconnection_delay_ms, until max_reconnections attempts in a
// row failed. Everything but the constructor and join_discovery() runs on the strand.
#pragma once

#include <chorus/client.hpp>

#include <atomic>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "client/connection.hpp"
#include "client/discovery.hpp"
#include "client/operation_table.hpp"
#include "common/gossip.hpp"

namespace chorus::client {

class ClientCore : public std::enable_shared_from_this<ClientCore> {
 public:
  ClientCore(const asio::any_io_executor& executor, Settings settings);
  ~ClientCore();

  // Thread-safe entry points: each posts to the strand.
  void submit(std::unique_ptr<Operation> op);
  void connect(Handler<Endpoint> done);
  void unsubscribe(uint64_t subscription_id);
  void close(const std::string& reason);
  uint64_t next_subscription_id() { return next_subscription_id_.fetch_add(1); }
  // Settings never change after construction, so this is safe from any thread.
  bool require_leader() const { return settings_.require_leader; }
  // Waits for the discovery thread (call after close, off the strand).
  void join_discovery();

 private:
  enum class State { Idle, Discovering, Connecting, Connected, Reconnecting, Closed };

  void do_submit(std::unique_ptr<Operation> op);
  void ensure_started();
  void establish();
  void start_discovery();
  void on_discovered(DiscoveryResult result);
  void connect_to(const Endpoint& endpoint);
  void on_ready(const std::shared_ptr<Connection>& connection);
  void on_package(const std::shared_ptr<Connection>& connection, wire::Package&& package);
  void on_connection_closed(const std::shared_ptr<Connection>& connection,
                            const std::string& reason, bool refused_credentials);
  void apply(const Decision& decision, const Guid& correlation_id);
  void reconnect_to(const Endpoint& leader);
  void connection_lost(const std::string& reason);
  void send_waiting();
  void arm_tick();
  void on_tick();
  void fail_exhausted(std::vector<std::unique_ptr<Operation>> ops);
  void do_close(const Error& error);
  void log(const std::string& line) const;
  int64_t now_ms() const;

  Strand strand_;
  Settings settings_;
  OperationTable table_;
  State state_ = State::Idle;
  std::shared_ptr<Connection> connection_;
  std::optional<Endpoint> attempted_endpoint_;
  std::optional<Endpoint> leader_hint_;  // from NotHandled(NotLeader): next connection goes there
  std::optional<ClusterInfo> last_gossip_;
  std::optional<Endpoint> failed_endpoint_;
  int reconnections_ = 0;
  asio::steady_timer tick_timer_;
  asio::steady_timer reconnect_timer_;
  std::map<Guid, std::unique_ptr<Operation>> subscriptions_;  // confirmed, by correlation id
  std::vector<Handler<Endpoint>> connect_waiters_;
  std::thread discovery_thread_;
  std::atomic<bool> cancel_discovery_{false};
  std::atomic<uint64_t> next_subscription_id_{1};
};

}  // namespace chorus::client
