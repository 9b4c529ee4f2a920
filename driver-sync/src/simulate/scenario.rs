//! The scenario format of `contractcourt simulate` (JSON, read with serde; unknown fields are
//! refused so a typo is an error, not a silently ignored setting).
//!
//! ```json
//! {
//!   "name": "force close on an outgoing HTLC deadline",
//!   "channel_type": "static_remote_key",
//!   "capacity_sat": 1000000,
//!   "local_balance_sat": 600000,
//!   "to_self_delay": 20,
//!   "htlcs": [
//!     { "direction": "outgoing", "amount_msat": 90000000, "cltv_expiry": 20,
//!       "peer_knows_preimage": false },
//!     { "direction": "incoming", "amount_msat": 60000000, "cltv_expiry": 120,
//!       "we_know_preimage": true }
//!   ],
//!   "close": { "by": "us", "kind": "current" },
//!   "peer": { "claims_with_preimage": false, "times_out": true },
//!   "fee_rates": [ { "from_height": 0, "sat_per_vb": 2 }, { "from_height": 30, "sat_per_vb": 5 } ],
//!   "run_blocks": 80
//! }
//! ```
//!
//! Every height is relative to the start height: the block that confirms the channel's funding
//! transaction (height 0 of the scenario).
//!
//! - `channel_type`: `static_remote_key`, `anchors_zero_fee_htlc` or `zero_fee_commitments` (the
//!   node's test wallet funds the zero-fee HTLC transactions and CPFP children; see
//!   `anchors-force-close.json` and `zero-fee-commitments.json`).
//! - `htlcs[]`: `direction` (`incoming`: the peer offered it; `outgoing`: we did), `amount_msat`,
//!   `cltv_expiry`, `we_know_preimage` (incoming only: the preimage of our own invoice, fed as
//!   `PreimageLearned { source: invoice }`), `peer_knows_preimage` (outgoing only: the peer can
//!   claim it on chain with the preimage).
//! - `close`: `by` `us` or `peer`; `at_height` (for `us`, optional: absent lets the engine decide
//!   when an HTLC deadline forces the close); `kind` (see [`CloseKind`]): `current`, `revoked`,
//!   `revoked_with_htlcs`, `pending`, `data_loss` (the peer's commitments) or `cooperative`.
//! - `htlcs[].learns_preimage` (incoming only): `{ "at_height": 30, "from": "downstream" }`.
//! - `peer`: `claims_with_preimage` (claims outgoing HTLCs it knows the preimage of, as soon as
//!   the close confirms), `times_out` (times out incoming HTLCs once their expiry passes).
//! - `fee_rates[]`: from `from_height` on, the fee rate (sat/vB) fed as `Event::FeeConditions`
//!   for every confirmation target, before the block of that height is mined.
//! - `run_blocks`: how many blocks to mine after the start height.
//! - optional: `seed` (keys and preimages; default 1), `commitment_feerate_per_kw` (default
//!   2500), `dust_limit_sat` (default 354), `to_self_delay` (both ways; default 144).
//!
//! A scenario is refused, with an error naming the field, when a node would refuse its channel
//! (BOLT 2) or when it contradicts itself: see [`Scenario::check`] and `scenarios/README.md`.

use serde::{Deserialize, Serialize};

#[cfg(test)]
#[path = "scenario_tests.rs"]
mod tests;

#[path = "scenario_channels.rs"]
mod channels;
pub use channels::{ExtraChannel, ForwardedFrom};
#[path = "scenario_close.rs"]
mod close_checks;
pub use close_checks::{Reorg, ReorgConfirms, ThirdParty};

/// A whole scenario. See the [module documentation](self).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// What the scenario shows, for people.
    #[serde(default)]
    pub name: String,
    /// The seed every key and preimage derives from.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// The commitment format.
    pub channel_type: ScenarioChannelType,
    /// The channel capacity.
    pub capacity_sat: u64,
    /// Our opening balance (we funded the channel); the peer has the rest.
    pub local_balance_sat: u64,
    /// The CSV delay on both parties' outputs.
    #[serde(default = "default_delay")]
    pub to_self_delay: u16,
    /// Both parties' dust limit.
    #[serde(default = "default_dust")]
    pub dust_limit_sat: u64,
    /// The commitment fee rate.
    #[serde(default = "default_feerate_per_kw")]
    pub commitment_feerate_per_kw: u32,
    /// The HTLCs live on the channel when it closes.
    #[serde(default)]
    pub htlcs: Vec<ScenarioHtlc>,
    /// Who closes, when, and with which commitment.
    pub close: Close,
    /// What the peer does after the close.
    #[serde(default)]
    pub peer: PeerBehaviour,
    /// Fee rates over time.
    #[serde(default)]
    pub fee_rates: Vec<FeeRateStep>,
    /// Blocks to mine after the start height.
    pub run_blocks: u32,
    /// More channels with the same peer behaviour model, closing on their own terms, watched
    /// by the same engine on the same chain (see [`ExtraChannel`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_channels: Vec<ExtraChannel>,
    /// A reorganisation of the chain during the run (see [`Reorg`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reorg: Option<Reorg>,
    /// Someone else on the network (see [`ThirdParty`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub third_party: Option<ThirdParty>,
}

fn default_seed() -> u64 {
    1
}
fn default_delay() -> u16 {
    144
}
fn default_dust() -> u64 {
    354
}
fn default_feerate_per_kw() -> u32 {
    2_500
}

/// The commitment format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScenarioChannelType {
    /// `option_static_remotekey`.
    StaticRemoteKey,
    /// `option_anchors_zero_fee_htlc_tx` (the node's test wallet funds its claims).
    AnchorsZeroFeeHtlc,
    /// `zero_fee_commitments` (BOLT PR 1228; `commitment_feerate_per_kw` must be 0; the node's
    /// test wallet funds the CPFP child and the HTLC transactions).
    ZeroFeeCommitments,
}

/// Which way an HTLC goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// The peer offered it to us.
    Incoming,
    /// We offered it to the peer.
    Outgoing,
}

/// One HTLC.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioHtlc {
    /// Which way it goes.
    pub direction: Direction,
    /// Its amount.
    pub amount_msat: u64,
    /// Its expiry, relative to the start height.
    pub cltv_expiry: u32,
    /// Incoming only: we hold the preimage (our own invoice).
    #[serde(default)]
    pub we_know_preimage: bool,
    /// Outgoing only: the peer holds the preimage and may claim on chain.
    #[serde(default)]
    pub peer_knows_preimage: bool,
    /// Incoming only: the node learns the preimage at a height (from downstream or an invoice).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub learns_preimage: Option<LearnPreimage>,
    /// Outgoing only: the incoming HTLC of an earlier channel it was forwarded from (same
    /// payment hash; a circuit the engine is told of).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forwarded_from: Option<ForwardedFrom>,
}

/// Who closes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Closer {
    /// We force close.
    Us,
    /// The peer broadcasts a commitment of its own.
    Peer,
}

/// Which commitment closes the channel.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CloseKind {
    /// The closer's current commitment.
    #[default]
    Current,
    /// The peer's oldest revoked commitment (a breach).
    Revoked,
    /// A revoked commitment of the peer's that carries the scenario's HTLCs (a breach with
    /// HTLC outputs): after the HTLCs are committed, one more update (a fee update at the same
    /// rate) revokes the commitment that has them, and the peer broadcasts that one.
    RevokedWithHtlcs,
    /// The peer's *pending* commitment: the scenario's HTLCs are on a commitment of the peer's
    /// that we signed but whose predecessor the peer has not revoked yet (our commitment does
    /// not have them); the peer broadcasts the pending one.
    Pending,
    /// A cooperative close: the closing transaction both signed pays each side's balance to its
    /// shutdown script (no HTLCs may be live).
    Cooperative,
    /// We lost state: the engine knows the channel only as it was opened (the HTLCs' update is
    /// lost), learns at the close height that the peer has a newer state
    /// (`DataLossDetected`, as `channel_reestablish` would show it), and the peer broadcasts its
    /// current commitment, one the engine has never seen.
    DataLoss,
}

/// Where a preimage learned during the run comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PreimageFrom {
    /// Our own invoice (settles only this HTLC).
    Invoice,
    /// The next hop fulfilled the HTLC we forwarded this one to (on another channel).
    Downstream,
}

/// A preimage the node learns at a height.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LearnPreimage {
    /// The height (relative) at which the node learns it, before the block of that height is
    /// mined.
    pub at_height: u32,
    /// Where it comes from.
    pub from: PreimageFrom,
}

/// Who closes, when, and how.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Close {
    /// Who.
    pub by: Closer,
    /// When, relative to the start height (required for the peer; for us, absent lets the
    /// engine's HTLC deadline rule decide).
    #[serde(default)]
    pub at_height: Option<u32>,
    /// Which commitment.
    #[serde(default)]
    pub kind: CloseKind,
}

/// What the peer does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerBehaviour {
    /// Claims our outgoing HTLCs whose preimage it knows.
    #[serde(default)]
    pub claims_with_preimage: bool,
    /// Times out our incoming HTLCs once they expire.
    #[serde(default)]
    pub times_out: bool,
    /// From this height (relative) on the peer does nothing on chain any more: no claim, no
    /// timeout (it went offline, or gave up).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_from: Option<u32>,
}

/// A fee rate from a height on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeeRateStep {
    /// From this height on (relative).
    pub from_height: u32,
    /// The fee rate, sat/vB.
    pub sat_per_vb: u32,
}

/// The lowest commitment fee rate BOLT 2 allows (`feerate_per_kw` of `open_channel` and
/// `update_fee`): 253 sat/kw, the floor that rounds to Bitcoin Core's 1 sat/vB relay minimum.
pub const MIN_FEERATE_PER_KW: u32 = 253;
/// The lowest `dust_limit_satoshis` BOLT 2 allows: a receiver must fail a channel below it.
pub const MIN_DUST_LIMIT_SAT: u64 = 354;
/// The largest `to_self_delay` accepted: BOLT 2 lets a node refuse an "unreasonably large" one,
/// and lnd and LDK both refuse more than 2016 blocks (two weeks).
pub const MAX_TO_SELF_DELAY: u16 = 2016;
/// `nLockTime` and `cltv_expiry` values from here on are Unix times, not heights (BOLT 2: a
/// receiver must fail the channel for an `update_add_htlc` with `cltv_expiry` at or above it).
pub const LOCKTIME_THRESHOLD: u32 = 500_000_000;
/// The value of each anchor output (BOLT 3), paid by the funder.
pub const ANCHOR_OUTPUT_SAT: u64 = 330;
/// The most HTLCs either side may have on a commitment (BOLT 2 `max_accepted_htlcs`).
pub const MAX_ACCEPTED_HTLCS: usize = 483;

/// Why a scenario is not usable.
#[derive(Debug)]
pub enum ScenarioError {
    /// Not JSON of the scenario shape.
    Json(serde_json::Error),
    /// JSON of the right shape whose `field` is out of the range a channel allows.
    Invalid {
        /// The field, as a JSON path (`htlcs[2].cltv_expiry`).
        field: String,
        /// What is wrong with it, and the limit.
        reason: String,
    },
}

impl std::fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ScenarioError::Json(e) => write!(f, "scenario is not valid: {e}"),
            ScenarioError::Invalid { field, reason } => {
                write!(f, "scenario is not valid: {field}: {reason}")
            }
        }
    }
}

impl std::error::Error for ScenarioError {}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Result<(), ScenarioError> {
    Err(ScenarioError::Invalid {
        field: field.into(),
        reason: reason.into(),
    })
}

impl Scenario {
    /// Parse and check a scenario.
    pub fn from_json(text: &str) -> Result<Scenario, ScenarioError> {
        let s: Scenario = serde_json::from_str(text).map_err(ScenarioError::Json)?;
        s.check()?;
        Ok(s)
    }

    /// The checks serde cannot express: the limits BOLT 2 puts on a channel and its HTLCs (a
    /// node would refuse such a channel, so a dry run of it shows nothing real), and the
    /// scenario's own consistency. The first violation is returned, naming its field.
    pub fn check(&self) -> Result<(), ScenarioError> {
        self.check_one()?;
        self.check_extra_channels()
    }

    /// The checks of one channel's scenario.
    fn check_one(&self) -> Result<(), ScenarioError> {
        self.check_channel()?;
        self.check_htlcs()?;
        self.check_funder_fee()?;
        self.check_run()
    }

    /// We funded the channel: after the HTLCs we offered, our balance must pay the fee of both
    /// parties' commitments (and, under anchors, the two anchor outputs). BOLT 2: a receiver
    /// fails an `update_add_htlc` the sender cannot afford at the current fee rate.
    fn check_funder_fee(&self) -> Result<(), ScenarioError> {
        use contractcourt_core::bolt3::commitment::{commitment_fee_sat, is_trimmed};
        let channel_type = self.core_channel_type();
        let feerate = self.commitment_feerate_per_kw;
        let untrimmed = |holder_offers: Direction| {
            self.htlcs
                .iter()
                .filter(|h| {
                    let offered = h.direction == holder_offers;
                    !is_trimmed(
                        offered,
                        h.amount_msat,
                        self.dust_limit_sat,
                        feerate,
                        channel_type,
                    )
                })
                .count()
        };
        // Our commitment: our outgoing HTLCs are offered; the peer's: its incoming ones.
        let fee = [Direction::Outgoing, Direction::Incoming]
            .into_iter()
            .map(|d| commitment_fee_sat(feerate, channel_type, untrimmed(d)))
            .max()
            .unwrap_or(0);
        let anchors = if channel_type.has_anchors() {
            2 * ANCHOR_OUTPUT_SAT
        } else {
            0
        };
        let outgoing: u128 = self
            .htlcs
            .iter()
            .filter(|h| h.direction == Direction::Outgoing)
            .map(|h| u128::from(h.amount_msat))
            .sum();
        let left_msat = (u128::from(self.local_balance_sat) * 1000).saturating_sub(outgoing);
        let needed_msat = u128::from(fee + anchors) * 1000;
        if left_msat < needed_msat {
            return invalid(
                "local_balance_sat",
                format!(
                    "{} sat, less its outgoing htlcs ({outgoing} msat), cannot pay the commitment fee of {fee} sat{} at {feerate} sat/kw (we funded the channel: BOLT 2 lets the peer refuse an htlc we cannot afford)",
                    self.local_balance_sat,
                    if anchors > 0 {
                        format!(" and {anchors} sat of anchors")
                    } else {
                        String::new()
                    }
                ),
            );
        }
        Ok(())
    }

    /// The core's channel type of the scenario's.
    pub fn core_channel_type(&self) -> contractcourt_core::bolt3::ChannelType {
        match self.channel_type {
            ScenarioChannelType::StaticRemoteKey => {
                contractcourt_core::bolt3::ChannelType::StaticRemoteKey
            }
            ScenarioChannelType::AnchorsZeroFeeHtlc => {
                contractcourt_core::bolt3::ChannelType::AnchorsZeroFeeHtlc
            }
            ScenarioChannelType::ZeroFeeCommitments => {
                contractcourt_core::bolt3::ChannelType::ZeroFeeCommitments
            }
        }
    }

    fn check_channel(&self) -> Result<(), ScenarioError> {
        if self.capacity_sat == 0 || self.capacity_sat > 21_000_000 * 100_000_000 {
            return invalid(
                "capacity_sat",
                format!(
                    "{} is out of range (1..=2100000000000000)",
                    self.capacity_sat
                ),
            );
        }
        if self.local_balance_sat > self.capacity_sat {
            return invalid(
                "local_balance_sat",
                format!(
                    "{} exceeds capacity_sat {}",
                    self.local_balance_sat, self.capacity_sat
                ),
            );
        }
        if self.to_self_delay == 0 || self.to_self_delay > MAX_TO_SELF_DELAY {
            return invalid(
                "to_self_delay",
                format!(
                    "{} is out of range (1..={MAX_TO_SELF_DELAY} blocks)",
                    self.to_self_delay
                ),
            );
        }
        if self.dust_limit_sat < MIN_DUST_LIMIT_SAT || self.dust_limit_sat > self.capacity_sat {
            return invalid(
                "dust_limit_sat",
                format!(
                    "{} is out of range (BOLT 2: at least {MIN_DUST_LIMIT_SAT}, and at most the capacity)",
                    self.dust_limit_sat
                ),
            );
        }
        let zero_fee = self.channel_type == ScenarioChannelType::ZeroFeeCommitments;
        if zero_fee && self.commitment_feerate_per_kw != 0 {
            return invalid(
                "commitment_feerate_per_kw",
                format!(
                    "{} must be 0 with zero_fee_commitments (BOLT 2)",
                    self.commitment_feerate_per_kw
                ),
            );
        }
        if !zero_fee && self.commitment_feerate_per_kw < MIN_FEERATE_PER_KW {
            return invalid(
                "commitment_feerate_per_kw",
                format!(
                    "{} is below {MIN_FEERATE_PER_KW} sat/kw, the least BOLT 2 allows for this channel type",
                    self.commitment_feerate_per_kw
                ),
            );
        }
        Ok(())
    }

    fn check_htlcs(&self) -> Result<(), ScenarioError> {
        for dir in [Direction::Incoming, Direction::Outgoing] {
            let n = self.htlcs.iter().filter(|h| h.direction == dir).count();
            if n > MAX_ACCEPTED_HTLCS {
                let which = format!("{dir:?}").to_lowercase();
                return invalid(
                    "htlcs",
                    format!("{n} {which} htlcs: at most {MAX_ACCEPTED_HTLCS} each way"),
                );
            }
        }
        for (i, h) in self.htlcs.iter().enumerate() {
            let field = |name: &str| format!("htlcs[{i}].{name}");
            if h.amount_msat == 0 {
                return invalid(field("amount_msat"), "must be above 0");
            }
            if h.cltv_expiry == 0 || h.cltv_expiry >= LOCKTIME_THRESHOLD {
                return invalid(
                    field("cltv_expiry"),
                    format!(
                        "{} is out of range (1..{LOCKTIME_THRESHOLD}: from {LOCKTIME_THRESHOLD} on it would be a time, not a height)",
                        h.cltv_expiry
                    ),
                );
            }
            if h.we_know_preimage && h.direction == Direction::Outgoing {
                return invalid(
                    field("we_know_preimage"),
                    "applies to incoming htlcs only (an outgoing htlc's preimage comes from downstream or the peer)",
                );
            }
            if let Some(learn) = h.learns_preimage {
                if h.direction == Direction::Outgoing {
                    return invalid(
                        field("learns_preimage"),
                        "applies to incoming htlcs only (an outgoing htlc's preimage comes from the peer's claim on chain)",
                    );
                }
                if h.we_know_preimage {
                    return invalid(
                        field("learns_preimage"),
                        "contradicts we_know_preimage (the preimage is known from the start)",
                    );
                }
                if learn.at_height >= self.run_blocks {
                    return invalid(
                        field("learns_preimage.at_height"),
                        format!("{} must be below run_blocks", learn.at_height),
                    );
                }
            }
            if h.peer_knows_preimage && h.direction == Direction::Incoming {
                return invalid(
                    field("peer_knows_preimage"),
                    "applies to outgoing htlcs only (use we_know_preimage for an incoming one)",
                );
            }
        }
        let sum = |dir: Direction| -> u128 {
            self.htlcs
                .iter()
                .filter(|h| h.direction == dir)
                .map(|h| u128::from(h.amount_msat))
                .sum()
        };
        let local_msat = u128::from(self.local_balance_sat) * 1000;
        let remote_msat = u128::from(self.capacity_sat - self.local_balance_sat) * 1000;
        if sum(Direction::Outgoing) > local_msat {
            return invalid(
                "htlcs",
                format!(
                    "outgoing htlcs total {} msat, more than local_balance_sat {} can pay",
                    sum(Direction::Outgoing),
                    self.local_balance_sat
                ),
            );
        }
        if sum(Direction::Incoming) > remote_msat {
            return invalid(
                "htlcs",
                format!(
                    "incoming htlcs total {} msat, more than the peer's balance of {} sat can pay",
                    sum(Direction::Incoming),
                    self.capacity_sat - self.local_balance_sat
                ),
            );
        }
        Ok(())
    }

    fn check_run(&self) -> Result<(), ScenarioError> {
        if self.run_blocks == 0 || self.run_blocks > 10_000 {
            return invalid(
                "run_blocks",
                format!("{} is out of range (1..=10000)", self.run_blocks),
            );
        }
        if self.close.by == Closer::Peer && self.close.at_height.is_none() {
            return invalid("close.at_height", "required when the peer closes");
        }
        self.check_close_kind()?;
        self.check_reorg()?;
        self.check_third_party()?;
        if self.close.at_height.is_some_and(|h| h >= self.run_blocks) {
            return invalid("close.at_height", "must be below run_blocks");
        }
        if let Some(i) = self.fee_rates.iter().position(|f| f.sat_per_vb == 0) {
            return invalid(format!("fee_rates[{i}].sat_per_vb"), "must be above 0");
        }
        for (i, f) in self.fee_rates.iter().enumerate() {
            if self.fee_rates[..i]
                .iter()
                .any(|g| g.from_height == f.from_height)
            {
                return invalid(
                    format!("fee_rates[{i}].from_height"),
                    format!("{} is given twice (which rate would apply?)", f.from_height),
                );
            }
        }
        Ok(())
    }

    /// The fee rate in force at relative height `h`, if any step applies.
    pub fn fee_rate_at(&self, h: u32) -> Option<u32> {
        self.fee_rates
            .iter()
            .filter(|f| f.from_height <= h)
            .max_by_key(|f| f.from_height)
            .map(|f| f.sat_per_vb)
    }
}
