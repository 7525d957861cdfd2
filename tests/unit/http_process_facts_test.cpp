// Goal: /stats's process figures (CPU seconds, resident bytes, threads) parsed in place from a
// /proc/<pid>/stat line: the fields after a command name holding spaces and parentheses, zeros for
// a line cut short or not numeric, and this process's own line agreeing with what it runs.
#include "worker/http/node_api.hpp"

#include <gtest/gtest.h>

#include <unistd.h>
#include <atomic>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>

namespace chorus::http {
namespace {

// A real line's shape (Linux 6.x, 52 fields), the command name "a) (b c" on purpose.
constexpr const char* kLine =
    "4242 (a) (b c) S 1 4242 4242 0 -1 4194560 1200 0 3 0 250 130 0 0 20 0 25 0 9876 "
    "104857600 6400 18446744073709551615 1 1 0 0 0 0 0 4096 17922 0 0 0 17 1 0 0 0 0 0 0 0 0 0 "
    "0 0 0 0\n";

TEST(HttpProcessFacts, ReadsTheFieldsAfterTheCommandName) {
  const ProcessFacts facts = process_facts_from_stat(kLine, 100, 4096);
  EXPECT_DOUBLE_EQ(facts.cpu_seconds, 3.8);  // (250 + 130) ticks at 100 a second
  EXPECT_EQ(facts.threads, 25);
  EXPECT_EQ(facts.rss_bytes, 6400 * 4096);
}

TEST(HttpProcessFacts, AnUnreadableLineGivesZeros) {
  const std::string line = kLine;
  for (const std::string& bad : {std::string(), std::string("4242 (a"),
                                 line.substr(0, line.find(" 25 0 9876")),  // cut before field 20
                                 std::string("4242 (a) S 1 2 x 4 5 6 7 8 9 10 11 12 13 14 15 16 "
                                             "17 18 19 20 21 22")}) {
    const ProcessFacts facts = process_facts_from_stat(bad, 100, 4096);
    EXPECT_EQ(facts.cpu_seconds, 0) << bad;
    EXPECT_EQ(facts.threads, 0) << bad;
    EXPECT_EQ(facts.rss_bytes, 0) << bad;
  }
}

TEST(HttpProcessFacts, ThisProcessLineAgreesWithWhatItRuns) {
  std::atomic<bool> stop{false};
  std::thread second([&] {
    while (!stop) std::this_thread::yield();
  });
  std::ifstream file("/proc/self/stat");
  const std::string line((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  stop = true;
  second.join();
  const ProcessFacts facts =
      process_facts_from_stat(line, ::sysconf(_SC_CLK_TCK), ::sysconf(_SC_PAGESIZE));
  EXPECT_GE(facts.threads, 2);
  EXPECT_GT(facts.rss_bytes, 1 << 20);
  EXPECT_GE(facts.cpu_seconds, 0);
}

}  // namespace
}  // namespace chorus::http
