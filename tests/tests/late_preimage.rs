//! A preimage that arrives after its incoming HTLC expired is still claimed while the peer lets
//! us (BOLT 5: the peer *may* time it out; until it does, the HTLC-success path is open). Found
//! by the model check of several channels: on an anchors channel the HTLC-success transaction is
//! wallet-funded, and the engine asked the wallet every block — but dropped every answer, taking
//! a claim of an HTLC counted expired for one no longer live. The HTLC was never claimed.

use bitcoin::{OutPoint, Transaction};
use contractcourt_core::action::Action;
use contractcourt_core::bolt3::ChannelType;
use contractcourt_core::event::{Event, PreimageSource};
use contractcourt_core::policy::{check_final, check_standard, PolicyConfig};
use contractcourt_core::sim::SimSetup;
use contractcourt_core::testkit::verify_with_bitcoin_core;
use contractcourt_core::types::Party;
use contractcourt_tests::checks::{add_incoming, sweeping_config, uniform_fees, Outputs};
use contractcourt_tests::{Harness, START_HEIGHT};

#[test]
fn a_preimage_learned_after_its_incoming_htlc_expired_is_claimed_by_a_wallet_funded_htlc_success() {
    let mut h = Harness::new(sweeping_config());
    h.fund_wallet(2, 200_000);
    let id = h.open(SimSetup::new(812, ChannelType::AnchorsZeroFeeHtlc));
    let expiry = START_HEIGHT + 20;
    let htlc = add_incoming(&mut h, id, 60_000_000, expiry);
    let actions = h.feed(uniform_fees(5));
    h.answer(&actions);

    // Our commitment confirms; the HTLC expires, reorg-safe, with no preimage: the peer's to
    // take — but the peer does nothing.
    let sim = h.sim(id);
    let commitment: Transaction = sim
        .commitment_tx(Party::Local, sim.local_commitment_number())
        .expect("our commitment");
    let amount = bitcoin::Amount::from_sat(60_000);
    let vout = commitment
        .output
        .iter()
        .position(|o| o.value == amount)
        .expect("the HTLC output");
    let output = OutPoint {
        txid: commitment.compute_txid(),
        vout: u32::try_from(vout).expect("small index"),
    };
    h.mine(vec![commitment.clone()]);
    h.mine_empty(expiry + 8 - h.height());

    // The preimage comes late.
    let from = h.broadcasts.len();
    let actions = h.feed(Event::PreimageLearned {
        preimage: htlc.preimage,
        source: PreimageSource::Invoice { htlc: htlc.key },
    });
    h.answer(&actions);
    h.mine_empty(2);
    let claim = h.broadcasts[from..]
        .iter()
        .find(|t| t.input.iter().any(|i| i.previous_output == output))
        .cloned()
        .unwrap_or_else(|| {
            let asked = h
                .transcript
                .iter()
                .filter(|a| matches!(a, Action::FundFromWallet(_)))
                .count();
            panic!("no HTLC-success broadcast for {output} ({asked} funding requests)")
        });
    // Checked by Bitcoin Core's script interpreter and our policy check.
    let outputs = Outputs::from(&h, &[commitment]);
    let (prevouts, heights) = outputs.prevouts(&claim);
    verify_with_bitcoin_core(&claim, &prevouts).expect("valid HTLC-success");
    check_standard(&claim, &prevouts, &PolicyConfig::default()).expect("standard");
    check_final(&claim, h.height() + 1, &heights).expect("final");
}
