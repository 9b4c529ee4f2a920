//! The sweeper's one entry point: `step(input, context) -> actions`.
//!
//! The chain arbitrator feeds it the claims channels want (and no longer want), the chain (tip,
//! blocks, spends of claimed outputs, disconnections), the results of its own actions, the fee
//! wallet's balance and reserve, and `Resumed`; it passes the node-wide facts (claim ids) and the
//! settings in explicitly. Whether there is anything to do is decided here.

use std::collections::BTreeSet;

use bitcoin::{OutPoint, Txid};

use crate::action::{Action, SweepRequest};
use crate::event::{BroadcastOutcome, FeeConditions, SignOutcome};
use crate::node::NodeState;
use crate::types::{Height, RequestId};

use super::reserve::FeeReserve;
use super::{Sweeper, SweeperConfig, SweeperPolicy};

/// One input of the sweeper.
#[derive(Clone, Debug)]
pub enum SweeperInput<'a> {
    /// A channel wants this output claimed (a repeat with the same terms changes nothing).
    Request(Box<SweepRequest>),
    /// A channel no longer wants this output claimed.
    Cancel(&'a OutPoint),
    /// The chain's tip moved (a block connected or disconnected).
    Tip(Option<Height>),
    /// The block at `height` connected: build, batch, bump and rebroadcast what is due.
    Block {
        /// Its height.
        height: Height,
    },
    /// Between blocks, claim these outputs now (a preimage was just learned).
    ClaimNow {
        /// The outputs.
        outpoints: &'a BTreeSet<OutPoint>,
        /// The tip.
        tip: Height,
    },
    /// A claimed output was spent in a confirmed transaction.
    Spent {
        /// The output.
        outpoint: &'a OutPoint,
        /// The spending transaction.
        txid: Txid,
        /// Its height.
        height: Height,
    },
    /// The block at `height` was disconnected.
    Disconnected {
        /// Its height.
        height: Height,
    },
    /// Signatures for one of its claims.
    Signed {
        /// The request it answers.
        request: RequestId,
        /// The signatures, or why not.
        outcome: &'a SignOutcome,
    },
    /// A broadcast of one of its claims answered.
    BroadcastResult {
        /// The request it answers.
        request: RequestId,
        /// What happened.
        outcome: &'a BroadcastOutcome,
    },
    /// The fee wallet's confirmed balance.
    WalletBalance(u64),
    /// The reserve the fee wallet should hold now: alert when the balance falls short.
    Reserve(&'a FeeReserve),
    /// After a restart at `tip`: re-emit what is pending and final.
    Resumed {
        /// The tip.
        tip: Option<Height>,
    },
}

/// What the sweeper's step reads beyond the sweeper itself.
pub struct SweeperContext<'a> {
    /// Node-wide facts: claim ids.
    pub node: &'a mut NodeState,
    /// The latest fee conditions.
    pub fees: Option<&'a FeeConditions>,
    /// Where claims pay to; `None`: no sweeper is configured, so nothing is built.
    pub cfg: Option<&'a SweeperConfig>,
    /// Batching, splitting and fee-curve settings.
    pub policy: &'a SweeperPolicy,
    /// Confirmations after which a spend is final: a spent claim leaves the sweeper then.
    pub finality_depth: u32,
}

impl Sweeper {
    /// Apply one input to the sweeper.
    pub fn step(&mut self, input: SweeperInput<'_>, ctx: &mut SweeperContext<'_>) -> Vec<Action> {
        match input {
            SweeperInput::Request(request) => {
                self.request(*request, ctx.node);
                Vec::new()
            }
            SweeperInput::Cancel(outpoint) => {
                self.cancel(outpoint);
                Vec::new()
            }
            SweeperInput::Tip(tip) => {
                self.set_tip(tip);
                Vec::new()
            }
            SweeperInput::Block { height } => {
                let actions = match ctx.cfg {
                    Some(cfg) if !self.is_idle() => {
                        self.on_block(height, ctx.fees, cfg, ctx.policy)
                    }
                    _ => Vec::new(),
                };
                self.drop_finished(height, ctx.finality_depth);
                actions
            }
            SweeperInput::ClaimNow { outpoints, tip } => match ctx.cfg {
                Some(cfg) => self.claim_now(outpoints, tip, ctx.fees, cfg, ctx.policy),
                None => Vec::new(),
            },
            SweeperInput::Spent {
                outpoint,
                txid,
                height,
            } => {
                if self.claim_for(outpoint).is_some() {
                    self.on_spent(outpoint, txid, height);
                }
                Vec::new()
            }
            SweeperInput::Disconnected { height } => {
                self.on_disconnect(height);
                Vec::new()
            }
            SweeperInput::Signed { request, outcome } => self.on_signed(request, outcome),
            SweeperInput::BroadcastResult { request, outcome } => {
                self.on_broadcast_result(request, outcome)
            }
            SweeperInput::WalletBalance(sat) => {
                self.on_wallet_balance(sat);
                Vec::new()
            }
            SweeperInput::Reserve(needed) => match self.wallet_balance() {
                Some(_) => self.check_reserve(needed),
                None => Vec::new(),
            },
            SweeperInput::Resumed { tip } => self.pending_after_restart(tip),
        }
    }
}
