//! Who took each output is read from the transaction that spent it (issue 14 §1): the peer's
//! HTLC-timeout beating our known preimage is the peer's (and a loss), a third party's spend of
//! our anchor after 16 blocks is a third party's, and a witness of no known path is an
//! `UnknownSpend` alert — never a guess. The resolution report and the ledger say the same.

use bitcoin::{absolute, transaction, Amount, FeeRate, OutPoint, ScriptBuf, Sequence, Transaction};
use bitcoin::{TxIn, TxOut, Witness};
use contractcourt_core::action::{AlertKind, Outcome, Report, Resolution};
use contractcourt_core::bolt3::{scripts, witness, ChannelType};
use contractcourt_core::chain::ledger::OutputStatus;
use contractcourt_core::event::{Event, FeeConditions, FeeEstimate};
use contractcourt_core::resolver::ResolverKind;
use contractcourt_core::sim::SimSetup;
use contractcourt_core::types::{ChannelId, HtlcDirection, Party};
use contractcourt_tests::checks::{incoming_with_preimages, sweeping_config};
use contractcourt_tests::{Harness, START_HEIGHT};

fn resolution(h: &Harness, outpoint: OutPoint) -> Resolution {
    h.reports()
        .into_iter()
        .rev()
        .find_map(|r| match r {
            Report::Resolution(r) if r.outpoint == outpoint => Some(r.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no resolution for {outpoint}"))
}

fn ledger_status(h: &Harness, outpoint: OutPoint) -> OutputStatus {
    h.arb
        .ledger()
        .channels
        .iter()
        .flat_map(|c| &c.outputs)
        .find(|e| e.outpoint == outpoint)
        .map(|e| e.status.clone())
        .unwrap_or_else(|| panic!("no ledger entry for {outpoint}"))
}

fn resolver_outpoint(h: &Harness, id: ChannelId, f: impl Fn(&ResolverKind) -> bool) -> OutPoint {
    h.arb
        .channel(&id)
        .unwrap()
        .resolvers
        .values()
        .find(|r| f(&r.kind))
        .map(|r| r.outpoint)
        .expect("a resolver of that kind")
}

/// A spend of `outpoint` by someone else: one input with `witness`, one OP_RETURN output.
fn foreign_spend(outpoint: OutPoint, witness: Witness, sequence: u32) -> Transaction {
    Transaction {
        version: transaction::Version::TWO,
        lock_time: absolute::LockTime::ZERO,
        input: vec![TxIn {
            previous_output: outpoint,
            script_sig: ScriptBuf::new(),
            sequence: Sequence(sequence),
            witness,
        }],
        output: vec![TxOut {
            value: Amount::ZERO,
            script_pubkey: ScriptBuf::new_op_return([]),
        }],
    }
}

#[test]
fn the_peers_htlc_timeout_beating_our_known_preimage_is_the_peers_and_a_loss() {
    for channel_type in [
        ChannelType::StaticRemoteKey,
        ChannelType::AnchorsZeroFeeHtlc,
    ] {
        let depth = sweeping_config().close.reorg_safety_depth;
        let mut h = Harness::new(sweeping_config());
        let id = h.open(SimSetup::new(141, channel_type));
        let expiry = START_HEIGHT + 20;
        let incoming = incoming_with_preimages(&mut h, id, &[30_000_000], expiry).remove(0);
        let n = h.sim(id).remote_commitment_number();
        let theirs = h.sim(id).commitment_tx(Party::Remote, n).unwrap();
        h.mine(vec![theirs]);
        let op = resolver_outpoint(&h, id, |k| matches!(k, ResolverKind::IncomingHtlc { .. }));
        // Our preimage claim goes out but never confirms; the peer's HTLC-timeout does, in the
        // first block in which it is final.
        h.mine_empty(expiry - h.height());
        let timeout = h.sim(id).htlc_tx(Party::Remote, n, incoming.key).unwrap();
        let timeout_txid = timeout.compute_txid();
        h.mine(vec![timeout]);
        let spent_at = h.height();
        h.mine_empty(depth);
        let r = resolution(&h, op);
        assert_eq!(
            r.outcome,
            Outcome::LostToPeer,
            "{channel_type:?}: the peer's timeout took it, whatever preimage we held"
        );
        assert_eq!(r.spending_txid, Some(timeout_txid));
        assert_eq!(
            ledger_status(&h, op),
            OutputStatus::TakenByPeer { txid: timeout_txid }
        );
        let losses: Vec<(u64, String)> = h
            .reports()
            .into_iter()
            .filter_map(|r| match r {
                Report::Loss {
                    htlc,
                    amount_msat,
                    detail,
                } if *htlc == incoming.key => Some((*amount_msat, detail.clone())),
                _ => None,
            })
            .collect();
        assert_eq!(
            losses.len(),
            1,
            "{channel_type:?}: one loss report: {losses:?}"
        );
        assert_eq!(losses[0].0, 30_000_000);
        assert!(
            losses[0].1.contains("timeout")
                && losses[0].1.contains(&timeout_txid.to_string())
                && losses[0].1.contains(&format!("at height {spent_at}")),
            "{}",
            losses[0].1
        );
    }
}

/// Fees low enough that our anchor is worth sweeping: it stays ours to claim, not abandoned.
fn low_fees() -> Event {
    let rate = FeeRate::from_sat_per_kwu(25);
    Event::FeeConditions(FeeConditions {
        estimates: [1, 6, 144, 1008]
            .into_iter()
            .map(|target_blocks| FeeEstimate {
                target_blocks,
                feerate: rate,
            })
            .collect(),
        mempool_min: rate,
        min_relay: rate,
        incremental_relay: rate,
    })
}

#[test]
fn a_third_partys_spend_of_our_anchor_after_16_blocks_is_a_third_partys() {
    let depth = sweeping_config().close.reorg_safety_depth;
    let mut h = Harness::new(sweeping_config());
    h.feed(low_fees());
    let id = h.open(SimSetup::new(142, ChannelType::AnchorsZeroFeeHtlc));
    let n = h.sim(id).remote_commitment_number();
    let theirs = h.sim(id).commitment_tx(Party::Remote, n).unwrap();
    h.mine(vec![theirs]);
    let close_height = h.height();
    let anchor = resolver_outpoint(&h, id, |k| matches!(k, ResolverKind::Anchor));
    // Our anchor sweep is out but never confirms; 16 blocks after the commitment anyone may
    // spend the anchor, and someone does.
    h.mine_empty(close_height + 15 - h.height());
    let funding_pubkey = h.sim(id).local.basepoints().funding_pubkey;
    let script = scripts::anchor_script(&funding_pubkey);
    let spend = foreign_spend(anchor, witness::anchor_anyone_witness(&script), 16);
    let spend_txid = spend.compute_txid();
    h.mine(vec![spend]);
    h.mine_empty(depth);
    let r = resolution(&h, anchor);
    assert_eq!(r.outcome, Outcome::ThirdParty);
    assert_eq!(r.spending_txid, Some(spend_txid));
    assert_eq!(r.fees_sat, 0);
    assert_eq!(
        ledger_status(&h, anchor),
        OutputStatus::TakenByThirdParty { txid: spend_txid }
    );
    let totals = h.arb.ledger().totals;
    assert_eq!(totals.third_party_sat, 330);
    assert!(!h.reports().iter().any(|r| matches!(
        r,
        Report::Alert(a) if a.kind == AlertKind::UnknownSpend
    )));
}

#[test]
fn an_htlc_output_spent_with_an_unknown_witness_is_an_unknown_spend_alert_not_the_peers() {
    let depth = sweeping_config().close.reorg_safety_depth;
    let mut h = Harness::new(sweeping_config());
    let id = h.open(SimSetup::new(143, ChannelType::StaticRemoteKey));
    h.with_sim(id, |sim| {
        sim.add_htlc(HtlcDirection::Incoming, 30_000_000, START_HEIGHT + 60)
            .unwrap();
        sim.commit().unwrap()
    });
    let n = h.sim(id).remote_commitment_number();
    let theirs = h.sim(id).commitment_tx(Party::Remote, n).unwrap();
    h.mine(vec![theirs]);
    let op = resolver_outpoint(&h, id, |k| matches!(k, ResolverKind::IncomingHtlc { .. }));
    // Signature-like, then 5 bytes that are neither a preimage nor a key, then a script-like
    // element: no path of an HTLC output has this shape.
    let mut w = Witness::new();
    w.push(vec![0x30; 71]);
    w.push([7u8; 5]);
    w.push(
        [0x76, 0xa9, 0x14]
            .iter()
            .chain(&[0u8; 30])
            .copied()
            .collect::<Vec<u8>>(),
    );
    let spend = foreign_spend(op, w, 0xffff_fffd);
    let txid = spend.compute_txid();
    let actions = h.mine(vec![spend]);
    let alerts: Vec<String> = actions
        .iter()
        .filter_map(|a| match a {
            contractcourt_core::action::Action::Report(Report::Alert(a))
                if a.kind == AlertKind::UnknownSpend =>
            {
                Some(a.message.clone())
            }
            _ => None,
        })
        .collect();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert!(
        alerts[0].contains(&txid.to_string())
            && alerts[0].contains("input 0")
            && alerts[0].contains("3 witness element(s) of 71, 5, 33 bytes"),
        "{}",
        alerts[0]
    );
    h.mine_empty(depth);
    let r = resolution(&h, op);
    assert_eq!(r.outcome, Outcome::UnknownSpend, "never a guess");
    assert_eq!(ledger_status(&h, op), OutputStatus::UnknownSpend { txid });
    let totals = h.arb.ledger().totals;
    assert_eq!(totals.taken_by_peer_sat, 0);
    assert_eq!(totals.unknown_spend_sat, 30_000);
}
