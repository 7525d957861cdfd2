// Resolving dashboard paths: each segment is checked on its own, then the joined path is made
// canonical (symlinks followed) and must still lie inside the canonical web root.
#include "manager/static_files.hpp"

#include <algorithm>
#include <system_error>
#include <vector>

namespace chorus::manager {
namespace {

namespace fs = std::filesystem;

// Dashboard paths are short; a longer one is an attack or a mistake.
constexpr size_t kRequestPathMax = 1024;

StaticPath refused(std::string reason) {
  return StaticPath{StaticPath::Status::kRefused, {}, std::move(reason)};
}

// Splits on '/' and drops empty segments, so "//etc/passwd" becomes "etc", "passwd" (relative).
// Returns why a segment is not a plain file or folder name, or "" when every segment is.
std::string split_segments(std::string_view path, std::vector<std::string>* out) {
  if (path.size() > kRequestPathMax) return "path too long";
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    const std::string_view seg = path.substr(start, end - start);
    start = end + 1;
    if (seg.empty()) continue;
    if (seg == "." || seg == "..") return "dot segment in path";
    if (seg.find_first_of(std::string_view("\\\0:", 3)) != std::string_view::npos) {
      return "backslash, NUL or colon in path";
    }
    if (std::any_of(seg.begin(), seg.end(),
                    [](char c) { return static_cast<unsigned char>(c) < 0x20; })) {
      return "control character in path";
    }
    out->emplace_back(seg);
  }
  return "";
}

bool inside(const fs::path& root, const fs::path& file) {
  auto r = root.begin();
  auto f = file.begin();
  for (; r != root.end(); ++r, ++f) {
    if (f == file.end() || *r != *f) return false;
  }
  return true;
}

// The canonical form of `file` if it is a regular file inside `root` (both canonical).
StaticPath check_file(const fs::path& root, const fs::path& file) {
  std::error_code ec;
  const fs::path real = fs::canonical(file, ec);
  if (ec) return StaticPath{StaticPath::Status::kMissing, {}, {}};
  if (!inside(root, real)) return refused("path leads outside the web root");
  if (!fs::is_regular_file(real, ec)) return StaticPath{StaticPath::Status::kMissing, {}, {}};
  return StaticPath{StaticPath::Status::kFound, real, {}};
}

}  // namespace

StaticPath resolve_static_path(const fs::path& web_root, std::string_view request_path) {
  std::vector<std::string> segments;
  const std::string reason = split_segments(request_path, &segments);
  if (!reason.empty()) return refused(reason);
  std::error_code ec;
  const fs::path root = fs::canonical(web_root, ec);
  if (ec) return StaticPath{StaticPath::Status::kMissing, {}, {}};
  fs::path file = root;
  for (const std::string& seg : segments) file /= seg;
  if (segments.empty()) file /= "index.html";
  StaticPath found = check_file(root, file);
  if (found.status != StaticPath::Status::kMissing) return found;
  if (!segments.empty() && fs::path(segments.back()).has_extension()) return found;
  return check_file(root, root / "index.html");
}

}  // namespace chorus::manager
