// Passing a client's HTTP request on to the leader, as EventStore's followers do for writes
// (PROTOCOL.md E3): same method, path, query, headers and body, plus X-Forwarded-Host; the
// leader's answer is relayed as it is, up to kProxiedReplyBytesMax. Request threads; blocking
// with a deadline.
#pragma once

#include "worker/http/router.hpp"

#include <Poco/Net/Context.h>

#include <cstddef>
#include <string>

namespace chorus::http {

// A leader that does not answer within this long gives the client a 503 (it may retry).
inline constexpr int kProxyTimeoutMs = 10000;
// Largest leader answer relayed: only writes are proxied, and their answers are a status and a
// short text; a leader (or an impostor) sending more gets the client a 502, not our memory.
inline constexpr size_t kProxiedReplyBytesMax = 1024u * 1024u;

// `leader` is "host:port" of the leader's internal HTTP endpoint; `tls` a client context when
// the cluster runs HTTPS (null: plain HTTP).
Reply proxy_to_leader(const std::string& leader, const Request& request,
                      const Poco::Net::Context::Ptr& tls);

}  // namespace chorus::http
