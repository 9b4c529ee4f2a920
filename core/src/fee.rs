//! Fee arithmetic, below every machine that pays fees (the sweeper, funded claims, anchors): the
//! fee function — a curve (a straight line by default, [`FeeCurve`]) from the fee estimate at the
//! first build toward the budget's fee rate at the deadline, never above the budget, never below
//! the relay floor.
//!
//! Rates are [`FeeRate`]s (sat per 1000 weight units). Fees are computed on the virtual size
//! (`ceil(weight / 4)`) the way Bitcoin Core computes a fee from a rate, so a claim paying
//! [`fee_for_rate`] of the minimum relay rate always meets the minimum relay fee, and a claim
//! paying [`fee_for_rate`] of [`budget_rate`] never pays more than its budget.

use bitcoin::FeeRate;
use serde::{Deserialize, Serialize};

use crate::event::FeeConditions;
use crate::policy::fee_for_vsize;
use crate::types::Height;

/// The dust relay fee rate claims keep their outputs above (Bitcoin Core's default
/// `-dustrelayfee`, sat per 1000 virtual bytes).
pub const DUST_RELAY_FEE_SAT_PER_KVB: u64 = 3000;

/// Bitcoin Core's default minimum relay fee rate (1 sat/vB), used until fee conditions arrive.
pub const DEFAULT_MIN_RELAY: FeeRate = FeeRate::from_sat_per_kwu(250);
/// Bitcoin Core's default incremental relay fee rate (1 sat/vB, BIP 125 rule 4).
pub const DEFAULT_INCREMENTAL_RELAY: FeeRate = FeeRate::from_sat_per_kwu(250);

/// The confirmation targets, in blocks, at which a driver asks its fee source for estimates
/// (bitcoind's `estimatesmartfee` accepts 1 to 1008). [`estimate_for`] reads the estimate of the
/// largest target not above a claim's blocks to its deadline, so these cover deadlines from the
/// next block to a week out.
pub const ESTIMATE_TARGETS: [u16; 9] = [1, 2, 3, 6, 12, 24, 48, 144, 1008];

/// The virtual size of a transaction of `weight` weight units.
pub fn vsize(weight: u64) -> u64 {
    weight.div_ceil(4)
}

/// The fee of a transaction of `weight` weight units at `rate`: `ceil(vsize * rate)`, with the
/// rate in sat per 1000 virtual bytes (Bitcoin Core's `CFeeRate::GetFee`).
pub fn fee_for_rate(rate: FeeRate, weight: u64) -> u64 {
    fee_for_vsize(vsize(weight), rate.to_sat_per_kwu().saturating_mul(4))
}

/// The fee a child of `weight` pays at `rate` for itself and its parent (`parent_fee_sat` paid
/// on `parent_weight`; both 0 without one): the package reaches the rate, and the child alone
/// does too (a mempool judges a child on its own as well).
pub fn child_fee_for_rate(
    rate: FeeRate,
    weight: u64,
    parent_fee_sat: u64,
    parent_weight: u64,
) -> u64 {
    fee_for_rate(rate, weight.saturating_add(parent_weight))
        .saturating_sub(parent_fee_sat)
        .max(fee_for_rate(rate, weight))
}

/// The highest rate whose [`fee_for_rate`] on `weight` does not exceed `budget_sat`.
pub fn budget_rate(budget_sat: u64, weight: u64) -> FeeRate {
    let vsize = vsize(weight).max(1);
    // rate (sat/kwu) * 4 * vsize / 1000 <= budget  <=>  rate <= budget * 250 / vsize.
    let kwu = u128::from(budget_sat) * 250 / u128::from(vsize);
    FeeRate::from_sat_per_kwu(u64::try_from(kwu).unwrap_or(u64::MAX))
}

/// The rate `fee_sat` pays on `weight` (floor), for reports and replacement checks.
pub fn rate_of(fee_sat: u64, weight: u64) -> FeeRate {
    budget_rate(fee_sat, weight)
}

/// The estimate for confirming within `blocks` blocks: the estimate of the largest target not
/// above `blocks`, else that of the smallest target; `fallback` without conditions or estimates.
pub fn estimate_for(fees: Option<&FeeConditions>, blocks: u32, fallback: FeeRate) -> FeeRate {
    let Some(fees) = fees else {
        return fallback;
    };
    let within = fees
        .estimates
        .iter()
        .filter(|e| u32::from(e.target_blocks) <= blocks)
        .max_by_key(|e| (e.target_blocks, e.feerate));
    let smallest = || {
        fees.estimates
            .iter()
            .min_by_key(|e| (e.target_blocks, std::cmp::Reverse(e.feerate)))
    };
    within
        .or_else(smallest)
        .map_or(fallback, |estimate| estimate.feerate)
}

/// The lowest rate a claim may pay under `fees`: the higher of the minimum relay fee and the
/// mempool's minimum fee (Bitcoin Core's defaults without conditions).
pub fn relay_floor(fees: Option<&FeeConditions>) -> FeeRate {
    fees.map_or(DEFAULT_MIN_RELAY, |f| f.min_relay.max(f.mempool_min))
}

/// The minimum relay fee rate under `fees` (Bitcoin Core's default without conditions).
pub fn min_relay(fees: Option<&FeeConditions>) -> FeeRate {
    fees.map_or(DEFAULT_MIN_RELAY, |f| f.min_relay)
}

/// The incremental relay fee rate under `fees` (Bitcoin Core's default without conditions).
pub fn incremental_relay(fees: Option<&FeeConditions>) -> FeeRate {
    fees.map_or(DEFAULT_INCREMENTAL_RELAY, |f| f.incremental_relay)
}

/// Where a claim's fee line starts: fixed when the claim is first built.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeePlan {
    /// The estimate for the blocks left to the deadline at the first build.
    pub start: FeeRate,
    /// The height of the block the first build was offered for (tip + 1).
    pub start_height: Height,
}

/// The shape of the fee function between its start and the budget's rate at the deadline. Every
/// curve is monotone non-decreasing and reaches the budget's rate exactly at the deadline.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeeCurve {
    /// A straight line (lnd's default).
    #[default]
    Linear,
    /// Slow first, steep near the deadline (`f²` of the elapsed fraction `f`): patient, cheaper
    /// when the claim confirms early, for claims nobody else can take.
    Convex,
    /// Steep first, flat near the deadline (`1 - (1 - f)²`): eager, for contested claims.
    Concave,
}

impl FeeCurve {
    /// The fraction of the rise reached after `done` of `span` blocks, as `num / den`
    /// (`0 <= done <= span`, `span > 0`).
    fn fraction(self, done: u128, span: u128) -> (u128, u128) {
        match self {
            FeeCurve::Linear => (done, span),
            FeeCurve::Convex => (done * done, span * span),
            FeeCurve::Concave => {
                let left = span - done;
                (span * span - left * left, span * span)
            }
        }
    }
}

/// The fee function of one claim.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeeFunction {
    /// The rate at `start_height` (capped at `end`).
    pub start: FeeRate,
    /// The rate at the deadline: the budget's rate. Never exceeded.
    pub end: FeeRate,
    /// The height of the block the first build was offered for.
    pub start_height: Height,
    /// The height by which the claim must confirm.
    pub deadline: Height,
    /// Its shape.
    #[serde(default)]
    pub curve: FeeCurve,
}

impl FeeFunction {
    /// The function for `plan` ending at `end` at `deadline`.
    pub fn new(plan: FeePlan, end: FeeRate, deadline: Height) -> FeeFunction {
        FeeFunction {
            start: plan.start,
            end,
            start_height: plan.start_height,
            deadline,
            curve: FeeCurve::Linear,
        }
    }

    /// The same function with another shape.
    pub fn with_curve(self, curve: FeeCurve) -> FeeFunction {
        FeeFunction { curve, ..self }
    }

    /// The curve alone at `height` (the height of the block a claim is offered for): for the
    /// linear curve `start + (end - start) * (height - start_height) / (deadline - start_height)`;
    /// `start` before `start_height`, `end` at and after the deadline. A start above the budget
    /// is cut to the budget. Monotone non-decreasing in `height`, never above `end`.
    pub fn line_at(&self, height: Height) -> FeeRate {
        let end = self.end.to_sat_per_kwu();
        let start = self.start.to_sat_per_kwu().min(end);
        if height >= self.deadline || self.deadline <= self.start_height {
            return self.end;
        }
        if height <= self.start_height {
            return FeeRate::from_sat_per_kwu(start);
        }
        let done = u128::from(height - self.start_height);
        let span = u128::from(self.deadline - self.start_height);
        let (num, den) = self.curve.fraction(done, span);
        let rise = u128::from(end - start) * num / den.max(1);
        // `rise <= end - start`, so this fits in a u64.
        FeeRate::from_sat_per_kwu(start + u64::try_from(rise).unwrap_or(end - start))
    }

    /// The rate to pay at `height`: the line, raised to the current `market` estimate and to
    /// `floor` (relay minimums, or a rate a mempool refused), and then capped at `end` — the
    /// budget wins over everything (invariant 7).
    pub fn rate_at(&self, height: Height, market: FeeRate, floor: FeeRate) -> FeeRate {
        self.line_at(height).max(market).max(floor).min(self.end)
    }

    /// [`FeeFunction::rate_at`], with what set it, in words for reports.
    pub fn explain(
        &self,
        height: Height,
        market: FeeRate,
        floor: FeeRate,
    ) -> (FeeRate, &'static str) {
        let line = self.line_at(height);
        let rate = self.rate_at(height, market, floor);
        let why = if line.max(market).max(floor) > self.end {
            "the budget (capped)"
        } else if rate == self.end && height >= self.deadline {
            "the budget at the deadline"
        } else if floor > line && floor >= market {
            "the floor (relay minimums, or a refused or replaced rate)"
        } else if market > line {
            "the market estimate"
        } else {
            "the fee function"
        };
        (rate, why)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::FeeEstimate;

    fn vb(sat_per_vb: u64) -> FeeRate {
        FeeRate::from_sat_per_kwu(sat_per_vb * 250)
    }

    fn conditions() -> FeeConditions {
        FeeConditions {
            estimates: vec![
                FeeEstimate {
                    target_blocks: 2,
                    feerate: vb(30),
                },
                FeeEstimate {
                    target_blocks: 6,
                    feerate: vb(10),
                },
                FeeEstimate {
                    target_blocks: 144,
                    feerate: vb(2),
                },
            ],
            mempool_min: vb(3),
            min_relay: vb(1),
            incremental_relay: vb(1),
        }
    }

    fn function() -> FeeFunction {
        FeeFunction::new(
            FeePlan {
                start: vb(5),
                start_height: 100,
            },
            vb(50),
            110,
        )
    }

    #[test]
    fn estimate_takes_the_nearest_target_not_above_the_blocks_left() {
        let fees = conditions();
        let fallback = vb(7);
        assert_eq!(estimate_for(Some(&fees), 200, fallback), vb(2));
        assert_eq!(estimate_for(Some(&fees), 143, fallback), vb(10));
        assert_eq!(estimate_for(Some(&fees), 6, fallback), vb(10));
        assert_eq!(estimate_for(Some(&fees), 5, fallback), vb(30));
        // Fewer blocks than the smallest target: the smallest target's estimate.
        assert_eq!(estimate_for(Some(&fees), 1, fallback), vb(30));
        assert_eq!(estimate_for(Some(&fees), 0, fallback), vb(30));
        assert_eq!(estimate_for(None, 3, fallback), fallback);
        let empty = FeeConditions {
            estimates: Vec::new(),
            ..fees
        };
        assert_eq!(estimate_for(Some(&empty), 3, fallback), fallback);
    }

    #[test]
    fn line_is_monotone_from_start_to_the_budget_rate_at_the_deadline() {
        let f = function();
        let mut last = FeeRate::ZERO;
        for h in 90..130 {
            let rate = f.line_at(h);
            assert!(rate >= last, "not monotone at {h}");
            assert!(rate <= f.end, "above the budget at {h}");
            last = rate;
        }
        assert_eq!(f.line_at(100), vb(5));
        // Half-way: 5 + 45 / 2 = 27.5 sat/vB.
        assert_eq!(f.line_at(105), FeeRate::from_sat_per_kwu(6875));
        assert_eq!(f.line_at(110), vb(50));
        assert_eq!(f.line_at(200), vb(50));
    }

    #[test]
    fn rate_respects_the_floor_and_never_exceeds_the_budget() {
        let f = function();
        // The floor lifts the early part of the line.
        assert_eq!(f.rate_at(100, FeeRate::ZERO, vb(8)), vb(8));
        // A market spike is followed, but only up to the budget.
        assert_eq!(f.rate_at(101, vb(40), vb(1)), vb(40));
        assert_eq!(f.rate_at(101, vb(400), vb(1)), vb(50));
        // A floor above the budget still yields the budget.
        assert_eq!(f.rate_at(101, FeeRate::ZERO, vb(80)), vb(50));
        for h in 95..120 {
            for market in [0, 3, 30, 3000] {
                let rate = f.rate_at(h, vb(market), vb(1));
                assert!(rate <= f.end && rate >= vb(1).min(f.end));
                assert!(f.rate_at(h + 1, vb(market), vb(1)) >= rate);
            }
        }
    }

    #[test]
    fn every_curve_is_monotone_reaches_the_budget_at_the_deadline_and_never_exceeds_it() {
        for curve in [FeeCurve::Linear, FeeCurve::Convex, FeeCurve::Concave] {
            for (start, end, from, deadline) in [
                (5, 50, 100, 110),
                (1, 500, 0, 2016),
                (7, 7, 3, 9),
                (1, 2, 50, 51),
            ] {
                let f = FeeFunction::new(
                    FeePlan {
                        start: vb(start),
                        start_height: from,
                    },
                    vb(end),
                    deadline,
                )
                .with_curve(curve);
                let mut last = FeeRate::ZERO;
                for h in from.saturating_sub(3)..deadline + 5 {
                    let rate = f.line_at(h);
                    assert!(rate >= last, "{curve:?} not monotone at {h}");
                    assert!(rate <= vb(end), "{curve:?} above the budget at {h}");
                    for market in [0, 40, 4000] {
                        assert!(f.rate_at(h, vb(market), vb(1)) <= vb(end));
                    }
                    last = rate;
                }
                assert_eq!(f.line_at(from), vb(start.min(end)), "{curve:?} start");
                assert_eq!(f.line_at(deadline), vb(end), "{curve:?} at the deadline");
            }
        }
        // Half-way, the convex curve is below the line and the concave one above it.
        let line = function();
        let half = line.line_at(105);
        assert!(line.with_curve(FeeCurve::Convex).line_at(105) < half);
        assert!(line.with_curve(FeeCurve::Concave).line_at(105) > half);
    }

    #[test]
    fn a_start_above_the_budget_is_cut_to_the_budget() {
        let f = FeeFunction::new(
            FeePlan {
                start: vb(90),
                start_height: 100,
            },
            vb(50),
            110,
        );
        for h in 100..112 {
            assert_eq!(f.line_at(h), vb(50));
        }
    }

    #[test]
    fn a_claim_first_built_at_or_after_its_deadline_pays_the_budget_rate() {
        let f = FeeFunction::new(
            FeePlan {
                start: vb(5),
                start_height: 120,
            },
            vb(50),
            110,
        );
        assert_eq!(f.line_at(120), vb(50));
        assert_eq!(f.line_at(121), vb(50));
    }

    #[test]
    fn fee_at_the_budget_rate_never_exceeds_the_budget() {
        for weight in [437u64, 441, 500, 561, 700, 1000] {
            for budget in [0u64, 1, 99, 1000, 12_345, 1_000_000] {
                let rate = budget_rate(budget, weight);
                let fee = fee_for_rate(rate, weight);
                assert!(fee <= budget, "weight {weight} budget {budget}: fee {fee}");
                // And it is the highest such rate (one more sat/kwu goes over, or reaches exactly).
                let above = FeeRate::from_sat_per_kwu(rate.to_sat_per_kwu() + 1);
                assert!(fee_for_rate(above, weight) + 1 >= fee);
            }
        }
    }

    #[test]
    fn fee_at_the_min_relay_rate_meets_the_min_relay_fee() {
        for weight in [437u64, 441, 442, 443, 444, 561] {
            let fee = fee_for_rate(DEFAULT_MIN_RELAY, weight);
            assert_eq!(fee, vsize(weight));
            assert_eq!(fee, fee_for_vsize(vsize(weight), 1000));
        }
    }

    #[test]
    fn relay_floor_is_the_higher_of_min_relay_and_mempool_min() {
        let fees = conditions();
        assert_eq!(relay_floor(Some(&fees)), vb(3));
        assert_eq!(relay_floor(None), DEFAULT_MIN_RELAY);
        assert_eq!(min_relay(Some(&fees)), vb(1));
        assert_eq!(incremental_relay(None), DEFAULT_INCREMENTAL_RELAY);
    }
}
