//! A close reorged out gives back the wallet coins its claims had borrowed. Found by the model
//! check (zero-fee commitments, a thin wallet of three coins, our commitment confirmed by a
//! reorg swap, then a reorg deeper than `reorg_safety_depth` that dropped it): the engine
//! dropped the close's resolvers — with their wallet-funded HTLC transactions — without
//! releasing the coins lent to them, so the wallet had none left for the CPFP child our
//! commitment needs to confirm again, and the channel, with every HTLC on it, never went back
//! to the chain.

use bitcoin::Transaction;
use contractcourt_core::action::Action;
use contractcourt_core::bolt3::ChannelType;
use contractcourt_core::event::{Event, FundingOutcome};
use contractcourt_core::sim::SimSetup;
use contractcourt_core::types::Party;
use contractcourt_tests::checks::{incoming_with_preimages, sweeping_config, uniform_fees};
use contractcourt_tests::{Harness, START_HEIGHT};

/// The claims whose funding requests `actions` hold.
fn funding_claims(actions: &[Action]) -> Vec<contractcourt_core::types::ClaimId> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::FundFromWallet(r) => Some(r.request.claim),
            _ => None,
        })
        .collect()
}

#[test]
fn a_close_reorged_out_releases_the_wallet_coins_lent_to_its_htlc_claims() {
    let mut h = Harness::new(sweeping_config());
    // One coin: whatever holds it holds the whole wallet.
    h.fund_wallet(1, 100_000);
    let id = h.open(SimSetup::new(811, ChannelType::AnchorsZeroFeeHtlc));
    let expiry = START_HEIGHT + 40;
    incoming_with_preimages(&mut h, id, &[60_000_000], expiry);
    let actions = h.feed(uniform_fees(5));
    h.answer(&actions);

    // Our commitment confirms without our asking (as after a reorg swap): the HTLC-success
    // transaction is funded from the wallet's one coin.
    let sim = h.sim(id);
    let commitment: Transaction = sim
        .commitment_tx(Party::Local, sim.local_commitment_number())
        .expect("our commitment");
    let close_height = h.height() + 1;
    let at_close = h.mine(vec![commitment]);
    let htlc_claims = funding_claims(&at_close);
    assert_eq!(htlc_claims.len(), 1, "{at_close:?}");
    let funded = h
        .transcript
        .iter()
        .any(|a| matches!(a, Action::Sign(s) if s.request.claim == htlc_claims[0]));
    assert!(
        funded,
        "the HTLC-success transaction was funded and sent to be signed"
    );

    // A reorg drops the close (its transactions are not mined again).
    let mut undone = Vec::new();
    while h.height() >= close_height {
        let actions = h.disconnect_tip();
        undone.extend(h.answer(&actions));
        undone.extend(actions);
    }
    assert!(
        undone
            .iter()
            .any(|a| matches!(a, Action::ReleaseInputs { claim } if *claim == htlc_claims[0])),
        "the coin lent to the dropped HTLC claim is released: {undone:?}"
    );

    // The HTLC's deadline brings us back to chain: the CPFP child of our commitment is funded
    // from the coin given back.
    let after_reorg = h.trace.steps.len();
    while h.height() < expiry {
        h.mine(Vec::new());
        let funded = h.trace.steps[after_reorg..].iter().any(|s| {
            matches!(
                &s.event,
                Event::WalletFunded {
                    outcome: FundingOutcome::Funded { .. },
                    ..
                }
            )
        });
        if funded {
            return;
        }
    }
    panic!("no claim of the close's second coming was funded before the HTLC's expiry");
}
