//! The owner's lease of a PostgreSQL store, with a fencing token: one writer at a time, and a
//! standby that takes over when the owner stops renewing (see `DESIGN.md`, "PostgreSQL store").
//!
//! The `lease` table has one row: `token` (incremented by every takeover), `holder` (for
//! people: the process id) and `expires_at`, always in the *server's* clock (`now()`), so no two
//! processes' clocks are compared. A store takes the lease at open when it is free or expired,
//! incrementing the token. Every write transaction first locks the row (`FOR UPDATE`) and
//! checks that the token is still its own — else [`StoreError::Fenced`], and nothing of the
//! write is visible — and extends `expires_at` in the same transaction. A thread with its own
//! connection renews the lease every third of its duration — but only as far as the owner is
//! alive: to its last heartbeat ([`LeaseWatch::beat`]: every store call, and every turn of
//! `serve`'s loop) plus the lease, so an owner whose loop hangs loses the lease a lease after
//! its last beat although its process lives. The renewer stops for good when it finds the token
//! changed. Dropping the store releases the lease at once (expires it), so an orderly stop hands
//! over without waiting. Renewal failures are logged once per streak (and their end once).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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

/// The owner's side of its lease, shared with its renewer: when the owner last showed it is
/// alive, and whether the lease was found taken over (by the renewer or a refused write), so
/// an owner that writes seldom learns it at once.
#[derive(Clone, Debug)]
pub struct LeaseWatch(Arc<Watch>);

#[derive(Debug)]
struct Watch {
    born: Instant,
    /// Milliseconds after `born` of the last beat.
    beat_ms: AtomicU64,
    /// Another process took the lease over.
    fenced: AtomicBool,
}

impl LeaseWatch {
    pub(super) fn new() -> Self {
        LeaseWatch(Arc::new(Watch {
            born: Instant::now(),
            beat_ms: AtomicU64::new(0),
            fenced: AtomicBool::new(false),
        }))
    }

    /// Whether the lease was found taken over: the store can write nothing more.
    pub fn fenced(&self) -> bool {
        self.0.fenced.load(Ordering::SeqCst)
    }

    pub(super) fn set_fenced(&self) {
        self.0.fenced.store(true, Ordering::SeqCst);
    }

    /// The owner is alive (the store calls this on every read and write; `serve` on every turn
    /// of its loop). The lease is renewed up to a lease after the last beat, no further.
    pub fn beat(&self) {
        let now = u64::try_from(self.0.born.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.0.beat_ms.store(now, Ordering::SeqCst);
    }

    /// How long since the last beat.
    fn age(&self) -> Duration {
        let beat = Duration::from_millis(self.0.beat_ms.load(Ordering::SeqCst));
        self.0.born.elapsed().saturating_sub(beat)
    }
}

/// A run of failures, to log its start and its end once each, not every failure.
#[derive(Debug, Default)]
struct Streak {
    since: Option<Instant>,
}

impl Streak {
    /// A failure: whether it starts a streak.
    fn failed(&mut self) -> bool {
        let first = self.since.is_none();
        self.since.get_or_insert_with(Instant::now);
        first
    }

    /// A success: how long the streak it ends lasted, if one.
    fn ended(&mut self) -> Option<Duration> {
        self.since.take().map(|s| s.elapsed())
    }
}

/// The thread renewing a held lease; stopped (and the lease released) on drop.
#[derive(Debug)]
pub(super) struct Renewer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Renewer {
    /// Renew lease `token` of `schema` every `lease / 3` on a connection of its own, up to a
    /// lease after `watch`'s last beat.
    pub(super) fn start(
        url: &str,
        schema: &str,
        token: i64,
        lease: Duration,
        watch: LeaseWatch,
    ) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let (url, schema) = (url.to_string(), schema.to_string());
        let held = Held {
            url,
            schema,
            token,
            lease,
        };
        let thread = std::thread::Builder::new()
            .name("pg-lease".into())
            .spawn(move || renew_loop(&held, &watch, &flag))
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

/// The lease a renewer holds.
struct Held {
    url: String,
    schema: String,
    token: i64,
    lease: Duration,
}

impl Held {
    /// Extend the lease to `left` from now (never shortening it): `Ok(false)` if the token is
    /// no longer ours. A failed connection is dropped (a new one is made next time).
    fn renew(&self, client: &mut Option<Client>, left: Duration) -> Result<bool, StoreError> {
        if client.is_none() {
            *client = Some(super::connect(&self.url, &self.schema)?);
        }
        let c = client.as_mut().ok_or(StoreError::ReadOnly)?;
        let renewed = c.execute(
            "UPDATE lease SET expires_at = \
             GREATEST(expires_at, now() + $2::bigint * interval '1 millisecond') \
             WHERE id = 0 AND token = $1",
            &[&self.token, &millis(left)],
        );
        match renewed {
            Ok(n) => Ok(n > 0),
            Err(e) => {
                *client = None;
                Err(pg("renewing the lease")(e))
            }
        }
    }
}

fn renew_loop(held: &Held, watch: &LeaseWatch, stop: &AtomicBool) {
    let every = (held.lease / 3).max(Duration::from_millis(10));
    let mut client: Option<Client> = None;
    let (mut failing, mut stale) = (Streak::default(), Streak::default());
    // The lease was just taken (or extended by a write) for a whole duration: the first renewal
    // is due a third of it later, not at once.
    std::thread::park_timeout(every);
    while !stop.load(Ordering::SeqCst) {
        let age = watch.age();
        if age >= held.lease {
            if stale.failed() {
                tracing::warn!(
                    idle_ms = age.as_millis() as u64,
                    "the store's owner has not run for a lease: its lease is not renewed"
                );
            }
        } else {
            if stale.ended().is_some() {
                tracing::info!("the store's owner runs again: renewing its lease");
            }
            match held.renew(&mut client, held.lease - age) {
                Ok(true) => {
                    if let Some(d) = failing.ended() {
                        tracing::info!(
                            after_ms = d.as_millis() as u64,
                            "the lease is renewed again"
                        );
                    }
                }
                Ok(false) => {
                    tracing::warn!(
                        token = held.token,
                        "the lease was taken over: not renewing it"
                    );
                    watch.set_fenced();
                    return;
                }
                Err(e) => {
                    if failing.failed() {
                        tracing::warn!(error = %e, retry_ms = every.as_millis() as u64,
                            "renewing the store's lease failed (retrying; logged once until it works)");
                    }
                }
            }
        }
        std::thread::park_timeout(every);
    }
    // An orderly stop: hand the lease over at once.
    let released = client.or_else(|| super::connect(&held.url, &held.schema).ok());
    if let Some(mut c) = released {
        let _ = c.execute(
            "UPDATE lease SET expires_at = 'epoch' WHERE id = 0 AND token = $1",
            &[&held.token],
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_streak_is_reported_once_at_its_start_and_once_at_its_end() {
        let mut streak = Streak::default();
        assert_eq!(streak.ended(), None);
        assert!(streak.failed());
        assert!(!streak.failed());
        assert!(!streak.failed());
        assert!(streak.ended().is_some());
        assert_eq!(streak.ended(), None);
        assert!(streak.failed());
    }

    #[test]
    fn a_beat_makes_the_owner_young_again() {
        let watch = LeaseWatch::new();
        std::thread::sleep(Duration::from_millis(30));
        assert!(watch.age() >= Duration::from_millis(30));
        watch.clone().beat();
        assert!(watch.age() < Duration::from_millis(30));
    }
}
