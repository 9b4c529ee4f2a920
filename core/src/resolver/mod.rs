//! Contract resolvers: one per output of a confirmed close that matters to us — lnd's set, each a
//! machine of its own file:
//!
//! | machine | output | hands off to |
//! |---|---|---|
//! | [`commit_sweep`] | our balance; our second-level outputs | — |
//! | [`outgoing_contest`] | an HTLC we offered, before its expiry | HTLC timeout, at the expiry |
//! | [`htlc_timeout`] | an HTLC we offered, from its expiry | commitment sweep of our second-level output |
//! | [`incoming_contest`] | an HTLC the peer offered, no preimage | HTLC success, once the preimage is known |
//! | [`htlc_success`] | an HTLC the peer offered, with the preimage | commitment sweep of our second-level output |
//! | [`anchor`] | our anchor | — |
//! | [`justice`] | an output of the peer's revoked commitment | justice on the peer's second-level output |
//!
//! A resolver is a persisted value ([`Resolver`], `record.rs`) with one transition function,
//! [`Resolver::step`]: an input (a block, a spend of its output with the transaction, a preimage,
//! a disconnect) and a read-only [`ResolverContext`] give its next state, what it asks of its
//! channel ([`ResolverAction`]) and its successor, if any. Its claims are what
//! [`Resolver::sweep_request`] says now: derived from the record and the context every time, never
//! stored apart from them.
//!
//! Two hand-offs create a new output's resolver (our second-level transaction's output, the
//! peer's on a revoked commitment): the successor is a record of its own, created at its
//! transaction's height, and a disconnection of that block removes it. The other two
//! (contest → timeout, contest → success) keep the output and the record: which machine runs is
//! read from facts that are themselves durable — the height, and the node's preimage oracle — so
//! a record persisted before the hand-off resumes in the right machine, and a reorg below an
//! HTLC's expiry hands the timeout back to the contest. A preimage once learned stays known, even
//! if the transaction that revealed it is reorged out: the success hand-off is not undone.
//!
//! Every resolver resolves **by outpoint**: any confirmed spend of its output ends its stage,
//! whoever made it, and the stage is final once that spend is `reorg_safety_depth` deep. An
//! incoming HTLC without a preimage is final without a spend once its expiry is reorg-safe
//! ([`Stage::Expired`]: the peer's to take), so an idle peer cannot keep a channel open.

use bitcoin::Transaction;

use crate::action::SweepRequest;
use crate::node::NodeState;
use crate::types::Height;

pub mod anchor;
mod budget;
mod claim;
pub mod commit_sweep;
mod context;
pub mod htlc_success;
pub mod htlc_timeout;
pub mod incoming_contest;
pub mod justice;
pub mod outgoing_contest;
mod record;
pub mod second_level;
pub mod taproot_anchor;
pub mod taproot_htlc_claim;
pub mod taproot_justice;
pub mod taproot_second_level;
pub mod taproot_sweep;
mod taproot_tx;

pub use budget::SweepPolicy;
pub use context::{
    CloseView, Confirmed, FeeContext, Justice, ResolverAction, ResolverContext, ResolverInput,
    ResolverStep,
};
pub use record::{depth, Resolver, ResolverKind, SecondLevelClaim, Stage, Taken};

use context::Path;

#[cfg(test)]
mod tests;

/// The machine a resolver runs now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Machine {
    /// Our balance, or the output of our second-level transaction.
    CommitSweep,
    /// An HTLC we offered, before its expiry.
    OutgoingContest,
    /// An HTLC we offered, from its expiry.
    HtlcTimeout,
    /// An HTLC the peer offered, while its preimage is unknown.
    IncomingContest,
    /// An HTLC the peer offered, with its preimage.
    HtlcSuccess,
    /// Our anchor.
    Anchor,
    /// An output of the peer's revoked commitment.
    Justice,
}

impl Resolver {
    /// The machine it runs with the tip at `tip` and the preimages `node` knows.
    pub fn machine(&self, tip: Height, node: &NodeState) -> Machine {
        match &self.kind {
            ResolverKind::CommitSweep { .. } => Machine::CommitSweep,
            ResolverKind::OutgoingHtlc { cltv_expiry, .. } => {
                if outgoing_contest::timed_out(*cltv_expiry, tip) {
                    Machine::HtlcTimeout
                } else {
                    Machine::OutgoingContest
                }
            }
            ResolverKind::IncomingHtlc {
                htlc, payment_hash, ..
            } => match node.preimage_for(htlc, payment_hash) {
                Some(_) => Machine::HtlcSuccess,
                None => Machine::IncomingContest,
            },
            ResolverKind::Anchor => Machine::Anchor,
            ResolverKind::Breach { .. } => Machine::Justice,
        }
    }

    /// The transition function: `input` with `ctx` moves it, and says what it asks of its
    /// channel and what it hands off to.
    pub fn step(&mut self, input: ResolverInput<'_>, ctx: &ResolverContext<'_>) -> ResolverStep {
        match input {
            ResolverInput::Block { tip } => self.on_block_step(tip, ctx),
            ResolverInput::Spend {
                tx,
                height,
                known_ours,
            } => self.on_spend_step(tx, height, known_ours, ctx),
            ResolverInput::Preimage { tip } => {
                // Only a claim not started yet: one already out is rebroadcast at the next block.
                if self.second_level.is_none() && self.second_level_due(tip, ctx) {
                    ResolverStep::act(ResolverAction::SecondLevelDue)
                } else {
                    ResolverStep::default()
                }
            }
            ResolverInput::Disconnect { height } => {
                if self.created_at.is_some_and(|h| h >= height) {
                    return ResolverStep {
                        gone: true,
                        ..ResolverStep::default()
                    };
                }
                self.on_disconnect(height);
                ResolverStep::default()
            }
        }
    }

    /// A block: a spend reorg-safe now is final; then what its machine does at this height.
    fn on_block_step(&mut self, tip: Height, ctx: &ResolverContext<'_>) -> ResolverStep {
        if self.on_block(tip, ctx.safety_depth) {
            return ResolverStep::act(ResolverAction::Final);
        }
        let step = match (self.machine(tip, ctx.node), &self.kind) {
            (Machine::IncomingContest, ResolverKind::IncomingHtlc { cltv_expiry, .. }) => {
                incoming_contest::on_block(self, *cltv_expiry, tip, ctx)
            }
            (Machine::Anchor, _) => anchor::on_block(self, tip, ctx),
            _ => ResolverStep::default(),
        };
        if step.actions.is_empty() && self.second_level_due(tip, ctx) {
            return ResolverStep::act(ResolverAction::SecondLevelDue);
        }
        step
    }

    /// Whether our second-level transaction for it may confirm in the block after `tip`: an
    /// HTLC of our own commitment, unspent, in its timeout or success machine.
    fn second_level_due(&self, tip: Height, ctx: &ResolverContext<'_>) -> bool {
        ctx.close.on_our_commitment()
            && self.claimable()
            && matches!(
                self.machine(tip, ctx.node),
                Machine::HtlcTimeout | Machine::HtlcSuccess
            )
    }

    /// A confirmed spend of its output: the hand-off it makes (our second-level transaction, the
    /// peer's on a revoked commitment), and who took it, read from the witness.
    fn on_spend_step(
        &mut self,
        tx: &Transaction,
        height: Height,
        known_ours: bool,
        ctx: &ResolverContext<'_>,
    ) -> ResolverStep {
        let ours_next = match self.kind {
            ResolverKind::OutgoingHtlc { .. } | ResolverKind::IncomingHtlc { .. } => {
                second_level::hand_off(tx, height, ctx)
            }
            _ => None,
        };
        let known_ours = known_ours || ours_next.is_some();
        let theirs_next = match self.kind {
            ResolverKind::Breach { commitment_number } if !known_ours => {
                justice::hand_off(self, commitment_number, tx, height, ctx)
            }
            _ => None,
        };
        let judged = if known_ours {
            Some(Path::Ours)
        } else {
            self.judge(tx, ctx, theirs_next.is_some())
        };
        let (by_us, taken) = match judged {
            Some(Path::Ours) => (true, None),
            Some(Path::Theirs(taken)) => (false, Some(taken)),
            // Not a spend of this output at all: recorded as not ours, with nothing read.
            None => (false, None),
        };
        let mut step = ResolverStep::default();
        if let Some(Taken::Unknown { input, witness }) = &taken {
            step.actions.push(ResolverAction::UnknownSpend {
                input: *input,
                witness: witness.clone(),
            });
        }
        self.on_spend(tx.compute_txid(), height, by_us, taken);
        step.hand_off = ours_next.or(theirs_next);
        step
    }

    /// Whose path the spending input's witness took (`None`: `tx` does not spend its output).
    fn judge(
        &self,
        tx: &Transaction,
        ctx: &ResolverContext<'_>,
        peer_second_level: bool,
    ) -> Option<Path> {
        let (index, input) = tx
            .input
            .iter()
            .enumerate()
            .find(|(_, i)| i.previous_output == self.outpoint)?;
        let w = &input.witness;
        let holder = ctx.close.holder();
        let htlc_path = match &self.kind {
            ResolverKind::CommitSweep { .. } => return Some(commit_sweep::judge(w)),
            ResolverKind::Anchor => return Some(anchor::judge(index, w, ctx)),
            ResolverKind::Breach { .. } => {
                return Some(justice::judge(index, w, peer_second_level))
            }
            ResolverKind::OutgoingHtlc { payment_hash, .. } => {
                outgoing_contest::judge(holder, w, payment_hash)
            }
            ResolverKind::IncomingHtlc { payment_hash, .. } => {
                incoming_contest::judge(holder, w, payment_hash)
            }
        };
        Some(htlc_path.unwrap_or_else(|| Path::unknown(index, w)))
    }

    /// The next height at which its machine acts, beside the finality of a spend
    /// ([`Resolver::next_wakeup`]): an incoming contest's end once its expiry is reorg-safe; on
    /// our own commitment (closed at `close_height`), the hand-off to a second-level claim not
    /// started yet — the timeout at the expiry, the success at once with the preimage.
    pub fn machine_wakeup(
        &self,
        node: &NodeState,
        on_our_commitment: bool,
        close_height: Height,
        safety_depth: u32,
    ) -> Option<Height> {
        let contest_ends = match (&self.kind, &self.stage) {
            (
                ResolverKind::IncomingHtlc {
                    htlc,
                    payment_hash,
                    cltv_expiry,
                },
                Stage::Active,
            ) if node.preimage_for(htlc, payment_hash).is_none() => {
                Some(cltv_expiry.saturating_add(safety_depth))
            }
            _ => None,
        };
        let second_level_starts =
            if on_our_commitment && self.claimable() && self.second_level.is_none() {
                match &self.kind {
                    ResolverKind::OutgoingHtlc { cltv_expiry, .. } => Some(*cltv_expiry),
                    ResolverKind::IncomingHtlc {
                        htlc, payment_hash, ..
                    } if node.preimage_for(htlc, payment_hash).is_some() => Some(close_height),
                    _ => None,
                }
            } else {
                None
            };
        contest_ends.into_iter().chain(second_level_starts).min()
    }

    /// The claim it asks the sweeper for now, if any.
    pub fn sweep_request(&self, ctx: &ResolverContext<'_>) -> Option<SweepRequest> {
        match &self.kind {
            ResolverKind::Breach { .. } => justice::sweep_request(self, ctx),
            _ if !self.claimable() => None,
            ResolverKind::CommitSweep { mature_at } => {
                commit_sweep::sweep_request(self, *mature_at, ctx)
            }
            ResolverKind::OutgoingHtlc {
                cltv_expiry,
                deadline,
                ..
            } => htlc_timeout::sweep_request(self, *cltv_expiry, *deadline, ctx),
            ResolverKind::IncomingHtlc {
                htlc,
                payment_hash,
                cltv_expiry,
            } => {
                let preimage = ctx.node.preimage_for(htlc, payment_hash)?;
                htlc_success::sweep_request(self, preimage, *cltv_expiry, ctx)
            }
            ResolverKind::Anchor => anchor::sweep_request(self, ctx),
        }
    }
}
