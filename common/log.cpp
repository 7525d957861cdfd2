// Log: formats lines with a UTC millisecond timestamp and writes them under one mutex.
#include "common/log.hpp"

#include <array>
#include <cctype>
#include <chrono>
#include <ctime>
#include <iostream>

namespace chorus {
namespace {

constexpr std::array<std::string_view, 6> kLevelNames = {"Verbose", "Debug", "Information",
                                                         "Warning", "Error", "Fatal"};

std::string timestamp_utc() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t seconds = std::chrono::system_clock::to_time_t(now);
  const auto millis =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  std::array<char, 40> buffer{};
  const size_t length = std::strftime(buffer.data(), buffer.size(), "%Y-%m-%dT%H:%M:%S", &utc);
  std::array<char, 8> fraction{};
  std::snprintf(fraction.data(), fraction.size(), ".%03dZ", static_cast<int>(millis));
  return std::string(buffer.data(), length) + fraction.data();
}

bool equal_ignoring_case(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

}  // namespace

std::optional<LogLevel> parse_log_level(std::string_view name) {
  for (size_t i = 0; i < kLevelNames.size(); ++i) {
    if (equal_ignoring_case(kLevelNames[i], name)) return static_cast<LogLevel>(i);
  }
  return std::nullopt;
}

std::string_view to_string(LogLevel level) { return kLevelNames[static_cast<size_t>(level)]; }

Log::Log(LogLevel min_level) : min_level_(min_level) {}

bool Log::open_file(const std::string& path) {
  const std::lock_guard<std::mutex> lock(mutex_);
  file_.open(path, std::ios::out | std::ios::app);
  return file_.is_open();
}

void Log::write(LogLevel level, std::string_view message) {
  if (level < min_level_) return;
  std::string line = timestamp_utc();
  line += " [";
  line += to_string(level);
  line += "] ";
  line += message;
  line += '\n';
  const std::lock_guard<std::mutex> lock(mutex_);
  std::cout << line << std::flush;
  if (file_.is_open()) file_ << line << std::flush;
}

}  // namespace chorus
