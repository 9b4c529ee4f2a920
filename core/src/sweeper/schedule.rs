//! When each claim needs the sweeper next, so that a block visits only those claims and a
//! finished claim leaves: derived from the claims (rebuilt on load), never persisted.
//!
//! - **awake**: examined at every block — mature and being claimed, waiting for a report, or
//!   uneconomical (a fee change may revive it);
//! - **maturing**: active claims not mature yet, by the first tip at which they are (their CSV
//!   or CLTV lock): woken then, not examined before;
//! - **spent**: claims whose output a confirmed transaction spent, by its height: they leave the
//!   sweeper once that spend is final, and a disconnection of its block revives them.
//!
//! A claim in none of them (invalid, and reported) waits for its request to change.

use std::collections::{BTreeMap, BTreeSet};

use crate::action::SweepRequest;
use crate::types::{ClaimId, Height};

use super::claim::{ClaimState, SweepClaim};

/// Where a claim is in the schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Slot {
    Awake,
    Maturing(Height),
    Spent(Height),
}

/// The sweeper's schedule (see the module's documentation).
#[derive(Clone, Debug, Default)]
pub(super) struct Schedule {
    awake: BTreeSet<ClaimId>,
    maturing: BTreeMap<Height, BTreeSet<ClaimId>>,
    spent: BTreeMap<Height, BTreeSet<ClaimId>>,
    slot: BTreeMap<ClaimId, Slot>,
}

/// The first tip at which `req` may be claimed in the next block (see [`super::is_mature`]).
pub(super) fn first_mature_tip(req: &SweepRequest) -> Height {
    let csv = req.mature_at.saturating_sub(1);
    req.path.cltv_expiry().map_or(csv, |cltv| csv.max(cltv))
}

impl Schedule {
    /// Place claim `id` by its state, with the tip at `tip`.
    pub(super) fn place(&mut self, id: ClaimId, claim: &SweepClaim, tip: Option<Height>) {
        self.remove(id);
        let slot = match claim.state {
            ClaimState::Spent { height, .. } => Slot::Spent(height),
            ClaimState::Active => match tip {
                Some(tip) if first_mature_tip(&claim.request) > tip => {
                    Slot::Maturing(first_mature_tip(&claim.request))
                }
                _ => Slot::Awake,
            },
            ClaimState::Invalid { reported: true, .. } => return,
            ClaimState::Invalid { .. } | ClaimState::Uneconomical { .. } => Slot::Awake,
        };
        match slot {
            Slot::Awake => {
                self.awake.insert(id);
            }
            Slot::Maturing(at) => {
                self.maturing.entry(at).or_default().insert(id);
            }
            Slot::Spent(at) => {
                self.spent.entry(at).or_default().insert(id);
            }
        }
        self.slot.insert(id, slot);
    }

    /// Take claim `id` out of the schedule.
    pub(super) fn remove(&mut self, id: ClaimId) {
        let (map, at) = match self.slot.remove(&id) {
            None => return,
            Some(Slot::Awake) => {
                self.awake.remove(&id);
                return;
            }
            Some(Slot::Maturing(at)) => (&mut self.maturing, at),
            Some(Slot::Spent(at)) => (&mut self.spent, at),
        };
        if let Some(ids) = map.get_mut(&at) {
            ids.remove(&id);
            if ids.is_empty() {
                map.remove(&at);
            }
        }
    }

    /// The tip is `tip`: the claims mature now wake.
    pub(super) fn wake(&mut self, tip: Height) {
        let later = self.maturing.split_off(&tip.saturating_add(1));
        for id in std::mem::replace(&mut self.maturing, later)
            .into_values()
            .flatten()
        {
            self.awake.insert(id);
            self.slot.insert(id, Slot::Awake);
        }
    }

    /// The claims to examine at a block, in claim order.
    pub(super) fn awake(&self) -> Vec<ClaimId> {
        self.awake.iter().copied().collect()
    }

    /// Whether some active claim is waiting for maturity.
    pub(super) fn any_maturing(&self) -> bool {
        !self.maturing.is_empty()
    }

    /// The spent claims whose spend is `depth` deep at `tip` (final): out of the schedule.
    pub(super) fn take_final(&mut self, tip: Height, depth: u32) -> Vec<ClaimId> {
        // A spend at height h is `tip - h + 1` deep.
        let Some(last) = tip.checked_add(1).and_then(|t| t.checked_sub(depth.max(1))) else {
            return Vec::new();
        };
        let later = self.spent.split_off(&last.saturating_add(1));
        let done: Vec<ClaimId> = std::mem::replace(&mut self.spent, later)
            .into_values()
            .flatten()
            .collect();
        for id in &done {
            self.slot.remove(id);
        }
        done
    }

    /// The spent claims whose spend was confirmed at or above `height` (now disconnected).
    pub(super) fn spent_from(&self, height: Height) -> Vec<ClaimId> {
        self.spent
            .range(height..)
            .flat_map(|(_, ids)| ids.iter().copied())
            .collect()
    }
}
