//! A claim a resolver asks the sweeper for, before it is addressed to its output: the spending
//! path, the witness script, the key, by when and for how much.

use bitcoin::{OutPoint, ScriptBuf, TxOut};

use crate::action::{Basepoint, KeyTweak, SigningKey, SweepRequest};
use crate::bolt3::commitment::{BuiltCommitment, CommitmentSpec};
use crate::bolt3::witness::ClaimPath;
use crate::bolt3::PaymentPreimage;
use crate::types::{ChannelId, Height, Party};

use super::context::{CloseView, ResolverContext};
use super::record::Resolver;

/// One claim, before it is addressed to its output.
pub(super) struct Claim {
    pub(super) path: ClaimPath,
    pub(super) script: ScriptBuf,
    pub(super) key: SigningKey,
    pub(super) preimage: Option<PaymentPreimage>,
    pub(super) witness_pubkey: Option<bitcoin::secp256k1::PublicKey>,
    pub(super) mature_at: Height,
    pub(super) deadline: Height,
    pub(super) budget_sat: u64,
    pub(super) contestable: bool,
}

impl Claim {
    /// The sweep request for `outpoint`, worth `txout`.
    pub(super) fn request(
        self,
        channel: ChannelId,
        outpoint: OutPoint,
        txout: TxOut,
    ) -> SweepRequest {
        SweepRequest {
            channel,
            outpoint,
            txout,
            path: self.path,
            script: self.script,
            key: self.key,
            preimage: self.preimage,
            witness_pubkey: self.witness_pubkey,
            deadline: self.deadline,
            budget_sat: self.budget_sat,
            contestable: self.contestable,
            exclusive_group: None,
            mature_at: self.mature_at,
        }
    }
}

/// An HTLC output of the peer's confirmed commitment: what a claim of it spends and with which
/// script and key (`None` on any other close).
pub(super) struct PeerHtlc {
    pub(super) txout: TxOut,
    pub(super) script: ScriptBuf,
    pub(super) key: SigningKey,
}

/// [`PeerHtlc`] of resolver `r`, when the close is the peer's commitment we rebuilt.
pub(super) fn peer_htlc(r: &Resolver, ctx: &ResolverContext<'_>) -> Option<PeerHtlc> {
    let Some((Party::Remote, spec, built)) = ctx.close.confirmed else {
        return None;
    };
    Some(PeerHtlc {
        txout: close_output(r, &ctx.close)?,
        script: witness_script(built, r.outpoint)?,
        key: htlc_signing_key(ctx.channel.id, spec),
    })
}

/// The witness script of output `outpoint.vout` of a rebuilt commitment.
fn witness_script(built: &BuiltCommitment, outpoint: OutPoint) -> Option<ScriptBuf> {
    built
        .outputs
        .iter()
        .find(|o| o.index == outpoint.vout)
        .and_then(|o| o.witness_script.clone())
}

/// The HTLC key of a commitment, tweaked by its per-commitment point.
fn htlc_signing_key(channel: ChannelId, spec: &CommitmentSpec) -> SigningKey {
    SigningKey::Channel {
        channel,
        basepoint: Basepoint::Htlc,
        tweak: KeyTweak::PerCommitmentPoint {
            point: spec.keys.per_commitment_point,
        },
    }
}

/// The output of the closing transaction a resolver resolves (`None` for an output created
/// after the close).
pub(super) fn close_output(r: &Resolver, close: &CloseView<'_>) -> Option<TxOut> {
    if r.outpoint.txid != close.txid {
        return None;
    }
    close.tx.output.get(r.outpoint.vout as usize).cloned()
}
