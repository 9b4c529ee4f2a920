//! HTLCs on our own commitment of an anchors channel: the zero-fee HTLC transactions (BOLT 3
//! `option_anchors_zero_fee_htlc_tx`). The peer signed them `SIGHASH_SINGLE|ANYONECANPAY`, so
//! we may add wallet inputs and a change output: a [`FundedClaim`] pays their fee, rising toward
//! the HTLC's budget as its deadline nears, HTLC input 0 kept at output 0.

use bitcoin::{Amount, TxOut};

use crate::action::{Action, Basepoint, KeyTweak, SigningKey};
use crate::bolt3::weights::htlc_tx_weight;
use crate::event::{BroadcastOutcome, FundingOutcome, SignOutcome};
use crate::funded::{FundedClaim, OwnInput, OwnSpend, Template};
use crate::node::NodeState;
use crate::resolver::{ResolverKind, SecondLevelClaim};
use crate::types::{ClaimId, Height, RequestId};

use super::second_level::Due;
use super::{ChannelArbitrator, FeeContext};

impl ChannelArbitrator {
    /// The funded claim of a due HTLC: created on first need, then driven block by block.
    pub(super) fn zero_fee_htlc_actions(
        &mut self,
        due: &Due,
        tip: Height,
        node: &mut NodeState,
        fees: &FeeContext<'_>,
    ) -> Vec<Action> {
        let has_claim = self
            .resolvers
            .get(&due.outpoint)
            .is_some_and(|r| r.second_level.as_ref().is_some_and(|c| c.funded.is_some()));
        if !has_claim {
            let Some(claim) = self.new_zero_fee_claim(due, node, fees) else {
                return Vec::new();
            };
            if let Some(r) = self.resolvers.get_mut(&due.outpoint) {
                r.second_level = Some(SecondLevelClaim {
                    claim: claim.claim,
                    attempt: 0,
                    signed: None,
                    funded: Some(claim),
                });
            }
        }
        self.resolvers
            .get_mut(&due.outpoint)
            .and_then(|r| r.second_level.as_mut())
            .and_then(|c| c.funded.as_mut())
            .map(|f| f.on_block(tip, fees.fees, fees.fallback))
            .unwrap_or_default()
    }

    fn new_zero_fee_claim(
        &self,
        due: &Due,
        node: &mut NodeState,
        fees: &FeeContext<'_>,
    ) -> Option<FundedClaim> {
        let r = self.resolvers.get(&due.outpoint)?;
        let (deadline, preimage) = match &r.kind {
            ResolverKind::OutgoingHtlc { deadline, .. } => (*deadline, None),
            ResolverKind::IncomingHtlc {
                htlc,
                payment_hash,
                cltv_expiry,
            } => (*cltv_expiry, Some(node.preimage_for(htlc, payment_hash)?)),
            _ => return None,
        };
        let (_, spec, _) = self.confirmed_commitment()?;
        let value = due.htlc.amount_msat / 1000;
        let info = &self.data.info;
        let template = Template {
            input: OwnInput {
                outpoint: due.outpoint,
                txout: TxOut {
                    value: Amount::from_sat(value),
                    script_pubkey: due.script.to_p2wsh(),
                },
                sequence: due.tx.input.first()?.sequence,
                script: due.script.clone(),
                key: SigningKey::Channel {
                    channel: info.id,
                    basepoint: Basepoint::Htlc,
                    tweak: KeyTweak::PerCommitmentPoint { point: due.point },
                },
                pubkey: spec.keys.local_htlc_pubkey,
                spend: OwnSpend::SecondLevel {
                    remote_sig: due.remote_sig,
                    preimage,
                },
            },
            outputs: due.tx.output.clone(),
            version: due.tx.version.0,
            lock_time: due.tx.lock_time.to_consensus_u32(),
            weight: htlc_tx_weight(!due.htlc.offered, due.htlc.cltv_expiry, info.channel_type),
            parent: None,
            fee_input: None,
        };
        let budget = fees.policy.htlc_budget(value);
        Some(FundedClaim::new(
            node.new_claim(),
            info.id,
            template,
            deadline,
            budget,
        ))
    }

    /// The channel's wallet-funded claim `claim`, if it has one, and whether it is still live:
    /// a zero-fee HTLC transaction while its HTLC output is unspent (also an incoming HTLC
    /// counted expired, whose preimage came late: claimed after all while the peer lets us),
    /// the CPFP child while no close confirmed. A claim that is not live only keeps its
    /// history: answers arriving for it late (a wallet or signer slower than the chain) must
    /// not build on an input that is already spent.
    pub(crate) fn funded_claim_mut(&mut self, claim: ClaimId) -> Option<(&mut FundedClaim, bool)> {
        let closed = self.close.is_some();
        self.resolvers
            .values_mut()
            .filter_map(|r| {
                let live = matches!(
                    r.stage,
                    crate::resolver::Stage::Active | crate::resolver::Stage::Expired { .. }
                );
                Some((r.second_level.as_mut()?.funded.as_mut()?, live))
            })
            .chain(self.cpfp.as_mut().map(|f| (f, !closed)))
            .find(|(f, _)| f.claim == claim)
    }

    /// The channel's wallet-funded claim `claim`, live or not.
    pub(crate) fn funded_claim(&self, claim: ClaimId) -> Option<&FundedClaim> {
        self.resolvers
            .values()
            .filter_map(|r| r.second_level.as_ref()?.funded.as_ref())
            .chain(self.cpfp.as_ref())
            .find(|f| f.claim == claim)
    }

    /// The wallet answered a funding request of this channel's. An answer for a claim that is
    /// no longer live is dropped; the inputs it lent are released with the claim's others.
    pub fn on_wallet_funded(
        &mut self,
        request: RequestId,
        outcome: &FundingOutcome,
        tip: Height,
    ) -> Vec<Action> {
        match self.funded_claim_mut(request.claim) {
            Some((f, true)) => f.on_funded(request, outcome, tip),
            Some((_, false)) => Vec::new(),
            None => Vec::new(),
        }
    }

    /// Signatures for one of this channel's wallet-funded claims. `None`: not one of them.
    /// Signatures for a claim that is no longer live are dropped.
    pub(crate) fn on_funded_signed(
        &mut self,
        request: RequestId,
        outcome: &SignOutcome,
    ) -> Option<Vec<Action>> {
        self.funded_claim_mut(request.claim).map(|(f, live)| {
            if live {
                f.on_signed(request, outcome)
            } else {
                Vec::new()
            }
        })
    }

    /// A broadcast result for one of this channel's claims: a wallet-funded one (dropped once
    /// it is no longer live), or our commitment.
    pub fn on_claim_broadcast_result(
        &mut self,
        request: RequestId,
        txid: bitcoin::Txid,
        outcome: &BroadcastOutcome,
    ) -> Vec<Action> {
        if let Some(actions) = self.on_reorged_cooperative_result(request.claim, outcome) {
            return actions;
        }
        match self.funded_claim_mut(request.claim) {
            Some((f, true)) => f.on_broadcast_result(outcome),
            Some((_, false)) => Vec::new(),
            None => self.on_broadcast_result(txid, outcome),
        }
    }

    /// The wallet-funded claims still live, re-emitted after a restart: zero-fee HTLC
    /// transactions of unresolved HTLCs, and the CPFP while no close confirmed.
    pub(crate) fn funded_pending_after_restart(&self) -> Vec<Action> {
        let htlcs = self
            .resolvers
            .values()
            .filter(|r| matches!(r.stage, crate::resolver::Stage::Active))
            .filter_map(|r| r.second_level.as_ref()?.funded.as_ref());
        let cpfp = self.cpfp.iter().filter(|_| self.close.is_none());
        htlcs
            .chain(cpfp)
            .flat_map(FundedClaim::pending_after_restart)
            .collect()
    }
}
