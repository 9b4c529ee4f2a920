//! Sweeper tests on real outputs of `sim` channels. Every broadcast transaction goes through
//! [`Harness::check_broadcast`]: Bitcoin Core's script interpreter, standardness, finality at
//! `tip + 1` (and not one block earlier), maturity, budget and dust.

use std::collections::{BTreeMap, BTreeSet};

use bitcoin::hashes::Hash;
use bitcoin::{FeeRate, OutPoint, ScriptBuf, Transaction, TxOut, WPubkeyHash};

use super::*;
use crate::action::{Alert, AlertKind, Basepoint, KeyTweak, Report, SignRequest, SigningKey};
use crate::bolt3::commitment::OutputKind;
use crate::bolt3::weights::{claim_batch_weight, claim_tx_weight};
use crate::bolt3::witness::ClaimPath;
use crate::bolt3::ChannelType;
use crate::event::{FeeConditions, FeeEstimate};
use crate::policy::{check_final, check_standard, dust_threshold, PolicyConfig};
use crate::sim::{SimChannel, SimSetup};
use crate::testkit::verify_with_bitcoin_core;
use crate::types::{HtlcDirection, Party, RawTx};

mod batch;
mod bounded;
mod claims;
mod fees;
mod lifecycle;
mod topup;

const TYPES: [ChannelType; 2] = [
    ChannelType::StaticRemoteKey,
    ChannelType::AnchorsZeroFeeHtlc,
];

/// The height the commitments confirm at.
const CONF: Height = 1_000;
/// The incoming HTLC's expiry (our preimage claim must confirm before it).
const INCOMING_EXPIRY: Height = 1_060;
/// The outgoing HTLC's expiry (our timeout claim is mature after it).
const OUTGOING_EXPIRY: Height = 1_020;

fn vb(sat_per_vb: u64) -> FeeRate {
    FeeRate::from_sat_per_kwu(sat_per_vb * 250)
}

/// Fee conditions with every estimate multiplied by `factor`.
fn fees(factor: u64) -> FeeConditions {
    let estimate = |target_blocks, rate: u64| FeeEstimate {
        target_blocks,
        feerate: vb(rate * factor),
    };
    FeeConditions {
        estimates: vec![
            estimate(1, 20),
            estimate(3, 10),
            estimate(6, 5),
            estimate(12, 3),
            estimate(144, 1),
        ],
        mempool_min: vb(1),
        min_relay: vb(1),
        incremental_relay: vb(1),
    }
}

fn destination() -> ScriptBuf {
    ScriptBuf::new_p2wpkh(&WPubkeyHash::from_byte_array([7; 20]))
}

fn config() -> SweeperConfig {
    SweeperConfig {
        destination: destination(),
        fallback_feerate: vb(4),
        fee_wallet: None,
    }
}

/// A sim channel with an incoming and an outgoing HTLC, and one update committed (commitment 1).
fn channel(channel_type: ChannelType, incoming_msat: u64) -> SimChannel {
    let (mut sim, _) = SimChannel::open(SimSetup::new(3, channel_type)).unwrap();
    sim.add_htlc(HtlcDirection::Incoming, incoming_msat, INCOMING_EXPIRY)
        .unwrap();
    sim.add_htlc(HtlcDirection::Outgoing, 40_000_000, OUTGOING_EXPIRY)
        .unwrap();
    sim.commit().unwrap();
    sim
}

fn base_request(sim: &SimChannel, holder: Party, index: u32) -> (SweepRequest, TxOut) {
    let tx = sim.commitment_tx(holder, 1).unwrap();
    let txout = tx.output[index as usize].clone();
    let req = SweepRequest {
        channel: sim.channel_id,
        outpoint: OutPoint::new(tx.compute_txid(), index),
        txout: txout.clone(),
        path: ClaimPath::AnchorOwner,
        script: ScriptBuf::new(),
        key: SigningKey::Wallet,
        preimage: None,
        witness_pubkey: None,
        deadline: CONF + 200,
        budget_sat: txout.value.to_sat() / 20,
        contestable: false,
        exclusive_group: None,
        mature_at: CONF + 1,
    };
    (req, txout)
}

/// Our claims of the outputs of the peer's commitment 1 and of `to_local` on ours: `to_remote`,
/// the incoming HTLC by preimage, the outgoing HTLC by timeout, `to_local` after the delay.
fn requests(sim: &SimChannel) -> Vec<SweepRequest> {
    let ct = sim.channel_type();
    let anchors_csv = if ct.has_anchors() { 1 } else { 0 };
    let remote_point = sim
        .commitment_spec(Party::Remote, 1)
        .unwrap()
        .keys
        .per_commitment_point;
    let key = |basepoint, point| SigningKey::Channel {
        channel: sim.channel_id,
        basepoint,
        tweak: KeyTweak::PerCommitmentPoint { point },
    };
    let mut out = Vec::new();
    for o in sim.built_commitment(Party::Remote, 1).unwrap().outputs {
        let (mut req, txout) = base_request(sim, Party::Remote, o.index);
        req.mature_at = CONF + anchors_csv.max(1);
        match o.kind {
            OutputKind::ToRemote => {
                req.path = ClaimPath::ToRemote { channel_type: ct };
                req.key = SigningKey::Channel {
                    channel: sim.channel_id,
                    basepoint: Basepoint::Payment,
                    tweak: KeyTweak::None,
                };
                req.witness_pubkey = Some(sim.local.basepoints().payment_basepoint);
                req.script = o.witness_script.unwrap_or(txout.script_pubkey);
            }
            OutputKind::OfferedHtlc { htlc_id } => {
                let htlc = sim
                    .state(Party::Remote, 1)
                    .unwrap()
                    .htlcs
                    .values()
                    .find(|h| {
                        h.key.direction == HtlcDirection::Incoming && h.key.htlc_id == htlc_id
                    })
                    .cloned()
                    .unwrap();
                req.path = ClaimPath::preimage_claim_on_remote_commitment(ct);
                req.key = key(Basepoint::Htlc, remote_point);
                req.preimage = Some(htlc.preimage);
                req.script = o.witness_script.unwrap();
                req.deadline = INCOMING_EXPIRY - 1;
                req.contestable = true;
            }
            OutputKind::ReceivedHtlc { .. } => {
                req.path = ClaimPath::timeout_claim_on_remote_commitment(OUTGOING_EXPIRY, ct);
                req.key = key(Basepoint::Htlc, remote_point);
                req.script = o.witness_script.unwrap();
                req.mature_at = (OUTGOING_EXPIRY + 1).max(req.mature_at);
                req.deadline = OUTGOING_EXPIRY + 30;
                req.contestable = true;
            }
            _ => continue,
        }
        out.push(req);
    }
    let local_point = sim
        .commitment_spec(Party::Local, 1)
        .unwrap()
        .keys
        .per_commitment_point;
    let delay = sim.setup().local_to_self_delay;
    for o in sim.built_commitment(Party::Local, 1).unwrap().outputs {
        if o.kind == OutputKind::ToLocal {
            let (mut req, _) = base_request(sim, Party::Local, o.index);
            req.path = ClaimPath::ToLocalDelayed {
                to_self_delay: delay,
            };
            req.key = key(Basepoint::DelayedPayment, local_point);
            req.script = o.witness_script.unwrap();
            req.mature_at = CONF + Height::from(delay);
            req.deadline = req.mature_at + 144;
            out.push(req);
        }
    }
    out
}

/// The request for `kind` among [`requests`].
fn request_of(sim: &SimChannel, pick: fn(&ClaimPath) -> bool) -> SweepRequest {
    requests(sim).into_iter().find(|r| pick(&r.path)).unwrap()
}

fn is_to_remote(p: &ClaimPath) -> bool {
    matches!(p, ClaimPath::ToRemote { .. })
}

fn is_preimage(p: &ClaimPath) -> bool {
    matches!(p, ClaimPath::OfferedHtlcPreimage { .. })
}

fn is_timeout(p: &ClaimPath) -> bool {
    matches!(p, ClaimPath::ReceivedHtlcTimeout { .. })
}

fn is_to_local(p: &ClaimPath) -> bool {
    matches!(p, ClaimPath::ToLocalDelayed { .. })
}

/// A broadcast the harness saw and checked.
#[derive(Clone, Debug)]
struct Seen {
    request: RequestId,
    tx: Transaction,
    tip: Height,
}

/// The sweeper, a sim channel whose keys sign, and every output it may claim.
struct Harness {
    sweeper: Sweeper,
    node: NodeState,
    cfg: SweeperConfig,
    policy: SweeperPolicy,
    sim: SimChannel,
    fees: Option<FeeConditions>,
    requests: BTreeMap<OutPoint, SweepRequest>,
    /// Answer sign requests at once with our keys.
    auto_sign: bool,
    /// How broadcasts are answered (accepted unless set).
    reject_with: Option<String>,
    /// Broadcasts spending one of these outpoints are rejected with its reason.
    reject_spending: BTreeMap<OutPoint, String>,
    /// While set, no broadcast gets a verdict: each is answered `NotDelivered` with this text.
    undelivered: Option<String>,
    broadcasts: Vec<Seen>,
    /// Sign requests left unanswered (with `auto_sign` off).
    unsigned: Vec<SignRequest>,
    reports: Vec<Report>,
}

impl Harness {
    fn new(sim: SimChannel) -> Harness {
        Harness {
            sweeper: Sweeper::new(),
            node: NodeState::default(),
            cfg: config(),
            policy: SweeperPolicy::default(),
            sim,
            fees: Some(fees(1)),
            requests: BTreeMap::new(),
            auto_sign: true,
            reject_with: None,
            reject_spending: BTreeMap::new(),
            undelivered: None,
            broadcasts: Vec::new(),
            unsigned: Vec::new(),
            reports: Vec::new(),
        }
    }

    fn request(&mut self, req: SweepRequest) -> bool {
        self.requests.insert(req.outpoint, req.clone());
        self.sweeper.request(req, &mut self.node)
    }

    /// Connect the block at `tip` and run every action to completion; returns the actions.
    fn block(&mut self, tip: Height) -> Vec<Action> {
        let actions = self
            .sweeper
            .on_block(tip, self.fees.as_ref(), &self.cfg, &self.policy);
        self.run(actions, tip)
    }

    /// Execute actions as a driver would, feeding results back; returns every action seen.
    fn run(&mut self, actions: Vec<Action>, tip: Height) -> Vec<Action> {
        let mut queue: std::collections::VecDeque<Action> = actions.into();
        let mut seen = Vec::new();
        while let Some(action) = queue.pop_front() {
            match &action {
                Action::Sign(req) if self.auto_sign => {
                    let outcome = self.sim.local.sign(req);
                    queue.extend(self.sweeper.on_signed(req.request, &outcome));
                }
                Action::Sign(req) => self.unsigned.push(req.clone()),
                Action::Broadcast { request, tx } => {
                    self.check_broadcast(tx, tip);
                    self.broadcasts.push(Seen {
                        request: *request,
                        tx: tx.0.clone(),
                        tip,
                    });
                    let targeted = tx
                        .input
                        .iter()
                        .find_map(|i| self.reject_spending.get(&i.previous_output));
                    let outcome = match (&self.undelivered, targeted.or(self.reject_with.as_ref()))
                    {
                        (Some(reason), _) => BroadcastOutcome::NotDelivered {
                            reason: reason.clone(),
                        },
                        (None, None) => BroadcastOutcome::Accepted,
                        (None, Some(reason)) => BroadcastOutcome::Rejected {
                            reason: reason.clone(),
                        },
                    };
                    queue.extend(self.sweeper.on_broadcast_result(*request, &outcome));
                }
                Action::Report(r) => self.reports.push(r.clone()),
                other => panic!("unexpected action {other:?}"),
            }
            seen.push(action);
        }
        seen
    }

    /// Every check a broadcast transaction must pass (invariants 6 and 7), for every input.
    fn check_broadcast(&self, tx: &Transaction, tip: Height) {
        // The destination, and at most a top-up of the fee wallet.
        assert!(!tx.output.is_empty() && tx.output.len() <= 2, "{tx:?}");
        if let Some(topup) = tx.output.get(1) {
            let wallet = self
                .cfg
                .fee_wallet
                .as_ref()
                .expect("a top-up needs a fee wallet");
            assert_eq!(&topup.script_pubkey, wallet);
            assert!(topup.value.to_sat() >= dust_threshold(wallet, 3000));
        }
        let reqs: Vec<&SweepRequest> = tx
            .input
            .iter()
            .map(|i| &self.requests[&i.previous_output])
            .collect();
        let prevouts: Vec<TxOut> = reqs.iter().map(|r| r.txout.clone()).collect();
        let conf = vec![Some(CONF); reqs.len()];
        let paths: Vec<ClaimPath> = reqs.iter().map(|r| r.path).collect();
        verify_with_bitcoin_core(tx, &prevouts).unwrap_or_else(|e| panic!("{paths:?}: {e}"));
        check_standard(tx, &prevouts, &PolicyConfig::default())
            .unwrap_or_else(|e| panic!("{paths:?}: {e}"));
        check_final(tx, tip + 1, &conf).unwrap_or_else(|e| panic!("{paths:?}: {e}"));
        // nLockTime is the tip it was built at (or the expiry): not final a block earlier.
        let lock = tx.lock_time.to_consensus_u32();
        let cltv = reqs
            .iter()
            .filter_map(|r| r.path.cltv_expiry())
            .max()
            .unwrap_or(0);
        assert!(lock <= tip && lock >= cltv);
        assert!(check_final(tx, lock, &conf).is_err(), "final a block early");
        let txid = tx.compute_txid();
        if !self.broadcasts.iter().any(|s| s.tx.compute_txid() == txid) {
            assert_eq!(lock, tip.max(cltv), "first broadcast");
        }
        for req in &reqs {
            assert!(req.mature_at <= tip + 1, "broadcast before maturity");
            // The timelock alone (without the anti-fee-sniping nLockTime) holds it until
            // maturity.
            if req.path.csv_delay().is_some() || req.path.cltv_expiry().is_some() {
                let mut bare = tx.clone();
                bare.lock_time = req.path.lock_time();
                let at = |h: Height| check_final(&bare, h, &conf);
                assert!(at(req.mature_at - 1).is_err());
                if reqs.len() == 1 {
                    assert_eq!(at(req.mature_at), Ok(()));
                }
            }
            assert!(!req.contestable || reqs.iter().all(|r| r.contestable));
            assert!(
                reqs.len() == 1 || !block::is_anchor(&req.path),
                "anchor batched"
            );
        }
        // Each input's share of the fee is within its own budget — or, for a timeout claim forced
        // (by configuration) because its budget cannot pay the relay fee, within that fee.
        let allowed = |req: &SweepRequest| {
            let relay = crate::fee::fee_for_rate(
                crate::fee::DEFAULT_MIN_RELAY,
                claim_tx_weight(&req.path, self.cfg.destination.len()),
            );
            if block::is_timeout_claim(&req.path) && self.policy.force_timeout_claims {
                req.budget_sat.max(relay)
            } else {
                req.budget_sat
            }
        };
        let fee = self.fee_of(tx);
        let budget: u64 = reqs.iter().map(|r| allowed(r)).sum();
        assert!(fee <= budget, "fee {fee} above budget {budget}");
        for (i, req) in reqs.iter().enumerate() {
            let share = self.share_of(tx, i);
            assert!(
                share <= allowed(req),
                "share {share} above {}",
                allowed(req)
            );
        }
        assert!(tx.output[0].value.to_sat() >= dust_threshold(&self.cfg.destination, 3000));
        assert_eq!(tx.output[0].script_pubkey, self.cfg.destination);
        let scripts: Vec<usize> = tx.output.iter().map(|o| o.script_pubkey.len()).collect();
        let predicted = claim_batch_weight(&paths, &scripts);
        assert!(tx.weight().to_wu() <= predicted);
    }

    /// The fee share of input `index` of `tx`, as the sweeper accounts it.
    fn share_of(&self, tx: &Transaction, index: usize) -> u64 {
        let txid = tx.compute_txid();
        let claim = self.sweeper.claims().values().find_map(|c| {
            c.attempts
                .iter()
                .find(|a| a.txid == txid)
                .map(|a| (c.id, a.clone()))
        });
        let (_, attempt) = claim.expect("a transaction of ours");
        attempt.share(index)
    }

    fn fee_of(&self, tx: &Transaction) -> u64 {
        let input: u64 = tx
            .input
            .iter()
            .map(|i| self.requests[&i.previous_output].txout.value.to_sat())
            .sum();
        input - tx.output.iter().map(|o| o.value.to_sat()).sum::<u64>()
    }

    fn broadcasts_of(&self, outpoint: &OutPoint) -> Vec<Seen> {
        self.broadcasts
            .iter()
            .filter(|s| s.tx.input.iter().any(|i| i.previous_output == *outpoint))
            .cloned()
            .collect()
    }

    fn alerts(&self) -> Vec<Alert> {
        self.reports
            .iter()
            .filter_map(|r| match r {
                Report::Alert(a) => Some(a.clone()),
                _ => None,
            })
            .collect()
    }

    fn timeline(&self) -> Vec<String> {
        self.reports
            .iter()
            .filter_map(|r| match r {
                Report::Timeline { stage, .. } => Some(stage.clone()),
                _ => None,
            })
            .collect()
    }
}

/// The latest transaction broadcast spending `outpoint`.
fn latest(h: &Harness, outpoint: &OutPoint) -> Transaction {
    h.broadcasts_of(outpoint).last().unwrap().tx.clone()
}

fn signs(actions: &[Action]) -> Vec<SignRequest> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Sign(r) => Some(r.clone()),
            _ => None,
        })
        .collect()
}

fn broadcasts(actions: &[Action]) -> usize {
    actions
        .iter()
        .filter(|a| matches!(a, Action::Broadcast { .. }))
        .count()
}

fn has_alert(actions: &[Action], kind: AlertKind) -> bool {
    actions
        .iter()
        .any(|a| matches!(a, Action::Report(Report::Alert(x)) if x.kind == kind))
}
