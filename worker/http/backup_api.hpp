// POST /admin/backup on the manager's health listener only (a Unix socket in a folder only the
// manager's user can reach, so reaching it is the authorization, as for the manager's health
// checks): copies this node's database online into the folder the body names, with a manifest
// (worker/engine/backup_copy.hpp). The manager chose and checked the folder inside its BackupRoot.
// One backup at a time per node (409 otherwise). Request threads; blocks for the copy.
#pragma once

#include "worker/engine/engine.hpp"
#include "worker/http/http_server.hpp"
#include "worker/http/router.hpp"

namespace chorus::http {

void register_backup_routes(Router& router, Engine& engine, HttpNode& node);

}  // namespace chorus::http
