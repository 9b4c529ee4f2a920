//! Commitment sweep: our balance — `to_local` on our own commitment after `to_self_delay`, the
//! output of one of our second-level transactions after the same delay, or `to_remote` on any
//! commitment of the peer's (at once, or after 1 block with anchors). Only our key spends it,
//! except the revocation path of a `to_local`-style output (a commitment of ours the peer holds
//! the secret of). It never hands off.

use bitcoin::{Amount, ScriptBuf, TxOut, Witness};

use crate::action::{Basepoint, KeyTweak, SigningKey, SweepRequest};
use crate::bolt3::classify::{classify_to_local_spend, ToLocalSpend};
use crate::bolt3::scripts;
use crate::bolt3::witness::ClaimPath;
use crate::types::{Height, Party};

use super::claim::Claim;
use super::context::{Path, ResolverContext};
use super::record::{Resolver, Taken};

/// Whose path a spend of our balance took.
pub(super) fn judge(w: &Witness) -> Path {
    match classify_to_local_spend(w) {
        ToLocalSpend::Revocation => Path::Theirs(Taken::PeerRevocation),
        _ => Path::Ours,
    }
}

/// The sweep of our balance: on our own commitment (and our second-level outputs) by the
/// delayed path, on the peer's by our payment key.
pub(super) fn sweep_request(
    r: &Resolver,
    mature_at: Height,
    ctx: &ResolverContext<'_>,
) -> Option<SweepRequest> {
    let close = &ctx.close;
    let txout = match (
        close.tx.output.get(r.outpoint.vout as usize),
        close.to_local,
    ) {
        (Some(o), _) if r.outpoint.txid == close.txid => o.clone(),
        // A second-level output: it pays our `to_local` script.
        (_, Some(script)) => TxOut {
            value: Amount::from_sat(r.value_sat),
            script_pubkey: script.to_p2wsh(),
        },
        _ => return None,
    };
    let claim = match (close.confirmed, close.to_local) {
        (Some((Party::Local, spec, _)), Some(script)) => {
            to_local_claim(r, mature_at, spec, script.clone(), ctx)
        }
        (Some((Party::Local, _, _)), None) => return None,
        _ => to_remote_claim(r, mature_at, ctx),
    };
    Some(claim.request(ctx.channel.id, r.outpoint, txout))
}

/// Our `to_local` on our own commitment, after `to_self_delay`.
fn to_local_claim(
    r: &Resolver,
    mature_at: Height,
    spec: &crate::bolt3::commitment::CommitmentSpec,
    script: ScriptBuf,
    ctx: &ResolverContext<'_>,
) -> Claim {
    let info = ctx.channel;
    let policy = ctx.fees.policy;
    Claim {
        path: ClaimPath::ToLocalDelayed {
            to_self_delay: info.local_to_self_delay,
        },
        script,
        key: SigningKey::Channel {
            channel: info.id,
            basepoint: Basepoint::DelayedPayment,
            tweak: KeyTweak::PerCommitmentPoint {
                point: spec.keys.per_commitment_point,
            },
        },
        preimage: None,
        witness_pubkey: None,
        mature_at,
        deadline: mature_at.saturating_add(policy.balance_deadline_blocks),
        budget_sat: policy.balance_budget(r.value_sat),
        contestable: false,
    }
}

/// Our `to_remote` on any commitment of the peer's (current, pending, future or revoked):
/// found by script, spent with our untweaked payment key.
fn to_remote_claim(r: &Resolver, mature_at: Height, ctx: &ResolverContext<'_>) -> Claim {
    let info = ctx.channel;
    let policy = ctx.fees.policy;
    let ours = info.local_basepoints.payment_basepoint;
    let (script, witness_pubkey) = if info.channel_type.has_anchors() {
        (scripts::to_remote_anchor_script(&ours), None)
    } else {
        (
            scripts::to_remote_script_pubkey(info.channel_type, &ours),
            Some(ours),
        )
    };
    Claim {
        path: ClaimPath::ToRemote {
            channel_type: info.channel_type,
        },
        script,
        key: SigningKey::Channel {
            channel: info.id,
            basepoint: Basepoint::Payment,
            tweak: KeyTweak::None,
        },
        preimage: None,
        witness_pubkey,
        mature_at,
        deadline: mature_at.saturating_add(policy.balance_deadline_blocks),
        budget_sat: policy.balance_budget(r.value_sat),
        contestable: false,
    }
}
