//! Incoming contest: an HTLC the peer offered, while we do not know its preimage. The peer may
//! take it by timeout from its `cltv_expiry`; once the block `cltv_expiry + 1` (the first in which
//! the peer's timeout is final) is reorg-safe and the close too, it counts as the peer's without
//! a spend (BOLT 5 B05-LRO-05, B05-RRO-03), so an idle peer cannot keep a channel open. Its
//! output stays watched: a preimage that arrives while it is unspent is still claimed.
//!
//! The preimage — from downstream, an invoice, or a witness on chain — hands it off to
//! [`super::htlc_success`]. The hand-off is read from the preimage oracle, which keeps what it
//! learned across reorgs.

use bitcoin::Witness;

use crate::bolt3::classify::{classify_htlc_spend, HtlcOutputKind, HtlcSpend};
use crate::bolt3::PaymentHash;
use crate::types::{Height, Party};

use super::context::{Path, ResolverAction, ResolverContext, ResolverStep};
use super::record::{depth, Resolver, Stage, Taken};

/// A block at `tip`: an active contest whose expiry (and close) is reorg-safe is over.
pub(super) fn on_block(
    r: &mut Resolver,
    cltv_expiry: Height,
    tip: Height,
    ctx: &ResolverContext<'_>,
) -> ResolverStep {
    if matches!(r.stage, Stage::Active)
        && ctx.close.reorg_safe(tip, ctx.safety_depth)
        && depth(cltv_expiry.saturating_add(1), tip) >= ctx.safety_depth
    {
        r.stage = Stage::Expired { height: tip };
        return ResolverStep::act(ResolverAction::SettledUnspent);
    }
    ResolverStep::default()
}

/// Whose path a spend of an HTLC the peer offered took. On our commitment it is a received HTLC:
/// ours by our HTLC-success transaction, the peer's by timeout directly, or by revocation. On
/// the peer's it is an offered HTLC: ours with the preimage directly, the peer's by its
/// HTLC-timeout transaction.
pub(super) fn judge(holder: Party, w: &Witness, hash: &PaymentHash) -> Option<Path> {
    Some(match holder {
        Party::Local => match classify_htlc_spend(w, HtlcOutputKind::Received, hash) {
            HtlcSpend::SecondLevelSuccess(_) => Path::Ours,
            HtlcSpend::Timeout => Path::Theirs(Taken::PeerTimeout),
            HtlcSpend::Revocation => Path::Theirs(Taken::PeerRevocation),
            _ => return None,
        },
        Party::Remote => match classify_htlc_spend(w, HtlcOutputKind::Offered, hash) {
            HtlcSpend::Preimage(_) | HtlcSpend::Revocation => Path::Ours,
            HtlcSpend::SecondLevelTimeout => Path::Theirs(Taken::PeerTimeout),
            _ => return None,
        },
    })
}
