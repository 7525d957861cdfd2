// HealthResponder (see health_responder.hpp). One io_context on the "health" thread: an acceptor,
// and per connection a Beast parser with limits on the head and the body, one answer written at
// a time (pipelined requests wait in the buffer), and a deadline checked lazily: the timer is
// armed once per deadline period and, when it fires, re-armed for the connection's current
// deadline unless that has passed, so that a probe twice a second moves no timer.
#include "worker/http/health_responder.hpp"

#include "common/thread_name.hpp"
#include "worker/http/headers.hpp"
#include "worker/http/limits.hpp"
#include "worker/http/request.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <thread>

namespace chorus::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using Local = asio::local::stream_protocol;
using Clock = std::chrono::steady_clock;

// The refusal of a request the parser could not take, or nullopt when the connection just ended.
std::optional<Reply> parse_refusal(const boost::system::error_code& ec) {
  if (ec == bhttp::error::end_of_stream || ec == bhttp::error::partial_message ||
      ec == asio::error::eof || ec == asio::error::operation_aborted ||
      ec == asio::error::connection_reset) {
    return std::nullopt;
  }
  if (ec == bhttp::error::header_limit || ec == bhttp::error::buffer_overflow) {
    return text_reply(431, "Request header fields too large");
  }
  if (ec == bhttp::error::body_limit) return text_reply(413, "Request entity too large");
  const auto& parse_errors = bhttp::make_error_code(bhttp::error::bad_target).category();
  if (ec.category() == parse_errors) return text_reply(400, "Bad request: " + ec.message());
  return std::nullopt;  // a socket error: nobody to answer
}

}  // namespace

struct HealthResponder::Impl : std::enable_shared_from_this<HealthResponder::Impl> {
  class Connection;

  Impl(const Router& r, std::string p, int deadline_ms)
      : router(r), path(std::move(p)), io_deadline(deadline_ms), acceptor(io) {}

  void accept();
  Reply route(Request& request) const;

  const Router& router;
  const std::string path;
  const std::chrono::milliseconds io_deadline;
  // Declared before `io`, so destroyed after it: handlers still queued in `io` (a long
  // request's answer posted after stop()) hold connections whose destructors use these.
  std::set<Connection*> connections;  // health thread only
  std::atomic<int> open{0};
  std::atomic<bool> long_busy{false};
  std::atomic<int> refused{0};
  std::atomic<int64_t> cut{0};
  asio::io_context io;
  Local::acceptor acceptor;
  std::thread thread;
  std::mutex long_mutex;
  std::thread long_thread;  // GUARDED_BY(long_mutex): the long request in hand, if any
  bool started = false;
  bool stopped = false;
};

class HealthResponder::Impl::Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(Impl& server, Local::socket socket)
      : server_(server), socket_(std::move(socket)), timer_(server.io) {
    server_.connections.insert(this);
    server_.open.store(static_cast<int>(server_.connections.size()));
  }
  ~Connection() {
    server_.connections.erase(this);
    server_.open.store(static_cast<int>(server_.connections.size()));
  }

  void start() {
    arm_timer(Clock::now() + server_.io_deadline);
    read_next();
  }
  void close() {
    boost::system::error_code ignored;
    socket_.close(ignored);
    timer_.cancel();
  }

 private:
  void read_next() {
    deadline_ = Clock::now() + server_.io_deadline;
    parser_.emplace();
    parser_->header_limit(static_cast<uint32_t>(kHealthHeadBytesMax));
    parser_->body_limit(kHealthBodyBytesMax);
    bhttp::async_read(
        socket_, buffer_, *parser_,
        [self = shared_from_this()](boost::system::error_code ec, size_t) { self->on_read(ec); });
  }

  void on_read(const boost::system::error_code& ec) {
    if (ec) {
      if (std::optional<Reply> refusal = parse_refusal(ec); refusal && socket_.is_open()) {
        write(*refusal, false);
      } else {
        close();
      }
      return;
    }
    const auto& in = parser_->get();
    const bool keep_alive = in.keep_alive();
    Request request;
    if (std::optional<Reply> refused = to_request(in, request)) return write(*refused, keep_alive);
    if (request.method == "GET") return write(server_.route(request), keep_alive);
    run_long(std::move(request), keep_alive);
  }

  static std::optional<Reply> to_request(const bhttp::request<bhttp::string_body>& in,
                                         Request& request) {
    request.method = std::string(in.method_string());
    if (auto refused = set_target(request, std::string(in.target()))) return refused;
    for (const auto& field : in) {
      request.headers.emplace(std::string(field.name_string()), std::string(field.value()));
    }
    request.body = in.body();
    request.base_url = "http://localhost";
    return std::nullopt;
  }

  // A request that may take long (a backup) runs on the long thread; the connection waits for
  // its answer (no deadline meanwhile: the handler bounds its own work) while others are served.
  void run_long(Request request, bool keep_alive) {
    if (server_.long_busy.exchange(true)) {
      return write(text_reply(503, "Another long request (a backup) is running on this listener"),
                   keep_alive);
    }
    deadline_.reset();
    std::lock_guard guard(server_.long_mutex);
    if (server_.long_thread.joinable()) server_.long_thread.join();  // has ended: long_busy was off
    server_.long_thread = std::thread([self = shared_from_this(), request = std::move(request),
                                       keep_alive]() mutable {
      set_thread_name("health-long");
      Reply reply = self->server_.route(request);
      self->server_.long_busy.store(false);
      asio::post(self->server_.io,
                 [self, reply = std::move(reply), keep_alive] { self->write(reply, keep_alive); });
    });
  }

  void write(const Reply& reply, bool keep_alive) {
    keep_alive = keep_alive && reply.status != 413 && reply.status < 500;
    auto response = std::make_shared<bhttp::response<bhttp::string_body>>();
    response->version(11);
    response->result(static_cast<unsigned>(reply.status));
    if (!reply.reason.empty()) response->reason(safe_reason_phrase(reply.reason));
    if (!reply.content_type.empty()) response->set(bhttp::field::content_type, reply.content_type);
    for (const auto& [name, value] : reply.headers) response->set(name, value);
    if (reply.status != 204 && reply.status != 304) response->body() = reply.body;
    response->keep_alive(keep_alive);
    response->prepare_payload();
    deadline_ = Clock::now() + server_.io_deadline;
    bhttp::async_write(
        socket_, *response,
        [self = shared_from_this(), response, keep_alive](boost::system::error_code ec, size_t) {
          if (ec || !keep_alive) return self->close();
          self->read_next();
        });
  }

  // The timer fires at most once per deadline period: it cuts a connection past its deadline
  // and otherwise waits for the deadline as it is now.
  void arm_timer(Clock::time_point at) {
    timer_.expires_at(at);
    timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (ec || !self->socket_.is_open()) return;
      const auto now = Clock::now();
      if (self->deadline_ && *self->deadline_ <= now) {
        self->server_.cut.fetch_add(1);
        self->close();
        return;
      }
      self->arm_timer(self->deadline_ ? *self->deadline_ : now + self->server_.io_deadline);
    });
  }

  Impl& server_;
  Local::socket socket_;
  asio::steady_timer timer_;
  beast::flat_buffer buffer_{kHealthHeadBytesMax + kHealthBodyBytesMax};
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  std::optional<Clock::time_point> deadline_;  // none while a long request runs
};

void HealthResponder::Impl::accept() {
  acceptor.async_accept(
      [self = shared_from_this()](boost::system::error_code ec, Local::socket socket) {
        if (!self->acceptor.is_open()) return;
        if (!ec) {
          if (self->connections.size() >= kHealthConnectionsMax) {
            self->refused.fetch_add(1);  // closed at once: the socket goes out of scope
          } else {
            std::make_shared<Connection>(*self, std::move(socket))->start();
          }
        }
        self->accept();
      });
}

Reply HealthResponder::Impl::route(Request& request) const {
  try {
    RouteMatch match = router.match(request.method, request.path);
    if (match.kind == RouteMatch::Kind::NotFound) return text_reply(404, "Not Found");
    if (match.kind == RouteMatch::Kind::MethodNotAllowed) {
      Reply reply = text_reply(405, "Method Not Allowed");
      reply.headers["Allow"] = join_header_values(match.allowed);
      return reply;
    }
    request.params = std::move(match.params);
    return match.route->handler(request);
  } catch (const std::exception& e) {
    return text_reply(500, std::string("Internal error: ") + e.what());
  }
}

HealthResponder::HealthResponder(const Router& router, std::string socket_path, int io_deadline_ms)
    : impl_(std::make_shared<Impl>(router, std::move(socket_path), io_deadline_ms)) {}

HealthResponder::~HealthResponder() { stop(); }

void HealthResponder::start() {
  std::error_code ec;
  std::filesystem::remove(impl_->path, ec);
  try {
    impl_->acceptor.open(Local());
    impl_->acceptor.bind(Local::endpoint(impl_->path));
    std::filesystem::permissions(
        impl_->path, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
    impl_->acceptor.listen(kQueuedConnectionsMax);
  } catch (const boost::system::system_error& e) {
    throw std::runtime_error(e.code().message());
  } catch (const std::filesystem::filesystem_error& e) {
    throw std::runtime_error(e.what());
  }
  impl_->accept();
  impl_->started = true;
  impl_->thread = std::thread([impl = impl_] {
    set_thread_name("health");
    impl->io.run();
  });
}

void HealthResponder::stop() {
  if (!impl_ || !impl_->started || impl_->stopped) return;
  impl_->stopped = true;
  asio::post(impl_->io, [impl = impl_] {
    boost::system::error_code ignored;
    impl->acceptor.close(ignored);
    for (Impl::Connection* connection : impl->connections) connection->close();
  });
  impl_->thread.join();
  {
    std::lock_guard guard(impl_->long_mutex);
    if (impl_->long_thread.joinable()) impl_->long_thread.join();
  }
  std::error_code ec;
  std::filesystem::remove(impl_->path, ec);
}

HttpServerLoad HealthResponder::load() const {
  HttpServerLoad load;
  load.threads = 1 + (impl_->long_busy.load() ? 1 : 0);
  load.refused = impl_->refused.load();
  load.cut = impl_->cut.load();
  return load;
}

}  // namespace chorus::http
