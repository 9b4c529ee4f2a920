//! Anchors (BOLT 3 `option_anchors`, or the shared pay-to-anchor output of `zero_fee_commitments`):
//! CPFP of an unconfirmed commitment through our anchor, and the anchor itself after the close.
//! A zero-fee commitment pays nothing itself: it confirms only with a version-3 child spending its
//! pay-to-anchor output, broadcast with it as a package.
//!
//! Before a close confirms, the commitment in flight — the peer's current or pending one seen in
//! the mempool (through our anchor on it), else ours once signed — is paid for by a child that
//! spends our anchor and wallet inputs ([`FundedClaim`]), broadcast with it as a package, while
//! the commitment alone is too cheap for its deadline:
//! - HTLCs at stake (non-dust, ours to claim: outgoing, or incoming with the preimage): the
//!   deadline is half the distance to the earliest of their deadlines (at least 1 block), the
//!   budget the sweep policy's HTLC share of their value;
//! - none: the deadline and budget of a balance sweep, so a commitment that pays enough on its
//!   own gets no child.
//!
//! After the close, our anchor (330 sat) is swept only when it pays for itself at the minimum
//! relay fee; otherwise, once the close is reorg-safe, it is left (after 16 blocks anyone may
//! spend it) and reported as uneconomical.

use bitcoin::secp256k1::PublicKey;
use bitcoin::{OutPoint, ScriptBuf, Sequence, Transaction, Txid};
use serde::{Deserialize, Serialize};

use crate::action::{Action, Basepoint, KeyTweak, SigningKey};
use crate::bolt3::scripts;
use crate::bolt3::weights::{claim_tx_weight, output_weight, P2WPKH_SCRIPT_PUBKEY_LEN};
use crate::bolt3::witness::ClaimPath;
use crate::bolt3::AnchorKind;
use crate::close::{classify_close, Classification};
use crate::funded::{FeeInput, FundedClaim, OwnInput, OwnSpend, Parent, Template};
use crate::node::NodeState;
use crate::resolver::{Resolver, ResolverKind, Stage};
use crate::types::{Height, Party, RawTx};

use super::{ChannelArbitrator, FeeContext};

/// A commitment of this channel seen in the mempool.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MempoolCommitment {
    /// The transaction.
    pub tx: RawTx,
    /// Whose commitment it is.
    pub holder: Party,
}

/// What a CPFP must protect on a commitment: its deadline and budget.
struct AtStake {
    deadline: Height,
    budget_sat: u64,
}

/// The budget of a CPFP protecting `value_sat` of HTLCs: the HTLCs' budget share of what their
/// own claims may not spend. Once the commitment confirms, each HTLC's claim may spend its own
/// share of the HTLC, from the same fee wallet (anchors' second-level transactions and zero-fee
/// ones are wallet-funded); a CPFP budgeted on the whole value could leave nothing for them — a
/// thin wallet spent on getting the commitment confirmed, and the HTLCs lost after it. So the
/// CPFP and the claims after it together never spend more than the configured share of value
/// plus that share of the rest (lnd budgets its anchor sweep the same way).
fn cpfp_htlc_budget(policy: &crate::resolver::SweepPolicy, value_sat: u64) -> u64 {
    policy.htlc_budget(value_sat.saturating_sub(policy.htlc_budget(value_sat)))
}

/// The weight of an anchor spend's own part: the claim of the anchor alone (by `path`), less its
/// output.
fn anchor_template_weight(path: &ClaimPath) -> u64 {
    claim_tx_weight(path, P2WPKH_SCRIPT_PUBKEY_LEN)
        .saturating_sub(output_weight(P2WPKH_SCRIPT_PUBKEY_LEN))
}

/// How a CPFP child spends an anchor of `kind`: its script, witness, version and own weight. A
/// keyed anchor: our funding key, version 2. The shared pay-to-anchor output of a zero-fee
/// commitment: no script, an empty witness, and version 3 (TRUC: a version-3 parent's
/// unconfirmed child must be version 3, at most 1,000 vB). `None` for simple taproot's P2TR
/// anchors: their owner spends by key path with a BIP 340 signature, which the engine does not
/// make yet (such channels are refused at registration, [`ChannelType::engine_support`]).
///
/// [`ChannelType::engine_support`]: crate::bolt3::ChannelType::engine_support
fn anchor_spend(
    kind: AnchorKind,
    funding_pubkey: &PublicKey,
) -> Option<(ScriptBuf, OwnSpend, i32, u64)> {
    Some(match kind {
        AnchorKind::Keyed => (
            scripts::anchor_script(funding_pubkey),
            OwnSpend::Anchor,
            2,
            anchor_template_weight(&ClaimPath::AnchorOwner),
        ),
        AnchorKind::PayToAnchor => (
            ScriptBuf::new(),
            OwnSpend::PayToAnchor,
            3,
            anchor_template_weight(&ClaimPath::PayToAnchor),
        ),
        AnchorKind::KeyedTaproot => return None,
    })
}

impl ChannelArbitrator {
    /// Our `to_remote` on the peer's zero-fee commitment `parent`, to pay a CPFP child's fee
    /// without the wallet when it suffices: P2WPKH to our payment basepoint with no CSV (BOLT 3
    /// `to_remote`; PR 1228 removes the anchors' `1 OP_CSV` so that our own outputs can CPFP the
    /// peer's commitment). `None` for our own commitment (our `to_local` waits `to_self_delay`),
    /// keyed anchors (their `to_remote` has `1 OP_CSV`: no unconfirmed child may spend it), or
    /// without a sweep destination.
    fn own_fee_input(
        &self,
        parent: &Transaction,
        kind: AnchorKind,
        fees: &FeeContext<'_>,
    ) -> Option<FeeInput> {
        let theirs = self
            .mempool_commitment
            .as_ref()
            .is_some_and(|m| m.holder == Party::Remote && m.tx.0 == *parent);
        if kind != AnchorKind::PayToAnchor || !theirs {
            return None;
        }
        let info = &self.data.info;
        let ours = info.local_basepoints.payment_basepoint;
        let script = scripts::to_remote_script_pubkey(info.channel_type, &ours);
        let (txout, vout) = parent
            .output
            .iter()
            .zip(0u32..)
            .find(|(o, _)| o.script_pubkey == script)?;
        Some(FeeInput {
            outpoint: OutPoint {
                txid: parent.compute_txid(),
                vout,
            },
            txout: txout.clone(),
            key: SigningKey::Channel {
                channel: info.id,
                basepoint: Basepoint::Payment,
                tweak: KeyTweak::None,
            },
            pubkey: ours,
            destination: fees.destination?.clone(),
        })
    }

    /// The commitment a CPFP would pay for: the peer's seen in the mempool, else ours.
    fn cpfp_parent(&self) -> Option<Transaction> {
        if let Some(m) = &self.mempool_commitment {
            return Some(m.tx.0.clone());
        }
        Some(self.force_close.as_ref()?.signed.as_ref()?.0.clone())
    }

    /// Our anchor on `parent` and what is at stake on it if it confirms in block `tip + 1`.
    fn anchor_and_stake(
        &self,
        parent: &Transaction,
        tip: Height,
        node: &NodeState,
        fees: &FeeContext<'_>,
    ) -> Option<(Resolver, AtStake)> {
        let Classification::FundingSpent { close, .. } =
            classify_close(parent, &self.data.info, &self.data.commitments)
        else {
            return None;
        };
        let txid = parent.compute_txid();
        let (resolvers, _) = self.plan_resolvers(&close, parent, txid, tip.saturating_add(1), node);
        let anchor = resolvers
            .iter()
            .find(|r| matches!(r.kind, ResolverKind::Anchor))?
            .clone();
        let mut earliest: Option<Height> = None;
        let mut value = 0u64;
        for r in &resolvers {
            let deadline = match r.kind {
                ResolverKind::OutgoingHtlc { deadline, .. } => deadline,
                ResolverKind::IncomingHtlc {
                    htlc,
                    payment_hash,
                    cltv_expiry,
                } if node.preimage_for(&htlc, &payment_hash).is_some() => cltv_expiry,
                _ => continue,
            };
            earliest = Some(earliest.map_or(deadline, |e| e.min(deadline)));
            value = value.saturating_add(r.value_sat);
        }
        let stake = match earliest {
            Some(e) => AtStake {
                deadline: tip.saturating_add((e.saturating_sub(tip) / 2).max(1)),
                budget_sat: cpfp_htlc_budget(fees.policy, value),
            },
            None => {
                let balance: u64 = resolvers
                    .iter()
                    .filter(|r| matches!(r.kind, ResolverKind::CommitSweep { .. }))
                    .map(|r| r.value_sat)
                    .sum();
                AtStake {
                    deadline: tip.saturating_add(fees.policy.balance_deadline_blocks),
                    budget_sat: fees.policy.balance_budget(balance),
                }
            }
        };
        Some((anchor, stake))
    }

    fn new_cpfp(
        &self,
        parent: &Transaction,
        tip: Height,
        node: &mut NodeState,
        fees: &FeeContext<'_>,
    ) -> Option<FundedClaim> {
        let (anchor, stake) = self.anchor_and_stake(parent, tip, node, fees)?;
        let funding = parent
            .input
            .iter()
            .find_map(|i| self.data.info.funding_output(&i.previous_output))?;
        let out_sat: u64 = parent.output.iter().map(|o| o.value.to_sat()).sum();
        let info = &self.data.info;
        let funding_pubkey = info.local_basepoints.funding_pubkey;
        let txout = parent.output.get(anchor.outpoint.vout as usize)?.clone();
        let kind = info.channel_type.anchor_kind()?;
        let (script, spend, version, weight) = anchor_spend(kind, &funding_pubkey)?;
        let template = Template {
            input: OwnInput {
                outpoint: anchor.outpoint,
                txout,
                sequence: Sequence::ENABLE_RBF_NO_LOCKTIME,
                script,
                key: SigningKey::Channel {
                    channel: info.id,
                    basepoint: Basepoint::Funding,
                    tweak: KeyTweak::None,
                },
                pubkey: funding_pubkey,
                spend,
            },
            outputs: Vec::new(),
            version,
            lock_time: 0,
            weight,
            parent: Some(Parent {
                tx: RawTx(parent.clone()),
                fee_sat: funding.value_sat.saturating_sub(out_sat),
                weight: parent.weight().to_wu(),
            }),
            fee_input: self.own_fee_input(parent, kind, fees),
        };
        Some(FundedClaim::new(
            node.new_claim(),
            info.id,
            template,
            stake.deadline,
            stake.budget_sat,
        ))
    }

    /// Per block before a close confirms (anchors channels): keep a CPFP child paying for the
    /// commitment in flight while it is too cheap for its deadline. A new parent (the peer's
    /// commitment appeared, or left the mempool) starts a new claim and releases the old one's
    /// inputs.
    pub(crate) fn anchor_cpfp_actions(
        &mut self,
        tip: Height,
        node: &mut NodeState,
        fees: &FeeContext<'_>,
    ) -> Vec<Action> {
        if !self.data.info.channel_type.has_any_anchor() || self.close.is_some() {
            return Vec::new();
        }
        let parent = self.cpfp_parent();
        let parent_txid: Option<Txid> = parent.as_ref().map(Transaction::compute_txid);
        let current = self
            .cpfp
            .as_ref()
            .and_then(|f| f.template.parent.as_ref())
            .map(|p| p.tx.compute_txid());
        let mut actions = Vec::new();
        if current.is_some() && current != parent_txid {
            if let Some(old) = self.cpfp.take() {
                // Its children may still confirm with their parent: remembered as ours.
                let children = old.attempts.iter().filter_map(|a| a.assembled.as_ref());
                self.retired_cpfp
                    .extend(children.map(|x| (x.txid, x.fee_sat)));
                actions.push(Action::ReleaseInputs { claim: old.claim });
            }
        }
        if self.cpfp.is_none() {
            let Some(parent) = parent else {
                return actions;
            };
            self.cpfp = self.new_cpfp(&parent, tip, node, fees);
        }
        if let Some(f) = self.cpfp.as_mut() {
            actions.extend(f.on_block(tip, fees.fees, fees.fallback));
        }
        actions
    }

    /// A commitment of this channel entered the mempool: remembered as the CPFP parent (the
    /// peer's; ours is known already). Returns whether anything changed.
    pub fn on_mempool_commitment(&mut self, tx: &Transaction) -> bool {
        if !self.data.info.channel_type.has_any_anchor() || self.close.is_some() {
            return false;
        }
        let Classification::FundingSpent { close, .. } =
            classify_close(tx, &self.data.info, &self.data.commitments)
        else {
            return false;
        };
        if !matches!(
            close,
            crate::close::Close::RemoteCurrent { .. } | crate::close::Close::RemotePending { .. }
        ) {
            return false;
        }
        let seen = MempoolCommitment {
            tx: RawTx(tx.clone()),
            holder: Party::Remote,
        };
        if self.mempool_commitment.as_ref() == Some(&seen) {
            return false;
        }
        self.mempool_commitment = Some(seen);
        true
    }

    /// A transaction left the mempool: if it was the peer's commitment we were paying for,
    /// forget it (our own, if signed, becomes the parent again).
    pub fn on_mempool_removed(&mut self, txid: &Txid) -> bool {
        if self
            .mempool_commitment
            .as_ref()
            .is_some_and(|m| m.tx.compute_txid() == *txid)
        {
            self.mempool_commitment = None;
            return true;
        }
        false
    }

    /// Whether `txid` is one of our CPFP children (a spend of our anchor by us), of the claim in
    /// flight or of one given up for another parent.
    pub(crate) fn is_our_cpfp(&self, txid: &Txid) -> bool {
        self.cpfp.as_ref().is_some_and(|f| f.is_ours(txid)) || self.retired_cpfp.contains_key(txid)
    }

    /// The anchor of a confirmed close, for a ledger: the CPFP fee paid through it.
    pub fn cpfp_fee(&self, outpoint: &OutPoint) -> Option<u64> {
        let spent = match self.resolvers.get(outpoint)?.stage {
            Stage::Spent { txid, .. } | Stage::Resolved { txid, .. } => txid,
            _ => return None,
        };
        // A child of a claim given up for another parent, which confirmed after all.
        if let Some(fee) = self.retired_cpfp.get(&spent) {
            return Some(*fee);
        }
        let f = self.cpfp.as_ref()?;
        if f.template.input.outpoint != *outpoint || !f.is_ours(&spent) {
            return None;
        }
        f.fee_paid(Some(&spent))
    }
}

#[cfg(test)]
mod tests {
    use super::cpfp_htlc_budget;
    use crate::resolver::SweepPolicy;

    /// With `v` at stake the CPFP may spend the HTLC share of what the HTLCs' own claims may
    /// not: a quarter of `v` at the default 50 %, so the two together stay within 75 % of `v`.
    #[test]
    fn a_cpfp_is_budgeted_the_htlc_share_of_what_the_htlcs_own_claims_may_not_spend() {
        let policy = SweepPolicy::default();
        assert_eq!(policy.htlc_budget(100_000), 50_000, "the default share");
        assert_eq!(cpfp_htlc_budget(&policy, 100_000), 25_000);
        assert_eq!(cpfp_htlc_budget(&policy, 150_000), 37_500);
        assert_eq!(cpfp_htlc_budget(&policy, 0), 0);
    }
}
