//! The ledger's arithmetic (issue 14 §5): once a close is fully resolved, `recovered − fees` is
//! exactly what reached our wallet and sweep destination — computed here independently, from
//! the confirmed transactions' outputs paying our scripts (less the wallet coins our claims
//! spent), never from the ledger's own numbers. Every close kind, both channel types.

use std::collections::BTreeMap;

use bitcoin::{OutPoint, ScriptBuf, Transaction, TxOut};
use contractcourt_core::bolt3::ChannelType;
use contractcourt_core::chain::ledger::Totals;
use contractcourt_core::channel::ArbState;
use contractcourt_core::event::{ChannelChange, ChannelUpdate, Event, ForceCloseReason};
use contractcourt_core::policy::check_final;
use contractcourt_core::sim::SimSetup;
use contractcourt_core::types::{HtlcDirection, Party};
use contractcourt_tests::checks::{
    check_broadcasts, incoming_with_preimages, sweeping_config, uniform_fees,
};
use contractcourt_tests::{Harness, START_HEIGHT};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Ours,
    PeersCurrent,
    PeersPending,
    /// The peer's revoked commitment, with its HTLC-success transaction in the same block.
    Breach,
    Cooperative,
    /// The peer's commitment newer than any we know (we lost data).
    Future,
}

fn destination() -> ScriptBuf {
    sweeping_config().sweep_to.unwrap().destination
}

/// Every unspent output of the active chain (and the funding output), with its height.
fn utxos(h: &Harness, funding: OutPoint) -> BTreeMap<OutPoint, u32> {
    let mut u = BTreeMap::new();
    u.insert(funding, START_HEIGHT - 10);
    for b in &h.blocks {
        for tx in &b.txs {
            for i in &tx.input {
                u.remove(&i.previous_output);
            }
            let txid = tx.compute_txid();
            for v in 0..tx.output.len() {
                u.insert(
                    OutPoint {
                        txid,
                        vout: v as u32,
                    },
                    b.height,
                );
            }
        }
    }
    u
}

/// Mine a block of `candidates` that can confirm now (inputs unspent, final), in order.
fn mine_valid(h: &mut Harness, candidates: Vec<Transaction>, funding: OutPoint) {
    let next = h.height() + 1;
    let mut u = utxos(h, funding);
    let mut txs: Vec<Transaction> = Vec::new();
    for tx in candidates {
        if txs.iter().any(|t| t.compute_txid() == tx.compute_txid()) {
            continue;
        }
        let heights: Option<Vec<Option<u32>>> = tx
            .input
            .iter()
            .map(|i| u.get(&i.previous_output).map(|h| Some(*h)))
            .collect();
        let Some(heights) = heights else { continue };
        if check_final(&tx, next, &heights).is_err() {
            continue;
        }
        for i in &tx.input {
            u.remove(&i.previous_output);
        }
        let txid = tx.compute_txid();
        for v in 0..tx.output.len() {
            u.insert(
                OutPoint {
                    txid,
                    vout: v as u32,
                },
                next,
            );
        }
        txs.push(tx);
    }
    let from = h.broadcasts.len();
    h.mine(txs);
    let extra = h.broadcasts.clone();
    check_broadcasts(h, from, &extra);
}

/// What reached our wallet and sweep destination from height `from` on: every confirmed output
/// paying one of them, less every wallet coin a confirmed transaction spent.
fn reached_us(h: &Harness, from: u32) -> i64 {
    let wallet = h.wallet.script_pubkey().clone();
    let ours = [destination(), wallet.clone()];
    let mut outputs: BTreeMap<OutPoint, TxOut> = BTreeMap::new();
    for b in &h.blocks {
        for tx in &b.txs {
            let txid = tx.compute_txid();
            for (v, o) in tx.output.iter().enumerate() {
                outputs.insert(
                    OutPoint {
                        txid,
                        vout: v as u32,
                    },
                    o.clone(),
                );
            }
        }
    }
    let mut net: i64 = 0;
    for b in h.blocks.iter().filter(|b| b.height >= from) {
        for tx in &b.txs {
            for o in &tx.output {
                if ours.contains(&o.script_pubkey) {
                    net += o.value.to_sat() as i64;
                }
            }
            for i in &tx.input {
                if let Some(o) = outputs.get(&i.previous_output) {
                    if o.script_pubkey == wallet {
                        net -= o.value.to_sat() as i64;
                    }
                }
            }
        }
    }
    net
}

/// Close a channel with an incoming HTLC (preimage known) and an outgoing one in the way `kind`
/// says, play every claim of ours to the end, and return the final ledger totals with what
/// reached us.
fn close_and_resolve(kind: Kind, channel_type: ChannelType, seed: u64) -> (Totals, i64) {
    let mut h = Harness::new(sweeping_config());
    if channel_type == ChannelType::AnchorsZeroFeeHtlc {
        h.fund_wallet(4, 200_000);
    }
    h.feed(uniform_fees(2));
    let id = h.open(SimSetup::new(seed, channel_type));
    let funding = h.sim(id).funding.outpoint;
    let expiry = START_HEIGHT + 30;
    let mut outgoing = None;
    if kind != Kind::Cooperative {
        incoming_with_preimages(&mut h, id, &[30_000_000], expiry);
        h.with_sim(id, |sim| {
            outgoing = Some(
                sim.add_htlc(HtlcDirection::Outgoing, 20_000_000, expiry)
                    .unwrap(),
            );
            sim.commit().unwrap()
        });
    }
    let mut first: Vec<Transaction> = Vec::new();
    match kind {
        Kind::Ours => {
            let actions = h.feed(Event::ForceCloseRequested {
                channel: id,
                reason: ForceCloseReason::User,
            });
            h.answer(&actions);
        }
        Kind::PeersCurrent => {
            let n = h.sim(id).remote_commitment_number();
            first.push(h.sim(id).commitment_tx(Party::Remote, n).unwrap());
        }
        Kind::PeersPending => {
            h.with_sim(id, |sim| {
                sim.add_htlc(HtlcDirection::Outgoing, 15_000_000, expiry + 5)
                    .unwrap();
                sim.propose().unwrap()
            });
            let n = h.sim(id).remote_pending_number().unwrap();
            first.push(h.sim(id).commitment_tx(Party::Remote, n).unwrap());
        }
        Kind::Breach => {
            let n = h.sim(id).remote_commitment_number();
            let revoked = h.sim(id).commitment_tx(Party::Remote, n).unwrap();
            let key = outgoing.unwrap().key;
            // The peer knows our outgoing HTLC's preimage and gets its HTLC-success in first.
            let success = h.sim(id).htlc_tx(Party::Remote, n, key).unwrap();
            h.with_sim(id, |sim| sim.commit().unwrap());
            first.push(revoked);
            first.push(success);
        }
        Kind::Cooperative => {
            let local = ScriptBuf::from_bytes(vec![0x51]);
            let remote = ScriptBuf::from_bytes(vec![0x52]);
            let update_id = h.arb.channel(&id).unwrap().data.last_update_id + 1;
            h.feed(Event::ChannelUpdate(ChannelUpdate {
                channel: id,
                update_id,
                change: ChannelChange::ShutdownScripts {
                    local: local.clone(),
                    remote: remote.clone(),
                },
            }));
            first.push(h.sim(id).cooperative_close_tx(local, remote, 500).unwrap());
        }
        Kind::Future => {
            let sim = h.sims.get_mut(&id).unwrap();
            sim.update_fee(3_000);
            sim.commit().unwrap();
            let n = sim.remote_commitment_number();
            first.push(sim.commitment_tx(Party::Remote, n).unwrap());
            let update_id = h.arb.channel(&id).unwrap().data.last_update_id + 1;
            h.feed(Event::ChannelUpdate(ChannelUpdate {
                channel: id,
                update_id,
                change: ChannelChange::DataLossDetected {
                    remote_next_commitment_number: n + 1,
                    remote_per_commitment_point: None,
                },
            }));
        }
    }
    let mut candidates = first;
    for _ in 0..400 {
        candidates.extend(h.broadcasts.iter().rev().cloned());
        candidates.extend(h.broadcasts.iter().cloned());
        mine_valid(&mut h, std::mem::take(&mut candidates), funding);
        let ch = h.arb.channel(&id).expect("not archived yet");
        if ch.state() == ArbState::FullyResolved {
            break;
        }
    }
    let ch = h.arb.channel(&id).unwrap();
    assert_eq!(
        ch.state(),
        ArbState::FullyResolved,
        "{kind:?} {channel_type:?}"
    );
    let close_height = ch.close.as_ref().unwrap().height;
    (h.arb.ledger().totals, reached_us(&h, close_height))
}

#[test]
fn recovered_minus_fees_is_exactly_what_reached_our_wallet_and_destination() {
    let mut seed = 150;
    let mut wrong = Vec::new();
    for channel_type in [
        ChannelType::StaticRemoteKey,
        ChannelType::AnchorsZeroFeeHtlc,
    ] {
        for kind in [
            Kind::Ours,
            Kind::PeersCurrent,
            Kind::PeersPending,
            Kind::Breach,
            Kind::Cooperative,
            Kind::Future,
        ] {
            seed += 1;
            let (t, reached) = close_and_resolve(kind, channel_type, seed);
            let label = format!("{kind:?} {channel_type:?}: {t:?}");
            assert_eq!(
                t.claiming_sat + t.contested_sat + t.timelocked_sat,
                0,
                "{label}: fully resolved"
            );
            let net = t.recovered_sat as i64 - t.fees_sat as i64;
            if net != reached {
                wrong.push(format!(
                    "{label}: recovered − fees = {net}, reached us {reached}"
                ));
            }
            if kind == Kind::Cooperative {
                // Paid straight to our shutdown script: nothing to resolve, nothing counted.
                assert_eq!((t.recovered_sat, t.fees_sat, reached), (0, 0, 0), "{label}");
            } else {
                assert!(t.recovered_sat > 0 && t.fees_sat > 0, "{label}");
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
