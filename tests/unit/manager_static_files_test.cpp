// Goal: prove that the manager's dashboard paths resolve only to files inside the web root: a
// table of hostile paths (absolute, "..", decoded %2F and %2e%2e, backslashes, NUL, symlinks out
// of the root) is refused or not found, while ordinary dashboard paths still resolve (hole 1).
#include "manager/static_files.hpp"

#include <gtest/gtest.h>

#include <unistd.h>
#include <filesystem>
#include <fstream>
#include <string>

namespace chorus::manager {
namespace {

namespace fs = std::filesystem;

class StaticFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = fs::temp_directory_path() / ("chorus-static-test-" + std::to_string(::getpid()));
    fs::remove_all(base_);
    root_ = base_ / "web";
    fs::create_directories(root_ / "assets");
    write(root_ / "index.html", "index");
    write(root_ / "assets" / "app.js", "app");
    write(base_ / "secret.txt", "secret");  // beside the root, never served
    fs::create_symlink(base_ / "secret.txt", root_ / "leak.txt");
    fs::create_directory_symlink(base_, root_ / "up");
    fs::create_symlink(root_ / "assets" / "app.js", root_ / "alias.js");  // stays inside
  }
  void TearDown() override { fs::remove_all(base_); }

  static void write(const fs::path& p, const std::string& text) { std::ofstream(p) << text; }

  fs::path base_;
  fs::path root_;
};

TEST_F(StaticFiles, OrdinaryPathsResolveInsideTheRoot) {
  const fs::path real_root = fs::canonical(root_);
  EXPECT_EQ(resolve_static_path(root_, "/").file, real_root / "index.html");
  EXPECT_EQ(resolve_static_path(root_, "/assets/app.js").file, real_root / "assets" / "app.js");
  EXPECT_EQ(resolve_static_path(root_, "/alias.js").file, real_root / "assets" / "app.js");
  // Single-page routes fall back to index.html; a missing file with an extension does not.
  EXPECT_EQ(resolve_static_path(root_, "/nodes/n1").file, real_root / "index.html");
  EXPECT_EQ(resolve_static_path(root_, "/missing.js").status, StaticPath::Status::kMissing);
}

TEST_F(StaticFiles, HostilePathsNeverLeaveTheRoot) {
  // Paths as the server sees them after percent-decoding.
  const std::string hostile[] = {
      "//etc/passwd",  // substr(1) used to make this absolute
      "///etc/passwd",
      "/%2Fetc/passwd",  // still encoded (double encoding)
      "/../secret.txt",
      "/assets/../../secret.txt",
      "/..",
      "/.",
      "/assets/./app.js",
      std::string("/") + ".." + "%2F" + "secret.txt",
      "/%2e%2e/secret.txt",  // double-encoded dots
      "/..\\secret.txt",
      "/assets\\..\\..\\secret.txt",
      std::string("/index.html\0/../../secret.txt", 30),
      std::string("/a\0b", 4),
      "/leak.txt",       // a symlink to a file outside
      "/up/secret.txt",  // a folder symlink out of the root
      "/up/web/../secret.txt",
      "/C:/Windows/win.ini",
      "/a\rb",
      std::string(2000, 'a'),
  };
  for (const std::string& path : hostile) {
    const StaticPath r = resolve_static_path(root_, path);
    if (r.status == StaticPath::Status::kFound) {
      // Only a harmless fallback to the dashboard's own index.html is acceptable.
      EXPECT_EQ(r.file, fs::canonical(root_) / "index.html") << "path: " << path;
    } else {
      EXPECT_TRUE(r.file.empty()) << "path: " << path;
    }
  }
  // The ones that name the outside directly are refused, not silently mapped.
  for (const char* path :
       {"//etc/../etc/passwd", "/../secret.txt", "/leak.txt", "/up/secret.txt", "/a\\b"}) {
    EXPECT_EQ(resolve_static_path(root_, path).status, StaticPath::Status::kRefused)
        << "path: " << path;
  }
  EXPECT_EQ(resolve_static_path(root_, std::string("/a\0b", 4)).status,
            StaticPath::Status::kRefused);
}

TEST_F(StaticFiles, AbsoluteLookingPathsAreRelativeToTheRoot) {
  // "//etc/passwd" is "etc/passwd" under the root: not there, so the dashboard's index.html
  // (never /etc/passwd).
  EXPECT_EQ(resolve_static_path(root_, "//etc/passwd").file, fs::canonical(root_) / "index.html");
  EXPECT_EQ(resolve_static_path(root_, "//etc/hosts.txt").status, StaticPath::Status::kMissing);
  write(root_ / "passwd", "mine");
  EXPECT_EQ(resolve_static_path(root_, "///passwd").file, fs::canonical(root_) / "passwd");
}

}  // namespace
}  // namespace chorus::manager
