// A SQLite VFS over "unix-excl" (kDatabaseVfs, below) that gathers a connection's writes to its
// WAL file and hands them to the file system as one write. SQLite writes each WAL frame as two
// writes (its 24-byte header, then the page) at offsets that straddle the file system's pages, so
// a commit of N frames cost 2N pwrite calls and about 3N page-cache page updates; gathered, it
// costs one call and about N. Nothing else changes: the gathered bytes are written before SQLite
// syncs the WAL (xSync), before it publishes new frames to other connections (the barrier before
// the wal-index header is written, xShmBarrier on the database file), before any read, size
// query or truncation of the WAL, and when a write is not contiguous with the gathered ones.
// Used by the storage writer's connection only. Thread safety: one connection per file, as SQLite.
#pragma once

namespace chorus {

// The VFS of every connection a worker opens to its own database, the gathering VFS's base too.
// SQLite's "unix-excl" (os_unix.c) takes one POSIX write lock on the database file for the
// process at its first lock and keeps it until the last connection closes; from then on the
// connections of this process lock each other in memory only and keep the WAL index on the heap,
// not in a mapped -shm file. The plain "unix" VFS makes six fcntl calls per commit for the same
// locks (the write lock, a read mark and the file's shared lock, each taken and released), at
// ~1 us a syscall on this project's machines. Safe because a worker is the only process that may
// open its database while it runs: any other process, SQLite's own tools included, is refused
// (SQLITE_BUSY) instead of reading or writing beside it, which is what the manager's "in use"
// check before a restore relies on. Every connection to the file must use it: a plain "unix"
// connection in the same process would replace the process's write lock with its own read lock.
inline constexpr const char* kDatabaseVfs = "unix-excl";

// The name to pass to sqlite3_open_v2; registers the VFS on first use (thread-safe).
const char* wal_gathering_vfs();

}  // namespace chorus
