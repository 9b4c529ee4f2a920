//! Anchor: our anchor on a confirmed commitment, of either kind ([`AnchorKind`]) — a keyed
//! 330-sat anchor (BOLT 3 `option_anchors`, ours on either commitment) or the shared
//! pay-to-anchor output of a zero-fee commitment (0–240 sat, anyone's, so ours on either
//! commitment too). Before the close it served CPFP (the channel's business); after it, it is
//! swept only when it pays for its own sweep at the minimum relay fee and leaves an output above
//! dust. Otherwise, once the close is reorg-safe, it is left — reported as uneconomical. A keyed
//! anchor is anyone's after 16 blocks, a pay-to-anchor output at once: a spend by anyone else is
//! a third party's take, an expected outcome, never a loss. It never hands off.

use bitcoin::{ScriptBuf, Witness};

use crate::action::{Basepoint, KeyTweak, SigningKey, SweepRequest};
use crate::bolt3::classify::{classify_anchor_spend, classify_pay_to_anchor_spend, AnchorSpend};
use crate::bolt3::taproot::classify::{self as taproot_classify, TaprootSpendKind};
use crate::bolt3::weights::claim_tx_weight;
use crate::bolt3::witness::{ClaimPath, ANCHOR_ANYONE_CSV};
use crate::bolt3::{scripts, AnchorKind};
use crate::fee::{fee_for_rate, min_relay, DUST_RELAY_FEE_SAT_PER_KVB};
use crate::policy::dust_threshold;
use crate::types::Height;

use super::claim::{close_output, Claim};
use super::context::{FeeContext, Path, ResolverAction, ResolverContext, ResolverStep};
use super::record::{Resolver, Stage, Taken};

/// How we spend an anchor of `kind`. `None` for simple taproot's P2TR anchors: the sweeper
/// makes no BIP 340 signatures yet (such channels are refused at registration,
/// [`crate::bolt3::ChannelType::engine_support`]), so they are never worth sweeping here.
fn claim_path(kind: AnchorKind) -> Option<ClaimPath> {
    match kind {
        AnchorKind::Keyed => Some(ClaimPath::AnchorOwner),
        AnchorKind::PayToAnchor => Some(ClaimPath::PayToAnchor),
        AnchorKind::KeyedTaproot => None,
    }
}

/// Whose path a spend of a simple taproot anchor took: the key path is its owner's, the
/// `OP_16 OP_CSV` leaf anyone's ([`taproot_classify::classify_witness`]).
fn classify_taproot_anchor_spend(w: &Witness) -> AnchorSpend {
    match taproot_classify::classify_witness(w) {
        Ok(TaprootSpendKind::KeyPath) => AnchorSpend::Owner,
        Ok(TaprootSpendKind::AnchorSweep) => AnchorSpend::Anyone,
        _ => AnchorSpend::Unknown,
    }
}

/// The kind of the channel's anchors (a channel without anchors has no anchor resolver; keyed
/// is the historical default).
fn kind_of(ctx: &ResolverContext<'_>) -> AnchorKind {
    ctx.channel
        .channel_type
        .anchor_kind()
        .unwrap_or(AnchorKind::Keyed)
}

/// Whether an anchor of `kind` worth `value_sat` pays for its own sweep at the minimum relay fee,
/// leaving an output above dust at the sweep destination.
pub fn worth_sweeping(value_sat: u64, kind: AnchorKind, fees: &FeeContext<'_>) -> bool {
    let (Some(destination), Some(path)) = (fees.destination, claim_path(kind)) else {
        return false;
    };
    let weight = claim_tx_weight(&path, destination.len());
    let fee = fee_for_rate(min_relay(fees.fees), weight);
    value_sat.saturating_sub(fee) >= dust_threshold(destination, DUST_RELAY_FEE_SAT_PER_KVB)
}

/// A block at `tip`: once the close is reorg-safe, an unspent anchor that does not pay for
/// itself is left.
pub(super) fn on_block(r: &mut Resolver, tip: Height, ctx: &ResolverContext<'_>) -> ResolverStep {
    if matches!(r.stage, Stage::Active)
        && ctx.close.reorg_safe(tip, ctx.safety_depth)
        && !worth_sweeping(r.value_sat, kind_of(ctx), &ctx.fees)
    {
        r.stage = Stage::Abandoned { height: tip };
        return ResolverStep::act(ResolverAction::SettledUnspent);
    }
    ResolverStep::default()
}

/// Whose path a spend of our anchor took (our own spends are known by txid before this is
/// asked): a keyed anchor's owner path is ours, its anyone path a third party's; any spend of a
/// pay-to-anchor output is a third party's.
pub(super) fn judge(input: usize, w: &Witness, ctx: &ResolverContext<'_>) -> Path {
    let spend = match kind_of(ctx) {
        AnchorKind::Keyed => classify_anchor_spend(w),
        AnchorKind::PayToAnchor => classify_pay_to_anchor_spend(w),
        AnchorKind::KeyedTaproot => classify_taproot_anchor_spend(w),
    };
    match spend {
        AnchorSpend::Owner => Path::Ours,
        AnchorSpend::Anyone => Path::Theirs(Taken::ThirdParty),
        AnchorSpend::Unknown => Path::unknown(input, w),
    }
}

/// The sweep of our anchor, once it pays for itself. A keyed anchor is anyone's after 16 blocks
/// — a spend with nSequence 16 is final from block `close_height + 16` (BIP 68), so ours must
/// confirm by the block before; a pay-to-anchor output is anyone's at once, so its deadline is
/// the first block it can confirm in.
pub(super) fn sweep_request(r: &Resolver, ctx: &ResolverContext<'_>) -> Option<SweepRequest> {
    let kind = kind_of(ctx);
    if !worth_sweeping(r.value_sat, kind, &ctx.fees) {
        return None;
    }
    let close = &ctx.close;
    let txout = close_output(r, close)?;
    let info = ctx.channel;
    let mature_at = close.height.saturating_add(1);
    let (script, deadline) = match kind {
        AnchorKind::Keyed => {
            let anyone_from = close.height.saturating_add(ANCHOR_ANYONE_CSV.into());
            (
                scripts::anchor_script(&info.local_basepoints.funding_pubkey),
                anyone_from.saturating_sub(1).max(mature_at),
            )
        }
        AnchorKind::PayToAnchor => (ScriptBuf::new(), mature_at),
        // Never worth sweeping (no claim path): returned above.
        AnchorKind::KeyedTaproot => return None,
    };
    let claim = Claim {
        path: claim_path(kind)?,
        script,
        key: SigningKey::Channel {
            channel: info.id,
            basepoint: Basepoint::Funding,
            tweak: KeyTweak::None,
        },
        preimage: None,
        witness_pubkey: None,
        mature_at,
        deadline,
        budget_sat: r.value_sat,
        contestable: true,
    };
    Some(claim.request(info.id, r.outpoint, txout))
}
