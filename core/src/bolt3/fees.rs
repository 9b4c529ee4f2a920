//! Commitment and HTLC transaction fees and weights (BOLT 3 "Fee Calculation", "Trimmed
//! Outputs", "`shared_anchor` Output"): the expected weights, the base commitment fee, the
//! second-level fees and trimming, for every [`ChannelType`].

use super::ChannelType;

/// The value of each anchor output, in satoshis.
pub const ANCHOR_OUTPUT_SAT: u64 = 330;
/// The most the `shared_anchor` (pay-to-anchor) output of a zero-fee commitment carries: P2A's
/// standard dust limit (BOLT 3 "`shared_anchor` Output").
pub const SHARED_ANCHOR_MAX_SAT: u64 = 240;

/// Expected commitment weight without HTLC outputs (static remote key).
pub const COMMITMENT_BASE_WEIGHT: u64 = 724;
/// Expected commitment weight without HTLC outputs (anchors).
pub const COMMITMENT_BASE_WEIGHT_ANCHORS: u64 = 1124;
/// Expected commitment weight without HTLC outputs (zero-fee commitments): the static remote key
/// weight (724, `to_local` and `to_remote`) plus one pay-to-anchor output, 4 × (8 value + 1
/// script length + 4 script) = 52. BOLT 3 gives no number (the commitment pays no fee); the
/// CPFP child needs it to price the package.
pub const COMMITMENT_BASE_WEIGHT_ZERO_FEE: u64 = 776;
/// Expected commitment weight without HTLC outputs (simple taproot). The extension
/// (`bolt-simple-taproot.md` at `13b21103`) gives no fee weights; this is derived from its three
/// vector commitments: "no HTLCs" pays `15000 × w / 1000 = 14520` sat, so `w = 968` exactly,
/// and with [`COMMITMENT_WEIGHT_PER_HTLC`] (172, the only integer fitting both) the five- and
/// two-HTLC commitments at 644 sat/kw pay `⌊644 × 1828 / 1000⌋ = 1177` and
/// `⌊644 × 1312 / 1000⌋ = 844`, as they do. (The signed "no HTLCs" vector weighs 960 WU.)
pub const COMMITMENT_BASE_WEIGHT_TAPROOT: u64 = 968;
/// Weight each untrimmed HTLC output adds to a commitment.
pub const COMMITMENT_WEIGHT_PER_HTLC: u64 = 172;
/// Expected weight of an HTLC-timeout transaction (used for its fee).
pub const HTLC_TIMEOUT_WEIGHT: u64 = 663;
/// Expected weight of an HTLC-success transaction (used for its fee).
pub const HTLC_SUCCESS_WEIGHT: u64 = 703;

/// The expected weight of a commitment with `untrimmed_htlcs` HTLC outputs (BOLT 3 "Fee
/// Calculation": 724, or 1124 with anchors, plus 172 per HTLC; 776 with zero-fee commitments,
/// see [`COMMITMENT_BASE_WEIGHT_ZERO_FEE`]; 968 with simple taproot, see
/// [`COMMITMENT_BASE_WEIGHT_TAPROOT`]).
pub fn commitment_weight(channel_type: ChannelType, untrimmed_htlcs: usize) -> u64 {
    let base = match channel_type {
        ChannelType::StaticRemoteKey => COMMITMENT_BASE_WEIGHT,
        ChannelType::AnchorsZeroFeeHtlc => COMMITMENT_BASE_WEIGHT_ANCHORS,
        ChannelType::ZeroFeeCommitments => COMMITMENT_BASE_WEIGHT_ZERO_FEE,
        ChannelType::SimpleTaproot => COMMITMENT_BASE_WEIGHT_TAPROOT,
    };
    let htlcs = u64::try_from(untrimmed_htlcs).unwrap_or(u64::MAX);
    base.saturating_add(COMMITMENT_WEIGHT_PER_HTLC.saturating_mul(htlcs))
}

fn fee_for_weight(feerate_per_kw: u32, weight: u64) -> u64 {
    u64::from(feerate_per_kw).saturating_mul(weight) / 1000
}

/// The base commitment fee: `feerate_per_kw * commitment_weight / 1000`, rounded down; 0 with
/// zero-fee commitments (BOLT 3 "Fee Calculation").
pub fn commitment_fee_sat(
    feerate_per_kw: u32,
    channel_type: ChannelType,
    untrimmed_htlcs: usize,
) -> u64 {
    if channel_type.zero_fee_commitment() {
        return 0;
    }
    fee_for_weight(
        feerate_per_kw,
        commitment_weight(channel_type, untrimmed_htlcs),
    )
}

/// The fee an HTLC-timeout transaction pays: `feerate_per_kw * 663 / 1000`, zero with anchors,
/// zero-fee commitments or simple taproot.
pub fn htlc_timeout_fee_sat(feerate_per_kw: u32, channel_type: ChannelType) -> u64 {
    if channel_type.zero_fee_htlc_txs() {
        0
    } else {
        fee_for_weight(feerate_per_kw, HTLC_TIMEOUT_WEIGHT)
    }
}

/// The fee an HTLC-success transaction pays: `feerate_per_kw * 703 / 1000`, zero with anchors,
/// zero-fee commitments or simple taproot.
pub fn htlc_success_fee_sat(feerate_per_kw: u32, channel_type: ChannelType) -> u64 {
    if channel_type.zero_fee_htlc_txs() {
        0
    } else {
        fee_for_weight(feerate_per_kw, HTLC_SUCCESS_WEIGHT)
    }
}

/// Whether an HTLC is trimmed from the commitment: its amount (rounded down to satoshis) minus
/// the fee of the second-level transaction that would claim it (HTLC-timeout if `offered` by the
/// holder, HTLC-success otherwise) is below the holder's `dust_limit_sat`.
pub fn is_trimmed(
    offered: bool,
    amount_msat: u64,
    dust_limit_sat: u64,
    feerate_per_kw: u32,
    channel_type: ChannelType,
) -> bool {
    let fee = if offered {
        htlc_timeout_fee_sat(feerate_per_kw, channel_type)
    } else {
        htlc_success_fee_sat(feerate_per_kw, channel_type)
    };
    amount_msat / 1000 < dust_limit_sat.saturating_add(fee)
}
