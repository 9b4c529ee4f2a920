//! What a closed channel asks the sweeper to claim — derived from the confirmed close and the
//! resolvers every time, never stored apart from them, so a reorg that drops a resolver drops its
//! request too.
//!
//! Handled here: our balance on either commitment (`to_local` after `to_self_delay`, `to_remote`
//! at once or after 1 block), and the HTLC outputs of the peer's commitment (ours by timeout after
//! `cltv_expiry`, or with the preimage before it). The second-level transactions of our own
//! commitment and breaches are claimed by their own resolvers; our anchor is asked for here only
//! when it pays for itself (see `anchor.rs`).

use bitcoin::{Amount, OutPoint, ScriptBuf, TxOut};
use serde::{Deserialize, Serialize};

use crate::action::{Basepoint, CloseKind, KeyTweak, SigningKey, SweepRequest};
use crate::bolt3::commitment::{BuiltCommitment, CommitmentSpec};
use crate::bolt3::scripts;
use crate::bolt3::witness::ClaimPath;
use crate::node::NodeState;
use crate::resolver::{Resolver, ResolverKind};
use crate::types::{Height, Party};

use super::{ChannelArbitrator, FeeContext};

/// How much a claim may spend on fees, and how long an uncontested claim may take.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SweepPolicy {
    /// Share of an HTLC's value a claim on it may spend, in percent. The peer can take the HTLC
    /// once our deadline passes, so paying up to half of it beats losing all of it.
    pub htlc_budget_percent: u8,
    /// Share of our balance a sweep of it may spend, in percent (only we can spend it).
    pub balance_budget_percent: u8,
    /// Blocks after maturity by which a sweep of our balance should confirm: nobody else can take
    /// it, so it waits for cheap fees.
    pub balance_deadline_blocks: u32,
    /// The most any one claim on an HTLC (or a CPFP for the HTLCs at stake) may spend, in
    /// satoshis, whatever its share; `None`: the share alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub htlc_budget_cap_sat: Option<u64>,
    /// The most any one sweep of our balance may spend, in satoshis; `None`: the share alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub balance_budget_cap_sat: Option<u64>,
}

impl SweepPolicy {
    /// The fee budget of a claim protecting `value_sat` of HTLCs: the configured share, capped.
    pub fn htlc_budget(&self, value_sat: u64) -> u64 {
        capped(
            share(value_sat, self.htlc_budget_percent),
            self.htlc_budget_cap_sat,
        )
    }

    /// The fee budget of a sweep of `value_sat` of our balance: the configured share, capped.
    pub fn balance_budget(&self, value_sat: u64) -> u64 {
        capped(
            share(value_sat, self.balance_budget_percent),
            self.balance_budget_cap_sat,
        )
    }
}

fn capped(budget: u64, cap: Option<u64>) -> u64 {
    cap.map_or(budget, |c| budget.min(c))
}

impl Default for SweepPolicy {
    fn default() -> Self {
        SweepPolicy {
            htlc_budget_percent: 50,
            balance_budget_percent: 5,
            balance_deadline_blocks: 1008,
            htlc_budget_cap_sat: None,
            balance_budget_cap_sat: None,
        }
    }
}

fn share(value_sat: u64, percent: u8) -> u64 {
    value_sat.saturating_mul(u64::from(percent)) / 100
}

/// A confirmed commitment rebuilt, with its holder.
pub(super) type Confirmed = (Party, CommitmentSpec, BuiltCommitment);

/// What rebuilding the confirmed commitment gives (`None`: not one we know).
type Rebuilt = Option<Confirmed>;

/// The confirmed commitment rebuilt, kept beside the close that confirmed it: an explicit cache,
/// filled only by a `&mut` refresh ([`ChannelArbitrator::refresh_confirmed_commitment`], run when
/// a close confirms and whenever the chain arbitrator re-indexes a changed channel). Rebuilding it
/// derives the commitment's keys (several point multiplications) and the transaction, and a
/// closing channel needs it many times a step (its claims, its second-level and zero-fee HTLC
/// transactions, the dangling-HTLC rule). What it holds depends only on the close and the
/// channel's data, which changes only by an update with a new `update_id`: it is used only while
/// the `update_id` it was built at is the channel's, and a stale or empty cache is rebuilt on
/// the spot, so it never changes an answer. Never persisted; any two are equal, so a loaded
/// channel equals the one that was stored.
#[derive(Clone, Default)]
pub struct RebuiltCommitment(Option<(u64, Rebuilt)>);

impl RebuiltCommitment {
    fn get(&self, update_id: u64) -> Option<&Rebuilt> {
        self.0
            .as_ref()
            .filter(|(at, _)| *at == update_id)
            .map(|(_, rebuilt)| rebuilt)
    }

    /// Keep `rebuilt` as the confirmed commitment at `update_id`.
    pub(super) fn set(&mut self, update_id: u64, rebuilt: Rebuilt) {
        self.0 = Some((update_id, rebuilt));
    }
}

impl std::fmt::Debug for RebuiltCommitment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RebuiltCommitment")
    }
}

impl PartialEq for RebuiltCommitment {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for RebuiltCommitment {}

impl ChannelArbitrator {
    /// The commitment that confirmed, rebuilt, with its holder — when it is one we know. Read
    /// from the cache while it is current (see [`RebuiltCommitment`]), rebuilt otherwise.
    pub(crate) fn confirmed_commitment(&self) -> Option<(Party, CommitmentSpec, BuiltCommitment)> {
        let close = self.close.as_ref()?;
        match close.rebuilt.get(self.data.last_update_id) {
            Some(rebuilt) => rebuilt.clone(),
            None => self.rebuild_confirmed_commitment(),
        }
    }

    /// Rebuild the cached confirmed commitment if the channel changed since it was built.
    pub fn refresh_confirmed_commitment(&mut self) {
        let update_id = self.data.last_update_id;
        if self
            .close
            .as_ref()
            .is_none_or(|c| c.rebuilt.get(update_id).is_some())
        {
            return;
        }
        let rebuilt = self.rebuild_confirmed_commitment();
        if let Some(close) = &mut self.close {
            close.rebuilt.set(update_id, rebuilt);
        }
    }

    /// [`Self::confirmed_commitment`] without the cache.
    fn rebuild_confirmed_commitment(&self) -> Rebuilt {
        let close = self.close.as_ref()?;
        let c = &self.data.commitments;
        let (holder, record) = match close.kind {
            CloseKind::Local { .. } => (Party::Local, &c.local.as_ref()?.commitment),
            CloseKind::Remote { pending: false, .. } => (Party::Remote, c.remote_current.as_ref()?),
            CloseKind::Remote { pending: true, .. } => (Party::Remote, c.remote_pending.as_ref()?),
            _ => return None,
        };
        let (spec, built) = self.data.info.build(holder, record, &close.funding).ok()?;
        (built.tx.compute_txid() == close.txid).then_some((holder, spec, built))
    }

    /// Every claim this channel wants the sweeper to make now.
    pub fn sweep_requests(&self, node: &NodeState, ctx: &FeeContext<'_>) -> Vec<SweepRequest> {
        let Some(close) = &self.close else {
            return Vec::new();
        };
        let info = &self.data.info;
        let confirmed = self.confirmed_commitment();
        // On our commitment, `to_local` and every second-level output pay the same script.
        let to_local = match &confirmed {
            Some((Party::Local, spec, _)) => Some(scripts::to_local_script(
                &spec.keys.revocation_pubkey,
                info.local_to_self_delay,
                &spec.keys.local_delayed_pubkey,
            )),
            _ => None,
        };
        let on = OnClose {
            close,
            confirmed: confirmed.as_ref(),
            to_local: to_local.as_ref(),
        };
        let mut out = self.breach_requests();
        for r in self.resolvers.values().filter(|r| r.claimable()) {
            let txout = match (close.tx.output.get(r.outpoint.vout as usize), &to_local) {
                (Some(o), _) if r.outpoint.txid == close.txid => o.clone(),
                (_, Some(script)) => TxOut {
                    value: Amount::from_sat(r.value_sat),
                    script_pubkey: script.to_p2wsh(),
                },
                _ => continue,
            };
            if let Some(claim) = self.claim_of(r, &on, node, ctx) {
                out.push(claim.request(info.id, r.outpoint, txout));
            }
        }
        out
    }

    /// What to claim of one resolver's output, by its kind and the commitment that confirmed.
    fn claim_of(
        &self,
        r: &Resolver,
        on: &OnClose<'_>,
        node: &NodeState,
        ctx: &FeeContext<'_>,
    ) -> Option<Claim> {
        let policy = ctx.policy;
        match (&r.kind, on.confirmed) {
            (ResolverKind::CommitSweep { mature_at }, Some((Party::Local, spec, _))) => {
                Some(self.to_local_claim(r, *mature_at, spec, on.to_local?.clone(), policy))
            }
            (ResolverKind::CommitSweep { mature_at }, _) => {
                Some(self.to_remote_claim(r, *mature_at, policy))
            }
            (
                ResolverKind::OutgoingHtlc {
                    cltv_expiry,
                    deadline,
                    ..
                },
                Some((Party::Remote, spec, built)),
            ) => {
                // Ours by timeout on the peer's commitment; nLockTime = cltv_expiry is final from
                // the next block on.
                let mature_at = cltv_expiry
                    .saturating_add(1)
                    .max(on.close.height.saturating_add(1));
                Some(Claim {
                    path: ClaimPath::timeout_claim_on_remote_commitment(
                        *cltv_expiry,
                        self.data.info.channel_type,
                    ),
                    script: witness_script(built, r.outpoint)?,
                    key: self.htlc_signing_key(spec),
                    preimage: None,
                    witness_pubkey: None,
                    mature_at,
                    deadline: (*deadline).max(mature_at),
                    budget_sat: policy.htlc_budget(r.value_sat),
                    contestable: true,
                })
            }
            (
                ResolverKind::IncomingHtlc {
                    htlc,
                    payment_hash,
                    cltv_expiry,
                },
                Some((Party::Remote, spec, built)),
            ) => {
                // Ours with the preimage on the peer's commitment, until its expiry.
                let preimage = node.preimage_for(htlc, payment_hash)?;
                let mature_at = on.close.height.saturating_add(1);
                Some(Claim {
                    path: ClaimPath::preimage_claim_on_remote_commitment(
                        self.data.info.channel_type,
                    ),
                    script: witness_script(built, r.outpoint)?,
                    key: self.htlc_signing_key(spec),
                    preimage: Some(preimage),
                    witness_pubkey: None,
                    mature_at,
                    deadline: (*cltv_expiry).max(mature_at),
                    budget_sat: policy.htlc_budget(r.value_sat),
                    contestable: true,
                })
            }
            (ResolverKind::Anchor, _) if Self::anchor_worth_sweeping(r.value_sat, ctx) => {
                Some(self.anchor_claim(r, on.close.height))
            }
            _ => None,
        }
    }

    /// Our `to_local` on our own commitment, after `to_self_delay`.
    fn to_local_claim(
        &self,
        r: &Resolver,
        mature_at: Height,
        spec: &CommitmentSpec,
        script: ScriptBuf,
        policy: &SweepPolicy,
    ) -> Claim {
        let info = &self.data.info;
        Claim {
            path: ClaimPath::ToLocalDelayed {
                to_self_delay: info.local_to_self_delay,
            },
            script,
            key: SigningKey::Channel {
                channel: info.id,
                basepoint: Basepoint::DelayedPayment,
                tweak: KeyTweak::PerCommitmentPoint {
                    point: spec.keys.per_commitment_point,
                },
            },
            preimage: None,
            witness_pubkey: None,
            mature_at,
            deadline: mature_at.saturating_add(policy.balance_deadline_blocks),
            budget_sat: policy.balance_budget(r.value_sat),
            contestable: false,
        }
    }

    /// Our `to_remote` on any commitment of the peer's (current, pending, future or revoked):
    /// found by script, spent with our untweaked payment key.
    fn to_remote_claim(&self, r: &Resolver, mature_at: Height, policy: &SweepPolicy) -> Claim {
        let info = &self.data.info;
        let ours = info.local_basepoints.payment_basepoint;
        let (script, witness_pubkey) = if info.channel_type.has_anchors() {
            (scripts::to_remote_anchor_script(&ours), None)
        } else {
            (
                scripts::to_remote_script_pubkey(info.channel_type, &ours),
                Some(ours),
            )
        };
        Claim {
            path: ClaimPath::ToRemote {
                channel_type: info.channel_type,
            },
            script,
            key: SigningKey::Channel {
                channel: info.id,
                basepoint: Basepoint::Payment,
                tweak: KeyTweak::None,
            },
            preimage: None,
            witness_pubkey,
            mature_at,
            deadline: mature_at.saturating_add(policy.balance_deadline_blocks),
            budget_sat: policy.balance_budget(r.value_sat),
            contestable: false,
        }
    }

    /// Our anchor, once it pays for itself: anyone may take it after 16 blocks — a spend with
    /// nSequence 16 is final from block `close_height + 16` (BIP 68), so ours must confirm by
    /// the block before.
    fn anchor_claim(&self, r: &Resolver, close_height: Height) -> Claim {
        let info = &self.data.info;
        let mature_at = close_height.saturating_add(1);
        let anyone_from =
            close_height.saturating_add(crate::bolt3::witness::ANCHOR_ANYONE_CSV.into());
        Claim {
            path: ClaimPath::AnchorOwner,
            script: scripts::anchor_script(&info.local_basepoints.funding_pubkey),
            key: SigningKey::Channel {
                channel: info.id,
                basepoint: Basepoint::Funding,
                tweak: KeyTweak::None,
            },
            preimage: None,
            witness_pubkey: None,
            mature_at,
            deadline: anyone_from.saturating_sub(1).max(mature_at),
            budget_sat: r.value_sat,
            contestable: true,
        }
    }

    /// The HTLC key of a commitment, tweaked by its per-commitment point.
    fn htlc_signing_key(&self, spec: &CommitmentSpec) -> SigningKey {
        SigningKey::Channel {
            channel: self.data.info.id,
            basepoint: Basepoint::Htlc,
            tweak: KeyTweak::PerCommitmentPoint {
                point: spec.keys.per_commitment_point,
            },
        }
    }
}

/// The confirmed close a channel claims from: its transaction, the commitment rebuilt (when we
/// know it) and, on our own commitment, the `to_local` script every second-level output pays.
struct OnClose<'a> {
    close: &'a super::ConfirmedClose,
    confirmed: Option<&'a Confirmed>,
    to_local: Option<&'a ScriptBuf>,
}

/// One claim, before it is addressed to its output.
struct Claim {
    path: ClaimPath,
    script: ScriptBuf,
    key: SigningKey,
    preimage: Option<crate::bolt3::PaymentPreimage>,
    witness_pubkey: Option<bitcoin::secp256k1::PublicKey>,
    mature_at: Height,
    deadline: Height,
    budget_sat: u64,
    contestable: bool,
}

impl Claim {
    fn request(
        self,
        channel: crate::types::ChannelId,
        outpoint: OutPoint,
        txout: TxOut,
    ) -> SweepRequest {
        SweepRequest {
            channel,
            outpoint,
            txout,
            path: self.path,
            script: self.script,
            key: self.key,
            preimage: self.preimage,
            witness_pubkey: self.witness_pubkey,
            deadline: self.deadline,
            budget_sat: self.budget_sat,
            contestable: self.contestable,
            exclusive_group: None,
            mature_at: self.mature_at,
        }
    }
}

fn witness_script(built: &BuiltCommitment, outpoint: OutPoint) -> Option<ScriptBuf> {
    built
        .outputs
        .iter()
        .find(|o| o.index == outpoint.vout)
        .and_then(|o| o.witness_script.clone())
}

#[cfg(test)]
mod budget_tests {
    use super::SweepPolicy;

    #[test]
    fn a_budget_is_the_configured_share_capped_by_the_configured_maximum() {
        let mut policy = SweepPolicy::default();
        assert_eq!(policy.htlc_budget(1_000_000), 500_000);
        assert_eq!(policy.balance_budget(1_000_000), 50_000);
        policy.htlc_budget_cap_sat = Some(20_000);
        policy.balance_budget_cap_sat = Some(30_000);
        assert_eq!(policy.htlc_budget(1_000_000), 20_000);
        assert_eq!(
            policy.htlc_budget(10_000),
            5_000,
            "below the cap: the share"
        );
        assert_eq!(policy.balance_budget(1_000_000), 30_000);
        assert_eq!(policy.balance_budget(100_000), 5_000);
    }

    #[test]
    fn caps_are_optional_in_the_persisted_policy() {
        let json = serde_json::to_string(&SweepPolicy::default()).unwrap_or_default();
        assert!(!json.contains("cap"), "{json}");
        let back: Result<SweepPolicy, _> = serde_json::from_str(&json);
        assert_eq!(back.ok(), Some(SweepPolicy::default()));
    }
}
