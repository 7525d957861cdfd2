// ConnectionWatch; see connection_watch.hpp. The watcher wakes every kWatchTickMs, shuts down
// the sockets past their deadline (the kernel socket only: an SSL shutdown from this thread
// would race the connection thread's SSL calls), logs each cut and the refusals.
#include "worker/http/connection_watch.hpp"

#include "common/thread_name.hpp"
#include "worker/http/limits.hpp"

#include <sys/socket.h>

#include <cstdio>

namespace chorus::http {
namespace {

// The connection the calling (Poco connection) thread serves.
struct Current {
  ConnectionWatch* watch = nullptr;
  uint64_t id = 0;
};
thread_local Current current;

}  // namespace

ConnectionWatch::ConnectionWatch(int io_deadline_ms, std::string what)
    : io_deadline_(io_deadline_ms), what_(std::move(what)), thread_([this] { run(); }) {}

ConnectionWatch::~ConnectionWatch() {
  {
    std::lock_guard guard(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

ConnectionWatch::Scope::Scope(ConnectionWatch& watch, const Poco::Net::StreamSocket& socket)
    : watch_(watch), id_(watch.add(socket)) {
  current = {&watch_, id_};
}

ConnectionWatch::Scope::~Scope() {
  current = {};
  watch_.remove(id_);
}

void ConnectionWatch::engine_phase() {
  if (current.watch != nullptr) current.watch->set_deadline(current.id, false);
}

void ConnectionWatch::io_phase() {
  if (current.watch != nullptr) current.watch->set_deadline(current.id, true);
}

int64_t ConnectionWatch::cut() const {
  std::lock_guard guard(mutex_);
  return cut_;
}

uint64_t ConnectionWatch::add(const Poco::Net::StreamSocket& socket) {
  std::string peer = "an unknown peer";
  try {
    peer = socket.peerAddress().toString();
  } catch (const Poco::Exception&) {
    // Already reset by the peer: it is cut or ends on its first read anyway.
  }
  std::lock_guard guard(mutex_);
  const uint64_t id = next_id_++;
  entries_.emplace(id, Entry{socket, Clock::now() + io_deadline_, std::move(peer)});
  return id;
}

void ConnectionWatch::remove(uint64_t id) {
  std::lock_guard guard(mutex_);
  entries_.erase(id);
}

void ConnectionWatch::set_deadline(uint64_t id, bool watched) {
  std::lock_guard guard(mutex_);
  const auto entry = entries_.find(id);
  if (entry == entries_.end()) return;
  entry->second.deadline =
      watched ? std::optional<Clock::time_point>(Clock::now() + io_deadline_) : std::nullopt;
}

void ConnectionWatch::watch_refusals(std::function<int()> refused, int held) {
  std::lock_guard guard(mutex_);
  refused_ = std::move(refused);
  refusal_held_ = held;
}

void ConnectionWatch::log_refusals(Clock::time_point now) {
  if (!refused_) return;
  if (refusal_logged_at_ != Clock::time_point{} &&
      now - refusal_logged_at_ < std::chrono::milliseconds(kRefusalLogIntervalMs)) {
    return;
  }
  const int refused = refused_();
  if (refused == refused_logged_) return;
  std::fprintf(stderr,
               "http: refused %d connections to the %s since the last such line: %d were held "
               "(request threads plus the accept queue)\n",
               refused - refused_logged_, what_.c_str(), refusal_held_);
  refused_logged_ = refused;
  refusal_logged_at_ = now;
}

void ConnectionWatch::run() {
  set_thread_name("http-watch");
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    wake_.wait_for(lock, std::chrono::milliseconds(kWatchTickMs));
    const Clock::time_point now = Clock::now();
    for (auto& [id, entry] : entries_) {
      if (!entry.deadline || *entry.deadline > now) continue;
      entry.deadline.reset();  // cut once
      ::shutdown(entry.socket.impl()->sockfd(), SHUT_RDWR);
      ++cut_;
      std::fprintf(stderr,
                   "http: closing the connection from %s to the %s: its request or answer took "
                   "longer than %lld ms to transfer (kHttpIoDeadlineMs)\n",
                   entry.peer.c_str(), what_.c_str(), static_cast<long long>(io_deadline_.count()));
    }
    log_refusals(now);
  }
}

}  // namespace chorus::http
