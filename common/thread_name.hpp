// Thread names, so that `top -H`, perf and gdb show where a process spends its time (issue 16).
// Linux keeps 15 characters. The main thread keeps the process name (pgrep and killall use it).
#pragma once

#include <pthread.h>

#include <string>

namespace chorus {

inline void set_thread_name(const std::string& name) {
  pthread_setname_np(pthread_self(), name.substr(0, 15).c_str());
}

// For threads a library starts (Poco's server pools): names the calling thread on first use.
inline void name_this_thread_once(const char* name) {
  thread_local bool named = false;
  if (!named) {
    set_thread_name(name);
    named = true;
  }
}

}  // namespace chorus
