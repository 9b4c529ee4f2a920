//! HTLCs on our own commitment: the pre-signed second-level transactions (BOLT 5 B05-LLO/LRO).
//!
//! The peer signed our HTLC-timeout and HTLC-success transactions with the commitment. When an
//! HTLC is due — the timeout from `cltv_expiry` on, the success once we know the preimage — the
//! resolver asks for our signature, assembles the transaction and broadcasts it every block until
//! it confirms; its output (our `to_local` script) is then handed to a balance sweep after
//! `to_self_delay`.
//!
//! Under anchors these transactions carry no fee: they are funded with wallet inputs
//! (`zero_fee_htlc.rs`).

use std::collections::BTreeSet;

use bitcoin::{Amount, OutPoint, Transaction};

use crate::action::{Action, AlertKind, Basepoint, KeyTweak, SignInput, SignRequest, SigningKey};
use crate::bolt3::commitment::CommitmentHtlc;
use crate::bolt3::htlc_tx::{htlc_tx_witness, htlc_txs_for_commitment, htlc_witness_script};
use crate::bolt3::{secp, sign};
use crate::event::SignOutcome;
use crate::node::NodeState;
use crate::resolver::{Resolver, ResolverKind, SecondLevelClaim, Stage};
use crate::types::{Height, Party, RawTx, RequestId};

use super::config::CloseConfig;
use super::{ChannelArbitrator, FeeContext};

/// One HTLC output of our confirmed commitment with its unsigned second-level transaction and
/// the peer's signature for it.
pub(super) struct Due {
    pub(super) outpoint: OutPoint,
    pub(super) htlc: CommitmentHtlc,
    pub(super) tx: Transaction,
    pub(super) remote_sig: bitcoin::ecdsa::Signature,
    pub(super) script: bitcoin::ScriptBuf,
    pub(super) point: bitcoin::secp256k1::PublicKey,
}

impl ChannelArbitrator {
    /// Our commitment's HTLC outputs with their second-level transactions, in output order.
    pub(super) fn second_level_candidates(&self) -> Vec<Due> {
        let Some((Party::Local, spec, built)) = self.confirmed_commitment() else {
            return Vec::new();
        };
        let Some(local) = &self.data.commitments.local else {
            return Vec::new();
        };
        let txid = built.tx.compute_txid();
        htlc_txs_for_commitment(&built, &spec)
            .into_iter()
            .zip(&local.htlc_signatures)
            .map(|((htlc, tx), remote_sig)| Due {
                outpoint: OutPoint {
                    txid,
                    vout: tx.input[0].previous_output.vout,
                },
                script: htlc_witness_script(&htlc, &spec.keys, spec.channel_type),
                htlc,
                tx,
                remote_sig: *remote_sig,
                point: spec.keys.per_commitment_point,
            })
            .collect()
    }

    fn sign_second_level(&self, due: &Due, request: RequestId) -> Action {
        Action::Sign(SignRequest {
            request,
            tx: RawTx(due.tx.clone()),
            inputs: vec![SignInput {
                input: 0,
                prevout: due.outpoint,
                value_sat: due.htlc.amount_msat / 1000,
                script: due.script.clone(),
                sighash: bitcoin::sighash::EcdsaSighashType::All,
                key: SigningKey::Channel {
                    channel: self.data.info.id,
                    basepoint: Basepoint::Htlc,
                    tweak: KeyTweak::PerCommitmentPoint { point: due.point },
                },
            }],
        })
    }

    /// Per block once our commitment confirmed: start, re-sign or rebroadcast the second-level
    /// claims of the HTLCs whose resolvers said they are `due`.
    pub(crate) fn second_level_actions(
        &mut self,
        tip: Height,
        node: &mut NodeState,
        fees: &FeeContext<'_>,
        due_now: &BTreeSet<OutPoint>,
    ) -> Vec<Action> {
        let candidates = self.second_level_candidates();
        let mut actions = Vec::new();
        for due in candidates.iter().filter(|c| due_now.contains(&c.outpoint)) {
            let Some(r) = self.resolvers.get(&due.outpoint) else {
                continue;
            };
            if self.data.info.channel_type.zero_fee_htlc_txs() {
                actions.extend(self.zero_fee_htlc_actions(due, tip, node, fees));
                continue;
            }
            match &r.second_level {
                Some(c) => {
                    let request = RequestId {
                        claim: c.claim,
                        attempt: c.attempt,
                    };
                    match &c.signed {
                        Some(tx) => actions.push(Action::Broadcast {
                            request,
                            tx: tx.clone(),
                        }),
                        None => actions.push(self.sign_second_level(due, request)),
                    }
                }
                None => {
                    let claim = node.new_claim();
                    if let Some(r) = self.resolvers.get_mut(&due.outpoint) {
                        r.second_level = Some(SecondLevelClaim {
                            claim,
                            attempt: 0,
                            signed: None,
                            funded: None,
                        });
                    }
                    actions.push(self.sign_second_level(due, RequestId { claim, attempt: 0 }));
                }
            }
        }
        actions
    }

    /// Between blocks, when a preimage was just learned: start the second-level claims it made
    /// due and that are not started yet (an HTLC-success), for block `tip + 1`. Claims already
    /// out are left to the next block.
    pub(crate) fn start_second_level(
        &mut self,
        tip: Height,
        node: &mut NodeState,
        cfg: &CloseConfig,
        fees: &FeeContext<'_>,
    ) -> Vec<Action> {
        let due = self.second_level_due_on_preimage(tip, node, fees, cfg);
        self.second_level_actions(tip, node, fees, &due)
    }

    /// Our signature for a second-level transaction arrived. `None`: the request is not one of
    /// this channel's second-level claims.
    pub(crate) fn on_second_level_signed(
        &mut self,
        request: RequestId,
        outcome: &SignOutcome,
        node: &NodeState,
    ) -> Option<Vec<Action>> {
        let outpoint = self
            .resolvers
            .values()
            .find(|r| {
                r.second_level
                    .as_ref()
                    .is_some_and(|c| c.claim == request.claim)
            })
            .map(|r| r.outpoint)?;
        if let Some(funded) = self
            .resolvers
            .get_mut(&outpoint)
            .and_then(|r| r.second_level.as_mut())
            .and_then(|c| c.funded.as_mut())
        {
            return Some(funded.on_signed(request, outcome));
        }
        let current = self
            .resolvers
            .get(&outpoint)
            .and_then(|r| r.second_level.as_ref())
            .is_some_and(|c| c.attempt == request.attempt && c.signed.is_none());
        if !current {
            return Some(Vec::new()); // superseded or already signed: dropped
        }
        // A signature that arrives after the HTLC output was spent (by the peer, or by an
        // earlier transaction of ours) is dropped: the transaction would spend a spent output.
        if !self
            .resolvers
            .get(&outpoint)
            .is_some_and(Resolver::claimable)
        {
            return Some(Vec::new());
        }
        let due = self
            .second_level_candidates()
            .into_iter()
            .find(|d| d.outpoint == outpoint)?;
        let SignOutcome::Signed { signatures, .. } = outcome else {
            return Some(vec![self.alert(
                AlertKind::ChannelFailure,
                format!("signer refused the htlc transaction for {outpoint}; retrying next block"),
            )]);
        };
        let Some(our_sig) = self.our_valid_signature(&due, signatures) else {
            return Some(vec![self.alert(
                AlertKind::ChannelFailure,
                format!(
                    "signer returned no valid signature for the htlc transaction of {outpoint}"
                ),
            )]);
        };
        let preimage = match (
            &due.htlc.offered,
            self.resolvers.get(&outpoint).map(|r| &r.kind),
        ) {
            (
                false,
                Some(ResolverKind::IncomingHtlc {
                    htlc, payment_hash, ..
                }),
            ) => node.preimage_for(htlc, payment_hash),
            _ => None,
        };
        if !due.htlc.offered && preimage.is_none() {
            return Some(Vec::new());
        }
        let mut tx = due.tx.clone();
        tx.input[0].witness =
            htlc_tx_witness(&due.remote_sig, &our_sig, preimage.as_ref(), &due.script);
        let tx = RawTx(tx);
        if let Some(c) = self
            .resolvers
            .get_mut(&outpoint)
            .and_then(|r| r.second_level.as_mut())
        {
            c.signed = Some(tx.clone());
        }
        Some(vec![Action::Broadcast { request, tx }])
    }

    /// Our signature of input 0 of `due`'s transaction among `signatures`, if it verifies
    /// against our HTLC key of the confirmed commitment.
    fn our_valid_signature(
        &self,
        due: &Due,
        signatures: &[crate::event::InputSignature],
    ) -> Option<bitcoin::ecdsa::Signature> {
        let sig = signatures.iter().find(|s| s.input == 0)?.signature;
        let (_, spec, _) = self.confirmed_commitment()?;
        let msg = sign::p2wsh_sighash(
            &due.tx,
            0,
            &due.script,
            Amount::from_sat(due.htlc.amount_msat / 1000),
            sig.sighash_type,
        )
        .ok()?;
        secp()
            .verify_ecdsa(&msg, &sig.signature, &spec.keys.local_htlc_pubkey)
            .is_ok()
            .then_some(sig)
    }

    /// Whether a second-level claim is out and must be rebroadcast every block.
    pub(crate) fn second_level_pending(&self) -> bool {
        self.resolvers.values().any(|r| {
            matches!(r.stage, Stage::Active)
                && r.second_level
                    .as_ref()
                    .is_some_and(|c| c.signed.is_some() || c.funded.is_some())
        })
    }
}
