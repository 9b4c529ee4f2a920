//! Going to chain: decide, get our commitment signed, broadcast it, and keep it broadcast.

use bitcoin::{Amount, Txid};

use crate::action::{
    Action, AlertKind, Basepoint, CloseTrigger, FailReason, KeyTweak, SignInput, SignRequest,
    SigningKey,
};
use crate::bolt3::commitment::funding_witness;
use crate::bolt3::{scripts, secp, sign};
use crate::event::{BroadcastOutcome, SignOutcome};
use crate::node::NodeState;
use crate::policy::reject::is_already_known;
use crate::types::{HtlcDirection, HtlcKey, Party, RawTx, RequestId};

use super::deadline::dust;
use super::{ChannelArbitrator, ForceClose};

impl ChannelArbitrator {
    /// Go to chain for `trigger`. Idempotent: asked again, it re-emits what is pending (the sign
    /// request, or the broadcast of our signed commitment) — never "already closing".
    pub fn force_close(&mut self, trigger: CloseTrigger, node: &mut NodeState) -> Vec<Action> {
        if self.close.is_some() {
            return Vec::new();
        }
        if let Some(loss) = &self.data.commitments.data_loss {
            return vec![self.alert(
                AlertKind::DataLoss,
                format!(
                    "not broadcasting our commitment: the peer is at commitment {} and ours may be revoked; waiting for the peer to close",
                    loss.remote_next_commitment_number
                ),
            )];
        }
        let Some(local) = &self.data.commitments.local else {
            return vec![self.alert(
                AlertKind::ChannelFailure,
                "cannot force close: no commitment of ours is known".into(),
            )];
        };
        let commitment_number = local.commitment.number;
        match &self.force_close {
            Some(_) => self.pending_force_close_actions(),
            None => {
                let claim = node.new_claim();
                self.force_close = Some(ForceClose {
                    trigger,
                    claim,
                    attempt: 0,
                    commitment_number,
                    signed: None,
                });
                let mut actions = self.fail_outgoing_dust(node);
                actions.extend(self.sign_request());
                actions
            }
        }
    }

    /// Outgoing HTLCs that are dust on our commitment can never be timed out on-chain: fail
    /// their incoming legs before we broadcast (lnd does the same).
    fn fail_outgoing_dust(&self, node: &mut NodeState) -> Vec<Action> {
        let Some(local) = &self.data.commitments.local else {
            return Vec::new();
        };
        let mut actions = Vec::new();
        for h in &local.commitment.htlcs {
            if h.direction != HtlcDirection::Outgoing
                || !dust(&self.data.info, Party::Local, &local.commitment, h)
            {
                continue;
            }
            let outgoing = HtlcKey {
                channel: self.data.info.id,
                htlc_id: h.htlc_id,
                direction: HtlcDirection::Outgoing,
            };
            if let Some(leg) = node.circuits.get(&outgoing).copied() {
                actions.extend(node.fail_upstream(
                    leg.htlc,
                    &h.payment_hash,
                    FailReason::OutgoingDust { outgoing },
                ));
            }
        }
        actions
    }

    /// The request for our funding signature on our latest commitment.
    fn sign_request(&self) -> Option<Action> {
        let fc = self.force_close.as_ref()?;
        let local = self.data.commitments.local.as_ref()?;
        let funding = self.data.info.funding.get(local.funding_index)?;
        let (_, built) = self
            .data
            .info
            .build(Party::Local, &local.commitment, funding)
            .ok()?;
        let info = &self.data.info;
        let script = scripts::funding_script(
            &info.local_basepoints.funding_pubkey,
            &info.remote_basepoints.funding_pubkey,
        );
        Some(Action::Sign(SignRequest {
            request: RequestId {
                claim: fc.claim,
                attempt: fc.attempt,
            },
            tx: RawTx(built.tx),
            inputs: vec![SignInput {
                input: 0,
                prevout: funding.outpoint,
                value_sat: funding.value_sat,
                script,
                sighash: bitcoin::sighash::EcdsaSighashType::All,
                key: SigningKey::Channel {
                    channel: info.id,
                    basepoint: Basepoint::Funding,
                    tweak: KeyTweak::None,
                },
            }],
        }))
    }

    /// Our signature arrived: assemble the commitment and broadcast it.
    pub fn on_signed(&mut self, request: RequestId, outcome: &SignOutcome) -> Vec<Action> {
        let Some(fc) = &self.force_close else {
            return Vec::new();
        };
        if request
            != (RequestId {
                claim: fc.claim,
                attempt: fc.attempt,
            })
            || fc.signed.is_some()
            || self.close.is_some()
        {
            return Vec::new(); // superseded or already done: recorded by the caller, dropped here
        }
        let signatures = match outcome {
            SignOutcome::Signed { signatures, .. } => signatures,
            SignOutcome::Failed { reason } => {
                return vec![self.alert(
                    AlertKind::ChannelFailure,
                    format!("signer refused our commitment: {reason}; retrying next block"),
                )];
            }
        };
        let Some(local) = &self.data.commitments.local else {
            return Vec::new();
        };
        let info = &self.data.info;
        let Some(funding) = info.funding.get(local.funding_index) else {
            return Vec::new();
        };
        let Ok((_, built)) = info.build(Party::Local, &local.commitment, funding) else {
            return Vec::new();
        };
        let unsigned = &built.tx;
        let ours = signatures
            .iter()
            .find(|s| s.input == 0)
            .map(|s| s.signature);
        let script = scripts::funding_script(
            &info.local_basepoints.funding_pubkey,
            &info.remote_basepoints.funding_pubkey,
        );
        let valid = ours.is_some_and(|sig| {
            sign::p2wsh_sighash(
                unsigned,
                0,
                &script,
                Amount::from_sat(funding.value_sat),
                sig.sighash_type,
            )
            .is_ok_and(|msg| {
                secp()
                    .verify_ecdsa(&msg, &sig.signature, &info.local_basepoints.funding_pubkey)
                    .is_ok()
            })
        });
        let Some(our_sig) = ours.filter(|_| valid) else {
            return vec![self.alert(
                AlertKind::ChannelFailure,
                "signer returned no valid signature for our commitment; retrying next block".into(),
            )];
        };
        let mut signed = unsigned.clone();
        signed.input[0].witness = funding_witness(
            &info.local_basepoints.funding_pubkey,
            &our_sig,
            &info.remote_basepoints.funding_pubkey,
            &local.commitment_signature,
        );
        let tx = RawTx(signed);
        if let Some(fc) = self.force_close.as_mut() {
            fc.signed = Some(tx.clone());
        }
        if !self.commitment_relays_alone() {
            return Vec::new(); // its CPFP child broadcasts it, as a package
        }
        vec![Action::Broadcast { request, tx }]
    }

    /// Whether our commitment is broadcast on its own: not a zero-fee commitment, which no
    /// mempool takes without the child that pays for it (BOLT 5: "MUST spend any
    /// `shared_anchor` output"); the CPFP claim broadcasts the two as a package.
    fn commitment_relays_alone(&self) -> bool {
        !self.data.info.channel_type.zero_fee_commitment()
    }

    /// Called every block while we wait for a close: re-sign after a failure, or rebroadcast.
    pub fn on_block_before_close(&mut self) -> Vec<Action> {
        if self.close.is_some() {
            return Vec::new();
        }
        let mut actions = self.pending_force_close_actions();
        actions.extend(self.reorged_cooperative_broadcast());
        actions
    }

    /// What a force close still waits for: our signature (re-requested), or the confirmation of
    /// our signed commitment (rebroadcast).
    fn pending_force_close_actions(&self) -> Vec<Action> {
        let Some(fc) = &self.force_close else {
            return Vec::new();
        };
        match &fc.signed {
            Some(_) if !self.commitment_relays_alone() => Vec::new(),
            Some(tx) => vec![Action::Broadcast {
                request: RequestId {
                    claim: fc.claim,
                    attempt: fc.attempt,
                },
                tx: tx.clone(),
            }],
            None => self.sign_request().into_iter().collect(),
        }
    }

    /// A broadcast result for our commitment. Rejections that mean "already there" are success;
    /// others are reported (the rebroadcast every block retries). No verdict from the node is
    /// not a rejection: nothing is reported, the next block's rebroadcast tries again.
    pub fn on_broadcast_result(&self, txid: Txid, outcome: &BroadcastOutcome) -> Vec<Action> {
        match outcome {
            BroadcastOutcome::Accepted | BroadcastOutcome::NotDelivered { .. } => Vec::new(),
            BroadcastOutcome::Rejected { reason } if is_already_known(reason) => Vec::new(),
            BroadcastOutcome::Rejected { reason } => vec![self.alert(
                AlertKind::DeadlineAtRisk,
                format!("broadcast of our commitment {txid} rejected: {reason}"),
            )],
        }
    }
}
