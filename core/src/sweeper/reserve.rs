//! The fee reserve: what the wallet that funds CPFP children and zero-fee HTLC transactions must
//! hold so that every open anchor channel can still be closed and its HTLCs claimed when fees
//! spike. Computed from live exposure — each channel's untrimmed HTLCs and the weight the wallet
//! pays for (the commitment and its CPFP child, each HTLC transaction with a wallet input and
//! change) — at a stressed fee rate, rather than a flat amount per channel (lnd reserves 10,000
//! sat per channel, capped at 100,000, whatever is at stake).
//!
//! Claims of outputs (the sweeper's own transactions) pay their fees from the value they claim and
//! need no reserve; neither do channels without anchors (their commitment and HTLC transactions
//! carry their own fees).

use crate::action::{Action, AlertKind};
use crate::bolt3::commitment::commitment_weight;
use crate::bolt3::weights::{
    claim_input_weight, htlc_tx_weight, output_weight, tx_overhead_weight, P2WPKH_SCRIPT_PUBKEY_LEN,
};
use crate::bolt3::witness::ClaimPath;
use crate::bolt3::{AnchorKind, ChannelType};
use crate::event::FeeConditions;
use crate::funded::P2WPKH_INPUT_WEIGHT;
use crate::types::{ChannelId, HtlcDirection};

use super::block::{alert_any, rate_text};
use super::SweeperPolicy;
use crate::fee::{estimate_for, fee_for_rate};

/// What one open anchor channel may need from the wallet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelExposure {
    /// The channel.
    pub channel: ChannelId,
    /// Its commitment format: which anchor the CPFP child spends, and the weights of its
    /// commitment and HTLC transactions.
    pub channel_type: ChannelType,
    /// Its untrimmed HTLCs on our latest commitment: (direction, `cltv_expiry`).
    pub htlcs: Vec<(HtlcDirection, u32)>,
}

/// The reserve and how it was priced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeeReserve {
    /// The total the wallet should hold.
    pub total_sat: u64,
    /// The stressed fee rate it is priced at.
    pub feerate: bitcoin::FeeRate,
    /// The weight the wallet pays for, over every channel.
    pub weight: u64,
    /// How many channels and HTLCs are at stake.
    pub channels: usize,
    /// The HTLCs at stake.
    pub htlcs: usize,
}

/// The weight the wallet pays for to close one channel and claim its HTLCs: the commitment and
/// a CPFP child (the anchor, a wallet input, change), and each HTLC transaction with a wallet
/// input and change. The anchor and the weights are the channel type's: a keyed anchor (our
/// funding key's signature and the 40-byte anchor script) on a 1124-weight commitment under
/// `option_anchors`; the shared pay-to-anchor output (an empty witness) on a 776-weight zero-fee
/// commitment, whose HTLC scripts have no `1 OP_CSV OP_DROP` (BOLT 3 "`shared_anchor` Output",
/// offered/received HTLC outputs).
pub fn exposure_weight(e: &ChannelExposure) -> u64 {
    let ct = e.channel_type;
    let anchor = match ct.anchor_kind() {
        Some(AnchorKind::PayToAnchor) => ClaimPath::PayToAnchor,
        _ => ClaimPath::AnchorOwner,
    };
    let change = output_weight(P2WPKH_SCRIPT_PUBKEY_LEN);
    let child =
        tx_overhead_weight(2, 1) + claim_input_weight(&anchor) + P2WPKH_INPUT_WEIGHT + change;
    let htlcs: u64 = e
        .htlcs
        .iter()
        .map(|(direction, cltv)| {
            let success = *direction == HtlcDirection::Incoming;
            htlc_tx_weight(success, *cltv, ct) + P2WPKH_INPUT_WEIGHT + change
        })
        .sum();
    commitment_weight(ct, e.htlcs.len()) + child + htlcs
}

/// The reserve for `exposures` under `fees`: their weight at the higher of the configured floor
/// and `reserve_stress_factor` times the next-block estimate (the floor alone without fee
/// conditions).
pub fn fee_reserve(
    exposures: &[ChannelExposure],
    fees: Option<&FeeConditions>,
    policy: &SweeperPolicy,
) -> FeeReserve {
    priced(
        exposures.iter().map(exposure_weight).sum(),
        exposures.len(),
        exposures.iter().map(|e| e.htlcs.len()).sum(),
        fees,
        policy,
    )
}

/// `weight` for `channels` channels and `htlcs` HTLCs, priced as [`fee_reserve`] says.
pub fn priced(
    weight: u64,
    channels: usize,
    htlcs: usize,
    fees: Option<&FeeConditions>,
    policy: &SweeperPolicy,
) -> FeeReserve {
    // Without fee conditions, the floor alone.
    let market = estimate_for(fees, 1, bitcoin::FeeRate::ZERO);
    let stressed = bitcoin::FeeRate::from_sat_per_kwu(
        market
            .to_sat_per_kwu()
            .saturating_mul(u64::from(policy.reserve_stress_factor)),
    )
    .max(policy.reserve_feerate_floor);
    FeeReserve {
        total_sat: fee_for_rate(stressed, weight),
        feerate: stressed,
        weight,
        channels,
        htlcs,
    }
}

/// How the wallet stands against the reserve.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ReserveLevel {
    /// At least 125 % of the reserve.
    Enough,
    /// Within 25 % above the reserve: warned before it falls below.
    Approaching,
    /// Below the reserve.
    Below,
}

/// Where `balance_sat` stands against `reserve`.
pub fn level(balance_sat: u64, reserve: &FeeReserve) -> ReserveLevel {
    let margin = reserve.total_sat.saturating_add(reserve.total_sat / 4);
    if balance_sat < reserve.total_sat {
        ReserveLevel::Below
    } else if balance_sat < margin {
        ReserveLevel::Approaching
    } else {
        ReserveLevel::Enough
    }
}

/// The alert for a wallet at `level` (none while there is enough).
pub fn reserve_alert(
    balance_sat: u64,
    reserve: &FeeReserve,
    level: ReserveLevel,
) -> Option<Action> {
    let what = match level {
        ReserveLevel::Enough => return None,
        ReserveLevel::Approaching => "is within 25% of",
        ReserveLevel::Below => "is below",
    };
    Some(alert_any(
        AlertKind::FeeReserveLow,
        format!(
            "the wallet's {balance_sat} sat {what} the fee reserve of {} sat: {} anchor channels \
             with {} HTLCs at stake need {} vB of CPFP and HTLC transactions at a stressed {} \
             sat/vB",
            reserve.total_sat,
            reserve.channels,
            reserve.htlcs,
            reserve.weight.div_ceil(4),
            rate_text(reserve.feerate)
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin::FeeRate;

    fn exposure(htlcs: usize) -> ChannelExposure {
        ChannelExposure {
            channel: ChannelId([1; 32]),
            channel_type: ChannelType::AnchorsZeroFeeHtlc,
            htlcs: (0..htlcs)
                .map(|i| {
                    let d = if i % 2 == 0 {
                        HtlcDirection::Incoming
                    } else {
                        HtlcDirection::Outgoing
                    };
                    (d, 800_000)
                })
                .collect(),
        }
    }

    #[test]
    fn the_reserve_grows_with_the_htlcs_at_stake_and_the_market() {
        let policy = SweeperPolicy::default();
        let idle = fee_reserve(&[exposure(0)], None, &policy);
        let busy = fee_reserve(&[exposure(0), exposure(30)], None, &policy);
        assert!(idle.total_sat > 0);
        assert!(busy.total_sat > 10 * idle.total_sat, "{idle:?} {busy:?}");
        assert_eq!(busy.htlcs, 30);
        // At the floor (50 sat/vB) a quiet channel needs about 23,000 sat: its commitment and
        // CPFP child at a rate that survives a spike...
        assert_eq!(idle.feerate, FeeRate::from_sat_per_vb_u32(50));
        assert!(
            idle.total_sat > 10_000 && idle.total_sat < 30_000,
            "{idle:?}"
        );
        // ...and a busy one far more than lnd's 100,000 sat cap would allow for.
        let many: Vec<_> = (0..10).map(|_| exposure(30)).collect();
        assert!(fee_reserve(&many, None, &policy).total_sat > 100_000);
        // A market at 20 sat/vB stressed ×10 prices at 200 sat/vB.
        let fees = FeeConditions {
            estimates: vec![crate::event::FeeEstimate {
                target_blocks: 1,
                feerate: FeeRate::from_sat_per_vb_u32(20),
            }],
            mempool_min: FeeRate::from_sat_per_vb_u32(1),
            min_relay: FeeRate::from_sat_per_vb_u32(1),
            incremental_relay: FeeRate::from_sat_per_vb_u32(1),
        };
        let stressed = fee_reserve(&[exposure(2)], Some(&fees), &policy);
        assert_eq!(stressed.feerate, FeeRate::from_sat_per_vb_u32(200));
        assert_eq!(
            stressed.total_sat,
            fee_for_rate(FeeRate::from_sat_per_vb_u32(200), stressed.weight)
        );
    }

    /// Issue 19: a zero-fee commitment channel is priced with the pay-to-anchor weights, every
    /// number worked out by hand from BOLT 3 (Appendix A, PR 1228's `shared_anchor` and HTLC
    /// scripts) and BIP 141 — none computed by the code under test.
    #[test]
    fn a_zero_fee_commitment_channel_is_priced_with_pay_to_anchor_weights() {
        let policy = SweeperPolicy::default();
        let idle = ChannelExposure {
            channel: ChannelId([2; 32]),
            channel_type: ChannelType::ZeroFeeCommitments,
            htlcs: Vec::new(),
        };
        // Commitment: BOLT 3's 724 plus one P2A output, 4 × (8 value + 1 length + 4 script) =
        // 776. CPFP child: version, locktime and the two counts, 4 × 10 = 40, plus segwit marker
        // and flag 2 = 42; the P2A input, 4 × 41 non-witness bytes + 1 (an empty witness) = 165;
        // a P2WPKH wallet input, 164 + 1 + 1 + 73 + 1 + 33 = 273; P2WPKH change, 4 × 31 = 124.
        // 776 + 42 + 165 + 273 + 124 = 1,380 (345 vB), at the 50 sat/vB floor 17,250 sat.
        let r = fee_reserve(std::slice::from_ref(&idle), None, &policy);
        assert_eq!(r.weight, 1_380);
        assert_eq!(r.total_sat, 17_250);
        // The same channel priced with a keyed anchor would be 1,124 + 42 + (164 + 1 + 1 + 73 +
        // 1 + 40) + 273 + 124 = 1,843.
        let keyed = ChannelExposure {
            channel_type: ChannelType::AnchorsZeroFeeHtlc,
            ..idle.clone()
        };
        assert_eq!(exposure_weight(&keyed), 1_843);
        // One incoming HTLC expiring at 800,000: 172 on the commitment, and an HTLC-success of
        // 42 + (164 + witness 1 + 1 + (1 + 73) × 2 + (1 + 32) + (1 + 139: the received script,
        // 135 + a 4-byte expiry push, no `1 OP_CSV OP_DROP`)) + 4 × (8 + 1 + 34) = 701 with its
        // wallet input and change, 701 + 273 + 124 = 1,098. 1,380 + 172 + 1,098 = 2,650
        // (663 vB), 33,150 sat.
        let busy = ChannelExposure {
            htlcs: vec![(HtlcDirection::Incoming, 800_000)],
            ..idle
        };
        let r = fee_reserve(&[busy], None, &policy);
        assert_eq!(r.weight, 2_650);
        assert_eq!(r.total_sat, 33_150);
    }

    #[test]
    fn the_alert_fires_before_the_wallet_falls_below_the_reserve() {
        let reserve = fee_reserve(&[exposure(4)], None, &SweeperPolicy::default());
        let r = reserve.total_sat;
        assert_eq!(level(2 * r, &reserve), ReserveLevel::Enough);
        assert_eq!(level(r + r / 8, &reserve), ReserveLevel::Approaching);
        assert_eq!(level(r - 1, &reserve), ReserveLevel::Below);
        assert!(reserve_alert(2 * r, &reserve, ReserveLevel::Enough).is_none());
        assert!(reserve_alert(r, &reserve, ReserveLevel::Approaching).is_some());
    }
}
