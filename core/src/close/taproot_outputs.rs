//! The per-output contracts of a simple taproot commitment: for each output, what it is, whose,
//! and every tap leaf (with its control block) or key path a resolver may spend it by, rebuilt
//! from the commitment's keys with `bolt3::taproot` and checked against the confirmed output's
//! scriptPubKey.

use bitcoin::secp256k1::PublicKey;
use bitcoin::taproot::{ControlBlock, TapLeafHash, TapNodeHash, TapTweakHash};
use bitcoin::{ScriptBuf, Transaction};

use crate::bolt3::commitment::{CommitmentHtlc, CommitmentSpec, OutputKind};
use crate::bolt3::htlc_tx::{build_htlc_success, build_htlc_timeout};
use crate::bolt3::taproot::{
    accepted_htlc, anchor, leaf_hash, offered_htlc, second_level, to_local, to_remote, TapOutput,
};
use crate::bolt3::CommitmentKeys;
use crate::types::Party;

use super::taproot_error::TaprootCloseError;

/// A tap leaf and the control block that reveals it in its output's tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TapLeafSpend {
    /// The tapscript (leaf version `0xc0`).
    pub leaf: ScriptBuf,
    /// `(parity | 0xc0) || internal_key || inclusion_proof`.
    pub control_block: ControlBlock,
}

impl TapLeafSpend {
    fn of(output: &TapOutput, leaf: &ScriptBuf) -> Result<Self, TaprootCloseError> {
        Ok(TapLeafSpend {
            leaf: leaf.clone(),
            control_block: output
                .control_block(leaf)
                .map_err(TaprootCloseError::Script)?,
        })
    }

    /// The TapLeaf hash a script-path signature commits to.
    pub fn leaf_hash(&self) -> TapLeafHash {
        leaf_hash(&self.leaf)
    }
}

/// A key path: the internal key whose secret, tweaked with the output's tap tweak, signs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TapKeySpend {
    /// The internal key (full point: its secret is derived as for P2WSH channels).
    pub internal_key: PublicKey,
    /// The tap tree's root (`None`: a BIP 86 key-path-only output).
    pub merkle_root: Option<TapNodeHash>,
}

impl TapKeySpend {
    fn of(internal_key: &PublicKey, output: &TapOutput) -> Self {
        TapKeySpend {
            internal_key: *internal_key,
            merkle_root: output.merkle_root(),
        }
    }

    /// `tagged_hash("TapTweak", internal_key || root)`: what the signer adds to the secret key.
    pub fn tap_tweak(&self) -> TapTweakHash {
        TapTweakHash::from_key_and_tweak(self.internal_key.x_only_public_key().0, self.merkle_root)
    }
}

/// The output of the holder's second-level HTLC transaction: its delay leaf (the holder, after
/// `to_self_delay`) and its revocation key path (the counterparty, once revoked).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecondLevelOutput {
    /// Its scriptPubKey.
    pub script_pubkey: ScriptBuf,
    /// `<local_delayedpubkey> OP_CHECKSIGVERIFY <to_self_delay> OP_CSV`.
    pub delay: TapLeafSpend,
    /// `revocation_pubkey` tweaked with the delay leaf's root.
    pub revocation: TapKeySpend,
}

/// One HTLC output of a taproot commitment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaprootHtlcOutput {
    /// The HTLC as the commitment's holder sees it (`offered`: the holder offered it).
    pub htlc: CommitmentHtlc,
    /// `htlc_timeout`: the holder's HTLC-timeout transaction (offered) or the counterparty after
    /// `cltv_expiry` (accepted).
    pub timeout: TapLeafSpend,
    /// `htlc_success`: the counterparty with the preimage (offered) or the holder's
    /// HTLC-success transaction (accepted).
    pub success: TapLeafSpend,
    /// `revocation_pubkey` tweaked with the HTLC's root (`htlc_script_root`): the breach path.
    pub revocation: TapKeySpend,
    /// The output the holder's second-level transaction pays.
    pub second_level: SecondLevelOutput,
    /// The holder's unsigned second-level transaction (HTLC-timeout for an offered HTLC,
    /// HTLC-success for an accepted one), when we are the holder: ours to complete and
    /// broadcast. `None` on the peer's commitments.
    pub second_level_tx: Option<Transaction>,
}

/// What one output of a taproot commitment is, with every path that spends it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TaprootOutput {
    /// The holder's balance: the delay leaf (holder) and the revoke leaf (counterparty).
    ToLocal {
        /// The leaf's CSV delay.
        to_self_delay: u16,
        /// `to_delay_script`.
        delay: TapLeafSpend,
        /// `revoke_script` (a script path: `local_delayedpubkey` is revealed).
        revoke: TapLeafSpend,
    },
    /// The counterparty's balance: its one `1 OP_CSV` leaf.
    ToRemote {
        /// `to_remote_script`.
        leaf: TapLeafSpend,
    },
    /// An anchor: its owner's key path, or anyone after 16 blocks.
    Anchor {
        /// `local_delayedpubkey` (the holder's anchor) or `remotepubkey` (the counterparty's).
        key: TapKeySpend,
        /// `OP_16 OP_CSV`.
        sweep: TapLeafSpend,
    },
    /// An HTLC.
    Htlc(Box<TaprootHtlcOutput>),
}

/// One output of the confirmed close and what it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaprootContract {
    /// Its index in the closing transaction.
    pub vout: u32,
    /// Its value.
    pub value_sat: u64,
    /// Who may spend it without revocation: the holder's balance, anchor and second-level
    /// path are the holder's; `to_remote` and the counterparty's anchor the counterparty's; an
    /// HTLC is the holder's when offered by the holder (timeout), the counterparty's when
    /// accepted (its timeout leaf) — both parties race for it with the preimage.
    pub owner: Party,
    /// Whether the commitment is revoked: then the counterparty (us, when the holder is the
    /// peer) may take `to_local` and every HTLC by revocation.
    pub revoked: bool,
    /// The output with its paths.
    pub output: TaprootOutput,
    /// The holder's per-commitment point of the commitment (the BOLT 3 tweak of the keys in its
    /// leaves), `None` when unknown (a future commitment: only static keys are used).
    pub per_commitment_point: Option<PublicKey>,
}

/// The taproot contract of output `o` of a commitment held by `holder`, from its spec; the
/// rebuilt scriptPubKey must equal `script_pubkey` (the confirmed output's).
pub(super) fn contract_of(
    holder: Party,
    spec: &CommitmentSpec,
    commitment: &Transaction,
    kind: OutputKind,
    vout: u32,
) -> Result<TaprootContract, TaprootCloseError> {
    let confirmed = commitment
        .output
        .get(vout as usize)
        .ok_or(TaprootCloseError::MissingOutput { vout })?;
    let keys = &spec.keys;
    let (output, tap, owner) = match kind {
        OutputKind::ToLocal => {
            let built = to_local::to_local(
                &keys.local_delayed_pubkey,
                &keys.revocation_pubkey,
                spec.to_self_delay,
            )
            .map_err(TaprootCloseError::Script)?;
            let out = TaprootOutput::ToLocal {
                to_self_delay: spec.to_self_delay,
                delay: TapLeafSpend::of(&built.output, &built.delay_script)?,
                revoke: TapLeafSpend::of(&built.output, &built.revoke_script)?,
            };
            (out, built.output, holder)
        }
        OutputKind::ToRemote => {
            let built = to_remote::to_remote(&keys.remote_payment_pubkey)
                .map_err(TaprootCloseError::Script)?;
            let leaf = TapLeafSpend::of(&built.output, &built.script)?;
            (
                TaprootOutput::ToRemote { leaf },
                built.output,
                other(holder),
            )
        }
        OutputKind::LocalAnchor | OutputKind::RemoteAnchor => {
            let (key, owner) = if kind == OutputKind::LocalAnchor {
                (keys.local_delayed_pubkey, holder)
            } else {
                (keys.remote_payment_pubkey, other(holder))
            };
            let built = anchor::anchor(&key).map_err(TaprootCloseError::Script)?;
            let out = TaprootOutput::Anchor {
                key: TapKeySpend::of(&key, &built.output),
                sweep: TapLeafSpend::of(&built.output, &built.script)?,
            };
            (out, built.output, owner)
        }
        OutputKind::OfferedHtlc { htlc_id } | OutputKind::ReceivedHtlc { htlc_id } => {
            let offered = matches!(kind, OutputKind::OfferedHtlc { .. });
            let htlc = spec
                .htlcs
                .iter()
                .find(|h| h.id == htlc_id && h.offered == offered)
                .ok_or(TaprootCloseError::MissingHtlc { vout, htlc_id })?;
            let (out, tap) = htlc_contract(holder, spec, commitment, htlc, vout)?;
            let owner = if offered { holder } else { other(holder) };
            (TaprootOutput::Htlc(Box::new(out)), tap, owner)
        }
        OutputKind::SharedAnchor => return Err(TaprootCloseError::UnexpectedOutput { vout }),
    };
    if tap.script_pubkey() != confirmed.script_pubkey {
        return Err(TaprootCloseError::ScriptMismatch { vout });
    }
    Ok(TaprootContract {
        vout,
        value_sat: confirmed.value.to_sat(),
        owner,
        revoked: false,
        output,
        per_commitment_point: Some(keys.per_commitment_point),
    })
}

fn htlc_contract(
    holder: Party,
    spec: &CommitmentSpec,
    commitment: &Transaction,
    htlc: &CommitmentHtlc,
    vout: u32,
) -> Result<(TaprootHtlcOutput, TapOutput), TaprootCloseError> {
    let k: &CommitmentKeys = &spec.keys;
    let (timeout, success, tap) = if htlc.offered {
        let o = offered_htlc::offered_htlc(
            &k.revocation_pubkey,
            &k.local_htlc_pubkey,
            &k.remote_htlc_pubkey,
            &htlc.payment_hash,
        )
        .map_err(TaprootCloseError::Script)?;
        (o.timeout_script, o.success_script, o.output)
    } else {
        let a = accepted_htlc::accepted_htlc(
            &k.revocation_pubkey,
            &k.local_htlc_pubkey,
            &k.remote_htlc_pubkey,
            &htlc.payment_hash,
            htlc.cltv_expiry,
        )
        .map_err(TaprootCloseError::Script)?;
        (a.timeout_script, a.success_script, a.output)
    };
    let second = second_level::second_level_htlc(
        &k.revocation_pubkey,
        &k.local_delayed_pubkey,
        spec.to_self_delay,
    )
    .map_err(TaprootCloseError::Script)?;
    let second_level_tx = match holder {
        Party::Remote => None,
        Party::Local => {
            let build = if htlc.offered {
                build_htlc_timeout
            } else {
                build_htlc_success
            };
            let txid = commitment.compute_txid();
            let tx = build(
                txid,
                vout,
                htlc,
                k,
                spec.to_self_delay,
                spec.feerate_per_kw,
                spec.channel_type,
            )
            .map_err(|_| TaprootCloseError::SecondLevel { vout })?;
            Some(tx)
        }
    };
    let out = TaprootHtlcOutput {
        htlc: *htlc,
        timeout: TapLeafSpend::of(&tap, &timeout)?,
        success: TapLeafSpend::of(&tap, &success)?,
        revocation: TapKeySpend::of(&k.revocation_pubkey, &tap),
        second_level: SecondLevelOutput {
            script_pubkey: second.output.script_pubkey(),
            delay: TapLeafSpend::of(&second.output, &second.delay_script)?,
            revocation: TapKeySpend::of(&k.revocation_pubkey, &second.output),
        },
        second_level_tx,
    };
    Ok((out, tap))
}

fn other(party: Party) -> Party {
    match party {
        Party::Local => Party::Remote,
        Party::Remote => Party::Local,
    }
}

impl From<&TapLeafSpend> for crate::action::TapSignPath {
    /// A script-path signature revealing this leaf.
    fn from(spend: &TapLeafSpend) -> Self {
        crate::action::TapSignPath::ScriptPath {
            leaf: spend.leaf.clone(),
        }
    }
}

impl From<&TapKeySpend> for crate::action::TapSignPath {
    /// A key-path signature, the key tweaked with this root.
    fn from(spend: &TapKeySpend) -> Self {
        crate::action::TapSignPath::KeyPath {
            merkle_root: spend.merkle_root,
        }
    }
}
