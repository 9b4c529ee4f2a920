//! The commitment sweep of a simple taproot channel: our balance — `to_local` on our own
//! commitment by its delay leaf after `to_self_delay`, `to_remote` on a commitment of the peer's
//! by its `1 OP_CSV` leaf — from the output's [`TaprootContract`] (`close::taproot`): the
//! sweep's maturity, its one-input transaction at a fee rate (the witness weighed with
//! `taproot::weights`), the BIP 340 request that signs it (`SIGHASH_DEFAULT`, every prevout)
//! and its witness `<sig> <leaf> <control block>` (extension, "To Local Outputs", "To Remote
//! Outputs"). Also the output of our own second-level HTLC transaction, by its delay leaf after
//! `to_self_delay` ("HTLC Second Level Transactions").
//!
//! Standalone: [`super::commit_sweep`] and the sweeper do not use it yet (simple taproot
//! channels are refused at registration), so batching and fee bumping are not done here.

use bitcoin::absolute::LockTime;
use bitcoin::taproot::Signature;
use bitcoin::{FeeRate, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut};

use crate::action::taproot::TAPROOT_SIGHASH;
use crate::action::{
    Basepoint, KeyTweak, SigningKey, TapSignPath, TaprootSignInput, TaprootSignRequest,
};
use bitcoin::secp256k1::{Parity, PublicKey, XOnlyPublicKey};

use super::taproot_tx::{claim_tx, max_signed_weight};
use crate::bolt3::taproot::to_local;
use crate::bolt3::taproot::weights::{
    SECOND_LEVEL_DELAY_WITNESS_WEIGHT, TO_LOCAL_DELAY_WITNESS_WEIGHT, TO_REMOTE_WITNESS_WEIGHT,
};
use crate::bolt3::taproot::witness::script_path_witness;
use crate::close::taproot::{TapLeafSpend, TaprootContract, TaprootHtlcOutput, TaprootOutput};
use crate::types::{ChannelId, Height, Party, RawTx, RequestId};

/// Why an output cannot be swept as our taproot balance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TaprootSweepError {
    /// Not our `to_local` on our unrevoked commitment nor our `to_remote` (on any commitment of
    /// the peer's, revoked too).
    NotOurBalance {
        /// The output.
        vout: u32,
    },
    /// Our `to_local` without the commitment's per-commitment point (its key's tweak).
    NoPerCommitmentPoint {
        /// The output.
        vout: u32,
    },
    /// The contract's output is not in the closing transaction.
    MissingOutput {
        /// The output.
        vout: u32,
    },
    /// The output is not the second-level output of the HTLC given, or the delay is not its
    /// leaf's.
    NotSecondLevelOutput {
        /// The output.
        vout: u32,
    },
    /// The fee at this rate leaves less than the destination's dust limit.
    BelowDust {
        /// The output's value.
        value_sat: u64,
        /// The fee.
        fee_sat: u64,
    },
}

impl std::fmt::Display for TaprootSweepError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "taproot sweep: {self:?}")
    }
}

impl std::error::Error for TaprootSweepError {}

/// A sweep of our taproot balance, before its transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaprootSweep {
    /// The output swept.
    pub outpoint: OutPoint,
    /// The output itself (the one prevout the signature commits to).
    pub prevout: TxOut,
    /// The leaf revealed, with its control block.
    pub leaf: TapLeafSpend,
    /// The input's nSequence: the leaf's CSV (`to_self_delay`, or 1).
    pub sequence: Sequence,
    /// The first height at which the sweep can confirm (BIP 68: the close's height plus the CSV).
    pub mature_at: Height,
    /// The key the leaf checks.
    pub key: SigningKey,
    /// The witness's maximum weight (`taproot::weights`).
    pub witness_weight: u64,
}

/// The sweep of `contract` (an output of `close`, confirmed at `close_height`) if it is our
/// balance.
pub fn taproot_commit_sweep(
    channel: ChannelId,
    close: &Transaction,
    close_height: Height,
    contract: &TaprootContract,
) -> Result<TaprootSweep, TaprootSweepError> {
    let vout = contract.vout;
    // Our `to_remote` stays ours on a revoked commitment of the peer's; a revoked `to_local` of
    // ours would be the peer's to take (we never classify one into contracts).
    let revoked_to_local =
        contract.revoked && matches!(contract.output, TaprootOutput::ToLocal { .. });
    if contract.owner != Party::Local || revoked_to_local {
        return Err(TaprootSweepError::NotOurBalance { vout });
    }
    let prevout = close
        .output
        .get(vout as usize)
        .cloned()
        .ok_or(TaprootSweepError::MissingOutput { vout })?;
    let (leaf, csv, key, weight) = match &contract.output {
        TaprootOutput::ToLocal {
            to_self_delay,
            delay,
            ..
        } => {
            let point = contract
                .per_commitment_point
                .ok_or(TaprootSweepError::NoPerCommitmentPoint { vout })?;
            let key = SigningKey::Channel {
                channel,
                basepoint: Basepoint::DelayedPayment,
                tweak: KeyTweak::PerCommitmentPoint { point },
            };
            (delay, *to_self_delay, key, TO_LOCAL_DELAY_WITNESS_WEIGHT)
        }
        TaprootOutput::ToRemote { leaf } => {
            let key = SigningKey::Channel {
                channel,
                basepoint: Basepoint::Payment,
                tweak: KeyTweak::None,
            };
            (leaf, 1, key, TO_REMOTE_WITNESS_WEIGHT)
        }
        _ => return Err(TaprootSweepError::NotOurBalance { vout }),
    };
    Ok(TaprootSweep {
        outpoint: OutPoint::new(close.compute_txid(), vout),
        prevout,
        leaf: leaf.clone(),
        sequence: Sequence::from_height(csv),
        mature_at: close_height.saturating_add(u32::from(csv)),
        key,
        witness_weight: weight as u64,
    })
}

/// The sweep of output `vout` of `htlc_tx` — our own HTLC-timeout or HTLC-success transaction
/// of `htlc` on our commitment, confirmed at `confirmed_height` — by its delay leaf
/// `<local_delayedpubkey> OP_CHECKSIGVERIFY <to_self_delay> OP_CSV` (extension, "HTLC Second
/// Level Transactions"; the key `DelayedPayment` tweaked with our commitment's
/// `per_commitment_point`). The leaf must be the one for `to_self_delay` (the delay the peer
/// imposed on us).
pub fn taproot_second_level_sweep(
    channel: ChannelId,
    htlc_tx: &Transaction,
    vout: u32,
    confirmed_height: Height,
    htlc: &TaprootHtlcOutput,
    to_self_delay: u16,
    per_commitment_point: PublicKey,
) -> Result<TaprootSweep, TaprootSweepError> {
    let prevout = htlc_tx
        .output
        .get(vout as usize)
        .cloned()
        .ok_or(TaprootSweepError::MissingOutput { vout })?;
    let leaf = &htlc.second_level.delay;
    let key = leaf_key(&leaf.leaf).ok_or(TaprootSweepError::NotSecondLevelOutput { vout })?;
    let delay_leaf = to_local::to_delay_script(&key, to_self_delay);
    if prevout.script_pubkey != htlc.second_level.script_pubkey || delay_leaf != leaf.leaf {
        return Err(TaprootSweepError::NotSecondLevelOutput { vout });
    }
    Ok(TaprootSweep {
        outpoint: OutPoint::new(htlc_tx.compute_txid(), vout),
        prevout,
        leaf: leaf.clone(),
        sequence: Sequence::from_height(to_self_delay),
        mature_at: confirmed_height.saturating_add(u32::from(to_self_delay)),
        key: SigningKey::Channel {
            channel,
            basepoint: Basepoint::DelayedPayment,
            tweak: KeyTweak::PerCommitmentPoint {
                point: per_commitment_point,
            },
        },
        witness_weight: SECOND_LEVEL_DELAY_WITNESS_WEIGHT as u64,
    })
}

/// The key a delay leaf pushes first (x-only, as BIP 342 leaves hold keys), made a full point
/// with even parity only to rebuild the leaf: the leaf's bytes do not depend on the parity.
fn leaf_key(leaf: &ScriptBuf) -> Option<PublicKey> {
    let x = XOnlyPublicKey::from_slice(leaf.as_bytes().get(1..33)?).ok()?;
    Some(x.public_key(Parity::Even))
}

impl TaprootSweep {
    /// The unsigned sweep to `destination` at `rate`: version 2, locktime 0, our one input at
    /// the leaf's nSequence, the fee on the signed weight's maximum (the unsigned transaction's
    /// weight, 2 for the segwit marker and flag, the witness's maximum).
    pub fn tx(
        &self,
        destination: ScriptBuf,
        rate: FeeRate,
    ) -> Result<Transaction, TaprootSweepError> {
        let input = TxIn {
            previous_output: self.outpoint,
            sequence: self.sequence,
            ..TxIn::default()
        };
        let value = self.prevout.value.to_sat();
        claim_tx(
            vec![input],
            LockTime::ZERO,
            value,
            self.witness_weight,
            destination,
            rate,
        )
        .map_err(|d| TaprootSweepError::BelowDust {
            value_sat: d.value_sat,
            fee_sat: d.fee_sat,
        })
    }

    /// The weight of `tx` (this sweep, unsigned) once signed, at most.
    pub fn max_weight(&self, tx: &Transaction) -> u64 {
        max_signed_weight(tx, self.witness_weight)
    }

    /// The BIP 340 request that signs `tx` (this sweep, input 0).
    pub fn sign_request(&self, request: RequestId, tx: &Transaction) -> TaprootSignRequest {
        TaprootSignRequest {
            request,
            tx: RawTx(tx.clone()),
            prevouts: vec![self.prevout.clone()],
            inputs: vec![TaprootSignInput {
                input: 0,
                path: TapSignPath::from(&self.leaf),
                sighash: TAPROOT_SIGHASH,
                key: self.key.clone(),
            }],
        }
    }

    /// `tx` with its witness `<sig> <leaf> <control block>`.
    pub fn finish(&self, mut tx: Transaction, signature: &Signature) -> Transaction {
        if let Some(input) = tx.input.first_mut() {
            input.witness = script_path_witness(
                &[&signature.serialize()],
                &self.leaf.leaf,
                &self.leaf.control_block,
            );
        }
        tx
    }
}
