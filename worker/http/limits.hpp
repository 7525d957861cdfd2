// Every limit of the HTTP front end, in one place (STYLE.md 5). Hitting one means a refusal with a
// clear status (413, 503) or a closed connection; never unbounded growth. Constants only.
#pragma once

#include "common/http_serving.hpp"  // kHttpIoDeadlineMs, kWatchTickMs, kRefusalLogIntervalMs

#include <cstddef>
#include <cstdint>

namespace chorus::http {

// Request threads per server. Each waits on the engine for at most kEngineWaitMs (long polls
// longer), so this bounds the engine work one server can have in flight.
inline constexpr int kThreadsMax = 16;
// Accepted connections waiting for a thread; more are closed at once by Poco's TCPServer.
inline constexpr int kQueuedConnectionsMax = 64;
// Connections one server holds at once: those on a request thread plus those waiting for one;
// one more is closed as soon as it is accepted (Poco's TCPServer counts it as refused).
inline constexpr int kConnectionsMax = kThreadsMax + kQueuedConnectionsMax;
// Largest request body. EventStore refuses events above 4 MiB over HTTP; a JSON body with such
// an event and its escaping fits in twice that.
inline constexpr size_t kRequestBodyBytesMax = 8u * 1024u * 1024u;
// An oversized body up to this size is read and discarded so that the client, still sending,
// receives the 413 instead of a connection reset; the connection is closed after it.
inline constexpr size_t kOversizedBodyDrainBytesMax = 32u * 1024u * 1024u;
// Largest event (data + metadata) accepted over HTTP, as EventStore (413 above).
inline constexpr size_t kHttpEventBytesMax = 4u * 1024u * 1024u;
// A client that sends nothing for this long while a request is being read is disconnected.
inline constexpr int kSocketTimeoutMs = 10000;
// An idle keep-alive connection is closed after this long, and after this many requests.
inline constexpr int kKeepAliveTimeoutMs = 15000;
inline constexpr int kKeepAliveRequestsMax = 1000;
// A request thread waits this long for an engine answer (commit timeout 5 s plus slack).
inline constexpr int kEngineWaitMs = 10000;
// ES-LongPoll is capped at this many seconds so a thread is not held for ever.
inline constexpr int kLongPollSecondsMax = 60;
// Long polls waiting at once per server; beyond it a long poll answers at once as if it had
// timed out (the client polls again), so waiting clients never hold every request thread.
inline constexpr int kLongPollsWaitingMax = kThreadsMax / 2;
// Connections the manager's health listener (a Unix socket only the manager's user can reach,
// health_responder.hpp) holds at once: the manager keeps one for its probes and opens one per
// /health/ready check or backup; one more is closed as soon as it is accepted.
inline constexpr size_t kHealthConnectionsMax = 8;
// Largest request head on the health listener (a probe's is ~50 bytes): 431 beyond it.
inline constexpr size_t kHealthHeadBytesMax = 8 * 1024;
// Largest request body on the health listener (a backup's JSON names a folder): 413 beyond it.
inline constexpr size_t kHealthBodyBytesMax = 64 * 1024;
// A core thread that has not ticked for this long is stuck: it ticks every 10 ms and nothing on
// it may block for seconds. /health/live and /health/ready then answer 503.
inline constexpr int64_t kCoreTickStaleMs = 2000;
// Long-poll waits wake up this often to notice a server stop.
inline constexpr int kLongPollSliceMs = 100;
// Page size of a feed read without a count, and the largest count (as EventStore).
inline constexpr int32_t kFeedCountDefault = 20;
inline constexpr int32_t kFeedCountMax = 4096;
// /stats on a leader counts the events each follower lacks by reading $all from its durable
// position, at most this many (a lag beyond it is reported as this, with lagEventsCapped), so a
// far-behind follower costs one bounded read per /stats call.
inline constexpr int32_t kLagEventsCountMax = 1000;
// That read waits at most this long; /stats then reports the lag in bytes only.
inline constexpr int kLagReadWaitMs = 1000;
// Path segments in a route pattern or request path that the router looks at.
inline constexpr size_t kPathSegmentsMax = 16;

}  // namespace chorus::http
