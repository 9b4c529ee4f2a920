use bitcoin::hashes::Hash;
use bitcoin::{Amount, OutPoint, TxOut, Txid, WPubkeyHash, WScriptHash};

use super::*;
use crate::bolt3::commitment::{
    commitment_fee_sat, encode_commitment_number, OutputKind, ANCHOR_OUTPUT_SAT,
    MAX_COMMITMENT_NUMBER,
};
use crate::bolt3::ChannelType;
use crate::channel::updates::{apply_update, ChannelData};
use crate::event::{ChannelChange, ChannelUpdate, Event};
use crate::sim::{SimChannel, SimHtlc, SimSetup};
use crate::types::{HtlcDirection, Party};

mod fuzz;
mod taproot;
mod taproot_anchor;
mod taproot_htlc_claim;
mod taproot_justice;
mod taproot_second_level;
mod taproot_sign;
mod taproot_sweep;
mod totality;

const TYPES: [ChannelType; 3] = [
    ChannelType::StaticRemoteKey,
    ChannelType::AnchorsZeroFeeHtlc,
    ChannelType::ZeroFeeCommitments,
];

/// A sim channel and the engine's view of it, built only from the sim's events.
struct World {
    sim: SimChannel,
    data: ChannelData,
    live: Vec<SimHtlc>,
}

impl World {
    fn open(setup: SimSetup) -> World {
        let (sim, events) = SimChannel::open(setup).unwrap();
        let mut data = None;
        for u in updates(events) {
            data = apply_update(data.as_ref(), &u)
                .unwrap_or_else(|e| panic!("{u:?}: {e}"))
                .0;
        }
        World {
            sim,
            data: data.unwrap(),
            live: Vec::new(),
        }
    }

    /// Three updates with HTLCs both ways: our commitment 3 is current, 0..=2 revoked; the peer's
    /// 3 current, secrets 0..=2 held.
    fn busy(seed: u64, channel_type: ChannelType) -> World {
        let mut w = World::open(SimSetup::new(seed, channel_type));
        for i in 0..3 {
            w.add_both_ways(i);
            w.commit();
        }
        w
    }

    fn see(&mut self, events: Vec<Event>) {
        for u in updates(events) {
            self.data = apply_update(Some(&self.data), &u)
                .unwrap_or_else(|e| panic!("{u:?}: {e}"))
                .0
                .unwrap();
        }
    }

    fn commit(&mut self) {
        let events = self.sim.commit().unwrap();
        self.see(events);
    }

    fn add_both_ways(&mut self, i: u32) {
        let out = self
            .sim
            .add_htlc(HtlcDirection::Outgoing, 20_000_000 + u64::from(i), 600 + i)
            .unwrap();
        let inc = self
            .sim
            .add_htlc(HtlcDirection::Incoming, 30_000_000, 610 + i)
            .unwrap();
        self.live.extend([out, inc]);
    }

    fn settle_all(&mut self) {
        for h in std::mem::take(&mut self.live) {
            self.sim.settle_htlc(h.key).unwrap();
        }
    }

    /// A change the node sends on its own. Only after the last sim event the engine sees: the sim
    /// does not know the id was taken.
    fn inject(&mut self, change: ChannelChange) {
        let u = ChannelUpdate {
            channel: self.sim.channel_id,
            update_id: self.data.last_update_id + 1,
            change,
        };
        self.data = apply_update(Some(&self.data), &u).unwrap().0.unwrap();
    }

    fn set_shutdown(&mut self) {
        let (local, remote) = shutdown_scripts();
        self.inject(ChannelChange::ShutdownScripts { local, remote });
    }

    fn classify(&self, tx: &Transaction) -> Classification {
        classify_close(tx, &self.data.info, &self.data.commitments)
    }

    fn close(&self, tx: &Transaction) -> Close {
        match self.classify(tx) {
            Classification::FundingSpent { spend, close } => {
                assert_eq!(spend.funding, self.sim.funding);
                close
            }
            Classification::NotAFundingSpend => {
                panic!("{} spends the funding output", tx.compute_txid())
            }
        }
    }

    fn tx(&self, holder: Party, n: u64) -> Transaction {
        self.sim.commitment_tx(holder, n).unwrap()
    }

    fn secret(&self, n: u64) -> [u8; 32] {
        self.sim.per_commitment_secret(Party::Remote, n).unwrap()
    }

    /// A real commitment of the peer's re-stamped with commitment number `n`.
    fn restamped(&self, n: u64, outputs: Vec<TxOut>) -> Transaction {
        let mut tx = self.tx(Party::Remote, self.sim.remote_commitment_number());
        let (lock_time, sequence) = encode_commitment_number(n, self.data.info.obscuring_factor);
        tx.lock_time = lock_time;
        tx.input[0].sequence = sequence;
        tx.output = outputs;
        tx
    }
}

fn updates(events: Vec<Event>) -> Vec<ChannelUpdate> {
    events
        .into_iter()
        .filter_map(|e| match e {
            Event::ChannelUpdate(u) => Some(u),
            _ => None,
        })
        .collect()
}

fn shutdown_scripts() -> (ScriptBuf, ScriptBuf) {
    (
        ScriptBuf::new_p2wpkh(&WPubkeyHash::from_byte_array([0x11; 20])),
        ScriptBuf::new_p2wsh(&WScriptHash::from_byte_array([0x22; 32])),
    )
}

/// Outputs paying scripts that belong to nobody in the channel: P2WPKH, OP_RETURN, garbage.
fn random_outputs() -> Vec<TxOut> {
    let scripts = [
        ScriptBuf::new_p2wpkh(&WPubkeyHash::from_byte_array([0xab; 20])),
        ScriptBuf::new_op_return([0xcd; 8]),
        ScriptBuf::from_bytes(vec![0xff, 0x00, 0x4c, 0xff]),
    ];
    scripts
        .into_iter()
        .map(|script_pubkey| TxOut {
            value: Amount::from_sat(100_000),
            script_pubkey,
        })
        .collect()
}

fn p2wsh_outputs() -> Vec<TxOut> {
    (1..=3u8)
        .map(|b| TxOut {
            value: Amount::from_sat(50_000),
            script_pubkey: ScriptBuf::new_p2wsh(&WScriptHash::from_byte_array([b; 32])),
        })
        .collect()
}

#[test]
fn a_cooperative_close_paying_only_the_shutdown_scripts_is_cooperative() {
    for ct in TYPES {
        let mut w = World::busy(7, ct);
        w.settle_all();
        w.commit();
        let (local, remote) = shutdown_scripts();
        let coop = w.sim.cooperative_close_tx(local, remote, 1_000).unwrap();
        assert_eq!(
            w.close(&coop),
            Close::Unknown {
                reason: UnknownReason::NoShutdownScripts
            },
            "{ct:?}"
        );
        w.set_shutdown();
        assert_eq!(w.close(&coop), Close::Cooperative, "{ct:?}");
        let mut extra = coop.clone();
        extra.output.push(random_outputs().remove(0));
        assert_eq!(
            w.close(&extra),
            Close::Unknown {
                reason: UnknownReason::NotOnlyShutdownScripts
            }
        );
        let mut empty = coop.clone();
        empty.output.clear();
        assert_eq!(
            w.close(&empty),
            Close::Unknown {
                reason: UnknownReason::NotOnlyShutdownScripts
            }
        );
    }
}

#[test]
fn a_commitment_shaped_tx_paying_only_the_shutdown_scripts_is_not_cooperative() {
    let mut w = World::busy(7, ChannelType::AnchorsZeroFeeHtlc);
    w.set_shutdown();
    let (local, remote) = shutdown_scripts();
    let outputs = [local, remote]
        .into_iter()
        .map(|script_pubkey| TxOut {
            value: Amount::from_sat(1_000),
            script_pubkey,
        })
        .collect();
    let tx = w.restamped(1, outputs);
    assert_eq!(
        w.close(&tx),
        Close::Unknown {
            reason: UnknownReason::UnmatchedCommitment { number: 1 }
        }
    );
}

#[test]
fn our_latest_commitment_is_local_current() {
    for ct in TYPES {
        let w = World::busy(1, ct);
        assert_eq!(
            w.close(&w.tx(Party::Local, 3)),
            Close::LocalCurrent { number: 3 },
            "{ct:?}"
        );
    }
}

#[test]
fn an_old_commitment_of_ours_is_local_revoked() {
    for ct in TYPES {
        let w = World::busy(2, ct);
        for n in 0..3 {
            assert_eq!(
                w.close(&w.tx(Party::Local, n)),
                Close::LocalRevoked { number: n },
                "{ct:?} {n}"
            );
        }
    }
}

#[test]
fn the_peers_current_commitment_is_remote_current() {
    for ct in TYPES {
        let w = World::busy(3, ct);
        assert_eq!(
            w.close(&w.tx(Party::Remote, 3)),
            Close::RemoteCurrent { number: 3 },
            "{ct:?}"
        );
    }
}

#[test]
fn the_peers_pending_commitment_is_remote_pending_and_its_predecessor_still_current() {
    for ct in TYPES {
        let mut w = World::busy(4, ct);
        w.add_both_ways(9);
        let events = w.sim.propose().unwrap();
        w.see(events); // only the RemoteCommitment: the peer has not revoked 3 yet
        assert_eq!(w.sim.remote_pending_number(), Some(4));
        assert_eq!(
            w.close(&w.tx(Party::Remote, 4)),
            Close::RemotePending { number: 4 },
            "{ct:?}"
        );
        assert_eq!(
            w.close(&w.tx(Party::Remote, 3)),
            Close::RemoteCurrent { number: 3 },
            "{ct:?}"
        );
    }
}

#[test]
fn a_revoked_peer_commitment_is_remote_revoked_with_its_secret() {
    for ct in TYPES {
        let mut w = World::busy(5, ct);
        for i in 3..6 {
            w.add_both_ways(i);
            w.commit();
        }
        w.settle_all();
        w.commit();
        assert_eq!(
            w.data.commitments.remote_current.as_ref().map(|c| c.number),
            Some(7)
        );
        for n in 0..7 {
            let expected = Close::RemoteRevoked {
                number: n,
                per_commitment_secret: w.secret(n),
            };
            assert_eq!(w.close(&w.tx(Party::Remote, n)), expected, "{ct:?} {n}");
        }
    }
}

#[test]
fn a_revoked_peer_commitment_is_confirmed_by_their_to_local_alone() {
    for ct in TYPES {
        let w = World::busy(6, ct);
        let built = w.sim.built_commitment(Party::Remote, 1).unwrap();
        let mut tx = w.tx(Party::Remote, 1);
        let to_local = built
            .outputs
            .iter()
            .find(|o| o.kind == OutputKind::ToLocal)
            .unwrap()
            .index;
        tx.output = vec![tx.output[to_local as usize].clone()];
        assert_eq!(
            w.close(&tx),
            Close::RemoteRevoked {
                number: 1,
                per_commitment_secret: w.secret(1)
            },
            "{ct:?}"
        );
    }
}

/// Both balances of state 1 are dust: the commitments carry only HTLC (and anchor) outputs.
fn dust_balances_world(channel_type: ChannelType) -> World {
    let mut w = World::open(SimSetup::new(8, channel_type));
    let setup = w.sim.setup().clone();
    let anchors = if channel_type.has_anchors() {
        2 * ANCHOR_OUTPUT_SAT
    } else {
        0
    };
    let fee = commitment_fee_sat(setup.feerate_per_kw, channel_type, 2) + anchors;
    let keep_local_msat = (fee + 100) * 1000; // to_local after fees: 100 sat, below the dust limit
    w.sim
        .add_htlc(
            HtlcDirection::Outgoing,
            setup.local_balance_msat - keep_local_msat,
            700,
        )
        .unwrap();
    let remote_msat = setup.funding_sat * 1000 - setup.local_balance_msat;
    w.sim
        .add_htlc(HtlcDirection::Incoming, remote_msat - 200_000, 710)
        .unwrap();
    w.commit();
    w.sim.update_fee(setup.feerate_per_kw);
    w.commit(); // revokes state 1
    w
}

#[test]
fn a_revoked_peer_commitment_with_only_htlc_outputs_is_remote_revoked_unconfirmed() {
    for ct in TYPES {
        let w = dust_balances_world(ct);
        let built = w.sim.built_commitment(Party::Remote, 1).unwrap();
        assert!(
            built
                .outputs
                .iter()
                .all(|o| !matches!(o.kind, OutputKind::ToLocal | OutputKind::ToRemote)),
            "{ct:?}"
        );
        assert_eq!(
            built
                .outputs
                .iter()
                .filter(|o| matches!(
                    o.kind,
                    OutputKind::OfferedHtlc { .. } | OutputKind::ReceivedHtlc { .. }
                ))
                .count(),
            2
        );
        let expected = Close::RemoteRevokedUnconfirmed {
            number: 1,
            per_commitment_secret: w.secret(1),
        };
        assert_eq!(w.close(&w.tx(Party::Remote, 1)), expected, "{ct:?}");
        // Our own revoked state 1 looks the same without the HTLC data: the caller's check against
        // the revoked log (the peer's HTLC scripts, from the revealed secret) tells them apart.
        assert_eq!(w.close(&w.tx(Party::Local, 1)), expected, "{ct:?}");
        // The current commitments are still known by txid.
        assert_eq!(
            w.close(&w.tx(Party::Remote, 2)),
            Close::RemoteCurrent { number: 2 }
        );
    }
}

#[test]
fn a_future_peer_commitment_paying_our_to_remote_is_remote_future() {
    for ct in TYPES {
        let mut w = World::busy(9, ct);
        // Two updates the engine never sees (we restored a stale backup).
        add_unseen(&mut w.sim);
        w.sim.commit().unwrap();
        w.sim.commit().unwrap();
        assert_eq!(w.sim.remote_commitment_number(), 5);
        assert_eq!(
            w.close(&w.tx(Party::Remote, 4)),
            Close::RemoteFuture { number: 4 },
            "{ct:?}"
        );
        assert_eq!(
            w.close(&w.tx(Party::Remote, 5)),
            Close::RemoteFuture { number: 5 },
            "{ct:?}"
        );
        // Our own commitment of a state the engine never saw proves nothing.
        assert_eq!(
            w.close(&w.tx(Party::Local, 5)),
            Close::Unknown {
                reason: UnknownReason::UnmatchedCommitment { number: 5 }
            }
        );
    }
}

/// HTLCs both ways on the sim only: the engine will not see the update that adds them.
fn add_unseen(sim: &mut SimChannel) -> Vec<SimHtlc> {
    vec![
        sim.add_htlc(HtlcDirection::Outgoing, 11_000_000, 650)
            .unwrap(),
        sim.add_htlc(HtlcDirection::Incoming, 12_000_000, 660)
            .unwrap(),
    ]
}

#[test]
fn after_data_loss_their_to_local_from_the_reestablish_point_confirms_a_future_commitment() {
    for ct in TYPES {
        // The peer funded and holds everything: their commitments never pay us a `to_remote`.
        let mut setup = SimSetup::new(10, ct);
        setup.funder = Party::Remote;
        setup.local_balance_msat = 0;
        let mut w = World::open(setup);
        w.sim
            .add_htlc(HtlcDirection::Incoming, 40_000_000, 700)
            .unwrap();
        w.commit();
        for _ in 0..2 {
            w.sim
                .add_htlc(HtlcDirection::Incoming, 10_000_000, 720)
                .unwrap();
            w.sim.commit().unwrap(); // unseen
        }
        let tx = w.tx(Party::Remote, 3);
        let unmatched = Close::Unknown {
            reason: UnknownReason::UnmatchedCommitment { number: 3 },
        };
        assert_eq!(
            w.close(&tx),
            unmatched,
            "{ct:?}: no output of ours, no data loss known"
        );
        let point = w.sim.remote.per_commitment_point(3).unwrap();
        let mut without_point = World {
            sim: w.sim.clone(),
            data: w.data.clone(),
            live: Vec::new(),
        };
        without_point.inject(ChannelChange::DataLossDetected {
            remote_next_commitment_number: 4,
            remote_per_commitment_point: None,
        });
        assert_eq!(
            without_point.close(&tx),
            unmatched,
            "{ct:?}: the number alone is not enough"
        );
        let mut other_number = World {
            sim: w.sim.clone(),
            data: w.data.clone(),
            live: Vec::new(),
        };
        other_number.inject(ChannelChange::DataLossDetected {
            remote_next_commitment_number: 5,
            remote_per_commitment_point: Some(point),
        });
        assert_eq!(
            other_number.close(&tx),
            unmatched,
            "{ct:?}: the point is for another number"
        );
        w.inject(ChannelChange::DataLossDetected {
            remote_next_commitment_number: 4,
            remote_per_commitment_point: Some(point),
        });
        assert_eq!(w.close(&tx), Close::RemoteFuture { number: 3 }, "{ct:?}");
        assert_eq!(
            w.close(&w.restamped(3, random_outputs())),
            unmatched,
            "{ct:?}"
        );
    }
}

#[test]
fn a_one_input_tx_with_a_plausible_number_but_random_outputs_is_unknown() {
    for ct in TYPES {
        let w = World::busy(11, ct);
        // 1: revoked on both sides; 3: current; 4: next; 1000 and the maximum: future.
        for n in [0, 1, 2, 3, 4, 1000, MAX_COMMITMENT_NUMBER] {
            let tx = w.restamped(n, random_outputs());
            assert_eq!(
                w.close(&tx),
                Close::Unknown {
                    reason: UnknownReason::UnmatchedCommitment { number: n }
                },
                "{ct:?} {n}"
            );
        }
        // Unknown P2WSH outputs on a number whose secret we hold could be HTLCs: the caller checks.
        let tx = w.restamped(1, p2wsh_outputs());
        assert_eq!(
            w.close(&tx),
            Close::RemoteRevokedUnconfirmed {
                number: 1,
                per_commitment_secret: w.secret(1)
            }
        );
        for n in [3, 1000] {
            let tx = w.restamped(n, p2wsh_outputs());
            assert_eq!(
                w.close(&tx),
                Close::Unknown {
                    reason: UnknownReason::UnmatchedCommitment { number: n }
                }
            );
        }
    }
}
