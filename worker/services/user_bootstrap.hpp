// UserBootstrap: a leader service that creates the built-in users (admin in $admins, ops in
// $ops) the first time a leader finds them missing, as EventStore does at first start.
// Threading: core thread (a LeaderService).
#pragma once

#include "worker/services/leader_services.hpp"

#include <atomic>
#include <memory>
#include <string>

namespace chorus {

struct DefaultPasswords {
  std::string admin = "changeit";
  std::string ops = "changeit";
};

class UserBootstrap final : public LeaderService {
 public:
  explicit UserBootstrap(DefaultPasswords passwords) : passwords_(std::move(passwords)) {}
  std::string name() const override { return "user bootstrap"; }
  void start(LeaderContext& context) override;
  void stop() override;

 private:
  DefaultPasswords passwords_;
  // Shared with the callbacks of writes in flight, which must do nothing after stop().
  std::shared_ptr<std::atomic<bool>> running_;
};

}  // namespace chorus
