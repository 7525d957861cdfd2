// The JavaScript prelude of every projection heap: EventStore's projection language (fromAll,
// fromStream(s), fromCategory, foreachStream, partitionBy, when, outputState, transformBy,
// filterBy, options, emit, linkTo, log) and the internal entry points that Projection calls.
// Constant data; any thread.
#pragma once

namespace chorus::projections {

extern const char* const kPrelude;

}  // namespace chorus::projections
