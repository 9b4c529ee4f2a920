//! Justice on a revoked simple taproot commitment of the peer's: every output the revocation
//! secret makes ours, in one transaction — `to_local` by its revoke leaf (a script path:
//! `<local_delayedpubkey> OP_DROP <revocation_pubkey> OP_CHECKSIG`, extension "To Local
//! Outputs"), each HTLC output by the revocation key path (`revocation_pubkey` tweaked with the
//! HTLC's tap root, "Offered HTLCs", "Accepted HTLCs"), and the output of a second-level HTLC
//! transaction the peer got confirmed first, by the same key path over its delay leaf's root
//! ("HTLC Second Level Transactions"). Anchors and our own `to_remote` are not justice (the
//! latter is [`super::taproot_sweep`]'s).
//!
//! Each input is signed with the revocation key (`SigningKey::Channel` at
//! `Basepoint::Revocation`, tweaked with the commitment's per-commitment secret), `SIGHASH_DEFAULT`
//! over every prevout. No relative or absolute lock applies to these paths: the justice
//! transaction can confirm in the block after the breach.
//!
//! Standalone, like [`super::taproot_sweep`]: the channel arbitrator does not plan it yet
//! (simple taproot channels are refused at registration), so racing the peer's second-level
//! transactions and fee bumping are not done here.

use bitcoin::absolute::LockTime;
use bitcoin::{FeeRate, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut};

use super::taproot_tx::{claim_tx, max_signed_weight};
use crate::action::taproot::TAPROOT_SIGHASH;
use crate::action::{
    Basepoint, KeyTweak, SchnorrInputSignature, SigningKey, TapSignPath, TaprootSignInput,
    TaprootSignRequest,
};
use crate::bolt3::taproot::weights::{KEY_PATH_WITNESS_WEIGHT, TO_LOCAL_REVOKE_WITNESS_WEIGHT};
use crate::bolt3::taproot::witness::{revocation_key_path, script_path_witness};
use crate::close::taproot::{
    TapKeySpend, TapLeafSpend, TaprootContract, TaprootHtlcOutput, TaprootOutput,
};
use crate::types::{ChannelId, RawTx, RequestId};

/// Why a justice transaction cannot be built as asked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TaprootJusticeError {
    /// The contract is not of a revoked commitment of the peer's.
    NotRevoked {
        /// The output.
        vout: u32,
    },
    /// The contract's output is not in the transaction given.
    MissingOutput {
        /// The output.
        vout: u32,
    },
    /// The second-level output is not the one the HTLC's second-level transaction pays.
    NotSecondLevelOutput {
        /// The output.
        vout: u32,
    },
    /// No output of the close is ours by revocation.
    Nothing,
    /// The fee at this rate leaves less than the destination's dust limit.
    BelowDust {
        /// The inputs' total value.
        value_sat: u64,
        /// The fee.
        fee_sat: u64,
    },
    /// A signature is missing for an input, or names an input the transaction does not have.
    Signatures {
        /// The input.
        input: u32,
    },
}

impl std::fmt::Display for TaprootJusticeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "taproot justice: {self:?}")
    }
}

impl std::error::Error for TaprootJusticeError {}

/// How one input is taken by revocation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JusticePath {
    /// `to_local`'s revoke leaf (script path).
    RevokeLeaf(TapLeafSpend),
    /// The revocation key path of an HTLC or second-level output.
    KeyPath(TapKeySpend),
}

impl JusticePath {
    /// The witness's maximum weight (`taproot::weights`).
    pub fn witness_weight(&self) -> u64 {
        match self {
            JusticePath::RevokeLeaf(_) => TO_LOCAL_REVOKE_WITNESS_WEIGHT as u64,
            JusticePath::KeyPath(_) => KEY_PATH_WITNESS_WEIGHT as u64,
        }
    }

    fn sign_path(&self) -> TapSignPath {
        match self {
            JusticePath::RevokeLeaf(leaf) => leaf.into(),
            JusticePath::KeyPath(key) => key.into(),
        }
    }
}

/// One output taken by revocation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JusticeInput {
    /// The output.
    pub outpoint: OutPoint,
    /// The output itself (a BIP 341 signature commits to every prevout).
    pub prevout: TxOut,
    /// How it is spent.
    pub path: JusticePath,
}

/// The justice transaction of one breach, before it is built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaprootJustice {
    /// Its inputs, in transaction order.
    pub inputs: Vec<JusticeInput>,
    /// The revocation key every input is signed with.
    pub key: SigningKey,
}

/// The justice of a revoked commitment `close` of the peer's, from its contracts
/// (`close::taproot`, built from the revoked log entry or the revealed secret): its `to_local`
/// and every HTLC output. `per_commitment_secret` is the one the peer revealed for it.
pub fn taproot_justice(
    channel: ChannelId,
    close: &Transaction,
    contracts: &[TaprootContract],
    per_commitment_secret: [u8; 32],
) -> Result<TaprootJustice, TaprootJusticeError> {
    let txid = close.compute_txid();
    let mut inputs = Vec::new();
    for contract in contracts {
        let vout = contract.vout;
        let path = match &contract.output {
            TaprootOutput::ToLocal { revoke, .. } => JusticePath::RevokeLeaf(revoke.clone()),
            TaprootOutput::Htlc(h) => JusticePath::KeyPath(h.revocation),
            // Anchors stay with their owners (or anyone after 16 blocks); `to_remote` is our
            // balance, swept without revocation.
            TaprootOutput::Anchor { .. } | TaprootOutput::ToRemote { .. } => continue,
        };
        // The holder's outputs of a revoked commitment of the peer's: ours by revocation.
        if !contract.revoked {
            return Err(TaprootJusticeError::NotRevoked { vout });
        }
        let prevout = close
            .output
            .get(vout as usize)
            .cloned()
            .ok_or(TaprootJusticeError::MissingOutput { vout })?;
        inputs.push(JusticeInput {
            outpoint: OutPoint::new(txid, vout),
            prevout,
            path,
        });
    }
    if inputs.is_empty() {
        return Err(TaprootJusticeError::Nothing);
    }
    Ok(TaprootJustice {
        inputs,
        key: SigningKey::Channel {
            channel,
            basepoint: Basepoint::Revocation,
            tweak: KeyTweak::Revocation {
                per_commitment_secret,
            },
        },
    })
}

/// The output `vout` of `second_level` — the peer's HTLC-timeout or HTLC-success transaction of
/// the revoked HTLC `htlc` — taken by its revocation key path. Its scriptPubKey must be the one
/// `htlc`'s second-level output has.
pub fn second_level_justice_input(
    second_level: &Transaction,
    vout: u32,
    htlc: &TaprootHtlcOutput,
) -> Result<JusticeInput, TaprootJusticeError> {
    let prevout = second_level
        .output
        .get(vout as usize)
        .cloned()
        .ok_or(TaprootJusticeError::MissingOutput { vout })?;
    if prevout.script_pubkey != htlc.second_level.script_pubkey {
        return Err(TaprootJusticeError::NotSecondLevelOutput { vout });
    }
    Ok(JusticeInput {
        outpoint: OutPoint::new(second_level.compute_txid(), vout),
        prevout,
        path: JusticePath::KeyPath(htlc.second_level.revocation),
    })
}

impl TaprootJustice {
    /// The unsigned justice transaction to `destination` at `rate`: version 2, locktime 0, every
    /// input final-but-replaceable (`0xfffffffd`: no path here has a lock), one output; the fee
    /// on the signed weight's maximum.
    pub fn tx(
        &self,
        destination: ScriptBuf,
        rate: FeeRate,
    ) -> Result<Transaction, TaprootJusticeError> {
        let inputs = self
            .inputs
            .iter()
            .map(|i| TxIn {
                previous_output: i.outpoint,
                sequence: Sequence::ENABLE_RBF_NO_LOCKTIME,
                ..TxIn::default()
            })
            .collect();
        let value: u64 = self.inputs.iter().map(|i| i.prevout.value.to_sat()).sum();
        claim_tx(
            inputs,
            LockTime::ZERO,
            value,
            self.witnesses_wu(),
            destination,
            rate,
        )
        .map_err(|d| TaprootJusticeError::BelowDust {
            value_sat: d.value_sat,
            fee_sat: d.fee_sat,
        })
    }

    fn witnesses_wu(&self) -> u64 {
        self.inputs.iter().map(|i| i.path.witness_weight()).sum()
    }

    /// The weight of `tx` (this justice transaction, unsigned) once signed, at most: the
    /// unsigned weight, 2 for the segwit marker and flag, each input's witness maximum.
    pub fn max_weight(&self, tx: &Transaction) -> u64 {
        max_signed_weight(tx, self.witnesses_wu())
    }

    /// The BIP 340 request that signs every input of `tx` with the revocation key.
    pub fn sign_request(&self, request: RequestId, tx: &Transaction) -> TaprootSignRequest {
        TaprootSignRequest {
            request,
            tx: RawTx(tx.clone()),
            prevouts: self.inputs.iter().map(|i| i.prevout.clone()).collect(),
            inputs: (0u32..)
                .zip(&self.inputs)
                .map(|(input, i)| TaprootSignInput {
                    input,
                    path: i.path.sign_path(),
                    sighash: TAPROOT_SIGHASH,
                    key: self.key.clone(),
                })
                .collect(),
        }
    }

    /// `tx` with every input's witness: `<sig> <revoke leaf> <control block>` for `to_local`,
    /// `<sig>` for a key path. Every input needs exactly its signature.
    pub fn finish(
        &self,
        mut tx: Transaction,
        signatures: &[SchnorrInputSignature],
    ) -> Result<Transaction, TaprootJusticeError> {
        if let Some(s) = signatures
            .iter()
            .find(|s| s.input as usize >= self.inputs.len())
        {
            return Err(TaprootJusticeError::Signatures { input: s.input });
        }
        for ((n, input), txin) in (0u32..).zip(&self.inputs).zip(tx.input.iter_mut()) {
            let sig = signatures
                .iter()
                .find(|s| s.input == n)
                .ok_or(TaprootJusticeError::Signatures { input: n })?
                .signature;
            txin.witness = match &input.path {
                JusticePath::RevokeLeaf(leaf) => {
                    script_path_witness(&[&sig.serialize()], &leaf.leaf, &leaf.control_block)
                }
                JusticePath::KeyPath(_) => revocation_key_path(&sig),
            };
        }
        Ok(tx)
    }
}
