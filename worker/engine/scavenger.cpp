// Scavenger: the scan, the throttled deletion and vacuum jobs, and the $scavenges events.
#include "worker/engine/scavenger.hpp"

#include "common/thread_name.hpp"
#include "worker/engine/reads.hpp"
#include "worker/engine/retention.hpp"

#include <Poco/JSON/Object.h>

#include <chrono>
#include <cstdio>
#include <future>
#include <iostream>
#include <sstream>
#include <unordered_map>

namespace chorus {
namespace {

using Clock = std::chrono::steady_clock;

// A write to $scavenges that takes longer than this is given up (the scavenge goes on; its
// state stays available over HTTP).
constexpr auto kLogWriteTimeout = std::chrono::seconds(10);
constexpr const char* kScavengesStream = "$scavenges";

int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// EventStore writes TimeSpans as "hh:mm:ss.fffffff".
std::string time_span(int64_t ms) {
  char text[40];
  std::snprintf(text, sizeof text, "%02lld:%02lld:%02lld.%03lld0000",
                static_cast<long long>(ms / 3600000), static_cast<long long>(ms / 60000 % 60),
                static_cast<long long>(ms / 1000 % 60), static_cast<long long>(ms % 1000));
  return text;
}

std::string to_json(const Poco::JSON::Object& o) {
  std::ostringstream out;
  o.stringify(out);
  return out.str();
}

NewEvent json_event(const std::string& type, const Poco::JSON::Object& data) {
  NewEvent e;
  e.event_id = random_guid();
  e.event_type = type;
  e.data_is_json = true;
  e.data = to_json(data);
  return e;
}

}  // namespace

int ScavengeState::progress_percent() const {
  if (result != "InProgress") return 100;
  const int64_t span = end_position - start_position;
  if (span <= 0) return 100;
  return static_cast<int>(
      std::clamp<int64_t>((scan_position - start_position) * 100 / span, 0, 100));
}

// One scavenge: its state (read by HTTP threads) and the work on the scavenger's thread.
class Scavenger::Run {
 public:
  Run(const Database& db, const ScavengeHooks& hooks, ScavengeState state, ScavengeLog log)
      : db_(db), hooks_(hooks), log_(std::move(log)), state_(std::move(state)) {}

  ScavengeState state() const {
    std::lock_guard lock(mutex_);
    return state_;
  }
  // quiet: the node is shutting down; write no more events (nobody would take them).
  void request_stop(bool quiet) {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
      quiet_ = quiet_ || quiet;
    }
    wake_.notify_all();
  }
  // The whole scavenge; returns its final state.
  ScavengeState execute();

 private:
  bool stopping() const {
    std::lock_guard lock(mutex_);
    return stop_;
  }
  template <class F>
  void update(F&& f) {
    std::lock_guard lock(mutex_);
    f(state_);
  }
  void write_log(bool both_streams, const std::string& type, const Poco::JSON::Object& data);
  void write_event(const std::string& stream, NewEvent event);
  void limit_history();
  Poco::JSON::Object base_data() const;
  void scan(ReadConnection& c);
  const ScavengePlan& plan_of(ReadConnection& c, const std::string& stream);
  void chunk_completed(int64_t chunk, Clock::time_point since);
  bool run_job(MaintenanceJob job, MaintenanceResult& result);
  void remove(std::vector<int64_t>& positions);
  void vacuum();
  void rest(Clock::duration worked);

  const Database& db_;
  const ScavengeHooks& hooks_;
  ScavengeLog log_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;
  bool quiet_ = false;
  ScavengeState state_;
  std::string failure_;
  int64_t now_ms_ = 0;  // the clock $maxAge is judged by, fixed at the start
  std::unordered_map<std::string, ScavengePlan> plans_;
};

void Scavenger::Run::write_log(bool both_streams, const std::string& type,
                               const Poco::JSON::Object& data) {
  std::vector<std::string> streams{std::string(kScavengesStream) + "-" + state_.id};
  if (both_streams) streams.emplace_back(kScavengesStream);
  for (const auto& stream : streams) write_event(stream, json_event(type, data));
}

void Scavenger::Run::write_event(const std::string& stream, NewEvent event) {
  {
    std::lock_guard lock(mutex_);
    if (!log_ || quiet_) return;
  }
  const std::string type = event.event_type;
  auto written = std::make_shared<std::promise<bool>>();
  auto answer = written->get_future();
  log_(stream, {std::move(event)}, [written](bool ok) { written->set_value(ok); });
  if (answer.wait_for(kLogWriteTimeout) != std::future_status::ready || !answer.get()) {
    std::cerr << "chorus-worker: scavenge " << state_.id << ": could not write " << type << " to "
              << stream << std::endl;
  }
}

// EventStore keeps scavenge history for ScavengeHistoryMaxAge (30 days): `$maxAge` on
// `$scavenges` and on each `$scavenges-<id>`, so later scavenges remove old history.
void Scavenger::Run::limit_history() {
  Poco::JSON::Object metadata;
  metadata.set("$maxAge", kScavengeHistoryMaxAgeSeconds);
  for (const std::string& stream : {std::string("$$") + kScavengesStream,
                                    std::string("$$") + kScavengesStream + "-" + state_.id}) {
    write_event(stream, json_event("$metadata", metadata));
  }
}

Poco::JSON::Object Scavenger::Run::base_data() const {
  Poco::JSON::Object o;
  o.set("scavengeId", state_.id);
  o.set("nodeEndpoint", hooks_.node_endpoint);
  return o;
}

ScavengeState Scavenger::Run::execute() {
  const auto started = Clock::now();
  now_ms_ = wall_ms();
  limit_history();
  write_log(true, "$scavengeStarted", base_data());
  int64_t size_before = 0;
  int64_t size_after = 0;
  try {
    ReadConnection c(db_);
    size_before = c.size_bytes();
    size_after = size_before;
    scan(c);
    if (failure_.empty() && !stopping()) vacuum();
    size_after = c.size_bytes();
  } catch (const std::exception& e) {
    failure_ = e.what();
  }
  update([&](ScavengeState& s) {
    s.time_taken_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started).count();
    s.space_saved_bytes = std::max<int64_t>(0, size_before - size_after);
    s.error = failure_;
    s.result = !failure_.empty() ? "Failed" : stop_ ? "Stopped" : "Success";
  });
  const auto final_state = state();
  auto data = base_data();
  data.set("result", final_state.result);
  data.set("error", final_state.error);
  data.set("timeTaken", time_span(final_state.time_taken_ms));
  data.set("spaceSaved", final_state.space_saved_bytes);
  data.set("eventsExamined", final_state.events_examined);
  data.set("eventsRemoved", final_state.events_removed);
  write_log(true, "$scavengeCompleted", data);
  return final_state;
}

const ScavengePlan& Scavenger::Run::plan_of(ReadConnection& c, const std::string& stream) {
  if (auto it = plans_.find(stream); it != plans_.end()) return it->second;
  if (plans_.size() >= kScavengePlanCacheMax) plans_.clear();
  const int64_t max_pos = state_.end_position - 1;
  const auto facts = stream_facts(c, stream, max_pos);
  return plans_.emplace(stream, scavenge_plan(facts, now_ms_)).first->second;
}

void Scavenger::Run::scan(ReadConnection& c) {
  int64_t position = state_.start_position;
  int64_t chunk = position / kScavengeChunkBytes;
  auto chunk_started = Clock::now();
  std::vector<int64_t> doomed;
  while (!stopping() && failure_.empty()) {
    const auto rows = c.scan(position, state_.end_position, kScavengeScanRows);
    if (rows.empty()) break;
    int64_t examined = 0;
    for (const auto& row : rows) {
      if (row.position / kScavengeChunkBytes != chunk) {
        remove(doomed);
        chunk_completed(chunk, chunk_started);
        chunk = row.position / kScavengeChunkBytes;
        chunk_started = Clock::now();
      }
      ++examined;
      if (may_remove(plan_of(c, row.stream), row.number, row.created_ms)) {
        doomed.push_back(row.position);
        if (doomed.size() >= kScavengeJobRecordsMax) remove(doomed);
      }
    }
    position = rows.back().end;
    update([&](ScavengeState& s) {
      s.events_examined += examined;
      s.scan_position = position;
    });
  }
  remove(doomed);
  if (failure_.empty() && !stopping()) chunk_completed(chunk, chunk_started);
}

void Scavenger::Run::chunk_completed(int64_t chunk, Clock::time_point since) {
  auto data = base_data();
  data.set("chunkStartNumber", chunk);
  data.set("chunkEndNumber", chunk);
  data.set(
      "timeTaken",
      time_span(
          std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - since).count()));
  data.set("wasScavenged", true);
  data.set("spaceSaved", 0);  // known only after the vacuum, in $scavengeCompleted
  data.set("errorMessage", "");
  write_log(false, "$scavengeChunksCompleted", data);
}

bool Scavenger::Run::run_job(MaintenanceJob job, MaintenanceResult& result) {
  auto finished = std::make_shared<std::promise<MaintenanceResult>>();
  auto answer = finished->get_future();
  job.done = [finished](const MaintenanceResult& r) { finished->set_value(r); };
  const auto started = Clock::now();
  if (!hooks_.run(std::move(job))) {
    failure_ = "the storage writer refused the job (stopped or failed)";
    return false;
  }
  result = answer.get();
  if (!result.ok) {
    failure_ = result.error;
    return false;
  }
  rest(Clock::now() - started);
  return true;
}

void Scavenger::Run::remove(std::vector<int64_t>& positions) {
  if (stopping()) positions.clear();  // a stop takes effect after the job in hand
  if (positions.empty() || !failure_.empty()) return;
  MaintenanceJob job;
  job.remove_positions = std::move(positions);
  positions.clear();
  MaintenanceResult result;
  if (!run_job(std::move(job), result)) return;
  update([&](ScavengeState& s) { s.events_removed += result.removed; });
}

void Scavenger::Run::vacuum() {
  for (;;) {
    MaintenanceJob job;
    job.vacuum_pages = kScavengeVacuumPagesPerJob;
    MaintenanceResult result;
    if (!run_job(std::move(job), result)) return;
    if (result.freelist_pages == 0 || stopping()) break;
  }
  // Copy the WAL back into the file, which then shrinks to its new page count.
  MaintenanceJob checkpoint;
  checkpoint.checkpoint = true;
  MaintenanceResult result;
  run_job(std::move(checkpoint), result);
}

void Scavenger::Run::rest(Clock::duration worked) {
  std::unique_lock lock(mutex_);
  wake_.wait_for(lock, worked * kScavengeRestFactor, [&] { return stop_; });
}

// ---------------------------------------------------------------- Scavenger

Scavenger::Scavenger(const Database& db, ScavengeHooks hooks) : db_(db), hooks_(std::move(hooks)) {}

Scavenger::~Scavenger() { shutdown(); }

ScavengeStart Scavenger::start(int64_t start_from_chunk, ScavengeLog log) {
  std::lock_guard lock(mutex_);
  if (running_) return {false, running_->state().id};
  if (thread_.joinable()) thread_.join();  // the previous scavenge's thread has finished
  ScavengeState state;
  state.id = to_string(random_guid());
  state.node_endpoint = hooks_.node_endpoint;
  state.started_ms = wall_ms();
  state.start_position = start_from_chunk * kScavengeChunkBytes;
  state.end_position = hooks_.committed_end();
  state.scan_position = state.start_position;
  running_ = std::make_shared<Run>(db_, hooks_, state, std::move(log));
  thread_ = std::thread([this, run = running_] {
    set_thread_name("scavenger");
    finish(run->execute());
  });
  return {true, state.id};
}

void Scavenger::finish(const ScavengeState& state) {
  std::cerr << "chorus-worker: scavenge " << state.id << " " << state.result << ": "
            << state.events_examined << " events examined, " << state.events_removed << " removed, "
            << state.space_saved_bytes << " bytes freed in " << state.time_taken_ms << " ms"
            << (state.error.empty() ? "" : ": " + state.error) << std::endl;
  std::lock_guard lock(mutex_);
  history_.push_front(state);
  if (history_.size() > kScavengeHistoryMax) history_.pop_back();
  running_.reset();
}

// A run whose result is set is finished, though its thread may not have filed it yet.
std::optional<ScavengeState> Scavenger::current() const {
  std::lock_guard lock(mutex_);
  if (!running_) return std::nullopt;
  auto state = running_->state();
  if (state.result != "InProgress") return std::nullopt;
  return state;
}

std::optional<ScavengeState> Scavenger::find(const std::string& id) const {
  std::lock_guard lock(mutex_);
  if (running_ && running_->state().id == id) return running_->state();
  for (const auto& s : history_) {
    if (s.id == id) return s;
  }
  return std::nullopt;
}

bool Scavenger::stop(const std::string& id) {
  std::lock_guard lock(mutex_);
  if (!running_) return false;
  const auto state = running_->state();
  if (state.id != id || state.result != "InProgress") return false;
  running_->request_stop(false);
  return true;
}

void Scavenger::shutdown() {
  std::thread thread;
  {
    std::lock_guard lock(mutex_);
    if (running_) running_->request_stop(true);
    thread = std::move(thread_);
  }
  if (thread.joinable()) thread.join();
}

}  // namespace chorus
