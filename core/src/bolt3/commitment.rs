//! Commitment transactions (BOLT 3 "Commitment Transaction", "Fees", "Commitment Transaction
//! Construction"): the obscured commitment number, fees and trimming, and the construction of
//! one commitment transaction from a [`CommitmentSpec`].
//!
//! Names follow BOLT 3: the commitment's holder is "local", its counterparty "remote".

use bitcoin::absolute::LockTime;
use bitcoin::ecdsa::Signature;
use bitcoin::hashes::{sha256, Hash, HashEngine};
use bitcoin::secp256k1::{PublicKey, SecretKey};
use bitcoin::sighash::EcdsaSighashType;
use bitcoin::{Amount, OutPoint, Script, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Witness};
use serde::{Deserialize, Serialize};

pub use super::fees::*;
use super::scripts;
use super::sign::{self, SighashError};
use super::{ChannelType, CommitmentKeys, PaymentHash};
use outputs::{
    anchor_candidate, htlc_candidate, shared_anchor, to_local_candidate, to_remote_candidate,
};

mod outputs;

/// Commitment numbers are 48 bits wide.
pub const MAX_COMMITMENT_NUMBER: u64 = (1 << 48) - 1;

const LOCKTIME_PREFIX: u32 = 0x20;
const SEQUENCE_PREFIX: u32 = 0x80;
const LOW_24_BITS: u64 = 0xFF_FFFF;

/// The factor that obscures commitment numbers: the low 48 bits of
/// `SHA256(opener payment_basepoint || accepter payment_basepoint)`.
pub fn obscuring_factor(
    opener_payment_basepoint: &PublicKey,
    accepter_payment_basepoint: &PublicKey,
) -> u64 {
    let mut engine = sha256::Hash::engine();
    engine.input(&opener_payment_basepoint.serialize());
    engine.input(&accepter_payment_basepoint.serialize());
    let digest = sha256::Hash::from_engine(engine).to_byte_array();
    digest[26..]
        .iter()
        .fold(0u64, |acc, byte| (acc << 8) | u64::from(*byte))
}

/// The nLockTime and (input) nSequence that carry commitment number `n` obscured by `factor`:
/// `0x20` followed by the low 24 bits, and `0x80` followed by the high 24 bits.
///
/// Only the low 48 bits of `n` and `factor` are used.
pub fn encode_commitment_number(n: u64, factor: u64) -> (LockTime, Sequence) {
    let obscured = (n ^ factor) & MAX_COMMITMENT_NUMBER;
    // Both halves are masked to 24 bits, so the casts cannot truncate.
    let low = (obscured & LOW_24_BITS) as u32;
    let high = ((obscured >> 24) & LOW_24_BITS) as u32;
    (
        LockTime::from_consensus((LOCKTIME_PREFIX << 24) | low),
        Sequence((SEQUENCE_PREFIX << 24) | high),
    )
}

/// The commitment number of `tx` if it has the shape of a commitment transaction (exactly one
/// input, nLockTime prefixed `0x20`, nSequence prefixed `0x80`), unobscured with `factor`.
/// `None` for any other transaction.
pub fn decode_commitment_number(tx: &Transaction, factor: u64) -> Option<u64> {
    let [input] = tx.input.as_slice() else {
        return None;
    };
    let locktime = tx.lock_time.to_consensus_u32();
    let sequence = input.sequence.0;
    if locktime >> 24 != LOCKTIME_PREFIX || sequence >> 24 != SEQUENCE_PREFIX {
        return None;
    }
    let obscured =
        ((u64::from(sequence) & LOW_24_BITS) << 24) | (u64::from(locktime) & LOW_24_BITS);
    Some((obscured ^ factor) & MAX_COMMITMENT_NUMBER)
}

/// An HTLC as it stands on one commitment transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitmentHtlc {
    /// The id its offerer assigned (BOLT 2 `update_add_htlc.id`). Ids are per offerer, so an
    /// offered and a received HTLC may share one.
    pub id: u64,
    /// Offered by the commitment's holder (an offered-HTLC output, claimed by HTLC-timeout);
    /// otherwise received by the holder (a received-HTLC output, claimed by HTLC-success).
    pub offered: bool,
    /// The amount in millisatoshis.
    pub amount_msat: u64,
    /// The payment hash.
    pub payment_hash: PaymentHash,
    /// The absolute expiry height.
    pub cltv_expiry: u32,
}

/// Everything needed to build one commitment transaction, seen from its holder.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitmentSpec {
    /// The channel's commitment format.
    pub channel_type: ChannelType,
    /// The funding output the commitment spends.
    pub funding_outpoint: OutPoint,
    /// The value of the funding output.
    pub funding_sat: u64,
    /// The (unobscured) commitment number, below 2^48.
    pub commitment_number: u64,
    /// The channel's obscuring factor (see [`obscuring_factor`]).
    pub obscuring_factor: u64,
    /// The keys of this commitment.
    pub keys: CommitmentKeys,
    /// The holder's funding key.
    pub local_funding_pubkey: PublicKey,
    /// The counterparty's funding key.
    pub remote_funding_pubkey: PublicKey,
    /// The CSV delay on the holder's outputs (set by the counterparty).
    pub to_self_delay: u16,
    /// The holder's `dust_limit_satoshis`.
    pub dust_limit_sat: u64,
    /// The commitment feerate.
    pub feerate_per_kw: u32,
    /// The holder's balance in millisatoshis, net of HTLCs, before the fee and anchors.
    pub to_local_msat: u64,
    /// The counterparty's balance in millisatoshis, net of HTLCs, before the fee and anchors.
    pub to_remote_msat: u64,
    /// Whether the holder opened (funded) the channel and so pays the fee and anchors.
    pub holder_is_funder: bool,
    /// The HTLCs on this commitment, trimmed or not.
    pub htlcs: Vec<CommitmentHtlc>,
}

/// What a commitment output is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputKind {
    /// The holder's delayed, revocable balance.
    ToLocal,
    /// The counterparty's balance.
    ToRemote,
    /// The holder's anchor.
    LocalAnchor,
    /// The counterparty's anchor.
    RemoteAnchor,
    /// The one unkeyed pay-to-anchor output of a zero-fee commitment (`shared_anchor`): anyone
    /// may spend it, at once, with an empty witness.
    SharedAnchor,
    /// An HTLC the holder offered.
    OfferedHtlc {
        /// Its id.
        htlc_id: u64,
    },
    /// An HTLC the holder received.
    ReceivedHtlc {
        /// Its id.
        htlc_id: u64,
    },
}

/// One output of a built commitment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitmentOutput {
    /// Its index in the transaction.
    pub index: u32,
    /// Its value.
    pub value_sat: u64,
    /// What it is.
    pub kind: OutputKind,
    /// The P2WSH witness script, `None` for the P2WPKH `to_remote` (static remote key, zero-fee
    /// commitments), for the pay-to-anchor `shared_anchor` and for every P2TR output of a simple
    /// taproot commitment (its leaves and control blocks come from [`super::taproot`], rebuilt
    /// from the commitment's keys).
    pub witness_script: Option<ScriptBuf>,
}

/// A commitment transaction and what each of its outputs is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuiltCommitment {
    /// The unsigned transaction (empty witness).
    pub tx: Transaction,
    /// Its outputs, in transaction order.
    pub outputs: Vec<CommitmentOutput>,
    /// The HTLCs trimmed to fees (dust on this commitment), in the order of
    /// [`CommitmentSpec::htlcs`].
    pub trimmed_htlcs: Vec<CommitmentHtlc>,
    /// The fee actually paid: funding value minus the outputs (base fee, trimmed HTLCs, dust
    /// balances and rounding; with zero-fee commitments, what the shared anchor could not take
    /// above 240 sat).
    pub fee_sat: u64,
    /// The base fee taken from the funder (see [`commitment_fee_sat`]).
    pub base_fee_sat: u64,
}

impl BuiltCommitment {
    /// The output index of the HTLC with `htlc_id` offered (`offered`) or received by the holder
    /// (ids are per offerer, so the direction is part of the name), `None` if trimmed or absent.
    pub fn htlc_output_index(&self, offered: bool, htlc_id: u64) -> Option<u32> {
        let wanted = if offered {
            OutputKind::OfferedHtlc { htlc_id }
        } else {
            OutputKind::ReceivedHtlc { htlc_id }
        };
        self.outputs
            .iter()
            .find(|o| o.kind == wanted)
            .map(|o| o.index)
    }
}

/// Why a commitment could not be built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommitmentError {
    /// The commitment number does not fit in 48 bits.
    CommitmentNumberTooLarge {
        /// The number given.
        commitment_number: u64,
    },
    /// Two HTLCs in the same direction share an id.
    DuplicateHtlc {
        /// The id.
        htlc_id: u64,
        /// Whether they were offered by the holder.
        offered: bool,
    },
    /// The balances and HTLCs add up to more than `u64::MAX` millisatoshis.
    BalanceOverflow,
    /// The balances and HTLCs add up to more than the funding output.
    BalanceExceedsFunding {
        /// `to_local + to_remote + HTLCs`, in millisatoshis.
        balance_msat: u64,
        /// The funding value in millisatoshis (saturated).
        funding_msat: u64,
    },
    /// The outputs (anchors included) add up to more than the funding output: the funder
    /// cannot pay for the anchors.
    OutputsExceedFunding {
        /// The sum of the outputs.
        outputs_sat: u64,
        /// The funding value.
        funding_sat: u64,
    },
    /// A zero-fee commitment with a non-zero `feerate_per_kw` (BOLT 2: it MUST be 0).
    NonZeroFeerate {
        /// The feerate given.
        feerate_per_kw: u32,
    },
}

impl std::fmt::Display for CommitmentError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CommitmentError::CommitmentNumberTooLarge { commitment_number } => {
                write!(f, "commitment number {commitment_number} exceeds 48 bits")
            }
            CommitmentError::DuplicateHtlc { htlc_id, offered } => {
                let dir = if *offered { "offered" } else { "received" };
                write!(f, "duplicate {dir} htlc id {htlc_id}")
            }
            CommitmentError::BalanceOverflow => {
                f.write_str("balances and htlcs overflow a u64 of millisatoshis")
            }
            CommitmentError::BalanceExceedsFunding {
                balance_msat,
                funding_msat,
            } => write!(
                f,
                "balances and htlcs total {balance_msat} msat, more than the funding {funding_msat} msat"
            ),
            CommitmentError::OutputsExceedFunding {
                outputs_sat,
                funding_sat,
            } => write!(
                f,
                "outputs total {outputs_sat} sat, more than the funding {funding_sat} sat"
            ),
            CommitmentError::NonZeroFeerate { feerate_per_kw } => write!(
                f,
                "zero-fee commitment with feerate_per_kw {feerate_per_kw}, which must be 0"
            ),
        }
    }
}

impl std::error::Error for CommitmentError {}

fn check_spec(spec: &CommitmentSpec) -> Result<(), CommitmentError> {
    if spec.commitment_number > MAX_COMMITMENT_NUMBER {
        return Err(CommitmentError::CommitmentNumberTooLarge {
            commitment_number: spec.commitment_number,
        });
    }
    if spec.channel_type.zero_fee_commitment() && spec.feerate_per_kw != 0 {
        return Err(CommitmentError::NonZeroFeerate {
            feerate_per_kw: spec.feerate_per_kw,
        });
    }
    let mut seen = std::collections::BTreeSet::new();
    let mut balance_msat = spec
        .to_local_msat
        .checked_add(spec.to_remote_msat)
        .ok_or(CommitmentError::BalanceOverflow)?;
    for htlc in &spec.htlcs {
        if !seen.insert((htlc.offered, htlc.id)) {
            return Err(CommitmentError::DuplicateHtlc {
                htlc_id: htlc.id,
                offered: htlc.offered,
            });
        }
        balance_msat = balance_msat
            .checked_add(htlc.amount_msat)
            .ok_or(CommitmentError::BalanceOverflow)?;
    }
    let funding_msat = spec.funding_sat.saturating_mul(1000);
    if spec.funding_sat > u64::MAX / 1000 || balance_msat > funding_msat {
        return Err(CommitmentError::BalanceExceedsFunding {
            balance_msat,
            funding_msat,
        });
    }
    Ok(())
}

/// Build the holder's commitment transaction described by `spec` (BOLT 3 "Commitment Transaction
/// Construction"): trim HTLCs, take the base fee (and both anchors) from the funder, add the
/// untrimmed HTLC outputs, the balances at or above the dust limit and the anchors (the two keyed
/// anchors, or the one shared pay-to-anchor of a zero-fee commitment, which pays no base fee and
/// must have `feerate_per_kw` 0), and sort the outputs by value, scriptPubKey and then
/// `cltv_expiry`.
///
/// A funder balance that cannot cover the fee is omitted (its value goes to fees), not an error.
pub fn build_commitment(spec: &CommitmentSpec) -> Result<BuiltCommitment, CommitmentError> {
    check_spec(spec)?;
    let channel_type = spec.channel_type;

    let mut candidates = Vec::new();
    let mut trimmed_htlcs = Vec::new();
    for htlc in &spec.htlcs {
        let trimmed = is_trimmed(
            htlc.offered,
            htlc.amount_msat,
            spec.dust_limit_sat,
            spec.feerate_per_kw,
            channel_type,
        );
        if trimmed {
            trimmed_htlcs.push(*htlc);
            continue;
        }
        candidates.push(htlc_candidate(spec, htlc));
    }
    let untrimmed = candidates.len();

    let base_fee_sat = commitment_fee_sat(spec.feerate_per_kw, channel_type, untrimmed);
    let anchors_sat = if channel_type.has_keyed_anchors() {
        2 * ANCHOR_OUTPUT_SAT
    } else {
        0
    };
    let funder_cost_msat = base_fee_sat
        .saturating_add(anchors_sat)
        .saturating_mul(1000);
    let (to_local_msat, to_remote_msat) = if spec.holder_is_funder {
        (
            spec.to_local_msat.saturating_sub(funder_cost_msat),
            spec.to_remote_msat,
        )
    } else {
        (
            spec.to_local_msat,
            spec.to_remote_msat.saturating_sub(funder_cost_msat),
        )
    };

    let to_local_sat = to_local_msat / 1000;
    let has_to_local = to_local_sat >= spec.dust_limit_sat;
    if has_to_local {
        candidates.push(to_local_candidate(spec, to_local_sat));
    }
    let to_remote_sat = to_remote_msat / 1000;
    let has_to_remote = to_remote_sat >= spec.dust_limit_sat;
    if has_to_remote {
        candidates.push(to_remote_candidate(spec, to_remote_sat));
    }
    if channel_type.has_keyed_anchors() {
        for (has_main, holders) in [(has_to_local, true), (has_to_remote, false)] {
            if has_main || untrimmed > 0 {
                candidates.push(anchor_candidate(spec, holders));
            }
        }
    }

    if channel_type.has_shared_anchor() {
        candidates.push(shared_anchor(spec.funding_sat, &candidates));
    }

    // BIP 69 with the BOLT 3 cltv tie-break; the kind (and with it the HTLC id) makes the
    // order total, so identical HTLC outputs still come out in one deterministic order.
    candidates.sort_by(|a, b| {
        a.value_sat
            .cmp(&b.value_sat)
            .then_with(|| a.script_pubkey.as_bytes().cmp(b.script_pubkey.as_bytes()))
            .then_with(|| a.cltv_expiry.cmp(&b.cltv_expiry))
            .then_with(|| a.kind.cmp(&b.kind))
    });

    let outputs_sat = candidates
        .iter()
        .try_fold(0u64, |acc, c| acc.checked_add(c.value_sat))
        .unwrap_or(u64::MAX);
    let fee_sat =
        spec.funding_sat
            .checked_sub(outputs_sat)
            .ok_or(CommitmentError::OutputsExceedFunding {
                outputs_sat,
                funding_sat: spec.funding_sat,
            })?;

    let (lock_time, sequence) =
        encode_commitment_number(spec.commitment_number, spec.obscuring_factor);
    let mut tx = Transaction {
        version: channel_type.tx_version(),
        lock_time,
        input: vec![TxIn {
            previous_output: spec.funding_outpoint,
            script_sig: ScriptBuf::new(),
            sequence,
            witness: Witness::new(),
        }],
        output: Vec::with_capacity(candidates.len()),
    };
    let mut outputs = Vec::with_capacity(candidates.len());
    for (index, c) in (0u32..).zip(candidates) {
        tx.output.push(TxOut {
            value: Amount::from_sat(c.value_sat),
            script_pubkey: c.script_pubkey,
        });
        outputs.push(CommitmentOutput {
            index,
            value_sat: c.value_sat,
            kind: c.kind,
            witness_script: c.witness_script,
        });
    }

    Ok(BuiltCommitment {
        tx,
        outputs,
        trimmed_htlcs,
        fee_sat,
        base_fee_sat,
    })
}

/// The witness spending the 2-of-2 funding output: `0 <sig_pk1> <sig_pk2> <funding_script>`,
/// signatures in the order of their keys in [`scripts::funding_script`].
pub fn funding_witness(
    local_funding_pubkey: &PublicKey,
    local_sig: &Signature,
    remote_funding_pubkey: &PublicKey,
    remote_sig: &Signature,
) -> Witness {
    let (first, second) = if local_funding_pubkey.serialize() <= remote_funding_pubkey.serialize() {
        (local_sig, remote_sig)
    } else {
        (remote_sig, local_sig)
    };
    let mut witness = Witness::new();
    witness.push(Vec::<u8>::new());
    witness.push_ecdsa_signature(first);
    witness.push_ecdsa_signature(second);
    witness.push(scripts::funding_script(local_funding_pubkey, remote_funding_pubkey).as_bytes());
    witness
}

/// Sign input 0 of a commitment (or any transaction spending the funding output) with a funding
/// key, `SIGHASH_ALL`.
pub fn sign_commitment(
    tx: &Transaction,
    funding_script: &Script,
    funding_sat: u64,
    secret: &SecretKey,
) -> Result<Signature, SighashError> {
    sign::sign_p2wsh(
        tx,
        0,
        funding_script,
        Amount::from_sat(funding_sat),
        EcdsaSighashType::All,
        secret,
    )
}
