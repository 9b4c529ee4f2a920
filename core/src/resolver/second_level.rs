//! The hand-off of an HTLC on our own commitment once our second-level transaction (HTLC-timeout
//! or HTLC-success) confirmed: its output pays our `to_local` script, so it becomes a balance
//! to sweep after `to_self_delay` — a [`super::commit_sweep`] created at the height of that
//! transaction. A disconnection of that block removes the successor again.

use bitcoin::{OutPoint, Transaction};

use crate::types::{Height, Party};

use super::context::ResolverContext;
use super::record::{Resolver, ResolverKind};

/// The successor of an HTLC resolver whose output `tx` (confirmed at `height`) spent, when `tx`
/// is our second-level transaction: recognised by its output (our `to_local` script), so any
/// attempt of ours counts, even one signed before a reorg re-planned the resolver.
pub(super) fn hand_off(
    tx: &Transaction,
    height: Height,
    ctx: &ResolverContext<'_>,
) -> Option<Resolver> {
    let (Some((Party::Local, _, _)), Some(to_local)) = (ctx.close.confirmed, ctx.close.to_local)
    else {
        return None;
    };
    let delay = ctx.channel.local_to_self_delay;
    let output = tx
        .output
        .first()
        .filter(|o| o.script_pubkey == to_local.to_p2wsh())?;
    let mut next = Resolver::new(
        OutPoint {
            txid: tx.compute_txid(),
            vout: 0,
        },
        output.value.to_sat(),
        ResolverKind::CommitSweep {
            mature_at: height.saturating_add(u32::from(delay)),
        },
    );
    next.created_at = Some(height);
    Some(next)
}
