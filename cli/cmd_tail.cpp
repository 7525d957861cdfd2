// `chorus tail STREAM|$all`: a volatile subscription printing each new event (a table row, or one
// JSON object per line with --json). Ctrl-C (SIGINT) or SIGTERM unsubscribes and exits 0 once the
// server confirmed the drop (or after a short grace). A subscription dropped because the
// connection was lost is made again on the next connection (volatile subscriptions do not
// resume by themselves); the main thread waits on signals, the client's thread prints.
#include <csignal>
#include <iostream>
#include <mutex>

#include "cli/app.hpp"
#include "cli/stream_output.hpp"
#include "cli/table.hpp"
#include "client/transport.hpp"

namespace chorus::cli {
namespace {

// After Ctrl-C, how long to wait for the server's SubscriptionDropped before leaving anyway.
constexpr int kUnsubscribeGraceMs = 2000;
// Subscriptions lost in a row (no confirmation between) before tail gives up.
constexpr int kResubscribesMax = 10;

class Tail {
 public:
  Tail(const Context& ctx, std::string stream, bool resolve)
      : ctx_(ctx),
        stream_(std::move(stream)),
        resolve_(resolve),
        signals_(io_, SIGINT, SIGTERM),
        grace_(io_),
        client_(ctx.client_settings()) {}

  int run() {
    signals_.async_wait([this](const boost::system::error_code& ec, int) {
      if (!ec) stop();
    });
    subscribe();
    io_.run();
    return exit_code_;
  }

 private:
  void subscribe() {
    client::SubscriptionHandlers h;
    h.confirmed = [this](const client::SubscriptionConfirmation&) {
      client::asio::post(io_, [this] { losses_ = 0; });
      // On stderr, so --json output stays one event per line.
      std::lock_guard lock(out_mutex_);
      std::cerr << "tailing " << stream_ << " (Ctrl-C stops)" << std::endl;
    };
    h.event_appeared = [this](const client::ResolvedEvent& e) { print(e); };
    h.dropped = [this](client::DropReason reason, const std::string& message) {
      client::asio::post(io_, [this, reason, message] { on_dropped(reason, message); });
    };
    subscription_id_ = client_.subscribe(stream_, resolve_, std::move(h));
  }

  void print(const client::ResolvedEvent& e) {
    std::lock_guard lock(out_mutex_);
    if (ctx_.json) {
      print_json(event_json(e));
      return;
    }
    // Rows of a live feed cannot be aligned with rows not yet seen: tab-separated, no header.
    std::string line;
    for (const std::string& cell : event_row(e)) line += (line.empty() ? "" : "\t") + cell;
    std::cout << line << std::endl;
  }

  void stop() {
    stopping_ = true;
    client_.unsubscribe(subscription_id_);
    grace_.expires_after(std::chrono::milliseconds(kUnsubscribeGraceMs));
    grace_.async_wait([this](const boost::system::error_code& ec) {
      if (!ec) finish(kExitOk);
    });
  }

  void on_dropped(client::DropReason reason, const std::string& message) {
    if (stopping_) return finish(kExitOk);
    if (reason == client::DropReason::ConnectionClosed && ++losses_ <= kResubscribesMax) {
      std::lock_guard lock(out_mutex_);
      std::cerr << "chorus: subscription lost (" << message << "); subscribing again" << std::endl;
      subscribe();
      return;
    }
    {
      std::lock_guard lock(out_mutex_);
      std::cerr << "chorus: subscription dropped: " << client::to_string(reason)
                << (message.empty() ? "" : ": " + message) << std::endl;
    }
    finish(kExitFailed);
  }

  void finish(int code) {
    exit_code_ = code;
    signals_.cancel();
    grace_.cancel();
    io_.stop();
  }

  const Context& ctx_;
  std::string stream_;
  bool resolve_;
  client::asio::io_context io_;
  client::asio::signal_set signals_;
  client::asio::steady_timer grace_;
  std::mutex out_mutex_;
  // Last, so it closes (and runs its drop handler) while the members above still exist.
  client::Client client_;
  uint64_t subscription_id_ = 0;
  int losses_ = 0;
  bool stopping_ = false;
  int exit_code_ = kExitOk;
};

}  // namespace

int cmd_tail(const Context& ctx) {
  std::string stream;
  bool resolve = false;
  po::options_description options("tail options");
  options.add_options()("stream", po::value(&stream)->required(), "stream name, or $all")(
      "resolve-links", po::bool_switch(&resolve), "show the events links point to");
  po::positional_options_description positional;
  positional.add("stream", 1);
  po::variables_map vm;
  if (!ctx.parse("tail STREAM|$all", options, positional, vm)) return kExitOk;
  Tail tail(ctx, stream, resolve);
  return tail.run();
}

}  // namespace chorus::cli
