//! What each kind of close needs of the rest of a scenario, and a reorganisation of the chain
//! during the run.

use serde::{Deserialize, Serialize};

use super::{invalid, CloseKind, Closer, Scenario, ScenarioError};

/// The deepest reorganisation a scenario may ask for (Bitcoin Core's own limit on a reorg it
/// reports is far above; beyond a few blocks nothing new is shown).
pub const MAX_REORG_DEPTH: u32 = 100;

/// At `at_height` (relative), instead of mining the next block, the chain's last `depth` blocks
/// are replaced by a heavier fork of `depth + 1` blocks, fed to the engine as the blocks
/// disconnected (tip first) and the fork's blocks connected. Transactions of the old blocks the
/// fork does not contain go back to the mempool if still valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reorg {
    /// The height (relative) at which it happens.
    pub at_height: u32,
    /// How many blocks it takes off (1..=at_height).
    pub depth: u32,
    /// What the fork's first block confirms.
    #[serde(default)]
    pub confirms_instead: ReorgConfirms,
}

/// What the fork's first block of a [`Reorg`] confirms.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReorgConfirms {
    /// Nothing: the fork's blocks are empty.
    #[default]
    Nothing,
    /// The peer's current commitment of the scenario's (first) channel, in place of whatever
    /// closed it on the old chain.
    PeerCommitment,
}

/// Someone who is neither party: BOLT 3 lets anyone spend an anchor output 16 blocks after
/// its commitment confirmed (to clean the UTXO set).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThirdParty {
    /// From this height (relative) on, it spends every anchor output of the closing commitment
    /// of the scenario's (first) channel that is unspent and 16 blocks deep (an anchors channel
    /// only).
    pub spends_anchors_from: u32,
}

impl Scenario {
    /// What each kind of close needs of the rest of the scenario.
    pub(super) fn check_close_kind(&self) -> Result<(), ScenarioError> {
        let kind = self.close.kind;
        if let (Closer::Peer, Some(at), Some(idle)) =
            (self.close.by, self.close.at_height, self.peer.idle_from)
        {
            if at >= idle {
                return invalid(
                    "peer.idle_from",
                    format!("{idle}: the peer closes at {at}, after it went idle"),
                );
            }
        }
        let name = match kind {
            CloseKind::Current => return Ok(()),
            CloseKind::Revoked => "revoked",
            CloseKind::RevokedWithHtlcs => "revoked_with_htlcs",
            CloseKind::Pending => "pending",
            CloseKind::Cooperative => "cooperative",
            CloseKind::DataLoss => "data_loss",
        };
        if kind != CloseKind::Cooperative && self.close.by != Closer::Peer {
            return invalid(
                "close.kind",
                format!("{name} needs close.by peer (it is a commitment of the peer's)"),
            );
        }
        if self.close.at_height.is_none() {
            return invalid("close.at_height", format!("required for close.kind {name}"));
        }
        let needs_htlcs = matches!(
            kind,
            CloseKind::RevokedWithHtlcs | CloseKind::Pending | CloseKind::DataLoss
        );
        if needs_htlcs && self.htlcs.is_empty() {
            return invalid(
                "htlcs",
                format!("close.kind {name} needs at least one htlc (the update it is about)"),
            );
        }
        if kind == CloseKind::Cooperative && !self.htlcs.is_empty() {
            return invalid(
                "htlcs",
                "a cooperative close needs every htlc resolved first (BOLT 2: closing_signed only once no htlcs are left)",
            );
        }
        Ok(())
    }

    /// A reorganisation within the run, not deeper than the chain since height 0.
    pub(super) fn check_reorg(&self) -> Result<(), ScenarioError> {
        let Some(r) = self.reorg else {
            return Ok(());
        };
        if r.at_height == 0 || r.at_height >= self.run_blocks {
            return invalid(
                "reorg.at_height",
                format!("{} is out of range (1..run_blocks)", r.at_height),
            );
        }
        if r.depth == 0 || r.depth > r.at_height || r.depth > MAX_REORG_DEPTH {
            return invalid(
                "reorg.depth",
                format!(
                    "{} is out of range (1..=at_height, at most {MAX_REORG_DEPTH}: the fork starts at or above height 0)",
                    r.depth
                ),
            );
        }
        Ok(())
    }

    /// A third party's anchor spends need anchors and a height within the run.
    pub(super) fn check_third_party(&self) -> Result<(), ScenarioError> {
        let Some(t) = self.third_party else {
            return Ok(());
        };
        if !self.core_channel_type().has_anchors() {
            return invalid(
                "third_party.spends_anchors_from",
                "the channel has no anchor outputs (channel_type anchors_zero_fee_htlc has)",
            );
        }
        if t.spends_anchors_from >= self.run_blocks {
            return invalid(
                "third_party.spends_anchors_from",
                format!("{} must be below run_blocks", t.spends_anchors_from),
            );
        }
        Ok(())
    }
}
