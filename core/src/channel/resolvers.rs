//! The channel runs its resolvers: it builds the read-only context they step in (the close, the
//! commitment it confirmed rebuilt, what justice needs), feeds them their inputs, gathers what
//! they ask for and inserts their successors. The claims it asks the sweeper for are the
//! resolvers' own, derived afresh every time, so a reorg that drops a resolver drops its claim.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use bitcoin::{OutPoint, ScriptBuf};

use crate::action::{CloseKind, SweepRequest};
use crate::bolt3::scripts;
use crate::node::NodeState;
use crate::resolver::{
    CloseView, Confirmed, FeeContext, Justice, Resolver, ResolverAction, ResolverContext,
    ResolverInput, ResolverKind, ResolverStep,
};
use crate::types::{Height, Party};

use super::config::CloseConfig;
use super::ChannelArbitrator;

/// What a channel's resolvers read that the channel builds: the confirmed commitment (borrowed
/// from its cache when current), our `to_local` script on our own commitment, and on a breach
/// what justice needs.
pub(super) struct Facts<'a> {
    confirmed: Cow<'a, Option<Confirmed>>,
    to_local: Option<ScriptBuf>,
    justice: Option<Justice<'a>>,
}

/// What a block did to a channel's resolvers, by outpoint and in outpoint order.
#[derive(Default)]
pub(super) struct BlockStepped {
    /// Spends that became final.
    pub(super) finals: Vec<OutPoint>,
    /// Outputs final without a spend (anchors left, incoming HTLCs expired).
    pub(super) settled: Vec<OutPoint>,
    /// HTLCs of our commitment whose second-level transaction is due.
    pub(super) second_level_due: BTreeSet<OutPoint>,
}

impl ChannelArbitrator {
    /// The facts for this channel's resolvers (`None` before a close). `revoked_htlcs`: rebuild
    /// the revoked commitment of a breach too (only its claims need it).
    pub(super) fn resolver_facts(&self, revoked_htlcs: bool) -> Option<Facts<'_>> {
        self.close.as_ref()?;
        let confirmed = self.confirmed_commitment_ref();
        let info = &self.data.info;
        let to_local = match confirmed.as_ref() {
            Some((Party::Local, spec, _)) => Some(scripts::to_local_script(
                &spec.keys.revocation_pubkey,
                info.local_to_self_delay,
                &spec.keys.local_delayed_pubkey,
            )),
            _ => None,
        };
        let justice = match (self.breach_secret(), self.revoked_to_local()) {
            (Some(secret), Some((to_local, revocation_pubkey))) => Some(Justice {
                secret,
                to_local,
                revocation_pubkey,
                rebuilt: revoked_htlcs.then(|| self.revoked_commitment()).flatten(),
                record: self.revoked.as_ref(),
            }),
            _ => None,
        };
        Some(Facts {
            confirmed,
            to_local,
            justice,
        })
    }

    /// The context of this channel's resolvers over `facts`.
    pub(super) fn resolver_context<'a>(
        &'a self,
        facts: &'a Facts<'a>,
        node: &'a NodeState,
        fees: FeeContext<'a>,
        cfg: &CloseConfig,
    ) -> Option<ResolverContext<'a>> {
        let close = self.close.as_ref()?;
        Some(ResolverContext {
            channel: &self.data.info,
            close: CloseView {
                kind: &close.kind,
                tx: &close.tx.0,
                txid: close.txid,
                height: close.height,
                confirmed: facts.confirmed.as_ref().as_ref(),
                to_local: facts.to_local.as_ref(),
                justice: facts.justice.as_ref(),
            },
            node,
            fees,
            safety_depth: cfg.reorg_safety_depth,
        })
    }

    /// Every claim this channel's resolvers want the sweeper to make now: the justice claims of
    /// a breach first, then the others, each in outpoint order.
    pub fn sweep_requests(
        &self,
        node: &NodeState,
        fees: &FeeContext<'_>,
        cfg: &CloseConfig,
    ) -> Vec<SweepRequest> {
        let Some(facts) = self.resolver_facts(true) else {
            return Vec::new();
        };
        let Some(ctx) = self.resolver_context(&facts, node, *fees, cfg) else {
            return Vec::new();
        };
        let is_justice = |r: &&Resolver| matches!(r.kind, ResolverKind::Breach { .. });
        let justice = self.resolvers.values().filter(is_justice);
        let others = self.resolvers.values().filter(|r| !is_justice(r));
        justice
            .chain(others)
            .filter_map(|r| r.sweep_request(&ctx))
            .collect()
    }

    /// Step every resolver with `input`; returns each one's answer, in outpoint order, after
    /// applying its hand-offs and removals.
    pub(super) fn step_resolvers(
        &mut self,
        input: ResolverInput<'_>,
        only: Option<OutPoint>,
        node: &NodeState,
        fees: &FeeContext<'_>,
        cfg: &CloseConfig,
    ) -> Vec<(OutPoint, ResolverStep)> {
        let mut resolvers = std::mem::take(&mut self.resolvers);
        let mut answers = Vec::new();
        if let Some(facts) = self.resolver_facts(false) {
            if let Some(ctx) = self.resolver_context(&facts, node, *fees, cfg) {
                for r in resolvers.values_mut() {
                    if only.is_none_or(|o| o == r.outpoint) {
                        answers.push((r.outpoint, r.step(input, &ctx)));
                    }
                }
            }
        }
        apply_answers(&mut resolvers, &answers);
        self.resolvers = resolvers;
        answers
    }

    /// A block at `tip`: step every resolver and sort what they ask for.
    pub(super) fn step_resolvers_block(
        &mut self,
        tip: Height,
        node: &NodeState,
        fees: &FeeContext<'_>,
        cfg: &CloseConfig,
    ) -> BlockStepped {
        let mut out = BlockStepped::default();
        let answers = self.step_resolvers(ResolverInput::Block { tip }, None, node, fees, cfg);
        for (outpoint, step) in answers {
            for action in step.actions {
                match action {
                    ResolverAction::Final => out.finals.push(outpoint),
                    ResolverAction::SettledUnspent => out.settled.push(outpoint),
                    ResolverAction::SecondLevelDue => {
                        out.second_level_due.insert(outpoint);
                    }
                    ResolverAction::UnknownSpend { .. } => {}
                }
            }
        }
        out
    }

    /// The HTLCs of our commitment whose second-level transaction a preimage just made due and
    /// that have none started.
    pub(super) fn second_level_due_on_preimage(
        &mut self,
        tip: Height,
        node: &NodeState,
        fees: &FeeContext<'_>,
        cfg: &CloseConfig,
    ) -> BTreeSet<OutPoint> {
        if !matches!(
            self.close.as_ref().map(|c| &c.kind),
            Some(CloseKind::Local { .. })
        ) {
            return BTreeSet::new();
        }
        self.step_resolvers(ResolverInput::Preimage { tip }, None, node, fees, cfg)
            .into_iter()
            .filter(|(_, s)| s.actions.contains(&ResolverAction::SecondLevelDue))
            .map(|(outpoint, _)| outpoint)
            .collect()
    }
}

/// Insert the successors the answers hand off to, and remove the resolvers that are gone.
fn apply_answers(
    resolvers: &mut BTreeMap<OutPoint, Resolver>,
    answers: &[(OutPoint, ResolverStep)],
) {
    for (outpoint, step) in answers {
        if step.gone {
            resolvers.remove(outpoint);
        }
        if let Some(next) = &step.hand_off {
            resolvers.insert(next.outpoint, next.clone());
        }
    }
}
