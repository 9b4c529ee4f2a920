//! The sweeper: the only builder of claim transactions and the owner of every fee decision
//! ("claims have one owner"). Resolvers say *what* to claim, by when and for how much
//! ([`SweepRequest`]); the sweeper claims it.
//!
//! - **Batching** ([`plan`]): every block, the mature inputs not yet in a transaction are grouped
//!   with compatible ones — deadlines at most [`SweeperPolicy::batch_deadline_window`] apart,
//!   never an anchor, never an output the peer can contest with one only we can spend, at most
//!   one input of an exclusive group — into one transaction paying everything above the fee to
//!   [`SweeperConfig::destination`]. A batch is led by one claim, whose attempts are the batch's.
//!   An input spent by someone else, cancelled or changed dissolves its batch; the others are
//!   re-planned at the next block.
//! - **Splitting**: a batch of contestable inputs (a justice transaction) unconfirmed for
//!   [`SweeperPolicy::split_after_blocks`], or one rejected for its scripts or policy, is split
//!   into one transaction per input, so one pinned or bad input cannot hold back the others.
//! - A **fee function** ([`fee::FeeFunction`], curve [`SweeperPolicy::fee_curve`]) from the fee
//!   estimate at the first build toward the budget's fee rate at the earliest deadline, raised to
//!   the current market estimate and the relay floor, and never above the budget (invariant 7);
//!   a batch's budget is the sum of its inputs' and each input's share of the fee is pro rata by
//!   budget, so no input pays more than its own.
//! - A **bump** (a new attempt, replacing the previous one under BIP 125 rules 3 and 4) whenever
//!   the function has risen enough; otherwise the signed transaction is **rebroadcast every
//!   block** (a defence against replacement cycling).
//! - **`nLockTime` at the tip** (anti-fee-sniping), or at the paths' `cltv_expiry` if higher, so
//!   every transaction is final exactly in the block it is offered for and never before its
//!   maturity; nothing is (re)broadcast before it is final, after a reorg or a restart.
//! - An input whose budget (or value above dust) cannot pay the minimum relay fee alone is
//!   **uneconomical**: reported once, never broadcast — except the timeout claim of an outgoing
//!   HTLC, which is forced at the relay fee (or, if configured so, left to cut-loss, reported).
//! - Every decision is **reported**: the rate, what set it, the budget left and the deadline.
//!
//! A pure, deterministic state machine: claims by [`ClaimId`] (one per input) in a `BTreeMap`,
//! indexes outpoint → claim and txid → lead claim derived from them, no clock, no randomness.
//! Every transaction built is kept in the [`SweepClaim`] that leads its batch (one persisted
//! record per claim).
//!
//! Heights: at [`Sweeper::on_block`] with tip `t`, transactions are offered for block `t + 1`;
//! the fee function is evaluated at `t + 1` and reaches the budget rate when `t + 1` is the
//! deadline.

use std::collections::{BTreeMap, BTreeSet};

use bitcoin::{FeeRate, OutPoint, ScriptBuf, Txid};
use serde::{Deserialize, Serialize};

use crate::action::{Action, SweepRequest};
use crate::event::{BroadcastOutcome, FeeConditions, SignOutcome};
use crate::node::NodeState;
use crate::types::{ClaimId, Height, RequestId};

mod block;
mod chain;
mod claim;
mod events;
mod plan;
mod policy;
pub mod reserve;
mod schedule;
pub mod step;
#[cfg(test)]
mod tests;

pub use block::{is_mature, max_fee};
pub use claim::{
    check_request, signing_pubkey, Attempt, BroadcastStatus, ClaimState, SignatureError,
    SweepClaim, SweepError,
};
pub use events::{classify_rejection, is_fee_refusal, Rejection};
pub use policy::SweeperPolicy;

pub use crate::fee::DUST_RELAY_FEE_SAT_PER_KVB;

/// What a block's planning needs to know.
pub(super) struct Ctx<'a> {
    /// The tip: transactions are offered for the next block.
    pub tip: Height,
    /// The fee conditions, if known.
    pub fees: Option<&'a FeeConditions>,
    /// Where sweeps pay to, and the fallback fee rate.
    pub cfg: &'a SweeperConfig,
    /// Batching, splitting and fee-curve settings.
    pub policy: &'a SweeperPolicy,
    /// What the fee wallet still lacks of its reserve, while it lacks any: the next attempt built
    /// pays it up to that much.
    pub topup: Option<TopUp<'a>>,
}

/// A top-up of the fee wallet a sweep may carry.
#[derive(Clone, Copy, Debug)]
pub(super) struct TopUp<'a> {
    /// The fee wallet's script.
    pub script: &'a ScriptBuf,
    /// The most to pay it.
    pub room: u64,
}

/// What the sweeper needs from the node's configuration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SweeperConfig {
    /// Where swept funds go (a wallet script, separate from the wallet that funds CPFP).
    pub destination: ScriptBuf,
    /// The fee rate to start from while no fee conditions are known.
    pub fallback_feerate: FeeRate,
    /// A script of the wallet that funds CPFP children and zero-fee HTLC transactions. While
    /// that wallet is below the fee reserve, a sweep adds an output paying it the shortfall (the
    /// rest still goes to `destination`), so the outputs of confirmed closes refill it. `None`:
    /// every sweep pays `destination` alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fee_wallet: Option<ScriptBuf>,
}

/// Every claim of the node's outputs, one per input.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(
    from = "BTreeMap<ClaimId, SweepClaim>",
    into = "BTreeMap<ClaimId, SweepClaim>"
)]
pub struct Sweeper {
    claims: BTreeMap<ClaimId, SweepClaim>,
    /// Derived from `claims`: the claim of each outpoint.
    by_outpoint: BTreeMap<OutPoint, ClaimId>,
    /// Derived from `claims`: the claim holding each transaction we built.
    by_txid: BTreeMap<Txid, ClaimId>,
    /// Derived from `claims`: which claims a block examines, and when a spent one leaves.
    schedule: schedule::Schedule,
    /// Claims changed (or removed) since [`Sweeper::take_changed`]; not persisted.
    changed: BTreeSet<ClaimId>,
    /// The chain's tip (kept by the chain arbitrator, restored with it on load): nothing is
    /// broadcast that is not final in the block after it.
    tip: Option<Height>,
    /// The CPFP wallet's confirmed balance, once told. Not persisted.
    wallet_balance: Option<u64>,
    /// Where the wallet stood against the fee reserve at the last check. Not persisted.
    reserve_level: Option<reserve::ReserveLevel>,
    /// The fee reserve at the last check. Not persisted.
    reserve_needed: Option<u64>,
    /// What our confirmed sweeps paid the fee wallet since its balance was last told (the
    /// balance does not show it yet). Not persisted.
    topup_landed: u64,
}

impl PartialEq for Sweeper {
    /// Equal when the claims and the tip are: the indexes are derived, the change set and the
    /// fee wallet's figures transient.
    fn eq(&self, other: &Self) -> bool {
        self.claims == other.claims && self.tip == other.tip
    }
}

impl Eq for Sweeper {}

impl From<BTreeMap<ClaimId, SweepClaim>> for Sweeper {
    fn from(claims: BTreeMap<ClaimId, SweepClaim>) -> Self {
        Sweeper::from_claims(claims)
    }
}

impl From<Sweeper> for BTreeMap<ClaimId, SweepClaim> {
    fn from(sweeper: Sweeper) -> Self {
        sweeper.claims
    }
}

impl Sweeper {
    /// An empty sweeper.
    pub fn new() -> Self {
        Sweeper::default()
    }

    /// Rebuild a sweeper from its persisted claims (the indexes are derived).
    pub fn from_claims(claims: BTreeMap<ClaimId, SweepClaim>) -> Self {
        let by_outpoint = claims
            .iter()
            .map(|(id, c)| (c.request.outpoint, *id))
            .collect();
        let by_txid = claims
            .iter()
            .flat_map(|(id, c)| c.attempts.iter().map(move |a| (a.txid, *id)))
            .collect();
        let mut schedule = schedule::Schedule::default();
        for (id, claim) in &claims {
            schedule.place(*id, claim, None);
        }
        Sweeper {
            claims,
            by_outpoint,
            by_txid,
            schedule,
            changed: BTreeSet::new(),
            tip: None,
            wallet_balance: None,
            reserve_needed: None,
            topup_landed: 0,
            reserve_level: None,
        }
    }

    /// The chain's tip changed (a block connected or disconnected, the node loaded): what is
    /// signed from now on is broadcast only if final in the block after it.
    pub fn set_tip(&mut self, tip: Option<Height>) {
        self.tip = tip;
    }

    /// Every claim, for persistence (one record per claim) and reports.
    pub fn claims(&self) -> &BTreeMap<ClaimId, SweepClaim> {
        &self.claims
    }

    /// The claims changed or removed since the last call: write each one still in
    /// [`Sweeper::claims`], delete the others.
    pub fn take_changed(&mut self) -> BTreeSet<ClaimId> {
        std::mem::take(&mut self.changed)
    }

    /// The claim of `outpoint`, if any.
    pub fn claim_for(&self, outpoint: &OutPoint) -> Option<ClaimId> {
        self.by_outpoint.get(outpoint).copied()
    }

    /// Whether `claim` is one of the sweeper's (to route `Signed` and `BroadcastResult`).
    pub fn owns(&self, claim: ClaimId) -> bool {
        self.claims.contains_key(&claim)
    }

    /// Add a request, or update the one already registered for its outpoint (deadline, budget,
    /// maturity, or even path and key: then the next block builds afresh, re-planning its
    /// batch). Idempotent: the same request twice changes nothing. Returns whether anything
    /// changed. A request that cannot be claimed as given is kept as [`ClaimState::Invalid`] and
    /// reported at the next block.
    pub fn request(&mut self, req: SweepRequest, node: &mut NodeState) -> bool {
        if let Some(id) = self.claim_for(&req.outpoint) {
            let Some(claim) = self.claims.get_mut(&id) else {
                return false;
            };
            if claim.request == req {
                return false;
            }
            let envelope = claim::envelope_changed(&claim.request, &req);
            if envelope {
                claim.refused_rate = None;
            }
            let checked = check_request(&req);
            claim.request = req;
            match (&claim.state, checked) {
                (ClaimState::Spent { .. }, _) => {}
                (_, Err(error)) => {
                    claim.state = ClaimState::Invalid {
                        error,
                        reported: false,
                    }
                }
                (ClaimState::Invalid { .. }, Ok(())) => claim.state = ClaimState::Active,
                (_, Ok(())) => {}
            }
            self.changed.insert(id);
            self.schedule.place(id, claim, self.tip);
            if envelope {
                // Its transactions spend by the old path: the batch is re-planned.
                self.dissolve_batch_of(id, false);
                if let Some(claim) = self.claims.get_mut(&id) {
                    claim.unplan();
                }
            }
            return true;
        }
        let id = node.new_claim();
        let claim = SweepClaim::new(id, req);
        self.schedule.place(id, &claim, self.tip);
        self.by_outpoint.insert(claim.request.outpoint, id);
        self.claims.insert(id, claim);
        self.changed.insert(id);
        true
    }

    /// Stop claiming `outpoint` (its resolver no longer wants it, or is done with it) and forget
    /// its claim; the rest of its batch is re-planned at the next block. Returns whether there
    /// was one.
    pub fn cancel(&mut self, outpoint: &OutPoint) -> bool {
        let Some(id) = self.by_outpoint.get(outpoint).copied() else {
            return false;
        };
        self.dissolve_batch_of(id, false);
        self.by_outpoint.remove(outpoint);
        self.schedule.remove(id);
        if let Some(claim) = self.claims.remove(&id) {
            for a in &claim.attempts {
                if self.by_txid.get(&a.txid) == Some(&id) {
                    self.by_txid.remove(&a.txid);
                }
            }
        }
        self.changed.insert(id);
        true
    }

    /// The block at `tip` connected (transactions are now offered for `tip + 1`): mature,
    /// unspent inputs are batched, built, bumped, split or rebroadcast.
    pub fn on_block(
        &mut self,
        tip: Height,
        fees: Option<&FeeConditions>,
        cfg: &SweeperConfig,
        policy: &SweeperPolicy,
    ) -> Vec<Action> {
        self.tip = Some(tip);
        let mut ctx = Ctx {
            tip,
            fees,
            cfg,
            policy,
            topup: None,
        };
        let (mut actions, eligible) = self.examine(&ctx);
        let (reports, leads) = self.plan(&ctx, &eligible);
        actions.extend(reports);
        let mut room = cfg.fee_wallet.as_ref().map_or(0, |_| self.topup_room());
        for lead in leads {
            // A new attempt replaces the lead's current one, and its top-up the old one's.
            let available = room.saturating_add(self.current_topup(lead));
            ctx.topup = cfg
                .fee_wallet
                .as_ref()
                .filter(|_| available > 0)
                .map(|script| TopUp {
                    script,
                    room: available,
                });
            actions.extend(self.block_of(lead, &ctx));
            room = available.saturating_sub(self.current_topup(lead));
        }
        actions
    }

    /// Between blocks: build the claims of `outpoints` that are new (never built, in no
    /// batch) and mature, each in a transaction of its own, for block `tip + 1` — a claim with
    /// a preimage just learned goes out in the step that learned it, not a block later.
    /// Claims already out are left to the next block.
    pub fn claim_now(
        &mut self,
        outpoints: &BTreeSet<OutPoint>,
        tip: Height,
        fees: Option<&FeeConditions>,
        cfg: &SweeperConfig,
        policy: &SweeperPolicy,
    ) -> Vec<Action> {
        let ctx = Ctx {
            tip,
            fees,
            cfg,
            policy,
            topup: None,
        };
        let mut actions = Vec::new();
        for outpoint in outpoints {
            let Some(id) = self.claim_for(outpoint) else {
                continue;
            };
            let Some(claim) = self.claims.get_mut(&id) else {
                continue;
            };
            if plan::planned(claim) || !claim.attempts.is_empty() {
                continue;
            }
            self.tip = Some(tip);
            let before = claim.clone();
            let (reports, eligible) = block::examine(claim, &ctx);
            if *claim != before {
                self.changed.insert(id);
            }
            actions.extend(reports);
            if eligible {
                self.form(&[id]);
                actions.extend(self.block_of(id, &ctx));
            }
        }
        actions
    }

    /// A signer's answer. A signature for the current attempt is checked and broadcast (once
    /// final); one for a superseded attempt is recorded and dropped.
    pub fn on_signed(&mut self, request: RequestId, outcome: &SignOutcome) -> Vec<Action> {
        let Some(inputs) = self.inputs_of_attempt(request) else {
            return Vec::new();
        };
        let tip = self.tip;
        let Some(claim) = self.claims.get_mut(&request.claim) else {
            return Vec::new();
        };
        let before = claim.clone();
        let actions = events::on_signed(claim, request, outcome, &inputs, tip);
        if *claim != before {
            self.changed.insert(request.claim);
        }
        actions
    }

    /// A broadcaster's answer: "already known" is success; a fee refusal makes the next block
    /// bump; a missing or conflicting input, or a script or policy error, splits a batch into
    /// one transaction per input (a lone input is reported and keeps rebroadcasting).
    pub fn on_broadcast_result(
        &mut self,
        request: RequestId,
        outcome: &BroadcastOutcome,
    ) -> Vec<Action> {
        let Some(claim) = self.claims.get_mut(&request.claim) else {
            return Vec::new();
        };
        let before = claim.clone();
        let (actions, split) = events::on_broadcast_result(claim, request, outcome);
        if *claim != before {
            self.changed.insert(request.claim);
        }
        if split {
            self.split(request.claim);
        }
        actions
    }

    /// The fee we paid (or are paying) for `outpoint`: its share of the confirmed attempt, zero if
    /// someone else's transaction spent it, otherwise its share of the latest signed attempt
    /// spending it.
    pub fn fees_paid(&self, outpoint: &OutPoint) -> Option<u64> {
        let id = self.claim_for(outpoint)?;
        let claim = self.claims.get(&id)?;
        let share_in = |lead: ClaimId, a: &Attempt| a.input_of(lead, id).map(|i| a.share(i));
        match &claim.state {
            ClaimState::Spent {
                txid, ours: true, ..
            } => {
                let lead = *self.by_txid.get(txid)?;
                let a = self.claims.get(&lead)?.attempt_with_txid(txid)?;
                share_in(lead, a)
            }
            ClaimState::Spent { ours: false, .. } => Some(0),
            _ => {
                let lead = claim.lead.unwrap_or(id);
                self.claims
                    .get(&lead)?
                    .attempts
                    .iter()
                    .rev()
                    .filter(|a| a.signed.is_some())
                    .find_map(|a| share_in(lead, a))
            }
        }
    }

    /// What was pending when the node stopped, to re-emit after `Event::Resumed` with the tip
    /// the node resumed at: the broadcast of each live batch's signed transaction if it is final
    /// in the next block (after a reorg it may not be: the next block rebuilds), and the sign
    /// request of an attempt still waiting for its signature.
    pub fn pending_after_restart(&mut self, tip: Option<Height>) -> Vec<Action> {
        self.tip = tip;
        let mut actions = Vec::new();
        for claim in self.claims.values() {
            if !claim.is_live() || !claim.leads() {
                continue;
            }
            if let Some(best) = claim.best_signed() {
                if let (Some(tx), Some(tip)) = (&best.signed, tip) {
                    if block::final_after(best, tip) {
                        actions.push(Action::Broadcast {
                            request: claim.request_id(best.attempt),
                            tx: tx.clone(),
                        });
                    }
                }
            }
            if let Some(current) = claim.current().filter(|a| a.signed.is_none()) {
                let request = claim.request_id(current.attempt);
                let inputs = self.inputs_of_attempt(request).unwrap_or_default();
                actions.extend(claim.sign_request(current, &inputs).map(Action::Sign));
            }
        }
        actions
    }

    /// Whether no block can make the sweeper act: every claim is spent, or is invalid or
    /// uneconomical and was reported. A claim waiting for maturity is not idle. Reads the
    /// schedule's awake claims only.
    pub fn is_idle(&self) -> bool {
        !self.schedule.any_maturing()
            && self.schedule.awake().iter().all(|id| {
                self.claims.get(id).is_none_or(|c| match c.state {
                    ClaimState::Spent { .. } => true,
                    ClaimState::Invalid { reported, .. }
                    | ClaimState::Uneconomical { reported } => reported,
                    ClaimState::Active => false,
                })
            })
    }

    /// The CPFP wallet's confirmed balance, as the wallet tells it (it now shows every top-up
    /// confirmed so far).
    pub fn on_wallet_balance(&mut self, confirmed_sat: u64) {
        self.wallet_balance = Some(confirmed_sat);
        self.topup_landed = 0;
    }

    /// The CPFP wallet's balance, once told.
    pub fn wallet_balance(&self) -> Option<u64> {
        self.wallet_balance
    }

    /// Check the wallet against the fee reserve `needed` (recomputed by the caller: HTLCs come
    /// and go, fees move). An alert fires when it gets worse — within 25% of the reserve, then
    /// below it — and again after it recovered; nothing while it stays where it was.
    pub fn check_reserve(&mut self, needed: &reserve::FeeReserve) -> Vec<Action> {
        let Some(balance) = self.wallet_balance else {
            return Vec::new();
        };
        self.reserve_needed = Some(needed.total_sat);
        let level = reserve::level(balance, needed);
        let previous = self.reserve_level.replace(level);
        if previous.is_some_and(|p| p >= level) {
            return Vec::new();
        }
        reserve::reserve_alert(balance, needed, level)
            .into_iter()
            .collect()
    }

    /// What the fee wallet still lacks: the reserve, less its balance, the top-ups of our
    /// confirmed sweeps it does not show yet and those of our sweeps in flight. Zero until both
    /// the balance and the reserve are known.
    fn topup_room(&self) -> u64 {
        let (Some(needed), Some(balance)) = (self.reserve_needed, self.wallet_balance) else {
            return 0;
        };
        let in_flight = self
            .claims
            .values()
            .filter(|c| c.state == ClaimState::Active)
            .filter_map(|c| c.current())
            .fold(0u64, |a, t| a.saturating_add(t.topup_sat));
        needed
            .saturating_sub(balance)
            .saturating_sub(self.topup_landed)
            .saturating_sub(in_flight)
    }

    /// The top-up the current attempt of claim `id` pays the fee wallet.
    fn current_topup(&self, id: ClaimId) -> u64 {
        self.claims
            .get(&id)
            .and_then(|c| c.current())
            .map_or(0, |a| a.topup_sat)
    }

    /// The requests of the inputs of attempt `request`, in input order; `None` for an unknown
    /// claim, attempt or member.
    fn inputs_of_attempt(&self, request: RequestId) -> Option<Vec<SweepRequest>> {
        let lead = self.claims.get(&request.claim)?;
        let attempt = lead.attempts.get(request.attempt as usize)?;
        let mut inputs = vec![lead.request.clone()];
        for m in &attempt.members {
            inputs.push(self.claims.get(m)?.request.clone());
        }
        Some(inputs)
    }
}
