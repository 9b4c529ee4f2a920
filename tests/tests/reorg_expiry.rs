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
use contractcourt_core::types::{ChannelId, Party};
use contractcourt_tests::checks::{add_incoming, sweeping_config, uniform_fees};
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

/// The HTLC's `cltv_expiry`.
const EXPIRY: u32 = START_HEIGHT + 10;

/// A static-remote-key channel (sim seed `seed`) with one incoming HTLC whose preimage we never
/// learn, closed by the peer's commitment: the harness, the channel, the HTLC's output and the
/// peer's HTLC-timeout transaction spending it.
fn peer_close_with_an_incoming_htlc(seed: u64) -> (Harness, ChannelId, OutPoint, Transaction) {
    let mut h = Harness::new(sweeping_config());
    let id = h.open(SimSetup::new(seed, ChannelType::StaticRemoteKey));
    let htlc = add_incoming(&mut h, id, 40_000_000, EXPIRY);
    let actions = h.feed(uniform_fees(5));
    h.answer(&actions);
    let sim = h.sim(id);
    let n = sim.remote_commitment_number();
    let commitment: Transaction = sim.commitment_tx(Party::Remote, n).expect("theirs");
    let timeout = sim
        .htlc_tx(Party::Remote, n, htlc.key)
        .expect("its HTLC-timeout");
    let output = timeout.input[0].previous_output;
    mine_close_and_balance_sweep(&mut h, commitment);
    (h, id, output, timeout)
}

/// Mine the peer's `commitment`, then our sweep of our balance on it.
fn mine_close_and_balance_sweep(h: &mut Harness, commitment: Transaction) {
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
}

/// Undo the tip's `n` blocks.
fn disconnect(h: &mut Harness, n: u32) {
    for _ in 0..n {
        let actions = h.disconnect_tip();
        h.answer(&actions);
    }
}

#[test]
fn an_expired_incoming_htlc_whose_timeout_is_reorged_out_is_expired_again() {
    let (mut h, id, output, timeout) = peer_close_with_an_incoming_htlc(813);
    // Our balance swept, the HTLC is the close's last output. Its expiry becomes final
    // (`reorg_safety_depth` 6 past the first block the peer's timeout can be in): the output is
    // the peer's without a spend, and the channel fully resolved.
    h.mine_empty(EXPIRY + 7 - h.height());
    assert_eq!(status(&h, id, output), Some(OutputStatus::Expired));

    // The peer's HTLC-timeout confirms, and a reorg of two blocks drops it for good.
    h.mine(vec![timeout.clone()]);
    assert!(
        matches!(status(&h, id, output), Some(OutputStatus::Confirming { txid, .. }) if txid == timeout.compute_txid()),
        "{:?}",
        status(&h, id, output)
    );
    h.mine_empty(1);
    disconnect(&mut h, 2);
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
    let (mut h, id, output, _) = peer_close_with_an_incoming_htlc(814);
    h.mine_empty(EXPIRY + 7 - h.height());
    assert_eq!(status(&h, id, output), Some(OutputStatus::Expired));

    // A reorg takes the chain back below the block that made the expiry final (and below the
    // expiry itself): the HTLC is not the peer's yet, the peer cannot even time it out.
    disconnect(&mut h, 8);
    assert!(h.height() < EXPIRY, "tip {} expiry {EXPIRY}", h.height());
    assert_eq!(
        status(&h, id, output),
        Some(OutputStatus::Contested),
        "an expiry the reorg undid"
    );

    // The new chain reaches the expiry and makes it final again.
    h.mine_empty(EXPIRY + 7 - h.height());
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
    mine_close_and_balance_sweep(&mut h, commitment);
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
    disconnect(&mut h, 1);
    h.mine_empty_salted(1, 7);
    let state = h.arb.channel(&id).map(|c| c.state());
    assert_eq!(state, Some(ArbState::FullyResolved));

    // Archived `archive_depth` (100) blocks later, as without the reorg.
    h.mine_empty(100);
    assert!(h.arb.channel(&id).is_none(), "archived");
}
