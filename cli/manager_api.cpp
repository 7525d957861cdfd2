// Manager API and gossip requests (see manager_api.hpp).
#include "cli/manager_api.hpp"

#include <Poco/Base64Encoder.h>
#include <Poco/JSON/Parser.h>
#include <Poco/Net/HTTPBasicCredentials.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/StreamCopier.h>
#include <Poco/URI.h>

#include <algorithm>
#include <sstream>

namespace chorus::cli {
namespace {

Poco::Net::HTTPRequest make_request(const std::string& method, const std::string& path,
                                    const std::optional<client::Credentials>& creds) {
  Poco::Net::HTTPRequest request(method, path, Poco::Net::HTTPMessage::HTTP_1_1);
  request.set("Accept", "application/json");
  if (creds) Poco::Net::HTTPBasicCredentials(creds->login, creds->password).authenticate(request);
  if (method == Poco::Net::HTTPRequest::HTTP_POST) request.setContentLength(0);
  return request;
}

}  // namespace

HttpReply http_request(const client::Endpoint& endpoint, const std::string& method,
                       const std::string& path, const std::optional<client::Credentials>& creds,
                       int timeout_ms) {
  try {
    Poco::Net::HTTPClientSession session(endpoint.host, endpoint.port);
    session.setTimeout(Poco::Timespan(static_cast<Poco::Timespan::TimeDiff>(timeout_ms) * 1000));
    Poco::Net::HTTPRequest request = make_request(method, path, creds);
    session.sendRequest(request);
    Poco::Net::HTTPResponse response;
    std::istream& body = session.receiveResponse(response);
    HttpReply reply;
    reply.status = static_cast<int>(response.getStatus());
    std::ostringstream text;
    Poco::StreamCopier::copyStream(body, text);
    reply.body = text.str();
    if (reply.body.size() > kHttpBodyBytesMax) throw Failure("answer too large");
    return reply;
  } catch (const Poco::Exception& e) {
    throw Failure(method + " http://" + client::to_string(endpoint) + path + ": " +
                  e.displayText());
  }
}

void http_stream_lines(const client::Endpoint& endpoint, const std::string& path,
                       const std::optional<client::Credentials>& creds,
                       const std::function<void(const std::string&)>& on_line) {
  try {
    Poco::Net::HTTPClientSession session(endpoint.host, endpoint.port);
    // The manager sends a keep-alive comment every 5 s, so a silent minute means it is gone.
    session.setTimeout(Poco::Timespan(60, 0));
    Poco::Net::HTTPRequest request = make_request("GET", path, creds);
    session.sendRequest(request);
    Poco::Net::HTTPResponse response;
    std::istream& body = session.receiveResponse(response);
    if (response.getStatus() != Poco::Net::HTTPResponse::HTTP_OK) {
      std::ostringstream text;
      Poco::StreamCopier::copyStream(body, text);
      throw Failure("HTTP " + std::to_string(static_cast<int>(response.getStatus())) + ": " +
                    text.str());
    }
    std::string line;
    while (std::getline(body, line)) on_line(line);
  } catch (const Poco::Exception& e) {
    throw Failure("GET http://" + client::to_string(endpoint) + path + ": " + e.displayText());
  }
}

Poco::JSON::Object::Ptr json_object(const std::string& body, const std::string& what) {
  try {
    Poco::JSON::Parser parser;
    Poco::Dynamic::Var parsed = parser.parse(body);
    if (parsed.type() == typeid(Poco::JSON::Object::Ptr)) {
      return parsed.extract<Poco::JSON::Object::Ptr>();
    }
  } catch (const Poco::Exception&) {
    // Reported below.
  }
  throw Failure(what + ": the answer is not a JSON object");
}

SeedGossip first_gossip(const Context& ctx) {
  std::string errors;
  for (const client::Endpoint& seed : ctx.seeds) {
    try {
      HttpReply reply =
          http_request(seed, "GET", "/gossip?format=json", std::nullopt, kHttpTimeoutMs);
      std::string error;
      if (reply.status == 200) {
        if (auto info = cluster_info_from_json(reply.body, &error)) return {*info, seed};
      } else {
        error = "HTTP " + std::to_string(reply.status);
      }
      errors += "\n  " + client::to_string(seed) + ": " + error;
    } catch (const Failure& e) {
      errors += "\n  " + std::string(e.what());
    }
  }
  throw Failure("no seed answered with the cluster's gossip:" + errors);
}

std::vector<ManagerNodes> find_managers(const Context& ctx) {
  std::vector<client::Endpoint> candidates = ctx.seeds;
  try {
    const SeedGossip sg = first_gossip(ctx);
    for (const MemberInfo& m : sg.gossip.members) {
      if (m.state != "Manager" || m.external_http_port <= 0) continue;
      client::Endpoint e{m.external_http_ip, static_cast<uint16_t>(m.external_http_port)};
      if (std::find(candidates.begin(), candidates.end(), e) == candidates.end()) {
        candidates.push_back(e);
      }
    }
  } catch (const Failure&) {
    // No gossip: the seeds alone are asked.
  }
  std::vector<ManagerNodes> managers;
  std::string errors;
  for (const client::Endpoint& e : candidates) {
    try {
      HttpReply reply = http_request(e, "GET", "/api/nodes", ctx.credentials, kHttpTimeoutMs);
      if (reply.status != 200) {
        errors += "\n  " + client::to_string(e) + ": HTTP " + std::to_string(reply.status);
        continue;
      }
      Poco::JSON::Object::Ptr doc = json_object(reply.body, client::to_string(e) + "/api/nodes");
      if (!doc->has("nodes")) continue;
      // The same manager may be reachable as a seed and as a gossip member under another
      // address: it is listed once, by the external HTTP endpoint it reports.
      const std::string key = doc->getObject("manager")->optValue<std::string>("extHttp", "");
      const bool seen = std::any_of(managers.begin(), managers.end(), [&](const ManagerNodes& m) {
        return !key.empty() &&
               m.document->getObject("manager")->optValue<std::string>("extHttp", "") == key;
      });
      if (!seen) managers.push_back({e, doc});
    } catch (const Failure& f) {
      errors += "\n  " + std::string(f.what());
    }
  }
  if (managers.empty()) throw Failure("no manager answered:" + errors);
  return managers;
}

ManagerNodes manager_of(const Context& ctx, const std::string& name) {
  for (ManagerNodes& m : find_managers(ctx)) {
    Poco::JSON::Array::Ptr nodes = m.document->getArray("nodes");
    for (size_t i = 0; nodes && i < nodes->size(); ++i) {
      if (nodes->getObject(static_cast<unsigned>(i))->optValue<std::string>("name", "") == name) {
        return m;
      }
    }
  }
  throw Failure("no manager runs a node named '" + name + "'");
}

// A node name as one URL path segment.
std::string path_segment(const std::string& name) {
  std::string out;
  Poco::URI::encode(name, "/?#&=+%", out);
  return out;
}

// POSTs `path` to `manager` with the command's credentials; throws Failure unless 200.
Poco::JSON::Object::Ptr post_action(const Context& ctx, const client::Endpoint& manager,
                                    const std::string& path, int timeout_ms) {
  if (!ctx.credentials) throw UsageError("this command needs --user/--password (or CHORUS_USER)");
  HttpReply reply = http_request(manager, "POST", path, ctx.credentials, timeout_ms);
  Poco::JSON::Object::Ptr body;
  try {
    body = json_object(reply.body, path);
  } catch (const Failure&) {
    body = new Poco::JSON::Object;
  }
  if (reply.status != 200) {
    const std::string error = body->optValue<std::string>("error", reply.body);
    throw Failure(path + ": HTTP " + std::to_string(reply.status) + ": " + error);
  }
  return body;
}

}  // namespace chorus::cli
