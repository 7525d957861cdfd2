// Every limit of the external TCP front end, in one place (STYLE.md 5). Hitting one means
// backpressure (reading pauses), a refusal with a clear error, or a disconnect; never unbounded
// growth. Constants only; any thread.
#pragma once

#include "common/framing.hpp"

#include <cstddef>
#include <cstdint>

namespace chorus::tcp {

// Bytes asked of the socket per read; large enough that a 3 MiB event arrives in few reads.
inline constexpr size_t kReadChunkBytes = size_t{256} * 1024;

// A WriteEvents or TransactionWrite frame at least this large is decoded on another thread than
// the session's (SessionConfig::decode_executor): decoding copies every byte of it once (tens of
// milliseconds for 64 MiB), which on the session's thread, the worker's core thread, every other
// client would wait for. Below it, decoding costs less than the two hand-overs.
inline constexpr size_t kDecodeElsewhereFrameBytesMin = size_t{1} * 1024 * 1024;

// Bytes of partially received frames held across all connections of the node (issue 10, hole
// 7): without it, 1,000 connections could each buffer most of a 64 MiB frame. Four maximal
// frames arrive at once; a frame that would pass it closes its connection with a BadRequest.
inline constexpr size_t kPartialFrameBytesBudget = size_t{4} * wire::kFrameBytesMax;

// A socket write (one batch, at most kWriteBatchBytesMax) must complete within this time, or the
// client is disconnected and its queue and subscriptions are freed: a client that stops reading
// would otherwise hold them for ever. Lenient on purpose: such a client has long missed its
// heartbeats, and a link moving 100 KiB/s still drains a 1 MiB batch in time.
inline constexpr int kWriteTimeoutMs = 10000;

// Connections refused at the limit are logged at most once per this interval (with a count), so
// a flood of connection attempts cannot flood the log as well.
inline constexpr int kRefusalLogIntervalMs = 10000;

// Replies and pushes queued for one connection. A subscriber (or a pipelining client) that does
// not read its socket is disconnected when this is exceeded. Two maximal frames plus slack, so one
// large read reply never trips it on its own.
inline constexpr size_t kOutgoingQueueBytesMax =
    size_t{2} * wire::kFrameBytesMax + size_t{8} * 1024 * 1024;

// Bytes queued for sending on all client connections of the node (issue 10, hole 7): without it,
// 1,000 subscribers that read slowly could each queue kOutgoingQueueBytesMax. When it is spent, a
// connection whose queue is above its fair share (this divided by the open connections) is
// disconnected as it grows; one within its share may still queue, up to twice this in total, so
// a burst to readers that keep up is never cut because of the slow ones.
inline constexpr size_t kQueuedSendBytesBudget = size_t{4} * wire::kFrameBytesMax;

// Reading from the socket pauses while this many bytes wait to be written, so a client that
// pipelines requests without reading replies is slowed down instead of growing the queue.
inline constexpr size_t kReadPauseQueuedBytes = size_t{16} * 1024 * 1024;

// One socket write gathers queued packages up to this many bytes (one write in flight), so a
// heartbeat waits behind at most one batch.
inline constexpr size_t kWriteBatchBytesMax = size_t{1} * 1024 * 1024;
inline constexpr size_t kWriteBatchPackagesMax = 256;

// Requests received but not answered yet (waiting for authentication, or in the engine). The
// client keeps at most 5,000 operations in flight; reading pauses above this many.
inline constexpr size_t kRequestsInFlightMax = 10000;

// Volatile subscriptions on one connection; more are refused with SubscriberMaxCountReached.
inline constexpr size_t kSubscriptionsPerConnectionMax = 4096;

// Credentials a connection proved are reused without a new check for this long, for this many
// logins, unless a user changed meanwhile (then they are checked again at once).
inline constexpr int kProvenCredentialsTtlMs = 5000;
inline constexpr size_t kProvenCredentialsMax = 8;

// A connection to the secure port must finish its TLS handshake in this time; until then it holds
// a session slot without being a client.
inline constexpr int kTlsHandshakeTimeoutMs = 5000;

// After a fatal protocol error the session tries to flush its last BadRequest for this long.
inline constexpr int kCloseFlushTimeoutMs = 1000;

// Pause before accepting again after accept() failed (e.g. out of file descriptors).
inline constexpr int kAcceptRetryDelayMs = 100;

}  // namespace chorus::tcp
