//! A close confirmed: classify it, create a resolver for every output that matters to us, make the
//! reorg-safe upstream decisions, follow resolvers to the end, and undo it all on a reorg.

use bitcoin::{OutPoint, Transaction};

use crate::action::{
    Action, AlertKind, CloseKind, CloseSummary, CloseTrigger, FailReason, Outcome, Report,
    Resolution,
};
use crate::close::{classify_close, Classification, Close};
use crate::event::CommitmentHtlcInfo;
use crate::node::NodeState;
use crate::resolver::{
    depth, FeeContext, Resolver, ResolverAction, ResolverInput, ResolverKind, Stage,
};
use crate::sweeper::Sweeper;
use crate::types::{Height, HtlcKey, RawTx};

pub use super::config::{CloseConfig, UNFORWARDED_TIMEOUT_SLACK};
use super::plan::describe;
use super::upstream::revoked_outgoing_lost;
use super::{ChannelArbitrator, ConfirmedClose};

impl ChannelArbitrator {
    pub(super) fn htlc_key(&self, h: &CommitmentHtlcInfo) -> HtlcKey {
        HtlcKey {
            channel: self.data.info.id,
            htlc_id: h.htlc_id,
            direction: h.direction,
        }
    }

    /// A transaction spending `outpoint` (one we watch) confirmed at `height`. `pays_us`: it pays
    /// our sweep destination (the caller knows it), so it is one of our claims whatever attempt.
    /// The resolver of `outpoint` judges the spend and hands off; preimages in its witness are
    /// learned by the caller (`learn_preimages`).
    #[allow(clippy::too_many_arguments)]
    pub fn on_spend(
        &mut self,
        outpoint: OutPoint,
        tx: &Transaction,
        height: Height,
        node: &mut NodeState,
        cfg: &CloseConfig,
        fees: &FeeContext<'_>,
        pays_us: bool,
    ) -> Vec<Action> {
        if self.data.info.funding_output(&outpoint).is_some() {
            return if self.close.is_none() {
                self.on_close(tx, height, node)
            } else {
                Vec::new()
            };
        }
        let Some(kind) = self.resolvers.get(&outpoint).map(|r| r.kind.clone()) else {
            return Vec::new();
        };
        let txid = tx.compute_txid();
        let input = ResolverInput::Spend {
            tx,
            height,
            known_ours: pays_us || self.is_our_cpfp(&txid),
        };
        let answers = self.step_resolvers(input, Some(outpoint), node, fees, cfg);
        let mut actions = Vec::new();
        for action in answers.into_iter().flat_map(|(_, step)| step.actions) {
            if let ResolverAction::UnknownSpend { input, witness } = action {
                actions.push(self.alert(
                    AlertKind::UnknownSpend,
                    format!(
                        "{} ({}) spent by {txid} input {input} at height {height} with a witness of no known path: {witness}",
                        outpoint,
                        describe(&kind)
                    ),
                ));
            }
        }
        actions.push(Action::Report(Report::Timeline {
            channel: self.data.info.id,
            outpoint,
            height,
            stage: format!(
                "spent by {txid}, final at {}",
                height.saturating_add(cfg.reorg_safety_depth.saturating_sub(1))
            ),
            txid: Some(txid),
        }));
        actions
    }

    fn on_close(&mut self, tx: &Transaction, height: Height, node: &mut NodeState) -> Vec<Action> {
        let info = &self.data.info;
        let Classification::FundingSpent { spend, close } =
            classify_close(tx, info, &self.data.commitments)
        else {
            return Vec::new();
        };
        let txid = tx.compute_txid();
        let kind = CloseKind::from(&close);
        let trigger = match (&close, &self.force_close) {
            (Close::LocalCurrent { .. }, Some(fc)) => fc.trigger.clone(),
            _ if self.data.commitments.data_loss.is_some() => CloseTrigger::DataLoss,
            (_, Some(fc)) => fc.trigger.clone(),
            _ => CloseTrigger::Peer,
        };
        let mut actions = Vec::new();
        let (resolvers, confirmed, rebuilt) =
            self.plan_resolvers_rebuilt(&close, tx, txid, height, node);
        let dust: Vec<CommitmentHtlcInfo> = confirmed
            .map(|c| {
                c.htlcs
                    .iter()
                    .filter(|h| h.output_index.is_none())
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        self.resolvers = resolvers.into_iter().map(|r| (r.outpoint, r)).collect();
        // Our balance: what our resolvers sweep; on a cooperative close, what it paid our
        // shutdown script (nothing is left to claim, but the balance is ours).
        let our_balance_sat = match (&close, &info.shutdown) {
            (Close::Cooperative, Some(shutdown)) => tx
                .output
                .iter()
                .filter(|o| o.script_pubkey == shutdown.local)
                .map(|o| o.value.to_sat())
                .sum(),
            _ => self
                .resolvers
                .values()
                .filter(|r| matches!(r.kind, ResolverKind::CommitSweep { .. }))
                .map(|r| r.value_sat)
                .sum(),
        };
        actions.push(Action::Report(Report::CloseSummary(CloseSummary {
            channel: info.id,
            close: kind.clone(),
            trigger: trigger.clone(),
            closing_txid: txid,
            height,
            our_balance_sat,
            dust_htlcs: dust.iter().map(|h| self.htlc_key(h)).collect(),
            dust_msat: dust.iter().map(|h| h.amount_msat).sum(),
        })));
        match &close {
            Close::Unknown { reason } => actions.push(self.alert(AlertKind::UnknownSpend, format!("funding output spent by {txid}, which matches no commitment: {reason}; funds may be lost"))),
            Close::LocalRevoked { number } => actions.push(self.alert(AlertKind::OldLocalCommitment, format!("our revoked commitment {number} confirmed in {txid}: keys may have leaked or an old backup ran"))),
            _ => {}
        }
        for r in self.resolvers.values() {
            actions.push(Action::Report(Report::Timeline {
                channel: info.id,
                outpoint: r.outpoint,
                height,
                stage: describe(&r.kind),
                txid: Some(txid),
            }));
        }
        // Whatever confirmed, a cooperative close a reorg dropped is not rebroadcast any more: it
        // confirmed again, or conflicts with what did.
        self.reorged_cooperative = None;
        self.close = Some(ConfirmedClose {
            kind,
            trigger,
            tx: RawTx(tx.clone()),
            txid,
            height,
            funding: spend.funding,
            settled_upstream: false,
            rebuilt: Default::default(),
        });
        // The commitment just rebuilt to plan is the confirmed one when it spends the same
        // funding output and has the close's txid: keep it rather than rebuild it.
        let update_id = self.data.last_update_id;
        if let (Some(c), Some((funding, rebuilt))) = (&mut self.close, rebuilt) {
            if funding == c.funding && rebuilt.2.tx.compute_txid() == c.txid {
                c.rebuilt.set(update_id, Some(rebuilt));
            }
        }
        // A breach: read the revoked commitment's HTLC data back from the log.
        actions.extend(self.revoked_log_request());
        actions
    }

    /// Per block once closed: reorg-safe upstream decisions, resolver finality, cut-loss, and
    /// the end. Safe to call at any height (it acts only on what is due).
    pub fn on_block_closed(
        &mut self,
        tip: Height,
        node: &mut NodeState,
        cfg: &CloseConfig,
        sweeper: &Sweeper,
        fees: &FeeContext<'_>,
    ) -> Vec<Action> {
        let mut actions = Vec::new();
        let Some(close) = self.close.clone() else {
            return actions;
        };
        let safe = depth(close.height, tip) >= cfg.reorg_safety_depth;
        // A breach's HTLCs are known only from the revoked log: its upstream decisions wait
        // for the log's answer (asked for at the close, again after a restart).
        let htlcs_known = !matches!(close.kind, CloseKind::Breach { .. }) || self.revoked.is_some();
        if safe && !close.settled_upstream && htlcs_known {
            // Any attempt may have inputs lent, even one whose answer came too late to use.
            if let Some(f) = self.cpfp.as_ref().filter(|f| !f.attempts.is_empty()) {
                actions.push(Action::ReleaseInputs { claim: f.claim });
            }
            actions.extend(self.fail_htlcs_not_on_chain(&close, node));
            if let Some(c) = self.close.as_mut() {
                c.settled_upstream = true;
            }
        }
        let stepped = self.step_resolvers_block(tip, node, fees, cfg);
        for outpoint in stepped.finals {
            // Fixed now: the sweeper drops the finished claim at the end of this block.
            let fees = self
                .resolvers
                .get(&outpoint)
                .map(|r| self.fees_paid(r, sweeper));
            if let Some(r) = self.resolvers.get_mut(&outpoint) {
                r.fees_sat = fees;
            }
            actions.extend(self.on_resolved(outpoint, &close, node, sweeper));
        }
        // Anchors left first, then incoming HTLCs expired.
        let (anchors, expired): (Vec<OutPoint>, Vec<OutPoint>) =
            stepped.settled.into_iter().partition(|o| {
                self.resolvers
                    .get(o)
                    .is_some_and(|r| matches!(r.kind, ResolverKind::Anchor))
            });
        for outpoint in anchors.into_iter().chain(expired) {
            actions.extend(self.settled_unspent(outpoint, tip));
        }
        actions.extend(self.cut_losses(tip, node, cfg));
        actions.extend(self.second_level_actions(tip, node, fees, &stepped.second_level_due));
        if safe && self.resolved_at.is_none() && self.resolvers.values().all(Resolver::is_resolved)
        {
            self.resolved_at = Some(tip);
        }
        actions
    }

    /// A resolver became final at `tip` without a spend (an anchor left, an incoming HTLC
    /// expired): report it.
    fn settled_unspent(&self, outpoint: OutPoint, tip: Height) -> Vec<Action> {
        let Some(r) = self.resolvers.get(&outpoint) else {
            return Vec::new();
        };
        vec![Action::Report(Report::Resolution(Resolution {
            channel: self.data.info.id,
            outpoint,
            outcome: r.outcome().unwrap_or(Outcome::UnknownSpend),
            amount_sat: r.value_sat,
            fees_sat: 0,
            spending_txid: None,
            height: tip,
        }))]
    }

    /// A resolver's spend just became reorg-safe: release a zero-fee HTLC transaction's
    /// inputs, fail upstream what the spend lost, and report the resolution (and a race lost
    /// while we held the preimage).
    fn on_resolved(
        &self,
        outpoint: OutPoint,
        close: &ConfirmedClose,
        node: &mut NodeState,
        sweeper: &Sweeper,
    ) -> Vec<Action> {
        let channel = self.data.info.id;
        let mut actions = Vec::new();
        let Some(r) = self.resolvers.get(&outpoint) else {
            return Vec::new();
        };
        let Stage::Resolved { txid, height, .. } = r.stage else {
            return Vec::new();
        };
        if let Some(f) = r.second_level.as_ref().and_then(|c| c.funded.as_ref()) {
            actions.push(Action::ReleaseInputs { claim: f.claim });
        }
        // The outcome comes from the spend itself (`Resolver::outcome`), as the ledger's.
        let outcome = r.outcome().unwrap_or(Outcome::UnknownSpend);
        if let ResolverKind::OutgoingHtlc {
            htlc, payment_hash, ..
        } = r.kind
        {
            // Settled upstream already if the spend revealed the preimage; otherwise the
            // HTLC timed out (no other path of it spends without the preimage): fail its
            // incoming leg.
            if node.preimage_for(&htlc, &payment_hash).is_none() {
                if let Some(leg) = node.circuits.get(&htlc).copied() {
                    actions.extend(node.fail_upstream(
                        leg.htlc,
                        &payment_hash,
                        FailReason::OutgoingTimedOut { outgoing: htlc },
                    ));
                }
            }
        }
        if let Some(fail) =
            revoked_outgoing_lost(self.revoked.as_ref(), close, r.outpoint, channel, node)
        {
            actions.push(fail);
        }
        actions.push(Action::Report(Report::Resolution(Resolution {
            channel,
            outpoint: r.outpoint,
            outcome,
            amount_sat: r.value_sat,
            fees_sat: self.fees_paid(r, sweeper),
            spending_txid: Some(txid),
            height,
        })));
        // An incoming HTLC the peer timed out while we held its preimage: we lost the race.
        if let ResolverKind::IncomingHtlc {
            htlc, payment_hash, ..
        } = r.kind
        {
            if outcome == Outcome::LostToPeer && node.preimage_for(&htlc, &payment_hash).is_some() {
                let amount_msat = self
                    .htlc_amount_msat(&htlc)
                    .unwrap_or(r.value_sat.saturating_mul(1000));
                actions.push(Action::Report(Report::Loss {
                    htlc,
                    amount_msat,
                    detail: format!(
                        "incoming htlc {} lost while we held its preimage: the peer's timeout {txid} confirmed first, at height {height}",
                        htlc.htlc_id
                    ),
                }));
            }
        }
        actions
    }

    /// The block at `height` was disconnected: a close confirmed at or above it is undone with
    /// every resolver; otherwise each resolver undoes what the block did to it (a spend, an
    /// expiry, the hand-off that created it).
    pub fn on_disconnect(
        &mut self,
        height: Height,
        node: &mut NodeState,
        cfg: &CloseConfig,
        fees: &FeeContext<'_>,
    ) -> Vec<Action> {
        let mut actions = Vec::new();
        if self.close.as_ref().is_some_and(|c| c.height >= height) {
            if let Some(close) = self.close.take() {
                actions.push(self.alert(
                    AlertKind::ChannelFailure,
                    format!(
                        "close {} at height {} was reorged out; re-planning from the new chain",
                        close.txid, close.height
                    ),
                ));
                actions.extend(self.keep_reorged_cooperative(&close, node));
            }
            // Their wallet-funded claims (zero-fee HTLC transactions) go with them: the wallet
            // coins lent to any of their attempts are given back, or a thin wallet would have
            // none left for the claims of the close that comes instead.
            for r in self.resolvers.values() {
                if let Some(f) = r
                    .second_level
                    .as_ref()
                    .and_then(|c| c.funded.as_ref())
                    .filter(|f| !f.attempts.is_empty())
                {
                    actions.push(Action::ReleaseInputs { claim: f.claim });
                }
            }
            self.resolvers.clear();
            self.resolved_at = None;
        }
        self.step_resolvers(ResolverInput::Disconnect { height }, None, node, fees, cfg);
        // An output the reorg gave back (a spend undone, an expiry undone) is not final: the
        // channel is not fully resolved any more, and its resolvers' machines act again —
        // waiting only to be archived, it would never look at that output again. While every
        // output stays final, the channel stays fully resolved from the same height (a reorg of
        // that block alone undoes nothing of it).
        if self
            .resolvers
            .values()
            .any(|r| matches!(r.stage, Stage::Active))
        {
            self.resolved_at = None;
        }
        actions
    }
}
