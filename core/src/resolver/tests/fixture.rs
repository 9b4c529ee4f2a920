//! A channel whose outputs the tests resolve, built by the simulator (its parameters, and our and
//! the peer's current commitments with one HTLC each way), and hand-written spends of them.

use bitcoin::hashes::Hash;
use bitcoin::secp256k1::{Message, Secp256k1, SecretKey};
use bitcoin::{Amount, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Witness};

use crate::action::CloseKind;
use crate::bolt3::commitment::OutputKind;
use crate::bolt3::scripts;
use crate::bolt3::ChannelType;
use crate::channel::updates::{apply_update, ChannelData};
use crate::event::Event;
use crate::node::NodeState;
use crate::resolver::{
    CloseView, Confirmed, FeeContext, Justice, Resolver, ResolverContext, ResolverInput,
    ResolverKind, ResolverStep, SweepPolicy,
};
use crate::sim::{SimChannel, SimHtlc, SimSetup};
use crate::types::{Height, HtlcDirection, Party};

/// Confirmations after which a spend is final, in every test.
pub(super) const SAFETY: u32 = 6;
/// The close's height.
pub(super) const CLOSE_AT: Height = 500;
/// The outgoing HTLC's expiry.
pub(super) const OUT_EXPIRY: Height = 600;
/// The incoming HTLC's expiry.
pub(super) const IN_EXPIRY: Height = 610;
/// The incoming leg's expiry of the outgoing HTLC: our claim's deadline.
pub(super) const OUT_DEADLINE: Height = 640;

pub(super) struct Fixture {
    pub(super) data: ChannelData,
    pub(super) outgoing: SimHtlc,
    pub(super) incoming: SimHtlc,
    pub(super) node: NodeState,
    pub(super) policy: SweepPolicy,
    pub(super) destination: Option<ScriptBuf>,
    pub(super) local: Confirmed,
    pub(super) remote: Confirmed,
    /// Our `to_local` witness script on our commitment.
    pub(super) to_local: ScriptBuf,
    pub(super) justice: Option<Justice<'static>>,
    local_kind: CloseKind,
    remote_kind: CloseKind,
}

impl Fixture {
    pub(super) fn new(channel_type: ChannelType) -> Fixture {
        let (mut sim, events) = SimChannel::open(SimSetup::new(7, channel_type)).expect("opens");
        let mut data = None;
        let see = |events: Vec<Event>, data: &mut Option<ChannelData>| {
            for e in events {
                if let Event::ChannelUpdate(u) = e {
                    *data = apply_update(data.as_ref(), &u).expect("valid update").0;
                }
            }
        };
        see(events, &mut data);
        let outgoing = sim
            .add_htlc(HtlcDirection::Outgoing, 20_000_000, OUT_EXPIRY)
            .expect("adds");
        let incoming = sim
            .add_htlc(HtlcDirection::Incoming, 30_000_000, IN_EXPIRY)
            .expect("adds");
        see(sim.commit().expect("commits"), &mut data);
        let data = data.expect("a channel");
        let info = &data.info;
        let c = &data.commitments;
        let funding = info.funding[0];
        let local_record = &c.local.as_ref().expect("our commitment").commitment;
        let (spec, built) = info
            .build(Party::Local, local_record, &funding)
            .expect("builds");
        let to_local = scripts::to_local_script(
            &spec.keys.revocation_pubkey,
            info.local_to_self_delay,
            &spec.keys.local_delayed_pubkey,
        );
        let local_kind = CloseKind::Local {
            commitment_number: local_record.number,
        };
        let local = (Party::Local, spec, built);
        let remote_record = c.remote_current.as_ref().expect("their commitment");
        let (spec, built) = info
            .build(Party::Remote, remote_record, &funding)
            .expect("builds");
        let remote_kind = CloseKind::Remote {
            commitment_number: remote_record.number,
            pending: false,
        };
        let mut node = NodeState::default();
        node.add_circuit(
            outgoing.key,
            crate::event::IncomingLeg {
                htlc: crate::types::HtlcKey {
                    channel: crate::types::ChannelId([9; 32]),
                    htlc_id: 0,
                    direction: HtlcDirection::Incoming,
                },
                cltv_expiry: OUT_DEADLINE,
                amount_msat: 20_000_000,
            },
        );
        Fixture {
            data,
            outgoing,
            incoming,
            node,
            policy: SweepPolicy::default(),
            destination: Some(ScriptBuf::new_p2wpkh(&bitcoin::WPubkeyHash::all_zeros())),
            local,
            remote: (Party::Remote, spec, built),
            to_local,
            justice: None,
            local_kind,
            remote_kind,
        }
    }

    /// The context of a close of `holder`'s commitment.
    pub(super) fn ctx(&self, holder: Party) -> ResolverContext<'_> {
        let (kind, confirmed, to_local) = match holder {
            Party::Local => (&self.local_kind, &self.local, Some(&self.to_local)),
            Party::Remote => (&self.remote_kind, &self.remote, None),
        };
        ResolverContext {
            channel: &self.data.info,
            close: CloseView {
                kind,
                tx: &confirmed.2.tx,
                txid: confirmed.2.tx.compute_txid(),
                height: CLOSE_AT,
                confirmed: Some(confirmed),
                to_local,
                justice: self.justice.as_ref(),
            },
            node: &self.node,
            fees: FeeContext {
                fees: None,
                policy: &self.policy,
                fallback: bitcoin::FeeRate::from_sat_per_vb_u32(2),
                destination: self.destination.as_ref(),
            },
            safety_depth: SAFETY,
        }
    }

    fn confirmed(&self, holder: Party) -> &Confirmed {
        match holder {
            Party::Local => &self.local,
            Party::Remote => &self.remote,
        }
    }

    /// The output of `holder`'s commitment of `kind`, with its witness script.
    pub(super) fn output(
        &self,
        holder: Party,
        want: fn(&OutputKind) -> bool,
    ) -> (OutPoint, u64, ScriptBuf) {
        let built = &self.confirmed(holder).2;
        let o = built
            .outputs
            .iter()
            .find(|o| want(&o.kind))
            .expect("the commitment has that output");
        (
            OutPoint {
                txid: built.tx.compute_txid(),
                vout: o.index,
            },
            o.value_sat,
            o.witness_script.clone().unwrap_or_default(),
        )
    }

    /// The HTLC of `direction` on `holder`'s commitment: its outpoint, value and witness script.
    pub(super) fn htlc_output(
        &self,
        holder: Party,
        direction: HtlcDirection,
    ) -> (OutPoint, u64, ScriptBuf) {
        // We offer outgoing HTLCs: offered on our commitment, received on the peer's.
        let offered = (holder == Party::Local) == (direction == HtlcDirection::Outgoing);
        if offered {
            self.output(holder, |k| matches!(k, OutputKind::OfferedHtlc { .. }))
        } else {
            self.output(holder, |k| matches!(k, OutputKind::ReceivedHtlc { .. }))
        }
    }

    /// A resolver of the HTLC of `direction` on `holder`'s commitment, as the channel plans it.
    pub(super) fn htlc_resolver(&self, holder: Party, direction: HtlcDirection) -> Resolver {
        let (outpoint, value, _) = self.htlc_output(holder, direction);
        let kind = match direction {
            HtlcDirection::Outgoing => ResolverKind::OutgoingHtlc {
                htlc: self.outgoing.key,
                payment_hash: self.outgoing.preimage.payment_hash(),
                cltv_expiry: OUT_EXPIRY,
                deadline: OUT_DEADLINE,
            },
            HtlcDirection::Incoming => ResolverKind::IncomingHtlc {
                htlc: self.incoming.key,
                payment_hash: self.incoming.preimage.payment_hash(),
                cltv_expiry: IN_EXPIRY,
            },
        };
        Resolver::new(outpoint, value, kind)
    }
}

/// A signature-shaped witness element (a real DER signature with its sighash byte).
pub(super) fn sig() -> Vec<u8> {
    let secp = Secp256k1::new();
    let key = SecretKey::from_slice(&[3; 32]).expect("a valid key");
    let signature = secp.sign_ecdsa(&Message::from_digest([5; 32]), &key);
    bitcoin::ecdsa::Signature::sighash_all(signature).to_vec()
}

/// A transaction spending `outpoint` with `witness`, paying `outputs`.
pub(super) fn spend(outpoint: OutPoint, witness: Vec<Vec<u8>>, outputs: Vec<TxOut>) -> Transaction {
    Transaction {
        version: bitcoin::transaction::Version::TWO,
        lock_time: bitcoin::absolute::LockTime::ZERO,
        input: vec![TxIn {
            previous_output: outpoint,
            script_sig: ScriptBuf::new(),
            sequence: Sequence::ZERO,
            witness: Witness::from_slice(&witness),
        }],
        output: outputs,
    }
}

/// An output of `sat` paying the P2WSH of `script`.
pub(super) fn pays(script: &ScriptBuf, sat: u64) -> TxOut {
    TxOut {
        value: Amount::from_sat(sat),
        script_pubkey: script.to_p2wsh(),
    }
}

/// Step `r` with a confirmed spend `tx` at `height` that the channel does not know for ours.
pub(super) fn spent(
    r: &mut Resolver,
    tx: &Transaction,
    height: Height,
    ctx: &ResolverContext<'_>,
) -> ResolverStep {
    r.step(
        ResolverInput::Spend {
            tx,
            height,
            known_ours: false,
        },
        ctx,
    )
}
