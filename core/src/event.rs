//! Events: everything that reaches the core. They carry all a decision needs — the core never
//! calls back into the node, reads a clock or looks anything up.
//!
//! Four families (see `DESIGN.md`):
//! - channel updates ([`ChannelUpdate`]), numbered per channel by `update_id`;
//! - HTLC plumbing: circuits, preimages and upstream acknowledgements;
//! - the chain: full blocks, disconnections, mempool, fee conditions, wall-time ticks;
//! - results of actions, each echoing its [`RequestId`], and [`Event::Resumed`] after a restart.

use bitcoin::ecdsa::Signature;
use bitcoin::secp256k1::PublicKey;
use bitcoin::{BlockHash, FeeRate, OutPoint, ScriptBuf, TxOut, Txid};
use serde::{Deserialize, Serialize};

use crate::bolt3::{ChannelBasepoints, ChannelType, PaymentHash, PaymentPreimage};
use crate::types::{BlockRef, ChannelId, Height, HtlcDirection, HtlcKey, Party, RawTx, RequestId};

/// One input to the core.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// A change to one channel's state, numbered by `update_id`.
    ChannelUpdate(ChannelUpdate),
    /// The operator (or the node, on a protocol error) asks to close a channel by force.
    /// Idempotent: a repeat re-plans and re-broadcasts.
    ForceCloseRequested {
        /// The channel to close.
        channel: ChannelId,
        /// Why, for the close summary.
        reason: ForceCloseReason,
    },
    /// An outgoing HTLC was forwarded from an incoming one: its on-chain deadline is the incoming
    /// leg's expiry, and its preimage or failure must travel back to that leg.
    CircuitAdded {
        /// The outgoing HTLC (direction `Outgoing`).
        outgoing: HtlcKey,
        /// The incoming leg it was forwarded from.
        incoming: IncomingLeg,
    },
    /// The circuit of an outgoing HTLC was torn down off-chain (settled or failed normally).
    CircuitRemoved {
        /// The outgoing HTLC.
        outgoing: HtlcKey,
    },
    /// A preimage became known. It is never forgotten.
    PreimageLearned {
        /// The preimage.
        preimage: PaymentPreimage,
        /// Where it came from; an invoice preimage settles only the HTLC it names.
        source: PreimageSource,
    },
    /// The node has settled or failed an incoming HTLC upstream as we asked; stops re-emission.
    UpstreamAcked {
        /// The incoming HTLC.
        htlc: HtlcKey,
        /// What the node did.
        resolution: UpstreamResolution,
    },
    /// A block extending the tip, with all its transactions (the core's index does the filtering).
    BlockConnected(Block),
    /// The tip block was disconnected (a reorg); the new tip is its parent.
    BlockDisconnected {
        /// The disconnected block.
        block: BlockRef,
    },
    /// A transaction entered the mempool (an early hint: a preimage there is acted on at once).
    MempoolTx {
        /// The transaction.
        tx: RawTx,
        /// Its fee, in satoshis.
        fee_sat: u64,
        /// Its virtual size.
        vsize: u64,
    },
    /// A transaction left the mempool.
    MempoolRemoved {
        /// Its txid.
        txid: Txid,
        /// Why, if the source says.
        reason: MempoolRemovalReason,
    },
    /// Current fee conditions.
    FeeConditions(FeeConditions),
    /// The confirmed balance of the wallet that funds CPFP children and zero-fee HTLC
    /// transactions. The core alerts before it falls below the fee reserve the open channels'
    /// exposure needs ([`crate::chain::reserve`]); not persisted (send it after a restart).
    WalletBalance {
        /// Confirmed satoshis.
        confirmed_sat: u64,
    },
    /// Wall time between blocks, in seconds since the Unix epoch (used only for reporting and
    /// rate limits; block height remains the clock).
    Tick {
        /// Seconds since the Unix epoch.
        unix_secs: u64,
    },
    /// The result of a broadcast action.
    BroadcastResult {
        /// The request it answers.
        request: RequestId,
        /// The txid that was broadcast (for a package, the child's).
        txid: Txid,
        /// Accepted, rejected with the source's raw reason (the core classifies it), or not
        /// delivered (no verdict from the node).
        outcome: BroadcastOutcome,
    },
    /// The result of a sign request.
    Signed {
        /// The request it answers.
        request: RequestId,
        /// The signatures, or why there are none.
        outcome: SignOutcome,
    },
    /// The result of a wallet funding request.
    WalletFunded {
        /// The request it answers.
        request: RequestId,
        /// The wallet inputs and change, or why there are none.
        outcome: FundingOutcome,
    },
    /// The answer to `Action::ReadRevokedLog`: the log entry, or `None` if the store has none.
    RevokedLogRead {
        /// The channel.
        channel: ChannelId,
        /// The revoked commitment's number.
        commitment_number: u64,
        /// The entry as stored.
        record: Option<crate::action::Record>,
    },
    /// The driver restarted and loaded every stored state; `tip` is the chain tip it knows.
    Resumed {
        /// The chain source's current tip, if it has one.
        tip: Option<BlockRef>,
    },
}

/// A numbered change to one channel. `update_id` is the previous one plus one; a gap is a typed
/// error and changes nothing, a repeat is a no-op. Each applied update is acknowledged by
/// `Action::UpdatePersisted` once durable.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelUpdate {
    /// The channel.
    pub channel: ChannelId,
    /// Its sequence number within the channel, starting at 0 with `Registered`.
    pub update_id: u64,
    /// What changed.
    pub change: ChannelChange,
}

/// What a channel update says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ChannelChange {
    /// The channel exists: everything static about it.
    Registered(Box<ChannelRegistration>),
    /// The funding outpoints changed (a splice or an RBF'd funding): the channel is closed by a
    /// spend of any of them.
    FundingChanged {
        /// Every funding output that may confirm or be spent.
        funding: Vec<FundingOutput>,
    },
    /// The peer signed a new commitment for us (`commitment_signed` received). The core rebuilds
    /// it with `bolt3` and refuses it if it does not match.
    LocalCommitment(Box<LocalCommitment>),
    /// We are about to sign a new commitment for the peer: it is their *pending* commitment until
    /// they revoke their current one. Must be persisted before `commitment_signed` is sent.
    RemoteCommitment(Box<RemoteCommitment>),
    /// We are about to revoke our commitment `commitment_number` (`revoke_and_ack` not yet sent):
    /// from now on it must never be broadcast.
    LocalCommitmentRevoked {
        /// The number of the commitment being revoked.
        commitment_number: u64,
    },
    /// The peer revoked its commitment `commitment_number` and revealed its secret; its pending
    /// commitment becomes current.
    RevocationSecret {
        /// The revoked commitment's number.
        commitment_number: u64,
        /// Its per-commitment secret.
        #[serde(with = "crate::bolt3::hex_32")]
        secret: [u8; 32],
    },
    /// Both sides' `shutdown` scripts (a cooperative close pays only these).
    ShutdownScripts {
        /// Our shutdown script.
        local: ScriptBuf,
        /// The peer's shutdown script.
        remote: ScriptBuf,
    },
    /// `channel_reestablish` showed the peer has a newer state than ours: we must never broadcast
    /// our commitment (it would be revoked) and can only sweep what the peer's close pays us.
    DataLossDetected {
        /// The peer's `next_commitment_number`.
        remote_next_commitment_number: u64,
        /// The peer's `my_current_per_commitment_point`, if it sent one.
        remote_per_commitment_point: Option<PublicKey>,
    },
}

/// Everything static about a channel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelRegistration {
    /// The commitment format.
    pub channel_type: ChannelType,
    /// The funding outputs (more than one during a splice or an RBF'd funding).
    pub funding: Vec<FundingOutput>,
    /// Who opened (funded) the channel and so pays the commitment fee and anchors.
    pub funder: Party,
    /// Our basepoints and funding key.
    pub local_basepoints: ChannelBasepoints,
    /// The peer's basepoints and funding key.
    pub remote_basepoints: ChannelBasepoints,
    /// The CSV delay on *our* `to_local` and second-level outputs (chosen by the peer).
    pub local_to_self_delay: u16,
    /// The CSV delay on the *peer's* `to_local` and second-level outputs (chosen by us).
    pub remote_to_self_delay: u16,
    /// Our `dust_limit_satoshis` (trims our commitments).
    pub local_dust_limit_sat: u64,
    /// The peer's `dust_limit_satoshis` (trims theirs).
    pub remote_dust_limit_sat: u64,
    /// A short human label for reports (e.g. the short channel id); never used for decisions.
    pub label: Option<String>,
    /// Both sides' `max_accepted_htlcs` (BOLT 2 `open_channel` / `accept_channel`), when the
    /// node passes them: each must be within the channel type's limit (114 with zero-fee
    /// commitments), and a zero-fee commitment carrying more HTLCs either way than allowed is
    /// refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_accepted_htlcs: Option<MaxAcceptedHtlcs>,
}

/// Both sides' `max_accepted_htlcs`: how many HTLCs each accepts from the other.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaxAcceptedHtlcs {
    /// Ours: the most HTLCs the peer may offer us (incoming HTLCs).
    pub local: u16,
    /// The peer's: the most HTLCs we may offer it (outgoing HTLCs).
    pub remote: u16,
}

/// One funding output of a channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct FundingOutput {
    /// The outpoint.
    pub outpoint: OutPoint,
    /// Its value (the channel capacity at that funding).
    pub value_sat: u64,
}

/// An HTLC as it stands on one commitment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitmentHtlcInfo {
    /// The offerer's HTLC id.
    pub htlc_id: u64,
    /// Incoming or outgoing, from our node's point of view.
    pub direction: HtlcDirection,
    /// Its amount.
    pub amount_msat: u64,
    /// Its payment hash.
    pub payment_hash: PaymentHash,
    /// Its absolute expiry height.
    pub cltv_expiry: Height,
    /// Its output on this commitment, or `None` if trimmed as dust. The core checks this against
    /// its own rebuild.
    pub output_index: Option<u32>,
}

/// Our new commitment, signed by the peer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalCommitment {
    /// The commitment number (counts up from 0).
    pub commitment_number: u64,
    /// Our per-commitment point for it (its keys derive from it).
    pub per_commitment_point: PublicKey,
    /// Its fee rate.
    pub feerate_per_kw: u32,
    /// Our balance, before fees.
    pub to_local_msat: u64,
    /// The peer's balance, before fees.
    pub to_remote_msat: u64,
    /// Every HTLC on it, trimmed ones included.
    pub htlcs: Vec<CommitmentHtlcInfo>,
    /// The peer's signature of the commitment (its funding key, `SIGHASH_ALL`).
    pub commitment_signature: Signature,
    /// The peer's HTLC signatures, in commitment output order (BOLT 2 `htlc_signatures`).
    pub htlc_signatures: Vec<Signature>,
}

/// A commitment of the peer's that we signed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteCommitment {
    /// The commitment number.
    pub commitment_number: u64,
    /// The peer's per-commitment point for it.
    pub per_commitment_point: PublicKey,
    /// Its fee rate.
    pub feerate_per_kw: u32,
    /// The peer's balance (its holder's `to_local`), before fees.
    pub to_local_msat: u64,
    /// Our balance (its `to_remote`), before fees.
    pub to_remote_msat: u64,
    /// Every HTLC on it, trimmed ones included (directions from our point of view).
    pub htlcs: Vec<CommitmentHtlcInfo>,
}

/// Why a force close was asked for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ForceCloseReason {
    /// The operator asked.
    User,
    /// The peer sent an `error`, or violated the protocol.
    PeerError {
        /// The error text, for the report.
        message: String,
    },
    /// The node decided for another reason it names.
    Node {
        /// The reason, for the report.
        message: String,
    },
}

/// The incoming leg of a forwarded HTLC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncomingLeg {
    /// The incoming HTLC (direction `Incoming`).
    pub htlc: HtlcKey,
    /// Its `cltv_expiry`: the deadline for resolving the outgoing leg on-chain.
    pub cltv_expiry: Height,
    /// Its amount.
    pub amount_msat: u64,
}

/// Where a preimage came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PreimageSource {
    /// Our own invoice: settles only `htlc`, an incoming HTLC for which we are the final hop.
    Invoice {
        /// The incoming HTLC paying the invoice.
        htlc: HtlcKey,
    },
    /// The next hop fulfilled our outgoing HTLC off-chain.
    Downstream {
        /// The outgoing HTLC that was fulfilled.
        htlc: HtlcKey,
    },
    /// Seen in a confirmed transaction's witness.
    Chain {
        /// The transaction.
        txid: Txid,
        /// The height it confirmed at.
        height: Height,
    },
    /// Seen in a mempool transaction's witness.
    Mempool {
        /// The transaction.
        txid: Txid,
    },
}

/// What the node did upstream for an incoming HTLC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UpstreamResolution {
    /// Settled with the preimage.
    Settled,
    /// Failed back.
    Failed,
}

/// A full block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    /// Its height.
    pub height: Height,
    /// Its hash.
    pub hash: BlockHash,
    /// Its parent's hash: must be the engine's tip, or the block is refused.
    pub prev_hash: BlockHash,
    /// Its header time (seconds since the Unix epoch), for reports only.
    pub time: u32,
    /// Every transaction in block order.
    pub txs: Vec<RawTx>,
}

/// Why a transaction left the mempool.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MempoolRemovalReason {
    /// It confirmed.
    Confirmed,
    /// A replacement took its place.
    Replaced {
        /// The replacement, if known.
        by: Option<Txid>,
    },
    /// A conflicting transaction confirmed.
    Conflict,
    /// It expired or was evicted for low fee.
    Evicted,
    /// The source did not say.
    Unknown,
}

/// Fee market conditions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeeConditions {
    /// Fee-rate estimates, one per confirmation target, in ascending target order.
    pub estimates: Vec<FeeEstimate>,
    /// The mempool's current minimum fee rate.
    pub mempool_min: FeeRate,
    /// The minimum relay fee rate.
    pub min_relay: FeeRate,
    /// The incremental relay fee rate (BIP 125 rule 4).
    pub incremental_relay: FeeRate,
}

/// The fee rate a source expects to confirm within a number of blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeeEstimate {
    /// The confirmation target, in blocks.
    pub target_blocks: u16,
    /// The estimated fee rate.
    pub feerate: FeeRate,
}

/// How a broadcast went.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BroadcastOutcome {
    /// Accepted into the mempool (or already known).
    Accepted,
    /// Rejected; `reason` is the source's own text, passed through raw.
    Rejected {
        /// The raw reason.
        reason: String,
    },
    /// The node never answered (no connection, an HTTP error without the node's verdict, a
    /// broadcast task that did not finish): not a refusal. The core keeps the attempt as it
    /// was, raises no alert, splits no batch and offers it again at the next block.
    NotDelivered {
        /// What the driver's client saw instead of a verdict (for logs only).
        reason: String,
    },
}

/// One input's signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputSignature {
    /// The input index in the transaction of the request.
    pub input: u32,
    /// The signature, with its sighash type.
    pub signature: Signature,
}

/// One wallet input's complete witness.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputWitness {
    /// The input index in the transaction of the request.
    pub input: u32,
    /// The witness.
    pub witness: bitcoin::Witness,
}

/// The answer to a sign request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SignOutcome {
    /// One signature per requested input.
    Signed {
        /// The signatures of the channel inputs.
        signatures: Vec<InputSignature>,
        /// The complete witnesses of wallet inputs (`SigningKey::Wallet`): the wallet signs its
        /// own, in whatever script type it uses.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        witnesses: Vec<InputWitness>,
    },
    /// The signer refused or failed.
    Failed {
        /// Why.
        reason: String,
    },
}

/// A confirmed wallet output offered to fund a claim.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalletInput {
    /// The outpoint.
    pub outpoint: OutPoint,
    /// The output it spends (value and script).
    pub txout: TxOut,
    /// The weight its signed witness (and scriptSig) adds, for fee planning.
    pub satisfaction_weight: u64,
    /// The height it confirmed at (the wallet offers only confirmed outputs).
    pub confirmation_height: Height,
}

/// The answer to a wallet funding request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FundingOutcome {
    /// Inputs and at most one change output; the core assembles the transaction.
    Funded {
        /// The wallet inputs.
        inputs: Vec<WalletInput>,
        /// The change output, if any.
        change: Option<TxOut>,
    },
    /// The wallet could not fund it.
    Failed {
        /// Why.
        reason: String,
    },
}

impl Event {
    /// The channel this event is about, if it is about exactly one.
    pub fn channel(&self) -> Option<ChannelId> {
        match self {
            Event::ChannelUpdate(u) => Some(u.channel),
            Event::ForceCloseRequested { channel, .. } => Some(*channel),
            Event::CircuitAdded { outgoing, .. } | Event::CircuitRemoved { outgoing } => {
                Some(outgoing.channel)
            }
            Event::UpstreamAcked { htlc, .. } => Some(htlc.channel),
            Event::RevokedLogRead { channel, .. } => Some(*channel),
            _ => None,
        }
    }
}
