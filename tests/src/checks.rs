//! Checks shared by the scenario tests: every transaction the engine broadcast is accepted by
//! Bitcoin Core's script interpreter against the outputs it spends, and is standard and final
//! at the height it is offered for.

use std::collections::BTreeMap;

use bitcoin::hashes::Hash;
use bitcoin::{FeeRate, ScriptBuf, Transaction, TxOut, Txid};
use contractcourt_core::action::{Action, FailReason};
use contractcourt_core::chain::Config;
use contractcourt_core::event::{Event, FeeConditions, FeeEstimate, PreimageSource};
use contractcourt_core::policy::{check_final, check_standard, PolicyConfig};
use contractcourt_core::sim::SimHtlc;
use contractcourt_core::sweeper::SweeperConfig;
use contractcourt_core::testkit::verify_with_bitcoin_core;
use contractcourt_core::types::{ChannelId, HtlcDirection, HtlcKey};

use crate::Harness;

/// The default configuration with a sweeper paying a fixed P2WPKH destination, starting from
/// 2 sat/vB while no fee estimate is known.
pub fn sweeping_config() -> Config {
    Config {
        sweep_to: Some(SweeperConfig {
            destination: ScriptBuf::new_p2wpkh(&bitcoin::WPubkeyHash::from_byte_array([0x11; 20])),
            fallback_feerate: FeeRate::from_sat_per_vb_u32(2),
            fee_wallet: None,
        }),
        ..Config::default()
    }
}

/// Every output created by a transaction the chain or the engine has seen, with its height.
pub struct Outputs {
    txs: BTreeMap<Txid, (Transaction, Option<u32>)>,
}

impl Outputs {
    /// The outputs of every block transaction and of `extra`.
    pub fn from(h: &Harness, extra: &[Transaction]) -> Outputs {
        let mut txs = BTreeMap::new();
        for b in &h.blocks {
            for tx in &b.txs {
                txs.insert(tx.compute_txid(), (tx.0.clone(), Some(b.height)));
            }
        }
        for tx in extra {
            txs.entry(tx.compute_txid()).or_insert((tx.clone(), None));
        }
        Outputs { txs }
    }

    /// The outputs `tx` spends, with their confirmation heights.
    pub fn prevouts(&self, tx: &Transaction) -> (Vec<TxOut>, Vec<Option<u32>>) {
        tx.input
            .iter()
            .map(|i| {
                let (parent, height) = &self.txs[&i.previous_output.txid];
                (
                    parent.output[i.previous_output.vout as usize].clone(),
                    *height,
                )
            })
            .unzip()
    }
}

/// Check every broadcast since `from`: Bitcoin Core accepts its scripts, and it is standard and
/// final at the next block (the height it is offered for).
pub fn check_broadcasts(h: &Harness, from: usize, extra: &[Transaction]) -> usize {
    check_broadcasts_under(h, from, extra, &PolicyConfig::default())
}

/// [`check_broadcasts`] under a mempool `policy` other than Bitcoin Core's defaults (a lower
/// `-minrelaytxfee`, say).
pub fn check_broadcasts_under(
    h: &Harness,
    from: usize,
    extra: &[Transaction],
    policy: &PolicyConfig,
) -> usize {
    let outputs = Outputs::from(h, extra);
    let next = h.height() + 1;
    for tx in &h.broadcasts[from..] {
        let (prevouts, heights) = outputs.prevouts(tx);
        verify_with_bitcoin_core(tx, &prevouts)
            .unwrap_or_else(|e| panic!("{}: {e:?}", tx.compute_txid()));
        check_standard(tx, &prevouts, policy)
            .unwrap_or_else(|e| panic!("{}: {e}", tx.compute_txid()));
        check_final(tx, next, &heights)
            .unwrap_or_else(|e| panic!("{} not final at {next}: {e}", tx.compute_txid()));
    }
    h.broadcasts.len() - from
}

/// The latest transaction broadcast since `from` spending each output of `parent` (a bump
/// replaces the earlier attempt; a batch appears once per output it spends).
pub fn claimed_outputs(
    h: &Harness,
    from: usize,
    parent: Txid,
) -> BTreeMap<bitcoin::OutPoint, Transaction> {
    let mut latest = BTreeMap::new();
    for t in &h.broadcasts[from..] {
        for i in t.input.iter().filter(|i| i.previous_output.txid == parent) {
            latest.insert(i.previous_output, t.clone());
        }
    }
    latest
}

/// The latest claim broadcast since `from` for each output of `parent` (a bump replaces the
/// earlier attempt).
pub fn claims_of(h: &Harness, from: usize, parent: Txid) -> Vec<Transaction> {
    let mut latest: BTreeMap<bitcoin::OutPoint, Transaction> = BTreeMap::new();
    for t in &h.broadcasts[from..] {
        if let Some(i) = t.input.iter().find(|i| i.previous_output.txid == parent) {
            latest.insert(i.previous_output, t.clone());
        }
    }
    latest.into_values().collect()
}

/// Fee conditions with every estimate (1, 6, 144 and 1008 blocks) at `sat_per_vb`, and the
/// relay floors at 1 sat/vB.
pub fn uniform_fees(sat_per_vb: u64) -> Event {
    let rate = FeeRate::from_sat_per_kwu(sat_per_vb * 250);
    let one = FeeRate::from_sat_per_kwu(250);
    Event::FeeConditions(FeeConditions {
        estimates: [1, 6, 144, 1008]
            .into_iter()
            .map(|target_blocks| FeeEstimate {
                target_blocks,
                feerate: rate,
            })
            .collect(),
        mempool_min: one,
        min_relay: one,
        incremental_relay: one,
    })
}

/// Commit incoming HTLCs of `amounts_msat` expiring at `expiry` on channel `id` (one update),
/// and tell the engine each one's preimage (our invoices).
pub fn incoming_with_preimages(
    h: &mut Harness,
    id: ChannelId,
    amounts_msat: &[u64],
    expiry: u32,
) -> Vec<SimHtlc> {
    let incoming: Vec<(u64, u32)> = amounts_msat.iter().map(|a| (*a, expiry)).collect();
    commit_htlcs(h, id, &[], &incoming)
}

/// Commit one incoming HTLC of `amount_msat` expiring at `expiry` on channel `id`, its preimage
/// not told to the engine.
pub fn add_incoming(h: &mut Harness, id: ChannelId, amount_msat: u64, expiry: u32) -> SimHtlc {
    let mut added = None;
    h.with_sim(id, |sim| {
        added = Some(
            sim.add_htlc(HtlcDirection::Incoming, amount_msat, expiry)
                .expect("the balances cover it"),
        );
        sim.commit().expect("commit")
    });
    added.expect("added")
}

/// Commit, in one update on channel `id`, outgoing HTLCs and then incoming ones, each given as
/// `(amount_msat, cltv_expiry)`, and tell the engine each incoming one's preimage (our
/// invoices). Returns the incoming HTLCs.
pub fn commit_htlcs(
    h: &mut Harness,
    id: ChannelId,
    outgoing: &[(u64, u32)],
    incoming: &[(u64, u32)],
) -> Vec<SimHtlc> {
    let mut added = Vec::new();
    h.with_sim(id, |sim| {
        for (amount, expiry) in outgoing {
            sim.add_htlc(HtlcDirection::Outgoing, *amount, *expiry)
                .expect("the balances cover it");
        }
        for (amount, expiry) in incoming {
            added.push(
                sim.add_htlc(HtlcDirection::Incoming, *amount, *expiry)
                    .expect("the balances cover it"),
            );
        }
        sim.commit().expect("commit")
    });
    for inc in &added {
        h.feed(Event::PreimageLearned {
            preimage: inc.preimage,
            source: PreimageSource::Invoice { htlc: inc.key },
        });
    }
    added
}

/// The incoming HTLCs `actions` settle upstream, in order.
pub fn settles(actions: &[Action]) -> Vec<HtlcKey> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::SettleUpstream { htlc, .. } => Some(*htlc),
            _ => None,
        })
        .collect()
}

/// The incoming HTLCs `actions` fail upstream, with why, in order.
pub fn fails(actions: &[Action]) -> Vec<(HtlcKey, FailReason)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::FailUpstream { htlc, reason } => Some((*htlc, reason.clone())),
            _ => None,
        })
        .collect()
}
