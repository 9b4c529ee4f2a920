//! The flight recorder keeps a mempool event only when the engine could act on it (the core's
//! `ChainArbitrator::recordable`): mempool noise is not written, the peer's commitment seen in
//! the mempool is, and the filtered record still replays to every step's digest.

use bitcoin::hashes::Hash;
use bitcoin::{absolute, transaction, Amount, OutPoint, ScriptBuf, Sequence, TxIn, TxOut};
use bitcoin::{Txid, Witness};
use contractcourt_core::event::MempoolRemovalReason;

use super::*;

/// A transaction of the kind a busy mempool is full of: it spends nothing the engine watches.
fn noise(n: u32) -> Transaction {
    Transaction {
        version: transaction::Version::TWO,
        lock_time: absolute::LockTime::ZERO,
        input: vec![TxIn {
            previous_output: OutPoint {
                txid: Txid::from_byte_array([(n % 251) as u8 + 1; 32]),
                vout: n,
            },
            script_sig: ScriptBuf::new(),
            sequence: Sequence::MAX,
            witness: Witness::from_slice(&[vec![0x30; 72], vec![0x02; 33]]),
        }],
        output: vec![
            TxOut {
                value: Amount::from_sat(50_000 + u64::from(n)),
                script_pubkey: ScriptBuf::from_bytes(
                    vec![0x00, 0x14].into_iter().chain([7; 20]).collect()
                ),
            };
            2
        ],
    }
}

fn seen(tx: &Transaction) -> Event {
    Event::MempoolTx {
        tx: RawTx(tx.clone()),
        fee_sat: 500,
        vsize: 141,
    }
}

fn gone(tx: &Transaction) -> Event {
    Event::MempoolRemoved {
        txid: tx.compute_txid(),
        reason: MempoolRemovalReason::Confirmed,
    }
}

fn bytes(events: &[Event]) -> usize {
    events
        .iter()
        .map(|e| serde_json::to_string(e).unwrap().len())
        .sum()
}

#[test]
fn mempool_noise_is_not_recorded_and_the_filtered_record_replays_every_step_digest() {
    let (mut run, sim) = opened(SqliteStore::open_in_memory().unwrap());
    let mut fed = Vec::new();
    let mut feed = |run: &mut Run<SqliteStore>, event: Event| {
        fed.push(event.clone());
        run.feed(event)
    };
    let noisy: Vec<Transaction> = (0..40).map(noise).collect();
    for tx in &noisy {
        assert!(feed(&mut run, seen(tx)).is_empty());
    }
    for tx in noisy.iter().step_by(2) {
        assert!(feed(&mut run, gone(tx)).is_empty());
    }
    // The peer's commitment in the mempool: the engine acts on it, and it is kept whole.
    let commitment = sim
        .commitment_tx(Party::Remote, sim.remote_commitment_number())
        .unwrap();
    feed(&mut run, seen(&commitment));
    feed(&mut run, gone(&commitment));
    for tx in noisy.iter().skip(1).step_by(2) {
        feed(&mut run, gone(tx));
    }
    run.sync_with_block();
    run.sync_with_block();

    let recorded = run.recorded();
    let is_noise = |e: &Event| match e {
        Event::MempoolTx { tx, .. } => noisy.contains(&tx.0),
        Event::MempoolRemoved { txid, .. } => noisy.iter().any(|t| t.compute_txid() == *txid),
        _ => false,
    };
    assert!(!recorded.iter().any(is_noise), "mempool noise was recorded");
    assert!(
        recorded.contains(&seen(&commitment)),
        "the commitment is kept"
    );
    assert!(recorded.contains(&gone(&commitment)), "its removal is kept");

    // Every recorded step has its digest, and this build reproduces each of them.
    let store = run.driver.store();
    let digests = store.step_digests(0, usize::MAX).unwrap();
    assert_eq!(digests.len(), recorded.len());
    let replay = replay_flight_recorder(Config::default(), store).unwrap();
    assert_eq!(replay.divergence, None);
    assert_eq!(replay.checked, recorded.len() as u64);
    assert_eq!(replay.unchecked, 0);
    check_replay(&run);

    let mempool: Vec<Event> = fed
        .iter()
        .filter(|e| matches!(e, Event::MempoolTx { .. } | Event::MempoolRemoved { .. }))
        .cloned()
        .collect();
    let kept: Vec<Event> = recorded
        .iter()
        .filter(|e| matches!(e, Event::MempoolTx { .. } | Event::MempoolRemoved { .. }))
        .cloned()
        .collect();
    println!(
        "mempool events: {} fed ({} bytes whole), {} recorded ({} bytes); the whole record: {} bytes",
        mempool.len(),
        bytes(&mempool),
        kept.len(),
        bytes(&kept),
        bytes(&recorded)
    );
    assert_eq!(kept.len(), 2);
}
