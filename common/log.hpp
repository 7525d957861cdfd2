// Log: a small line logger for the worker and manager processes: each line is
// "<UTC timestamp> [<Level>] <message>", written to stdout and appended to one file.
// Thread-safe (one mutex around each line); create one per process and pass it by reference.
#pragma once

#include <fstream>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace chorus {

// Serilog's levels, which EventStore's --log-level names.
enum class LogLevel { kVerbose, kDebug, kInformation, kWarning, kError, kFatal };

std::optional<LogLevel> parse_log_level(std::string_view name);
std::string_view to_string(LogLevel level);

class Log {
 public:
  // Writes lines at `min_level` and above to stdout, and to the file once opened.
  explicit Log(LogLevel min_level);
  Log(const Log&) = delete;
  Log& operator=(const Log&) = delete;

  // Also appends every line to `path`. Returns false (and logs nothing) if it cannot be opened.
  bool open_file(const std::string& path);

  void write(LogLevel level, std::string_view message);
  void info(std::string_view message) { write(LogLevel::kInformation, message); }
  void warn(std::string_view message) { write(LogLevel::kWarning, message); }
  void error(std::string_view message) { write(LogLevel::kError, message); }

 private:
  const LogLevel min_level_;
  std::mutex mutex_;
  std::ofstream file_;  // GUARDED_BY(mutex_)
};

}  // namespace chorus
