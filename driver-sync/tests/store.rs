//! The stores on real files and a real server, one test binary: the SQLite store (reopening,
//! corruption, future versions, foreign files, locking, a writer killed mid-stream) and the
//! PostgreSQL store (the same, its lease, and lost connections).

// Each part is a module of this binary (no new test target); the files are in `store/`.
#[path = "store/crash_writer.rs"]
mod crash_writer;
#[path = "store/pg_cluster.rs"]
mod pg_cluster;
#[path = "store/pg_proxy.rs"]
mod pg_proxy;
#[path = "store/pg_reconnect.rs"]
mod pg_reconnect;
#[path = "store/pg_support.rs"]
mod pg_support;
#[path = "store/postgres.rs"]
mod postgres;
#[path = "store/sqlite.rs"]
mod sqlite;
#[path = "store/sqlite_crash.rs"]
mod sqlite_crash;
#[path = "store/sqlite_support.rs"]
mod sqlite_support;
