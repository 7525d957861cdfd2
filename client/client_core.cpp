// ClientCore: connection lifecycle, reply routing and retries (see client_core.hpp).
#include "client/client_core.hpp"

#include <utility>

#include "messages.pb.h"

namespace chorus::client {

using Clock = std::chrono::steady_clock;

ClientCore::ClientCore(const asio::any_io_executor& executor, Settings settings)
    : strand_(asio::make_strand(executor)),
      settings_(std::move(settings)),
      table_(TableLimits{settings_.max_queue_size, settings_.max_concurrent_items,
                         settings_.max_retries, settings_.operation_timeout_ms}),
      tick_timer_(strand_),
      reconnect_timer_(strand_) {}

ClientCore::~ClientCore() {
  cancel_discovery_.store(true);
  if (discovery_thread_.joinable()) {
    // The last owner may be the discovery thread's own posted handler; never join oneself.
    if (discovery_thread_.get_id() == std::this_thread::get_id()) {
      discovery_thread_.detach();
    } else {
      discovery_thread_.join();
    }
  }
}

void ClientCore::join_discovery() {
  cancel_discovery_.store(true);
  if (discovery_thread_.joinable() && discovery_thread_.get_id() != std::this_thread::get_id()) {
    discovery_thread_.join();
  }
}

int64_t ClientCore::now_ms() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now().time_since_epoch())
      .count();
}

void ClientCore::log(const std::string& line) const {
  if (settings_.log) settings_.log(line);
}

void ClientCore::submit(std::unique_ptr<Operation> op) {
  // std::function needs a copyable callable: carry the operation in a shared_ptr.
  auto holder = std::make_shared<std::unique_ptr<Operation>>(std::move(op));
  asio::post(strand_, [self = shared_from_this(), holder] { self->do_submit(std::move(*holder)); });
}

void ClientCore::connect(Handler<Endpoint> done) {
  asio::post(strand_, [self = shared_from_this(), done = std::move(done)]() mutable {
    if (self->state_ == State::Closed) {
      return done(Error{ErrorKind::ConnectionClosed, "the client is closed", {}});
    }
    if (self->state_ == State::Connected && self->connection_) {
      return done(self->connection_->endpoint());
    }
    self->connect_waiters_.push_back(std::move(done));
    self->ensure_started();
  });
}

void ClientCore::unsubscribe(uint64_t subscription_id) {
  asio::post(strand_, [self = shared_from_this(), subscription_id] {
    for (auto& [id, op] : self->subscriptions_) {
      if (op->subscription_id() != subscription_id) continue;
      // The server answers SubscriptionDropped(Unsubscribed), which ends it.
      if (self->connection_) self->connection_->send(wire::Command::UnsubscribeFromStream, id, "");
      return;
    }
    auto pending = self->table_.take_if(
        [&](const Operation& op) { return op.subscription_id() == subscription_id; });
    if (!pending) return;
    if (pending->sent_ms >= 0 && self->connection_) {
      self->connection_->send(wire::Command::UnsubscribeFromStream, pending->correlation_id, "");
    }
    static_cast<SubscriptionOperation&>(*pending).drop(DropReason::Unsubscribed, "");
  });
}

void ClientCore::close(const std::string& reason) {
  cancel_discovery_.store(true);
  asio::post(strand_, [self = shared_from_this(), reason] {
    self->do_close(Error{ErrorKind::ConnectionClosed, reason, {}});
  });
}

void ClientCore::do_submit(std::unique_ptr<Operation> op) {
  if (state_ == State::Closed) {
    return op->fail(Error{ErrorKind::ConnectionClosed, "the client is closed", {}});
  }
  if (std::unique_ptr<Operation> refused = table_.enqueue(std::move(op))) {
    return refused->fail(
        Error{ErrorKind::QueueFull,
              "more than " + std::to_string(settings_.max_queue_size) + " operations are waiting",
              {}});
  }
  ensure_started();
  if (state_ == State::Connected) send_waiting();
}

void ClientCore::ensure_started() {
  if (state_ != State::Idle) return;
  arm_tick();
  establish();
}

void ClientCore::establish() {
  if (state_ == State::Closed) return;
  if (leader_hint_) {
    const Endpoint leader = *leader_hint_;
    leader_hint_.reset();
    return connect_to(leader);
  }
  if (settings_.tcp_endpoint) return connect_to(*settings_.tcp_endpoint);
  start_discovery();
}

void ClientCore::start_discovery() {
  state_ = State::Discovering;
  if (discovery_thread_.joinable()) discovery_thread_.join();  // it has posted its answer
  std::weak_ptr<ClientCore> weak = shared_from_this();
  discovery_thread_ =
      std::thread([weak, strand = strand_, settings = settings_, gossip = last_gossip_,
                   failed = failed_endpoint_, &cancel = cancel_discovery_] {
        DiscoveryResult result = discover(settings, gossip, failed, cancel);
        asio::post(strand, [weak, result = std::move(result)]() mutable {
          if (auto self = weak.lock()) self->on_discovered(std::move(result));
        });
      });
}

void ClientCore::on_discovered(DiscoveryResult result) {
  if (state_ != State::Discovering) return;
  if (!result.node) {
    return do_close(Error{ErrorKind::ConnectionClosed,
                          "Failed to discover a node of the cluster: " + result.error,
                          {}});
  }
  last_gossip_ = std::move(result.gossip);
  log("discovery picked " + to_string(*result.node));
  connect_to(*result.node);
}

void ClientCore::connect_to(const Endpoint& endpoint) {
  state_ = State::Connecting;
  attempted_endpoint_ = endpoint;
  auto connection = std::make_shared<Connection>(strand_, settings_, endpoint);
  connection_ = connection;
  std::weak_ptr<ClientCore> weak = shared_from_this();
  std::weak_ptr<Connection> weak_connection = connection;
  connection->start(
      Connection::Handlers{[weak, weak_connection] {
                             auto self = weak.lock();
                             auto c = weak_connection.lock();
                             if (self && c) self->on_ready(c);
                           },
                           [weak, weak_connection](wire::Package&& package) {
                             auto self = weak.lock();
                             auto c = weak_connection.lock();
                             if (self && c) self->on_package(c, std::move(package));
                           },
                           [weak, weak_connection](const std::string& reason, bool refused) {
                             auto self = weak.lock();
                             auto c = weak_connection.lock();
                             if (self && c) self->on_connection_closed(c, reason, refused);
                           }});
}

void ClientCore::on_ready(const std::shared_ptr<Connection>& connection) {
  if (connection != connection_ || state_ == State::Closed) return;
  state_ = State::Connected;
  reconnections_ = 0;
  failed_endpoint_.reset();
  log("connected to " + to_string(connection->endpoint()));
  auto waiters = std::move(connect_waiters_);
  connect_waiters_.clear();
  for (auto& done : waiters) done(connection->endpoint());
  send_waiting();
}

void ClientCore::on_package(const std::shared_ptr<Connection>& connection,
                            wire::Package&& package) {
  if (connection != connection_) return;
  auto live = subscriptions_.find(package.correlation_id);
  if (live != subscriptions_.end()) {
    auto& sub = static_cast<SubscriptionOperation&>(*live->second);
    if (sub.handle_live(package)) subscriptions_.erase(package.correlation_id);
    return;
  }
  Operation* op = table_.find(package.correlation_id);
  if (op == nullptr) return;  // a late reply to an operation already retried or finished
  const Guid correlation_id = package.correlation_id;
  apply(op->inspect(package), correlation_id);
}

void ClientCore::apply(const Decision& decision, const Guid& correlation_id) {
  switch (decision.kind) {
    case Decision::Kind::Complete:
      table_.remove(correlation_id);
      break;
    case Decision::Kind::Subscribed:
      subscriptions_.emplace(correlation_id, table_.remove(correlation_id));
      break;
    case Decision::Kind::Retry:
      if (auto op = table_.retry(correlation_id, true)) {
        op->fail(Error{ErrorKind::RetryLimitReached, "Retry limit reached", {}});
      }
      break;
    case Decision::Kind::Reconnect: {
      if (auto op = table_.retry(correlation_id, false)) {
        op->fail(Error{ErrorKind::RetryLimitReached, "Retry limit reached", {}});
      }
      const bool same = connection_ && decision.leader == connection_->endpoint();
      // A node naming itself as leader would loop; wait for the next check instead.
      if (!same) reconnect_to(decision.leader);
      break;
    }
  }
}

void ClientCore::reconnect_to(const Endpoint& leader) {
  log("not the leader; reconnecting to " + to_string(leader));
  leader_hint_ = leader;
  if (connection_) connection_->close();
  connection_.reset();
  fail_exhausted(table_.retry_all_in_flight());
  for (auto& [id, sub] : subscriptions_) {
    static_cast<SubscriptionOperation&>(*sub).drop(DropReason::ConnectionClosed,
                                                   "reconnecting to the leader");
  }
  subscriptions_.clear();
  establish();
}

void ClientCore::on_connection_closed(const std::shared_ptr<Connection>& connection,
                                      const std::string& reason, bool refused_credentials) {
  if (connection != connection_ || state_ == State::Closed) return;
  connection_.reset();
  if (refused_credentials) {
    return do_close(Error{ErrorKind::NotAuthenticated, reason, {}});
  }
  connection_lost(reason);
}

void ClientCore::connection_lost(const std::string& reason) {
  log("connection lost: " + reason);
  failed_endpoint_ = attempted_endpoint_;
  fail_exhausted(table_.retry_all_in_flight());
  for (auto& [id, sub] : subscriptions_) {
    static_cast<SubscriptionOperation&>(*sub).drop(DropReason::ConnectionClosed, reason);
  }
  subscriptions_.clear();
  ++reconnections_;
  if (settings_.max_reconnections >= 0 && reconnections_ > settings_.max_reconnections) {
    return do_close(Error{
        ErrorKind::ConnectionClosed, "Reconnection limit reached (last: " + reason + ")", {}});
  }
  state_ = State::Reconnecting;
  reconnect_timer_.expires_after(std::chrono::milliseconds(settings_.reconnection_delay_ms));
  reconnect_timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
    if (!ec && self->state_ == State::Reconnecting) self->establish();
  });
}

void ClientCore::send_waiting() {
  if (state_ != State::Connected || !connection_) return;
  for (Operation* op : table_.start_waiting(now_ms())) {
    connection_->send(op->command(), op->correlation_id, op->payload());
  }
}

void ClientCore::arm_tick() {
  tick_timer_.expires_after(std::chrono::milliseconds(settings_.operation_timeout_check_period_ms));
  tick_timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
    if (!ec && self->state_ != State::Closed) self->on_tick();
  });
}

void ClientCore::on_tick() {
  if (state_ == State::Connected) {
    fail_exhausted(table_.check_timeouts(now_ms()));
    send_waiting();
  }
  arm_tick();
}

void ClientCore::fail_exhausted(std::vector<std::unique_ptr<Operation>> ops) {
  for (auto& op : ops) op->fail(Error{ErrorKind::RetryLimitReached, "Retry limit reached", {}});
}

void ClientCore::do_close(const Error& error) {
  if (state_ == State::Closed) return;
  state_ = State::Closed;
  cancel_discovery_.store(true);
  if (!error.message.empty()) log("closed: " + error.message);
  tick_timer_.cancel();
  reconnect_timer_.cancel();
  if (connection_) connection_->close();
  connection_.reset();
  for (auto& op : table_.take_all()) op->fail(error);
  for (auto& [id, sub] : subscriptions_) sub->fail(error);
  subscriptions_.clear();
  auto waiters = std::move(connect_waiters_);
  connect_waiters_.clear();
  for (auto& done : waiters) done(error);
}

}  // namespace chorus::client
