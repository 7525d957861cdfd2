// The /users routes (see users_api.hpp). Rules follow EventStore's UserManagementService and
// its authorization policy: `$admins` for everything except reading one's own record and
// changing one's own password (which needs the current one). Refusals are 401 as in EventStore.
#include "worker/http/users_api.hpp"

#include "worker/engine/engine.hpp"
#include "worker/http/engine_wait.hpp"
#include "worker/http/feed.hpp"
#include "worker/http/limits.hpp"
#include "worker/http/streams_api.hpp"

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/URI.h>

#include <algorithm>
#include <cctype>
#include <set>
#include <sstream>

namespace chorus::http {
namespace {

constexpr const char* kUserUpdatedEventType = "$UserUpdated";
// The last record of a deleted user: disabled, so that no node can authenticate with it even
// before the soft delete that follows is applied, and its write clears every credential cache.
constexpr const char* kUserDeletedEventType = "$UserDeleted";
constexpr const char* kCurrentUser = "$current";

Principal system_principal() { return Principal{"$system", {"$admins"}}; }

std::string stringify(const Poco::JSON::Object& object) {
  std::ostringstream out;
  object.stringify(out);
  return out.str();
}

std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

std::string user_path(const std::string& login) {
  std::string escaped;
  Poco::URI::encode(login, "/?#%&+ ", escaped);
  return "/users/" + escaped;
}

Reply json_result(UsersError error, std::string body) {
  Reply reply = json_reply(users_error_status(error), std::move(body));
  if (error == UsersError::Unauthorized) {
    reply.headers["WWW-Authenticate"] = "BasicCustom realm=\"ES\"";
  }
  return reply;
}

Reply update_reply(const std::string& login, UsersError error) {
  return json_result(error, update_result_json(login, error));
}

Reply bad_request(const std::string& message) { return text_reply(400, message); }

// One string field of a body: absent, a string within its limit, or an error.
bool take_string(const Poco::Dynamic::Var& value, const std::string& key, size_t limit,
                 std::optional<std::string>& out, std::string& error) {
  if (value.isEmpty()) return true;
  if (!value.isString()) {
    error = "Users request body invalid: " + key + " must be a string.";
    return false;
  }
  out = value.extract<std::string>();
  if (out->size() > limit) {
    error = "Users request body invalid: " + key + " is longer than " + std::to_string(limit) +
            " bytes.";
    return false;
  }
  return true;
}

bool take_groups(const Poco::Dynamic::Var& value, UserBody& body, std::string& error) {
  if (value.isEmpty()) return true;
  if (value.type() != typeid(Poco::JSON::Array::Ptr)) {
    error = "Users request body invalid: groups must be an array of strings.";
    return false;
  }
  const auto array = value.extract<Poco::JSON::Array::Ptr>();
  if (array->size() > kUserGroupsMax) {
    error = "Users request body invalid: more than " + std::to_string(kUserGroupsMax) + " groups.";
    return false;
  }
  std::vector<std::string> groups;
  for (size_t i = 0; i < array->size(); ++i) {
    std::optional<std::string> group;
    if (!take_string(array->get(static_cast<unsigned>(i)), "groups", kUserTextBytesMax, group,
                     error)) {
      return false;
    }
    if (!group || group->empty()) {
      error = "Users request body invalid: a group name is empty.";
      return false;
    }
    groups.push_back(std::move(*group));
  }
  body.groups = std::move(groups);
  return true;
}

}  // namespace

std::string_view users_error_name(UsersError error) {
  switch (error) {
    case UsersError::Success:
      return "Success";
    case UsersError::NotFound:
      return "NotFound";
    case UsersError::Conflict:
      return "Conflict";
    case UsersError::TryAgain:
      return "TryAgain";
    case UsersError::Unauthorized:
      return "Unauthorized";
    default:
      return "Error";
  }
}

int users_error_status(UsersError error) {
  switch (error) {
    case UsersError::Success:
      return 200;
    case UsersError::NotFound:
      return 404;
    case UsersError::Conflict:
      return 409;
    case UsersError::TryAgain:
      return 408;
    case UsersError::Unauthorized:
      return 401;
    default:
      return 500;
  }
}

std::optional<UserBody> parse_user_body(const std::string& body, std::string& error) {
  Poco::Dynamic::Var root;
  try {
    Poco::JSON::Parser parser;
    root = parser.parse(body);
  } catch (const Poco::Exception& e) {
    error = "Malformed JSON: " + e.displayText();
    return std::nullopt;
  }
  if (root.type() != typeid(Poco::JSON::Object::Ptr)) {
    error = "Users request body invalid: expected a JSON object.";
    return std::nullopt;
  }
  const auto object = root.extract<Poco::JSON::Object::Ptr>();
  UserBody parsed;
  for (const auto& [key, value] : *object) {
    const std::string name = lower(key);
    bool ok = true;
    if (name == "loginname") {
      ok = take_string(value, key, kUserTextBytesMax, parsed.login_name, error);
    } else if (name == "fullname") {
      ok = take_string(value, key, kUserTextBytesMax, parsed.full_name, error);
    } else if (name == "password") {
      ok = take_string(value, key, kUserPasswordBytesMax, parsed.password, error);
    } else if (name == "currentpassword") {
      ok = take_string(value, key, kUserPasswordBytesMax, parsed.current_password, error);
    } else if (name == "newpassword") {
      ok = take_string(value, key, kUserPasswordBytesMax, parsed.new_password, error);
    } else if (name == "groups") {
      ok = take_groups(value, parsed, error);
    }
    if (!ok) return std::nullopt;
  }
  return parsed;
}

std::string login_refusal(std::string_view login) {
  if (login.empty()) return "The login name is empty.";
  if (login.size() > kUserTextBytesMax) {
    return "The login name is longer than " + std::to_string(kUserTextBytesMax) + " bytes.";
  }
  if (login == kCurrentUser) return "The login name $current is reserved.";
  if (login.front() == '$') return "A login name cannot start with '$' (reserved for roles).";
  for (const char c : login) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      return "The login name contains a control character.";
    }
    if (c == ':') return "A login name cannot contain ':' (Basic credentials could not carry it).";
  }
  return "";
}

std::string user_data_json(const UserRecord& user, int64_t updated_ms,
                           const std::string& base_url) {
  Poco::JSON::Object data;
  data.set("loginName", user.login);
  data.set("fullName", user.full_name);
  Poco::JSON::Array groups;
  for (const auto& group : user.groups) groups.add(group);
  data.set("groups", groups);
  if (updated_ms > 0) data.set("dateLastUpdated", iso_time_ms(updated_ms));
  data.set("disabled", user.disabled);
  const std::string self = base_url + user_path(user.login);
  Poco::JSON::Array links;
  auto link = [&](const std::string& href, const char* rel) {
    Poco::JSON::Object l;
    l.set("href", href);
    l.set("rel", rel);
    links.add(l);
  };
  link(self + "/command/reset-password", "reset-password");
  link(self + "/command/change-password", "change-password");
  link(self, "edit");
  link(self, "delete");
  if (user.disabled) {
    link(self + "/command/enable", "enable");
  } else {
    link(self + "/command/disable", "disable");
  }
  data.set("links", links);
  return stringify(data);
}

std::string update_result_json(const std::string& login, UsersError error) {
  Poco::JSON::Object o;
  o.set("loginName", login);
  o.set("success", error == UsersError::Success);
  o.set("error", std::string(users_error_name(error)));
  return stringify(o);
}

std::string details_result_json(const std::optional<std::string>& data_json, UsersError error) {
  std::string out = "{";
  if (data_json) out += "\"data\":" + *data_json + ",";
  out += std::string("\"success\":") + (error == UsersError::Success ? "true" : "false");
  out += ",\"error\":\"" + std::string(users_error_name(error)) + "\"}";
  return out;
}

UsersApi::UsersApi(Engine& engine, std::function<std::optional<LeaderHttp>()> leader_http)
    : engine_(engine), leader_http_(std::move(leader_http)) {}

void UsersApi::register_routes(Router& router) {
  auto admin_only = [](const Request& r, const std::string& login) -> std::optional<Reply> {
    if (r.who.is_admin()) return std::nullopt;
    return update_reply(login, UsersError::Unauthorized);
  };
  router.add("GET", "/users", [this](Request& r) { return list(r); });
  router.add("POST", "/users", [this](Request& r) { return create(r); });
  // Before /users/{login}: the router takes the first route that matches.
  router.add("GET", "/users/$current", [this](Request& r) {
    if (r.who.anonymous()) {
      return json_result(UsersError::Unauthorized,
                         details_result_json(std::nullopt, UsersError::Unauthorized));
    }
    return get(r, r.who.login);
  });
  router.add("GET", "/users/{login}", [this](Request& r) { return get(r, r.param("login")); });
  router.add("PUT", "/users/{login}", [this, admin_only](Request& r) {
    if (auto refused = admin_only(r, r.param("login"))) return *refused;
    std::string error;
    const std::optional<UserBody> body = parse_user_body(r.body, error);
    if (!body) return bad_request(error);
    return update(r, r.param("login"), kUserUpdatedEventType,
                  [&](UserRecord& user) -> std::optional<Reply> {
                    if (body->full_name) user.full_name = *body->full_name;
                    if (body->groups) user.groups = *body->groups;
                    return std::nullopt;
                  });
  });
  router.add("DELETE", "/users/{login}", [this, admin_only](Request& r) {
    if (auto refused = admin_only(r, r.param("login"))) return *refused;
    return remove(r, r.param("login"));
  });
  for (const bool disable : {false, true}) {
    const std::string path =
        disable ? "/users/{login}/command/disable" : "/users/{login}/command/enable";
    router.add("POST", path, [this, admin_only, disable](Request& r) {
      if (auto refused = admin_only(r, r.param("login"))) return *refused;
      return update(r, r.param("login"), kUserUpdatedEventType, [disable](UserRecord& user) {
        user.disabled = disable;
        return std::optional<Reply>();
      });
    });
  }
  router.add("POST", "/users/{login}/command/reset-password", [this, admin_only](Request& r) {
    if (auto refused = admin_only(r, r.param("login"))) return *refused;
    std::string error;
    const std::optional<UserBody> body = parse_user_body(r.body, error);
    if (!body) return bad_request(error);
    if (!body->new_password || body->new_password->empty()) {
      return bad_request("Users request body invalid: newPassword is required.");
    }
    return update(r, r.param("login"), kUserUpdatedEventType, [&](UserRecord& user) {
      const bool disabled = user.disabled;
      user = make_user(user.login, user.full_name, user.groups, *body->new_password);
      user.disabled = disabled;
      return std::optional<Reply>();
    });
  });
  router.add("POST", "/users/{login}/command/change-password",
             [this](Request& r) { return change_password(r, r.param("login")); });
}

std::optional<Reply> UsersApi::on_leader(const Request& request) const {
  const NodeStatus status = engine_.status();
  if (status.is_leader) return std::nullopt;
  return not_handled_reply(
      status.leader_id ? NotHandledReason::NotLeader : NotHandledReason::NotReady, request,
      leader_http_);
}

UsersApi::Stored UsersApi::load(const std::string& login) const {
  Stored stored;
  const std::optional<ReadStreamResult> result = wait_for_engine<ReadStreamResult>([&](auto done) {
    engine_.read_stream(system_principal(), user_stream(login), -1, 1, false, false,
                        std::move(done));
  });
  if (!result) {
    stored.error = UsersError::TryAgain;
    return stored;
  }
  if (result->status == ReadStreamStatus::NoStream ||
      result->status == ReadStreamStatus::StreamDeleted ||
      (result->status == ReadStreamStatus::Success && result->events.empty())) {
    stored.error = UsersError::NotFound;
    return stored;
  }
  if (result->status != ReadStreamStatus::Success || !result->events.front().event) {
    stored.error = UsersError::Error;
    return stored;
  }
  const EventRecord& record = *result->events.front().event;
  std::optional<UserRecord> user = user_from_json(record.data);
  if (!user) {
    stored.error = UsersError::Error;
    return stored;
  }
  stored.user = std::move(*user);
  stored.event_number = record.number;
  stored.updated_ms = record.created_ms;
  return stored;
}

std::optional<std::vector<std::string>> UsersApi::list_logins() const {
  std::set<std::string> logins;  // sorted and distinct: a re-created user has two entries
  int64_t from = 0;
  while (from < kUsersListedMax) {
    const int32_t count =
        static_cast<int32_t>(std::min<int64_t>(kFeedCountMax, kUsersListedMax - from));
    const std::optional<ReadStreamResult> page = wait_for_engine<ReadStreamResult>([&](auto done) {
      engine_.read_stream(system_principal(), kUsersStream, from, count, true, false,
                          std::move(done));
    });
    if (!page) return std::nullopt;
    if (page->status == ReadStreamStatus::NoStream) break;
    if (page->status != ReadStreamStatus::Success) return std::nullopt;
    for (const ResolvedEvent& entry : page->events) {
      if (entry.event && login_refusal(entry.event->data).empty()) {
        logins.insert(entry.event->data);
      }
    }
    if (page->is_end_of_stream || page->events.empty()) break;
    from = page->next_event_number;
  }
  return std::vector<std::string>(logins.begin(), logins.end());
}

Reply UsersApi::list(const Request& request) {
  if (!request.who.is_admin()) {
    return json_result(UsersError::Unauthorized,
                       details_result_json(std::nullopt, UsersError::Unauthorized));
  }
  const std::optional<std::vector<std::string>> logins = list_logins();
  if (!logins) return json_result(UsersError::Error, details_result_json("[]", UsersError::Error));
  std::string data = "[";
  for (const std::string& login : *logins) {
    const Stored stored = load(login);
    if (stored.error == UsersError::NotFound) continue;  // deleted
    if (stored.error != UsersError::Success) {
      return json_result(stored.error, details_result_json(std::nullopt, stored.error));
    }
    if (data.size() > 1) data += ",";
    data += user_data_json(stored.user, stored.updated_ms, request.base_url);
  }
  data += "]";
  return json_result(UsersError::Success, details_result_json(data, UsersError::Success));
}

Reply UsersApi::get(const Request& request, const std::string& login) {
  const bool self = !request.who.anonymous() && request.who.login == login;
  if (!self && !request.who.is_admin()) {
    return json_result(UsersError::Unauthorized,
                       details_result_json(std::nullopt, UsersError::Unauthorized));
  }
  const Stored stored = load(login);
  if (stored.error != UsersError::Success) {
    return json_result(stored.error, details_result_json(std::nullopt, stored.error));
  }
  return json_result(
      UsersError::Success,
      details_result_json(user_data_json(stored.user, stored.updated_ms, request.base_url),
                          UsersError::Success));
}

Reply UsersApi::create(const Request& request) {
  if (!request.who.is_admin()) return update_reply("", UsersError::Unauthorized);
  std::string error;
  const std::optional<UserBody> body = parse_user_body(request.body, error);
  if (!body) return bad_request(error);
  const std::string login = body->login_name.value_or("");
  if (const std::string why = login_refusal(login); !why.empty()) return bad_request(why);
  if (!body->password || body->password->empty()) {
    return bad_request("Users request body invalid: password is required.");
  }
  if (auto elsewhere = on_leader(request)) return *elsewhere;
  const Stored existing = load(login);
  Reply reply;
  if (existing.error == UsersError::Success) {
    // A retried create with the same password succeeds, as in EventStore.
    const bool same = verify_password(existing.user, *body->password);
    reply = update_reply(login, same ? UsersError::Success : UsersError::Conflict);
  } else if (existing.error != UsersError::NotFound) {
    return update_reply(login, existing.error);
  } else {
    const UserRecord user =
        make_user(login, body->full_name.value_or(""),
                  body->groups.value_or(std::vector<std::string>{}), *body->password);
    reply = write_record(request, user, kExpectedNoStream, kUserEventType);
    if (reply.status != 200) return reply;
    NewEvent entry{random_guid(), kUserEventType, false, false, login, ""};
    const std::optional<WriteResult> indexed = wait_for_engine<WriteResult>([&](auto done) {
      engine_.append(system_principal(), kUsersStream, kExpectedAny, {entry}, std::move(done));
    });
    reply = append_reply(request, login, indexed);
  }
  if (reply.status == 200) {
    reply.status = 201;
    reply.headers["Location"] = request.base_url + user_path(login);
  }
  return reply;
}

Reply UsersApi::update(const Request& request, const std::string& login,
                       const std::string& event_type, const Change& change) {
  if (auto elsewhere = on_leader(request)) return *elsewhere;
  Stored stored = load(login);
  if (stored.error != UsersError::Success) return update_reply(login, stored.error);
  if (std::optional<Reply> refused = change(stored.user)) return *refused;
  return write_record(request, stored.user, stored.event_number, event_type);
}

Reply UsersApi::remove(const Request& request, const std::string& login) {
  if (auto elsewhere = on_leader(request)) return *elsewhere;
  Stored stored = load(login);
  if (stored.error != UsersError::Success) return update_reply(login, stored.error);
  stored.user.disabled = true;
  Reply disabled = write_record(request, stored.user, stored.event_number, kUserDeletedEventType);
  if (disabled.status != 200) return disabled;
  // A soft delete, as EventStore's: the login can be created again later.
  const std::optional<DeleteResult> result = wait_for_engine<DeleteResult>([&](auto done) {
    engine_.delete_stream(system_principal(), user_stream(login), stored.event_number + 1, false,
                          std::move(done));
  });
  std::optional<WriteResult> as_write;
  if (result) {
    as_write.emplace();
    as_write->not_handled = result->not_handled;
    as_write->result = result->result;
  }
  return append_reply(request, login, as_write);
}

Reply UsersApi::change_password(const Request& request, const std::string& login) {
  const bool self = !request.who.anonymous() && request.who.login == login;
  if (!self && !request.who.is_admin()) return update_reply(login, UsersError::Unauthorized);
  std::string error;
  const std::optional<UserBody> body = parse_user_body(request.body, error);
  if (!body) return bad_request(error);
  if (!body->current_password || !body->new_password || body->new_password->empty()) {
    return bad_request("Users request body invalid: currentPassword and newPassword are required.");
  }
  return update(request, login, kUserUpdatedEventType, [&](UserRecord& user) {
    if (!verify_password(user, *body->current_password)) {
      return std::optional<Reply>(update_reply(login, UsersError::Unauthorized));
    }
    const bool disabled = user.disabled;
    user = make_user(user.login, user.full_name, user.groups, *body->new_password);
    user.disabled = disabled;
    return std::optional<Reply>();
  });
}

Reply UsersApi::write_record(const Request& request, const UserRecord& user,
                             int64_t expected_version, const std::string& event_type) {
  NewEvent event{random_guid(), event_type, true, false, user_to_json(user), ""};
  const std::optional<WriteResult> result = wait_for_engine<WriteResult>([&](auto done) {
    engine_.append(system_principal(), user_stream(user.login), expected_version, {event},
                   std::move(done));
  });
  return append_reply(request, user.login, result);
}

Reply UsersApi::append_reply(const Request& request, const std::string& login,
                             const std::optional<WriteResult>& result) const {
  if (!result) return update_reply(login, UsersError::TryAgain);
  if (result->not_handled != NotHandledReason::None) {
    return not_handled_reply(result->not_handled, request, leader_http_);
  }
  switch (result->result) {
    case OperationResult::Success:
      return update_reply(login, UsersError::Success);
    case OperationResult::WrongExpectedVersion:
    case OperationResult::StreamDeleted:
      return update_reply(login, UsersError::Conflict);
    case OperationResult::PrepareTimeout:
    case OperationResult::CommitTimeout:
    case OperationResult::ForwardTimeout:
      return update_reply(login, UsersError::TryAgain);
    case OperationResult::AccessDenied:
      return update_reply(login, UsersError::Unauthorized);
    default:
      return update_reply(login, UsersError::Error);
  }
}

}  // namespace chorus::http
