// UsersApi: EventStore's /users routes (list, create, read, update, delete, enable, disable,
// reset-password, change-password). Users are records in `$user-<login>` streams, listed by the
// `$users` index stream, read and written through the Engine's public API as the system user
// once the caller's rights are checked here. Writes run on the leader (followers pass them on);
// reads are served from this node's committed data. Handlers run on Poco request threads and
// block on the engine with a deadline; the parsing and JSON helpers are pure.
#pragma once

#include "worker/engine/users.hpp"
#include "worker/http/request.hpp"
#include "worker/http/router.hpp"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace chorus {
class Engine;
}

namespace chorus::http {

// Limits of the users API (STYLE.md 5).
// A login, full name or group name longer than this is refused: they travel in every credential
// check and ACL decision, and real names are far shorter.
inline constexpr size_t kUserTextBytesMax = 256;
// Groups one user may belong to; ACL checks walk this list.
inline constexpr size_t kUserGroupsMax = 64;
// Longest password accepted; PBKDF2 hashes it on every uncached check.
inline constexpr size_t kUserPasswordBytesMax = 1024;
// Entries of the $users index read for GET /users (each costs one read of a user stream).
inline constexpr int kUsersListedMax = 10000;

// EventStore's UserManagementMessage.Error, written by name in the JSON answers.
enum class UsersError { Success, NotFound, Conflict, Error, TryAgain, Unauthorized };
std::string_view users_error_name(UsersError error);
int users_error_status(UsersError error);  // 200, 404, 409, 500, 408, 401

// The fields a users request body may carry (EventStore's PostUserData, PutUserData,
// ResetPasswordData, ChangePasswordData). Keys match case-insensitively, as .NET's binder does.
struct UserBody {
  std::optional<std::string> login_name;
  std::optional<std::string> full_name;
  std::optional<std::vector<std::string>> groups;
  std::optional<std::string> password;
  std::optional<std::string> current_password;
  std::optional<std::string> new_password;
};

// Parses a JSON object body. nullopt with `error` set for malformed JSON, a non-object, a field
// of the wrong type, or a field beyond the limits above.
std::optional<UserBody> parse_user_body(const std::string& body, std::string& error);

// Why a login name cannot be used ("" when it can): empty, too long, control characters, a ':'
// (Basic credentials could never carry it), a leading '$' (logins double as ACL roles, so a user
// named "$admins" would be an administrator), or the reserved "$current".
std::string login_refusal(std::string_view login);

// EventStore's UserDataHttpFormated: loginName, fullName, groups, dateLastUpdated, disabled and
// the command links under `base_url`.
std::string user_data_json(const UserRecord& user, int64_t updated_ms, const std::string& base_url);
// {"loginName":...,"success":...,"error":...} (UpdateResult).
std::string update_result_json(const std::string& login, UsersError error);
// {"data":<data_json>,"success":true,"error":"Success"}, or without data for a failure.
std::string details_result_json(const std::optional<std::string>& data_json, UsersError error);

class UsersApi {
 public:
  UsersApi(Engine& engine, std::function<std::optional<LeaderHttp>()> leader_http);
  void register_routes(Router& router);

  // A user's latest record as stored, with its event number and time.
  struct Stored {
    UsersError error = UsersError::Success;
    UserRecord user;
    int64_t event_number = -1;
    int64_t updated_ms = 0;
  };

 private:
  // A change to a stored record; returns a refusal, or nullopt to write the changed record.
  using Change = std::function<std::optional<Reply>(UserRecord&)>;

  Reply list(const Request& request);
  Reply get(const Request& request, const std::string& login);
  Reply create(const Request& request);
  Reply update(const Request& request, const std::string& login, const std::string& event_type,
               const Change& change);
  Reply remove(const Request& request, const std::string& login);
  Reply change_password(const Request& request, const std::string& login);

  // nullopt when this node leads; otherwise the request passed on to the leader (or a 503).
  std::optional<Reply> on_leader(const Request& request) const;
  Stored load(const std::string& login) const;
  std::optional<std::vector<std::string>> list_logins() const;
  Reply write_record(const Request& request, const UserRecord& user, int64_t expected_version,
                     const std::string& event_type);
  Reply append_reply(const Request& request, const std::string& login,
                     const std::optional<WriteResult>& result) const;

  Engine& engine_;
  const std::function<std::optional<LeaderHttp>()> leader_http_;
};

}  // namespace chorus::http
