//! An incoming HTLC counted expired (the peer's by timeout, unspent), then spent by the peer's
//! timeout, then that spend reorged out, is counted expired again — not left contested. Found
//! by the model check (static remote key, the peer's commitment, its HTLC-timeout confirmed
//! after the expiry had become final, then dropped by a reorg): once every output of a close
//! was final the channel only waited to be archived, and the output the reorg gave back was
//! never looked at again, so the ledger said `Contested` for as long as the channel lived.
//!
//! And the other way round: a reorg of the block at which a channel became fully resolved alone
//! (every output's final spend stays) leaves it fully resolved, and it is archived on time.

use bitcoin::{OutPoint, Transaction};
use contractcourt_core::bolt3::ChannelType;
use contractcourt_core::chain::ledger::OutputStatus;
use contractcourt_core::channel::ArbState;
use contractcourt_core::sim::SimSetup;
use contractcourt_core::types::{ChannelId, HtlcDirection, Party};
use contractcourt_tests::checks::{sweeping_config, uniform_fees};
use contractcourt_tests::{Harness, START_HEIGHT};

/// The ledger's status of `outpoint`, an output of channel `id`.
fn status(h: &Harness, id: ChannelId, outpoint: OutPoint) -> Option<OutputStatus> {
    h.arb
        .ledger()
        .channels
        .into_iter()
        .filter(|c| c.channel == id)
        .flat_map(|c| c.outputs)
        .find(|e| e.outpoint == outpoint)
        .map(|e| e.status)
}

#[test]
fn an_expired_incoming_htlc_whose_timeout_is_reorged_out_is_expired_again() {
    let mut h = Harness::new(sweeping_config());
    let id = h.open(SimSetup::new(813, ChannelType::StaticRemoteKey));
    let expiry = START_HEIGHT + 10;
    let mut added = Vec::new();
    h.with_sim(id, |sim| {
        added.push(
            sim.add_htlc(HtlcDirection::Incoming, 40_000_000, expiry)
                .expect("the balances cover it"),
        );
        sim.commit().expect("commit")
    });
    let htlc = added.pop().expect("one HTLC");
    let actions = h.feed(uniform_fees(5));
    h.answer(&actions);

    // The peer's commitment confirms; we never learn the preimage.
    let sim = h.sim(id);
    let n = sim.remote_commitment_number();
    let commitment: Transaction = sim.commitment_tx(Party::Remote, n).expect("theirs");
    let timeout = sim
        .htlc_tx(Party::Remote, n, htlc.key)
        .expect("its HTLC-timeout");
    let output = timeout.input[0].previous_output;
    let close = commitment.compute_txid();
    h.mine(vec![commitment]);
    // Our balance is swept and the sweep confirms: the HTLC is the close's last output.
    let sweep = h
        .broadcasts
        .iter()
        .rev()
        .find(|t| t.input.iter().any(|i| i.previous_output.txid == close))
        .cloned()
        .expect("the sweep of our balance");
    h.mine(vec![sweep]);

    // Its expiry becomes final (`reorg_safety_depth` 6 past the first block the peer's timeout
    // can be in): the output is the peer's without a spend.
    h.mine_empty(expiry + 7 - h.height());
    assert_eq!(status(&h, id, output), Some(OutputStatus::Expired));

    // The peer's HTLC-timeout confirms, and a reorg of two blocks drops it for good.
    h.mine(vec![timeout.clone()]);
    assert!(
        matches!(status(&h, id, output), Some(OutputStatus::Confirming { txid, .. }) if txid == timeout.compute_txid()),
        "{:?}",
        status(&h, id, output)
    );
    h.mine_empty(1);
    for _ in 0..2 {
        let actions = h.disconnect_tip();
        h.answer(&actions);
    }
    h.mine_empty(3);

    // The expiry is still final on the new chain: the output is the peer's again, unspent.
    assert_eq!(
        status(&h, id, output),
        Some(OutputStatus::Expired),
        "the output the reorg gave back"
    );
}

#[test]
fn an_incoming_htlc_expired_by_a_block_that_is_reorged_out_is_contested_again() {
    let mut h = Harness::new(sweeping_config());
    let id = h.open(SimSetup::new(814, ChannelType::StaticRemoteKey));
    let expiry = START_HEIGHT + 10;
    let mut added = Vec::new();
    h.with_sim(id, |sim| {
        added.push(
            sim.add_htlc(HtlcDirection::Incoming, 40_000_000, expiry)
                .expect("the balances cover it"),
        );
        sim.commit().expect("commit")
    });
    let htlc = added.pop().expect("one HTLC");
    let actions = h.feed(uniform_fees(5));
    h.answer(&actions);
    let sim = h.sim(id);
    let n = sim.remote_commitment_number();
    let commitment: Transaction = sim.commitment_tx(Party::Remote, n).expect("theirs");
    let output = sim
        .htlc_tx(Party::Remote, n, htlc.key)
        .expect("its HTLC-timeout")
        .input[0]
        .previous_output;
    h.mine(vec![commitment]);
    h.mine_empty(expiry + 7 - h.height());
    assert_eq!(status(&h, id, output), Some(OutputStatus::Expired));

    // A reorg takes the chain back below the block that made the expiry final (and below the
    // expiry itself): the HTLC is not the peer's yet, the peer cannot even time it out.
    for _ in 0..8 {
        let actions = h.disconnect_tip();
        h.answer(&actions);
    }
    assert!(h.height() < expiry, "tip {} expiry {expiry}", h.height());
    assert_eq!(
        status(&h, id, output),
        Some(OutputStatus::Contested),
        "an expiry the reorg undid"
    );

    // The new chain reaches the expiry and makes it final again.
    h.mine_empty(expiry + 7 - h.height());
    assert_eq!(status(&h, id, output), Some(OutputStatus::Expired));
}

#[test]
fn a_reorg_of_the_block_that_made_a_channel_fully_resolved_leaves_it_resolved_and_archived() {
    let mut h = Harness::new(sweeping_config());
    let id = h.open(SimSetup::new(815, ChannelType::StaticRemoteKey));
    let actions = h.feed(uniform_fees(5));
    h.answer(&actions);
    let sim = h.sim(id);
    let commitment: Transaction = sim
        .commitment_tx(Party::Remote, sim.remote_commitment_number())
        .expect("theirs");
    let close = commitment.compute_txid();
    h.mine(vec![commitment]);
    let sweep = h
        .broadcasts
        .iter()
        .rev()
        .find(|t| t.input.iter().any(|i| i.previous_output.txid == close))
        .cloned()
        .expect("the sweep of our balance");
    h.mine(vec![sweep]);
    let mut resolved_at = None;
    for _ in 0..10 {
        h.mine_empty(1);
        resolved_at = h.arb.channel(&id).and_then(|c| c.resolved_at);
        if resolved_at.is_some() {
            break;
        }
    }
    let resolved_at = resolved_at.expect("fully resolved once the sweep is reorg-safe");
    assert_eq!(h.height(), resolved_at);

    // The block at which it became fully resolved is replaced by another.
    let actions = h.disconnect_tip();
    h.answer(&actions);
    h.mine_empty_salted(1, 7);
    let state = h.arb.channel(&id).map(|c| c.state());
    assert_eq!(state, Some(ArbState::FullyResolved));

    // Archived `archive_depth` (100) blocks later, as without the reorg.
    h.mine_empty(100);
    assert!(h.arb.channel(&id).is_none(), "archived");
}
