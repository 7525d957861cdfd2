// Proves the pure parts of the users API: request bodies parsed as EventStore's binder does
// (case-insensitive keys) with every wrong type or oversized field refused, the login-name rules
// (a login that could act as a role or never log in is refused), and EventStore's JSON shapes of
// user details and update results.
#include "worker/http/users_api.hpp"

#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <gtest/gtest.h>

#include <string>

namespace chorus::http {
namespace {

Poco::JSON::Object::Ptr parse_object(const std::string& text) {
  Poco::JSON::Parser parser;
  return parser.parse(text).extract<Poco::JSON::Object::Ptr>();
}

TEST(UsersBody, ReadsEveryFieldWithAnyKeyCase) {
  std::string error;
  const auto body = parse_user_body(
      R"({"LoginName":"ann","fullname":"Ann A","GROUPS":["a","$ops"],"password":"p",)"
      R"("currentPassword":"c","NewPassword":"n","unknown":1})",
      error);
  ASSERT_TRUE(body) << error;
  EXPECT_EQ(body->login_name, "ann");
  EXPECT_EQ(body->full_name, "Ann A");
  ASSERT_TRUE(body->groups);
  EXPECT_EQ(*body->groups, (std::vector<std::string>{"a", "$ops"}));
  EXPECT_EQ(body->password, "p");
  EXPECT_EQ(body->current_password, "c");
  EXPECT_EQ(body->new_password, "n");
}

TEST(UsersBody, AbsentFieldsStayUnset) {
  std::string error;
  const auto body = parse_user_body(R"({"fullName":"x"})", error);
  ASSERT_TRUE(body) << error;
  EXPECT_FALSE(body->login_name);
  EXPECT_FALSE(body->groups);
  EXPECT_FALSE(body->password);
}

TEST(UsersBody, RefusesMalformedJsonWrongTypesAndOversizedFields) {
  const std::string long_text(kUserTextBytesMax + 1, 'x');
  std::string too_many_groups = "[";
  for (size_t i = 0; i <= kUserGroupsMax; ++i)
    too_many_groups += (i ? ",\"g" : "\"g") + std::to_string(i) + "\"";
  too_many_groups += "]";
  for (const std::string& text :
       {std::string("{\"loginName\":"), std::string("[1,2]"), std::string("\"text\""),
        std::string(R"({"loginName":5})"), std::string(R"({"groups":"admins"})"),
        std::string(R"({"groups":[1]})"), std::string(R"({"groups":[""]})"),
        std::string(R"({"password":{"a":1}})"), "{\"fullName\":\"" + long_text + "\"}",
        "{\"groups\":" + too_many_groups + "}",
        "{\"newPassword\":\"" + std::string(kUserPasswordBytesMax + 1, 'p') + "\"}"}) {
    std::string error;
    EXPECT_FALSE(parse_user_body(text, error)) << text;
    EXPECT_FALSE(error.empty()) << text;
  }
}

TEST(UsersLogin, AcceptsOrdinaryNames) {
  for (const char* login : {"ann", "Ann.Smith", "user@example.com", "with space", "é"}) {
    EXPECT_EQ(login_refusal(login), "") << login;
  }
}

TEST(UsersLogin, RefusesNamesThatCouldActAsRolesOrNeverLogIn) {
  for (const std::string& login :
       {std::string(""), std::string("$admins"), std::string("$current"), std::string("a:b"),
        std::string("tab\there"), std::string("nul\0x", 5),
        std::string(kUserTextBytesMax + 1, 'a')}) {
    EXPECT_NE(login_refusal(login), "") << login;
  }
}

TEST(UsersJson, UserDataHasEventStoreFieldsAndLinks) {
  UserRecord user;
  user.login = "ann smith";
  user.full_name = "Ann";
  user.groups = {"$ops", "dev"};
  user.disabled = true;
  user.salt_b64 = "c2FsdA==";
  user.hash_b64 = "aGFzaA==";
  const auto o = parse_object(user_data_json(user, 1'700'000'000'123, "http://h:1"));
  EXPECT_EQ(o->getValue<std::string>("loginName"), "ann smith");
  EXPECT_EQ(o->getValue<std::string>("fullName"), "Ann");
  EXPECT_EQ(o->getArray("groups")->size(), 2u);
  EXPECT_TRUE(o->getValue<bool>("disabled"));
  EXPECT_EQ(o->getValue<std::string>("dateLastUpdated").rfind("2023-11-14T22:13:20.123", 0), 0u);
  EXPECT_FALSE(o->has("hash")) << "the password hash never leaves the node";
  EXPECT_FALSE(o->has("salt"));
  const auto links = o->getArray("links");
  ASSERT_EQ(links->size(), 5u);
  EXPECT_EQ(links->getObject(0)->getValue<std::string>("href"),
            "http://h:1/users/ann%20smith/command/reset-password");
  EXPECT_EQ(links->getObject(4)->getValue<std::string>("rel"), "enable");
  user.disabled = false;
  const auto enabled = parse_object(user_data_json(user, 0, "http://h:1"));
  EXPECT_FALSE(enabled->has("dateLastUpdated"));
  EXPECT_EQ(enabled->getArray("links")->getObject(4)->getValue<std::string>("rel"), "disable");
}

TEST(UsersJson, ResultShapes) {
  const auto ok = parse_object(update_result_json("ann", UsersError::Success));
  EXPECT_EQ(ok->getValue<std::string>("loginName"), "ann");
  EXPECT_TRUE(ok->getValue<bool>("success"));
  EXPECT_EQ(ok->getValue<std::string>("error"), "Success");
  const auto conflict = parse_object(update_result_json("ann", UsersError::Conflict));
  EXPECT_FALSE(conflict->getValue<bool>("success"));
  EXPECT_EQ(conflict->getValue<std::string>("error"), "Conflict");
  const auto details = parse_object(details_result_json("[]", UsersError::Success));
  EXPECT_EQ(details->getArray("data")->size(), 0u);
  const auto missing = parse_object(details_result_json(std::nullopt, UsersError::NotFound));
  EXPECT_FALSE(missing->has("data"));
  EXPECT_EQ(missing->getValue<std::string>("error"), "NotFound");
}

TEST(UsersJson, ErrorsMapToEventStoreStatusCodes) {
  EXPECT_EQ(users_error_status(UsersError::Success), 200);
  EXPECT_EQ(users_error_status(UsersError::NotFound), 404);
  EXPECT_EQ(users_error_status(UsersError::Conflict), 409);
  EXPECT_EQ(users_error_status(UsersError::Unauthorized), 401);
  EXPECT_EQ(users_error_status(UsersError::TryAgain), 408);
  EXPECT_EQ(users_error_status(UsersError::Error), 500);
}

}  // namespace
}  // namespace chorus::http
