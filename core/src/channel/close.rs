//! A close confirmed: classify it, create a resolver for every output that matters to us, make the
//! reorg-safe upstream decisions, follow resolvers to the end, and undo it all on a reorg.

use bitcoin::{OutPoint, Transaction, Txid};

use crate::action::{
    Action, AlertKind, CloseKind, CloseSummary, CloseTrigger, FailReason, Outcome, Report,
    Resolution,
};
use crate::bolt3::commitment::OutputKind;
use crate::bolt3::scripts;
use crate::close::{classify_close, Classification, Close};
use crate::event::CommitmentHtlcInfo;
use crate::node::NodeState;
use crate::resolver::{depth, Resolver, ResolverKind, Stage};
use crate::sweeper::Sweeper;
use crate::types::{Height, HtlcDirection, HtlcKey, Party, RawTx};

use super::claims::Confirmed;
use super::{ChannelArbitrator, ConfirmedClose};
use crate::commitments::CommitmentRecord;

/// Planned resolvers, the commitment record they come from, and the commitment rebuilt to find
/// them with the funding output it spends.
type Planned<'a> = (
    Vec<Resolver>,
    Option<&'a CommitmentRecord>,
    Option<(crate::event::FundingOutput, Confirmed)>,
);

/// Blocks after its expiry by which the timeout claim of an outgoing HTLC we did not forward (our
/// own payment) should confirm. No incoming leg is at stake: if the peer claims it with the
/// preimage instead, the payment simply succeeded. So the claim need not race, and its fee
/// rises slowly instead of spending its whole budget at once.
pub const UNFORWARDED_TIMEOUT_SLACK: u32 = 144;

/// Arbitration settings that concern a closed channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CloseConfig {
    /// Confirmations after which irreversible steps are taken (failing upstream, finality).
    pub reorg_safety_depth: u32,
    /// Confirmations after which a fully resolved channel is archived (BOLT 5's "irrevocably
    /// resolved" is 100).
    pub archive_depth: u32,
    /// Fail an incoming HTLC upstream this many blocks before its expiry when its outgoing leg is
    /// still unresolved on-chain (a possible loss, reported); `None` disables the rule.
    pub cut_loss_blocks: Option<u32>,
}

impl Default for CloseConfig {
    fn default() -> Self {
        CloseConfig {
            reorg_safety_depth: 6,
            archive_depth: 100,
            cut_loss_blocks: Some(3),
        }
    }
}

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
    pub fn on_spend(
        &mut self,
        outpoint: OutPoint,
        tx: &Transaction,
        height: Height,
        node: &mut NodeState,
        cfg: &CloseConfig,
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
        // Our second-level transaction is recognised by its output (our `to_local` script), so
        // any attempt of ours counts, even one signed before a reorg re-planned the resolver.
        let hand_off = self.hand_off_second_level(outpoint, tx, height);
        let known_ours = pays_us || hand_off.is_some() || self.is_our_cpfp(&txid);
        // The peer's second-level transaction on a revoked commitment: its output is ours too.
        let breach_next = (!known_ours)
            .then(|| self.breach_hand_off(outpoint, tx, height))
            .flatten();
        // Who spent it, from the witness and the outputs: ours, the peer's, a third party's, or
        // a witness of no known path (an alert; never a guess).
        let (by_us, taken) = self.judge_spend(outpoint, tx, known_ours, breach_next.is_some());
        let mut actions = Vec::new();
        if let Some(crate::resolver::Taken::Unknown { input, witness }) = &taken {
            actions.push(self.alert(
                AlertKind::UnknownSpend,
                format!(
                    "{} ({}) spent by {txid} input {input} at height {height} with a witness of no known path: {witness}",
                    outpoint,
                    describe(&kind)
                ),
            ));
        }
        if let Some(resolver) = self.resolvers.get_mut(&outpoint) {
            resolver.on_spend(txid, height, by_us, taken);
        }
        if let Some(next) = hand_off.or(breach_next) {
            self.resolvers.insert(next.outpoint, next);
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
        // Preimages in its witness are learned by the caller (`learn_preimages`).
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
        let our_balance_sat = self
            .resolvers
            .values()
            .filter(|r| matches!(r.kind, ResolverKind::CommitSweep { .. }))
            .map(|r| r.value_sat)
            .sum();
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

    /// The resolvers for a close, and the commitment record it confirmed (when we know it).
    pub(super) fn plan_resolvers(
        &self,
        close: &Close,
        tx: &Transaction,
        txid: Txid,
        height: Height,
        node: &NodeState,
    ) -> (Vec<Resolver>, Option<&CommitmentRecord>) {
        let (resolvers, record, _) = self.plan_resolvers_rebuilt(close, tx, txid, height, node);
        (resolvers, record)
    }

    /// [`Self::plan_resolvers`], with the commitment it rebuilt to find the outputs (and the
    /// funding output that build spends), so the close need not rebuild it again.
    fn plan_resolvers_rebuilt(
        &self,
        close: &Close,
        tx: &Transaction,
        txid: Txid,
        height: Height,
        node: &NodeState,
    ) -> Planned<'_> {
        let info = &self.data.info;
        let c = &self.data.commitments;
        let (holder, record) = match close {
            Close::LocalCurrent { .. } => (Party::Local, c.local.as_ref().map(|l| &l.commitment)),
            Close::RemoteCurrent { .. } => (Party::Remote, c.remote_current.as_ref()),
            Close::RemotePending { .. } => (Party::Remote, c.remote_pending.as_ref()),
            Close::RemoteRevoked { number, .. }
            | Close::RemoteRevokedUnconfirmed { number, .. } => {
                return (self.breach_resolvers(tx, txid, height, *number), None, None);
            }
            Close::RemoteFuture { .. } => {
                return (self.own_outputs_by_script(tx, txid, height), None, None)
            }
            Close::Cooperative | Close::LocalRevoked { .. } | Close::Unknown { .. } => {
                return (Vec::new(), None, None)
            }
        };
        let Some(record) = record else {
            return (Vec::new(), None, None);
        };
        let funding = self.close_funding(tx);
        let Some((funding, Ok((spec, built)))) =
            funding.map(|f| (f, info.build(holder, record, &f)))
        else {
            return (Vec::new(), Some(record), None);
        };
        let find = |offered: bool, id: u64| {
            record
                .htlcs
                .iter()
                .find(|h| h.htlc_id == id && h.as_commitment_htlc(holder).offered == offered)
        };
        let mut out = Vec::new();
        for o in &built.outputs {
            let outpoint = OutPoint {
                txid,
                vout: o.index,
            };
            let kind = match (holder, o.kind) {
                (Party::Local, OutputKind::ToLocal) => ResolverKind::CommitSweep {
                    mature_at: height.saturating_add(u32::from(info.local_to_self_delay)),
                },
                (Party::Remote, OutputKind::ToRemote) => ResolverKind::CommitSweep {
                    mature_at: height.saturating_add(1),
                },
                (Party::Local, OutputKind::LocalAnchor)
                | (Party::Remote, OutputKind::RemoteAnchor) => ResolverKind::Anchor,
                (_, OutputKind::OfferedHtlc { htlc_id })
                | (_, OutputKind::ReceivedHtlc { htlc_id }) => {
                    let offered = matches!(o.kind, OutputKind::OfferedHtlc { .. });
                    let Some(h) = find(offered, htlc_id) else {
                        continue;
                    };
                    let htlc = self.htlc_key(h);
                    match h.direction {
                        HtlcDirection::Outgoing => ResolverKind::OutgoingHtlc {
                            htlc,
                            payment_hash: h.payment_hash,
                            cltv_expiry: h.cltv_expiry,
                            deadline: node.circuits.get(&htlc).map_or(
                                h.cltv_expiry.saturating_add(UNFORWARDED_TIMEOUT_SLACK),
                                |leg| leg.cltv_expiry,
                            ),
                        },
                        HtlcDirection::Incoming => ResolverKind::IncomingHtlc {
                            htlc,
                            payment_hash: h.payment_hash,
                            cltv_expiry: h.cltv_expiry,
                        },
                    }
                }
                _ => continue, // the peer's balance or anchor
            };
            out.push(Resolver::new(outpoint, o.value_sat, kind));
        }
        (out, Some(record), Some((funding, (holder, spec, built))))
    }

    fn close_funding(&self, tx: &Transaction) -> Option<crate::event::FundingOutput> {
        tx.input
            .iter()
            .find_map(|i| self.data.info.funding_output(&i.previous_output).copied())
    }

    /// Our `to_remote` and our anchor, found by script (what we can claim without the
    /// commitment's details).
    fn own_outputs_by_script(&self, tx: &Transaction, txid: Txid, height: Height) -> Vec<Resolver> {
        let info = &self.data.info;
        let to_remote = scripts::to_remote_script_pubkey(
            info.channel_type,
            &info.local_basepoints.payment_basepoint,
        );
        let anchor = scripts::anchor_script(&info.local_basepoints.funding_pubkey).to_p2wsh();
        tx.output
            .iter()
            .zip(0u32..)
            .filter_map(|(o, vout)| {
                let kind = if o.script_pubkey == to_remote {
                    ResolverKind::CommitSweep {
                        mature_at: height.saturating_add(1),
                    }
                } else if info.channel_type.has_anchors() && o.script_pubkey == anchor {
                    ResolverKind::Anchor
                } else {
                    return None;
                };
                Some(Resolver::new(
                    OutPoint { txid, vout },
                    o.value.to_sat(),
                    kind,
                ))
            })
            .collect()
    }

    /// On a revoked commitment every output but our `to_remote` and the anchors is ours by
    /// revocation: the peer's `to_local` and every HTLC.
    fn breach_resolvers(
        &self,
        tx: &Transaction,
        txid: Txid,
        height: Height,
        number: u64,
    ) -> Vec<Resolver> {
        let info = &self.data.info;
        let mut out = self.own_outputs_by_script(tx, txid, height);
        let their_anchor =
            scripts::anchor_script(&info.remote_basepoints.funding_pubkey).to_p2wsh();
        for (o, vout) in tx.output.iter().zip(0u32..) {
            let outpoint = OutPoint { txid, vout };
            if out.iter().any(|r| r.outpoint == outpoint)
                || (info.channel_type.has_anchors() && o.script_pubkey == their_anchor)
            {
                continue;
            }
            out.push(Resolver::new(
                outpoint,
                o.value.to_sat(),
                ResolverKind::Breach {
                    commitment_number: number,
                },
            ));
        }
        out
    }

    /// Per block once closed: reorg-safe upstream decisions, resolver finality, cut-loss, and
    /// the end. Safe to call at any height (it acts only on what is due).
    pub fn on_block_closed(
        &mut self,
        tip: Height,
        node: &mut NodeState,
        cfg: &CloseConfig,
        sweeper: &Sweeper,
        fees: &super::FeeContext<'_>,
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
        let channel = self.data.info.id;
        let depth_safe = cfg.reorg_safety_depth;
        let newly: Vec<OutPoint> = self
            .resolvers
            .values_mut()
            .filter_map(|r| r.on_block(tip, depth_safe).then_some(r.outpoint))
            .collect();
        for outpoint in newly {
            let Some(r) = self.resolvers.get(&outpoint) else {
                continue;
            };
            let Stage::Resolved { txid, height, .. } = r.stage else {
                continue;
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
                revoked_outgoing_lost(self.revoked.as_ref(), &close, r.outpoint, channel, node)
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
                if outcome == Outcome::LostToPeer
                    && node.preimage_for(&htlc, &payment_hash).is_some()
                {
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
        }
        if safe {
            actions.extend(self.abandon_uneconomical_anchors(tip, fees));
            actions.extend(self.expire_incoming(tip, node, cfg));
        }
        actions.extend(self.cut_losses(tip, node, cfg));
        actions.extend(self.second_level_actions(tip, node, fees));
        if safe && self.resolved_at.is_none() && self.resolvers.values().all(Resolver::is_resolved)
        {
            self.resolved_at = Some(tip);
        }
        actions
    }

    /// Incoming HTLCs without a preimage whose expiry is reorg-safe — the block `cltv_expiry + 1`,
    /// the first in which the peer's timeout is final, `reorg_safety_depth` deep — are the peer's
    /// to take and count as resolved (BOLT 5 B05-LRO-05, B05-RRO-03), so a peer that never
    /// sweeps them cannot keep the channel open. Their outputs stay watched until archive.
    fn expire_incoming(&mut self, tip: Height, node: &NodeState, cfg: &CloseConfig) -> Vec<Action> {
        let channel = self.data.info.id;
        let mut actions = Vec::new();
        for r in self.resolvers.values_mut() {
            let ResolverKind::IncomingHtlc {
                htlc,
                payment_hash,
                cltv_expiry,
            } = r.kind
            else {
                continue;
            };
            if !matches!(r.stage, Stage::Active)
                || depth(cltv_expiry.saturating_add(1), tip) < cfg.reorg_safety_depth
                || node.preimage_for(&htlc, &payment_hash).is_some()
            {
                continue;
            }
            r.stage = Stage::Expired { height: tip };
            actions.push(Action::Report(Report::Resolution(Resolution {
                channel,
                outpoint: r.outpoint,
                outcome: Outcome::LostToPeer,
                amount_sat: r.value_sat,
                fees_sat: 0,
                spending_txid: None,
                height: tip,
            })));
        }
        actions
    }

    /// Outgoing HTLCs that will never be resolved on this chain — dust on the confirmed
    /// commitment, or not on it at all — have their incoming legs failed, unless a preimage is
    /// known (preimage first, always).
    fn fail_htlcs_not_on_chain(&self, close: &ConfirmedClose, node: &mut NodeState) -> Vec<Action> {
        if matches!(
            close.kind,
            CloseKind::FutureRemote { .. } | CloseKind::Unknown | CloseKind::OldLocal { .. }
        ) {
            return Vec::new(); // we cannot know what is on it: never fail on a guess
        }
        let mut on_chain: Vec<HtlcKey> = self
            .resolvers
            .values()
            .filter_map(|r| match r.kind {
                ResolverKind::OutgoingHtlc { htlc, .. } => Some(htlc),
                _ => None,
            })
            .collect();
        if let CloseKind::Breach { .. } = close.kind {
            // The revoked commitment's HTLCs are known only from the revoked log: without it,
            // never fail on a guess (the caller waits for it). Its untrimmed outgoing HTLCs are on chain: the peer may
            // still claim one with the preimage until our justice takes it (settled then), so
            // each is failed only when its output is ours, reorg-safe (`fail_revoked_outgoing`).
            let Some(revoked) = &self.revoked else {
                return Vec::new();
            };
            on_chain.extend(
                revoked
                    .htlcs
                    .iter()
                    .filter(|h| h.direction == HtlcDirection::Outgoing && h.output_index.is_some())
                    .map(|h| self.htlc_key(h)),
            );
        }
        // The HTLCs of the commitment that confirmed (trimmed ones included), when we know it.
        let confirmed: Vec<CommitmentHtlcInfo> = match (&close.kind, &self.revoked) {
            (CloseKind::Breach { .. }, Some(revoked)) => Some(revoked.htlcs.clone()),
            _ => None,
        }
        .or_else(|| {
            self.confirmed_commitment().and_then(|(holder, _, _)| {
                let c = &self.data.commitments;
                match holder {
                    Party::Local => c.local.as_ref().map(|l| l.commitment.htlcs.clone()),
                    Party::Remote => [c.remote_current.as_ref(), c.remote_pending.as_ref()]
                        .into_iter()
                        .flatten()
                        .find(|r| r.txids.contains(&close.txid))
                        .map(|r| r.htlcs.clone()),
                }
            })
        })
        .unwrap_or_default();
        let mut actions = Vec::new();
        // Incoming HTLCs trimmed on the confirmed commitment are lost: their final outcome is a
        // failure (unless a preimage is known, which `fail_upstream` refuses to override).
        for h in confirmed
            .iter()
            .filter(|h| h.direction == HtlcDirection::Incoming && h.output_index.is_none())
        {
            actions.extend(node.fail_upstream(
                self.htlc_key(h),
                &h.payment_hash,
                FailReason::IncomingDust,
            ));
        }
        let c = &self.data.commitments;
        let candidates = c
            .local
            .iter()
            .map(|l| &l.commitment)
            .chain(c.remote_current.iter())
            .chain(c.remote_pending.iter());
        for h in candidates
            .flat_map(|r| r.htlcs.iter())
            .filter(|h| h.direction == HtlcDirection::Outgoing)
        {
            let outgoing = self.htlc_key(h);
            if on_chain.contains(&outgoing) {
                continue;
            }
            let Some(leg) = node.circuits.get(&outgoing).copied() else {
                continue;
            };
            let on_confirmed = confirmed
                .iter()
                .any(|c| c.direction == HtlcDirection::Outgoing && c.htlc_id == h.htlc_id);
            let reason = if on_confirmed {
                FailReason::OutgoingDust { outgoing }
            } else {
                FailReason::OutgoingNotOnChain { outgoing }
            };
            actions.extend(node.fail_upstream(leg.htlc, &h.payment_hash, reason));
        }
        actions
    }

    /// The cut-loss rule: an outgoing HTLC still unresolved on-chain when its incoming leg is
    /// `cut_loss_blocks` from expiry is failed upstream (the incoming leg would otherwise be lost
    /// too), recorded as a possible loss.
    fn cut_losses(&self, tip: Height, node: &mut NodeState, cfg: &CloseConfig) -> Vec<Action> {
        let Some(n) = cfg.cut_loss_blocks else {
            return Vec::new();
        };
        let mut actions = Vec::new();
        for r in self.resolvers.values() {
            let ResolverKind::OutgoingHtlc {
                htlc, payment_hash, ..
            } = r.kind
            else {
                continue;
            };
            if !matches!(r.stage, Stage::Active) {
                continue;
            }
            let Some(leg) = node.circuits.get(&htlc).copied() else {
                continue;
            };
            if tip.saturating_add(n) < leg.cltv_expiry || node.upstream.contains_key(&leg.htlc) {
                continue;
            }
            let reason = FailReason::CutLoss {
                outgoing: htlc,
                incoming_expiry: leg.cltv_expiry,
            };
            if let Some(fail) = node.fail_upstream(leg.htlc, &payment_hash, reason) {
                actions.push(fail);
                actions.push(Action::Report(Report::Loss {
                    htlc,
                    amount_msat: leg.amount_msat,
                    detail: format!("outgoing htlc unresolved {n} blocks before the incoming leg expires at {}: failed upstream; if the peer still claims it, this is lost", leg.cltv_expiry),
                }));
            }
        }
        actions
    }

    /// The block at `height` was disconnected.
    pub fn on_disconnect(&mut self, height: Height) -> Vec<Action> {
        let mut actions = Vec::new();
        if self.resolved_at.is_some_and(|h| h >= height) {
            self.resolved_at = None;
        }
        if self.close.as_ref().is_some_and(|c| c.height >= height) {
            if let Some(close) = self.close.take() {
                actions.push(self.alert(
                    AlertKind::ChannelFailure,
                    format!(
                        "close {} at height {} was reorged out; re-planning from the new chain",
                        close.txid, close.height
                    ),
                ));
            }
            self.resolvers.clear();
            self.resolved_at = None;
        }
        self.resolvers
            .retain(|_, r| r.created_at.is_none_or(|h| h < height));
        for r in self.resolvers.values_mut() {
            r.on_disconnect(height);
        }
        actions
    }

    /// The next height at which this channel has something to do, independent of the tip (a
    /// height already passed is due at the next block). A channel waiting for its own broadcast
    /// commitment to confirm acts every block instead: see [`ChannelArbitrator::acts_every_block`].
    pub fn next_wakeup(
        &self,
        node: &NodeState,
        cfg: &CloseConfig,
        deadlines: &super::deadline::DeadlineConfig,
    ) -> Option<Height> {
        let Some(close) = &self.close else {
            if self.force_close.is_some() {
                return None;
            }
            return super::deadline::earliest_trigger(&self.data, node, deadlines)
                .map(|t| t.fires_at);
        };
        let mut next: Vec<Height> = self
            .resolvers
            .values()
            .filter_map(|r| r.next_wakeup(cfg.reorg_safety_depth))
            .collect();
        if let Some(at) = self.resolved_at {
            // Fully resolved: archived at `archive_depth` — unless an output already final for
            // us without a spend of ours (an expired incoming HTLC) is spent meanwhile, whose
            // spend is followed until it is reorg-safe.
            next.push(at.saturating_add(cfg.archive_depth.saturating_sub(1)));
            return next.into_iter().min();
        }
        if !close.settled_upstream {
            next.push(
                close
                    .height
                    .saturating_add(cfg.reorg_safety_depth.saturating_sub(1)),
            );
        }
        // An incoming HTLC without a preimage counts as the peer's once its expiry is
        // reorg-safe (see `expire_incoming`).
        for r in self.resolvers.values() {
            if let (
                ResolverKind::IncomingHtlc {
                    htlc,
                    payment_hash,
                    cltv_expiry,
                },
                Stage::Active,
            ) = (&r.kind, &r.stage)
            {
                if node.preimage_for(htlc, payment_hash).is_none() {
                    next.push(cltv_expiry.saturating_add(cfg.reorg_safety_depth));
                }
            }
        }
        if matches!(close.kind, CloseKind::Local { .. }) {
            // Second-level claims start at an HTLC's expiry, or at once with its preimage.
            for r in self
                .resolvers
                .values()
                .filter(|r| r.claimable() && r.second_level.is_none())
            {
                match &r.kind {
                    ResolverKind::OutgoingHtlc { cltv_expiry, .. } => next.push(*cltv_expiry),
                    ResolverKind::IncomingHtlc {
                        htlc, payment_hash, ..
                    } if node.preimage_for(htlc, payment_hash).is_some() => next.push(close.height),
                    _ => {}
                }
            }
        }
        if let Some(n) = cfg.cut_loss_blocks {
            for r in self.resolvers.values() {
                if let (ResolverKind::OutgoingHtlc { htlc, .. }, Stage::Active) =
                    (&r.kind, &r.stage)
                {
                    if let Some(leg) = node
                        .circuits
                        .get(htlc)
                        .filter(|leg| !node.upstream.contains_key(&leg.htlc))
                    {
                        next.push(leg.cltv_expiry.saturating_sub(n));
                    }
                }
            }
        }
        next.into_iter().min()
    }

    /// Whether the channel acts on every block: our commitment is out and no close confirmed
    /// yet, so it is rebroadcast (or re-signed) each block.
    pub fn acts_every_block(&self) -> bool {
        (self.close.is_none() && (self.force_close.is_some() || self.mempool_commitment.is_some()))
            || self.second_level_pending()
    }

    /// Whether the channel is fully resolved and `archive_depth` deep at `tip`.
    pub fn archivable(&self, tip: Height, cfg: &CloseConfig) -> bool {
        self.resolved_at
            .is_some_and(|h| depth(h, tip) >= cfg.archive_depth)
    }
}

/// An HTLC output of the peer's revoked commitment was resolved, reorg-safe: if it was an
/// outgoing HTLC of ours and no preimage appeared (the peer's HTLC-success would have revealed
/// it and settled the incoming leg), the peer can no longer claim it, so its incoming leg fails.
fn revoked_outgoing_lost(
    revoked: Option<&CommitmentRecord>,
    close: &ConfirmedClose,
    outpoint: OutPoint,
    channel: crate::types::ChannelId,
    node: &mut NodeState,
) -> Option<Action> {
    if outpoint.txid != close.txid || !matches!(close.kind, CloseKind::Breach { .. }) {
        return None;
    }
    let h = revoked?.htlcs.iter().find(|h| {
        h.direction == HtlcDirection::Outgoing && h.output_index == Some(outpoint.vout)
    })?;
    let outgoing = HtlcKey {
        channel,
        htlc_id: h.htlc_id,
        direction: h.direction,
    };
    let leg = node.circuits.get(&outgoing).copied()?;
    node.fail_upstream(
        leg.htlc,
        &h.payment_hash,
        FailReason::OutgoingRevoked { outgoing },
    )
}

fn describe(kind: &ResolverKind) -> String {
    match kind {
        ResolverKind::CommitSweep { mature_at } => {
            format!("our balance, timelocked until {mature_at}")
        }
        ResolverKind::OutgoingHtlc {
            htlc,
            cltv_expiry,
            deadline,
            ..
        } => {
            format!(
                "outgoing htlc {} contested until {cltv_expiry}, must resolve by {deadline}",
                htlc.htlc_id
            )
        }
        ResolverKind::IncomingHtlc {
            htlc, cltv_expiry, ..
        } => {
            format!(
                "incoming htlc {} claimable with its preimage until {cltv_expiry}",
                htlc.htlc_id
            )
        }
        ResolverKind::Anchor => "our anchor".to_string(),
        ResolverKind::Breach { commitment_number } => {
            format!("revoked commitment {commitment_number} output, ours by revocation")
        }
    }
}
