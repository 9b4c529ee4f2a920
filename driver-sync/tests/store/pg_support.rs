//! A PostgreSQL store in a schema of its own on the test server, dropped with it.
//!
//! The server is named by `CONTRACTCOURT_TEST_POSTGRES` (a connection string; `scripts/test`
//! starts a throw-away cluster with `scripts/pg-test-cluster` and sets it). Without it these
//! tests fail, saying so: a PostgreSQL test that silently passes without a server proves nothing.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use contractcourt_core::action::{Batch, Record, RecordKey};
use contractcourt_core::event::Event;
use contractcourt_core::types::ChannelId;
use contractcourt_sync::store::{
    PostgresConfig, PostgresStore, Records, StepDigest, Store, StoreError,
};

pub const ENV: &str = "CONTRACTCOURT_TEST_POSTGRES";

/// The test server's connection string, or a failure saying how to get one.
pub fn server_url() -> String {
    match std::env::var(ENV) {
        Ok(url) if !url.trim().is_empty() => url,
        _ => panic!(
            "{ENV} is not set: the PostgreSQL store's tests need a server. Run them through \
             scripts/test (it starts a throw-away cluster), or start one with \
             `scripts/pg-test-cluster start` and export {ENV}=<the connection string it prints>"
        ),
    }
}

/// A schema name no other test (of this or another process) uses.
pub fn fresh_schema(name: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "t_{name}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A configuration for `schema` on the test server, with a short lease.
pub fn config(schema: &str) -> PostgresConfig {
    PostgresConfig {
        url: server_url(),
        schema: schema.to_string(),
        lease: Duration::from_secs(5),
        reconnect: Duration::from_secs(20),
    }
}

/// A plain connection to the test server (to tamper with rows, as an attacker or a bad disk).
pub fn raw(schema: &str) -> postgres::Client {
    let mut c = postgres::Client::connect(&server_url(), postgres::NoTls).unwrap();
    c.batch_execute(&format!("SET search_path TO \"{schema}\""))
        .unwrap();
    c
}

/// Drops its schema (and everything in it) when dropped.
pub struct SchemaGuard(pub String);

impl Drop for SchemaGuard {
    fn drop(&mut self) {
        if let Ok(mut c) = postgres::Client::connect(&server_url(), postgres::NoTls) {
            let _ = c.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.0));
        }
    }
}

/// A fresh PostgreSQL store whose schema is dropped after it closes.
pub struct PgTestStore {
    // Field order: the store closes before its schema goes.
    pub store: PostgresStore,
    _guard: SchemaGuard,
}

impl PgTestStore {
    pub fn new() -> Self {
        let schema = fresh_schema("kit");
        let guard = SchemaGuard(schema.clone());
        let store = PostgresStore::open(config(&schema)).unwrap();
        PgTestStore {
            store,
            _guard: guard,
        }
    }
}

impl Store for PgTestStore {
    fn load(&self) -> Result<Records, StoreError> {
        self.store.load()
    }
    fn load_channel(&self, channel: ChannelId) -> Result<Vec<(RecordKey, Record)>, StoreError> {
        self.store.load_channel(channel)
    }
    fn commit(&mut self, batch: &Batch) -> Result<(), StoreError> {
        self.store.commit(batch)
    }
    fn commit_many(&mut self, batches: &[Batch]) -> Result<(), StoreError> {
        self.store.commit_many(batches)
    }
    fn read_log(&self, channel: ChannelId, seq: u64) -> Result<Option<Record>, StoreError> {
        self.store.read_log(channel, seq)
    }
    fn append_event(&mut self, event: &Event) -> Result<u64, StoreError> {
        self.store.append_event(event)
    }
    fn events(&self, from_seq: u64, limit: usize) -> Result<Vec<(u64, Event)>, StoreError> {
        self.store.events(from_seq, limit)
    }
    fn event_count(&self) -> Result<u64, StoreError> {
        self.store.event_count()
    }
    fn commit_step(
        &mut self,
        event: &Event,
        step: &StepDigest,
        batches: &[&Batch],
    ) -> Result<u64, StoreError> {
        self.store.commit_step(event, step, batches)
    }
    fn step_digests(
        &self,
        from_seq: u64,
        limit: usize,
    ) -> Result<Vec<(u64, StepDigest)>, StoreError> {
        self.store.step_digests(from_seq, limit)
    }
    fn prune_recorder(&mut self, keep_from: u64, start: &Records) -> Result<(), StoreError> {
        self.store.prune_recorder(keep_from, start)
    }
    fn replay_start(&self) -> Result<Option<(u64, Records)>, StoreError> {
        self.store.replay_start()
    }
}
