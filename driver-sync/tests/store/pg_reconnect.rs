//! The PostgreSQL store across lost connections: a restarted server (a private cluster, so other
//! tests' sessions are not cut), a takeover while the owner was cut off, and a `COMMIT` whose
//! answer never came (a proxy cutting the connection just before or just after it).

use std::collections::BTreeMap;
use std::time::Duration;

use contractcourt_core::action::{RecordKey, RecordOp};
use contractcourt_core::event::Event;
use contractcourt_core::types::ClaimId;
use contractcourt_sync::store::conformance::{append, batch, chan, put, rec, some_events};
use contractcourt_sync::store::{PostgresConfig, PostgresStore, Store, StoreError};
use serde_json::json;

use super::pg_cluster::PrivateCluster;
use super::pg_proxy::{Cut, Proxy};
use super::pg_support::{config, fresh_schema, SchemaGuard};

fn on(url: &str, schema: &str) -> PostgresConfig {
    PostgresConfig {
        url: url.to_string(),
        ..config(schema)
    }
}

fn events_of(store: &PostgresStore) -> Vec<Event> {
    let events = store.events(0, 100).unwrap();
    let numbers: Vec<u64> = events.iter().map(|(n, _)| *n).collect();
    assert_eq!(numbers, (0..events.len() as u64).collect::<Vec<_>>());
    events.into_iter().map(|(_, e)| e).collect()
}

#[test]
fn postgres_a_restarted_server_is_ridden_through_and_nothing_is_lost_or_doubled() {
    let cluster = PrivateCluster::start("restart");
    let schema = fresh_schema("restart");
    let mut store = PostgresStore::open(on(&cluster.url, &schema)).unwrap();
    let token = store.token();
    let e = some_events(4);
    let node = rec(1, json!({"tip": 7}));
    let claim = rec(2, json!("claim"));
    store
        .commit(&batch(vec![put(RecordKey::Node, node.clone())]))
        .unwrap();
    assert_eq!(store.commit_step(&e[0], &[0; 32], &[]).unwrap(), 0);
    cluster.restart();
    // The first write after the restart: on a new connection, the token checked again.
    let claim_key = RecordKey::Claim { claim: ClaimId(3) };
    let step = batch(vec![
        put(claim_key.clone(), claim.clone()),
        append(chan(1), 0, rec(1, json!("revoked 0"))),
    ]);
    assert_eq!(store.commit_step(&e[1], &[1; 32], &[&step]).unwrap(), 1);
    assert_eq!(store.append_event(&e[2]).unwrap(), 2);
    cluster.restart();
    // A read first after this one.
    let expected: BTreeMap<RecordKey, _> = [(RecordKey::Node, node), (claim_key, claim)].into();
    assert_eq!(store.load().unwrap(), expected);
    cluster.restart();
    store
        .commit(&batch(vec![RecordOp::Delete {
            key: RecordKey::Node,
        }]))
        .unwrap();
    assert_eq!(store.commit_step(&e[3], &[3; 32], &[]).unwrap(), 3);
    assert_eq!(store.token(), token);
    assert_eq!(events_of(&store), e);
    let digests: Vec<u64> = store
        .step_digests(0, 10)
        .unwrap()
        .iter()
        .map(|d| d.0)
        .collect();
    assert_eq!(digests, vec![0, 1, 3]);
    assert_eq!(store.load().unwrap().len(), 1);
    drop(store);
    // What a fresh process reads is the same.
    let again = PostgresStore::open_read_only(on(&cluster.url, &schema)).unwrap();
    assert_eq!(events_of(&again), e);
    assert_eq!(
        again.read_log(chan(1), 0).unwrap(),
        Some(rec(1, json!("revoked 0")))
    );
}

#[test]
fn postgres_an_owner_reconnecting_after_a_takeover_is_fenced_and_writes_nothing() {
    let cluster = PrivateCluster::start("fence");
    let schema = fresh_schema("refence");
    let mut long = on(&cluster.url, &schema);
    long.lease = Duration::from_secs(120); // no renewal lands during the test
    let mut owner = PostgresStore::open(long.clone()).unwrap();
    owner
        .commit_step(&some_events(1)[0], &[0; 32], &[])
        .unwrap();
    cluster.restart();
    // While the owner is cut off its lease runs out (here: made to) and a standby takes it.
    let mut c = postgres::Client::connect(&cluster.url, postgres::NoTls).unwrap();
    c.batch_execute(&format!(
        "UPDATE \"{schema}\".lease SET expires_at = 'epoch'"
    ))
    .unwrap();
    let standby = PostgresStore::open(long).unwrap();
    let e = some_events(2);
    let refused = owner.commit_step(&e[1], &[1; 32], &[]);
    assert!(
        matches!(refused, Err(StoreError::Fenced { held, current }) if current == standby.token() && Some(held) == owner.token()),
        "{refused:?}"
    );
    assert_eq!(events_of(&standby), e[..1].to_vec());
}

#[test]
fn postgres_a_commit_whose_answer_was_lost_is_found_landed_and_not_written_twice() {
    let proxy = Proxy::start("landed");
    let schema = fresh_schema("landed");
    let _guard = SchemaGuard(schema.clone());
    let mut store = PostgresStore::open(on(&proxy.url, &schema)).unwrap();
    let e = some_events(4);
    assert_eq!(store.commit_step(&e[0], &[0; 32], &[]).unwrap(), 0);
    proxy.arm(Cut::AfterCommit);
    let step = batch(vec![append(chan(2), 0, rec(1, json!("revoked 0")))]);
    assert_eq!(store.commit_step(&e[1], &[1; 32], &[&step]).unwrap(), 1);
    assert_eq!(proxy.cuts(), 1);
    proxy.arm(Cut::AfterCommit);
    assert_eq!(store.append_event(&e[2]).unwrap(), 2);
    proxy.arm(Cut::AfterCommit);
    store.commit(&step).unwrap(); // idempotent: the same entry again is accepted
    assert_eq!(proxy.cuts(), 3);
    assert_eq!(store.commit_step(&e[3], &[3; 32], &[]).unwrap(), 3);
    assert_eq!(events_of(&store), e);
    let digests: Vec<u64> = store
        .step_digests(0, 10)
        .unwrap()
        .iter()
        .map(|d| d.0)
        .collect();
    assert_eq!(digests, vec![0, 1, 3]);
}

#[test]
fn postgres_a_commit_cut_before_the_server_got_it_is_written_once_on_a_new_connection() {
    let proxy = Proxy::start("unsent");
    let schema = fresh_schema("unsent");
    let _guard = SchemaGuard(schema.clone());
    let mut store = PostgresStore::open(on(&proxy.url, &schema)).unwrap();
    let e = some_events(3);
    store.commit_step(&e[0], &[0; 32], &[]).unwrap();
    proxy.arm(Cut::BeforeCommit);
    let step = batch(vec![put(RecordKey::Node, rec(1, json!({"tip": 9})))]);
    assert_eq!(store.commit_step(&e[1], &[1; 32], &[&step]).unwrap(), 1);
    proxy.arm(Cut::BeforeCommit);
    assert_eq!(store.append_event(&e[2]).unwrap(), 2);
    assert_eq!(proxy.cuts(), 2);
    assert_eq!(events_of(&store), e);
    assert_eq!(
        store.load().unwrap().get(&RecordKey::Node),
        Some(&rec(1, json!({"tip": 9})))
    );
}
