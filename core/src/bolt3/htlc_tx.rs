//! Second-level HTLC transactions (BOLT 3 "HTLC-Timeout and HTLC-Success Transactions"): the
//! 2-of-2 pre-signed transactions through which a commitment's holder claims its HTLC outputs,
//! paying into a delayed, revocable `to_local`-style output.

use bitcoin::absolute::LockTime;
use bitcoin::ecdsa::Signature;
use bitcoin::sighash::EcdsaSighashType;
use bitcoin::{
    Amount, OutPoint, Script, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Txid, Witness,
};

use super::commitment::{
    htlc_success_fee_sat, htlc_timeout_fee_sat, BuiltCommitment, CommitmentHtlc, CommitmentSpec,
    OutputKind,
};
use super::{scripts, ChannelType, CommitmentKeys, PaymentPreimage};

/// Why a second-level HTLC transaction could not be built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HtlcTxError {
    /// HTLC-timeout for a received HTLC, or HTLC-success for an offered one.
    WrongDirection {
        /// The HTLC's id.
        htlc_id: u64,
        /// Whether the holder offered it.
        offered: bool,
    },
    /// The HTLC cannot pay the second-level fee (it would have been trimmed).
    AmountBelowFee {
        /// The HTLC's id.
        htlc_id: u64,
        /// Its amount, rounded down to satoshis.
        amount_sat: u64,
        /// The fee the transaction must pay.
        fee_sat: u64,
    },
}

impl std::fmt::Display for HtlcTxError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HtlcTxError::WrongDirection { htlc_id, offered } => {
                let (dir, tx) = if *offered {
                    ("offered", "htlc-success")
                } else {
                    ("received", "htlc-timeout")
                };
                write!(f, "htlc {htlc_id} is {dir}: no {tx} transaction for it")
            }
            HtlcTxError::AmountBelowFee {
                htlc_id,
                amount_sat,
                fee_sat,
            } => write!(
                f,
                "htlc {htlc_id} of {amount_sat} sat cannot pay a second-level fee of {fee_sat} sat"
            ),
        }
    }
}

impl std::error::Error for HtlcTxError {}

/// The sighash type of the counterparty's signature on the holder's HTLC transactions:
/// `SIGHASH_ALL`, or `SIGHASH_SINGLE|SIGHASH_ANYONECANPAY` with anchors or zero-fee commitments
/// (so the holder can add fee inputs and outputs). The holder's own signature is always
/// `SIGHASH_ALL`. (Simple taproot signs with BIP 340 instead: `TapSighashType::SinglePlusAnyoneCanPay`
/// for the counterparty, `Default` for the holder — see [`super::taproot::witness`].)
pub fn remote_htlc_sighash_type(channel_type: ChannelType) -> EcdsaSighashType {
    if channel_type.zero_fee_htlc_txs() {
        EcdsaSighashType::SinglePlusAnyoneCanPay
    } else {
        EcdsaSighashType::All
    }
}

/// The witness script of an HTLC output: offered or received per [`CommitmentHtlc::offered`].
/// P2WSH channel types only: a simple taproot HTLC output has two leaves instead, built by
/// [`super::taproot::offered_htlc`] / [`super::taproot::accepted_htlc`] (for it this returns the
/// P2WSH script of the same keys, which no simple taproot commitment contains).
pub fn htlc_witness_script(
    htlc: &CommitmentHtlc,
    keys: &CommitmentKeys,
    channel_type: ChannelType,
) -> ScriptBuf {
    if htlc.offered {
        scripts::offered_htlc_script(keys, &htlc.payment_hash, channel_type)
    } else {
        scripts::received_htlc_script(keys, &htlc.payment_hash, htlc.cltv_expiry, channel_type)
    }
}

struct SecondLevel {
    commitment_txid: Txid,
    htlc_output_index: u32,
    value_sat: u64,
    lock_time: LockTime,
    channel_type: ChannelType,
}

/// The output of both second-level transactions: P2WSH of the holder's `to_local` script, or
/// (simple taproot) P2TR of `revocation_pubkey` over the `to_self_delay` leaf.
pub fn second_level_script_pubkey(
    keys: &CommitmentKeys,
    to_self_delay: u16,
    channel_type: ChannelType,
) -> ScriptBuf {
    if channel_type.is_taproot() {
        return super::taproot::commitment::second_level_script_pubkey(keys, to_self_delay);
    }
    let output_script = scripts::to_local_script(
        &keys.revocation_pubkey,
        to_self_delay,
        &keys.local_delayed_pubkey,
    );
    output_script.to_p2wsh()
}

fn second_level_tx(level: SecondLevel, keys: &CommitmentKeys, to_self_delay: u16) -> Transaction {
    let script_pubkey = second_level_script_pubkey(keys, to_self_delay, level.channel_type);
    Transaction {
        version: level.channel_type.tx_version(),
        lock_time: level.lock_time,
        input: vec![TxIn {
            previous_output: OutPoint {
                txid: level.commitment_txid,
                vout: level.htlc_output_index,
            },
            script_sig: ScriptBuf::new(),
            sequence: input_sequence(level.channel_type),
            witness: Witness::new(),
        }],
        output: vec![TxOut {
            value: Amount::from_sat(level.value_sat),
            script_pubkey,
        }],
    }
}

/// nSequence 1 with `option_anchors` and simple taproot (the HTLC outputs carry `1 OP_CSV`), 0
/// otherwise — zero-fee commitments included (BOLT 3 "HTLC-Timeout and HTLC-Success
/// Transactions"; the extension's "HTLC-Success/HTLC-Timeout Transactions": "sequence: 1").
fn input_sequence(channel_type: ChannelType) -> Sequence {
    if channel_type.htlc_tx_sequence_one() {
        Sequence(1)
    } else {
        Sequence(0)
    }
}

fn value_after_fee(htlc: &CommitmentHtlc, fee_sat: u64) -> Result<u64, HtlcTxError> {
    let amount_sat = htlc.amount_msat / 1000;
    amount_sat
        .checked_sub(fee_sat)
        .ok_or(HtlcTxError::AmountBelowFee {
            htlc_id: htlc.id,
            amount_sat,
            fee_sat,
        })
}

/// The unsigned HTLC-timeout transaction for an HTLC the holder offered: version 2 (3 with
/// zero-fee commitments), nLockTime `cltv_expiry`, nSequence 0 (1 with anchors), one output of the HTLC amount minus the
/// HTLC-timeout fee to P2WSH of the holder's `to_local` script (see [`second_level_script_pubkey`];
/// simple taproot: nSequence 1, no fee, a P2TR output).
pub fn build_htlc_timeout(
    commitment_txid: Txid,
    htlc_output_index: u32,
    htlc: &CommitmentHtlc,
    keys: &CommitmentKeys,
    to_self_delay: u16,
    feerate_per_kw: u32,
    channel_type: ChannelType,
) -> Result<Transaction, HtlcTxError> {
    if !htlc.offered {
        return Err(HtlcTxError::WrongDirection {
            htlc_id: htlc.id,
            offered: htlc.offered,
        });
    }
    let value_sat = value_after_fee(htlc, htlc_timeout_fee_sat(feerate_per_kw, channel_type))?;
    let level = SecondLevel {
        commitment_txid,
        htlc_output_index,
        value_sat,
        lock_time: LockTime::from_consensus(htlc.cltv_expiry),
        channel_type,
    };
    Ok(second_level_tx(level, keys, to_self_delay))
}

/// The unsigned HTLC-success transaction for an HTLC the holder received: version 2 (3 with
/// zero-fee commitments), nLockTime 0, nSequence 0 (1 with anchors), one output of the HTLC amount minus the HTLC-success fee to
/// P2WSH of the holder's `to_local` script (see [`second_level_script_pubkey`]; simple taproot:
/// nSequence 1, no fee, a P2TR output).
pub fn build_htlc_success(
    commitment_txid: Txid,
    htlc_output_index: u32,
    htlc: &CommitmentHtlc,
    keys: &CommitmentKeys,
    to_self_delay: u16,
    feerate_per_kw: u32,
    channel_type: ChannelType,
) -> Result<Transaction, HtlcTxError> {
    if htlc.offered {
        return Err(HtlcTxError::WrongDirection {
            htlc_id: htlc.id,
            offered: htlc.offered,
        });
    }
    let value_sat = value_after_fee(htlc, htlc_success_fee_sat(feerate_per_kw, channel_type))?;
    let level = SecondLevel {
        commitment_txid,
        htlc_output_index,
        value_sat,
        lock_time: LockTime::ZERO,
        channel_type,
    };
    Ok(second_level_tx(level, keys, to_self_delay))
}

/// The witness of a second-level HTLC transaction:
/// `0 <remote_sig> <local_sig> <preimage or empty> <htlc_witness_script>`. Each signature is
/// serialised with its own sighash type byte.
pub fn htlc_tx_witness(
    remote_sig: &Signature,
    local_sig: &Signature,
    preimage: Option<&PaymentPreimage>,
    htlc_witness_script: &Script,
) -> Witness {
    let mut witness = Witness::new();
    witness.push(Vec::<u8>::new());
    witness.push_ecdsa_signature(remote_sig);
    witness.push_ecdsa_signature(local_sig);
    match preimage {
        Some(preimage) => witness.push(preimage.0),
        None => witness.push(Vec::<u8>::new()),
    }
    witness.push(htlc_witness_script.as_bytes());
    witness
}

/// The signature shared by [`build_htlc_timeout`] and [`build_htlc_success`].
type SecondLevelBuilder = fn(
    Txid,
    u32,
    &CommitmentHtlc,
    &CommitmentKeys,
    u16,
    u32,
    ChannelType,
) -> Result<Transaction, HtlcTxError>;

/// The unsigned second-level transaction of every untrimmed HTLC of `built` (which must have
/// been built from `spec`), with the HTLC, in commitment output order — the order of the
/// counterparty's `htlc_signatures`.
///
/// An untrimmed HTLC always covers its second-level fee, so every HTLC output of a `built` made
/// from `spec` yields a transaction; an HTLC output with no matching HTLC in `spec` (a `built`
/// from another spec) is skipped.
pub fn htlc_txs_for_commitment(
    built: &BuiltCommitment,
    spec: &CommitmentSpec,
) -> Vec<(CommitmentHtlc, Transaction)> {
    let commitment_txid = built.tx.compute_txid();
    let find = |offered: bool, id: u64| {
        spec.htlcs
            .iter()
            .find(|h| h.offered == offered && h.id == id)
    };
    built
        .outputs
        .iter()
        .filter_map(|output| {
            let (htlc, build): (_, SecondLevelBuilder) = match output.kind {
                OutputKind::OfferedHtlc { htlc_id } => (find(true, htlc_id)?, build_htlc_timeout),
                OutputKind::ReceivedHtlc { htlc_id } => (find(false, htlc_id)?, build_htlc_success),
                _ => return None,
            };
            let tx = build(
                commitment_txid,
                output.index,
                htlc,
                &spec.keys,
                spec.to_self_delay,
                spec.feerate_per_kw,
                spec.channel_type,
            )
            .ok()?;
            Some((*htlc, tx))
        })
        .collect()
}
