// Small behaviours of the engine's value types.
#include "worker/engine/types.hpp"

#include <algorithm>

namespace chorus {

bool Principal::in_role(const std::string& role) const {
  if (anonymous()) return false;
  if (role == login) return true;
  return std::find(groups.begin(), groups.end(), role) != groups.end();
}

RecordView view_of(const EventRecord& r) {
  RecordView v;
  v.stream = r.stream;
  v.number = r.number;
  v.event_id =
      std::string_view(reinterpret_cast<const char*>(r.event_id.data), sizeof r.event_id.data);
  v.event_type = r.event_type;
  v.data_is_json = r.data_is_json;
  v.metadata_is_json = r.metadata_is_json;
  v.data = r.data;
  v.metadata = r.metadata;
  v.created_ms = r.created_ms;
  v.position = r.position;
  v.log_end = r.log_end;
  return v;
}

EventRecord to_record(const RecordView& v) {
  EventRecord r;
  r.stream = v.stream;
  r.number = v.number;
  r.event_id = from_raw_bytes(v.event_id).value_or(Guid{});
  r.event_type = v.event_type;
  r.data_is_json = v.data_is_json;
  r.metadata_is_json = v.metadata_is_json;
  r.data = v.data;
  r.metadata = v.metadata;
  r.created_ms = v.created_ms;
  r.position = v.position;
  r.log_end = v.log_end;
  return r;
}

}  // namespace chorus
