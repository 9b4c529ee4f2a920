//! Batching: which inputs share a transaction. Every block, broken batches are dissolved, contested
//! batches unconfirmed too long are split, and the inputs in no transaction are grouped — joining
//! a live batch they are compatible with (which is then rebuilt as one transaction replacing the
//! old).
//!
//! A batch is led by its lowest claim id: the lead's [`SweepClaim::members`] are the other inputs
//! and its attempts are the batch's; each member's [`SweepClaim::lead`] names the lead.

use std::collections::BTreeSet;

use bitcoin::FeeRate;

use crate::action::{Action, Report, SweepRequest};
use crate::types::{ClaimId, Height};

use super::block::{self, input_budget, is_anchor};
use super::claim::{BroadcastStatus, ClaimState, SweepClaim};
use super::{Ctx, Sweeper};

/// Whether a claim is in a planned transaction: a member of a batch, or leading one that has
/// been built.
pub(super) fn planned(c: &SweepClaim) -> bool {
    c.lead.is_some() || c.leads()
}

impl Sweeper {
    /// Every input at the block: reports, and the set that may be claimed in the next block.
    /// Only the schedule's awake claims are visited: an active claim not mature yet goes back to
    /// sleep until its maturity, and a reported invalid one until its request changes.
    pub(super) fn examine(&mut self, ctx: &Ctx<'_>) -> (Vec<Action>, BTreeSet<ClaimId>) {
        let mut actions = Vec::new();
        let mut eligible = BTreeSet::new();
        self.schedule.wake(ctx.tip);
        for id in self.schedule.awake() {
            let Some(claim) = self.claims.get_mut(&id) else {
                self.schedule.remove(id);
                continue;
            };
            let (state, problem) = (claim.state.clone(), claim.last_problem.clone());
            let (reports, ok) = block::examine(claim, ctx);
            if claim.state != state || claim.last_problem != problem {
                self.changed.insert(id);
            }
            actions.extend(reports);
            if ok {
                eligible.insert(id);
            }
            let asleep = matches!(claim.state, ClaimState::Active)
                && !block::is_mature(&claim.request, ctx.tip);
            let reported_invalid =
                matches!(claim.state, ClaimState::Invalid { reported: true, .. });
            if asleep || reported_invalid {
                self.schedule.place(id, claim, Some(ctx.tip));
            }
        }
        (actions, eligible)
    }

    /// The inputs of the batch led by `lead`, the lead first.
    pub(super) fn batch_ids(&self, lead: ClaimId) -> Vec<ClaimId> {
        let mut ids = vec![lead];
        if let Some(c) = self.claims.get(&lead) {
            ids.extend(c.members.iter().copied());
        }
        ids
    }

    /// Plan the block: dissolve broken batches, split stuck contested ones, group the inputs in
    /// no transaction. Returns the reports and the leads to build, bump or rebroadcast (every
    /// eligible input that is not a member, but for the losers of an exclusive group).
    pub(super) fn plan(
        &mut self,
        ctx: &Ctx<'_>,
        eligible: &BTreeSet<ClaimId>,
    ) -> (Vec<Action>, Vec<ClaimId>) {
        let mut actions = Vec::new();
        // Member links whose lead no longer lists them.
        let stale: Vec<ClaimId> = self
            .claims
            .iter()
            .filter(|(id, c)| {
                c.lead.is_some_and(|l| {
                    !self
                        .claims
                        .get(&l)
                        .is_some_and(|lc| lc.leads() && lc.members.contains(id))
                })
            })
            .map(|(id, _)| *id)
            .collect();
        for id in stale {
            if let Some(c) = self.claims.get_mut(&id) {
                c.lead = None;
                self.changed.insert(id);
            }
        }
        // Batches with an input that can no longer be claimed with the others (a confirmed
        // batch, every input spent by it, stays as it is: a reorg may bring it back).
        for lead in self.batch_leads() {
            let ids = self.batch_ids(lead);
            let spent = |i: &ClaimId| {
                self.claims
                    .get(i)
                    .is_some_and(|c| matches!(c.state, ClaimState::Spent { .. }))
            };
            if ids.iter().all(|i| eligible.contains(i)) || ids.iter().all(spent) {
                continue;
            }
            self.dissolve(lead, true);
        }
        // Contested batches unconfirmed too long: one transaction per input from now on.
        let split_after = ctx.policy.split_after_blocks;
        for lead in self.batch_leads() {
            let ids = self.batch_ids(lead);
            let Some(claim) = self.claims.get(&lead) else {
                continue;
            };
            let since = claim
                .attempts
                .get(claim.first_current as usize)
                .map(|a| a.built_at);
            let contested = ids.iter().all(|i| {
                self.claims
                    .get(i)
                    .is_some_and(|c| c.request.contestable && eligible.contains(i))
            });
            let Some(since) = since else {
                continue;
            };
            if ids.len() > 1
                && contested
                && split_after > 0
                && ctx.tip >= since.saturating_add(split_after)
            {
                let why = format!(
                    "unconfirmed for {} blocks since {since}; splitting it so no pinned input \
                     holds back the others",
                    ctx.tip - since
                );
                actions.extend(self.split_reports(lead, ctx.tip, &why));
                self.split(lead);
            }
        }
        let leads = self.group(ctx, eligible);
        (actions, leads)
    }

    /// Leads of a built batch of more than one input.
    fn batch_leads(&self) -> Vec<ClaimId> {
        self.claims
            .iter()
            .filter(|(_, c)| c.leads() && !c.members.is_empty())
            .map(|(id, _)| *id)
            .collect()
    }

    /// Timeline entries saying the batch led by `lead` is split, and why.
    pub(super) fn split_reports(&self, lead: ClaimId, height: Height, why: &str) -> Vec<Action> {
        let txid = self
            .claims
            .get(&lead)
            .and_then(|c| c.best_signed().or(c.current()).map(|a| a.txid));
        self.batch_ids(lead)
            .iter()
            .filter_map(|i| self.claims.get(i))
            .map(|c| {
                Action::Report(Report::Timeline {
                    channel: c.request.channel,
                    outpoint: c.request.outpoint,
                    height,
                    stage: format!("batch split: {why}; claimed on its own from now on"),
                    txid,
                })
            })
            .collect()
    }

    /// Split the batch led by `lead`: each of its inputs is claimed alone from the next block.
    /// Returns whether it had more than one input.
    pub(super) fn split(&mut self, lead: ClaimId) -> bool {
        let ids = self.batch_ids(lead);
        if ids.len() < 2 {
            return false;
        }
        for id in &ids {
            if let Some(c) = self.claims.get_mut(id) {
                c.alone = true;
            }
        }
        self.dissolve(lead, true);
        true
    }

    /// Dissolve the batch of more than one input that `id` belongs to, if any: its other inputs
    /// are re-planned at the next block. `conflicted`: a confirmed transaction conflicts with
    /// the batch (it left every mempool, so its replacements need not outbid it).
    pub(super) fn dissolve_batch_of(&mut self, id: ClaimId, conflicted: bool) {
        let Some(claim) = self.claims.get(&id) else {
            return;
        };
        let lead = claim.lead.unwrap_or(id);
        if self
            .claims
            .get(&lead)
            .is_some_and(|l| !l.members.is_empty())
        {
            self.dissolve(lead, !conflicted);
        }
    }

    /// Dissolve the batch led by `lead`. With `outbid`, each input keeps the rate of the batch's
    /// last broadcast transaction as a floor: whatever replaces it must pay more (BIP 125).
    fn dissolve(&mut self, lead: ClaimId, outbid: bool) {
        let ids = self.batch_ids(lead);
        let floor: Option<FeeRate> = self
            .claims
            .get(&lead)
            .and_then(|c| c.best_signed())
            .filter(|a| a.broadcast != BroadcastStatus::NotSent)
            .map(|a| a.feerate)
            .filter(|_| outbid);
        for id in ids {
            let Some(c) = self.claims.get_mut(&id) else {
                continue;
            };
            if let Some(f) = floor {
                c.refused_rate = Some(c.refused_rate.map_or(f, |r| r.max(f)));
            }
            if id == lead {
                c.plan = None;
            }
            c.unplan();
            self.changed.insert(id);
        }
    }

    /// Group the eligible inputs in no transaction into batches (absorbing compatible live
    /// batches). Returns the leads to build.
    fn group(&mut self, ctx: &Ctx<'_>, eligible: &BTreeSet<ClaimId>) -> Vec<ClaimId> {
        let policy = ctx.policy;
        let max = usize::from(policy.max_batch_inputs.max(1));
        let window = policy.batch_deadline_window;
        let mut taken: BTreeSet<u64> = self
            .claims
            .values()
            .filter(|c| planned(c) || matches!(c.state, ClaimState::Spent { .. }))
            .filter_map(|c| c.request.exclusive_group)
            .collect();
        let mut excluded = BTreeSet::new();
        let mut pool = Vec::new();
        for id in eligible {
            let Some(c) = self.claims.get(id) else {
                continue;
            };
            if planned(c) {
                continue;
            }
            if let Some(g) = c.request.exclusive_group {
                if !taken.insert(g) {
                    excluded.insert(*id);
                    continue;
                }
            }
            if c.alone || is_anchor(&c.request.path) || max == 1 {
                self.form(&[*id]);
            } else {
                pool.push(*id);
            }
        }
        if !pool.is_empty() {
            // A live batch a newcomer could join is rebuilt with it.
            let key = |s: &Sweeper, id: &ClaimId| {
                s.claims
                    .get(id)
                    .map(|c| (c.request.contestable, c.request.deadline))
            };
            let newcomers: Vec<(bool, Height)> =
                pool.iter().filter_map(|id| key(self, id)).collect();
            let live: Vec<ClaimId> = self
                .claims
                .iter()
                .filter(|(id, c)| {
                    c.leads() && !c.alone && !is_anchor(&c.request.path) && eligible.contains(*id)
                })
                .map(|(id, _)| *id)
                .collect();
            for lead in live {
                let ids = self.batch_ids(lead);
                if ids.len() >= max || ids.iter().any(|i| !eligible.contains(i)) {
                    continue;
                }
                let inputs: Vec<(bool, Height)> =
                    ids.iter().filter_map(|id| key(self, id)).collect();
                let joins = newcomers.iter().any(|(class, deadline)| {
                    inputs
                        .iter()
                        .all(|(c, d)| c == class && d.abs_diff(*deadline) <= window)
                });
                if joins {
                    self.dissolve(lead, true);
                    pool.extend(ids);
                }
            }
            pool.sort_by_key(|id| key(self, id).map(|(c, d)| (c, d, *id)));
            pool.dedup();
            let mut batch: Vec<ClaimId> = Vec::new();
            let mut first: Option<(bool, Height)> = None;
            for id in pool {
                let Some((class, deadline)) = key(self, &id) else {
                    continue;
                };
                if let Some((c, d)) = first {
                    if c != class || deadline.saturating_sub(d) > window || batch.len() >= max {
                        self.form(&batch);
                        batch.clear();
                        first = None;
                    }
                }
                first.get_or_insert((class, deadline));
                batch.push(id);
            }
            if !batch.is_empty() {
                self.form(&batch);
            }
        }
        eligible
            .iter()
            .filter(|id| !excluded.contains(*id))
            .filter(|id| self.claims.get(*id).is_some_and(|c| c.lead.is_none()))
            .copied()
            .collect()
    }

    /// Make `ids` one batch, led by the lowest id; it is built at this block.
    pub(super) fn form(&mut self, ids: &[ClaimId]) {
        let mut ids = ids.to_vec();
        ids.sort();
        let Some((&lead, members)) = ids.split_first() else {
            return;
        };
        let floor = ids
            .iter()
            .filter_map(|i| self.claims.get(i).and_then(|c| c.refused_rate))
            .max();
        for id in members {
            if let Some(c) = self.claims.get_mut(id) {
                c.unplan();
                c.lead = Some(lead);
                self.changed.insert(*id);
            }
        }
        if let Some(c) = self.claims.get_mut(&lead) {
            c.unplan();
            c.members = members.to_vec();
            if !members.is_empty() {
                c.plan = None;
            }
            c.refused_rate = floor;
            self.changed.insert(lead);
        }
    }

    /// The block for the batch led by `lead`: build, bump or rebroadcast.
    pub(super) fn block_of(&mut self, lead: ClaimId, ctx: &Ctx<'_>) -> Vec<Action> {
        let ids = self.batch_ids(lead);
        let inputs: Vec<SweepRequest> = ids
            .iter()
            .filter_map(|i| self.claims.get(i).map(|c| c.request.clone()))
            .collect();
        if inputs.len() != ids.len() {
            return Vec::new();
        }
        let budgets: Vec<u64> = inputs
            .iter()
            .map(|r| {
                input_budget(r, ctx.fees, ctx.cfg, ctx.policy)
                    .usable()
                    .unwrap_or(0)
            })
            .collect();
        let Some(claim) = self.claims.get_mut(&lead) else {
            return Vec::new();
        };
        let before = claim.clone();
        let actions = block::on_block(claim, &inputs, &budgets, ctx);
        if *claim != before {
            self.changed.insert(lead);
            for a in claim.attempts.iter().skip(before.attempts.len()) {
                self.by_txid.insert(a.txid, lead);
            }
        }
        actions
    }
}
