// Goal: prove that the manager's SQLite file keeps node records and the history across a reopen
// (a manager restart), newest history first, with limits honoured.
#include "manager/store.hpp"

#include <gtest/gtest.h>

#include <unistd.h>
#include <filesystem>

namespace chorus::manager {
namespace {

TEST(ManagerStore, KeepsNodesAndHistoryAcrossReopen) {
  const auto folder =
      std::filesystem::temp_directory_path() / ("chorus-store-test-" + std::to_string(::getpid()));
  std::filesystem::create_directories(folder);
  const std::string path = (folder / "manager.sqlite").string();
  {
    Store store(path);
    EXPECT_FALSE(store.node("n1").has_value());
    NodeRecord r;
    r.operator_stopped = true;
    r.restarts = 3;
    r.last_exit_signal = 9;
    r.last_exit_at = "2026-11-27T21:00:00.000000Z";
    r.last_exit_reason = "killed by signal 9";
    store.save_node("n1", r);
    store.add_event("n1", "started", "pid 1");
    store.add_event("n1", "exited", "killed by signal 9");
    store.add_event("", "manager-stopped", "");
  }
  Store again(path);
  const auto r = again.node("n1");
  ASSERT_TRUE(r.has_value());
  EXPECT_TRUE(r->operator_stopped);
  EXPECT_EQ(r->restarts, 3);
  EXPECT_FALSE(r->last_exit_code.has_value());
  EXPECT_EQ(r->last_exit_signal, 9);
  EXPECT_EQ(r->last_exit_reason, "killed by signal 9");
  const auto events = again.history(2);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].event, "manager-stopped");
  EXPECT_EQ(events[1].event, "exited");
  EXPECT_EQ(again.history(100).size(), 3u);
  std::filesystem::remove_all(folder);
}

}  // namespace
}  // namespace chorus::manager
