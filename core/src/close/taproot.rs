//! Close classification of simple taproot channels (`option_simple_taproot`, extension BOLT
//! `bolt-simple-taproot.md`): the kind of close by [`super::classify_close`] — whose revoked and
//! future checks compare P2TR `to_local`/anchor outputs for this type — and, for every output of
//! the close, its [`TaprootContract`]: what it is, whose, and its tap leaves with control blocks
//! and key paths with their tap tweak, for the resolvers.
//!
//! Exactness: a commitment we know (ours, the peer's current or pending, a revoked one from the
//! revoked log) is rebuilt with bolt3 and must equal the confirmed transaction's txid, and every
//! output's scriptPubKey rebuilt from `bolt3::taproot`'s trees must equal the confirmed one, so
//! each output gets exactly the contract of what it is. Without the commitment's data (a future
//! commitment, a revoked one whose log entry is missing) only outputs derivable from keys alone
//! are given — our `to_remote` and anchor, and on a breach the peer's `to_local` and anchor —
//! and the others are listed as unexplained, never guessed.

use bitcoin::{ScriptBuf, Transaction};

use crate::bolt3::commitment::{CommitmentSpec, OutputKind};
use crate::bolt3::keys::per_commitment_point;
use crate::bolt3::taproot::commitment as tap;
use crate::bolt3::CommitmentKeys;
use crate::commitments::{ChannelInfo, CommitmentRecord, Commitments};
use crate::event::FundingOutput;
use crate::types::Party;

pub use super::taproot_error::TaprootCloseError;
use super::taproot_outputs::contract_of;
pub use super::taproot_outputs::{
    SecondLevelOutput, TapKeySpend, TapLeafSpend, TaprootContract, TaprootHtlcOutput, TaprootOutput,
};
use super::{classify_close, Classification, Close};

/// A taproot channel's close: its classification and the contract of each output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaprootClose {
    /// What [`classify_close`] says.
    pub classification: Classification,
    /// The contracts of the outputs we could explain, in output order.
    pub contracts: Vec<TaprootContract>,
    /// The outputs nothing we know explains (only without the commitment's data: a future
    /// commitment's HTLCs and the peer's balance, a revoked one's HTLCs without its log entry).
    pub unexplained: Vec<u32>,
}

/// Classify `tx` for a simple taproot channel and give the contract of each of its outputs.
/// `revoked`: the revoked log's entry for the commitment number `tx` carries, when the caller
/// has read it (a breach's HTLC outputs need it). Pure; typed errors, never a panic.
pub fn classify_taproot_close(
    tx: &Transaction,
    info: &ChannelInfo,
    commitments: &Commitments,
    revoked: Option<&CommitmentRecord>,
) -> Result<TaprootClose, TaprootCloseError> {
    if !info.channel_type.is_taproot() {
        return Err(TaprootCloseError::NotTaproot {
            channel_type: info.channel_type,
        });
    }
    let classification = classify_close(tx, info, commitments);
    let (contracts, unexplained) = match &classification {
        Classification::NotAFundingSpend => (Vec::new(), Vec::new()),
        Classification::FundingSpent { spend, close } => {
            contracts_of(tx, info, commitments, revoked, &spend.funding, close)?
        }
    };
    Ok(TaprootClose {
        classification,
        contracts,
        unexplained,
    })
}

type Contracts = (Vec<TaprootContract>, Vec<u32>);

fn contracts_of(
    tx: &Transaction,
    info: &ChannelInfo,
    c: &Commitments,
    revoked: Option<&CommitmentRecord>,
    funding: &FundingOutput,
    close: &Close,
) -> Result<Contracts, TaprootCloseError> {
    let (holder, record) = match close {
        Close::LocalCurrent { .. } => (Party::Local, c.local.as_ref().map(|l| &l.commitment)),
        Close::RemoteCurrent { .. } => (Party::Remote, c.remote_current.as_ref()),
        Close::RemotePending { .. } => (Party::Remote, c.remote_pending.as_ref()),
        Close::RemoteRevoked {
            number,
            per_commitment_secret,
        }
        | Close::RemoteRevokedUnconfirmed {
            number,
            per_commitment_secret,
        } => {
            return match revoked {
                Some(record) if record.number != *number => {
                    Err(TaprootCloseError::WrongRevokedRecord {
                        expected: *number,
                        got: record.number,
                    })
                }
                Some(record) => {
                    let mut out = rebuilt(tx, info, Party::Remote, record, funding)?;
                    out.0.iter_mut().for_each(|c| c.revoked = true);
                    Ok(out)
                }
                None => revoked_by_script(tx, info, per_commitment_secret),
            };
        }
        Close::RemoteFuture { .. } => return Ok(ours_by_script(tx, info)),
        Close::Cooperative | Close::LocalRevoked { .. } | Close::Unknown { .. } => {
            return Ok((Vec::new(), Vec::new()))
        }
    };
    // Classified by txid, so the record is there; `None` only if the caller's data changed.
    let Some(record) = record else {
        return Ok((Vec::new(), all_outputs(tx)));
    };
    rebuilt(tx, info, holder, record, funding)
}

fn all_outputs(tx: &Transaction) -> Vec<u32> {
    (0u32..).take(tx.output.len()).collect()
}

/// Every output of `record` rebuilt: the rebuilt transaction must be `tx`.
fn rebuilt(
    tx: &Transaction,
    info: &ChannelInfo,
    holder: Party,
    record: &CommitmentRecord,
    funding: &FundingOutput,
) -> Result<Contracts, TaprootCloseError> {
    let (spec, built) = info
        .build(holder, record, funding)
        .map_err(TaprootCloseError::Rebuild)?;
    if built.tx.compute_txid() != tx.compute_txid() {
        return Err(TaprootCloseError::RebuiltTxidMismatch {
            number: record.number,
        });
    }
    let contracts = built
        .outputs
        .iter()
        .map(|o| contract_of(holder, &spec, tx, o.kind, o.index))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((contracts, Vec::new()))
}

/// The peer's commitment with these keys, as far as keys alone give its outputs: `to_local`
/// (theirs; with the revoked flag, ours by its revoke leaf), our `to_remote`, both anchors. A
/// spec without HTLCs and with `to_self_delay` theirs builds each output's tree.
fn by_script(
    tx: &Transaction,
    info: &ChannelInfo,
    keys: Option<CommitmentKeys>,
    revoked: bool,
) -> Result<Contracts, TaprootCloseError> {
    let ours_keys = keys.map_or_else(|| our_static_keys(info), Ok)?;
    let spec = by_script_spec(info, ours_keys);
    let mut candidates: Vec<(ScriptBuf, OutputKind)> = vec![
        (
            tap::to_remote_script_pubkey(&info.local_basepoints.payment_basepoint),
            OutputKind::ToRemote,
        ),
        (
            tap::anchor_script_pubkey(&spec.keys, false),
            OutputKind::RemoteAnchor,
        ),
    ];
    if let Some(k) = keys {
        candidates.push((
            tap::to_local_script_pubkey(&k, info.remote_to_self_delay),
            OutputKind::ToLocal,
        ));
        candidates.push((tap::anchor_script_pubkey(&k, true), OutputKind::LocalAnchor));
    }
    let (mut contracts, mut unexplained) = (Vec::new(), Vec::new());
    for (o, vout) in tx.output.iter().zip(0u32..) {
        match candidates.iter().find(|(s, _)| *s == o.script_pubkey) {
            Some((_, kind)) => {
                let mut c = contract_of(Party::Remote, &spec, tx, *kind, vout)?;
                c.revoked = revoked;
                c.per_commitment_point = keys.map(|k| k.per_commitment_point);
                contracts.push(c);
            }
            None => unexplained.push(vout),
        }
    }
    Ok((contracts, unexplained))
}

/// A revoked commitment of the peer's without its log entry: keys from the revealed secret.
fn revoked_by_script(
    tx: &Transaction,
    info: &ChannelInfo,
    secret: &[u8; 32],
) -> Result<Contracts, TaprootCloseError> {
    let point = per_commitment_point(secret).map_err(TaprootCloseError::Key)?;
    let keys = CommitmentKeys::derive(&point, &info.remote_basepoints, &info.local_basepoints)
        .map_err(TaprootCloseError::Key)?;
    by_script(tx, info, Some(keys), true)
}

/// A commitment of the peer's we know nothing of: only our `to_remote` and anchor (both keyed by
/// our static payment basepoint). Key derivation cannot fail here (no point is used).
fn ours_by_script(tx: &Transaction, info: &ChannelInfo) -> Contracts {
    by_script(tx, info, None, false).unwrap_or_else(|_| (Vec::new(), all_outputs(tx)))
}

/// Keys of a peer's commitment where only `remotepubkey` (our payment basepoint) matters; the
/// per-commitment fields are our payment basepoint too and never used.
fn our_static_keys(info: &ChannelInfo) -> Result<CommitmentKeys, TaprootCloseError> {
    let p = info.local_basepoints.payment_basepoint;
    Ok(CommitmentKeys {
        per_commitment_point: p,
        revocation_pubkey: p,
        local_delayed_pubkey: p,
        local_htlc_pubkey: p,
        remote_htlc_pubkey: p,
        remote_payment_pubkey: p,
    })
}

fn by_script_spec(info: &ChannelInfo, keys: CommitmentKeys) -> CommitmentSpec {
    CommitmentSpec {
        channel_type: info.channel_type,
        funding_outpoint: bitcoin::OutPoint::null(),
        funding_sat: 0,
        commitment_number: 0,
        obscuring_factor: info.obscuring_factor,
        keys,
        local_funding_pubkey: info.remote_basepoints.funding_pubkey,
        remote_funding_pubkey: info.local_basepoints.funding_pubkey,
        to_self_delay: info.remote_to_self_delay,
        dust_limit_sat: info.remote_dust_limit_sat,
        feerate_per_kw: 0,
        to_local_msat: 0,
        to_remote_msat: 0,
        holder_is_funder: info.funder == Party::Remote,
        htlcs: Vec::new(),
    }
}

/// For [`super::Outputs::only_htlc_candidates`]: every output is P2TR and one is not an anchor
/// of the revoked commitment whose secret is `secret` (what such a commitment with both
/// balances dust looks like).
pub(super) fn only_htlc_candidates(
    tx: &Transaction,
    info: &ChannelInfo,
    secret: &[u8; 32],
) -> bool {
    let keys = per_commitment_point(secret).ok().and_then(|p| {
        CommitmentKeys::derive(&p, &info.remote_basepoints, &info.local_basepoints).ok()
    });
    let Some(keys) = keys else {
        return false;
    };
    let anchors = [
        tap::anchor_script_pubkey(&keys, true),
        tap::anchor_script_pubkey(&keys, false),
    ];
    tx.output.iter().all(|o| o.script_pubkey.is_p2tr())
        && tx
            .output
            .iter()
            .any(|o| !anchors.contains(&o.script_pubkey))
}

/// The peer's taproot `to_local` on their commitment with these keys.
pub(super) fn remote_to_local(keys: &CommitmentKeys, info: &ChannelInfo) -> ScriptBuf {
    tap::to_local_script_pubkey(keys, info.remote_to_self_delay)
}
