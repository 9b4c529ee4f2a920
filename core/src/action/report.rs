//! Reports: what the core tells the operator — close summaries, per-output timeline entries,
//! resolution reports, losses and alerts.

use bitcoin::{OutPoint, Txid};
use serde::{Deserialize, Serialize};

use crate::types::{ChannelId, Height, HtlcKey};

/// A report for the operator.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "report", rename_all = "snake_case")]
pub enum Report {
    /// How a channel closed and why.
    CloseSummary(CloseSummary),
    /// One output changed stage.
    Timeline {
        /// The channel.
        channel: ChannelId,
        /// The output.
        outpoint: OutPoint,
        /// The height.
        height: Height,
        /// Its new stage, in words an operator reads (`"timelocked until 812345"`).
        stage: String,
        /// The transaction involved, if any.
        txid: Option<Txid>,
    },
    /// An output reached its end.
    Resolution(Resolution),
    /// Something needs attention.
    Alert(Alert),
    /// A loss to account for: an upstream resolution the chain has since contradicted (a reorg
    /// deeper than `reorg_safety_depth`), an incoming leg failed by the cut-loss rule, or an
    /// incoming HTLC the peer timed out (reorg-safe) while we held its preimage.
    Loss {
        /// The HTLC.
        htlc: HtlcKey,
        /// The amount at stake.
        amount_msat: u64,
        /// What happened.
        detail: String,
    },
}

/// How a channel closed, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloseSummary {
    /// The channel.
    pub channel: ChannelId,
    /// The kind of close.
    pub close: CloseKind,
    /// What set it off.
    pub trigger: CloseTrigger,
    /// The closing transaction.
    pub closing_txid: Txid,
    /// The height it confirmed at.
    pub height: Height,
    /// Our balance on it, in satoshis (before claim fees).
    pub our_balance_sat: u64,
    /// HTLCs trimmed as dust on it, lost to fees.
    pub dust_htlcs: Vec<HtlcKey>,
    /// Their total.
    pub dust_msat: u64,
}

/// The kinds of close (lnd's chain watcher classification).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CloseKind {
    /// A cooperative close.
    Cooperative,
    /// Our current commitment.
    Local {
        /// Its number.
        commitment_number: u64,
    },
    /// An older (revoked) commitment of ours: we cannot have broadcast it; keys may have leaked.
    OldLocal {
        /// Its number.
        commitment_number: u64,
    },
    /// The peer's current or pending commitment.
    Remote {
        /// Its number.
        commitment_number: u64,
        /// Whether it was the pending (N+1) one.
        pending: bool,
    },
    /// A revoked commitment of the peer's: a breach.
    Breach {
        /// Its number.
        commitment_number: u64,
    },
    /// A commitment of the peer's newer than any we know: we lost data.
    FutureRemote {
        /// Its number.
        commitment_number: u64,
    },
    /// A spend of the funding output we cannot explain.
    Unknown,
}

/// What started a close.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CloseTrigger {
    /// An HTLC deadline forced us to chain.
    HtlcDeadline {
        /// The HTLC.
        htlc: HtlcKey,
        /// Its deadline (for an outgoing HTLC, the incoming leg's expiry or its own).
        deadline: Height,
        /// The height at which we went to chain.
        height: Height,
    },
    /// The operator asked.
    User,
    /// The peer erred.
    PeerError {
        /// Its message.
        message: String,
    },
    /// The node asked, for a reason it named.
    Node {
        /// The reason.
        message: String,
    },
    /// We detected data loss; the peer must close.
    DataLoss,
    /// The peer closed (cooperatively or by force) without our asking.
    Peer,
}

/// The end of one output.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resolution {
    /// The channel.
    pub channel: ChannelId,
    /// The output.
    pub outpoint: OutPoint,
    /// What became of it.
    pub outcome: Outcome,
    /// Its value.
    pub amount_sat: u64,
    /// Fees we paid to resolve it.
    pub fees_sat: u64,
    /// The transaction that resolved it.
    pub spending_txid: Option<Txid>,
    /// The height of the transaction that resolved it (the report comes once that spend is
    /// reorg-safe); for an output final without a spend (an incoming HTLC expired, an anchor
    /// left), the height it was counted final at.
    pub height: Height,
}

/// What became of an output, decided from the transaction that spent it (its witness and
/// outputs, [`crate::resolver::Resolver::outcome`]) — the same answer the ledger gives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// We claimed it (our sweep, justice transaction, CPFP child or HTLC-success transaction).
    Claimed,
    /// Our outgoing HTLC timed out back to us (our timeout claim or HTLC-timeout transaction).
    TimedOut,
    /// The peer took it (a preimage or timeout claim of theirs, a sweep of its own balance, or a
    /// revocation spend).
    LostToPeer,
    /// Too small to claim economically; left.
    Uneconomical,
    /// Taken by a third party (an anchor's anyone-can-spend path after 16 blocks).
    ThirdParty,
    /// The peer's second-level transaction on its revoked commitment spent it; the output it
    /// created is ours by revocation and has a resolution of its own.
    RevokedSecondLevel,
    /// Spent with a witness that fits none of its paths (an `UnknownSpend` alert named the
    /// transaction, the input and the witness): not counted as anyone's.
    UnknownSpend,
}

/// An alert for the operator.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    /// The channel, if it concerns one.
    pub channel: Option<ChannelId>,
    /// What kind of problem.
    pub kind: AlertKind,
    /// A readable explanation.
    pub message: String,
}

/// Kinds of alerts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// An event was refused (e.g. an update gap, a block that does not connect).
    RefusedEvent,
    /// The funding output, or an output of a close, was spent by something we cannot explain.
    UnknownSpend,
    /// An old commitment of ours confirmed.
    OldLocalCommitment,
    /// The peer has newer state than we do.
    DataLoss,
    /// The wallet is below the fee reserve the live exposure needs.
    FeeReserveLow,
    /// A claim may not confirm before its deadline.
    DeadlineAtRisk,
    /// An internal failure isolated to one channel.
    ChannelFailure,
    /// After a restart, the chain source's tip is below the engine's.
    ChainSourceBehind,
}
