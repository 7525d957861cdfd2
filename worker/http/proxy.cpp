// HTTP proxy to the leader (Poco's HTTP client).
#include "worker/http/proxy.hpp"

#include "common/tls.hpp"

#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/String.h>

#include <istream>

namespace chorus::http {
namespace {

// Hop-by-hop headers, and those Poco sets from the body it sends.
bool copied(const std::string& name) {
  static const char* kSkipped[] = {"Connection", "Keep-Alive",     "Transfer-Encoding", "TE",
                                   "Upgrade",    "Content-Length", "Proxy-Connection"};
  for (const char* skip : kSkipped) {
    if (Poco::icompare(name, std::string(skip)) == 0) return false;
  }
  return true;
}

// Reads the leader's body, at most `limit` bytes; false when there was more.
bool read_bounded(std::istream& in, std::string& out, size_t limit) {
  char buffer[16 * 1024];
  while (in) {
    in.read(buffer, sizeof buffer);
    const auto got = static_cast<size_t>(in.gcount());
    if (out.size() + got > limit) return false;
    out.append(buffer, got);
  }
  return true;
}

}  // namespace

Reply proxy_to_leader(const std::string& leader, const Request& request,
                      const Poco::Net::Context::Ptr& tls) {
  const auto colon = leader.rfind(':');
  if (colon == std::string::npos) return text_reply(503, "Server Is Not Ready");
  try {
    // Over TLS the budget is split three ways (see make_http_session); the leader still gets
    // kProxyTimeoutMs to answer.
    const int budget_ms = tls.isNull() ? kProxyTimeoutMs : 3 * kProxyTimeoutMs;
    const auto session_ptr = tls::make_http_session(
        leader.substr(0, colon), static_cast<uint16_t>(std::stoi(leader.substr(colon + 1))), tls,
        budget_ms);
    Poco::Net::HTTPClientSession& session = *session_ptr;
    std::string target = request.path;
    if (!request.raw_query.empty()) target += "?" + request.raw_query;
    Poco::Net::HTTPRequest out(request.method, target, Poco::Net::HTTPMessage::HTTP_1_1);
    for (const auto& [name, value] : request.headers) {
      if (copied(name)) out.set(name, value);
    }
    if (const auto host = request.header("Host")) out.set("X-Forwarded-Host", *host);
    out.setContentLength(static_cast<std::streamsize>(request.body.size()));
    session.sendRequest(out) << request.body;
    Poco::Net::HTTPResponse in;
    std::istream& body = session.receiveResponse(in);
    Reply reply;
    reply.status = static_cast<int>(in.getStatus());
    reply.reason = in.getReason();
    if (!read_bounded(body, reply.body, kProxiedReplyBytesMax)) {
      return text_reply(
          502, "The leader's answer exceeds " + std::to_string(kProxiedReplyBytesMax) + " bytes");
    }
    for (const auto& [name, value] : in) {
      if (!copied(name) || Poco::icompare(name, std::string("Content-Type")) == 0) continue;
      if (name.rfind("Access-Control-", 0) == 0) continue;  // the server adds its own
      reply.headers[name] = value;
    }
    if (in.has("Content-Type")) reply.content_type = in.getContentType();
    return reply;
  } catch (const std::exception&) {
    return text_reply(503, "Server Is Not Ready");
  }
}

}  // namespace chorus::http
