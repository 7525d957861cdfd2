// chorus-sim: runs the replication simulator over a range of seeds (optionally on several
// threads, one Simulation per seed) and prints a summary; a failing seed prints the command that
// replays it and the tail of its trace. Exit code 0 only if every seed passed.
#include "tests/sim/sim.hpp"

#include <boost/program_options.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <iostream>
#include <mutex>
#include <thread>

namespace {

namespace po = boost::program_options;
using chorus::sim::Mode;
using chorus::sim::Options;
using chorus::sim::Result;

struct Outcome {
  uint64_t seed = 0;
  Result result;
};

// Runs seeds [first, first + count) on `jobs` threads; failures come back sorted by seed.
std::vector<Outcome> run_seeds(const Options& base, uint64_t first, uint64_t count, int jobs,
                               chorus::sim::Stats& total) {
  std::atomic<uint64_t> next{0};
  std::mutex mu;
  std::vector<Outcome> failures;
  auto worker = [&] {
    for (uint64_t i = next++; i < count; i = next++) {
      Options options = base;
      options.seed = first + i;
      Result result = chorus::sim::Simulation(options).run();
      std::lock_guard lock(mu);
      total.add(result.stats);
      if (!result.ok) failures.push_back(Outcome{options.seed, std::move(result)});
    }
  };
  std::vector<std::thread> threads;
  for (int j = 1; j < jobs; ++j) threads.emplace_back(worker);
  worker();
  for (auto& t : threads) t.join();
  std::sort(failures.begin(), failures.end(),
            [](const Outcome& a, const Outcome& b) { return a.seed < b.seed; });
  return failures;
}

void report_failure(const Options& base, const Outcome& outcome, size_t tail) {
  Options options = base;
  options.seed = outcome.seed;
  std::cout << "FAIL seed " << outcome.seed << ": " << outcome.result.failure << "\n"
            << "  replay: " << chorus::sim::replay_command(options) << " --trace\n";
  if (tail == 0) return;
  // The run is deterministic: replaying it with a trace buffer shows the events that led there.
  options.trace_tail = tail;
  const Result traced = chorus::sim::Simulation(options).run();
  std::cout << "  last " << traced.trace_tail.size() << " events:\n";
  for (const auto& line : traced.trace_tail) std::cout << "    " << line << "\n";
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  uint64_t seeds = 1;
  int jobs = 1;
  size_t tail = 80;
  std::string mode = "safety";
  po::options_description desc("chorus-sim: deterministic simulation of the replication core");
  desc.add_options()("help", "this text")(
      "seed", po::value<uint64_t>(&options.seed)->default_value(1), "first seed")(
      "seeds", po::value<uint64_t>(&seeds)->default_value(1), "number of seeds from --seed")(
      "nodes", po::value<int>(&options.nodes)->default_value(3), "cluster size")(
      "steps", po::value<int>(&options.steps)->default_value(2000), "fault-phase ticks per seed")(
      "mode", po::value<std::string>(&mode)->default_value("safety"), "safety | liveness")(
      "jobs", po::value<int>(&jobs)->default_value(1), "threads (seeds run independently)")(
      "trace", po::bool_switch(&options.trace), "print every event (use with one seed)")(
      "storage-acks", po::value<int>(&options.storage_acks)->default_value(-1),
      "followers' storage sends their acks: -1 by seed, 0 never, 1 always")(
      "tail", po::value<size_t>(&tail)->default_value(80), "trace lines shown for a failure");
  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc, argv, desc), vm);
    po::notify(vm);
  } catch (const std::exception& e) {
    std::cerr << e.what() << "\n" << desc;
    return 2;
  }
  if (vm.count("help")) {
    std::cout << desc;
    return 0;
  }
  if (mode != "safety" && mode != "liveness") {
    std::cerr << "--mode must be safety or liveness\n";
    return 2;
  }
  if (options.nodes < 1 || options.nodes > 9 || jobs < 1 || options.steps < 0) {
    std::cerr << "--nodes must be 1..9, --jobs at least 1, --steps at least 0\n";
    return 2;
  }
  options.mode = mode == "liveness" ? Mode::Liveness : Mode::Safety;
  if (options.trace) jobs = 1;
  const auto started = std::chrono::steady_clock::now();
  chorus::sim::Stats total;
  const auto failures = run_seeds(options, options.seed, seeds, jobs, total);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now() - started)
                      .count();
  for (const auto& f : failures) report_failure(options, f, options.trace ? 0 : tail);
  std::cout << (failures.empty() ? "ok" : "FAILED") << ": " << seeds - failures.size() << "/"
            << seeds << " seeds passed (" << options.nodes << " nodes, " << options.steps
            << " steps, " << mode << ") in " << ms << " ms; events " << total.events
            << ", messages " << total.messages_sent << " (dropped " << total.messages_dropped
            << "), proposed " << total.proposed << ", acked " << total.acked << ", committed "
            << total.committed_entries << ", leaders " << total.leaders_elected << ", crashes "
            << total.crashes << ", pauses " << total.pauses << ", partitions " << total.partitions
            << ", truncations " << total.truncations << ", storage reads " << total.reader_reads
            << ", storage failures " << total.storage_failures << ", slow disks "
            << total.slow_disks << ", storage acks " << total.storage_acks << "\n";
  return failures.empty() ? 0 : 1;
}
