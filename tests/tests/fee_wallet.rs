//! The fee wallet is never starved while closes pay out: with the wallet that funds CPFP
//! children configured as `fee_wallet`, a sweep of a confirmed close output pays that wallet
//! its shortfall below the fee reserve (the rest goes to the cold destination), and the coin it
//! creates pays for the next channel's commitment when fees spike — every transaction checked by
//! Bitcoin Core's interpreter.

use bitcoin::Transaction;
use contractcourt_core::action::{Action, AlertKind, Report};
use contractcourt_core::bolt3::ChannelType;
use contractcourt_core::chain::Config;
use contractcourt_core::event::{Event, ForceCloseReason};
use contractcourt_core::policy::{check_standard, PolicyConfig};
use contractcourt_core::sim::{SimSetup, SimWallet};
use contractcourt_core::testkit::verify_with_bitcoin_core;
use contractcourt_core::types::{ChannelId, HtlcDirection, Party};
use contractcourt_tests::checks::{check_broadcasts, sweeping_config, uniform_fees, Outputs};
use contractcourt_tests::{Harness, START_HEIGHT};

/// Sweeps go to the usual cold destination; the harness's wallet (seed 1) is the fee wallet.
fn config() -> Config {
    let mut config = sweeping_config();
    if let Some(s) = config.sweep_to.as_mut() {
        s.fee_wallet = Some(SimWallet::new(1).script_pubkey().clone());
    }
    config
}

/// Tell the engine the wallet's confirmed balance, as a driver does after each block.
fn tell_balance(h: &mut Harness) -> Vec<Action> {
    let confirmed_sat = h.wallet.balance_sat();
    let actions = h.feed(Event::WalletBalance { confirmed_sat });
    h.answer(&actions);
    actions
}

fn reserve_alerts(actions: &[Action]) -> usize {
    actions
        .iter()
        .filter(
            |a| matches!(a, Action::Report(Report::Alert(x)) if x.kind == AlertKind::FeeReserveLow),
        )
        .count()
}

/// The transaction among `h.broadcasts[from..]` spending an output of `parent`.
fn sweep_of(h: &Harness, from: usize, parent: &Transaction) -> Transaction {
    let txid = parent.compute_txid();
    h.broadcasts[from..]
        .iter()
        .rev()
        .find(|t| t.input.iter().any(|i| i.previous_output.txid == txid))
        .cloned()
        .expect("a sweep of the close")
}

#[test]
fn a_close_output_refills_an_empty_fee_wallet_whose_coin_then_pays_for_the_next_commitment() {
    let mut h = Harness::new(config());
    let fee_wallet = h.wallet.script_pubkey().clone();
    let cold = sweeping_config().sweep_to.unwrap().destination;
    // Two anchors channels; the second has HTLCs at stake, so the reserve is well above zero.
    let closed = h.open(SimSetup::new(51, ChannelType::AnchorsZeroFeeHtlc));
    let busy: ChannelId = h.open(SimSetup::new(52, ChannelType::AnchorsZeroFeeHtlc));
    h.with_sim(busy, |sim| {
        for i in 0..3 {
            sim.add_htlc(HtlcDirection::Outgoing, 60_000_000, START_HEIGHT + 60 + i)
                .unwrap();
        }
        sim.commit().unwrap()
    });
    // The wallet is empty: below the reserve, alerted.
    assert_eq!(reserve_alerts(&tell_balance(&mut h)), 1);

    // The peer closes the first channel: our balance on it (to_remote, CSV 1) is swept, and the
    // sweep pays the fee wallet in a second output.
    let theirs = h.sim(closed).commitment_tx(Party::Remote, 0).unwrap();
    let from = h.broadcasts.len();
    h.mine(vec![theirs.clone()]);
    tell_balance(&mut h);
    h.mine_empty(1);
    tell_balance(&mut h);
    check_broadcasts(&h, from, &[]);
    let sweep = sweep_of(&h, from, &theirs);
    assert_eq!(sweep.output[0].script_pubkey, cold, "the rest goes cold");
    let topup = sweep
        .output
        .iter()
        .find(|o| o.script_pubkey == fee_wallet)
        .expect("a top-up of the fee wallet")
        .value
        .to_sat();
    assert!(topup > 10_000, "{topup}");

    // It confirms: the wallet holds the top-up, and the next sweep of the same reserve would pay
    // nothing more.
    h.mine(vec![sweep.clone()]);
    tell_balance(&mut h);
    assert_eq!(h.wallet.balance_sat(), topup);

    // Fees spike and the busy channel goes to chain: the CPFP child of its commitment is funded
    // by the coin the close paid in.
    h.feed(uniform_fees(30));
    let sent_before = h.broadcasts.len();
    let actions = h.feed(Event::ForceCloseRequested {
        channel: busy,
        reason: ForceCloseReason::User,
    });
    let from = h.transcript.len();
    h.answer(&actions);
    let (commitment, child) = h.transcript[from..]
        .iter()
        .find_map(|a| match a {
            Action::BroadcastPackage { parent, child, .. } => {
                Some((parent.0.clone(), child.0.clone()))
            }
            _ => None,
        })
        .expect("a CPFP package");
    let sweep_txid = sweep.compute_txid();
    assert!(
        child
            .input
            .iter()
            .any(|i| i.previous_output.txid == sweep_txid),
        "the child spends the top-up"
    );
    // The child (the commitment spends the funding output, which this harness never mines) is
    // checked by Bitcoin Core's interpreter and the standardness rules.
    let (prevouts, _) = Outputs::from(&h, &[commitment]).prevouts(&child);
    verify_with_bitcoin_core(&child, &prevouts).unwrap();
    check_standard(&child, &prevouts, &PolicyConfig::default()).unwrap();
    assert!(h.broadcasts[sent_before..].contains(&child));
}
