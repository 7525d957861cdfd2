// HealthResponder: the manager's health listener (a Unix socket, mode 0600, in the manager's
// folder of mode 0700: reaching it is the authorization, docs/security.md) served by one Asio
// thread ("health") with Beast's HTTP/1.1 parser, instead of a Poco server. The manager probes
// every node twice a second on one kept connection; Poco answered each probe on a request thread
// with a keep-alive poll (epoll_create/ctl/wait/close), stream and header-map machinery and CORS
// headers, ~3x the CPU of the wake-up itself (issue 16, bench/results/2026-12-03-s9/idle.md).
// It serves the routes of a Router (the health routes and POST /admin/backup) without reading
// credentials. GET routes answer on the health thread (they read the engine's atomics; /stats
// waits on the engine at most kLagReadWaitMs); any other method (a backup copy, which may take
// minutes) runs on a thread of its own, one at a time, so that probes keep being answered.
// start()/stop() from the owner's thread; load() from any thread.
#pragma once

#include "common/http_serving.hpp"  // HttpServerLoad
#include "worker/http/router.hpp"

#include <memory>
#include <string>

namespace chorus::http {

class HealthResponder {
 public:
  // `router` outlives this object. `io_deadline_ms`: the longest a connection may take to send
  // one request (keep-alive wait included) or to take one answer.
  HealthResponder(const Router& router, std::string socket_path, int io_deadline_ms);
  ~HealthResponder();
  HealthResponder(const HealthResponder&) = delete;
  HealthResponder& operator=(const HealthResponder&) = delete;

  // Binds the socket (replacing a stale one a killed worker left behind), mode 0600, listens and
  // starts the thread. Throws std::runtime_error with a clear message.
  void start();
  // Closes the socket and every connection and joins the threads (a running long request first
  // ends). Idempotent.
  void stop();
  HttpServerLoad load() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace chorus::http
