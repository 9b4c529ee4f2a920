//! How much a claim may spend on fees, and how long an uncontested claim may take.

use serde::{Deserialize, Serialize};

/// How much a claim may spend on fees, and how long an uncontested claim may take.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SweepPolicy {
    /// Share of an HTLC's value a claim on it may spend, in percent. The peer can take the HTLC
    /// once our deadline passes, so paying up to half of it beats losing all of it.
    pub htlc_budget_percent: u8,
    /// Share of our balance a sweep of it may spend, in percent (only we can spend it).
    pub balance_budget_percent: u8,
    /// Blocks after maturity by which a sweep of our balance should confirm: nobody else can take
    /// it, so it waits for cheap fees.
    pub balance_deadline_blocks: u32,
    /// The most any one claim on an HTLC (or a CPFP for the HTLCs at stake) may spend, in
    /// satoshis, whatever its share; `None`: the share alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub htlc_budget_cap_sat: Option<u64>,
    /// The most any one sweep of our balance may spend, in satoshis; `None`: the share alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub balance_budget_cap_sat: Option<u64>,
}

impl SweepPolicy {
    /// The fee budget of a claim protecting `value_sat` of HTLCs: the configured share, capped.
    pub fn htlc_budget(&self, value_sat: u64) -> u64 {
        capped(
            share(value_sat, self.htlc_budget_percent),
            self.htlc_budget_cap_sat,
        )
    }

    /// The fee budget of a sweep of `value_sat` of our balance: the configured share, capped.
    pub fn balance_budget(&self, value_sat: u64) -> u64 {
        capped(
            share(value_sat, self.balance_budget_percent),
            self.balance_budget_cap_sat,
        )
    }
}

fn capped(budget: u64, cap: Option<u64>) -> u64 {
    cap.map_or(budget, |c| budget.min(c))
}

impl Default for SweepPolicy {
    fn default() -> Self {
        SweepPolicy {
            htlc_budget_percent: 50,
            balance_budget_percent: 5,
            balance_deadline_blocks: 1008,
            htlc_budget_cap_sat: None,
            balance_budget_cap_sat: None,
        }
    }
}

fn share(value_sat: u64, percent: u8) -> u64 {
    value_sat.saturating_mul(u64::from(percent)) / 100
}

#[cfg(test)]
mod budget_tests {
    use super::SweepPolicy;

    #[test]
    fn a_budget_is_the_configured_share_capped_by_the_configured_maximum() {
        let mut policy = SweepPolicy::default();
        assert_eq!(policy.htlc_budget(1_000_000), 500_000);
        assert_eq!(policy.balance_budget(1_000_000), 50_000);
        policy.htlc_budget_cap_sat = Some(20_000);
        policy.balance_budget_cap_sat = Some(30_000);
        assert_eq!(policy.htlc_budget(1_000_000), 20_000);
        assert_eq!(
            policy.htlc_budget(10_000),
            5_000,
            "below the cap: the share"
        );
        assert_eq!(policy.balance_budget(1_000_000), 30_000);
        assert_eq!(policy.balance_budget(100_000), 5_000);
    }

    #[test]
    fn caps_are_optional_in_the_persisted_policy() {
        let json = serde_json::to_string(&SweepPolicy::default()).unwrap_or_default();
        assert!(!json.contains("cap"), "{json}");
        let back: Result<SweepPolicy, _> = serde_json::from_str(&json);
        assert_eq!(back.ok(), Some(SweepPolicy::default()));
    }
}
