//! The store's connection, and riding through a lost one: a restarted or failed-over server, a
//! dropped socket. An operation that fails because the connection is gone is run again on a
//! new connection, with a bounded exponential backoff, for at most the configured give-up
//! time ([`super::PostgresConfig::reconnect`]); see `DESIGN.md`, "PostgreSQL store".
//!
//! Running a write again is safe because every write (a) checks the fencing token first, in the
//! transaction that writes, so a process that lost the lease while it was cut off is
//! [`StoreError::Fenced`] and writes nothing, and (b) resolves an unknown outcome before
//! writing: a write that appends an event remembers the number it tried, and the new attempt
//! first reads that event back — if it is there with the attempt's checksum, the lost `COMMIT`
//! had landed and nothing is written again (`mod.rs`); every other write is idempotent (records
//! are upserted or deleted, log entries already there and equal are accepted, a prune to the
//! same start is the same prune).

use std::time::{Duration, Instant};

use postgres::{Client, NoTls};

use super::rows::Statements;
use super::{pg, quoted, PostgresConfig};
use crate::store::StoreError;

/// The first wait before a reconnection; it doubles up to [`MAX_WAIT`].
const FIRST_WAIT: Duration = Duration::from_millis(20);
/// The longest wait between two reconnection attempts.
const MAX_WAIT: Duration = Duration::from_secs(1);

/// A connection with the hot path's statements prepared on it.
pub(super) struct Conn {
    pub(super) client: Client,
    pub(super) stmts: Statements,
}

impl Conn {
    /// Connect with `schema` first on the `search_path` and prepare the statements (the
    /// store's tables must exist).
    pub(super) fn open(url: &str, schema: &str) -> Result<Self, StoreError> {
        let mut client = connect(url, schema)?;
        let stmts = Statements::prepare(&mut client)?;
        Ok(Conn { client, stmts })
    }
}

/// A connection with `schema` first on its `search_path`.
pub(super) fn connect(url: &str, schema: &str) -> Result<Client, StoreError> {
    let mut client = Client::connect(url, NoTls).map_err(pg("connecting"))?;
    client
        .batch_execute(&format!("SET search_path TO {}", quoted(schema)))
        .map_err(pg("connecting"))?;
    Ok(client)
}

/// Whether `e` says the connection is gone (worth a new one), not that the server refused what
/// we asked: a closed connection, an I/O error, a connection exception (SQLSTATE class 08) or
/// an operator intervention (class 57P: the server shutting down, crashed or starting up).
pub(super) fn connection_lost(e: &StoreError) -> bool {
    let StoreError::Backend {
        backend: "postgres",
        source,
        ..
    } = e
    else {
        return false;
    };
    source
        .downcast_ref::<postgres::Error>()
        .is_some_and(lost_pg)
}

fn lost_pg(e: &postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    if let Some(state) = e.code() {
        let code = state.code();
        return code.starts_with("08") || code.starts_with("57P");
    }
    std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>())
}

/// Run `op` on `conn`; while it fails with a lost connection, reconnect (waiting 20 ms, doubling
/// up to 1 s) and run it again, until `config.reconnect` has passed since the first failure:
/// then the last error. Any other outcome is returned as it is.
pub(super) fn retrying<T>(
    conn: &mut Conn,
    config: &PostgresConfig,
    mut op: impl FnMut(&mut Conn) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let mut outage: Option<Instant> = None;
    loop {
        let lost = match op(conn) {
            Err(e) if connection_lost(&e) => e,
            other => {
                if let Some(since) = outage {
                    tracing::info!(
                        ms = since.elapsed().as_millis() as u64,
                        "reconnected to PostgreSQL"
                    );
                }
                return other;
            }
        };
        let since = *outage.get_or_insert_with(|| {
            tracing::warn!(error = %lost, give_up_ms = config.reconnect.as_millis() as u64,
                "lost the PostgreSQL connection: reconnecting");
            Instant::now()
        });
        *conn = reconnect(config, since, lost)?;
    }
}

/// A new connection, tried with backoff until `config.reconnect` after `since`; `last` is the
/// error returned if none can be made in time.
fn reconnect(
    config: &PostgresConfig,
    since: Instant,
    mut last: StoreError,
) -> Result<Conn, StoreError> {
    let mut wait = FIRST_WAIT;
    loop {
        let left = config.reconnect.saturating_sub(since.elapsed());
        if left.is_zero() {
            tracing::error!(error = %last, "PostgreSQL unreachable: giving up");
            return Err(last);
        }
        std::thread::sleep(wait.min(left));
        wait = (wait * 2).min(MAX_WAIT);
        match Conn::open(&config.url, &config.schema) {
            Ok(conn) => return Ok(conn),
            Err(e) if connection_lost(&e) => last = e,
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_postgres_connection_failure_counts_as_lost() {
        let io = std::io::Error::new(std::io::ErrorKind::BrokenPipe, "gone");
        let not_pg = StoreError::Backend {
            backend: "postgres",
            context: "x",
            source: Box::new(io),
        };
        assert!(!connection_lost(&not_pg));
        assert!(!connection_lost(&StoreError::Fenced {
            held: 1,
            current: Some(2)
        }));
        assert!(!connection_lost(&StoreError::ReadOnly));
        let no_server = connect("host=/nonexistent/contractcourt user=x dbname=x", "s");
        assert!(no_server.is_err_and(|e| connection_lost(&e)));
    }
}
