//! What a resolver's step reads and what it returns.
//!
//! A resolver reads its channel's facts through a [`ResolverContext`] it cannot change: the
//! channel's parameters, the close that confirmed (and the commitment it confirmed, rebuilt), the
//! node-wide preimage oracle, the fee conditions. It answers with a [`ResolverStep`]: what it asks
//! its channel to do, and the resolver it hands off to, if any.

use bitcoin::secp256k1::PublicKey;
use bitcoin::{ScriptBuf, Transaction, Txid};

use crate::action::CloseKind;
use crate::bolt3::commitment::{BuiltCommitment, CommitmentSpec};
use crate::commitments::{ChannelInfo, CommitmentRecord};
use crate::event::FeeConditions;
use crate::node::NodeState;
use crate::types::{Height, Party};

use super::budget::SweepPolicy;
use super::record::{depth, Resolver, Taken};

/// A confirmed commitment rebuilt, with its holder.
pub type Confirmed = (Party, CommitmentSpec, BuiltCommitment);

/// The fee conditions a claim is priced with.
#[derive(Clone, Copy, Debug)]
pub struct FeeContext<'a> {
    /// The latest fee conditions.
    pub fees: Option<&'a FeeConditions>,
    /// Budgets and deadlines.
    pub policy: &'a SweepPolicy,
    /// The rate to start from without an estimate.
    pub fallback: bitcoin::FeeRate,
    /// Where the sweeper pays claims, if one is configured.
    pub destination: Option<&'a ScriptBuf>,
}

/// The close a resolver's output comes from.
#[derive(Clone, Copy, Debug)]
pub struct CloseView<'a> {
    /// What kind of close.
    pub kind: &'a CloseKind,
    /// The closing transaction.
    pub tx: &'a Transaction,
    /// Its txid.
    pub txid: Txid,
    /// The height it confirmed at.
    pub height: Height,
    /// The commitment it confirmed, rebuilt, with its holder (when we know it).
    pub confirmed: Option<&'a Confirmed>,
    /// On our own commitment: the `to_local` witness script, which every output of our
    /// second-level transactions pays too.
    pub to_local: Option<&'a ScriptBuf>,
    /// On a breach: what justice needs.
    pub justice: Option<&'a Justice<'a>>,
}

impl CloseView<'_> {
    /// Whose commitment confirmed, as the close was classified.
    pub fn holder(&self) -> Party {
        match self.kind {
            CloseKind::Local { .. } => Party::Local,
            _ => Party::Remote,
        }
    }

    /// Whether the close is our own current commitment (its HTLCs are claimed by second-level
    /// transactions).
    pub fn on_our_commitment(&self) -> bool {
        matches!(self.kind, CloseKind::Local { .. })
    }

    /// Whether the close is `safety_depth` deep at `tip`.
    pub fn reorg_safe(&self, tip: Height, safety_depth: u32) -> bool {
        depth(self.height, tip) >= safety_depth
    }
}

/// What the justice resolvers of a breach need: the peer's revealed secret for the revoked
/// commitment, the script its revocable outputs pay, and — once the revoked log answered — the
/// revoked commitment rebuilt (for its HTLC outputs' scripts).
#[derive(Clone, Debug)]
pub struct Justice<'a> {
    /// The revoked commitment's per-commitment secret.
    pub secret: [u8; 32],
    /// The witness script of the peer's `to_local` on it (and of its second-level outputs).
    pub to_local: ScriptBuf,
    /// The revocation key of that commitment.
    pub revocation_pubkey: PublicKey,
    /// The revoked commitment rebuilt from the revoked log (read for claims only).
    pub rebuilt: Option<(CommitmentSpec, BuiltCommitment)>,
    /// The revoked log's entry for it, once read.
    pub record: Option<&'a CommitmentRecord>,
}

/// Everything a resolver reads, none of which it can change.
#[derive(Clone, Copy, Debug)]
pub struct ResolverContext<'a> {
    /// The channel's parameters.
    pub channel: &'a ChannelInfo,
    /// The close.
    pub close: CloseView<'a>,
    /// Node-wide facts: the preimage oracle.
    pub node: &'a NodeState,
    /// Fees and budgets.
    pub fees: FeeContext<'a>,
    /// Confirmations after which a spend (or an expiry) is final.
    pub safety_depth: u32,
}

/// What happens to a resolver.
#[derive(Clone, Copy, Debug)]
pub enum ResolverInput<'a> {
    /// A block connected; the tip is now `tip`.
    Block {
        /// The new tip.
        tip: Height,
    },
    /// A transaction spending the resolver's output confirmed at `height`. `known_ours`: the
    /// channel knows it for ours without reading it (it pays our sweep destination, or it is our
    /// CPFP child).
    Spend {
        /// The spending transaction.
        tx: &'a Transaction,
        /// Its height.
        height: Height,
        /// Whether the channel already knows it for ours.
        known_ours: bool,
    },
    /// A preimage became known between blocks (the context's oracle has it now); the tip is `tip`.
    Preimage {
        /// The tip.
        tip: Height,
    },
    /// The block at `height` was disconnected.
    Disconnect {
        /// The disconnected block's height.
        height: Height,
    },
}

/// What a resolver asks of its channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResolverAction {
    /// Its output's spend is reorg-safe: it is final; report its resolution.
    Final,
    /// It became final without a spend (an expired incoming HTLC, an anchor left): report it.
    SettledUnspent,
    /// Our pre-signed second-level transaction for it is due: sign, fund or rebroadcast it.
    SecondLevelDue,
    /// A witness of no known path spent it.
    UnknownSpend {
        /// The spending input's index.
        input: u32,
        /// What the witness looked like.
        witness: String,
    },
}

/// A resolver's answer to one input.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResolverStep {
    /// What it asks of its channel.
    pub actions: Vec<ResolverAction>,
    /// Its successor: the resolver of the output that the spend of its own created (our
    /// second-level transaction's output, to sweep after its CSV; the peer's second-level output
    /// on a revoked commitment, still ours by revocation).
    pub hand_off: Option<Resolver>,
    /// The block that created its output was disconnected: the hand-off that made it is undone
    /// and it is gone.
    pub gone: bool,
}

impl ResolverStep {
    pub(super) fn act(action: ResolverAction) -> ResolverStep {
        ResolverStep {
            actions: vec![action],
            ..ResolverStep::default()
        }
    }
}

/// Whose path the witness of a spend took, seen from us.
pub(super) enum Path {
    /// One of ours.
    Ours,
    /// Someone else's, and how.
    Theirs(Taken),
}

impl Path {
    /// A witness that fits no path of the output: input `input` of the spend.
    pub(super) fn unknown(input: usize, witness: &bitcoin::Witness) -> Path {
        Path::Theirs(Taken::Unknown {
            input: u32::try_from(input).unwrap_or(u32::MAX),
            witness: crate::bolt3::classify::describe_witness(witness),
        })
    }
}
