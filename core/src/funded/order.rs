//! Which claim the wallet funds first: the driver runs a step's actions in order, and a wallet
//! lends each coin to the first request it fits, so when the wallet cannot fund every claim the
//! order of the requests decides which are funded. The nearest deadline goes first.

use crate::action::Action;
use crate::types::{ClaimId, Height};

/// Reorder the funding requests among `actions` by their claims' deadlines, nearest first (ties,
/// and claims whose deadline `deadline_of` does not know, by claim id, unknown deadlines last).
/// Only the funding requests move, and only among the places funding requests held: every other
/// action keeps its place, so whatever preceded or followed all of them still does.
pub fn fund_nearest_deadlines_first(
    actions: &mut [Action],
    deadline_of: impl Fn(ClaimId) -> Option<Height>,
) {
    let slots: Vec<usize> = actions
        .iter()
        .enumerate()
        .filter(|(_, a)| matches!(a, Action::FundFromWallet(_)))
        .map(|(i, _)| i)
        .collect();
    if slots.len() < 2 {
        return;
    }
    let mut requests: Vec<Action> = slots.iter().map(|i| actions[*i].clone()).collect();
    let key = |a: &Action| match a {
        Action::FundFromWallet(r) => (
            deadline_of(r.request.claim).unwrap_or(Height::MAX),
            r.request.claim,
            r.request.attempt,
        ),
        _ => (Height::MAX, ClaimId(u64::MAX), u32::MAX),
    };
    requests.sort_by_key(key);
    for (slot, request) in slots.into_iter().zip(requests) {
        actions[slot] = request;
    }
}
