//! The channel arbitrator's one entry point: `step(input, context) -> actions`.
//!
//! The chain arbitrator routes each input to the one channel it concerns (by index) and passes
//! the node-wide facts in explicitly ([`ChannelContext`]): the preimage oracle, circuits, claim
//! ids and upstream decisions ([`NodeState`], which the step may extend — a new claim id, an
//! upstream decision), and read-only views of the sweeper and the fee conditions. Which handler
//! answers is decided here, not by the caller.

use bitcoin::{OutPoint, Transaction, Txid};

use crate::action::{Action, CloseTrigger, Record};
use crate::bolt3::PaymentHash;
use crate::event::{BroadcastOutcome, FundingOutcome, PreimageSource, SignOutcome};
use crate::node::NodeState;
use crate::sweeper::Sweeper;
use crate::types::{Height, RequestId};

use super::close::CloseConfig;
use super::deadline::{fired, DeadlineConfig};
use super::{ChannelArbitrator, FeeContext};

/// One input of a channel's arbitrator.
#[derive(Clone, Copy, Debug)]
pub enum ChannelInput<'a> {
    /// The channel's data changed (an update was applied): check the go-to-chain rule at the tip.
    Updated,
    /// Force close now, for `trigger` (a user, a peer error, the node).
    ForceClose(&'a CloseTrigger),
    /// A confirmed transaction spent `outpoint`, one this channel watches. `pays_us`: it pays
    /// our sweep destination (so it is one of our claims, whatever attempt).
    Spend {
        /// The outpoint.
        outpoint: OutPoint,
        /// The spending transaction.
        tx: &'a Transaction,
        /// Its height.
        height: Height,
        /// Whether it pays our sweep destination.
        pays_us: bool,
    },
    /// A transaction (confirmed, or in the mempool) spends an output of this channel's: read
    /// the preimages in its witnesses.
    Witnesses {
        /// The transaction.
        tx: &'a Transaction,
        /// Where it was seen.
        source: &'a PreimageSource,
    },
    /// The channel's wake-up is due at the tip `height` (or it acts every block).
    Block {
        /// The tip.
        height: Height,
    },
    /// The block at `height` was disconnected.
    Disconnected {
        /// Its height.
        height: Height,
    },
    /// A transaction spending our funding output appeared in the mempool.
    MempoolCommitment(&'a Transaction),
    /// A transaction left the mempool.
    MempoolRemoved(&'a Txid),
    /// A broadcast of one of this channel's claims answered.
    BroadcastResult {
        /// The request it answers.
        request: RequestId,
        /// The transaction.
        txid: Txid,
        /// What happened.
        outcome: &'a BroadcastOutcome,
    },
    /// Signatures for one of this channel's claims.
    Signed {
        /// The request it answers.
        request: RequestId,
        /// The signatures, or why not.
        outcome: &'a SignOutcome,
    },
    /// The wallet answered a funding request of this channel's.
    WalletFunded {
        /// The request it answers.
        request: RequestId,
        /// The inputs, or why not.
        outcome: &'a FundingOutcome,
    },
    /// The store answered a read of the revoked log.
    RevokedLogRead {
        /// The commitment asked for.
        commitment_number: u64,
        /// Its record, if the log has it.
        record: Option<&'a Record>,
    },
    /// A preimage of an incoming HTLC of this closed channel became known between blocks:
    /// start the second-level claims it allows now.
    PreimageKnown,
    /// After a restart: re-emit what is pending.
    Resumed,
}

/// What a channel's step reads beyond the channel itself, passed in by the chain arbitrator.
pub struct ChannelContext<'a> {
    /// Node-wide facts: preimages, circuits, claim ids, upstream decisions.
    pub node: &'a mut NodeState,
    /// The sweeper, read-only (the fees its claims paid).
    pub sweeper: &'a Sweeper,
    /// Arbitration settings of a closed channel.
    pub close: &'a CloseConfig,
    /// The go-to-chain settings.
    pub deadlines: &'a DeadlineConfig,
    /// Fee conditions, budgets and the sweep destination.
    pub fees: FeeContext<'a>,
    /// The chain's tip, if any block is known.
    pub tip: Option<Height>,
}

/// What a channel's step returns.
#[derive(Debug, Default)]
pub struct Stepped {
    /// Its actions, in order.
    pub actions: Vec<Action>,
    /// Payment hashes whose preimages it learned (other channels act on them in the same step).
    pub learned: Vec<PaymentHash>,
    /// Whether its state changed (so the caller re-indexes and persists it).
    pub changed: bool,
}

impl Stepped {
    fn changed(actions: Vec<Action>) -> Stepped {
        Stepped {
            actions,
            learned: Vec::new(),
            changed: true,
        }
    }
}

impl ChannelArbitrator {
    /// Apply one input to this channel.
    pub fn step(&mut self, input: ChannelInput<'_>, ctx: &mut ChannelContext<'_>) -> Stepped {
        match input {
            ChannelInput::Updated => Stepped::changed(self.check_deadline(ctx)),
            ChannelInput::ForceClose(trigger) => {
                Stepped::changed(self.force_close(trigger.clone(), ctx.node))
            }
            ChannelInput::Spend {
                outpoint,
                tx,
                height,
                pays_us,
            } => Stepped::changed(self.on_spend(
                outpoint, tx, height, ctx.node, ctx.close, &ctx.fees, pays_us,
            )),
            ChannelInput::Witnesses { tx, source } => {
                let (actions, learned) = self.learn_preimages(tx, source, ctx.node);
                Stepped {
                    actions,
                    learned,
                    changed: false,
                }
            }
            ChannelInput::Block { height } => Stepped::changed(self.on_block(height, ctx)),
            ChannelInput::Disconnected { height } => {
                Stepped::changed(self.on_disconnect(height, ctx.node, ctx.close, &ctx.fees))
            }
            ChannelInput::MempoolCommitment(tx) => Stepped {
                changed: self.on_mempool_commitment(tx),
                ..Stepped::default()
            },
            ChannelInput::MempoolRemoved(txid) => Stepped {
                changed: self.on_mempool_removed(txid),
                ..Stepped::default()
            },
            ChannelInput::BroadcastResult {
                request,
                txid,
                outcome,
            } => Stepped::changed(self.on_claim_broadcast_result(request, txid, outcome)),
            ChannelInput::Signed { request, outcome } => {
                Stepped::changed(self.on_any_signed(request, outcome, ctx))
            }
            ChannelInput::WalletFunded { request, outcome } => {
                Stepped::changed(self.on_wallet_funded(request, outcome, ctx.tip.unwrap_or(0)))
            }
            ChannelInput::RevokedLogRead {
                commitment_number,
                record,
            } => Stepped::changed(self.on_revoked_log_read(commitment_number, record)),
            ChannelInput::PreimageKnown => Stepped::changed(match (&self.close, ctx.tip) {
                (Some(_), Some(tip)) => {
                    self.start_second_level(tip, ctx.node, ctx.close, &ctx.fees)
                }
                _ => Vec::new(),
            }),
            ChannelInput::Resumed => Stepped {
                actions: self.pending_after_restart(),
                ..Stepped::default()
            },
        }
    }

    /// The wake-up is due: once closed, the close's per-block work; before, rebroadcast our
    /// commitment, keep its CPFP child paying, and check the go-to-chain rule.
    fn on_block(&mut self, height: Height, ctx: &mut ChannelContext<'_>) -> Vec<Action> {
        if self.close.is_some() {
            return self.on_block_closed(height, ctx.node, ctx.close, ctx.sweeper, &ctx.fees);
        }
        let mut actions = self.on_block_before_close();
        actions.extend(self.anchor_cpfp_actions(height, ctx.node, &ctx.fees));
        if self.force_close.is_none() {
            actions.extend(self.check_deadline(ctx));
        }
        actions
    }

    /// If the go-to-chain rule has fired at the tip, force close.
    fn check_deadline(&mut self, ctx: &mut ChannelContext<'_>) -> Vec<Action> {
        let Some(tip) = ctx.tip else {
            return Vec::new();
        };
        if self.close.is_some() || self.force_close.is_some() {
            return Vec::new();
        }
        match fired(&self.data, tip, ctx.node, ctx.deadlines) {
            Some(t) => self.force_close(
                CloseTrigger::HtlcDeadline {
                    htlc: t.htlc,
                    deadline: t.deadline,
                    height: tip,
                },
                ctx.node,
            ),
            None => Vec::new(),
        }
    }

    /// Signatures: for a wallet-funded claim, a second-level transaction, or our commitment —
    /// which, once signed, is paid for at once through its anchor if it is too cheap, rather
    /// than a block later.
    fn on_any_signed(
        &mut self,
        request: RequestId,
        outcome: &SignOutcome,
        ctx: &mut ChannelContext<'_>,
    ) -> Vec<Action> {
        if let Some(actions) = self.on_funded_signed(request, outcome) {
            return actions;
        }
        if let Some(actions) = self.on_second_level_signed(request, outcome, ctx.node) {
            return actions;
        }
        let mut actions = self.on_signed(request, outcome);
        actions.extend(self.anchor_cpfp_actions(ctx.tip.unwrap_or(0), ctx.node, &ctx.fees));
        actions
    }

    /// After a restart: our commitment while no close confirmed, the wallet-funded claims still
    /// live, and the revoked-log read a breach waits for.
    fn pending_after_restart(&mut self) -> Vec<Action> {
        let mut actions = Vec::new();
        if self.close.is_none() && self.force_close.is_some() {
            actions.extend(self.on_block_before_close());
        } else {
            actions.extend(self.reorged_cooperative_broadcast());
        }
        actions.extend(self.funded_pending_after_restart());
        actions.extend(self.revoked_log_request());
        actions
    }
}
