//! Anchor (BOLT 3 `option_anchors`): our 330-sat anchor on a confirmed commitment. Before the
//! close it served CPFP (the channel's business); after it, it is swept only when it pays for its
//! own sweep at the minimum relay fee and leaves an output above dust. Otherwise, once the close
//! is reorg-safe, it is left — reported as uneconomical — and after 16 blocks anyone may take it.
//! It never hands off.

use bitcoin::Witness;

use crate::action::{Basepoint, KeyTweak, SigningKey, SweepRequest};
use crate::bolt3::classify::{classify_anchor_spend, AnchorSpend};
use crate::bolt3::scripts;
use crate::bolt3::weights::claim_tx_weight;
use crate::bolt3::witness::{ClaimPath, ANCHOR_ANYONE_CSV};
use crate::fee::{fee_for_rate, min_relay, DUST_RELAY_FEE_SAT_PER_KVB};
use crate::policy::dust_threshold;
use crate::types::Height;

use super::claim::{close_output, Claim};
use super::context::{FeeContext, Path, ResolverAction, ResolverContext, ResolverStep};
use super::record::{Resolver, Stage, Taken};

/// Whether an anchor worth `value_sat` pays for its own sweep at the minimum relay fee, leaving
/// an output above dust at the sweep destination.
pub fn worth_sweeping(value_sat: u64, fees: &FeeContext<'_>) -> bool {
    let Some(destination) = fees.destination else {
        return false;
    };
    let weight = claim_tx_weight(&ClaimPath::AnchorOwner, destination.len());
    let fee = fee_for_rate(min_relay(fees.fees), weight);
    value_sat.saturating_sub(fee) >= dust_threshold(destination, DUST_RELAY_FEE_SAT_PER_KVB)
}

/// A block at `tip`: once the close is reorg-safe, an unspent anchor that does not pay for
/// itself is left.
pub(super) fn on_block(r: &mut Resolver, tip: Height, ctx: &ResolverContext<'_>) -> ResolverStep {
    if matches!(r.stage, Stage::Active)
        && ctx.close.reorg_safe(tip, ctx.safety_depth)
        && !worth_sweeping(r.value_sat, &ctx.fees)
    {
        r.stage = Stage::Abandoned { height: tip };
        return ResolverStep::act(ResolverAction::SettledUnspent);
    }
    ResolverStep::default()
}

/// Whose path a spend of our anchor took: ours, or anyone's after 16 blocks.
pub(super) fn judge(input: usize, w: &Witness) -> Path {
    match classify_anchor_spend(w) {
        AnchorSpend::Owner => Path::Ours,
        AnchorSpend::Anyone => Path::Theirs(Taken::ThirdParty),
        AnchorSpend::Unknown => Path::unknown(input, w),
    }
}

/// The sweep of our anchor, once it pays for itself: anyone may take it after 16 blocks — a
/// spend with nSequence 16 is final from block `close_height + 16` (BIP 68), so ours must confirm
/// by the block before.
pub(super) fn sweep_request(r: &Resolver, ctx: &ResolverContext<'_>) -> Option<SweepRequest> {
    if !worth_sweeping(r.value_sat, &ctx.fees) {
        return None;
    }
    let close = &ctx.close;
    let txout = close_output(r, close)?;
    let info = ctx.channel;
    let mature_at = close.height.saturating_add(1);
    let anyone_from = close.height.saturating_add(ANCHOR_ANYONE_CSV.into());
    let claim = Claim {
        path: ClaimPath::AnchorOwner,
        script: scripts::anchor_script(&info.local_basepoints.funding_pubkey),
        key: SigningKey::Channel {
            channel: info.id,
            basepoint: Basepoint::Funding,
            tweak: KeyTweak::None,
        },
        preimage: None,
        witness_pubkey: None,
        mature_at,
        deadline: anyone_from.saturating_sub(1).max(mature_at),
        budget_sat: r.value_sat,
        contestable: true,
    };
    Some(claim.request(info.id, r.outpoint, txout))
}
