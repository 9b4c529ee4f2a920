//! The owner's lease of a PostgreSQL store, with a fencing token: one writer at a time, and a
//! standby that takes over when the owner stops renewing (see `DESIGN.md`, "PostgreSQL store").
//!
//! The `lease` table has one row: `token` (incremented by every takeover), `holder` (for
//! people: the process id) and `expires_at`, always in the *server's* clock (`now()`), so no two
//! processes' clocks are compared. A store takes the lease at open when it is free or expired,
//! incrementing the token. Every write transaction first locks the row (`FOR UPDATE`) and
//! checks that the token is still its own — else [`StoreError::Fenced`], and nothing of the
//! write is visible — and extends `expires_at` in the same transaction. A thread with its own
//! connection renews the lease every third of its duration while the store lives, and stops
//! for good when it finds the token changed. Dropping the store releases the lease at once
//! (expires it), so an orderly stop hands over without waiting.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use postgres::{Client, GenericClient};

use super::pg;
use crate::store::StoreError;

/// How long a lease lasts without renewal; a standby takes over at most this long (plus its
/// poll) after the owner stopped.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(10);

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Who we are, for the `holder` column.
fn holder() -> String {
    format!("pid {}", std::process::id())
}

/// Take the lease if it is free or expired: the new token, or [`StoreError::Locked`] naming
/// the holder.
pub(super) fn try_take(client: &mut Client, lease: Duration) -> Result<i64, StoreError> {
    let err = pg("taking the lease");
    let mut tx = client.transaction().map_err(&err)?;
    let row = tx
        .query_one(
            "SELECT token, holder, expires_at > now(), \
             GREATEST(0, EXTRACT(EPOCH FROM expires_at - now()))::float8 \
             FROM lease WHERE id = 0 FOR UPDATE",
            &[],
        )
        .map_err(&err)?;
    let (token, who, live, left): (i64, String, bool, f64) =
        (row.get(0), row.get(1), row.get(2), row.get(3));
    if live {
        return Err(StoreError::Locked {
            reason: format!("the lease is held by {who} (token {token}) for {left:.1} s more"),
        });
    }
    let token: i64 = tx
        .query_one(
            "UPDATE lease SET token = token + 1, holder = $1, \
             expires_at = now() + $2::bigint * interval '1 millisecond' WHERE id = 0 RETURNING token",
            &[&holder(), &millis(lease)],
        )
        .map_err(&err)?
        .get(0);
    tx.commit().map_err(&err)?;
    Ok(token)
}

/// Wait until the lease can be taken, polling every `poll`, for at most `give_up` (`None`:
/// forever). The error of the last try when it gives up.
pub(super) fn wait_take(
    client: &mut Client,
    lease: Duration,
    poll: Duration,
    give_up: Option<Duration>,
) -> Result<i64, StoreError> {
    let start = Instant::now();
    loop {
        match try_take(client, lease) {
            Err(StoreError::Locked { .. }) if give_up.is_none_or(|g| start.elapsed() < g) => {
                std::thread::sleep(poll);
            }
            other => return other,
        }
    }
}

/// Inside a write transaction: lock the lease row, refuse unless its token is `held`, and
/// extend it by `lease`.
pub(super) fn fence(
    tx: &mut impl GenericClient,
    st: &super::rows::Statements,
    held: i64,
    lease: Duration,
) -> Result<(), StoreError> {
    let err = pg("checking the lease");
    let rows = tx.query(&st.fence_select, &[]).map_err(&err)?;
    let current: Option<i64> = rows.first().map(|r| r.get(0));
    if current != Some(held) {
        return Err(StoreError::Fenced { held, current });
    }
    tx.execute(&st.fence_extend, &[&millis(lease)])
        .map_err(&err)?;
    Ok(())
}

/// The thread renewing a held lease; stopped (and the lease released) on drop.
#[derive(Debug)]
pub(super) struct Renewer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Renewer {
    /// Renew lease `token` of `schema` every `lease / 3` on a connection of its own.
    pub(super) fn start(url: &str, schema: &str, token: i64, lease: Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let (url, schema) = (url.to_string(), schema.to_string());
        let thread = std::thread::Builder::new()
            .name("pg-lease".into())
            .spawn(move || renew_loop(&url, &schema, token, lease, &flag))
            .ok();
        Renewer { stop, thread }
    }
}

impl Drop for Renewer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

fn renew_loop(url: &str, schema: &str, token: i64, lease: Duration, stop: &AtomicBool) {
    let every = (lease / 3).max(Duration::from_millis(10));
    let mut client: Option<Client> = None;
    // The lease was just taken (or extended by a write) for a whole duration: the first renewal
    // is due a third of it later, not at once.
    std::thread::park_timeout(every);
    while !stop.load(Ordering::SeqCst) {
        if client.is_none() {
            client = super::connect(url, schema).ok();
        }
        if let Some(c) = client.as_mut() {
            match c.execute(
                "UPDATE lease SET expires_at = now() + $2::bigint * interval '1 millisecond' \
                 WHERE id = 0 AND token = $1",
                &[&token, &millis(lease)],
            ) {
                Ok(0) => return, // fenced: another process owns the store now
                Ok(_) => {}
                Err(_) => client = None, // reconnect at the next round
            }
        }
        std::thread::park_timeout(every);
    }
    // An orderly stop: hand the lease over at once.
    let released = client.or_else(|| super::connect(url, schema).ok());
    if let Some(mut c) = released {
        let _ = c.execute(
            "UPDATE lease SET expires_at = 'epoch' WHERE id = 0 AND token = $1",
            &[&token],
        );
    }
}
