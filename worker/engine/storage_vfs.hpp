// A SQLite VFS over the default one that gathers a connection's writes to its WAL file and
// hands them to the file system as one write. SQLite writes each WAL frame as two writes (its
// 24-byte header, then the page) at offsets that straddle the file system's pages, so a commit
// of N frames cost 2N pwrite calls and about 3N page-cache page updates; gathered, it costs one
// call and about N. Nothing else changes: the gathered bytes are written before SQLite syncs the
// WAL (xSync), before it publishes new frames to other connections (the barrier before the
// wal-index header is written, xShmBarrier on the database file), before any read, size query
// or truncation of the WAL, and when a write is not contiguous with the gathered ones.
// Used by the storage writer's connection only. Thread safety: one connection per file, as SQLite.
#pragma once

namespace chorus {

// The name to pass to sqlite3_open_v2; registers the VFS on first use (thread-safe).
const char* wal_gathering_vfs();

}  // namespace chorus
