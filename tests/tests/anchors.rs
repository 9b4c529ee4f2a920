//! Anchors channels end to end in the core: the zero-fee HTLC transactions of our commitment
//! funded by the wallet (HTLC input 0 at output 0, wallet inputs and change appended), the CPFP
//! child paying for an unconfirmed commitment through our anchor, and the anchor itself swept
//! only when it pays for itself — every transaction checked by Bitcoin Core's interpreter.

use bitcoin::{Transaction, Txid};
use contractcourt_core::action::Action;
use contractcourt_core::bolt3::ChannelType;
use contractcourt_core::chain::ledger::OutputStatus;
use contractcourt_core::event::{Event, ForceCloseReason, PreimageSource};
use contractcourt_core::sim::{SimHtlc, SimSetup};
use contractcourt_core::types::{ChannelId, HtlcDirection, Party};
use contractcourt_tests::checks::{check_broadcasts, claims_of, sweeping_config, Outputs};
use contractcourt_tests::{Harness, START_HEIGHT};

const HTLC_MSAT: u64 = 90_000_000;

/// An anchors channel with an outgoing HTLC expiring at `expiry` and an incoming one (preimage
/// known) expiring 100 blocks later; the wallet holds 4 coins.
fn anchors_channel(seed: u64, expiry: u32) -> (Harness, ChannelId, SimHtlc) {
    let mut h = Harness::new(sweeping_config());
    h.fund_wallet(4, 200_000);
    let id = h.open(SimSetup::new(seed, ChannelType::AnchorsZeroFeeHtlc));
    let mut inc = None;
    h.with_sim(id, |sim| {
        sim.add_htlc(HtlcDirection::Outgoing, HTLC_MSAT, expiry)
            .unwrap();
        inc = Some(
            sim.add_htlc(HtlcDirection::Incoming, 60_000_000, expiry + 100)
                .unwrap(),
        );
        sim.commit().unwrap()
    });
    let inc = inc.unwrap();
    h.feed(Event::PreimageLearned {
        preimage: inc.preimage,
        source: PreimageSource::Invoice { htlc: inc.key },
    });
    (h, id, inc)
}

/// Force close and return our signed commitment as broadcast.
fn force_close(h: &mut Harness, id: ChannelId) -> Transaction {
    let txid = h
        .sim(id)
        .commitment_tx(Party::Local, 1)
        .unwrap()
        .compute_txid();
    let actions = h.feed(Event::ForceCloseRequested {
        channel: id,
        reason: ForceCloseReason::User,
    });
    h.answer(&actions);
    h.broadcasts
        .iter()
        .find(|t| t.compute_txid() == txid)
        .cloned()
        .expect("our commitment broadcast")
}

/// The fee a transaction pays, from the outputs it spends.
fn fee_of(h: &Harness, tx: &Transaction) -> u64 {
    let (prevouts, _) = Outputs::from(h, &[]).prevouts(tx);
    let inputs: u64 = prevouts.iter().map(|o| o.value.to_sat()).sum();
    let outputs: u64 = tx.output.iter().map(|o| o.value.to_sat()).sum();
    inputs - outputs
}

fn is_funded_htlc_tx(h: &Harness, tx: &Transaction, commitment: Txid) -> bool {
    tx.input[0].previous_output.txid == commitment
        && tx.input.len() >= 2
        && tx.input[1..].iter().all(|i| {
            h.blocks.iter().any(|b| {
                b.txs
                    .iter()
                    .any(|t| t.compute_txid() == i.previous_output.txid)
            })
        })
}

#[test]
fn zero_fee_htlc_transactions_are_funded_by_the_wallet_and_accepted_by_bitcoin_core() {
    let expiry = START_HEIGHT + 20;
    let (mut h, id, _inc) = anchors_channel(41, expiry);
    let commitment = force_close(&mut h, id);
    let commit_txid = commitment.compute_txid();
    let from = h.broadcasts.len();
    h.mine(vec![commitment.clone()]);

    // HTLC-success at once: the peer's SIGHASH_SINGLE|ANYONECANPAY signature lets the wallet add
    // an input and change; HTLC input 0 still pays output 0 in full.
    check_broadcasts(&h, from, &[]);
    let success = claims_of(&h, from, commit_txid);
    assert_eq!(success.len(), 1, "only the HTLC-success before the expiry");
    let success = success[0].clone();
    assert!(is_funded_htlc_tx(&h, &success, commit_txid));
    let htlc_out = &commitment.output[success.input[0].previous_output.vout as usize];
    assert_eq!(
        success.output[0].value, htlc_out.value,
        "zero-fee: input 0 pays output 0"
    );
    assert_eq!(success.input[0].witness.len(), 5);
    let success_fee = fee_of(&h, &success);
    assert!(
        success_fee >= success.weight().to_wu() / 4 * 2 - 2,
        "pays ~2 sat/vB: {success_fee}"
    );
    h.mine(vec![success.clone()]);

    // HTLC-timeout: offered for block expiry + 1, not before, funded the same way.
    while h.height() < expiry - 1 {
        let from = h.broadcasts.len();
        h.mine(Vec::new());
        assert!(claims_of(&h, from, commit_txid)
            .iter()
            .all(|t| t.lock_time.to_consensus_u32() != expiry));
    }
    let from = h.broadcasts.len();
    h.mine(Vec::new());
    check_broadcasts(&h, from, &[]);
    let timeout: Vec<Transaction> = claims_of(&h, from, commit_txid)
        .into_iter()
        .filter(|t| t.lock_time.to_consensus_u32() == expiry)
        .collect();
    assert_eq!(timeout.len(), 1);
    assert!(is_funded_htlc_tx(&h, &timeout[0], commit_txid));
    assert_eq!(
        timeout[0].input[0].sequence.0, 1,
        "anchors: CSV 1 on the HTLC input"
    );
    let timeout_fee = fee_of(&h, &timeout[0]);
    h.mine(timeout.clone());
    h.mine_empty(6);

    // The ledger counts the wallet's fee for each HTLC transaction.
    let ledger = h.arb.ledger();
    let fees: Vec<u64> = ledger.channels[0]
        .outputs
        .iter()
        .filter(|e| matches!(e.status, OutputStatus::SecondLevel { .. }))
        .map(|e| e.fees_paid_sat)
        .collect();
    let mut expected = vec![success_fee, timeout_fee];
    let mut got = fees.clone();
    expected.sort();
    got.sort();
    assert_eq!(got, expected);
    // The wallet got its inputs back once the claims were final.
    let released = h
        .transcript
        .iter()
        .filter(|a| matches!(a, Action::ReleaseInputs { .. }))
        .count();
    assert_eq!(released, 2);
}
