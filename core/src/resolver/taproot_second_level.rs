//! Our second-level HTLC transactions on our own simple taproot commitment, completed: an HTLC we
//! offered by its timeout leaf (the HTLC-timeout transaction: witness `<remote_sig> <local_sig>
//! <leaf> <control block>`, "Offered HTLCs"), an HTLC we received by its success leaf with the
//! preimage (the HTLC-success transaction: `<remote_sig> <local_sig> <preimage> <leaf> <control
//! block>`, "Accepted HTLCs"). The peer's signature is the one it sent with `commitment_signed`,
//! `SIGHASH_SINGLE|SIGHASH_ANYONECANPAY` ("HTLC Second Level Transactions"); it is checked here
//! (BIP 340, over the leaf's script-path sighash, under the `remote_htlcpubkey` the leaf pushes)
//! before anything is signed. Ours is `SIGHASH_DEFAULT`.
//!
//! The transactions are the ones `close::taproot` rebuilt (`TaprootHtlcOutput::second_level_tx`:
//! version 2, nSequence 1, locktime `cltv_expiry` for a timeout, zero fee). Standalone: funding
//! them with a wallet input (which the peer's `ANYONECANPAY` signature allows) and the resolvers'
//! use of them are not done here.

use bitcoin::hashes::Hash;
use bitcoin::secp256k1::{Message, XOnlyPublicKey};
use bitcoin::sighash::{Prevouts, SighashCache};
use bitcoin::taproot::{LeafVersion, Signature, TapLeafHash};
use bitcoin::{OutPoint, Transaction, TxOut};

use crate::action::taproot::{SECOND_LEVEL_COUNTERPARTY_SIGHASH, TAPROOT_SIGHASH};
use crate::action::{
    Basepoint, KeyTweak, SigningKey, TapSignPath, TaprootSignInput, TaprootSignRequest,
};
use crate::bolt3::PaymentPreimage;
use crate::close::taproot::{TapLeafSpend, TaprootContract, TaprootOutput};
use crate::types::{ChannelId, Height, RawTx, RequestId};

/// Why our second-level transaction cannot be completed as asked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TaprootSecondLevelError {
    /// Not an HTLC output of our own unrevoked commitment (no rebuilt second-level transaction).
    NotOurs {
        /// The output.
        vout: u32,
    },
    /// An HTLC we received, without its preimage or with another one.
    Preimage {
        /// The output.
        vout: u32,
    },
    /// The contract's output is not in the closing transaction, or the second-level
    /// transaction does not spend it.
    MissingOutput {
        /// The output.
        vout: u32,
    },
    /// The peer's signature does not verify, or has another sighash type than
    /// `SIGHASH_SINGLE|SIGHASH_ANYONECANPAY`.
    BadPeerSignature {
        /// The output.
        vout: u32,
    },
    /// Without our per-commitment point our key cannot be derived.
    NoPerCommitmentPoint {
        /// The output.
        vout: u32,
    },
}

impl std::fmt::Display for TaprootSecondLevelError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "taproot second-level transaction: {self:?}")
    }
}

impl std::error::Error for TaprootSecondLevelError {}

/// One of our second-level HTLC transactions, with the peer's signature, before ours.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaprootSecondLevel {
    /// The commitment's HTLC output it spends.
    pub outpoint: OutPoint,
    /// That output (the one prevout).
    pub prevout: TxOut,
    /// The unsigned HTLC-timeout or HTLC-success transaction.
    pub tx: Transaction,
    /// The leaf it reveals: timeout (offered) or success (received).
    pub leaf: TapLeafSpend,
    /// The preimage, for an HTLC-success transaction.
    pub preimage: Option<PaymentPreimage>,
    /// The peer's signature (`SIGHASH_SINGLE|SIGHASH_ANYONECANPAY`), checked.
    pub peer_signature: Signature,
    /// The first height at which it can confirm: one block after the close (`1 OP_CSV`), and
    /// for a timeout the block after `cltv_expiry`.
    pub mature_at: Height,
    /// Our key in the leaf: the HTLC basepoint tweaked with our commitment's point.
    pub key: SigningKey,
}

/// Our second-level transaction for `contract`, an HTLC output of our commitment `close`
/// (confirmed at `close_height`), with the peer's signature for it and, for an HTLC we received,
/// its preimage.
pub fn taproot_second_level(
    channel: ChannelId,
    close: &Transaction,
    close_height: Height,
    contract: &TaprootContract,
    peer_signature: Signature,
    preimage: Option<PaymentPreimage>,
) -> Result<TaprootSecondLevel, TaprootSecondLevelError> {
    let vout = contract.vout;
    let not_ours = TaprootSecondLevelError::NotOurs { vout };
    let TaprootOutput::Htlc(h) = &contract.output else {
        return Err(not_ours);
    };
    let Some(tx) = h.second_level_tx.clone().filter(|_| !contract.revoked) else {
        return Err(not_ours);
    };
    let point = contract
        .per_commitment_point
        .ok_or(TaprootSecondLevelError::NoPerCommitmentPoint { vout })?;
    let outpoint = OutPoint::new(close.compute_txid(), vout);
    let prevout = close
        .output
        .get(vout as usize)
        .cloned()
        .filter(|_| tx.input.len() == 1 && tx.input[0].previous_output == outpoint)
        .ok_or(TaprootSecondLevelError::MissingOutput { vout })?;
    let after_close = close_height.saturating_add(1);
    let (leaf, preimage, mature_at) = if h.htlc.offered {
        let expiry = h.htlc.cltv_expiry.saturating_add(1);
        (&h.timeout, None, after_close.max(expiry))
    } else {
        let p = preimage
            .filter(|p| p.payment_hash() == h.htlc.payment_hash)
            .ok_or(TaprootSecondLevelError::Preimage { vout })?;
        (&h.success, Some(p), after_close)
    };
    let checked = peer_signature.sighash_type == SECOND_LEVEL_COUNTERPARTY_SIGHASH
        && verifies(&tx, &prevout, &leaf.leaf, &peer_signature);
    if !checked {
        return Err(TaprootSecondLevelError::BadPeerSignature { vout });
    }
    Ok(TaprootSecondLevel {
        outpoint,
        prevout,
        tx,
        leaf: leaf.clone(),
        preimage,
        peer_signature,
        mature_at,
        key: SigningKey::Channel {
            channel,
            basepoint: Basepoint::Htlc,
            tweak: KeyTweak::PerCommitmentPoint { point },
        },
    })
}

/// Whether `sig` is a BIP 340 signature of `tx`'s input 0 spending `prevout` by `leaf`, under
/// the leaf's `remote_htlcpubkey` (the last key before the final `OP_CHECKSIG` of both HTLC
/// leaves of our commitment: `... <local_htlcpubkey> OP_CHECKSIGVERIFY <remote_htlcpubkey>
/// OP_CHECKSIG`).
fn verifies(tx: &Transaction, prevout: &TxOut, leaf: &bitcoin::Script, sig: &Signature) -> bool {
    let bytes = leaf.as_bytes();
    let Some(key) = bytes
        .len()
        .checked_sub(33)
        .and_then(|at| bytes.get(at..at + 32))
        .and_then(|k| XOnlyPublicKey::from_slice(k).ok())
    else {
        return false;
    };
    let leaf_hash = TapLeafHash::from_script(leaf, LeafVersion::TapScript);
    let prevouts = [prevout.clone()];
    // ANYONECANPAY commits to this input's prevout only; `All` is what the cache wants given.
    let hash = SighashCache::new(tx).taproot_script_spend_signature_hash(
        0,
        &Prevouts::All(&prevouts),
        leaf_hash,
        sig.sighash_type,
    );
    let Ok(hash) = hash else {
        return false;
    };
    let msg = Message::from_digest(hash.to_byte_array());
    crate::bolt3::secp()
        .verify_schnorr(&sig.signature, &msg, &key)
        .is_ok()
}

impl TaprootSecondLevel {
    /// The BIP 340 request for our signature (`SIGHASH_DEFAULT`, the one prevout).
    pub fn sign_request(&self, request: RequestId) -> TaprootSignRequest {
        TaprootSignRequest {
            request,
            tx: RawTx(self.tx.clone()),
            prevouts: vec![self.prevout.clone()],
            inputs: vec![TaprootSignInput {
                input: 0,
                path: TapSignPath::from(&self.leaf),
                sighash: TAPROOT_SIGHASH,
                key: self.key.clone(),
            }],
        }
    }

    /// The transaction with its witness: `<remote_sig> <local_sig> [<preimage>] <leaf> <control
    /// block>`.
    pub fn finish(&self, ours: &Signature) -> Transaction {
        let mut tx = self.tx.clone();
        let (remote, local) = (self.peer_signature.serialize(), ours.serialize());
        let mut args: Vec<&[u8]> = vec![&remote, &local];
        if let Some(p) = &self.preimage {
            args.push(&p.0);
        }
        if let Some(input) = tx.input.first_mut() {
            input.witness = crate::bolt3::taproot::witness::script_path_witness(
                &args,
                &self.leaf.leaf,
                &self.leaf.control_block,
            );
        }
        tx
    }
}
