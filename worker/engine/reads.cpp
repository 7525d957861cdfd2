// Reads: visibility ($maxCount, $maxAge, $tb, deletes), paging and link resolution.
#include "worker/engine/reads.hpp"

#include "worker/engine/rules.hpp"

#include <algorithm>
#include <charconv>

namespace chorus {
namespace {

bool expired(const EventRecord& r, const StreamMetadata& m, int64_t now_ms) {
  return ::chorus::expired(r.created_ms, m, now_ms);
}

// What a stream's metadata and last record say about reading it.
struct StreamView {
  ReadStreamStatus status = ReadStreamStatus::Success;
  StreamBounds bounds;
  StreamMetadata metadata;
};

// `metadata` is the committed metadata of the stream whose rules govern (x for "$$x"). The
// rules themselves are retention.cpp's, shared with the scavenger.
StreamView view_stream(ReadConnection& c, const ReadView& v, const std::string& stream,
                       StreamMetadata metadata) {
  const auto facts = stream_facts(c, stream, v.committed_pos, std::move(metadata));
  const auto visibility = stream_visibility(facts);
  StreamView sv;
  sv.metadata = facts.metadata;
  sv.bounds = visibility.bounds;
  switch (visibility.state) {
    case StreamState::Live:
      break;
    case StreamState::NoStream:
    case StreamState::SoftDeleted:
      sv.status = ReadStreamStatus::NoStream;
      break;
    case StreamState::HardDeleted:
      sv.status = ReadStreamStatus::StreamDeleted;
      break;
  }
  return sv;
}

// The governing metadata when `who` may read `stream`; nullopt when access is denied. One query
// serves both the access check and the read's bounds.
std::optional<StreamMetadata> readable(ReadConnection& c, const ReadView& v, const Principal& who,
                                       const std::string& stream) {
  auto metadata = committed_metadata(c, std::string(original_stream(stream)), v.committed_pos);
  if (!check_access(stream, StreamAccess::Read, who, metadata, v.settings)) return std::nullopt;
  return metadata;
}

}  // namespace

StreamMetadata committed_metadata(ReadConnection& c, const std::string& stream, int64_t max_pos) {
  const auto last = c.last_record(metastream_of(stream), max_pos);
  if (!last) return {};
  return parse_metadata(last->data);
}

StreamFacts stream_facts(ReadConnection& c, const std::string& stream, int64_t max_pos,
                         std::optional<StreamMetadata> metadata) {
  StreamFacts f;
  f.is_metastream = is_metastream(stream);
  const std::string original(original_stream(stream));
  f.metadata = metadata ? std::move(*metadata) : committed_metadata(c, original, max_pos);
  if (f.is_metastream) {
    const auto orig_last = c.last_record(original, max_pos);
    f.original_tombstoned = orig_last && orig_last->number == kDeletedStreamNumber;
    if (f.original_tombstoned) return f;
  }
  if (const auto last = c.last_record(stream, max_pos)) f.last_number = last->number;
  return f;
}

std::optional<EventRecord> resolve_link(ReadConnection& c, const ReadView& v, const Principal& who,
                                        const EventRecord& link) {
  const auto at = link.data.find('@');
  if (at == std::string::npos) return std::nullopt;
  int64_t number = 0;
  const char* begin = link.data.data();
  const auto [end, ec] = std::from_chars(begin, begin + at, number);
  if (ec != std::errc() || end != begin + at) return std::nullopt;
  // The target is read with the reader's rights and the target stream's rules, as if the reader
  // had asked for it: a target it may not read, or that is deleted, truncated or expired,
  // resolves as missing (security hole 2: links must not bypass ACLs).
  const std::string target = link.data.substr(at + 1);
  if (target.empty()) return std::nullopt;
  auto metadata = readable(c, v, who, target);
  if (!metadata) return std::nullopt;
  const auto sv = view_stream(c, v, target, std::move(*metadata));
  if (sv.status != ReadStreamStatus::Success) return std::nullopt;
  if (number < sv.bounds.min_event_number || number > sv.bounds.last_event_number) {
    return std::nullopt;
  }
  auto record = c.record(target, number, v.committed_pos);
  if (!record || expired(*record, sv.metadata, v.now_ms)) return std::nullopt;
  return record;
}

ResolvedEvent resolve(ReadConnection& c, const ReadView& v, const Principal& who,
                      EventRecord record, bool resolve_links) {
  ResolvedEvent e;
  if (resolve_links && record.event_type == kLinkEventType) {
    e.event = resolve_link(c, v, who, record);
    e.link = std::move(record);
  } else {
    e.event = std::move(record);
  }
  return e;
}

ReadEventResult read_event(ReadConnection& c, const ReadView& v, const Principal& who,
                           const std::string& stream, int64_t number, bool resolve_links) {
  ReadEventResult result;
  if (stream.empty() || number < -1) {
    result.status = ReadEventStatus::Error;
    result.error = stream.empty() ? "Empty stream name." : "Invalid event number.";
    return result;
  }
  auto metadata = readable(c, v, who, stream);
  if (!metadata) {
    result.status = ReadEventStatus::AccessDenied;
    return result;
  }
  const auto sv = view_stream(c, v, stream, std::move(*metadata));
  if (sv.status == ReadStreamStatus::NoStream) {
    result.status = ReadEventStatus::NoStream;
    return result;
  }
  if (sv.status == ReadStreamStatus::StreamDeleted) {
    result.status = ReadEventStatus::StreamDeleted;
    return result;
  }
  const int64_t n = number == -1 ? sv.bounds.last_event_number : number;
  std::optional<EventRecord> record;
  if (n >= sv.bounds.min_event_number && n <= sv.bounds.last_event_number) {
    record = c.record(stream, n, v.committed_pos);
  }
  if (!record || expired(*record, sv.metadata, v.now_ms)) {
    result.status = ReadEventStatus::NotFound;
    return result;
  }
  result.event = resolve(c, v, who, std::move(*record), resolve_links);
  return result;
}

namespace {

// Keeps a read's events in its result (read_stream and read_all without a sink).
class CollectSink final : public ReadSink {
 public:
  explicit CollectSink(std::vector<ResolvedEvent>& events) : events_(events) {}
  // A page of 4,096 entries is megabytes: reserved once, as growing it moved every entry about
  // twice into freshly faulted memory (a fifth of a stream read's CPU).
  void expect(size_t rows_max) override { events_.reserve(rows_max); }
  void row(const RecordView& record) override {
    ResolvedEvent e;
    e.event = to_record(record);
    events_.push_back(std::move(e));
  }
  void resolved(const ResolvedEvent& event) override { events_.push_back(event); }

 private:
  std::vector<ResolvedEvent>& events_;
};

// Hands `row` to the sink, resolving a link first when asked to. The row is copied before the
// target's queries run.
void deliver(ReadConnection& c, const ReadView& v, const Principal& who, const RecordView& row,
             bool resolve_links, ReadSink& sink) {
  if (resolve_links && row.event_type == kLinkEventType) {
    sink.resolved(resolve(c, v, who, to_record(row), true));
  } else {
    sink.row(row);
  }
}

// The most rows a stream read of numbers first..last may return.
size_t rows_max(int64_t first, int64_t last, int32_t count) {
  return static_cast<size_t>(std::clamp<int64_t>(last - first + 1, 0, count));
}

}  // namespace

ReadStreamResult read_stream(ReadConnection& c, const ReadView& v, const Principal& who,
                             const std::string& stream, int64_t from, int32_t count, bool forward,
                             bool resolve_links) {
  std::vector<ResolvedEvent> events;
  CollectSink sink(events);
  ReadStreamResult result =
      read_stream(c, v, who, stream, from, count, forward, resolve_links, sink);
  result.events = std::move(events);
  return result;
}

ReadStreamResult read_stream(ReadConnection& c, const ReadView& v, const Principal& who,
                             const std::string& stream, int64_t from, int32_t count, bool forward,
                             bool resolve_links, ReadSink& sink) {
  ReadStreamResult result;
  result.last_commit_position = v.committed_pos;
  if (stream.empty()) {
    result.status = ReadStreamStatus::Error;
    result.error = "Empty stream name.";
    return result;
  }
  auto metadata = readable(c, v, who, stream);
  if (!metadata) {
    result.status = ReadStreamStatus::AccessDenied;
    return result;
  }
  count = std::clamp<int32_t>(count, 0, kReadCountMax);
  const auto sv = view_stream(c, v, stream, std::move(*metadata));
  if (sv.status != ReadStreamStatus::Success) {
    result.status = sv.status;
    return result;  // no events, next -1, last -1, end of stream
  }
  result.last_event_number = sv.bounds.last_event_number;
  std::optional<int64_t> last_row;  // the last number read, expired or not
  auto visit = [&](const RecordView& r) {
    last_row = r.number;
    if (::chorus::expired(r.created_ms, sv.metadata, v.now_ms)) return;
    if (sv.metadata.max_age_s) {
      result.expires_at_ms =
          std::min(result.expires_at_ms, r.created_ms + *sv.metadata.max_age_s * 1000);
    }
    deliver(c, v, who, r, resolve_links, sink);
  };
  if (forward) {
    const auto plan = plan_forward(sv.bounds, from, count);
    result.is_end_of_stream = plan.is_end_of_stream;
    result.next_event_number = plan.next_if_empty;
    if (!plan.empty) {
      sink.expect(rows_max(plan.first, plan.last, count));
      c.range_rows(stream, plan.first, plan.last, true, v.committed_pos, count, visit);
    }
    if (last_row) result.next_event_number = *last_row + 1;
  } else {
    const auto plan = plan_backward(sv.bounds, from, count);
    result.is_end_of_stream = plan.is_end_of_stream;
    result.next_event_number = plan.next_event_number;
    if (!plan.empty) {
      sink.expect(rows_max(plan.first, plan.last, count));
      c.range_rows(stream, plan.first, plan.last, false, v.committed_pos, count, visit);
    }
  }
  return result;
}

ReadAllResult read_all(ReadConnection& c, const ReadView& v, const Principal& who, Position from,
                       int32_t count, bool forward, bool resolve_links) {
  std::vector<ResolvedEvent> events;
  CollectSink sink(events);
  ReadAllResult result = read_all(c, v, who, from, count, forward, resolve_links, sink);
  result.events = std::move(events);
  return result;
}

ReadAllResult read_all(ReadConnection& c, const ReadView& v, const Principal& who, Position from,
                       int32_t count, bool forward, bool resolve_links, ReadSink& sink) {
  ReadAllResult result;
  if (!readable(c, v, who, "$all")) {
    result.status = ReadAllStatus::AccessDenied;
    return result;
  }
  count = std::clamp<int32_t>(count, 0, kReadCountMax);
  result.last_commit_position = v.committed_pos;
  // Positions are single log offsets (commit == prepare); the end resolves to the head.
  const int64_t start = from.is_end() ? v.commit_end : std::max<int64_t>(from.prepare, 0);
  result.from = from.is_end() ? Position{v.commit_end, v.commit_end} : from;
  result.next = result.from;
  if (count == 0) return result;
  sink.start(result.from);
  sink.expect(static_cast<size_t>(count));
  int64_t last_prepare = 0;
  int64_t last_end = 0;
  const int rows = c.all_rows(start, forward, v.committed_pos, count, [&](const RecordView& r) {
    last_prepare = r.position.prepare;
    last_end = r.log_end;
    deliver(c, v, who, r, resolve_links, sink);
  });
  if (forward) {
    // A short page reached the head: continue from there (epoch records may follow the last
    // event, and catch-up subscriptions compare the next position with the commit position).
    const int64_t next = rows < count ? std::max(v.commit_end, start) : last_end;
    result.next = Position{next, next};
  } else if (rows > 0) {
    result.next = Position{last_prepare, last_prepare};
  }
  return result;
}

}  // namespace chorus
