// JsHeap: one sandboxed Duktape heap with a memory limit (a counting allocator refuses to grow
// past it) and a time limit on every entry into JavaScript (Duktape's execution-timeout hook
// checks a deadline in the thread's CPU time, armed around each eval and call). The global object
// holds ECMAScript's built-ins only (the `Duktape` object is removed): no I/O, no clock beyond
// Date, no modules. Threading: a heap belongs to one thread at a time (Duktape heaps are not
// thread-safe).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace chorus::projections {

// The default limits of one projection (EventStore has none; a server needs them).
// A handler that computes longer than this (CPU time: waiting for a CPU on a busy machine does
// not count) is a runaway loop, not a fold step.
inline constexpr int64_t kJsCallTimeMsDefault = 250;
// One projection's heap: its states, the query's code and the event being handled.
inline constexpr size_t kJsHeapBytesDefault = 64u * 1024u * 1024u;

struct JsLimits {
  int64_t call_time_ms = kJsCallTimeMsDefault;
  size_t heap_bytes_max = kJsHeapBytesDefault;
};

using JsArg = std::variant<std::nullptr_t, bool, double, std::string>;

// The outcome of one entry into JavaScript: `value` is the string it returned (nullopt for null
// or undefined), or `error` says why it failed.
struct JsResult {
  bool ok = true;
  std::optional<std::string> value;
  std::string error;
};

class JsHeap {
 public:
  // Throws std::runtime_error when the heap cannot be created within the memory limit.
  explicit JsHeap(JsLimits limits);
  ~JsHeap();
  JsHeap(const JsHeap&) = delete;
  JsHeap& operator=(const JsHeap&) = delete;

  // Compiles and runs `source` as a program (`file_name` appears in error messages).
  JsResult eval(const std::string& file_name, const std::string& source);
  // Calls the global function `function` with `args`; a result that is not a string, null or
  // undefined is converted with String().
  JsResult call(const std::string& function, const std::vector<JsArg>& args);

  size_t heap_bytes() const;
  const JsLimits& limits() const { return limits_; }

  struct State;  // the allocator's and the timeout hook's shared counters (js_heap.cpp)

 private:
  JsResult finish(int rc);

  JsLimits limits_;
  std::unique_ptr<State> state_;
  void* ctx_ = nullptr;  // duk_context*, kept opaque so that duktape.h stays out of headers
};

}  // namespace chorus::projections
