// HttpServer (see http_server.hpp): a WatchedHttpServer (common/http_serving.hpp: Poco's
// TCPServer with HTTP connections that a ConnectionWatch times), and one request handler that turns
// the Poco request into a Request, authenticates Basic credentials, routes it, and writes the Reply
// with CORS headers. Limits from limits.hpp.
#include "worker/http/http_server.hpp"

#include "common/guid.hpp"
#include "common/http_serving.hpp"
#include "common/thread_name.hpp"
#include "worker/engine/engine.hpp"
#include "worker/http/backup_api.hpp"
#include "worker/http/engine_wait.hpp"
#include "worker/http/headers.hpp"
#include "worker/http/health_responder.hpp"
#include "worker/http/limits.hpp"
#include "worker/http/node_api.hpp"
#include "worker/http/projections_api.hpp"
#include "worker/http/router.hpp"
#include "worker/http/streams_api.hpp"
#include "worker/http/subscriptions_api.hpp"
#include "worker/http/users_api.hpp"

#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/NetException.h>
#include <Poco/Net/SecureServerSocket.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/SocketAddress.h>

#include <chrono>
#include <stdexcept>

namespace chorus::http {
namespace {

constexpr const char* kAllowHeaders =
    "Content-Type, X-Requested-With, X-Forwarded-Host, X-Forwarded-Prefix, X-PINGOTHER, "
    "Authorization, ES-LongPoll, ES-ExpectedVersion, ES-EventId, ES-EventType, ES-RequireMaster, "
    "ES-RequireLeader, ES-HardDelete, ES-ResolveLinkTos";
constexpr const char* kExposeHeaders = "Location, ES-Position, ES-CurrentVersion";

int64_t now_unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

class Dispatcher : public Poco::Net::HTTPRequestHandler {
 public:
  Dispatcher(Engine& engine, HttpNode& node, const Router& router)
      : engine_(engine), node_(node), router_(router) {}

  void handleRequest(Poco::Net::HTTPServerRequest& in,
                     Poco::Net::HTTPServerResponse& out) override {
    const auto started = std::chrono::steady_clock::now();
    Reply reply;
    std::vector<std::string> allowed;
    try {
      reply = handle(in, allowed);
    } catch (const std::exception& e) {
      reply = text_reply(500, std::string("Internal error: ") + e.what());
    }
    ConnectionWatch::io_phase();  // writing the answer, then waiting for the next request
    send(reply, allowed, out);
    if (reply.after_sent) reply.after_sent();
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    node_.request_duration_seconds().observe(seconds);
    if (in.getMethod() == "POST" && in.getURI().rfind("/streams/", 0) == 0) {
      node_.write_duration_seconds().observe(seconds);
    }
    node_.requests().fetch_add(1);
    if (reply.status >= 500) node_.requests_failed().fetch_add(1);
  }

 private:
  Reply handle(Poco::Net::HTTPServerRequest& in, std::vector<std::string>& allowed) {
    Request request;
    request.method = in.getMethod();
    if (auto refused = set_target(request, in.getURI())) return *refused;
    for (const auto& [name, value] : in) request.headers.emplace(name, value);
    // Feed links name the scheme the client used (https:// on a port with TLS).
    request.base_url = (in.secure() ? "https://" : "http://") +
                       (in.has("Host") ? in.get("Host") : in.serverAddress().toString());

    if (std::optional<Reply> refused = read_body(in, request.body)) return *refused;
    // The request has arrived; what follows waits on the engine with deadlines of its own.
    ConnectionWatch::engine_phase();
    RouteMatch match = router_.match(request.method, request.path);
    allowed = match.allowed;
    if (request.method == "OPTIONS") {
      if (allowed.empty()) return text_reply(404, "Not Found");
      Reply reply = text_reply(200, "OK");
      reply.body.clear();
      return reply;
    }
    if (match.kind == RouteMatch::Kind::NotFound) return text_reply(404, "Not Found");
    if (match.kind == RouteMatch::Kind::MethodNotAllowed) {
      Reply reply = text_reply(405, "Method Not Allowed");
      reply.headers["Allow"] = join_header_values(allowed);
      return reply;
    }
    if (std::optional<Reply> refused = authenticate(request)) return *refused;
    request.params = std::move(match.params);
    return match.route->handler(request);
  }

  // Reads the whole body (so a keep-alive connection stays in step whatever the answer), up to
  // the cap; beyond it 413, after draining a bounded amount, and the connection is closed.
  static std::optional<Reply> read_body(Poco::Net::HTTPServerRequest& in, std::string& body) {
    std::istream& stream = in.stream();
    char buffer[64 * 1024];
    size_t total = 0;
    while (stream && total <= kOversizedBodyDrainBytesMax) {
      stream.read(buffer, sizeof buffer);
      const auto got = static_cast<size_t>(stream.gcount());
      total += got;
      if (total <= kRequestBodyBytesMax) body.append(buffer, got);
    }
    if (total > kRequestBodyBytesMax) {
      body.clear();
      return text_reply(413, "Request entity too large");
    }
    return std::nullopt;
  }

  std::optional<Reply> authenticate(Request& request) {
    const std::optional<std::string> header = request.header("Authorization");
    if (!header) return std::nullopt;
    const std::optional<Credentials> credentials = parse_basic_auth(*header);
    if (!credentials) return unauthorized(header_error_text("Authorization"));
    const std::optional<AuthResult> checked = wait_for_engine<AuthResult>([&](auto done) {
      engine_.authenticate(credentials->login, credentials->password, std::move(done));
    });
    if (!checked) return text_reply(503, "Server Is Not Ready");
    if (std::optional<Reply> refused = login_refusal(*checked)) return *refused;
    request.who = std::move(*checked->principal);
    return std::nullopt;
  }

  static void send(const Reply& reply, const std::vector<std::string>& allowed,
                   Poco::Net::HTTPServerResponse& out) {
    const auto status = static_cast<Poco::Net::HTTPResponse::HTTPStatus>(reply.status);
    if (reply.reason.empty()) {
      out.setStatusAndReason(status);
    } else {
      out.setStatusAndReason(status, safe_reason_phrase(reply.reason));
    }
    out.set("Access-Control-Allow-Origin", "*");
    out.set("Access-Control-Allow-Methods", allowed.empty() ? "GET" : join_header_values(allowed));
    out.set("Access-Control-Allow-Headers", kAllowHeaders);
    out.set("Access-Control-Expose-Headers", kExposeHeaders);
    for (const auto& [name, value] : reply.headers) out.set(name, value);
    if (reply.status == 413 || reply.status >= 500 || reply.after_sent) out.setKeepAlive(false);
    if (reply.status == 204 || reply.status == 304) {
      out.setContentLength(0);
      std::ostream& head = out.send();
      if (reply.after_sent) head.flush();  // on the wire before the action runs
      return;
    }
    if (!reply.content_type.empty()) out.setContentType(reply.content_type);
    out.setContentLength64(static_cast<Poco::Int64>(reply.body.size()));
    std::ostream& body = out.send();
    body.write(reply.body.data(), static_cast<std::streamsize>(reply.body.size()));
    if (reply.after_sent) body.flush();  // on the wire before the action runs
  }

  Engine& engine_;
  HttpNode& node_;
  const Router& router_;
};

class Factory : public StoppableHandlerFactory {
 public:
  Factory(Engine& engine, HttpNode& node, const Router& router)
      : engine_(engine), node_(node), router_(router) {}
  Poco::Net::HTTPRequestHandler* createRequestHandler(
      const Poco::Net::HTTPServerRequest&) override {
    name_this_thread_once("http");
    return new Dispatcher(engine_, node_, router_);
  }

 private:
  Engine& engine_;
  HttpNode& node_;
  const Router& router_;
};

}  // namespace

HttpNode::HttpNode(NodeConfig config)
    : config_(std::move(config)),
      instance_id_(config_.instance_id.empty() ? to_string(random_guid()) : config_.instance_id),
      started_unix_ms_(now_unix_ms()),
      request_duration_seconds_(Histogram::seconds_buckets()),
      write_duration_seconds_(Histogram::seconds_buckets()) {}

struct HttpServer::Impl {
  Impl(Engine& e, std::shared_ptr<HttpNode> n, HttpServerConfig c)
      : engine(e),
        node(std::move(n)),
        config(std::move(c)),
        streams(e, node->stopping(), node->config().leader_http),
        node_api(e, *node, config.internal, config.v5_state_names),
        subscriptions(e, node->config().leader_http),
        projections(e, node->config().leader_http),
        users(e, node->config().leader_http) {
    if (health()) {
      node_api.register_health_routes(router);
      register_backup_routes(router, engine, *node);
      return;
    }
    // Both ports serve the streams API, as EventStore's do; followers pass writes on to the
    // leader's internal port.
    streams.register_routes(router);
    node_api.register_routes(router);
    subscriptions.register_routes(router);
    projections.register_routes(router);
    users.register_routes(router);
  }
  bool health() const { return !config.unix_socket_path.empty(); }

  Engine& engine;
  std::shared_ptr<HttpNode> node;
  HttpServerConfig config;
  Router router;
  StreamsApi streams;
  NodeApi node_api;
  SubscriptionsApi subscriptions;
  ProjectionsApi projections;
  UsersApi users;
  std::unique_ptr<WatchedHttpServer> server;
  std::unique_ptr<HealthResponder> responder;  // the health listener's, instead of `server`
  uint16_t bound_port = 0;
};

HttpServer::HttpServer(Engine& engine, std::shared_ptr<HttpNode> node, HttpServerConfig config)
    : impl_(std::make_unique<Impl>(engine, std::move(node), std::move(config))) {}

HttpServer::~HttpServer() { stop(); }

void HttpServer::start() {
  if (impl_->health()) {
    impl_->responder = std::make_unique<HealthResponder>(
        impl_->router, impl_->config.unix_socket_path, impl_->config.io_deadline_ms);
    impl_->responder->start();
    return;
  }
  // With a TLS context the connection threads run the handshake before the first request.
  Poco::Net::ServerSocket socket = impl_->config.tls.isNull()
                                       ? Poco::Net::ServerSocket()
                                       : Poco::Net::SecureServerSocket(impl_->config.tls);
  try {
    // SO_REUSEADDR for quick restarts, never SO_REUSEPORT: a second worker must fail to bind.
    socket.bind(Poco::Net::SocketAddress(impl_->config.ip, impl_->config.port), true, false);
    socket.listen(kQueuedConnectionsMax);
  } catch (const Poco::Exception& e) {
    throw std::runtime_error(e.displayText());
  }
  impl_->bound_port = socket.address().port();
  HttpServerLimits limits;
  limits.threads_max = kThreadsMax;
  limits.queued_max = kQueuedConnectionsMax;
  limits.socket_timeout_ms = kSocketTimeoutMs;
  limits.keep_alive_timeout_ms = kKeepAliveTimeoutMs;
  limits.keep_alive_requests_max = kKeepAliveRequestsMax;
  limits.io_deadline_ms = impl_->config.io_deadline_ms;
  impl_->server = std::make_unique<WatchedHttpServer>(
      socket, new Factory(impl_->engine, *impl_->node, impl_->router), limits,
      "HTTP server on " + impl_->config.ip + ":" + std::to_string(port()));
  impl_->server->start();
}

void HttpServer::stop() {
  if (impl_ && impl_->responder) {
    impl_->node->stopping().store(true);
    impl_->responder->stop();
    impl_->responder.reset();
    return;
  }
  if (!impl_ || !impl_->server) return;
  impl_->node->stopping().store(true);
  impl_->server->stop();
  impl_->server.reset();
}

uint16_t HttpServer::port() const { return impl_->bound_port; }

HttpServerLoad HttpServer::load() const {
  if (impl_->responder) return impl_->responder->load();
  return impl_->server ? impl_->server->load() : HttpServerLoad{};
}

}  // namespace chorus::http
