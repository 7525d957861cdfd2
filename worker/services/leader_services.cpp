// LeaderServices: starts services in the order they were added and stops them in reverse.
#include "worker/services/leader_services.hpp"

#include <iostream>

namespace chorus {

void LeaderServices::start_all() {
  if (running_) return;
  running_ = true;
  for (auto& s : services_) s->start(context_);
}

void LeaderServices::stop_all() {
  if (!running_) return;
  running_ = false;
  for (auto it = services_.rbegin(); it != services_.rend(); ++it) {
    try {
      (*it)->stop();
    } catch (const std::exception& e) {
      std::cerr << "chorus-worker: stopping " << (*it)->name() << " failed: " << e.what()
                << std::endl;
    }
  }
}

void LeaderServices::on_record_committed(const EventRecord& record) {
  if (!running_) return;
  for (auto& s : services_) s->on_record_committed(record);
}

}  // namespace chorus
