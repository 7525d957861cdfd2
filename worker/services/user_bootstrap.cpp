// UserBootstrap: one write per missing user, plus its entry in the $users index stream.
#include "worker/services/user_bootstrap.hpp"

#include "worker/engine/users.hpp"

namespace chorus {

void UserBootstrap::start(LeaderContext& context) {
  running_ = std::make_shared<std::atomic<bool>>(true);
  struct Builtin {
    const char* login;
    const char* full_name;
    const char* group;
    const std::string* password;
  };
  const Principal system{"$system", {"$admins"}};
  for (const Builtin& b :
       {Builtin{"admin", "Event Store Administrator", "$admins", &passwords_.admin},
        Builtin{"ops", "Event Store Operations", "$ops", &passwords_.ops}}) {
    if (context.last_number(user_stream(b.login)) >= 0) continue;
    const auto user = make_user(b.login, b.full_name, {b.group}, *b.password);
    NewEvent e{random_guid(), kUserEventType, true, false, user_to_json(user), ""};
    context.append(system, user_stream(b.login), kExpectedNoStream, {e}, [](const WriteResult&) {});
    NewEvent link{random_guid(), kUserEventType, false, false, b.login, ""};
    context.append(system, kUsersStream, kExpectedAny, {link}, [](const WriteResult&) {});
  }
}

void UserBootstrap::stop() {
  if (running_) running_->store(false);
}

}  // namespace chorus
