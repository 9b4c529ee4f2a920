//! Refilling the fee wallet from close outputs: while the wallet that funds CPFP children is
//! below its reserve, a sweep pays it the shortfall in a second output — once, however many
//! sweeps are in flight — and the rest still goes to the destination; nothing of the kind
//! without a configured fee wallet, with enough in it, or from an output too small to share.

use super::*;
use crate::sweeper::reserve::FeeReserve;

fn fee_wallet() -> ScriptBuf {
    ScriptBuf::new_p2wpkh(&WPubkeyHash::from_byte_array([9; 20]))
}

fn reserve(total_sat: u64) -> FeeReserve {
    FeeReserve {
        total_sat,
        feerate: vb(50),
        weight: 4 * total_sat / 50,
        channels: 1,
        htlcs: 0,
    }
}

/// A harness whose fee wallet holds `balance` against a reserve of `needed`.
fn short_wallet(balance: u64, needed: u64) -> Harness {
    let mut h = Harness::new(channel(ChannelType::AnchorsZeroFeeHtlc, 50_000_000));
    h.cfg.fee_wallet = Some(fee_wallet());
    h.sweeper.on_wallet_balance(balance);
    h.sweeper.check_reserve(&reserve(needed));
    h
}

/// What the latest broadcast spending `outpoint` pays the fee wallet.
fn topup_of(h: &Harness, outpoint: &OutPoint) -> u64 {
    let tx = latest(h, outpoint);
    tx.output
        .iter()
        .filter(|o| o.script_pubkey == fee_wallet())
        .map(|o| o.value.to_sat())
        .sum()
}

#[test]
fn a_sweep_pays_a_short_fee_wallet_exactly_its_shortfall_and_the_rest_to_the_destination() {
    let mut h = short_wallet(10_000, 60_000);
    let to_remote = request_of(&h.sim, is_to_remote);
    h.request(to_remote.clone());
    h.block(CONF);
    let tx = latest(&h, &to_remote.outpoint);
    assert_eq!(tx.output.len(), 2);
    assert_eq!(tx.output[0].script_pubkey, destination());
    assert_eq!(topup_of(&h, &to_remote.outpoint), 50_000);
    // The fee is what it would be anyway, paid from the claimed value; the destination gets
    // the rest.
    let fee = h.fee_of(&tx);
    assert!(fee <= to_remote.budget_sat);
    assert_eq!(
        tx.output[0].value.to_sat(),
        to_remote.txout.value.to_sat() - fee - 50_000
    );
    assert!(
        h.timeline()
            .iter()
            .any(|t| t.contains("50000 sat of it refill the fee wallet")),
        "{:#?}",
        h.timeline()
    );
}

#[test]
fn two_sweeps_in_flight_refill_the_wallet_once_and_a_bump_keeps_the_top_up() {
    let mut h = short_wallet(10_000, 60_000);
    let to_remote = request_of(&h.sim, is_to_remote);
    let preimage = request_of(&h.sim, is_preimage);
    h.request(to_remote.clone());
    h.request(preimage.clone());
    h.block(CONF);
    // Two transactions (contested and uncontested inputs never mix); one carries the top-up.
    let total = topup_of(&h, &to_remote.outpoint) + topup_of(&h, &preimage.outpoint);
    assert_eq!(total, 50_000);
    // A fee spike bumps both: the top-up stays, still once.
    h.fees = Some(fees(50));
    h.block(CONF + 1);
    assert!(h.broadcasts_of(&to_remote.outpoint).len() >= 2);
    let total = topup_of(&h, &to_remote.outpoint) + topup_of(&h, &preimage.outpoint);
    assert_eq!(total, 50_000);
}

#[test]
fn a_confirmed_top_up_counts_until_the_wallet_shows_it_and_none_is_paid_once_the_reserve_is_met() {
    let mut h = short_wallet(10_000, 60_000);
    let to_remote = request_of(&h.sim, is_to_remote);
    h.request(to_remote.clone());
    h.block(CONF);
    let first = latest(&h, &to_remote.outpoint);
    h.sweeper
        .on_spent(&to_remote.outpoint, first.compute_txid(), CONF + 1);
    // Confirmed, but the wallet's balance does not show it yet: a new sweep pays nothing more.
    let preimage = request_of(&h.sim, is_preimage);
    h.request(preimage.clone());
    h.block(CONF + 1);
    assert_eq!(topup_of(&h, &preimage.outpoint), 0);
    // The wallet now shows it and meets the reserve: still nothing.
    h.sweeper.on_wallet_balance(60_000);
    h.sweeper.check_reserve(&reserve(60_000));
    h.fees = Some(fees(50));
    h.block(CONF + 2);
    assert_eq!(topup_of(&h, &preimage.outpoint), 0);
    // Spent down below the reserve again: the next sweep built refills it.
    h.sweeper.on_wallet_balance(20_000);
    h.sweeper.check_reserve(&reserve(60_000));
    let to_local = request_of(&h.sim, is_to_local);
    h.request(to_local.clone());
    h.block(to_local.mature_at - 1);
    let total = topup_of(&h, &preimage.outpoint) + topup_of(&h, &to_local.outpoint);
    assert_eq!(total, 40_000);
}

#[test]
fn no_top_up_without_a_fee_wallet_with_enough_in_it_or_from_an_output_too_small_to_share() {
    let to_remote_of = |h: &Harness| request_of(&h.sim, is_to_remote);
    // No fee wallet configured.
    let mut h = short_wallet(10_000, 60_000);
    h.cfg.fee_wallet = None;
    let req = to_remote_of(&h);
    h.request(req.clone());
    h.block(CONF);
    assert_eq!(latest(&h, &req.outpoint).output.len(), 1);
    // Enough in the wallet.
    let mut h = short_wallet(60_000, 60_000);
    let req = to_remote_of(&h);
    h.request(req.clone());
    h.block(CONF);
    assert_eq!(latest(&h, &req.outpoint).output.len(), 1);
    // An output that, after its whole budget, leaves the destination no more than dust plus a
    // dust-sized top-up: it pays the destination alone.
    let mut h = short_wallet(10_000, 60_000);
    let mut req = to_remote_of(&h);
    let dust = dust_threshold(&destination(), 3000);
    req.budget_sat = req.txout.value.to_sat() - 2 * dust + 1;
    h.request(req.clone());
    h.block(CONF);
    let tx = latest(&h, &req.outpoint);
    assert_eq!(tx.output.len(), 1, "{tx:?}");
}
