// Client: argument checks and the hand-off of each operation to the ClientCore; the optional own
// io thread.
#include <chorus/client.hpp>

#include <Poco/JSON/Parser.h>

#include <thread>

#include "client/client_core.hpp"
#include "client/operations.hpp"
#include "common/guid.hpp"

namespace chorus::client {

struct Client::OwnThread {
  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
  std::thread thread;
};

namespace {

// Metadata is a JSON object; anything else is refused before it reaches the server.
std::optional<std::string> check_metadata(const std::string& json) {
  try {
    Poco::JSON::Parser parser;
    Poco::Dynamic::Var parsed = parser.parse(json);
    if (parsed.type() != typeid(Poco::JSON::Object::Ptr)) return "metadata must be a JSON object";
  } catch (const Poco::Exception& e) {
    return "metadata is not valid JSON: " + e.displayText();
  }
  return std::nullopt;
}

std::optional<std::string> check_stream(const std::string& stream) {
  if (stream.empty()) return "the stream name is empty";
  return std::nullopt;
}

std::optional<std::string> check_expected_version(int64_t expected_version) {
  if (expected_version < kExpectedVersionStreamExists || expected_version == -3) {
    return "expected version " + std::to_string(expected_version) +
           " is not a version, -1 (no stream), -2 (any) or -4 (stream exists)";
  }
  return std::nullopt;
}

std::optional<std::string> check_count(int count) {
  if (count < 1 || count > kReadCountMax) {
    return "read count must be 1.." + std::to_string(kReadCountMax);
  }
  return std::nullopt;
}

template <class T>
bool refuse(const std::optional<std::string>& problem, Handler<T>& done) {
  if (!problem) return false;
  done(Error{ErrorKind::InvalidArgument, *problem, {}});
  return true;
}

}  // namespace

Client::Client(Settings settings) : own_thread_(std::make_unique<OwnThread>()) {
  core_ = std::make_shared<ClientCore>(own_thread_->io.get_executor(), std::move(settings));
  own_thread_->thread = std::thread([io = &own_thread_->io] { io->run(); });
}

Client::Client(boost::asio::io_context& io, Settings settings)
    : core_(std::make_shared<ClientCore>(io.get_executor(), std::move(settings))) {}

Client::~Client() {
  close();
  if (own_thread_) {
    // close() cancelled every timer and the connection, so the io_context runs out of work.
    own_thread_->work.reset();
    own_thread_->thread.join();
  }
  core_->join_discovery();
}

void Client::connect(Handler<Endpoint> done) { core_->connect(std::move(done)); }

void Client::close() { core_->close("the client was closed"); }

void Client::append(std::string stream, int64_t expected_version, std::vector<EventData> events,
                    Handler<WriteResult> done) {
  if (refuse(check_stream(stream), done) ||
      refuse(check_expected_version(expected_version), done)) {
    return;
  }
  core_->submit(
      make_append(stream, expected_version, events, core_->require_leader(), std::move(done)));
}

void Client::read_event(std::string stream, int64_t event_number, bool resolve_links,
                        Handler<EventReadResult> done) {
  if (refuse(check_stream(stream), done)) return;
  if (event_number < kStreamEnd) {
    return done(Error{ErrorKind::InvalidArgument, "event number must be >= -1 (-1: last)", {}});
  }
  core_->submit(make_read_event(stream, event_number, resolve_links, core_->require_leader(),
                                std::move(done)));
}

void Client::read_stream(std::string stream, int64_t from_event_number, int count,
                         ReadDirection direction, bool resolve_links, Handler<StreamSlice> done) {
  if (refuse(check_stream(stream), done) || refuse(check_count(count), done)) return;
  const bool backward = direction == ReadDirection::Backward;
  if (from_event_number < (backward ? kStreamEnd : 0)) {
    return done(Error{ErrorKind::InvalidArgument,
                      backward ? "start must be >= -1 (-1: the end)" : "start must be >= 0",
                      {}});
  }
  core_->submit(make_read_stream(stream, from_event_number, count, direction, resolve_links,
                                 core_->require_leader(), std::move(done)));
}

void Client::read_all(Position from, int count, ReadDirection direction, bool resolve_links,
                      Handler<AllSlice> done) {
  if (refuse(check_count(count), done)) return;
  core_->submit(make_read_all(from, count, direction, resolve_links, core_->require_leader(),
                              std::move(done)));
}

void Client::delete_stream(std::string stream, int64_t expected_version, bool hard_delete,
                           Handler<DeleteResult> done) {
  if (refuse(check_stream(stream), done) ||
      refuse(check_expected_version(expected_version), done)) {
    return;
  }
  core_->submit(
      make_delete(stream, expected_version, hard_delete, core_->require_leader(), std::move(done)));
}

void Client::get_stream_metadata(std::string stream, Handler<StreamMetadataResult> done) {
  if (refuse(check_stream(stream), done)) return;
  if (stream.rfind("$$", 0) == 0) {
    return done(Error{ErrorKind::InvalidArgument, "metastreams have no metadata", {}});
  }
  core_->submit(make_get_metadata(stream, core_->require_leader(), std::move(done)));
}

void Client::set_stream_metadata(std::string stream, int64_t expected_metastream_version,
                                 std::string json, Handler<WriteResult> done) {
  if (refuse(check_stream(stream), done) ||
      refuse(check_expected_version(expected_metastream_version), done) ||
      refuse(check_metadata(json), done)) {
    return;
  }
  if (stream.rfind("$$", 0) == 0) {
    return done(Error{ErrorKind::InvalidArgument, "metastreams have no metadata", {}});
  }
  EventData event{random_guid(), "$metadata", true, std::move(json), ""};
  core_->submit(make_append("$$" + stream, expected_metastream_version, {event},
                            core_->require_leader(), std::move(done)));
}

uint64_t Client::subscribe(std::string stream, bool resolve_links, SubscriptionHandlers handlers) {
  const uint64_t id = core_->next_subscription_id();
  core_->submit(
      std::make_unique<SubscriptionOperation>(id, stream, resolve_links, std::move(handlers)));
  return id;
}

void Client::unsubscribe(uint64_t subscription_id) { core_->unsubscribe(subscription_id); }

}  // namespace chorus::client
