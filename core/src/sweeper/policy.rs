//! How the sweeper batches, splits, prices and reserves: the operator's knobs, with defaults
//! that need no tuning.

use bitcoin::FeeRate;
use serde::{Deserialize, Serialize};

use crate::fee::FeeCurve;

/// The sweeper's batching, splitting, fee-curve and fee-reserve settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SweeperPolicy {
    /// The shape of every claim's fee function.
    pub fee_curve: FeeCurve,
    /// The most inputs one claim transaction spends (a batch is cut beyond it).
    pub max_batch_inputs: u16,
    /// Inputs share a transaction only if their deadlines are at most this many blocks apart:
    /// the batch pays for its earliest deadline, so a later one would overpay for haste.
    pub batch_deadline_window: u32,
    /// A transaction spending outputs the peer can also spend (a justice transaction, HTLC
    /// claims) that stays unconfirmed this many blocks is split, one input per transaction, so
    /// one pinned input cannot hold back the others (lnd splits a justice transaction after 4).
    pub split_after_blocks: u32,
    /// A timeout claim of our outgoing HTLC whose budget cannot pay the minimum relay fee is
    /// still broadcast, paying the relay fee from the HTLC's value (it is lost otherwise).
    /// `false`: it is left to the cut-loss rule, with a report.
    pub force_timeout_claims: bool,
    /// The fee rate the fee reserve assumes, at least: the reserve prices every live claim at
    /// the higher of this and `reserve_stress_factor` times the current estimate.
    pub reserve_feerate_floor: FeeRate,
    /// How much the fee estimate may rise before the reserve is exhausted.
    pub reserve_stress_factor: u32,
}

impl Default for SweeperPolicy {
    fn default() -> Self {
        SweeperPolicy {
            fee_curve: FeeCurve::Linear,
            max_batch_inputs: 50,
            batch_deadline_window: 12,
            split_after_blocks: 4,
            force_timeout_claims: true,
            reserve_feerate_floor: FeeRate::from_sat_per_vb_u32(50),
            reserve_stress_factor: 10,
        }
    }
}

impl SweeperPolicy {
    /// Whether these are the default settings (left out of persisted configurations).
    pub fn is_default(&self) -> bool {
        *self == SweeperPolicy::default()
    }
}
