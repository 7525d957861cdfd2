// Gossip runtime: timing, seed resolution and the HTTP exchange.
#include "worker/cluster/gossip_service.hpp"

#include "common/thread_name.hpp"
#include "common/tls.hpp"

#include <Poco/Net/DNS.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/IPAddress.h>
#include <Poco/Net/NetException.h>
#include <Poco/StreamCopier.h>

#include <chrono>
#include <future>
#include <iostream>
#include <sstream>
#include <thread>
#include <utility>

namespace chorus::cluster {
namespace {

// Announcements start at most this often: a node whose state flaps must not turn gossip into a
// flood (each one POSTs to every member).
constexpr auto kAnnounceGap = std::chrono::milliseconds(20);
// How early a regular round may run on a wake-up of the core thread (WakeCoalescer), at most half
// an interval: more than one heartbeat interval at the default election timeout (100 ms), so
// that nearly every round finds one, and a fifth of the default gossip interval.
constexpr int kRoundEarlyMaxMs = 200;
// Members one announcement contacts at once (a thread each), so that a dead member does not
// hold up the others for its timeout while a large cluster does not start hundreds of threads.
constexpr size_t kAnnounceParallelMax = 16;
// Connections the rounds keep open (to database nodes), each holding a request thread of the
// member it goes to (kThreadsMax per server): enough for a five-node cluster's peers.
constexpr size_t kKeptConnectionsMax = 4;

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::unique_ptr<Poco::Net::HTTPClientSession> session_for(const std::string& key, int timeout_ms,
                                                          const Poco::Net::Context::Ptr& tls) {
  const auto colon = key.rfind(':');
  if (colon == std::string::npos) return nullptr;
  try {
    return tls::make_http_session(key.substr(0, colon),
                                  static_cast<uint16_t>(std::stoi(key.substr(colon + 1))), tls,
                                  timeout_ms);
  } catch (const std::exception&) {
    return nullptr;
  }
}

// How one exchange on a session ended, beside its answer.
struct Exchanged {
  GossipAnswer answer;
  bool keep = false;       // the connection may carry the next exchange
  bool retryable = false;  // failed on the connection (not a timeout): try a new one
};

// POSTs our view (whole, or an unchanged push) to http(s)://<key>/gossip on `session`, signed
// when there is a secret; the answer is the peer's view or "unchanged" (kFailed when it fails, or
// is not signed for this request).
Exchanged exchange_on(Poco::Net::HTTPClientSession& session, const std::string& key,
                      const std::string& body, const auth::Secret& secret) {
  using Kind = GossipAnswer::Kind;
  Exchanged out;
  GossipAnswer& answer = out.answer;
  try {
    Poco::Net::HTTPRequest request(Poco::Net::HTTPRequest::HTTP_POST, "/gossip",
                                   Poco::Net::HTTPMessage::HTTP_1_1);
    request.setContentType(is_unchanged_gossip(body) ? "text/plain" : "application/json");
    request.setContentLength(static_cast<std::streamsize>(body.size()));
    std::string signature;
    if (!secret.empty()) {
      signature = auth::sign_request(secret, "POST", "/gossip", body, auth::now_unix_ms());
      request.set(auth::kAuthHeader, signature);
    }
    session.sendRequest(request) << body;
    Poco::Net::HTTPResponse response;
    std::istream& in = session.receiveResponse(response);
    std::string text;
    Poco::StreamCopier::copyToString(in, text);
    out.keep = response.getKeepAlive();
    // Asks for nothing but our whole view, which we may always send: taken unsigned.
    if (response.getStatus() == kGossipWholeViewStatus) {
      answer.kind = Kind::kWantsWhole;
      return out;
    }
    if (response.getStatus() != Poco::Net::HTTPResponse::HTTP_OK) {
      if (response.getStatus() == Poco::Net::HTTPResponse::HTTP_UNAUTHORIZED) {
        std::cerr << "chorus-worker: gossip to " << key << " refused: " << text << std::endl;
      }
      return out;
    }
    if (!secret.empty() &&
        !auth::verify_answer(secret, signature, 200, text, response.get(auth::kAuthHeader, ""))) {
      std::cerr << "chorus-worker: gossip answer from " << key
                << " ignored: not signed with the cluster secret" << std::endl;
      return out;
    }
    if (is_unchanged_gossip(text)) {
      const auto unchanged = unchanged_answer_from_text(text, nullptr);
      if (!unchanged) return out;
      answer.unchanged = *unchanged;
      answer.kind = Kind::kUnchanged;
      return out;
    }
    auto view = cluster_info_from_json(text, nullptr);
    if (!view) return out;
    answer.view = std::move(*view);
    answer.kind = Kind::kWholeView;
  } catch (const Poco::TimeoutException&) {
    out.keep = false;  // a silent peer: no second wait
  } catch (const std::exception&) {
    out.keep = false;
    out.retryable = true;
  }
  return out;
}

// One exchange on a connection of its own (announcements, each on its own thread).
GossipAnswer exchange(const std::string& key, const std::string& body, int timeout_ms,
                      const auth::Secret& secret, const Poco::Net::Context::Ptr& tls) {
  const auto session = session_for(key, timeout_ms, tls);
  if (!session) return GossipAnswer{};
  return exchange_on(*session, key, body, secret).answer;
}

}  // namespace

GossipService::GossipService(GossipConfig config, std::function<MemberInfo()> self,
                             std::function<void(NodeIdentities)> on_peers)
    : config_(std::move(config)),
      self_(std::move(self)),
      on_peers_(std::move(on_peers)),
      membership_(config_.cluster_name, config_.times),
      rng_(std::random_device{}()) {}

GossipService::~GossipService() { stop(); }

void GossipService::start() {
  {
    std::lock_guard lock(mutex_);
    const int64_t now = now_ms();
    membership_.set_self(self_());
    for (const auto& [ip, port] : config_.seeds) membership_.add_seed(ip, port, now);
  }
  thread_ = std::thread([this] {
    set_thread_name("gossip");
    run();
  });
}

void GossipService::start_with_self(std::function<MemberInfo()> self) {
  self_ = std::move(self);
  start();
}

void GossipService::stop() {
  {
    std::lock_guard lock(wake_mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void GossipService::announce() {
  {
    std::lock_guard lock(wake_mutex_);
    announce_ = true;
  }
  wake_.notify_all();
}

// A regular round runs when due, or up to kRoundEarlyMaxMs before on a wake-up of the core thread
// (config_.coalescer, which the core thread carries: issue 16); the next one is due an interval
// after this one was, so rounds keep their rate and are never later than their schedule.
void GossipService::run() {
  using Clock = std::chrono::steady_clock;
  auto next_round = Clock::now();
  auto last_announce = Clock::time_point{};
  const int chore = config_.coalescer ? config_.coalescer->add([this] {
    {
      std::lock_guard lock(wake_mutex_);
      carried_ = true;
    }
    wake_.notify_all();
  })
                                      : -1;
  while (!stopping_) {
    bool announce = false;
    const auto earliest =
        next_round - std::chrono::milliseconds(std::min(kRoundEarlyMaxMs, round_interval_ms() / 2));
    if (config_.coalescer) config_.coalescer->open_window(chore, earliest);
    {
      std::unique_lock lock(wake_mutex_);
      // A carried wake is taken only inside the window (one that came late for the previous
      // round does not start this one early).
      wake_.wait_until(lock, next_round, [&] {
        return stopping_.load() || announce_ || (carried_ && Clock::now() >= earliest);
      });
      carried_ = false;
      if (stopping_) break;
      announce = std::exchange(announce_, false);
    }
    if (config_.coalescer) config_.coalescer->close_window(chore);
    if (announce) {
      std::this_thread::sleep_until(last_announce + kAnnounceGap);
      last_announce = Clock::now();
      push_to_all();
      continue;  // the regular round stays on its own schedule
    }
    round();
    const auto wait = std::chrono::milliseconds(round_interval_ms());
    const auto now = Clock::now();
    next_round += wait;
    if (next_round < now) next_round = now + wait;  // fell behind (a slow exchange): no burst
  }
  if (config_.coalescer) config_.coalescer->remove(chore);
}

int GossipService::round_interval_ms() const {
  return rounds_ < config_.fast_rounds ? config_.fast_interval_ms : config_.interval_ms;
}

void GossipService::resolve_seeds(int64_t now) {
  if (!config_.discover_via_dns || config_.cluster_dns.empty()) return;
  if (rounds_ % config_.dns_refresh_rounds != 0) return;
  try {
    const auto host = Poco::Net::DNS::hostByName(config_.cluster_dns);
    std::lock_guard lock(mutex_);
    for (const auto& address : host.addresses()) {
      if (address.family() != Poco::Net::IPAddress::IPv4) continue;
      membership_.add_seed(address.toString(), config_.cluster_gossip_port, now);
    }
  } catch (const std::exception& e) {
    // An unresolvable name leaves this node alone: it cannot lead without a majority.
    if (rounds_ == 0) {
      std::cerr << "chorus-worker: cannot resolve cluster DNS name " << config_.cluster_dns << ": "
                << e.what() << std::endl;
    }
  }
}

void GossipService::round() {
  const int64_t now = now_ms();
  resolve_seeds(now);
  std::string target;
  ClusterInfo view;
  std::optional<std::string> unchanged;  // the unchanged push, when the target holds our view
  uint64_t digest = 0;
  bool keep = false;  // the connection stays open for the next round to the target
  {
    std::lock_guard lock(mutex_);
    const MemberInfo me = self_();
    membership_.set_self(me);
    membership_.expire(now);
    const auto targets = membership_.gossip_targets();
    if (!targets.empty()) {
      std::uniform_int_distribution<size_t> pick(0, targets.size() - 1);
      target = targets[pick(rng_)];
      view = membership_.view();
      digest = gossip_digest(view);
      for (const MemberInfo& m : view.members) {
        if (member_key(m) == target) keep = !is_manager_or_seed(m);
      }
      const auto push =
          digests_.unchanged_push(target, view.cluster_name, member_key(me), digest, me.time_stamp);
      if (push) unchanged = to_text(*push);
    }
  }
  ++rounds_;
  if (target.empty()) return;
  auto answer = exchange_kept(target, unchanged ? *unchanged : to_json(view), keep);
  if (answer.kind == GossipAnswer::Kind::kWantsWhole && unchanged) {
    answer = exchange_kept(target, to_json(view), keep);
  }
  {
    std::lock_guard lock(mutex_);
    settle(target, answer, digest, now_ms());
  }
  notify_peers();
}

// A round's exchange on the connection kept to `target` from earlier rounds (a new connection per
// round cost the target an accept and a request thread's start every second). A kept connection
// that the target closed meanwhile (its keep-alive limits, a restart) fails at once: the exchange
// is tried once more on a new one, so that this is not taken for a dead member; a timeout is not
// retried, so a silent member still fails within the timeout. Kept only to database nodes, at
// most kKeptConnectionsMax: a kept connection holds one of the target's request threads, and a
// manager serves the gossip of all its nodes with a few (kManagerInternalThreadsMax).
GossipAnswer GossipService::exchange_kept(const std::string& target, const std::string& body,
                                          bool keep) {
  if (!keep || (sessions_.size() >= kKeptConnectionsMax && !sessions_.contains(target))) {
    sessions_.erase(target);
    return exchange(target, body, config_.timeout_ms, config_.secret, config_.tls);
  }
  auto& session = sessions_[target];
  const bool reused = session != nullptr;
  const auto open = [&] {
    session = session_for(target, config_.timeout_ms, config_.tls);
    if (session) session->setKeepAlive(true);
    return session != nullptr;
  };
  if (!session && !open()) return GossipAnswer{};
  Exchanged done = exchange_on(*session, target, body, config_.secret);
  if (!done.keep) session.reset();
  if (done.retryable && reused) {
    if (!open()) return GossipAnswer{};
    done = exchange_on(*session, target, body, config_.secret);
    if (!done.keep) session.reset();
  }
  return done.answer;
}

void GossipService::settle(const std::string& target, const GossipAnswer& answer, uint64_t sent,
                           int64_t now) {
  using Kind = GossipAnswer::Kind;
  if (answer.kind == Kind::kWholeView && membership_.merge(answer.view, target, now)) {
    digests_.exchanged(target, sent, gossip_digest(answer.view));
    return;
  }
  if (answer.kind == Kind::kUnchanged) {
    // The target answered, so it is alive; an answer that does not match the view we hold (or a
    // target we hold no entry of) only means the next push is whole.
    const bool current = digests_.answered(target, answer.unchanged.view_digest) &&
                         membership_.heard_from(target, answer.unchanged.time_stamp, now);
    if (!current) digests_.forget(target);
    return;
  }
  digests_.forget(target);
  membership_.contact_failed(target, now);
}

// Our view to every member, each exchange on its own thread: the member that just died (the old
// leader) answers nothing until its timeout, and must not delay the news to the others. Always
// the whole view: an announcement is news.
void GossipService::push_to_all() {
  std::vector<std::string> targets;
  std::string body;
  uint64_t digest = 0;
  {
    std::lock_guard lock(mutex_);
    membership_.set_self(self_());
    targets = membership_.gossip_targets();
    const ClusterInfo view = membership_.view();
    digest = gossip_digest(view);
    body = to_json(view);
  }
  for (size_t first = 0; first < targets.size(); first += kAnnounceParallelMax) {
    const size_t last = std::min(targets.size(), first + kAnnounceParallelMax);
    std::vector<std::future<GossipAnswer>> answers;
    for (size_t i = first; i < last; ++i) {
      answers.push_back(std::async(std::launch::async | std::launch::deferred, exchange,
                                   std::cref(targets[i]), std::cref(body), config_.timeout_ms,
                                   std::cref(config_.secret), std::cref(config_.tls)));
    }
    for (size_t i = first; i < last; ++i) {
      const auto answer = answers[i - first].get();
      std::lock_guard lock(mutex_);
      settle(targets[i], answer, digest, now_ms());
    }
  }
  notify_peers();
}

void GossipService::notify_peers() {
  NodeIdentities peers;
  {
    std::lock_guard lock(mutex_);
    peers = membership_.live_node_identities();
  }
  std::sort(peers.begin(), peers.end());
  if (peers == last_peers_) return;
  last_peers_ = peers;
  on_peers_(peers);
}

std::optional<ClusterInfo> GossipService::handle_push(const ClusterInfo& view, std::string* error) {
  std::optional<ClusterInfo> answer;
  {
    std::lock_guard lock(mutex_);
    const std::string peer = view.server_ip + ":" + std::to_string(view.server_port);
    const int64_t now = now_ms();
    membership_.set_self(self_());
    if (!membership_.merge(view, peer, now)) {
      if (error)
        *error = "gossip from cluster '" + view.cluster_name + "', this is '" +
                 membership_.cluster_name() + "'";
      return std::nullopt;
    }
    digests_.took(peer, gossip_digest(view));
    answer = membership_.view();
  }
  notify_peers();
  return answer;
}

UnchangedReply GossipService::handle_unchanged(const UnchangedPush& push) {
  UnchangedReply reply;
  {
    std::lock_guard lock(mutex_);
    if (!push.cluster_name.empty() && push.cluster_name != membership_.cluster_name()) {
      reply.kind = UnchangedReply::Kind::kRefused;
      reply.error = "gossip from cluster '" + push.cluster_name + "', this is '" +
                    membership_.cluster_name() + "'";
      return reply;
    }
    if (!digests_.holds(push.sender, push.view_digest) ||
        !membership_.heard_from(push.sender, push.time_stamp, now_ms())) {
      return reply;  // kWantsWhole
    }
    const MemberInfo me = self_();
    membership_.set_self(me);
    reply.view = membership_.view();
    const uint64_t digest = gossip_digest(reply.view);
    if (digest == push.known_digest) {
      reply.kind = UnchangedReply::Kind::kUnchanged;
      reply.unchanged = UnchangedAnswer{digest, me.time_stamp};
      reply.view = {};
    } else {
      reply.kind = UnchangedReply::Kind::kWholeView;
    }
  }
  notify_peers();
  return reply;
}

ClusterInfo GossipService::view() {
  std::lock_guard lock(mutex_);
  membership_.set_self(self_());
  return membership_.view();
}

std::optional<MemberInfo> GossipService::member_by_instance_id(const std::string& instance_id) {
  std::lock_guard lock(mutex_);
  return membership_.by_instance_id(instance_id);
}

}  // namespace chorus::cluster
