//! Going to chain, driven through the engine: a force close asks for our funding signature on
//! our latest commitment, broadcasts the signed commitment and keeps it broadcast; outgoing HTLCs
//! that are dust on it are failed upstream at once; broadcast rejections that mean "already
//! there" are not alarms. Written for the mutants `cargo mutants` found no core test to kill.

use bitcoin::hashes::{sha256d, Hash, HashEngine};
use bitcoin::{Amount, BlockHash, Transaction, TxOut};
use contractcourt_core::action::{Action, AlertKind, FailReason, Report, SignRequest};
use contractcourt_core::bolt3::{scripts, ChannelType};
use contractcourt_core::chain::{ChainArbitrator, Config};
use contractcourt_core::event::{
    Block, BroadcastOutcome, Event, ForceCloseReason, IncomingLeg, SignOutcome,
};
use contractcourt_core::policy::is_already_known;
use contractcourt_core::sim::{SimChannel, SimHtlc, SimSetup};
use contractcourt_core::testkit::verify_with_bitcoin_core;
use contractcourt_core::types::{ChannelId, HtlcDirection, HtlcKey, Party, RequestId};

/// An engine with one `sim` channel, and a chain of empty blocks.
struct Node {
    arb: ChainArbitrator,
    sim: SimChannel,
    tip: Option<(u32, BlockHash)>,
}

impl Node {
    fn open(seed: u64, channel_type: ChannelType) -> Node {
        let (sim, events) = SimChannel::open(SimSetup::new(seed, channel_type)).unwrap();
        let mut node = Node {
            arb: ChainArbitrator::new(Config::default()),
            sim,
            tip: None,
        };
        for e in events {
            node.step(e);
        }
        node.mine();
        node
    }

    fn id(&self) -> ChannelId {
        self.sim.channel_id
    }

    fn step(&mut self, event: Event) -> Vec<Action> {
        self.arb
            .step(&event)
            .unwrap_or_else(|e| panic!("event refused: {e}"))
    }

    /// Feed the events the sim returns for a channel change.
    fn feed(&mut self, events: Vec<Event>) {
        for e in events {
            self.step(e);
        }
    }

    /// Connect an empty block on the tip.
    fn mine(&mut self) -> Vec<Action> {
        let (height, prev_hash) = match self.tip {
            Some((h, hash)) => (h + 1, hash),
            None => (500, BlockHash::all_zeros()),
        };
        let mut engine = sha256d::Hash::engine();
        engine.input(prev_hash.as_byte_array());
        engine.input(&height.to_le_bytes());
        let hash = BlockHash::from_raw_hash(sha256d::Hash::from_engine(engine));
        self.tip = Some((height, hash));
        self.step(Event::BlockConnected(Block {
            height,
            hash,
            prev_hash,
            time: 1_700_000_000 + height * 600,
            txs: Vec::new(),
        }))
    }

    fn force_close(&mut self) -> Vec<Action> {
        let channel = self.id();
        self.step(Event::ForceCloseRequested {
            channel,
            reason: ForceCloseReason::User,
        })
    }

    /// Answer a sign request with our simulated keys.
    fn sign(&mut self, req: &SignRequest) -> Vec<Action> {
        let outcome = self.sim.local.sign(req);
        self.step(Event::Signed {
            request: req.request,
            outcome,
        })
    }

    /// Our latest commitment, as the sim builds and signs it.
    fn our_commitment(&self) -> Transaction {
        let n = self.sim.local_commitment_number();
        self.sim.commitment_tx(Party::Local, n).unwrap()
    }

    fn funding_prevout(&self) -> TxOut {
        let l = self.sim.local.basepoints();
        let r = self.sim.remote.basepoints();
        TxOut {
            value: Amount::from_sat(self.sim.funding.value_sat),
            script_pubkey: scripts::funding_script(&l.funding_pubkey, &r.funding_pubkey).to_p2wsh(),
        }
    }
}

fn sign_requests(actions: &[Action]) -> Vec<SignRequest> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Sign(req) => Some(req.clone()),
            _ => None,
        })
        .collect()
}

fn broadcasts(actions: &[Action]) -> Vec<(RequestId, Transaction)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Broadcast { request, tx } => Some((*request, tx.0.clone())),
            _ => None,
        })
        .collect()
}

fn alerts(actions: &[Action]) -> Vec<AlertKind> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Report(Report::Alert(alert)) => Some(alert.kind),
            _ => None,
        })
        .collect()
}

fn failed_upstream(actions: &[Action]) -> Vec<(HtlcKey, FailReason)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::FailUpstream { htlc, reason } => Some((*htlc, reason.clone())),
            _ => None,
        })
        .collect()
}

/// A channel with one outgoing HTLC (committed), force closed: the sign request for our commitment.
fn closing(seed: u64, channel_type: ChannelType) -> (Node, SignRequest) {
    let mut node = Node::open(seed, channel_type);
    let events = {
        node.sim
            .add_htlc(HtlcDirection::Outgoing, 40_000_000, 900)
            .unwrap();
        node.sim.commit().unwrap()
    };
    node.feed(events);
    let actions = node.force_close();
    let reqs = sign_requests(&actions);
    assert_eq!(reqs.len(), 1, "one sign request for our commitment");
    (node, reqs[0].clone())
}

#[test]
fn a_force_close_signs_and_broadcasts_our_latest_commitment_which_bitcoin_core_accepts() {
    for channel_type in [
        ChannelType::StaticRemoteKey,
        ChannelType::AnchorsZeroFeeHtlc,
    ] {
        let (mut node, req) = closing(21, channel_type);
        let ours = node.our_commitment();
        assert_eq!(
            req.tx.compute_txid(),
            ours.compute_txid(),
            "the sign request is for our latest commitment"
        );
        let actions = node.sign(&req);
        let sent = broadcasts(&actions);
        assert_eq!(
            sent.len(),
            1,
            "{channel_type:?}: our signed commitment is broadcast"
        );
        let (request, tx) = &sent[0];
        assert_eq!(*request, req.request);
        assert_eq!(tx.compute_txid(), ours.compute_txid());
        verify_with_bitcoin_core(tx, &[node.funding_prevout()])
            .unwrap_or_else(|e| panic!("{channel_type:?}: {e:?}"));
    }
}

#[test]
fn a_repeated_force_close_request_re_emits_what_is_pending() {
    let (mut node, req) = closing(22, ChannelType::StaticRemoteKey);
    let again = sign_requests(&node.force_close());
    assert_eq!(again, vec![req.clone()], "unsigned: the same sign request");
    let sent = broadcasts(&node.sign(&req));
    let after = broadcasts(&node.force_close());
    assert_eq!(after, sent, "signed: the same broadcast");
    assert_eq!(after.len(), 1);
}

#[test]
fn every_block_before_the_close_confirms_rebroadcasts_our_signed_commitment() {
    let (mut node, req) = closing(23, ChannelType::StaticRemoteKey);
    let resent = sign_requests(&node.mine());
    assert_eq!(
        resent
            .iter()
            .map(|r| r.tx.compute_txid())
            .collect::<Vec<_>>(),
        vec![req.tx.compute_txid()],
        "not yet signed: the block asks for the signature again"
    );
    let sent = broadcasts(&node.sign(&req));
    assert_eq!(sent.len(), 1);
    for _ in 0..2 {
        assert_eq!(
            broadcasts(&node.mine()),
            sent,
            "each block rebroadcasts our signed commitment"
        );
    }
}

#[test]
fn a_signature_answer_for_another_request_or_a_second_answer_is_dropped() {
    let (mut node, req) = closing(24, ChannelType::StaticRemoteKey);
    let outcome = node.sim.local.sign(&req);
    let stale = RequestId {
        attempt: req.request.attempt + 1,
        ..req.request
    };
    let actions = node.step(Event::Signed {
        request: stale,
        outcome: outcome.clone(),
    });
    assert!(
        broadcasts(&actions).is_empty() && alerts(&actions).is_empty(),
        "an answer to a request we did not make is dropped: {actions:?}"
    );
    assert_eq!(broadcasts(&node.sign(&req)).len(), 1);
    let actions = node.step(Event::Signed {
        request: req.request,
        outcome,
    });
    assert!(
        broadcasts(&actions).is_empty(),
        "a second answer does not broadcast again: {actions:?}"
    );
}

#[test]
fn a_signature_by_the_wrong_key_is_not_broadcast() {
    let (mut node, req) = closing(25, ChannelType::StaticRemoteKey);
    let outcome = node.sim.remote.sign(&req);
    assert!(matches!(outcome, SignOutcome::Signed { .. }));
    let actions = node.step(Event::Signed {
        request: req.request,
        outcome,
    });
    assert!(broadcasts(&actions).is_empty());
    assert_eq!(alerts(&actions), vec![AlertKind::ChannelFailure]);
}

/// The incoming leg an outgoing HTLC was forwarded from.
fn leg(n: u64, htlc: &SimHtlc) -> IncomingLeg {
    IncomingLeg {
        htlc: HtlcKey {
            channel: ChannelId([9; 32]),
            htlc_id: n,
            direction: HtlcDirection::Incoming,
        },
        cltv_expiry: htlc.cltv_expiry + 40,
        amount_msat: htlc.amount_msat + 1_000,
    }
}

#[test]
fn a_force_close_fails_upstream_only_the_outgoing_htlcs_that_are_dust_on_our_commitment() {
    let mut node = Node::open(26, ChannelType::StaticRemoteKey);
    let (dust, big) = {
        let dust = node
            .sim
            .add_htlc(HtlcDirection::Outgoing, 100_000, 900) // 100 sat: under the dust limit
            .unwrap();
        let big = node
            .sim
            .add_htlc(HtlcDirection::Outgoing, 40_000_000, 900)
            .unwrap();
        (dust, big)
    };
    let events = node.sim.commit().unwrap();
    node.feed(events);
    for (n, h) in [(1, &dust), (2, &big)] {
        node.step(Event::CircuitAdded {
            outgoing: h.key,
            incoming: leg(n, h),
        });
    }
    let actions = node.force_close();
    assert_eq!(
        failed_upstream(&actions),
        vec![(
            leg(1, &dust).htlc,
            FailReason::OutgoingDust { outgoing: dust.key }
        )],
        "the dust HTLC can never be timed out on-chain; the other one can"
    );
    assert_eq!(sign_requests(&actions).len(), 1);
}

#[test]
fn a_rejected_broadcast_of_our_commitment_alerts_unless_it_is_already_known() {
    let (mut node, req) = closing(27, ChannelType::StaticRemoteKey);
    let (request, tx) = broadcasts(&node.sign(&req)).remove(0);
    let mut result = |outcome| {
        let actions = node.step(Event::BroadcastResult {
            request,
            txid: tx.compute_txid(),
            outcome,
        });
        alerts(&actions)
    };
    assert_eq!(result(BroadcastOutcome::Accepted), vec![]);
    assert_eq!(
        result(BroadcastOutcome::Rejected {
            reason: "txn-already-known".into()
        }),
        vec![],
        "already there: success"
    );
    assert_eq!(
        result(BroadcastOutcome::Rejected {
            reason: "Transaction outputs already in utxo set".into()
        }),
        vec![],
        "Bitcoin Core 28+'s answer to a rebroadcast of a confirmed transaction: success"
    );
    assert_eq!(
        result(BroadcastOutcome::NotDelivered {
            reason: "transport error: Connection refused (os error 111)".into()
        }),
        vec![],
        "no verdict from the node is not a rejection: the next block's rebroadcast retries"
    );
    assert_eq!(
        result(BroadcastOutcome::Rejected {
            reason: "min relay fee not met".into()
        }),
        vec![AlertKind::DeadlineAtRisk]
    );
}

#[test]
fn already_known_covers_bitcoin_core_and_esplora_wordings_in_any_case() {
    for reason in [
        "txn-already-known",
        "txn-already-in-mempool",
        "Transaction already in block chain",
        "Transaction outputs already in utxo set",
        "txn-same-nonwitness-data-in-mempool",
        "sendrawtransaction RPC error: {\"code\":-27,\"message\":\"Transaction already in block chain\"}",
        "Already known",
    ] {
        assert!(is_already_known(reason), "{reason}");
    }
    for reason in [
        "min relay fee not met",
        "bad-txns-inputs-missingorspent",
        "insufficient fee",
        "",
    ] {
        assert!(!is_already_known(reason), "{reason}");
    }
}
