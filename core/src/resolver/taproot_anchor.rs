//! A simple taproot anchor spent ("Anchor Outputs"): our own anchor by its key path — the
//! internal key is `local_delayedpubkey` on our commitment, `remotepubkey` (our static payment
//! basepoint) on the peer's, tap-tweaked with the `OP_16 OP_CSV` leaf's root — to bump the
//! commitment (CPFP), witness `<sig>`; and any anchor by anyone through its `OP_16 OP_CSV` leaf
//! 16 blocks after the commitment confirmed (nSequence 16), witness `<leaf> <control block>`, no
//! signature.
//!
//! Standalone, like [`super::taproot_sweep`]: the CPFP child (`channel::anchor`) and the anchor
//! resolver do not use it yet.

use bitcoin::taproot::Signature;
use bitcoin::{OutPoint, Sequence, Transaction, TxOut, Witness};

use crate::action::taproot::TAPROOT_SIGHASH;
use crate::action::{
    Basepoint, KeyTweak, SigningKey, TapSignPath, TaprootSignInput, TaprootSignRequest,
};
use crate::bolt3::keys::derive_pubkey;
use crate::bolt3::taproot::weights::{ANCHOR_SWEEP_WITNESS_WEIGHT, KEY_PATH_WITNESS_WEIGHT};
use crate::bolt3::taproot::witness::{key_path_witness, script_path_witness};
use crate::bolt3::ChannelBasepoints;
use crate::close::taproot::{TapKeySpend, TapLeafSpend, TaprootContract, TaprootOutput};
use crate::types::{ChannelId, Height, RawTx, RequestId};

/// The relative delay after which anyone may spend a taproot anchor.
pub const ANYONE_CSV: u16 = 16;

/// Why an anchor cannot be spent as asked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TaprootAnchorError {
    /// Not an anchor output.
    NotAnAnchor {
        /// The output.
        vout: u32,
    },
    /// Not our anchor: its internal key is neither our payment basepoint nor our delayed
    /// payment key on this commitment.
    NotOurs {
        /// The output.
        vout: u32,
    },
    /// The contract's output is not in the closing transaction.
    MissingOutput {
        /// The output.
        vout: u32,
    },
}

impl std::fmt::Display for TaprootAnchorError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "taproot anchor: {self:?}")
    }
}

impl std::error::Error for TaprootAnchorError {}

/// How the anchor is spent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AnchorPath {
    /// Its owner's key path, with the key that signs it.
    Owner {
        /// The internal key and the tree's root.
        spend: TapKeySpend,
        /// Our key (before the tap tweak).
        key: SigningKey,
    },
    /// Anyone's `OP_16 OP_CSV` leaf.
    Anyone(TapLeafSpend),
}

/// One anchor input, before the transaction that spends it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaprootAnchorInput {
    /// The anchor.
    pub outpoint: OutPoint,
    /// The anchor output (330 sat).
    pub prevout: TxOut,
    /// How it is spent.
    pub path: AnchorPath,
    /// The input's nSequence: any (0) for the owner, 16 for anyone.
    pub sequence: Sequence,
    /// The first height it can be spent at: the commitment's own block for the owner (a child
    /// may confirm with its parent), 16 blocks after it for anyone.
    pub mature_at: Height,
}

/// Our anchor of `close` (`contract`), by its key path. `local` are our basepoints: the anchor
/// is ours if its internal key is our payment basepoint (the peer's commitment) or our delayed
/// payment key tweaked with the commitment's point (ours).
pub fn taproot_own_anchor(
    channel: ChannelId,
    close: &Transaction,
    close_height: Height,
    contract: &TaprootContract,
    local: &ChannelBasepoints,
) -> Result<TaprootAnchorInput, TaprootAnchorError> {
    let vout = contract.vout;
    let TaprootOutput::Anchor { key: spend, .. } = &contract.output else {
        return Err(TaprootAnchorError::NotAnAnchor { vout });
    };
    let key = if spend.internal_key == local.payment_basepoint {
        SigningKey::Channel {
            channel,
            basepoint: Basepoint::Payment,
            tweak: KeyTweak::None,
        }
    } else {
        let point = contract
            .per_commitment_point
            .ok_or(TaprootAnchorError::NotOurs { vout })?;
        let delayed = derive_pubkey(&local.delayed_payment_basepoint, &point)
            .map_err(|_| TaprootAnchorError::NotOurs { vout })?;
        if delayed != spend.internal_key {
            return Err(TaprootAnchorError::NotOurs { vout });
        }
        SigningKey::Channel {
            channel,
            basepoint: Basepoint::DelayedPayment,
            tweak: KeyTweak::PerCommitmentPoint { point },
        }
    };
    let path = AnchorPath::Owner { spend: *spend, key };
    anchor_input(close, vout, path, Sequence::ZERO, close_height)
}

/// Any anchor of `close` (`contract`) by its `OP_16 OP_CSV` leaf, 16 blocks after `close_height`.
pub fn taproot_anyone_anchor(
    close: &Transaction,
    close_height: Height,
    contract: &TaprootContract,
) -> Result<TaprootAnchorInput, TaprootAnchorError> {
    let vout = contract.vout;
    let TaprootOutput::Anchor { sweep, .. } = &contract.output else {
        return Err(TaprootAnchorError::NotAnAnchor { vout });
    };
    let mature_at = close_height.saturating_add(u32::from(ANYONE_CSV));
    let path = AnchorPath::Anyone(sweep.clone());
    anchor_input(
        close,
        vout,
        path,
        Sequence::from_height(ANYONE_CSV),
        mature_at,
    )
}

fn anchor_input(
    close: &Transaction,
    vout: u32,
    path: AnchorPath,
    sequence: Sequence,
    mature_at: Height,
) -> Result<TaprootAnchorInput, TaprootAnchorError> {
    let prevout = close
        .output
        .get(vout as usize)
        .cloned()
        .ok_or(TaprootAnchorError::MissingOutput { vout })?;
    Ok(TaprootAnchorInput {
        outpoint: OutPoint::new(close.compute_txid(), vout),
        prevout,
        path,
        sequence,
        mature_at,
    })
}

impl TaprootAnchorInput {
    /// The witness's maximum weight (`taproot::weights`).
    pub fn witness_weight(&self) -> u64 {
        match self.path {
            AnchorPath::Owner { .. } => KEY_PATH_WITNESS_WEIGHT as u64,
            AnchorPath::Anyone(_) => ANCHOR_SWEEP_WITNESS_WEIGHT as u64,
        }
    }

    /// The input entry of a BIP 340 request signing input `input` of a transaction that spends
    /// this anchor (`None` for anyone's path: it needs no signature).
    pub fn sign_input(&self, input: u32) -> Option<TaprootSignInput> {
        let AnchorPath::Owner { spend, key } = &self.path else {
            return None;
        };
        Some(TaprootSignInput {
            input,
            path: TapSignPath::from(spend),
            sighash: TAPROOT_SIGHASH,
            key: key.clone(),
        })
    }

    /// A request signing `tx` (which spends this anchor at `input`, every prevout given in
    /// `prevouts`), or `None` for anyone's path.
    pub fn sign_request(
        &self,
        request: RequestId,
        tx: &Transaction,
        input: u32,
        prevouts: Vec<TxOut>,
    ) -> Option<TaprootSignRequest> {
        Some(TaprootSignRequest {
            request,
            tx: RawTx(tx.clone()),
            prevouts,
            inputs: vec![self.sign_input(input)?],
        })
    }

    /// The input's witness: `<sig>` for the owner (a signature is needed: `None` gives an
    /// empty witness, which no node accepts), `<leaf> <control block>` for anyone.
    pub fn witness(&self, signature: Option<&Signature>) -> Witness {
        match (&self.path, signature) {
            (AnchorPath::Owner { .. }, Some(sig)) => key_path_witness(sig),
            (AnchorPath::Owner { .. }, None) => Witness::new(),
            (AnchorPath::Anyone(leaf), _) => {
                script_path_witness(&[], &leaf.leaf, &leaf.control_block)
            }
        }
    }
}
