// ReplacementWatch: applies the member replacements committed to $voters (an operator's POST
// /admin/members/replace, docs/operations.md) to this node's voter set, so that every member
// moves the seat once the replacement is in the log: those written before this start (read once,
// also by a member that was down when it was committed) and each later one (a subscription).
// A failed read or a dropped subscription is tried again after kReplacementRetryMs. Applying is
// idempotent (VoterSet::apply_replacement), so an event both read and delivered does no harm.
// Runs on the io_context: start() from any thread, stop() on it or once it no longer runs; the
// engine's callbacks only post to it.
#pragma once

#include "worker/cluster/voter_set.hpp"
#include "worker/engine/engine.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <functional>
#include <memory>
#include <vector>

namespace chorus::cluster {

inline constexpr int kReplacementRetryMs = 1000;
// Events read from $voters per read (there are a few: one per replacement ever made).
inline constexpr int32_t kReplacementReadCount = 500;

class ReplacementWatch : public std::enable_shared_from_this<ReplacementWatch> {
 public:
  using UseVoters = std::function<void(const std::vector<Voter>&)>;
  // `use` gets the voters after each change (on the io_context). All must outlive stop().
  ReplacementWatch(boost::asio::io_context& io, Engine& engine, VoterBook& voters, UseVoters use);
  void start();
  void stop();

 private:
  void subscribe();
  void read_from(int64_t event_number);
  void apply(const EventRecord& record);
  void retry();

  boost::asio::io_context& io_;
  Engine& engine_;
  VoterBook& voters_;
  UseVoters use_;
  boost::asio::steady_timer timer_;
  uint64_t subscription_ = 0;  // io_context only
  bool stopped_ = false;       // io_context only
};

}  // namespace chorus::cluster
