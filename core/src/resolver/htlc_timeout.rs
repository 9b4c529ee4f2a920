//! HTLC timeout: an HTLC we offered, from its `cltv_expiry` on (handed off by
//! [`super::outgoing_contest`]). On our own commitment it is claimed by our pre-signed
//! HTLC-timeout transaction (asked of the channel as [`ResolverAction::SecondLevelDue`] every
//! block until it confirms; its output hands off to a commitment sweep, see
//! [`super::second_level`]); on the peer's, directly by the timeout path through the sweeper.
//! Its deadline is the incoming leg's expiry: after it, our upstream peer may take the incoming
//! HTLC back while the downstream one can still claim this one.
//!
//! [`ResolverAction::SecondLevelDue`]: super::ResolverAction::SecondLevelDue

use crate::action::SweepRequest;
use crate::bolt3::witness::ClaimPath;
use crate::types::Height;

use super::claim::{peer_htlc, Claim};
use super::context::ResolverContext;
use super::record::Resolver;

/// The timeout claim on the peer's commitment (none on ours: the second-level transaction
/// claims it). nLockTime = `cltv_expiry` is final from the next block on.
pub(super) fn sweep_request(
    r: &Resolver,
    cltv_expiry: Height,
    deadline: Height,
    ctx: &ResolverContext<'_>,
) -> Option<SweepRequest> {
    let htlc = peer_htlc(r, ctx)?;
    let mature_at = cltv_expiry
        .saturating_add(1)
        .max(ctx.close.height.saturating_add(1));
    let claim = Claim {
        path: ClaimPath::timeout_claim_on_remote_commitment(cltv_expiry, ctx.channel.channel_type),
        script: htlc.script,
        key: htlc.key,
        preimage: None,
        witness_pubkey: None,
        mature_at,
        deadline: deadline.max(mature_at),
        budget_sat: ctx.fees.policy.htlc_budget(r.value_sat),
        contestable: true,
    };
    Some(claim.request(ctx.channel.id, r.outpoint, htlc.txout))
}
