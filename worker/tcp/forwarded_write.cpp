// Forwarded writes of a node's own: see forwarded_write.hpp.
#include "worker/tcp/forwarded_write.hpp"

#include "messages.pb.h"

#include <string_view>

namespace chorus::tcp {
namespace {

namespace pb = EventStore::Client::Messages;

bool starts_with(const std::string& text, std::string_view prefix) {
  return text.compare(0, prefix.size(), prefix) == 0;
}

}  // namespace

std::string write_events_request(const std::string& stream, int64_t expected_version,
                                 const std::vector<NewEvent>& events) {
  pb::WriteEvents request;
  request.set_event_stream_id(stream);
  request.set_expected_version(expected_version);
  request.set_require_master(true);
  for (const NewEvent& e : events) {
    pb::NewEvent* out = request.add_events();
    out->set_event_id(to_dotnet_bytes(e.event_id));
    out->set_event_type(e.event_type);
    out->set_data_content_type(e.data_is_json ? 1 : 0);
    out->set_metadata_content_type(e.metadata_is_json ? 1 : 0);
    out->set_data(e.data);
    if (!e.metadata.empty()) out->set_metadata(e.metadata);
  }
  return request.SerializeAsString();
}

WriteResult forwarded_write_result(wire::Command command, const std::string& payload) {
  WriteResult w;
  pb::WriteEventsCompleted reply;
  if (command == wire::Command::WriteEventsCompleted && reply.ParseFromString(payload)) {
    w.result = static_cast<OperationResult>(reply.result());
    w.message = reply.message();
    w.first_event_number = reply.first_event_number();
    w.last_event_number = reply.last_event_number();
    w.current_version = reply.current_version();
    return w;
  }
  if (command == wire::Command::NotHandled) {
    w.not_handled = NotHandledReason::NotLeader;
    return w;
  }
  w.result = OperationResult::AccessDenied;
  w.message =
      std::string("the leader answered ") + wire::command_name(static_cast<uint8_t>(command));
  return w;
}

bool system_forward_allowed(uint8_t command, const std::string& payload) {
  if (command != static_cast<uint8_t>(wire::Command::WriteEvents)) return false;
  pb::WriteEvents request;
  if (!request.ParseFromString(payload)) return false;
  const std::string& stream = request.event_stream_id();
  return starts_with(stream, "$stats-") || starts_with(stream, "$$$stats-");
}

}  // namespace chorus::tcp
