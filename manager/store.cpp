// The manager's SQLite file: schema and statements.
#include "manager/store.hpp"

#include "common/gossip.hpp"

#include <chrono>
#include <stdexcept>

namespace chorus::manager {
namespace {

struct Statement {
  Statement(sqlite3* db, const char* sql) {
    if (sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr) != SQLITE_OK) {
      throw std::runtime_error(std::string("sqlite: ") + sqlite3_errmsg(db));
    }
  }
  ~Statement() { sqlite3_finalize(stmt); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  void text(int i, const std::string& v) {
    sqlite3_bind_text(stmt, i, v.c_str(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  }
  void integer(int i, std::optional<int64_t> v) {
    if (v) {
      sqlite3_bind_int64(stmt, i, *v);
    } else {
      sqlite3_bind_null(stmt, i);
    }
  }
  std::string column_text(int i) const {
    const auto* p = sqlite3_column_text(stmt, i);
    return p ? reinterpret_cast<const char*>(p) : "";
  }
  std::optional<int> column_int(int i) const {
    if (sqlite3_column_type(stmt, i) == SQLITE_NULL) return std::nullopt;
    return sqlite3_column_int(stmt, i);
  }
  sqlite3_stmt* stmt = nullptr;
};

std::string now_text() {
  return iso8601_utc(std::chrono::duration_cast<std::chrono::microseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count());
}

}  // namespace

Store::Store(const std::string& path) {
  if (sqlite3_open(path.c_str(), &db_) != SQLITE_OK) {
    const std::string reason = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    db_ = nullptr;
    throw std::runtime_error("cannot open " + path + ": " + reason);
  }
  sqlite3_busy_timeout(db_, 2000);
  exec("PRAGMA journal_mode=WAL");
  exec(
      "CREATE TABLE IF NOT EXISTS nodes (name TEXT PRIMARY KEY, operator_stopped INTEGER, "
      "restarts INTEGER, last_exit_code INTEGER, last_exit_signal INTEGER, last_exit_at TEXT, "
      "last_exit_reason TEXT)");
  exec(
      "CREATE TABLE IF NOT EXISTS history (id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT, "
      "node TEXT, event TEXT, detail TEXT)");
}

Store::~Store() { sqlite3_close(db_); }

void Store::exec(const char* sql) {
  char* error = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &error) != SQLITE_OK) {
    const std::string reason = error ? error : "unknown";
    sqlite3_free(error);
    throw std::runtime_error("sqlite: " + reason);
  }
}

void Store::add_event(const std::string& node, const std::string& event,
                      const std::string& detail) {
  std::lock_guard lock(mutex_);
  Statement s(db_, "INSERT INTO history (at, node, event, detail) VALUES (?, ?, ?, ?)");
  s.text(1, now_text());
  s.text(2, node);
  s.text(3, event);
  s.text(4, detail);
  sqlite3_step(s.stmt);
  const int64_t id = sqlite3_last_insert_rowid(db_);
  if (id % 100 == 0) {
    Statement trim(db_, "DELETE FROM history WHERE id <= ?");
    trim.integer(1, id - kHistoryRowsMax);
    sqlite3_step(trim.stmt);
  }
}

std::vector<HistoryEvent> Store::history(int limit) const {
  std::lock_guard lock(mutex_);
  Statement s(db_, "SELECT at, node, event, detail FROM history ORDER BY id DESC LIMIT ?");
  s.integer(1, limit);
  std::vector<HistoryEvent> out;
  while (sqlite3_step(s.stmt) == SQLITE_ROW) {
    out.push_back({s.column_text(0), s.column_text(1), s.column_text(2), s.column_text(3)});
  }
  return out;
}

std::optional<NodeRecord> Store::node(const std::string& name) const {
  std::lock_guard lock(mutex_);
  Statement s(db_,
              "SELECT operator_stopped, restarts, last_exit_code, last_exit_signal, "
              "last_exit_at, last_exit_reason FROM nodes WHERE name = ?");
  s.text(1, name);
  if (sqlite3_step(s.stmt) != SQLITE_ROW) return std::nullopt;
  NodeRecord r;
  r.operator_stopped = s.column_int(0).value_or(0) != 0;
  r.restarts = s.column_int(1).value_or(0);
  r.last_exit_code = s.column_int(2);
  r.last_exit_signal = s.column_int(3);
  r.last_exit_at = s.column_text(4);
  r.last_exit_reason = s.column_text(5);
  return r;
}

void Store::save_node(const std::string& name, const NodeRecord& r) {
  std::lock_guard lock(mutex_);
  Statement s(db_,
              "INSERT OR REPLACE INTO nodes (name, operator_stopped, restarts, last_exit_code, "
              "last_exit_signal, last_exit_at, last_exit_reason) VALUES (?, ?, ?, ?, ?, ?, ?)");
  s.text(1, name);
  s.integer(2, r.operator_stopped ? 1 : 0);
  s.integer(3, r.restarts);
  s.integer(4, r.last_exit_code);
  s.integer(5, r.last_exit_signal);
  s.text(6, r.last_exit_at);
  s.text(7, r.last_exit_reason);
  sqlite3_step(s.stmt);
}

}  // namespace chorus::manager
