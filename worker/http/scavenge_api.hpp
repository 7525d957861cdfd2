// The scavenge endpoints of a node (EventStore's): POST /admin/scavenge?startFromChunk=&threads=,
// GET /admin/scavenge/current, GET /admin/scavenge/{id}, DELETE /admin/scavenge/{id}; for $admins
// and $ops only (anonymous: 401, any other user: 403). Request threads; answers at once.
#pragma once

#include "worker/engine/engine.hpp"
#include "worker/http/http_server.hpp"
#include "worker/http/router.hpp"

namespace chorus::http {

void register_scavenge_routes(Router& router, Engine& engine, HttpNode& node);

// The JSON of a scavenge's state (docs/operations.md "Scavenging").
std::string scavenge_state_json(const ScavengeState& state);

}  // namespace chorus::http
