//! Actions: everything the core asks the outside world to do, as a closed, ordered list.
//!
//! A driver executes a step's actions **in order**. A [`Action::Persist`] batch, when present, is
//! always first: the driver commits it atomically before running anything else, and if the commit
//! fails it runs nothing and reloads. Every action is idempotent, and whatever is still pending is
//! re-emitted after `Event::Resumed`, so a crash between any two actions loses nothing.
//!
//! Segwit txids do not depend on witnesses, so every txid is known before anything is signed.

use bitcoin::secp256k1::PublicKey;
use bitcoin::sighash::EcdsaSighashType;
use bitcoin::{FeeRate, OutPoint, ScriptBuf, TxOut, Txid};
use serde::{Deserialize, Serialize};

use crate::bolt3::witness::ClaimPath;
use crate::bolt3::{PaymentHash, PaymentPreimage};
use crate::types::{BlockRef, ChannelId, ClaimId, Height, HtlcKey, RawTx, RequestId};

/// One output of the core.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Action {
    /// Commit these records atomically before running any later action of the step.
    Persist(Batch),
    /// A channel update is durable: the node may now send the `commitment_signed` or
    /// `revoke_and_ack` that depends on it, and not before.
    UpdatePersisted {
        /// The channel.
        channel: ChannelId,
        /// The update now durable.
        update_id: u64,
    },
    /// Sign some inputs of a fully specified transaction; answered by `Event::Signed`.
    Sign(SignRequest),
    /// Ask the wallet for confirmed inputs (and one change output) to fund a claim — a CPFP child
    /// or a zero-fee HTLC transaction; answered by `Event::WalletFunded`. The core assembles,
    /// checks and persists the transaction itself.
    FundFromWallet(FundingRequest),
    /// A claim has ended: the wallet may reuse the inputs it lent to it.
    ReleaseInputs {
        /// The claim.
        claim: ClaimId,
    },
    /// Broadcast a signed transaction; answered by `Event::BroadcastResult`.
    Broadcast {
        /// The request tag.
        request: RequestId,
        /// The transaction.
        tx: RawTx,
    },
    /// Broadcast a parent and its fee-paying child together; answered by `Event::BroadcastResult`.
    BroadcastPackage {
        /// The request tag.
        request: RequestId,
        /// The parent (e.g. a commitment or a zero-fee HTLC transaction).
        parent: RawTx,
        /// The child paying for it.
        child: RawTx,
    },
    /// Read the revoked commitment `commitment_number` of `channel` from the append-only revoked
    /// log (written by `RecordOp::Append`); answered by `Event::RevokedLogRead`. Asked only on a
    /// breach.
    ReadRevokedLog {
        /// The channel.
        channel: ChannelId,
        /// The revoked commitment's number (the log entry's sequence number).
        commitment_number: u64,
    },
    /// Start watching for something (for chain sources that need registration; block delivery
    /// is unaffected — the core filters full blocks itself).
    Watch(WatchTarget),
    /// Stop watching.
    Unwatch(WatchTarget),
    /// Replay blocks after the last of these (newest first) that is still on the best chain.
    SyncFrom {
        /// Recent block hashes, newest first, denser near the tip.
        locator: Vec<BlockRef>,
    },
    /// Settle an incoming HTLC upstream with its preimage. At least once: re-emitted after a
    /// restart until `Event::UpstreamAcked`; the node deduplicates.
    SettleUpstream {
        /// The incoming HTLC.
        htlc: HtlcKey,
        /// The preimage.
        preimage: PaymentPreimage,
    },
    /// Fail an incoming HTLC upstream. At least once, as for `SettleUpstream`.
    FailUpstream {
        /// The incoming HTLC.
        htlc: HtlcKey,
        /// Why, for the node's records.
        reason: FailReason,
    },
    /// Something for the operator: close summaries, per-output timeline, resolutions, alerts.
    Report(Report),
}

/// An atomic batch of keyed records.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Batch {
    /// The operations, applied in order.
    pub ops: Vec<RecordOp>,
}

impl Batch {
    /// Apply the batch, in order, to an in-memory store: `records` by key, and the
    /// append-only per-channel `log` by (channel, sequence number).
    pub fn apply_to(
        &self,
        records: &mut std::collections::BTreeMap<RecordKey, Record>,
        log: &mut std::collections::BTreeMap<(ChannelId, u64), Record>,
    ) {
        for op in &self.ops {
            match op {
                RecordOp::Put { key, record } => {
                    records.insert(key.clone(), record.clone());
                }
                RecordOp::Delete { key } => {
                    records.remove(key);
                }
                RecordOp::Append {
                    channel,
                    seq,
                    record,
                } => {
                    log.insert((*channel, *seq), record.clone());
                }
            }
        }
    }
}

/// One write in a [`Batch`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum RecordOp {
    /// Insert or replace the record at `key`.
    Put {
        /// Where.
        key: RecordKey,
        /// What.
        record: Record,
    },
    /// Remove the record at `key` (absent is fine).
    Delete {
        /// Where.
        key: RecordKey,
    },
    /// Append to an append-only per-channel log (revoked commitments' HTLC data, read on a
    /// breach only).
    Append {
        /// The channel whose log it is.
        channel: ChannelId,
        /// The entry's sequence number in that log (the revoked commitment's number).
        seq: u64,
        /// The entry.
        record: Record,
    },
}

/// Where a record lives. Ordered, so an in-memory store iterates deterministically; its
/// [`std::fmt::Display`] form is a stable path a database can use as its key.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RecordKey {
    /// Node-wide state: counters, configuration, fee conditions.
    Node,
    /// A channel's header (static data and arbitrator state).
    Channel {
        /// The channel.
        channel: ChannelId,
    },
    /// One of a channel's live commitments.
    Commitment {
        /// The channel.
        channel: ChannelId,
        /// Which one.
        slot: CommitmentSlot,
    },
    /// A resolver's state.
    Resolver {
        /// The channel.
        channel: ChannelId,
        /// The output it resolves.
        outpoint: OutPoint,
    },
    /// A claim with every transaction built for it.
    Claim {
        /// The claim.
        claim: ClaimId,
    },
    /// A known preimage (never deleted).
    Preimage {
        /// Its payment hash.
        payment_hash: PaymentHash,
    },
    /// A forwarding circuit.
    Circuit {
        /// The outgoing HTLC.
        outgoing: HtlcKey,
    },
    /// An upstream settle/fail awaiting `UpstreamAcked`.
    Upstream {
        /// The incoming HTLC.
        htlc: HtlcKey,
    },
    /// One of the recent blocks (the highest is the tip): one record each, so connecting a
    /// block writes one record and deletes one, whatever the length of the locator.
    Block {
        /// Its height.
        height: Height,
    },
}

/// Which live commitment a [`RecordKey::Commitment`] names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommitmentSlot {
    /// Our latest commitment.
    Local,
    /// The peer's current commitment.
    RemoteCurrent,
    /// The peer's pending (signed, not yet current) commitment.
    RemotePending,
}

impl std::fmt::Display for RecordKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RecordKey::Node => f.write_str("node"),
            RecordKey::Channel { channel } => write!(f, "channel/{channel}"),
            RecordKey::Commitment { channel, slot } => {
                let slot = match slot {
                    CommitmentSlot::Local => "local",
                    CommitmentSlot::RemoteCurrent => "remote_current",
                    CommitmentSlot::RemotePending => "remote_pending",
                };
                write!(f, "channel/{channel}/commitment/{slot}")
            }
            RecordKey::Resolver { channel, outpoint } => {
                write!(f, "channel/{channel}/resolver/{outpoint}")
            }
            RecordKey::Claim { claim } => write!(f, "claim/{}", claim.0),
            RecordKey::Preimage { payment_hash } => write!(f, "preimage/{payment_hash}"),
            RecordKey::Circuit { outgoing } => {
                write!(f, "circuit/{}/{}", outgoing.channel, outgoing.htlc_id)
            }
            RecordKey::Upstream { htlc } => write!(f, "upstream/{}/{}", htlc.channel, htlc.htlc_id),
            RecordKey::Block { height } => write!(f, "block/{height}"),
        }
    }
}

/// A persisted record: a version and a JSON body. Loading a record whose version the code does
/// not know is a clear error, never a guess.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The body's format version.
    pub version: u32,
    /// The body.
    pub body: serde_json::Value,
}

/// A request for signatures on inputs of one transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignRequest {
    /// The request tag.
    pub request: RequestId,
    /// The complete transaction (txid fixed; only witnesses missing).
    pub tx: RawTx,
    /// The inputs to sign.
    pub inputs: Vec<SignInput>,
}

/// One input to sign, fully specified.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignInput {
    /// Its index in the transaction.
    pub input: u32,
    /// The output it spends.
    pub prevout: OutPoint,
    /// That output's value.
    pub value_sat: u64,
    /// The witness script (for P2WPKH, the scriptPubKey).
    pub script: ScriptBuf,
    /// The sighash type.
    pub sighash: EcdsaSighashType,
    /// The key to sign with.
    pub key: SigningKey,
}

/// Which private key signs: a channel basepoint secret with a BOLT 3 tweak, or a wallet key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SigningKey {
    /// One of our channel keys.
    Channel {
        /// The channel.
        channel: ChannelId,
        /// Which basepoint secret.
        basepoint: Basepoint,
        /// How to tweak it.
        tweak: KeyTweak,
    },
    /// A wallet input the wallet lent to the claim; the wallet signs its own.
    Wallet,
}

/// Our channel basepoints (BOLT 2 names).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Basepoint {
    /// `funding_pubkey` (also our anchor key).
    Funding,
    /// `revocation_basepoint`.
    Revocation,
    /// `payment_basepoint`.
    Payment,
    /// `delayed_payment_basepoint`.
    DelayedPayment,
    /// `htlc_basepoint`.
    Htlc,
}

/// How a basepoint secret becomes the signing key (BOLT 3 "Key Derivation").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum KeyTweak {
    /// Untweaked (funding key, static `remotepubkey`).
    None,
    /// `secret + SHA256(per_commitment_point || basepoint)`.
    PerCommitmentPoint {
        /// The point.
        point: PublicKey,
    },
    /// The revocation private key from our revocation basepoint secret and the peer's revealed
    /// per-commitment secret.
    Revocation {
        /// The revealed secret.
        #[serde(with = "crate::bolt3::hex_32")]
        per_commitment_secret: [u8; 32],
    },
}

/// A request for wallet inputs to fund a claim.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FundingRequest {
    /// The request tag.
    pub request: RequestId,
    /// The transaction to fund: its own inputs and outputs come first (HTLC input i stays at
    /// output i for `SIGHASH_SINGLE`); wallet inputs and change are appended.
    pub template: RawTx,
    /// The weight of the template once its own inputs are signed.
    pub template_weight: u64,
    /// The value of the template's own inputs: with the template's outputs, the wallet knows
    /// how much of the fee they already pay (an anchor's 330 sat; nothing for a zero-fee HTLC
    /// transaction, whose input pays its output exactly).
    #[serde(default)]
    pub template_inputs_sat: u64,
    /// For a CPFP child, the parent's fee: the child pays what makes parent + child reach
    /// `target_feerate` together, `target_feerate × (parent_weight + weight) − parent_fee_sat`.
    #[serde(default)]
    pub parent_fee_sat: u64,
    /// For a CPFP child, the parent's weight.
    #[serde(default)]
    pub parent_weight: u64,
    /// The unconfirmed parent this claim pays for, if it is a CPFP child.
    pub parent: Option<Txid>,
    /// The fee rate the claim (with its parent, for CPFP) must reach.
    pub target_feerate: FeeRate,
    /// The most the wallet inputs may contribute in fees.
    pub max_fee_sat: u64,
    /// Inputs lent to an earlier attempt of the same claim: reuse them so bumps replace each other.
    pub reuse: Vec<OutPoint>,
    /// Where change goes, if the wallet does not choose.
    pub change_script: Option<ScriptBuf>,
}

/// Something a chain source may need to be told to watch.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum WatchTarget {
    /// Spends of an outpoint.
    Outpoint {
        /// The outpoint.
        outpoint: OutPoint,
    },
    /// Confirmations of a transaction.
    Txid {
        /// The txid.
        txid: Txid,
    },
    /// Outputs paying a script.
    Script {
        /// The scriptPubKey.
        script: ScriptBuf,
    },
}

/// Why an incoming HTLC is failed upstream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FailReason {
    /// The outgoing leg timed out on-chain and that is reorg-safe.
    OutgoingTimedOut {
        /// The outgoing HTLC.
        outgoing: HtlcKey,
    },
    /// The outgoing leg was dust (trimmed) on the commitment that matters.
    OutgoingDust {
        /// The outgoing HTLC.
        outgoing: HtlcKey,
    },
    /// The outgoing leg was on a commitment that did not confirm, and no preimage is known.
    OutgoingNotOnChain {
        /// The outgoing HTLC.
        outgoing: HtlcKey,
    },
    /// The outgoing leg was on the peer's revoked commitment and we took its output by
    /// revocation, reorg-safe, without its preimage ever appearing.
    OutgoingRevoked {
        /// The outgoing HTLC.
        outgoing: HtlcKey,
    },
    /// The configured cut-loss rule: the incoming leg is about to expire while the outgoing one
    /// is unresolved (a possible loss, reported).
    CutLoss {
        /// The outgoing HTLC still unresolved.
        outgoing: HtlcKey,
        /// The incoming leg's expiry.
        incoming_expiry: Height,
    },
    /// We are the final hop and hold no preimage; the HTLC is expiring.
    NoPreimage,
    /// An incoming HTLC of this channel was dust (trimmed) on the commitment that confirmed: it
    /// can never be claimed on-chain.
    IncomingDust,
}

/// What a resolver asks the sweeper to claim. Resolvers decide what, by when and for how much;
/// only the sweeper builds claim transactions and decides fees (routed inside the core).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SweepRequest {
    /// The channel the output belongs to.
    pub channel: ChannelId,
    /// The output to claim.
    pub outpoint: OutPoint,
    /// Its value and script.
    pub txout: TxOut,
    /// The spend path: decides the witness, the weight, nSequence and nLockTime.
    pub path: ClaimPath,
    /// The witness script (for a P2WPKH output, its scriptPubKey).
    pub script: ScriptBuf,
    /// The key that signs the claim.
    pub key: SigningKey,
    /// The preimage, for a preimage path.
    pub preimage: Option<PaymentPreimage>,
    /// The public key the witness carries: ours for a P2WPKH `to_remote`, the
    /// `revocationpubkey` for an HTLC revocation path; `None` otherwise.
    pub witness_pubkey: Option<PublicKey>,
    /// The height by which the claim must confirm.
    pub deadline: Height,
    /// The most the claim may spend on fees, in satoshis.
    pub budget_sat: u64,
    /// Whether the peer can also spend this output (then it is never batched with outputs only
    /// we can spend).
    pub contestable: bool,
    /// Inputs in the same group are alternatives: at most one of them is claimed.
    pub exclusive_group: Option<u64>,
    /// The first height at which a spend can confirm (CSV/CLTV maturity).
    pub mature_at: Height,
}

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
    /// The height it became final (reorg-safe) at.
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
}
