//! The sweeper: the only builder of claim transactions and the owner of every fee decision
//! ("claims have one owner"). Resolvers say *what* to claim, by when and for how much
//! ([`SweepRequest`]); the sweeper claims it.
//!
//! This is the minimal sweeper: **one transaction per input**, paying everything above the fee
//! to [`SweeperConfig::destination`];
//! - a **linear fee function** ([`fee::FeeFunction`]) from the fee estimate for the blocks left
//!   at the first build toward the budget's fee rate at the deadline, raised to the current
//!   market estimate and the relay floor, and never above the budget (invariant 7);
//! - a **bump** (a new attempt, replacing the previous one under BIP 125 rules 3 and 4) whenever
//!   the function has risen enough; otherwise the signed transaction is **rebroadcast every
//!   block** (a defence against replacement cycling);
//! - **`nLockTime` at the tip** (anti-fee-sniping), or at the path's `cltv_expiry` if higher, so
//!   every transaction is final exactly in the block it is offered for and never before its
//!   maturity;
//! - an input whose budget (or value above dust) cannot pay the minimum relay fee is
//!   **uneconomical**: reported once, never broadcast.
//!
//! A pure, deterministic state machine: claims by [`ClaimId`] (one per input) in a `BTreeMap`,
//! an index outpoint → claim derived from them, no clock, no randomness. Every transaction built
//! for a claim is kept in its [`SweepClaim`] (one persisted record per claim).
//!
//! Heights: at [`Sweeper::on_block`] with tip `t`, transactions are offered for block `t + 1`;
//! the fee function is evaluated at `t + 1` and reaches the budget rate when `t + 1` is the
//! deadline.

use std::collections::{BTreeMap, BTreeSet};

use bitcoin::{FeeRate, OutPoint, ScriptBuf, Txid};
use serde::{Deserialize, Serialize};

use crate::action::{Action, SweepRequest};
use crate::chain::node::NodeState;
use crate::event::{BroadcastOutcome, FeeConditions, SignOutcome};
use crate::types::{ClaimId, Height, RequestId};

mod block;
mod claim;
mod events;
pub mod fee;
#[cfg(test)]
mod tests;

pub use block::{is_mature, max_fee};
pub use claim::{
    check_request, signing_pubkey, Attempt, BroadcastStatus, ClaimState, SignatureError,
    SweepClaim, SweepError,
};
pub use events::is_fee_refusal;

/// The dust relay fee rate the sweeper keeps its outputs above (Bitcoin Core's default
/// `-dustrelayfee`, sat per 1000 virtual bytes).
pub const DUST_RELAY_FEE_SAT_PER_KVB: u64 = 3000;

/// What the sweeper needs from the node's configuration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SweeperConfig {
    /// Where swept funds go (a wallet script).
    pub destination: ScriptBuf,
    /// The fee rate to start from while no fee conditions are known.
    pub fallback_feerate: FeeRate,
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
    /// Claims changed (or removed) since [`Sweeper::take_changed`]; not persisted.
    changed: BTreeSet<ClaimId>,
}

impl PartialEq for Sweeper {
    /// Equal when the claims are: the index is derived, the change set transient.
    fn eq(&self, other: &Self) -> bool {
        self.claims == other.claims
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

    /// Rebuild a sweeper from its persisted claims (the outpoint index is derived).
    pub fn from_claims(claims: BTreeMap<ClaimId, SweepClaim>) -> Self {
        let by_outpoint = claims
            .iter()
            .map(|(id, c)| (c.request.outpoint, *id))
            .collect();
        Sweeper {
            claims,
            by_outpoint,
            changed: BTreeSet::new(),
        }
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
    /// maturity, or even path and key: then the next block builds afresh). Idempotent: the same
    /// request twice changes nothing. Returns whether anything changed. A request that cannot be
    /// claimed as given is kept as [`ClaimState::Invalid`] and reported at the next block.
    pub fn request(&mut self, req: SweepRequest, node: &mut NodeState) -> bool {
        if let Some(id) = self.claim_for(&req.outpoint) {
            if let Some(claim) = self.claims.get_mut(&id) {
                if claim.request == req {
                    return false;
                }
                if claim::envelope_changed(&claim.request, &req) {
                    claim.first_current = u32::try_from(claim.attempts.len()).unwrap_or(u32::MAX);
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
                return true;
            }
        }
        let id = node.new_claim();
        self.by_outpoint.insert(req.outpoint, id);
        self.claims.insert(id, SweepClaim::new(id, req));
        self.changed.insert(id);
        true
    }

    /// Stop claiming `outpoint` (its resolver no longer wants it, or is done with it) and forget
    /// its claim. Returns whether there was one.
    pub fn cancel(&mut self, outpoint: &OutPoint) -> bool {
        let Some(id) = self.by_outpoint.remove(outpoint) else {
            return false;
        };
        self.claims.remove(&id);
        self.changed.insert(id);
        true
    }

    /// The block at `tip` connected (transactions are now offered for `tip + 1`): every mature,
    /// unspent input is built, bumped or rebroadcast.
    pub fn on_block(
        &mut self,
        tip: Height,
        fees: Option<&FeeConditions>,
        cfg: &SweeperConfig,
    ) -> Vec<Action> {
        let mut actions = Vec::new();
        for (id, claim) in self.claims.iter_mut() {
            let before = claim.clone();
            actions.extend(block::on_block(claim, tip, fees, cfg));
            if *claim != before {
                self.changed.insert(*id);
            }
        }
        actions
    }

    /// A signer's answer. A signature for the current attempt is checked and broadcast; one for
    /// a superseded attempt is recorded and dropped.
    pub fn on_signed(&mut self, request: RequestId, outcome: &SignOutcome) -> Vec<Action> {
        let Some(claim) = self.claims.get_mut(&request.claim) else {
            return Vec::new();
        };
        let before = claim.clone();
        let actions = events::on_signed(claim, request, outcome);
        if *claim != before {
            self.changed.insert(request.claim);
        }
        actions
    }

    /// A broadcaster's answer: "already known" is success, a fee refusal makes the next block
    /// bump, anything else is reported (and the claim keeps rebroadcasting every block).
    pub fn on_broadcast_result(
        &mut self,
        request: RequestId,
        outcome: &BroadcastOutcome,
    ) -> Vec<Action> {
        let Some(claim) = self.claims.get_mut(&request.claim) else {
            return Vec::new();
        };
        let before = claim.clone();
        let actions = events::on_broadcast_result(claim, request, outcome);
        if *claim != before {
            self.changed.insert(request.claim);
        }
        actions
    }

    /// `outpoint` was spent by the confirmed transaction `txid` at `height` — one of our attempts,
    /// or someone else's transaction: either way the claim stops.
    pub fn on_spent(&mut self, outpoint: &OutPoint, txid: Txid, height: Height) {
        let Some(id) = self.claim_for(outpoint) else {
            return;
        };
        let Some(claim) = self.claims.get_mut(&id) else {
            return;
        };
        let ours = claim.attempt_with_txid(&txid).is_some();
        let spent = ClaimState::Spent { txid, height, ours };
        if claim.state != spent {
            claim.state = spent;
            self.changed.insert(id);
        }
    }

    /// The block at `height` was disconnected: spends confirmed at or above it are undone and
    /// their claims resume at the next block.
    pub fn on_disconnect(&mut self, height: Height) {
        for (id, claim) in self.claims.iter_mut() {
            if let ClaimState::Spent { height: h, .. } = claim.state {
                if h >= height {
                    claim.state = ClaimState::Active;
                    self.changed.insert(*id);
                }
            }
        }
    }

    /// The fee we paid (or are paying) for `outpoint`: that of the confirmed attempt, zero if
    /// someone else's transaction spent it, otherwise that of the latest signed attempt.
    pub fn fees_paid(&self, outpoint: &OutPoint) -> Option<u64> {
        let claim = self.claims.get(&self.claim_for(outpoint)?)?;
        match &claim.state {
            ClaimState::Spent {
                txid, ours: true, ..
            } => claim.attempt_with_txid(txid).map(|a| a.fee_sat),
            ClaimState::Spent { ours: false, .. } => Some(0),
            _ => claim
                .attempts
                .iter()
                .rev()
                .find(|a| a.signed.is_some())
                .map(|a| a.fee_sat),
        }
    }

    /// What was pending when the node stopped, to re-emit after `Event::Resumed`: the broadcast
    /// of each live claim's signed transaction, and the sign request of an attempt still
    /// waiting for its signature.
    pub fn pending_after_restart(&self) -> Vec<Action> {
        let mut actions = Vec::new();
        for claim in self.claims.values().filter(|c| c.is_live()) {
            if let Some(best) = claim.best_signed() {
                if let Some(tx) = &best.signed {
                    actions.push(Action::Broadcast {
                        request: claim.request_id(best.attempt),
                        tx: tx.clone(),
                    });
                }
            }
            if let Some(current) = claim.current().filter(|a| a.signed.is_none()) {
                actions.extend(claim.sign_request(current).map(Action::Sign));
            }
        }
        actions
    }

    /// Whether no block can make the sweeper act: every claim is spent, or is invalid or
    /// uneconomical and was reported. A claim waiting for maturity is not idle.
    pub fn is_idle(&self) -> bool {
        self.claims.values().all(|c| match c.state {
            ClaimState::Spent { .. } => true,
            ClaimState::Invalid { reported, .. } | ClaimState::Uneconomical { reported } => {
                reported
            }
            ClaimState::Active => false,
        })
    }
}
