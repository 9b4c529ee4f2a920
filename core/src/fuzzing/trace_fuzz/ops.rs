//! The operations of an event trace, each decoded from the next fuzz bytes.

use bitcoin::absolute::LockTime;
use bitcoin::hashes::Hash;
use bitcoin::transaction::Version;
use bitcoin::{
    Amount, BlockHash, FeeRate, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Txid,
    Witness,
};

use super::{broadcast_outcome, p2wpkh, Driver, MAX_LIVE_HTLCS};
use crate::bolt3::PaymentPreimage;
use crate::chain::ChainArbitrator;
use crate::event::{
    Block, ChannelChange, ChannelUpdate, Event, FeeConditions, FeeEstimate, ForceCloseReason,
    FundingOutcome, FundingOutput, IncomingLeg, MempoolRemovalReason, PreimageSource, SignOutcome,
    UpstreamResolution,
};
use crate::fuzzing::Bytes;
use crate::sim::SimHtlc;
use crate::types::{BlockRef, ChannelId, ClaimId, HtlcDirection, HtlcKey, Party, RawTx, RequestId};

/// HTLC amounts: dust and not, on both sides of the HTLC-transaction fee.
const AMOUNTS_MSAT: [u64; 8] = [
    1_000, 300_000, 546_000, 700_000, 2_000_000, 5_000_000, 25_000_000, 90_000_000,
];
/// Commitment fee rates (BOLT 2: at least 253).
const FEERATES_PER_KW: [u32; 6] = [253, 500, 1_000, 2_500, 10_000, 50_000];
/// Fee rates for fee conditions, in sat/vB.
const FEE_SAT_PER_VB: [u64; 10] = [0, 1, 2, 5, 10, 25, 60, 150, 500, 2_000];
/// Confirmation targets.
const TARGETS: [u16; 8] = [1, 2, 3, 6, 12, 25, 144, 1008];
impl Driver<'_> {
    pub(super) fn op(&mut self, b: &mut Bytes<'_>) {
        let code = b.u8() % 30;
        if !self.out_of_order && !matches!(code, 21..=24) {
            self.answer_all();
            // Whatever is left (an endless chain of requests) is dropped, never answered late.
            self.pending.clear();
        }
        let chan = b.below(self.chans.len());
        match code {
            // HTLCs, then updates.
            0 | 1 => {
                let direction = if b.bool() {
                    HtlcDirection::Incoming
                } else {
                    HtlcDirection::Outgoing
                };
                let amount = b.pick(&AMOUNTS_MSAT);
                let expiry = self.tip() + 1 + u32::from(b.u8() % 48);
                let live = self.chans[chan]
                    .sim
                    .state(Party::Local, self.chans[chan].sim.local_commitment_number())
                    .map_or(0, |s| s.htlcs.len());
                if live >= MAX_LIVE_HTLCS || self.htlcs.len() >= 32 {
                    return;
                }
                self.note(|| {
                    format!("add htlc {direction:?} {amount} msat expiry {expiry} on {chan}")
                });
                if let Ok(h) = self.chans[chan].sim.add_htlc(direction, amount, expiry) {
                    self.htlcs.push(h);
                }
                if code == 1 {
                    self.commit(chan);
                }
            }
            2 => self.commit(chan),
            3 => {
                self.note(|| format!("propose on {chan}"));
                if let Ok(events) = self.chans[chan].sim.propose() {
                    self.feed_sim(chan, events);
                }
            }
            4 => {
                self.note(|| format!("complete on {chan}"));
                if let Ok(events) = self.chans[chan].sim.complete() {
                    self.feed_sim(chan, events);
                }
            }
            5 | 6 => {
                let Some(key) = self.live_htlc(chan, usize::from(b.u8())) else {
                    return;
                };
                self.note(|| format!("{} {key:?}", if code == 5 { "settle" } else { "fail" }));
                let sim = &mut self.chans[chan].sim;
                let _ = if code == 5 {
                    sim.settle_htlc(key)
                } else {
                    sim.fail_htlc(key)
                };
                if b.bool() {
                    self.commit(chan);
                }
            }
            7 => {
                let rate = b.pick(&FEERATES_PER_KW);
                self.note(|| format!("update fee {rate} on {chan}"));
                self.chans[chan].sim.update_fee(rate);
                self.commit(chan);
            }
            // Blocks.
            8..=10 => {
                let mask = b.u16();
                self.note(|| format!("mine candidates {mask:#06x}"));
                self.mine_chosen(mask, Vec::new());
                if b.bool() {
                    self.answer_all();
                }
            }
            11 => {
                let n = 1 + b.u8() % 6;
                self.note(|| format!("mine {n} empty blocks"));
                for _ in 0..n {
                    self.mine(Vec::new(), 0);
                }
            }
            12 => {
                let depth = 1 + b.u8() % 3;
                let reinclude = b.bool();
                self.note(|| format!("reorg {depth} reinclude {reinclude}"));
                let mut dropped = Vec::new();
                for _ in 0..depth {
                    if self.blocks.len() <= 1 {
                        break;
                    }
                    if let Some(block) = self.blocks.last() {
                        dropped.extend(block.txs.iter().map(|t| t.0.clone()));
                    }
                    self.disconnect();
                }
                self.salt = self.salt.wrapping_add(1);
                let salt = self.salt;
                let txs: Vec<Transaction> = if reinclude {
                    let mut ok: Vec<Transaction> = Vec::new();
                    for tx in dropped {
                        if self.valid_next(&tx, &ok) {
                            ok.push(tx);
                        }
                    }
                    ok
                } else {
                    Vec::new()
                };
                self.mine(txs, salt);
            }
            13 => {
                // A second-level HTLC transaction of a commitment (ours or the peer's).
                let holder = if b.bool() {
                    Party::Remote
                } else {
                    Party::Local
                };
                let back = u64::from(b.u8() % 2);
                let pick = usize::from(b.u8());
                let sim = &self.chans[chan].sim;
                let n = match holder {
                    Party::Local => sim.local_commitment_number(),
                    Party::Remote => sim.remote_commitment_number(),
                }
                .saturating_sub(back);
                let Ok(state) = sim.state(holder, n) else {
                    return;
                };
                let len = state.htlcs.len();
                let Some(key) = state.htlcs.keys().nth(pick % len.max(1)).copied() else {
                    return;
                };
                self.note(|| format!("mine htlc tx of {holder:?} {n} for {key:?}"));
                let tx = self.chans[chan].sim.htlc_tx(holder, n, key).ok();
                let mask = b.u16();
                self.mine_chosen(mask, tx.into_iter().collect());
            }
            14 => {
                let tx = self.peer_spend(b);
                self.note(|| format!("mine spend {:?}", tx.as_ref().map(|t| t.compute_txid())));
                self.mine_chosen(0, tx.into_iter().collect());
            }
            15 => {
                self.note(|| "fund wallet".to_string());
                self.fund_wallet(2, 20_000 + u64::from(b.u8()) * 1_000);
            }
            // HTLC plumbing.
            16 => {
                if self.htlcs.is_empty() {
                    return;
                }
                let h = self.htlcs[b.below(self.htlcs.len())].clone();
                let source = match b.u8() % 5 {
                    0 => PreimageSource::Invoice { htlc: h.key },
                    1 => PreimageSource::Downstream { htlc: h.key },
                    2 => PreimageSource::Chain {
                        txid: Txid::all_zeros(),
                        height: self.tip(),
                    },
                    3 => PreimageSource::Mempool {
                        txid: Txid::all_zeros(),
                    },
                    _ => PreimageSource::Invoice {
                        htlc: HtlcKey {
                            channel: h.key.channel,
                            htlc_id: h.key.htlc_id + 1,
                            direction: h.key.direction,
                        },
                    },
                };
                self.note(|| format!("learn preimage of {:?} from {source:?}", h.key));
                let hash = h.payment_hash();
                if self
                    .feed(Event::PreimageLearned {
                        preimage: h.preimage,
                        source,
                    })
                    .is_some()
                {
                    self.learned.insert(hash);
                }
            }
            17 => {
                let outgoing: Vec<&SimHtlc> = self
                    .htlcs
                    .iter()
                    .filter(|h| h.key.direction == HtlcDirection::Outgoing)
                    .collect();
                if outgoing.is_empty() {
                    return;
                }
                let h = outgoing[b.below(outgoing.len())].clone();
                let event = if b.u8().is_multiple_of(4) {
                    Event::CircuitRemoved { outgoing: h.key }
                } else {
                    let incoming_channel = if b.bool() && self.chans.len() > 1 {
                        self.chans[1 - chan].sim.channel_id
                    } else {
                        ChannelId([7; 32])
                    };
                    Event::CircuitAdded {
                        outgoing: h.key,
                        incoming: IncomingLeg {
                            htlc: HtlcKey {
                                channel: incoming_channel,
                                htlc_id: h.key.htlc_id + 100 * chan as u64,
                                direction: HtlcDirection::Incoming,
                            },
                            cltv_expiry: h.cltv_expiry + u32::from(b.u8() % 40),
                            amount_msat: h.amount_msat + 1_000,
                        },
                    }
                };
                self.note(|| format!("{event:?}"));
                self.feed(event);
            }
            18 => {
                if self.upstream.is_empty() {
                    return;
                }
                let i = b.below(self.upstream.len());
                let Some((htlc, settled)) = self.upstream.iter().nth(i).map(|(k, v)| (*k, *v))
                else {
                    return;
                };
                let flip = b.u8().is_multiple_of(4);
                let resolution = if settled != flip {
                    UpstreamResolution::Settled
                } else {
                    UpstreamResolution::Failed
                };
                self.note(|| format!("ack {htlc:?} {resolution:?}"));
                self.feed(Event::UpstreamAcked { htlc, resolution });
            }
            // Conditions.
            19 => {
                let fees = fee_conditions(b);
                self.min_relay_kvb = self.min_relay_kvb.min(fees.min_relay.to_sat_per_kwu() * 4);
                self.note(|| format!("{fees:?}"));
                self.feed(Event::FeeConditions(fees));
            }
            20 => {
                let secs = 1_700_000_000 + u64::from(b.u32());
                self.feed(Event::Tick { unix_secs: secs });
            }
            // Answers.
            21 => {
                self.note(|| "answer all".to_string());
                self.answer_all();
            }
            22 => {
                if self.pending.is_empty() {
                    return;
                }
                let i = b.below(self.pending.len());
                let variant = b.u8();
                let keep = b.u8().is_multiple_of(4);
                let action = if keep {
                    self.pending[i].clone()
                } else {
                    self.pending.remove(i)
                };
                let event = self.answer(&action, variant);
                self.note(|| format!("answer {variant} with {event:?}"));
                if let Some(event) = event {
                    self.feed(event);
                }
            }
            23 => {
                // A stale or unknown request id.
                let request = RequestId {
                    claim: ClaimId(u64::from(b.u8() % 16)),
                    attempt: u32::from(b.u8() % 4),
                };
                let event = match b.u8() % 3 {
                    0 => Event::Signed {
                        request,
                        outcome: SignOutcome::Failed {
                            reason: "unknown".to_string(),
                        },
                    },
                    1 => Event::BroadcastResult {
                        request,
                        txid: Txid::all_zeros(),
                        outcome: broadcast_outcome(b.u8()),
                    },
                    _ => Event::WalletFunded {
                        request,
                        outcome: FundingOutcome::Funded {
                            inputs: Vec::new(),
                            change: None,
                        },
                    },
                };
                self.note(|| format!("stale {event:?}"));
                self.feed(event);
            }
            24 => {
                self.note(|| "restart".to_string());
                // As a driver restarts: lazily, quiet open channels dormant until needed.
                self.arb = ChainArbitrator::from_records_lazily(self.config.clone(), &self.store)
                    .unwrap_or_else(|e| panic!("the persisted records do not load: {e}"));
                assert!(
                    self.whole(&self.arb) == self.whole(&self.durable),
                    "a restart changed the state"
                );
                self.durable = self.arb.clone();
                self.pending.clear();
                let tip = self.arb.tip();
                self.feed(Event::Resumed { tip });
            }
            25 => {
                let reason = match b.u8() % 3 {
                    0 => ForceCloseReason::User,
                    1 => ForceCloseReason::PeerError {
                        message: "bad".to_string(),
                    },
                    _ => ForceCloseReason::Node {
                        message: "node".to_string(),
                    },
                };
                let channel = self.chans[chan].sim.channel_id;
                self.note(|| format!("force close {chan}"));
                if let Some(actions) = self.feed(Event::ForceCloseRequested { channel, reason }) {
                    if b.bool() {
                        let _ = actions;
                        self.answer_all();
                    }
                }
            }
            26 => {
                let candidates = self.candidates();
                if candidates.is_empty() {
                    return;
                }
                let c = candidates[b.below(candidates.len())];
                let Some(tx) = self.build(c) else {
                    return;
                };
                let txid = tx.compute_txid();
                if b.u8().is_multiple_of(3) {
                    let reason = match b.u8() % 4 {
                        0 => MempoolRemovalReason::Confirmed,
                        1 => MempoolRemovalReason::Replaced { by: None },
                        2 => MempoolRemovalReason::Conflict,
                        _ => MempoolRemovalReason::Evicted,
                    };
                    self.note(|| format!("mempool removed {txid}"));
                    self.feed(Event::MempoolRemoved { txid, reason });
                } else {
                    self.note(|| format!("mempool {c:?} {txid}"));
                    self.txs.insert(txid, tx.clone());
                    let vsize = tx.vsize() as u64;
                    self.feed(Event::MempoolTx {
                        tx: RawTx(tx),
                        fee_sat: vsize * u64::from(b.u8()),
                        vsize,
                    });
                }
            }
            27 => self.refused(b, chan),
            28 => {
                if self.history.is_empty() {
                    return;
                }
                let event = self.history[b.below(self.history.len())].clone();
                self.note(|| "repeat an earlier event".to_string());
                self.feed(event);
            }
            _ => self.freezing_update(b, chan),
        }
    }

    fn commit(&mut self, chan: usize) {
        self.note(|| format!("commit on {chan}"));
        let sim = &mut self.chans[chan].sim;
        let events = if sim.remote_pending_number().is_some() {
            sim.complete()
        } else {
            sim.commit()
        };
        if let Ok(events) = events {
            self.feed_sim(chan, events);
        }
    }

    /// A transaction spending an output of a confirmed commitment with a made-up witness (the
    /// chain validated it; the engine only reads it).
    fn peer_spend(&mut self, b: &mut Bytes<'_>) -> Option<Transaction> {
        let confirmed: Vec<Txid> = self
            .commitments
            .keys()
            .filter(|t| self.confirmed.contains_key(*t))
            .copied()
            .collect();
        if confirmed.is_empty() {
            return None;
        }
        let txid = confirmed[b.below(confirmed.len())];
        let (chan, holder, n) = self.commitments.get(&txid).copied()?;
        let built = self.chans[chan].sim.built_commitment(holder, n).ok()?;
        let output = built.outputs.get(b.below(built.outputs.len()))?;
        let script = output
            .witness_script
            .clone()
            .unwrap_or_else(|| ScriptBuf::from_bytes(vec![0x02; 33]));
        let sig = vec![0x30; 72];
        let preimage = if self.htlcs.is_empty() {
            PaymentPreimage([0; 32])
        } else {
            self.htlcs[b.below(self.htlcs.len())].preimage
        };
        let items: Vec<Vec<u8>> = match b.u8() % 5 {
            0 => vec![sig, preimage.0.to_vec(), script.to_bytes()],
            1 => vec![sig, Vec::new(), script.to_bytes()],
            2 => vec![Vec::new(), sig.clone(), sig, Vec::new(), script.to_bytes()],
            3 => vec![sig, vec![1], script.to_bytes()],
            _ => {
                let len = b.below(4);
                let mut items: Vec<Vec<u8>> = (0..len)
                    .map(|_| {
                        let l = b.below(80);
                        (0..l).map(|_| b.u8()).collect()
                    })
                    .collect();
                items.push(script.to_bytes());
                items
            }
        };
        let lock_time = if b.bool() {
            LockTime::ZERO
        } else {
            LockTime::from_height(self.tip()).unwrap_or(LockTime::ZERO)
        };
        let sequence = if b.bool() {
            Sequence::MAX
        } else {
            Sequence(u32::from(b.u8() % 4))
        };
        let value = output.value_sat.saturating_sub(500);
        Some(Transaction {
            version: Version::TWO,
            lock_time,
            input: vec![TxIn {
                previous_output: OutPoint {
                    txid,
                    vout: output.index,
                },
                script_sig: ScriptBuf::new(),
                sequence,
                witness: Witness::from_slice(&items),
            }],
            output: vec![TxOut {
                value: Amount::from_sat(value),
                script_pubkey: p2wpkh(0x33),
            }],
        })
    }

    /// Events the engine must refuse (and so change nothing): a block that does not connect, a
    /// disconnection of a block that is not the tip, a gap in a channel's updates, an unknown
    /// channel.
    fn refused(&mut self, b: &mut Bytes<'_>, chan: usize) {
        let tip = self.blocks.last().map(|b| (b.height, b.hash));
        let event = match (b.u8() % 4, tip) {
            (0, Some((height, hash))) => {
                // Never a block that extends the tip: on the tip's hash at a wrong height, or
                // at the next height or the one after on an unknown parent.
                let skip = u32::from(b.u8() % 2);
                let block_hash = BlockHash::from_byte_array([b.u8(); 32]);
                let (height, prev_hash) = if b.bool() {
                    (height + 1 + skip, BlockHash::from_byte_array([0xee; 32]))
                } else {
                    (height + 2 * skip, hash)
                };
                Event::BlockConnected(Block {
                    height,
                    hash: block_hash,
                    prev_hash,
                    time: 0,
                    txs: Vec::new(),
                })
            }
            (1, Some(_)) => {
                let i = b.below(self.blocks.len());
                let block = &self.blocks[i];
                Event::BlockDisconnected {
                    block: BlockRef {
                        height: block.height,
                        hash: if i + 1 == self.blocks.len() {
                            BlockHash::from_byte_array([0xdd; 32])
                        } else {
                            block.hash
                        },
                    },
                }
            }
            (2, _) => {
                let id = self.chans[chan].sim.channel_id;
                let last = self.last_update_id(id).unwrap_or(0);
                Event::ChannelUpdate(ChannelUpdate {
                    channel: id,
                    update_id: last + 2 + u64::from(b.u8() % 3),
                    change: ChannelChange::LocalCommitmentRevoked {
                        commitment_number: 0,
                    },
                })
            }
            _ => Event::ForceCloseRequested {
                channel: ChannelId([0xab; 32]),
                reason: ForceCloseReason::User,
            },
        };
        self.note(|| format!("refused {event:?}"));
        if self.feed(event.clone()).is_some() {
            panic!("an event that must be refused was accepted: {event:?}");
        }
    }

    /// An update the sim would not send: a corrupted one, shutdown scripts, data loss or a
    /// splice. Once the engine accepts one, the channel is frozen (the peer moves on alone).
    fn freezing_update(&mut self, b: &mut Bytes<'_>, chan: usize) {
        let id = self.chans[chan].sim.channel_id;
        let Some(last) = self.last_update_id(id) else {
            return;
        };
        let change = match b.u8() % 4 {
            0 => {
                let (l, r) = (p2wpkh(0x21), p2wpkh(0x22));
                self.chans[chan].shutdown = Some((l.clone(), r.clone()));
                ChannelChange::ShutdownScripts {
                    local: l,
                    remote: r,
                }
            }
            1 => {
                let sim = &self.chans[chan].sim;
                let next = sim.remote_commitment_number() + 1 + u64::from(b.u8() % 3);
                let point = if b.bool() {
                    sim.remote.per_commitment_point(next - 1).ok()
                } else {
                    None
                };
                ChannelChange::DataLossDetected {
                    remote_next_commitment_number: next,
                    remote_per_commitment_point: point,
                }
            }
            2 => {
                let mut funding = vec![self.chans[chan].sim.funding];
                funding.push(FundingOutput {
                    outpoint: OutPoint {
                        txid: Txid::from_byte_array([b.u8() | 1; 32]),
                        vout: u32::from(b.u8() % 3),
                    },
                    value_sat: 1_000_000,
                });
                if b.bool() {
                    funding.reverse();
                }
                ChannelChange::FundingChanged { funding }
            }
            _ => {
                // The sim's next update, corrupted.
                let mut sim = self.chans[chan].sim.clone();
                let _ = sim.add_htlc(HtlcDirection::Outgoing, 3_000_000, self.tip() + 30);
                let Ok(events) = sim.commit() else {
                    return;
                };
                let Some(Event::ChannelUpdate(update)) = events.get(b.below(events.len())).cloned()
                else {
                    return;
                };
                let mut change = update.change;
                corrupt(&mut change, b);
                change
            }
        };
        self.note(|| format!("update {change:?} on {chan}"));
        let accepted = self
            .feed(Event::ChannelUpdate(ChannelUpdate {
                channel: id,
                update_id: last + 1,
                change,
            }))
            .is_some();
        if accepted {
            self.chans[chan].frozen = true;
        } else {
            self.chans[chan].shutdown = None;
        }
    }
}

/// Change one field of an update.
fn corrupt(change: &mut ChannelChange, b: &mut Bytes<'_>) {
    let delta = u64::from(b.u8()) + 1;
    let what = b.u8() % 6;
    match change {
        ChannelChange::LocalCommitment(c) => match what {
            0 => c.to_local_msat = c.to_local_msat.wrapping_add(delta * 1000),
            1 => c.feerate_per_kw = c.feerate_per_kw.wrapping_add(delta as u32),
            2 => c.commitment_number = c.commitment_number.wrapping_add(delta % 3),
            3 => {
                c.htlc_signatures.pop();
            }
            4 => {
                if let Some(h) = c.htlcs.first_mut() {
                    h.output_index = h.output_index.map(|i| i.wrapping_add(1));
                }
            }
            _ => {
                if let Some(h) = c.htlcs.first_mut() {
                    h.cltv_expiry = h.cltv_expiry.wrapping_add(delta as u32);
                }
            }
        },
        ChannelChange::RemoteCommitment(c) => match what {
            0 => c.to_remote_msat = c.to_remote_msat.wrapping_sub(delta * 1000),
            1 => c.feerate_per_kw = c.feerate_per_kw.wrapping_sub(delta as u32),
            2 => c.commitment_number = c.commitment_number.wrapping_add(delta % 3),
            3 => {
                c.htlcs.pop();
            }
            4 => {
                if let Some(h) = c.htlcs.first_mut() {
                    h.output_index = Some(h.output_index.map_or(0, |i| i ^ 1));
                }
            }
            _ => {
                if let Some(h) = c.htlcs.first_mut() {
                    h.amount_msat = h.amount_msat.wrapping_add(delta * 1000);
                }
            }
        },
        ChannelChange::LocalCommitmentRevoked { commitment_number } => {
            *commitment_number = commitment_number.wrapping_add(delta % 4);
        }
        ChannelChange::RevocationSecret {
            commitment_number,
            secret,
        } => {
            if what.is_multiple_of(2) {
                secret[usize::from(b.u8() % 32)] ^= 1 << (b.u8() % 8);
            } else {
                *commitment_number = commitment_number.wrapping_add(delta % 3);
            }
        }
        _ => {}
    }
}

fn fee_conditions(b: &mut Bytes<'_>) -> FeeConditions {
    let rate = |b: &mut Bytes<'_>| FeeRate::from_sat_per_kwu(b.pick(&FEE_SAT_PER_VB) * 250);
    let count = b.below(4);
    let mut estimates: Vec<FeeEstimate> = (0..count)
        .map(|_| FeeEstimate {
            target_blocks: b.pick(&TARGETS),
            feerate: rate(b),
        })
        .collect();
    estimates.sort_by_key(|e| e.target_blocks);
    FeeConditions {
        estimates,
        mempool_min: rate(b),
        min_relay: rate(b),
        incremental_relay: rate(b),
    }
}
