// See storage_vfs.hpp. A shim in SQLite's usual style: our sqlite3_file comes first in the
// allocation, the default VFS's file right after it, and every method forwards to it.
#include "worker/engine/storage_vfs.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <string>

namespace chorus {
namespace {

// Gathered bytes are written once they reach this much even without a sync (a large
// transaction that spills pages mid-way); a group commit is at most kFlushBytesMax of events.
constexpr size_t kGatherBytesMax = 8u * 1024u * 1024u;
// The unix VFS writes at most 128 KiB per call (it masks the length with 0x1ffff, so a write of
// exactly 128 KiB would write nothing and fail as "disk full"): gathered bytes go in pieces.
constexpr size_t kWritePieceBytes = 120u * 1024u;

struct GatherFile {
  sqlite3_file base;     // first: SQLite sees this
  sqlite3_file* real;    // the default VFS's file, in the same allocation after this
  GatherFile* wal;       // on a database file: its connection's WAL file, while open
  GatherFile* database;  // on a WAL file: the database file whose `wal` it is
  std::string* pending;  // on a WAL file: the gathered bytes
  sqlite3_int64 pending_offset;
  int failed;  // a failed write of gathered bytes, reported from then on
};

sqlite3_vfs* g_default = nullptr;
sqlite3_vfs g_vfs;

size_t real_offset() { return (sizeof(GatherFile) + 7) & ~size_t{7}; }

GatherFile* gf(sqlite3_file* f) { return reinterpret_cast<GatherFile*>(f); }

int flush(GatherFile* f) {
  if (f->failed != SQLITE_OK) return f->failed;
  if (!f->pending || f->pending->empty()) return SQLITE_OK;
  int rc = SQLITE_OK;
  for (size_t done = 0; done < f->pending->size() && rc == SQLITE_OK; done += kWritePieceBytes) {
    const size_t n = std::min(kWritePieceBytes, f->pending->size() - done);
    rc = f->real->pMethods->xWrite(f->real, f->pending->data() + done, static_cast<int>(n),
                                   f->pending_offset + static_cast<sqlite3_int64>(done));
  }
  f->pending->clear();
  if (rc != SQLITE_OK) f->failed = rc;
  return rc;
}

int x_close(sqlite3_file* file) {
  GatherFile* f = gf(file);
  int rc = flush(f);
  if (f->database && f->database->wal == f) f->database->wal = nullptr;
  if (f->wal) f->wal->database = nullptr;
  delete f->pending;
  f->pending = nullptr;
  const int closed = f->real->pMethods->xClose(f->real);
  return rc != SQLITE_OK ? rc : closed;
}

int x_read(sqlite3_file* file, void* out, int amount, sqlite3_int64 offset) {
  GatherFile* f = gf(file);
  if (const int rc = flush(f); rc != SQLITE_OK) return rc;
  return f->real->pMethods->xRead(f->real, out, amount, offset);
}

int x_write(sqlite3_file* file, const void* data, int amount, sqlite3_int64 offset) {
  GatherFile* f = gf(file);
  if (!f->pending) return f->real->pMethods->xWrite(f->real, data, amount, offset);
  if (f->failed != SQLITE_OK) return f->failed;
  if (!f->pending->empty() &&
      offset != f->pending_offset + static_cast<sqlite3_int64>(f->pending->size())) {
    if (const int rc = flush(f); rc != SQLITE_OK) return rc;
  }
  if (f->pending->empty()) f->pending_offset = offset;
  f->pending->append(static_cast<const char*>(data), static_cast<size_t>(amount));
  return f->pending->size() >= kGatherBytesMax ? flush(f) : SQLITE_OK;
}

int x_truncate(sqlite3_file* file, sqlite3_int64 size) {
  GatherFile* f = gf(file);
  if (const int rc = flush(f); rc != SQLITE_OK) return rc;
  return f->real->pMethods->xTruncate(f->real, size);
}

int x_sync(sqlite3_file* file, int flags) {
  GatherFile* f = gf(file);
  if (const int rc = flush(f); rc != SQLITE_OK) return rc;
  return f->real->pMethods->xSync(f->real, flags);
}

int x_file_size(sqlite3_file* file, sqlite3_int64* size) {
  GatherFile* f = gf(file);
  if (const int rc = flush(f); rc != SQLITE_OK) return rc;
  return f->real->pMethods->xFileSize(f->real, size);
}

int x_lock(sqlite3_file* file, int level) {
  return gf(file)->real->pMethods->xLock(gf(file)->real, level);
}

int x_unlock(sqlite3_file* file, int level) {
  return gf(file)->real->pMethods->xUnlock(gf(file)->real, level);
}

int x_check_reserved_lock(sqlite3_file* file, int* out) {
  return gf(file)->real->pMethods->xCheckReservedLock(gf(file)->real, out);
}

int x_file_control(sqlite3_file* file, int op, void* arg) {
  GatherFile* f = gf(file);
  if (const int rc = flush(f); rc != SQLITE_OK) return rc;
  return f->real->pMethods->xFileControl(f->real, op, arg);
}

int x_sector_size(sqlite3_file* file) {
  return gf(file)->real->pMethods->xSectorSize(gf(file)->real);
}

int x_device_characteristics(sqlite3_file* file) {
  return gf(file)->real->pMethods->xDeviceCharacteristics(gf(file)->real);
}

int x_shm_map(sqlite3_file* file, int page, int page_size, int extend, void volatile** out) {
  return gf(file)->real->pMethods->xShmMap(gf(file)->real, page, page_size, extend, out);
}

int x_shm_lock(sqlite3_file* file, int offset, int n, int flags) {
  return gf(file)->real->pMethods->xShmLock(gf(file)->real, offset, n, flags);
}

// SQLite calls this on the database file right before it publishes new WAL frames to other
// connections (the wal-index header): they must be in the file by then. A write failing here
// cannot be reported to this call; it is reported by every later call on the WAL file.
void x_shm_barrier(sqlite3_file* file) {
  GatherFile* f = gf(file);
  if (f->wal) flush(f->wal);
  f->real->pMethods->xShmBarrier(f->real);
}

int x_shm_unmap(sqlite3_file* file, int delete_flag) {
  return gf(file)->real->pMethods->xShmUnmap(gf(file)->real, delete_flag);
}

int x_fetch(sqlite3_file* file, sqlite3_int64 offset, int amount, void** out) {
  GatherFile* f = gf(file);
  if (const int rc = flush(f); rc != SQLITE_OK) return rc;
  return f->real->pMethods->xFetch(f->real, offset, amount, out);
}

int x_unfetch(sqlite3_file* file, sqlite3_int64 offset, void* p) {
  return gf(file)->real->pMethods->xUnfetch(gf(file)->real, offset, p);
}

const sqlite3_io_methods g_methods = {
    3,
    x_close,
    x_read,
    x_write,
    x_truncate,
    x_sync,
    x_file_size,
    x_lock,
    x_unlock,
    x_check_reserved_lock,
    x_file_control,
    x_sector_size,
    x_device_characteristics,
    x_shm_map,
    x_shm_lock,
    x_shm_barrier,
    x_shm_unmap,
    x_fetch,
    x_unfetch,
};

int x_open(sqlite3_vfs*, sqlite3_filename name, sqlite3_file* file, int flags, int* out_flags) {
  GatherFile* f = gf(file);
  std::memset(f, 0, sizeof(GatherFile));
  f->real = reinterpret_cast<sqlite3_file*>(reinterpret_cast<char*>(f) + real_offset());
  const int rc = g_default->xOpen(g_default, name, f->real, flags, out_flags);
  if (rc != SQLITE_OK || f->real->pMethods == nullptr) {
    // SQLite closes a file only if it has methods; so does the real VFS's failed open.
    if (f->real->pMethods) f->real->pMethods->xClose(f->real);
    f->base.pMethods = nullptr;
    return rc != SQLITE_OK ? rc : SQLITE_CANTOPEN;
  }
  if (f->real->pMethods->iVersion < 3) {
    // Not the unix VFS this was written for: forward nothing we could not forward.
    f->real->pMethods->xClose(f->real);
    f->base.pMethods = nullptr;
    return SQLITE_CANTOPEN;
  }
  if ((flags & SQLITE_OPEN_WAL) != 0 && name != nullptr) {
    f->pending = new std::string();
    f->pending->reserve(1u << 20);
    // The database file of the same connection: SQLite opened it through this VFS first.
    sqlite3_file* database = sqlite3_database_file_object(name);
    if (database && database->pMethods == &g_methods) {
      f->database = gf(database);
      f->database->wal = f;
    }
  }
  f->base.pMethods = &g_methods;
  return SQLITE_OK;
}

int x_delete(sqlite3_vfs*, const char* name, int sync_dir) {
  return g_default->xDelete(g_default, name, sync_dir);
}
int x_access(sqlite3_vfs*, const char* name, int flags, int* out) {
  return g_default->xAccess(g_default, name, flags, out);
}
int x_full_pathname(sqlite3_vfs*, const char* name, int n, char* out) {
  return g_default->xFullPathname(g_default, name, n, out);
}
void* x_dl_open(sqlite3_vfs*, const char* name) { return g_default->xDlOpen(g_default, name); }
void x_dl_error(sqlite3_vfs*, int n, char* out) { g_default->xDlError(g_default, n, out); }
void (*x_dl_sym(sqlite3_vfs*, void* h, const char* sym))(void) {
  return g_default->xDlSym(g_default, h, sym);
}
void x_dl_close(sqlite3_vfs*, void* h) { g_default->xDlClose(g_default, h); }
int x_randomness(sqlite3_vfs*, int n, char* out) {
  return g_default->xRandomness(g_default, n, out);
}
int x_sleep(sqlite3_vfs*, int us) { return g_default->xSleep(g_default, us); }
int x_current_time(sqlite3_vfs*, double* out) { return g_default->xCurrentTime(g_default, out); }
int x_get_last_error(sqlite3_vfs*, int n, char* out) {
  return g_default->xGetLastError(g_default, n, out);
}
int x_current_time_int64(sqlite3_vfs*, sqlite3_int64* out) {
  return g_default->xCurrentTimeInt64(g_default, out);
}

}  // namespace

const char* wal_gathering_vfs() {
  static std::once_flag once;
  std::call_once(once, [] {
    g_default = sqlite3_vfs_find(kDatabaseVfs);
    if (!g_default || g_default->iVersion < 2) {
      throw std::runtime_error(std::string("SQLite has no VFS ") + kDatabaseVfs +
                               " of version 2 or later");
    }
    g_vfs = sqlite3_vfs{};
    g_vfs.iVersion = 2;
    g_vfs.szOsFile = static_cast<int>(real_offset()) + g_default->szOsFile;
    g_vfs.mxPathname = g_default->mxPathname;
    g_vfs.zName = "chorus-wal-gathering";
    g_vfs.xOpen = x_open;
    g_vfs.xDelete = x_delete;
    g_vfs.xAccess = x_access;
    g_vfs.xFullPathname = x_full_pathname;
    g_vfs.xDlOpen = x_dl_open;
    g_vfs.xDlError = x_dl_error;
    g_vfs.xDlSym = x_dl_sym;
    g_vfs.xDlClose = x_dl_close;
    g_vfs.xRandomness = x_randomness;
    g_vfs.xSleep = x_sleep;
    g_vfs.xCurrentTime = x_current_time;
    g_vfs.xGetLastError = x_get_last_error;
    g_vfs.xCurrentTimeInt64 = x_current_time_int64;
    if (sqlite3_vfs_register(&g_vfs, 0) != SQLITE_OK) {
      throw std::runtime_error("cannot register SQLite's WAL-gathering VFS");
    }
  });
  return "chorus-wal-gathering";
}

}  // namespace chorus
