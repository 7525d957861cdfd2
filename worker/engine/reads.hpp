// Stream, event and $all reads with EventStore's rules (PROTOCOL.md C5, C6, F2-F4), on one
// ReadConnection and bounded by the committed position. Shared by every front end.
// Called on reader threads; pure apart from the connection's queries.
#pragma once

#include "worker/engine/acl.hpp"
#include "worker/engine/retention.hpp"
#include "worker/engine/storage.hpp"
#include "worker/engine/types.hpp"

namespace chorus {

// What a read may see: everything at or below `committed_pos`; the head is `commit_end`.
struct ReadView {
  int64_t committed_pos = 0;  // position of the last committed record
  int64_t commit_end = 0;     // the position just after it
  int64_t now_ms = 0;         // for $maxAge
  SystemSettings settings;
};

ReadEventResult read_event(ReadConnection& c, const ReadView& v, const Principal& who,
                           const std::string& stream, int64_t number, bool resolve_links);
ReadStreamResult read_stream(ReadConnection& c, const ReadView& v, const Principal& who,
                             const std::string& stream, int64_t from, int32_t count, bool forward,
                             bool resolve_links);
ReadAllResult read_all(ReadConnection& c, const ReadView& v, const Principal& who, Position from,
                       int32_t count, bool forward, bool resolve_links);
// The same reads handing each event to `sink` as it is read (the result has no events): the
// same rules, without a copy of each record.
ReadStreamResult read_stream(ReadConnection& c, const ReadView& v, const Principal& who,
                             const std::string& stream, int64_t from, int32_t count, bool forward,
                             bool resolve_links, ReadSink& sink);
ReadAllResult read_all(ReadConnection& c, const ReadView& v, const Principal& who, Position from,
                       int32_t count, bool forward, bool resolve_links, ReadSink& sink);

// The target of a `$>` link record ("<number>@<stream>") as `who` may see it: nullopt when it
// cannot be found or `who` may not read it (EventStore resolves links with the reader's rights).
std::optional<EventRecord> resolve_link(ReadConnection& c, const ReadView& v, const Principal& who,
                                        const EventRecord& link);
ResolvedEvent resolve(ReadConnection& c, const ReadView& v, const Principal& who,
                      EventRecord record, bool resolve_links);

// The metadata of `stream` (from its metastream) as committed.
StreamMetadata committed_metadata(ReadConnection& c, const std::string& stream, int64_t max_pos);

// What storage says about `stream` at max_pos, for the retention rules (retention.hpp).
// `metadata`: the governing stream's committed metadata when the caller has it already.
StreamFacts stream_facts(ReadConnection& c, const std::string& stream, int64_t max_pos,
                         std::optional<StreamMetadata> metadata = std::nullopt);

inline constexpr const char* kLinkEventType = "$>";
inline constexpr const char* kMetadataEventType = "$metadata";
inline constexpr const char* kTombstoneEventType = "$streamDeleted";
inline constexpr const char* kSettingsStream = "$settings";

}  // namespace chorus
