//! Justice (BOLT 5 B05-REV, PEN): an output of the peer's revoked commitment — its `to_local` or
//! any HTLC — ours by revocation. It is claimed through the sweeper by its revocation path, with
//! the whole output as its budget and, as its deadline, the block before the peer's own spend
//! (nSequence = its `to_self_delay`) becomes final (BIP 68). `to_local`-style outputs need only the
//! revealed secret; HTLC outputs wait for the revoked log's entry.
//!
//! When the peer gets its second-level transaction confirmed first, the output it creates (same
//! index as the HTLC input, its `to_local`-style script) is still ours by revocation until its
//! CSV runs out: the resolver hands off to a justice resolver of that output, created at the
//! second-level transaction's height (a disconnection of that block removes it again).

use bitcoin::{OutPoint, ScriptBuf, Transaction, TxOut, Witness};

use crate::action::{Basepoint, KeyTweak, SigningKey, SweepRequest};
use crate::bolt3::classify::{classify_htlc_spend, classify_to_local_spend, HtlcOutputKind};
use crate::bolt3::classify::{HtlcSpend, ToLocalSpend};
use crate::bolt3::commitment::{BuiltCommitment, CommitmentSpec, OutputKind};
use crate::bolt3::witness::ClaimPath;
use crate::bolt3::PaymentHash;
use crate::commitments::CommitmentRecord;
use crate::types::{Height, Party};

use super::context::{Justice, Path, ResolverContext};
use super::record::{Resolver, ResolverKind, Stage, Taken};

/// Whose path a spend of a revoked output took. `peer_second_level`: it is the peer's
/// second-level transaction (its output is handed off).
pub(super) fn judge(input: usize, w: &Witness, peer_second_level: bool) -> Path {
    // Any hash: the revocation path is recognised before the hash is looked at.
    let htlc = classify_htlc_spend(w, HtlcOutputKind::Offered, &PaymentHash([0; 32]));
    if peer_second_level {
        Path::Theirs(Taken::PeerSecondLevelRevoked)
    } else if htlc == HtlcSpend::Revocation
        || classify_to_local_spend(w) == ToLocalSpend::Revocation
    {
        Path::Ours
    } else if classify_to_local_spend(w) == ToLocalSpend::Delayed {
        Path::Theirs(Taken::PeerDelayed)
    } else {
        Path::unknown(input, w)
    }
}

/// The successor when `tx` (confirmed at `height`), spending an HTLC output of the revoked
/// commitment, is the peer's second-level transaction: its output at the input's index pays the
/// revoked `to_local` script.
pub(super) fn hand_off(
    r: &Resolver,
    commitment_number: u64,
    tx: &Transaction,
    height: Height,
    ctx: &ResolverContext<'_>,
) -> Option<Resolver> {
    if r.outpoint.txid != ctx.close.txid {
        return None; // already a second-level output: its spend ends it
    }
    let justice = ctx.close.justice?;
    let index = tx
        .input
        .iter()
        .position(|i| i.previous_output == r.outpoint)?;
    let output = tx.output.get(index)?;
    if output.script_pubkey != justice.to_local.to_p2wsh() {
        return None;
    }
    let mut next = Resolver::new(
        OutPoint {
            txid: tx.compute_txid(),
            vout: u32::try_from(index).ok()?,
        },
        output.value.to_sat(),
        ResolverKind::Breach { commitment_number },
    );
    next.created_at = Some(height);
    Some(next)
}

/// The justice claim of an active revoked output.
pub(super) fn sweep_request(r: &Resolver, ctx: &ResolverContext<'_>) -> Option<SweepRequest> {
    let close = &ctx.close;
    let justice = close.justice?;
    if !matches!(r.stage, Stage::Active) {
        return None;
    }
    let revocable = justice.to_local.to_p2wsh();
    let on_commitment = r.outpoint.txid == close.txid;
    let txout = if on_commitment {
        close.tx.output.get(r.outpoint.vout as usize).cloned()?
    } else {
        TxOut {
            value: bitcoin::Amount::from_sat(r.value_sat),
            script_pubkey: revocable.clone(),
        }
    };
    let to_self_delay = ctx.channel.remote_to_self_delay;
    let (path, script) = if txout.script_pubkey == revocable {
        (
            ClaimPath::ToLocalRevocation { to_self_delay },
            justice.to_local.clone(),
        )
    } else {
        // An HTLC output: waiting for the revoked log.
        let (spec, built) = justice.rebuilt.as_ref()?;
        htlc_revocation(justice.record, spec, built, r.outpoint.vout)?
    };
    let witness_pubkey = matches!(
        path,
        ClaimPath::OfferedHtlcRevocation { .. } | ClaimPath::ReceivedHtlcRevocation { .. }
    )
    .then_some(justice.revocation_pubkey);
    let since = if on_commitment {
        close.height
    } else {
        r.created_at.unwrap_or(close.height)
    };
    let mature_at = since.saturating_add(1);
    Some(SweepRequest {
        channel: ctx.channel.id,
        outpoint: r.outpoint,
        txout,
        path,
        script,
        key: revocation_key(ctx, justice),
        preimage: None,
        witness_pubkey,
        // The peer's delay is our deadline: its own spend (nSequence = its delay) is final from
        // block `since + to_self_delay` (BIP 68), so ours must confirm by the block before. The
        // whole output is worth spending on it.
        deadline: since
            .saturating_add(u32::from(to_self_delay))
            .saturating_sub(1)
            .max(mature_at),
        budget_sat: r.value_sat,
        contestable: true,
        exclusive_group: None,
        mature_at,
    })
}

fn revocation_key(ctx: &ResolverContext<'_>, justice: &Justice<'_>) -> SigningKey {
    SigningKey::Channel {
        channel: ctx.channel.id,
        basepoint: Basepoint::Revocation,
        tweak: KeyTweak::Revocation {
            per_commitment_secret: justice.secret,
        },
    }
}

/// The revocation path and witness script of HTLC output `vout` of the rebuilt revoked
/// commitment.
fn htlc_revocation(
    record: Option<&CommitmentRecord>,
    spec: &CommitmentSpec,
    built: &BuiltCommitment,
    vout: u32,
) -> Option<(ClaimPath, ScriptBuf)> {
    let o = built.outputs.iter().find(|o| o.index == vout)?;
    let script = o.witness_script.clone()?;
    let path = match o.kind {
        OutputKind::OfferedHtlc { .. } => ClaimPath::OfferedHtlcRevocation {
            channel_type: spec.channel_type,
        },
        OutputKind::ReceivedHtlc { htlc_id } => {
            let cltv_expiry = record?
                .htlcs
                .iter()
                .find(|h| h.htlc_id == htlc_id && !h.as_commitment_htlc(Party::Remote).offered)?
                .cltv_expiry;
            ClaimPath::ReceivedHtlcRevocation {
                channel_type: spec.channel_type,
                cltv_expiry,
            }
        }
        _ => return None,
    };
    Some((path, script))
}
