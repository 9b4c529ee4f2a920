//! HTLC success: an HTLC the peer offered, once we know its preimage (handed off by
//! [`super::incoming_contest`]). On our own commitment it is claimed by our pre-signed
//! HTLC-success transaction (asked of the channel as [`ResolverAction::SecondLevelDue`]: at once
//! when the preimage arrives between blocks, and every block until it confirms; its output hands
//! off to a commitment sweep, see [`super::second_level`]); on the peer's, directly with the
//! preimage through the sweeper. Either must confirm before the HTLC's `cltv_expiry`, when the
//! peer may time it out.
//!
//! [`ResolverAction::SecondLevelDue`]: super::ResolverAction::SecondLevelDue

use crate::action::SweepRequest;
use crate::bolt3::witness::ClaimPath;
use crate::bolt3::PaymentPreimage;
use crate::types::Height;

use super::claim::{peer_htlc, Claim};
use super::context::ResolverContext;
use super::record::Resolver;

/// The preimage claim on the peer's commitment (none on ours: the second-level transaction
/// claims it), until the HTLC's expiry.
pub(super) fn sweep_request(
    r: &Resolver,
    preimage: PaymentPreimage,
    cltv_expiry: Height,
    ctx: &ResolverContext<'_>,
) -> Option<SweepRequest> {
    let htlc = peer_htlc(r, ctx)?;
    let mature_at = ctx.close.height.saturating_add(1);
    let claim = Claim {
        path: ClaimPath::preimage_claim_on_remote_commitment(ctx.channel.channel_type),
        script: htlc.script,
        key: htlc.key,
        preimage: Some(preimage),
        witness_pubkey: None,
        mature_at,
        deadline: cltv_expiry.max(mature_at),
        budget_sat: ctx.fees.policy.htlc_budget(r.value_sat),
        contestable: true,
    };
    Some(claim.request(ctx.channel.id, r.outpoint, htlc.txout))
}
