// wait_for_engine: calls an asynchronous Engine method from a request thread and waits for its
// callback, at most a deadline. The callback owns its promise, so a late answer after the
// deadline is harmless. Any thread that may block (Poco request threads).
#pragma once

#include "worker/http/limits.hpp"

#include <chrono>
#include <future>
#include <memory>
#include <optional>
#include <utility>

namespace chorus::http {

// `start(done)` must hand `done` to the engine. nullopt when no answer came in time.
template <typename Result, typename Start>
std::optional<Result> wait_for_engine(Start&& start, int timeout_ms = kEngineWaitMs) {
  auto promise = std::make_shared<std::promise<Result>>();
  std::future<Result> future = promise->get_future();
  start([promise](Result result) { promise->set_value(std::move(result)); });
  if (future.wait_for(std::chrono::milliseconds(timeout_ms)) != std::future_status::ready) {
    return std::nullopt;
  }
  return future.get();
}

}  // namespace chorus::http
