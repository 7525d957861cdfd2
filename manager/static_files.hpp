// Maps a request path of the manager's dashboard to a file under the web root, refusing every
// path that could name a file outside it (absolute paths, "..", encoded separators, backslashes,
// NUL, symlinks that lead out). Pure apart from reading the file system; any thread may call it.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

namespace chorus::manager {

struct StaticPath {
  enum class Status { kFound, kMissing, kRefused };
  Status status = Status::kMissing;
  std::filesystem::path file;  // set when kFound: a regular file inside the root
  std::string reason;          // set when kRefused
};

// `request_path` is the percent-decoded path of the request ("/", "/app.js", "/nodes/n1").
// A path without a file extension that names no file resolves to the root's index.html (the
// dashboard is a single-page application).
StaticPath resolve_static_path(const std::filesystem::path& web_root,
                               std::string_view request_path);

}  // namespace chorus::manager
