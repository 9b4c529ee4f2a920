//! Arbitration settings of a closed channel.

/// Blocks after its expiry by which the timeout claim of an outgoing HTLC we did not forward (our
/// own payment) should confirm. No incoming leg is at stake: if the peer claims it with the
/// preimage instead, the payment simply succeeded. So the claim need not race, and its fee
/// rises slowly instead of spending its whole budget at once.
pub const UNFORWARDED_TIMEOUT_SLACK: u32 = 144;

/// Arbitration settings that concern a closed channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CloseConfig {
    /// Confirmations after which irreversible steps are taken (failing upstream, finality).
    pub reorg_safety_depth: u32,
    /// Confirmations after which a fully resolved channel is archived (BOLT 5's "irrevocably
    /// resolved" is 100).
    pub archive_depth: u32,
    /// Fail an incoming HTLC upstream this many blocks before its expiry when its outgoing leg is
    /// still unresolved on-chain (a possible loss, reported); `None` disables the rule.
    pub cut_loss_blocks: Option<u32>,
}

impl Default for CloseConfig {
    fn default() -> Self {
        CloseConfig {
            reorg_safety_depth: 6,
            archive_depth: 100,
            cut_loss_blocks: Some(3),
        }
    }
}
