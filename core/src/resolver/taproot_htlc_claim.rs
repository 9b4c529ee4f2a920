//! Our direct claim of an HTLC output on a commitment of the peer's, simple taproot: an HTLC we
//! received by the success leaf of the peer's offered-HTLC output (`OP_SIZE 32 OP_EQUALVERIFY
//! OP_HASH160 <RIPEMD160(payment_hash)> OP_EQUALVERIFY <remote_htlcpubkey> OP_CHECKSIGVERIFY 1
//! OP_CSV`; witness `<sig> <preimage> <leaf> <control block>`, extension "Offered HTLCs"), and an
//! HTLC we offered by the timeout leaf of the peer's accepted-HTLC output (`<remote_htlcpubkey>
//! OP_CHECKSIGVERIFY 1 OP_CSV OP_VERIFY <cltv_expiry> OP_CLTV`; witness `<sig> <leaf> <control
//! block>`, nLockTime `cltv_expiry`, "Accepted HTLCs"). Both spend with nSequence 1 (the leaves'
//! `1 OP_CSV`); the key is our HTLC basepoint tweaked with the peer's per-commitment point
//! (`remote_htlcpubkey` of the peer's commitment).
//!
//! BOLT 5 ("HTLC Output Handling: Remote Commitment"): no second-level transaction on the peer's
//! commitment — we spend its HTLC outputs directly. Standalone, like [`super::taproot_sweep`]:
//! the contest resolvers and the sweeper do not use it yet.

use bitcoin::absolute::LockTime;
use bitcoin::taproot::Signature;
use bitcoin::{FeeRate, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut};

use super::taproot_tx::{claim_tx, max_signed_weight};
use crate::action::taproot::TAPROOT_SIGHASH;
use crate::action::{
    Basepoint, KeyTweak, SigningKey, TapSignPath, TaprootSignInput, TaprootSignRequest,
};
use crate::bolt3::taproot::weights::{
    ACCEPTED_TIMEOUT_WITNESS_WEIGHT, OFFERED_SUCCESS_WITNESS_WEIGHT,
};
use crate::bolt3::taproot::witness::script_path_witness;
use crate::bolt3::PaymentPreimage;
use crate::close::taproot::{TapLeafSpend, TaprootContract, TaprootOutput};
use crate::types::{ChannelId, Height, RawTx, RequestId};

/// Why an output cannot be claimed as an HTLC of ours on the peer's commitment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TaprootHtlcClaimError {
    /// Not an HTLC output.
    NotAnHtlc {
        /// The output.
        vout: u32,
    },
    /// On our own commitment: an HTLC there is claimed through our second-level transaction.
    OurCommitment {
        /// The output.
        vout: u32,
    },
    /// On a revoked commitment: the whole output is ours by revocation (justice).
    Revoked {
        /// The output.
        vout: u32,
    },
    /// An HTLC we received, claimed without its preimage.
    NoPreimage {
        /// The output.
        vout: u32,
    },
    /// A preimage that is not the HTLC's.
    WrongPreimage {
        /// The output.
        vout: u32,
    },
    /// Without the peer's per-commitment point our key cannot be derived.
    NoPerCommitmentPoint {
        /// The output.
        vout: u32,
    },
    /// The contract's output is not in the closing transaction.
    MissingOutput {
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

impl std::fmt::Display for TaprootHtlcClaimError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "taproot HTLC claim: {self:?}")
    }
}

impl std::error::Error for TaprootHtlcClaimError {}

/// Which leaf we claim by.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HtlcClaimLeaf {
    /// An HTLC we received: the success leaf, with its preimage.
    Success {
        /// The preimage.
        preimage: PaymentPreimage,
    },
    /// An HTLC we offered: the timeout leaf, after its expiry.
    Timeout {
        /// The HTLC's expiry: the claim's nLockTime.
        cltv_expiry: u32,
    },
}

/// Our claim of one HTLC output, before its transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaprootHtlcClaim {
    /// The output claimed.
    pub outpoint: OutPoint,
    /// The output itself (the one prevout the signature commits to).
    pub prevout: TxOut,
    /// The leaf revealed, with its control block.
    pub leaf: TapLeafSpend,
    /// Success (with the preimage) or timeout.
    pub by: HtlcClaimLeaf,
    /// The first height at which the claim can confirm: one block after the close (`1
    /// OP_CSV`), and for a timeout the block after `cltv_expiry` (BIP 65 locktime).
    pub mature_at: Height,
    /// The key the leaf checks.
    pub key: SigningKey,
}

/// Our claim of `contract`, an HTLC output of `close` (a commitment of the peer's confirmed at
/// `close_height`): by the success leaf with `preimage` if the peer offered it, by the timeout
/// leaf if we did.
pub fn taproot_remote_htlc_claim(
    channel: ChannelId,
    close: &Transaction,
    close_height: Height,
    contract: &TaprootContract,
    preimage: Option<PaymentPreimage>,
) -> Result<TaprootHtlcClaim, TaprootHtlcClaimError> {
    let vout = contract.vout;
    let TaprootOutput::Htlc(h) = &contract.output else {
        return Err(TaprootHtlcClaimError::NotAnHtlc { vout });
    };
    if h.second_level_tx.is_some() {
        return Err(TaprootHtlcClaimError::OurCommitment { vout });
    }
    if contract.revoked {
        return Err(TaprootHtlcClaimError::Revoked { vout });
    }
    let point = contract
        .per_commitment_point
        .ok_or(TaprootHtlcClaimError::NoPerCommitmentPoint { vout })?;
    let prevout = close
        .output
        .get(vout as usize)
        .cloned()
        .ok_or(TaprootHtlcClaimError::MissingOutput { vout })?;
    let after_close = close_height.saturating_add(1);
    // `offered` is from the holder's (the peer's) side: it offered the HTLC, we received it.
    let (leaf, by, mature_at) = if h.htlc.offered {
        let preimage = preimage.ok_or(TaprootHtlcClaimError::NoPreimage { vout })?;
        if preimage.payment_hash() != h.htlc.payment_hash {
            return Err(TaprootHtlcClaimError::WrongPreimage { vout });
        }
        (&h.success, HtlcClaimLeaf::Success { preimage }, after_close)
    } else {
        let cltv_expiry = h.htlc.cltv_expiry;
        let mature = after_close.max(cltv_expiry.saturating_add(1));
        (&h.timeout, HtlcClaimLeaf::Timeout { cltv_expiry }, mature)
    };
    Ok(TaprootHtlcClaim {
        outpoint: OutPoint::new(close.compute_txid(), vout),
        prevout,
        leaf: leaf.clone(),
        by,
        mature_at,
        key: SigningKey::Channel {
            channel,
            basepoint: Basepoint::Htlc,
            tweak: KeyTweak::PerCommitmentPoint { point },
        },
    })
}

impl TaprootHtlcClaim {
    /// The witness's maximum weight (`taproot::weights`).
    pub fn witness_weight(&self) -> u64 {
        match self.by {
            HtlcClaimLeaf::Success { .. } => OFFERED_SUCCESS_WITNESS_WEIGHT as u64,
            HtlcClaimLeaf::Timeout { .. } => ACCEPTED_TIMEOUT_WITNESS_WEIGHT as u64,
        }
    }

    /// The nLockTime: `cltv_expiry` for a timeout claim, 0 for a success claim.
    pub fn lock_time(&self) -> LockTime {
        match self.by {
            HtlcClaimLeaf::Success { .. } => LockTime::ZERO,
            HtlcClaimLeaf::Timeout { cltv_expiry } => {
                LockTime::from_height(cltv_expiry).unwrap_or(LockTime::ZERO)
            }
        }
    }

    /// The unsigned claim to `destination` at `rate`: version 2, our one input at nSequence 1,
    /// the fee on the signed weight's maximum.
    pub fn tx(
        &self,
        destination: ScriptBuf,
        rate: FeeRate,
    ) -> Result<Transaction, TaprootHtlcClaimError> {
        let input = TxIn {
            previous_output: self.outpoint,
            sequence: Sequence::from_height(1),
            ..TxIn::default()
        };
        let (value, weight) = (self.prevout.value.to_sat(), self.witness_weight());
        claim_tx(
            vec![input],
            self.lock_time(),
            value,
            weight,
            destination,
            rate,
        )
        .map_err(|d| TaprootHtlcClaimError::BelowDust {
            value_sat: d.value_sat,
            fee_sat: d.fee_sat,
        })
    }

    /// The weight of `tx` (this claim, unsigned) once signed, at most.
    pub fn max_weight(&self, tx: &Transaction) -> u64 {
        max_signed_weight(tx, self.witness_weight())
    }

    /// The BIP 340 request that signs `tx` (this claim, input 0) by the leaf.
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

    /// `tx` with its witness: `<sig> <preimage> <leaf> <control block>` or `<sig> <leaf>
    /// <control block>`.
    pub fn finish(&self, mut tx: Transaction, signature: &Signature) -> Transaction {
        let sig = signature.serialize();
        if let Some(input) = tx.input.first_mut() {
            let (leaf, cb) = (&self.leaf.leaf, &self.leaf.control_block);
            input.witness = match &self.by {
                HtlcClaimLeaf::Success { preimage } => {
                    script_path_witness(&[&sig, &preimage.0], leaf, cb)
                }
                HtlcClaimLeaf::Timeout { .. } => script_path_witness(&[&sig], leaf, cb),
            };
        }
        tx
    }
}
