// Store: the manager's own SQLite file (<Db>/manager/manager.sqlite): each node's persistent
// state (whether the operator stopped it, its restart count, its last exit) and the history of
// supervision events, kept across manager restarts. Thread-safe (one mutex; SQLite serialized).
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace chorus::manager {

struct HistoryEvent {
  std::string at;  // ISO-8601 UTC
  std::string node;
  std::string event;  // started, exited, restarting, failed, stopped, ...
  std::string detail;
};

struct NodeRecord {
  bool operator_stopped = false;
  int restarts = 0;
  std::optional<int> last_exit_code;
  std::optional<int> last_exit_signal;
  std::string last_exit_at;
  std::string last_exit_reason;
};

class Store {
 public:
  // Opens (creating) the file; throws std::runtime_error with the reason if it cannot.
  explicit Store(const std::string& path);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  void add_event(const std::string& node, const std::string& event, const std::string& detail);
  std::vector<HistoryEvent> history(int limit) const;  // newest first
  std::optional<NodeRecord> node(const std::string& name) const;
  void save_node(const std::string& name, const NodeRecord& record);

 private:
  void exec(const char* sql);
  mutable std::mutex mutex_;
  sqlite3* db_ = nullptr;  // GUARDED_BY(mutex_)
};

// Events kept in the history table; older ones are deleted (STYLE.md 5).
inline constexpr int kHistoryRowsMax = 10000;

}  // namespace chorus::manager
