// JsHeap: see js_heap.hpp. Every allocation carries a small header with its size so that the
// allocator can count live bytes; when a request would pass the limit it returns null, Duktape
// collects garbage and retries once, then throws a RangeError that the projection sees as a
// fault. The timeout hook runs every few thousand bytecode instructions; once the deadline has
// passed it keeps answering "timed out" until the error has unwound out of JavaScript, as
// Duktape requires. The deadline is in the calling thread's CPU time, not wall time: a runaway
// loop burns CPU and is stopped as before, while a handler that only waited for a CPU on a busy
// machine (or was descheduled) is not faulted for it.
#include "worker/projections/js_heap.hpp"

#include <duktape.h>

#include <time.h>

#include <cstdlib>
#include <cstring>
#include <iostream>
#include <stdexcept>

namespace chorus::projections {

struct JsHeap::State {
  size_t used_bytes = 0;
  size_t max_bytes = 0;
  bool refused = false;  // an allocation was refused since the last entry
  bool armed = false;
  bool timed_out = false;
  int64_t deadline_cpu_ns = 0;  // in thread_cpu_ns()'s clock
};

namespace {

// The calling thread's CPU time (user + system) in ns.
int64_t thread_cpu_ns() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return int64_t{t.tv_sec} * 1'000'000'000 + t.tv_nsec;
}

// Room before each block for its size, keeping Duktape's blocks aligned as malloc's are.
constexpr size_t kHeaderBytes = alignof(std::max_align_t);

using State = JsHeap::State;

void* js_alloc(void* udata, duk_size_t size) {
  auto* s = static_cast<State*>(udata);
  if (size == 0) return nullptr;
  if (s->used_bytes + size > s->max_bytes) {
    s->refused = true;
    return nullptr;
  }
  void* base = std::malloc(size + kHeaderBytes);
  if (base == nullptr) return nullptr;
  std::memcpy(base, &size, sizeof size);
  s->used_bytes += size;
  return static_cast<char*>(base) + kHeaderBytes;
}

void js_free(void* udata, void* ptr) {
  if (ptr == nullptr) return;
  auto* s = static_cast<State*>(udata);
  char* base = static_cast<char*>(ptr) - kHeaderBytes;
  size_t size = 0;
  std::memcpy(&size, base, sizeof size);
  s->used_bytes -= size;
  std::free(base);
}

void* js_realloc(void* udata, void* ptr, duk_size_t size) {
  if (ptr == nullptr) return js_alloc(udata, size);
  if (size == 0) {
    js_free(udata, ptr);
    return nullptr;
  }
  auto* s = static_cast<State*>(udata);
  char* base = static_cast<char*>(ptr) - kHeaderBytes;
  size_t old_size = 0;
  std::memcpy(&old_size, base, sizeof old_size);
  if (size > old_size && s->used_bytes - old_size + size > s->max_bytes) {
    s->refused = true;
    return nullptr;
  }
  void* grown = std::realloc(base, size + kHeaderBytes);
  if (grown == nullptr) return nullptr;
  std::memcpy(grown, &size, sizeof size);
  s->used_bytes = s->used_bytes - old_size + size;
  return static_cast<char*>(grown) + kHeaderBytes;
}

// Duktape calls this only for errors outside any protected call, which JsHeap never makes: a
// programmer error, so the process stops (STYLE.md 4).
void js_fatal(void* /*udata*/, const char* message) {
  std::cerr << "chorus-worker: fatal JavaScript engine error: " << (message ? message : "?")
            << std::endl;
  std::abort();
}

duk_context* as_ctx(void* ctx) { return static_cast<duk_context*>(ctx); }

}  // namespace

JsHeap::JsHeap(JsLimits limits) : limits_(limits), state_(std::make_unique<State>()) {
  state_->max_bytes = limits.heap_bytes_max;
  ctx_ = duk_create_heap(js_alloc, js_realloc, js_free, state_.get(), js_fatal);
  if (ctx_ == nullptr) {
    throw std::runtime_error("the JavaScript heap does not fit in " +
                             std::to_string(limits.heap_bytes_max) + " bytes");
  }
  // The `Duktape` object gives access to internals (gc, act, fin); a projection needs none.
  duk_push_global_object(as_ctx(ctx_));
  duk_del_prop_string(as_ctx(ctx_), -1, "Duktape");
  duk_pop(as_ctx(ctx_));
}

JsHeap::~JsHeap() {
  if (ctx_ != nullptr) duk_destroy_heap(as_ctx(ctx_));
}

size_t JsHeap::heap_bytes() const { return state_->used_bytes; }

JsResult JsHeap::eval(const std::string& file_name, const std::string& source) {
  duk_context* ctx = as_ctx(ctx_);
  state_->refused = false;
  state_->timed_out = false;
  state_->deadline_cpu_ns = thread_cpu_ns() + limits_.call_time_ms * 1'000'000;
  state_->armed = true;
  duk_push_string(ctx, file_name.c_str());
  int rc = duk_pcompile_lstring_filename(ctx, 0, source.data(), source.size());
  if (rc == DUK_EXEC_SUCCESS) rc = duk_pcall(ctx, 0);
  return finish(rc);
}

JsResult JsHeap::call(const std::string& function, const std::vector<JsArg>& args) {
  duk_context* ctx = as_ctx(ctx_);
  state_->refused = false;
  state_->timed_out = false;
  duk_get_global_lstring(ctx, function.data(), function.size());
  for (const JsArg& a : args) {
    if (std::holds_alternative<std::nullptr_t>(a)) {
      duk_push_null(ctx);
    } else if (const bool* b = std::get_if<bool>(&a)) {
      duk_push_boolean(ctx, *b ? 1 : 0);
    } else if (const double* d = std::get_if<double>(&a)) {
      duk_push_number(ctx, *d);
    } else {
      const auto& s = std::get<std::string>(a);
      duk_push_lstring(ctx, s.data(), s.size());
    }
  }
  state_->deadline_cpu_ns = thread_cpu_ns() + limits_.call_time_ms * 1'000'000;
  state_->armed = true;
  return finish(duk_pcall(ctx, static_cast<duk_idx_t>(args.size())));
}

// Disarms the deadline and turns the value on top of the stack into a JsResult.
JsResult JsHeap::finish(int rc) {
  duk_context* ctx = as_ctx(ctx_);
  state_->armed = false;
  JsResult r;
  if (rc != DUK_EXEC_SUCCESS) {
    r.ok = false;
    if (state_->timed_out) {
      r.error = "the handler ran longer than its limit of " + std::to_string(limits_.call_time_ms) +
                " ms";
    } else if (state_->refused) {
      r.error = "the projection needed more than its memory limit of " +
                std::to_string(limits_.heap_bytes_max) + " bytes (" +
                std::string(duk_safe_to_string(ctx, -1)) + ")";
    } else {
      r.error = duk_safe_to_string(ctx, -1);
    }
  } else if (!duk_is_null_or_undefined(ctx, -1)) {
    duk_size_t length = 0;
    const char* text = duk_safe_to_lstring(ctx, -1, &length);
    r.value = std::string(text, length);
  }
  duk_pop(ctx);
  return r;
}

}  // namespace chorus::projections

// Duktape's execution-timeout hook (declared in the generated duk_config.h): `udata` is the
// heap's State.
extern "C" int chorus_duk_exec_timeout(void* udata) {
  auto* s = static_cast<chorus::projections::JsHeap::State*>(udata);
  if (s == nullptr || !s->armed) return 0;
  if (s->timed_out || chorus::projections::thread_cpu_ns() >= s->deadline_cpu_ns) {
    s->timed_out = true;
    return 1;
  }
  return 0;
}
