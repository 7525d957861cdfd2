// Backup manifests, checks and restore (see backup.hpp).
#include "common/backup.hpp"

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <sqlite3.h>
#include <unistd.h>

#include <array>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

namespace chorus::backup {
namespace {

namespace fs = std::filesystem;
using Poco::JSON::Array;
using Poco::JSON::Object;

constexpr int kBusyTimeoutMs = 2000;         // reading or writing a stopped node's file
constexpr int kInUseWaitMs = 100;            // taking its lock to see whether a process has it open
constexpr size_t kHashChunkBytes = 1 << 20;  // read size while hashing a file
constexpr const char* kRestoreSuffix = ".restoring";

bool plain_file_name(const std::string& name) {
  if (name.empty() || name == "." || name == ".." || name.size() > 255) return false;
  for (const char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '-' || c == '_';
    if (!ok) return false;
  }
  return true;
}

struct Closer {
  void operator()(sqlite3* db) const { sqlite3_close(db); }
};
using Connection = std::unique_ptr<sqlite3, Closer>;

Connection open_database(const std::string& path, int flags, std::string* error) {
  sqlite3* raw = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
  Connection db(raw);
  if (rc != SQLITE_OK) {
    *error = "cannot open " + path + ": " + (raw ? sqlite3_errmsg(raw) : "out of memory");
    return nullptr;
  }
  sqlite3_busy_timeout(raw, kBusyTimeoutMs);
  return db;
}

bool exec(sqlite3* db, const std::string& sql, std::string* error) {
  char* message = nullptr;
  if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &message) == SQLITE_OK) return true;
  *error = sql + ": " + (message ? message : sqlite3_errmsg(db));
  sqlite3_free(message);
  return false;
}

struct HardState {
  int64_t epoch = -1;
  std::string voted_for;
};

// The replication vote kept in a node's database (table hard_state), if any.
std::optional<HardState> read_hard_state(sqlite3* db) {
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v2(db, "SELECT epoch, voted_for FROM hard_state WHERE id=1", -1, &s,
                         nullptr) != SQLITE_OK) {
    sqlite3_finalize(s);
    return std::nullopt;
  }
  std::optional<HardState> out;
  if (sqlite3_step(s) == SQLITE_ROW) {
    const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(s, 1));
    out = HardState{sqlite3_column_int64(s, 0), text ? text : ""};
  }
  sqlite3_finalize(s);
  return out;
}

bool write_hard_state(sqlite3* db, const HardState& state, std::string* error) {
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v2(db,
                         "INSERT OR REPLACE INTO hard_state(id, epoch, voted_for) VALUES(1,?,?)",
                         -1, &s, nullptr) != SQLITE_OK) {
    *error = std::string("cannot keep the node's vote: ") + sqlite3_errmsg(db);
    sqlite3_finalize(s);
    return false;
  }
  sqlite3_bind_int64(s, 1, state.epoch);
  sqlite3_bind_text(s, 2, state.voted_for.c_str(), -1, SQLITE_TRANSIENT);
  const int rc = sqlite3_step(s);
  sqlite3_finalize(s);
  if (rc != SQLITE_DONE) *error = std::string("cannot keep the node's vote: ") + sqlite3_errmsg(db);
  return rc == SQLITE_DONE;
}

// The vote of the node's current database when it is of a later epoch than the copy's, so that
// a restored node never votes a second time in an epoch it already voted in.
bool carry_newer_vote(const std::string& old_db, const std::string& copy, std::string* error) {
  if (!fs::exists(old_db)) return true;
  std::optional<HardState> old_vote;
  {
    Connection old = open_database(old_db, SQLITE_OPEN_READWRITE, error);
    if (!old) return false;
    old_vote = read_hard_state(old.get());
  }
  if (!old_vote) return true;
  Connection db = open_database(copy, SQLITE_OPEN_READWRITE, error);
  if (!db) return false;
  const std::optional<HardState> copied = read_hard_state(db.get());
  if (copied && copied->epoch >= old_vote->epoch) return true;
  return write_hard_state(db.get(), *old_vote, error);
}

bool copy_file_synced(const std::string& from, const std::string& to, std::string* error) {
  std::error_code ec;
  fs::copy_file(from, to, fs::copy_options::overwrite_existing, ec);
  if (ec) {
    *error = "cannot copy " + from + " to " + to + ": " + ec.message();
    return false;
  }
  if (!sync_path(to)) {
    *error = "cannot flush " + to + " to disk";
    return false;
  }
  return true;
}

std::string read_small_file(const std::string& path, size_t bytes_max, std::string* error) {
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  if (ec) {
    *error = "cannot read " + path + ": " + ec.message();
    return "";
  }
  if (size > bytes_max) {
    *error = path + " is " + std::to_string(size) + " bytes, more than a manifest can be";
    return "";
  }
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  if (!in) *error = "cannot read " + path;
  return text.str();
}

}  // namespace

std::string to_json(const Manifest& m) {
  Object::Ptr o = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
  o->set("format", m.format);
  o->set("node", m.node);
  o->set("nodeId", m.node_id);
  o->set("instanceId", m.instance_id);
  o->set("cluster", m.cluster);
  o->set("chorusVersion", m.chorus_version);
  o->set("createdAt", m.created_at);
  o->set("schemaVersion", m.schema_version);
  o->set("epochNumber", m.epoch_number);
  o->set("epochId", m.epoch_id);
  o->set("epochPosition", m.epoch_position);
  o->set("logPosition", m.log_position);
  o->set("commitPosition", m.commit_position);
  o->set("durationMs", m.duration_ms);
  Array::Ptr files = new Array;
  for (const FileEntry& f : m.files) {
    Object::Ptr entry = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
    entry->set("name", f.name);
    entry->set("bytes", f.bytes);
    entry->set("sha256", f.sha256);
    files->add(entry);
  }
  o->set("files", files);
  std::ostringstream out;
  o->stringify(out, 2);
  return out.str() + "\n";
}

std::optional<Manifest> manifest_from_json(const std::string& text, std::string* error) {
  Manifest m;
  try {
    Poco::JSON::Parser parser;
    const Object::Ptr o = parser.parse(text).extract<Object::Ptr>();
    m.format = o->getValue<int>("format");
    if (m.format != kManifestFormat) {
      *error = "manifest format " + std::to_string(m.format) + " is not " +
               std::to_string(kManifestFormat) + " (written by another release)";
      return std::nullopt;
    }
    m.node = o->optValue<std::string>("node", "");
    m.node_id = o->optValue<std::string>("nodeId", "");
    m.instance_id = o->optValue<std::string>("instanceId", "");
    m.cluster = o->optValue<std::string>("cluster", "");
    m.chorus_version = o->optValue<std::string>("chorusVersion", "");
    m.created_at = o->optValue<std::string>("createdAt", "");
    m.schema_version = o->optValue<int64_t>("schemaVersion", 0);
    m.epoch_number = o->optValue<int64_t>("epochNumber", -1);
    m.epoch_id = o->optValue<std::string>("epochId", "");
    m.epoch_position = o->optValue<int64_t>("epochPosition", -1);
    m.log_position = o->getValue<int64_t>("logPosition");
    m.commit_position = o->getValue<int64_t>("commitPosition");
    m.duration_ms = o->optValue<int64_t>("durationMs", 0);
    const Array::Ptr files = o->getArray("files");
    for (size_t i = 0; files && i < files->size(); ++i) {
      const Object::Ptr f = files->getObject(static_cast<unsigned>(i));
      if (!f) throw std::runtime_error("files[" + std::to_string(i) + "] is not an object");
      FileEntry entry{f->getValue<std::string>("name"), f->getValue<int64_t>("bytes"),
                      f->getValue<std::string>("sha256")};
      if (!plain_file_name(entry.name)) {
        *error = "manifest names the file '" + entry.name + "', which is not a plain file name";
        return std::nullopt;
      }
      m.files.push_back(std::move(entry));
    }
  } catch (const std::exception& e) {
    *error = std::string("not a backup manifest: ") + e.what();
    return std::nullopt;
  }
  return m;
}

std::string sha256_file(const std::string& path, std::string* error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    *error = "cannot read " + path;
    return "";
  }
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1) {
    *error = "OpenSSL cannot hash";
    return "";
  }
  std::vector<char> chunk(kHashChunkBytes);
  while (in.read(chunk.data(), static_cast<std::streamsize>(chunk.size())) || in.gcount() > 0) {
    EVP_DigestUpdate(ctx.get(), chunk.data(), static_cast<size_t>(in.gcount()));
  }
  if (in.bad()) {
    *error = "cannot read " + path;
    return "";
  }
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int length = 0;
  EVP_DigestFinal_ex(ctx.get(), digest.data(), &length);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  for (unsigned int i = 0; i < length; ++i) {
    hex += kHex[digest[i] >> 4];
    hex += kHex[digest[i] & 15];
  }
  return hex;
}

bool sync_path(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = ::fsync(fd) == 0;
  ::close(fd);
  return ok;
}

namespace {

// `requested` resolved inside `root` (symbolic links of existing parts followed), or nullopt.
std::optional<fs::path> path_in_root(const std::string& root, const std::string& requested,
                                     std::string* error) {
  if (root.empty()) {
    *error = "no backup root is configured (the manager's BackupRoot)";
    return std::nullopt;
  }
  if (requested.empty()) {
    *error = "the backup needs a folder name";
    return std::nullopt;
  }
  std::error_code ec;
  const fs::path root_path = fs::weakly_canonical(fs::absolute(root), ec);
  if (ec) {
    *error = "the backup root " + root + " cannot be resolved: " + ec.message();
    return std::nullopt;
  }
  const fs::path wanted =
      fs::path(requested).is_absolute() ? fs::path(requested) : fs::path(root_path) / requested;
  // weakly_canonical resolves the symbolic links of the parts that exist, so a link inside the
  // root that points elsewhere is caught here too.
  const fs::path target = fs::weakly_canonical(wanted, ec);
  if (ec) {
    *error = "the folder " + requested + " cannot be resolved: " + ec.message();
    return std::nullopt;
  }
  const fs::path inside = target.lexically_relative(root_path);
  if (inside.empty() || inside == "." || *inside.begin() == "..") {
    *error = "the folder " + requested + " is not inside the backup root " + root_path.string();
    return std::nullopt;
  }
  return target;
}

}  // namespace

std::optional<std::string> destination_in_root(const std::string& root,
                                               const std::string& requested, std::string* error) {
  const std::optional<fs::path> target = path_in_root(root, requested, error);
  if (!target) return std::nullopt;
  std::error_code ec;
  if (fs::exists(*target, ec)) {
    if (!fs::is_directory(*target, ec)) {
      *error = target->string() + " exists and is not a folder";
      return std::nullopt;
    }
    if (!fs::is_empty(*target, ec)) {
      *error = target->string() + " exists and is not empty; choose another name";
      return std::nullopt;
    }
  }
  return target->string();
}

std::optional<std::string> backup_in_root(const std::string& root, const std::string& requested,
                                          std::string* error) {
  const std::optional<fs::path> target = path_in_root(root, requested, error);
  if (!target) return std::nullopt;
  std::error_code ec;
  if (!fs::is_directory(*target, ec)) {
    *error = "no backup folder " + target->string();
    return std::nullopt;
  }
  return target->string();
}

std::optional<Manifest> verify_backup(const std::string& folder, std::string* error) {
  const std::string manifest_path = (fs::path(folder) / kManifestFileName).string();
  if (!fs::exists(manifest_path)) {
    *error = folder + " has no " + kManifestFileName + " (not a backup, or an unfinished one)";
    return std::nullopt;
  }
  const std::string text = read_small_file(manifest_path, kManifestBytesMax, error);
  if (!error->empty()) return std::nullopt;
  std::optional<Manifest> manifest = manifest_from_json(text, error);
  if (!manifest) return std::nullopt;
  bool has_database = false;
  for (const FileEntry& f : manifest->files) {
    const std::string path = (fs::path(folder) / f.name).string();
    std::error_code ec;
    const auto bytes = fs::file_size(path, ec);
    if (ec) {
      *error = f.name + " is missing from the backup: " + ec.message();
      return std::nullopt;
    }
    if (static_cast<int64_t>(bytes) != f.bytes) {
      *error = f.name + " has " + std::to_string(bytes) + " bytes, the manifest says " +
               std::to_string(f.bytes);
      return std::nullopt;
    }
    const std::string sum = sha256_file(path, error);
    if (sum.empty()) return std::nullopt;
    if (sum != f.sha256) {
      *error = f.name + " does not match its SHA-256 checksum (the file is damaged)";
      return std::nullopt;
    }
    has_database = has_database || f.name == kDatabaseFileName;
  }
  if (!has_database) {
    *error = std::string("the manifest lists no ") + kDatabaseFileName;
    return std::nullopt;
  }
  return manifest;
}

bool database_in_use(const std::string& path) {
  if (!fs::exists(path)) return false;
  std::string error;
  Connection db = open_database(path, SQLITE_OPEN_READWRITE, &error);
  if (!db) return true;
  // A running node holds the file open for good; no need to wait out a busy moment.
  sqlite3_busy_timeout(db.get(), kInUseWaitMs);
  // An exclusive lock in exclusive locking mode is refused while any other connection, of this
  // process or another, has the file open (in WAL mode too).
  const bool taken = exec(db.get(), "PRAGMA locking_mode=EXCLUSIVE", &error) &&
                     exec(db.get(), "BEGIN EXCLUSIVE", &error);
  if (taken) exec(db.get(), "ROLLBACK", &error);
  return !taken;
}

std::optional<Manifest> restore_backup(const std::string& backup_folder,
                                       const std::string& data_folder, std::string* error) {
  std::optional<Manifest> manifest = verify_backup(backup_folder, error);
  if (!manifest) return std::nullopt;
  std::error_code ec;
  fs::create_directories(data_folder, ec);
  if (ec) {
    *error = "cannot create " + data_folder + ": " + ec.message();
    return std::nullopt;
  }
  const fs::path target = fs::path(data_folder) / kDatabaseFileName;
  if (database_in_use(target.string())) {
    *error = target.string() + " is in use: stop the node first";
    return std::nullopt;
  }
  const std::string copy = target.string() + kRestoreSuffix;
  const std::string source = (fs::path(backup_folder) / kDatabaseFileName).string();
  if (!copy_file_synced(source, copy, error) || !carry_newer_vote(target.string(), copy, error) ||
      !sync_path(copy)) {
    if (error->empty()) *error = "cannot flush " + copy + " to disk";
    fs::remove(copy, ec);
    return std::nullopt;
  }
  // The old WAL belongs to the old file: left beside the copy it would be replayed into it.
  for (const char* suffix : {"-wal", "-shm"}) fs::remove(target.string() + suffix, ec);
  fs::rename(copy, target, ec);
  if (ec) {
    *error = "cannot move " + copy + " into place: " + ec.message() + " (run the restore again)";
    return std::nullopt;
  }
  sync_path(data_folder);
  return manifest;
}

}  // namespace chorus::backup
