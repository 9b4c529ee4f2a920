//! One claim of the sweeper: the request it serves, every transaction built for it, and the pure
//! helpers that check a request, build an attempt and assemble its witness.

use bitcoin::absolute::LockTime;
use bitcoin::ecdsa::Signature;
use bitcoin::hashes::{ripemd160, Hash};
use bitcoin::script::Instruction;
use bitcoin::secp256k1::PublicKey;
use bitcoin::sighash::EcdsaSighashType;
use bitcoin::{Amount, CompressedPublicKey, FeeRate, ScriptBuf, Transaction, Txid, Witness};
use serde::{Deserialize, Serialize};

use crate::action::{SignInput, SignRequest, SigningKey, SweepRequest};
use crate::bolt3::witness::{self as w, ClaimPath};
use crate::bolt3::{secp, sign, ChannelType};
use crate::policy::finality::LOCKTIME_THRESHOLD;
use crate::types::{ClaimId, Height, RawTx, RequestId};

use crate::fee::FeePlan;

/// Why a sweep request cannot be claimed as given. The claim is kept (so the request stays
/// idempotent) but never built; the problem is reported once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SweepError {
    /// The output's scriptPubKey is not the one the witness script (or key) commits to.
    ScriptMismatch,
    /// A preimage path without a preimage, or with one whose hash the script does not hold.
    MissingPreimage,
    /// A path whose witness carries a public key, without one.
    MissingWitnessPubkey,
    /// A path that needs our signature, with a wallet key.
    WalletKey,
    /// The witness script names no key where this path's signature is checked.
    NoSigningKey,
    /// A path of a channel type the engine does not resolve yet (simple taproot: its outputs
    /// are P2TR, spent with BIP 340 signatures the sweeper does not make).
    ChannelTypeNotResolved {
        /// The refused type.
        channel_type: ChannelType,
    },
}

impl std::fmt::Display for SweepError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SweepError::ScriptMismatch => {
                "the output's script does not commit to the request's witness script or key"
            }
            SweepError::MissingPreimage => "preimage path without the preimage the script expects",
            SweepError::MissingWitnessPubkey => "path needs a witness public key and has none",
            SweepError::WalletKey => "a channel output cannot be signed with a wallet key",
            SweepError::NoSigningKey => "the witness script has no key for this path",
            SweepError::ChannelTypeNotResolved { .. } => {
                "simple taproot channels are not resolved yet: the sweeper cannot claim their outputs"
            }
        })
    }
}

impl std::error::Error for SweepError {}

/// Where a claim stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ClaimState {
    /// Waiting for maturity, or being claimed (built, signed, broadcast, bumped every block).
    Active,
    /// Its budget (or its value above dust) cannot pay the minimum relay fee: not broadcast.
    /// Re-examined every block (a raised budget or lower relay fee revives it).
    Uneconomical {
        /// Whether the operator was told.
        reported: bool,
    },
    /// The request cannot be claimed as given.
    Invalid {
        /// Why.
        error: SweepError,
        /// Whether the operator was told.
        reported: bool,
    },
    /// A confirmed transaction spent the output.
    Spent {
        /// The spending transaction.
        txid: Txid,
        /// The height it confirmed at.
        height: Height,
        /// Whether it was one of our attempts (otherwise someone else took the output).
        ours: bool,
    },
}

/// How the last broadcast of an attempt went.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum BroadcastStatus {
    /// Not broadcast yet.
    NotSent,
    /// Broadcast; no answer yet.
    Sent,
    /// Accepted (or already known).
    Accepted,
    /// Rejected, with the source's reason.
    Rejected {
        /// The raw reason.
        reason: String,
    },
}

/// One transaction built for a claim (a first build or a fee bump).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    /// Its number: the `attempt` of its [`RequestId`].
    pub attempt: u32,
    /// The unsigned transaction (its txid is final).
    pub tx: RawTx,
    /// Its txid.
    pub txid: Txid,
    /// The predicted weight once signed (an upper bound).
    pub weight: u64,
    /// Its fee.
    pub fee_sat: u64,
    /// The fee rate the fee function asked for.
    pub feerate: FeeRate,
    /// The tip when it was built (it is offered for the next block).
    pub built_at: Height,
    /// The signed transaction, once a valid signature arrived.
    pub signed: Option<RawTx>,
    /// How its last broadcast went.
    pub broadcast: BroadcastStatus,
    /// The claims of the inputs after the first (the lead claim's own), in input order; empty
    /// for a transaction of one input.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<ClaimId>,
    /// Each input's share of the fee, in input order, pro rata by budget (so no input pays more
    /// than its own budget); empty for one input (it pays the whole fee).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shares: Vec<u64>,
    /// What set its fee rate (the fee function, the market, a floor, the budget), for reports.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub why: String,
    /// What its second output pays the fee wallet while that wallet is below its reserve
    /// ([`super::SweeperConfig::fee_wallet`]); 0 when it has no such output.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub topup_sat: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

impl Attempt {
    /// The fee share of input `index` (0 is the lead claim's).
    pub fn share(&self, index: usize) -> u64 {
        if self.members.is_empty() {
            return if index == 0 { self.fee_sat } else { 0 };
        }
        self.shares.get(index).copied().unwrap_or(0)
    }

    /// The input index of `claim` in this attempt, given the attempt's lead claim `lead`.
    pub fn input_of(&self, lead: ClaimId, claim: ClaimId) -> Option<usize> {
        if claim == lead {
            return Some(0);
        }
        self.members.iter().position(|m| *m == claim).map(|i| i + 1)
    }
}

/// A claim of one output: the request, where it stands, and — when it leads a batch — the fee
/// plan and every transaction built for the batch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SweepClaim {
    /// Its id.
    pub id: ClaimId,
    /// What the resolver asked for (the latest version of it).
    pub request: SweepRequest,
    /// Where it stands.
    pub state: ClaimState,
    /// The fee line's start, fixed at the first build.
    pub plan: Option<FeePlan>,
    /// Every attempt, in order (`attempts[i].attempt == i`).
    pub attempts: Vec<Attempt>,
    /// Attempts before this index spend by an older version of the request (another path,
    /// script or key); they are kept to recognise their spends but never rebroadcast.
    pub first_current: u32,
    /// The highest rate a mempool refused as too low, or that a dissolved batch spending this
    /// input paid (its replacement must outbid it): the next attempt pays more.
    pub refused_rate: Option<FeeRate>,
    /// The last rejection or signer failure reported, so a repeated one is not re-reported.
    pub last_problem: Option<String>,
    /// The deadline whose miss was reported (a new deadline is reported anew).
    pub deadline_reported: Option<Height>,
    /// On the lead claim of a batch: the claims of the other inputs of its transaction, in
    /// input order. The batch's attempts are the lead's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<ClaimId>,
    /// On a batch member: the lead claim whose attempts spend this input too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lead: Option<ClaimId>,
    /// Claimed on its own from now on: its batch was split (a rejection to isolate, or a
    /// contested batch that stayed unconfirmed too long).
    #[serde(default, skip_serializing_if = "is_false")]
    pub alone: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl SweepClaim {
    /// A new claim of `request`; a request that cannot be claimed is kept as
    /// [`ClaimState::Invalid`].
    pub fn new(id: ClaimId, request: SweepRequest) -> SweepClaim {
        let state = match check_request(&request) {
            Ok(()) => ClaimState::Active,
            Err(error) => ClaimState::Invalid {
                error,
                reported: false,
            },
        };
        SweepClaim {
            id,
            request,
            state,
            plan: None,
            attempts: Vec::new(),
            first_current: 0,
            refused_rate: None,
            last_problem: None,
            deadline_reported: None,
            members: Vec::new(),
            lead: None,
            alone: false,
        }
    }

    /// Whether this claim leads a planned transaction (its current attempt).
    pub fn leads(&self) -> bool {
        self.lead.is_none() && self.current().is_some()
    }

    /// Forget the current plan: no attempt is current any more (the older ones are kept to
    /// recognise their spends), no members, a fresh fee line.
    pub fn unplan(&mut self) {
        self.first_current = u32::try_from(self.attempts.len()).unwrap_or(u32::MAX);
        self.members.clear();
        self.lead = None;
        self.plan = None;
    }

    /// The newest attempt built from the current request.
    pub fn current(&self) -> Option<&Attempt> {
        self.attempts
            .last()
            .filter(|a| a.attempt >= self.first_current)
    }

    /// The newest signed attempt built from the current request: the one kept broadcast.
    pub fn best_signed(&self) -> Option<&Attempt> {
        self.attempts
            .iter()
            .rev()
            .take_while(|a| a.attempt >= self.first_current)
            .find(|a| a.signed.is_some())
    }

    /// The attempt whose txid is `txid`, if it is one of ours.
    pub fn attempt_with_txid(&self, txid: &Txid) -> Option<&Attempt> {
        self.attempts.iter().find(|a| a.txid == *txid)
    }

    /// The request tag of attempt `attempt`.
    pub fn request_id(&self, attempt: u32) -> RequestId {
        RequestId {
            claim: self.id,
            attempt,
        }
    }

    /// Whether the claim is still trying to get its output confirmed.
    pub fn is_live(&self) -> bool {
        matches!(self.state, ClaimState::Active)
    }

    /// The sign request for `attempt` (one entry per input needing a signature, `SIGHASH_ALL`);
    /// `inputs` are the requests of its inputs in order (the lead's first). `None` when no
    /// input needs a signature.
    pub fn sign_request(&self, attempt: &Attempt, inputs: &[SweepRequest]) -> Option<SignRequest> {
        let entries: Vec<SignInput> = inputs
            .iter()
            .enumerate()
            .filter(|(_, r)| needs_signature(&r.path))
            .map(|(i, r)| SignInput {
                input: u32::try_from(i).unwrap_or(u32::MAX),
                prevout: r.outpoint,
                value_sat: r.txout.value.to_sat(),
                script: r.script.clone(),
                sighash: EcdsaSighashType::All,
                key: r.key.clone(),
            })
            .collect();
        if entries.is_empty() {
            return None;
        }
        Some(SignRequest {
            request: self.request_id(attempt.attempt),
            tx: attempt.tx.clone(),
            inputs: entries,
        })
    }
}

/// Whether the parts of two requests that decide the claim transaction differ.
pub fn envelope_changed(a: &SweepRequest, b: &SweepRequest) -> bool {
    a.outpoint != b.outpoint
        || a.txout != b.txout
        || a.path != b.path
        || a.script != b.script
        || a.key != b.key
        || a.preimage != b.preimage
        || a.witness_pubkey != b.witness_pubkey
}

/// Whether spending by `path` needs our signature.
pub fn needs_signature(path: &ClaimPath) -> bool {
    !matches!(path, ClaimPath::AnchorAnyone | ClaimPath::PayToAnchor)
}

fn is_p2wpkh_path(path: &ClaimPath) -> bool {
    matches!(
        path,
        ClaimPath::ToRemote {
            channel_type: ChannelType::StaticRemoteKey | ChannelType::ZeroFeeCommitments
        }
    )
}

/// Check that a request describes a spend the sweeper can build and sign.
pub fn check_request(req: &SweepRequest) -> Result<(), SweepError> {
    if let Some(channel_type) = req.path.channel_type() {
        channel_type
            .engine_support()
            .map_err(|e| SweepError::ChannelTypeNotResolved {
                channel_type: e.channel_type,
            })?;
    }
    let spk = &req.txout.script_pubkey;
    if is_p2wpkh_path(&req.path) {
        let key = req.witness_pubkey.ok_or(SweepError::MissingWitnessPubkey)?;
        let expected = ScriptBuf::new_p2wpkh(&CompressedPublicKey(key).wpubkey_hash());
        if *spk != expected || req.script != expected {
            return Err(SweepError::ScriptMismatch);
        }
    } else if req.script.to_p2wsh() != *spk {
        return Err(SweepError::ScriptMismatch);
    }
    if matches!(
        req.path,
        ClaimPath::OfferedHtlcRevocation { .. } | ClaimPath::ReceivedHtlcRevocation { .. }
    ) && req.witness_pubkey.is_none()
    {
        return Err(SweepError::MissingWitnessPubkey);
    }
    if let ClaimPath::OfferedHtlcPreimage { .. } = req.path {
        let preimage = req.preimage.ok_or(SweepError::MissingPreimage)?;
        let hash160 = ripemd160::Hash::hash(&preimage.payment_hash().0).to_byte_array();
        if !pushes(&req.script).any(|p| p == hash160) {
            return Err(SweepError::MissingPreimage);
        }
    }
    if needs_signature(&req.path) {
        if matches!(req.key, SigningKey::Wallet) {
            return Err(SweepError::WalletKey);
        }
        signing_pubkey(req).ok_or(SweepError::NoSigningKey)?;
    }
    Ok(())
}

/// The pushed data of a script, in order (stops at the first malformed instruction).
fn pushes(script: &ScriptBuf) -> impl Iterator<Item = Vec<u8>> + '_ {
    script.instructions().map_while(|i| match i {
        Ok(Instruction::PushBytes(bytes)) => Some(bytes.as_bytes().to_vec()),
        Ok(Instruction::Op(_)) => Some(Vec::new()),
        Err(_) => None,
    })
}

/// The public key our signature must verify against on this path: the witness public key of a
/// P2WPKH or revocation spend, otherwise the key the BOLT 3 script checks on that path (the
/// second key of `to_local` — `local_delayedpubkey` — the first key of the others).
pub fn signing_pubkey(req: &SweepRequest) -> Option<PublicKey> {
    // Parsed lazily: a key costs a point decompression, and at most two are needed.
    let mut keys = pushes(&req.script)
        .filter(|p| p.len() == 33)
        .filter_map(|p| PublicKey::from_slice(&p).ok());
    match req.path {
        ClaimPath::ToRemote {
            channel_type: ChannelType::StaticRemoteKey | ChannelType::ZeroFeeCommitments,
        }
        | ClaimPath::OfferedHtlcRevocation { .. }
        | ClaimPath::ReceivedHtlcRevocation { .. } => req.witness_pubkey,
        ClaimPath::ToLocalDelayed { .. } => keys.nth(1),
        ClaimPath::ToLocalRevocation { .. }
        | ClaimPath::ToRemote { .. }
        | ClaimPath::OfferedHtlcPreimage { .. }
        | ClaimPath::ReceivedHtlcTimeout { .. }
        | ClaimPath::AnchorOwner => keys.next(),
        ClaimPath::AnchorAnyone | ClaimPath::PayToAnchor => None,
    }
}

/// The unsigned claim of `inputs` (in order) paying their value less `fee_sat` to
/// `destination` — less `topup` too, which a second output pays — with `nLockTime` at `tip`
/// (anti-fee-sniping) or the highest `cltv_expiry` of their paths, whichever is higher. `None`
/// if the paths mix lock time units.
pub fn build_tx(
    inputs: &[SweepRequest],
    destination: &ScriptBuf,
    fee_sat: u64,
    topup: Option<bitcoin::TxOut>,
    tip: Height,
) -> Option<Transaction> {
    let topup_sat = topup.as_ref().map_or(0, |t| t.value.to_sat());
    let value = inputs
        .iter()
        .map(|r| r.txout.value.to_sat())
        .fold(0u64, u64::saturating_add)
        .saturating_sub(fee_sat)
        .saturating_sub(topup_sat);
    let spends: Vec<_> = inputs.iter().map(|r| (r.outpoint, r.path)).collect();
    let output = bitcoin::TxOut {
        value: Amount::from_sat(value),
        script_pubkey: destination.clone(),
    };
    let outputs = std::iter::once(output).chain(topup).collect();
    let mut tx = w::build_claim_batch(&spends, outputs).ok()?;
    let path_lock = tx.lock_time.to_consensus_u32();
    if tip < LOCKTIME_THRESHOLD && path_lock < LOCKTIME_THRESHOLD {
        tx.lock_time = LockTime::from_consensus(path_lock.max(tip));
    }
    Some(tx)
}

/// Why a signature cannot be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignatureError {
    /// The signer returned no signature for an input that needs one.
    Missing,
    /// A sighash type other than `SIGHASH_ALL`.
    WrongSighash,
    /// It does not verify against the key the path checks.
    Invalid,
}

impl std::fmt::Display for SignatureError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SignatureError::Missing => "no signature for an input",
            SignatureError::WrongSighash => "signature is not sighash_all",
            SignatureError::Invalid => "signature does not verify",
        })
    }
}

/// Check `sig` on input `index` of `tx` (spending `req`) against the key the request's path
/// checks.
pub fn verify_signature(
    req: &SweepRequest,
    tx: &Transaction,
    index: usize,
    sig: &Signature,
) -> Result<(), SignatureError> {
    if sig.sighash_type != EcdsaSighashType::All {
        return Err(SignatureError::WrongSighash);
    }
    let key = signing_pubkey(req).ok_or(SignatureError::Invalid)?;
    let msg = if is_p2wpkh_path(&req.path) {
        sign::p2wpkh_sighash(tx, index, &req.script, req.txout.value, sig.sighash_type)
    } else {
        sign::p2wsh_sighash(tx, index, &req.script, req.txout.value, sig.sighash_type)
    }
    .map_err(|_| SignatureError::Invalid)?;
    secp()
        .verify_ecdsa(&msg, &sig.signature, &key)
        .map_err(|_| SignatureError::Invalid)
}

/// The witness of an input spending `req` by its path. `None` when the request lacks what the path
/// needs (prevented by [`check_request`]) or a signature is missing where one is needed.
pub fn witness(req: &SweepRequest, sig: Option<&Signature>) -> Option<Witness> {
    let script = &req.script;
    if let ClaimPath::AnchorAnyone = req.path {
        return Some(w::anchor_anyone_witness(script));
    }
    if let ClaimPath::PayToAnchor = req.path {
        return Some(w::pay_to_anchor_witness());
    }
    let sig = sig?;
    Some(match req.path {
        ClaimPath::ToLocalDelayed { .. } => w::to_local_delayed_witness(sig, script),
        ClaimPath::ToLocalRevocation { .. } => w::to_local_revocation_witness(sig, script),
        ClaimPath::ToRemote { channel_type } => match channel_type {
            ChannelType::StaticRemoteKey | ChannelType::ZeroFeeCommitments => {
                w::to_remote_p2wpkh_witness(sig, &req.witness_pubkey?)
            }
            ChannelType::AnchorsZeroFeeHtlc => w::to_remote_anchor_witness(sig, script),
            // Refused by `check_request` (`ChannelTypeNotResolved`): an ECDSA signature cannot
            // spend a P2TR output.
            ChannelType::SimpleTaproot => return None,
        },
        ClaimPath::OfferedHtlcPreimage { .. } => {
            w::offered_htlc_preimage_witness(sig, &req.preimage?, script)
        }
        ClaimPath::OfferedHtlcRevocation { .. } | ClaimPath::ReceivedHtlcRevocation { .. } => {
            w::htlc_revocation_witness(sig, &req.witness_pubkey?, script)
        }
        ClaimPath::ReceivedHtlcTimeout { .. } => w::received_htlc_timeout_witness(sig, script),
        ClaimPath::AnchorOwner => w::anchor_owner_witness(sig, script),
        ClaimPath::AnchorAnyone => w::anchor_anyone_witness(script),
        ClaimPath::PayToAnchor => w::pay_to_anchor_witness(),
    })
}
