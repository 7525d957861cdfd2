// Waits for a condition another thread makes true: polls it every 5 ms until `timeout`. A wait
// with a deadline, for tests of threaded code that has no completion signal to await.
#pragma once

#include <chrono>
#include <functional>
#include <thread>

namespace chorus::test {

inline bool eventually(const std::function<bool()>& condition,
                       std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

}  // namespace chorus::test
