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

mod record;
mod report;
pub mod taproot;

pub use record::*;
pub use report::*;
pub use taproot::{
    SchnorrInputSignature, TapSignPath, TaprootSignInput, TaprootSignOutcome, TaprootSignRequest,
};

use crate::bolt3::witness::ClaimPath;
use crate::bolt3::PaymentPreimage;
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
    /// The most the wallet inputs may contribute in fees. When the rate, at the weight the
    /// wallet's inputs make, would cost more, the wallet pays this budget instead — at most
    /// `BUDGET_SLACK_SAT` (546 sat) less, to keep its change above dust — as long as that pays
    /// the minimum relay fee ([`crate::funded::select_inputs`] does so).
    pub max_fee_sat: u64,
    /// Inputs lent to an earlier attempt of the same claim: reuse them so bumps replace each other.
    pub reuse: Vec<OutPoint>,
    /// Where change goes, if the wallet does not choose.
    pub change_script: Option<ScriptBuf>,
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
