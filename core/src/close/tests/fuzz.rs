//! A deterministic fuzz loop: real commitment and closing transactions of sim channels, mutated
//! (nLockTime, nSequence, inputs, outputs), classified. No classification may panic, and every
//! classification other than `Unknown`/`NotAFundingSpend` must be justified by a txid or an
//! output that an oracle computes from the sim, independently of the code under test.

use std::collections::{BTreeMap, BTreeSet};

use bitcoin::absolute::LockTime;
use bitcoin::Sequence;

use super::*;
use crate::bolt3::commitment::decode_commitment_number;
use crate::bolt3::scripts::PAY_TO_ANCHOR_SCRIPT;

/// xorshift64: deterministic, no `rand`.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }

    fn u32(&mut self) -> u32 {
        (self.next() >> 32) as u32
    }

    fn bytes32(&mut self) -> [u8; 32] {
        let mut b = [0u8; 32];
        for chunk in b.chunks_mut(8) {
            chunk.copy_from_slice(&self.next().to_be_bytes());
        }
        b
    }
}

/// What the sim says is true of a world, and the transactions to mutate.
struct Oracle {
    world: World,
    pool: Vec<Transaction>,
    local_current: (u64, Txid),
    remote_current: (u64, Txid),
    remote_pending: Option<(u64, Txid)>,
    local_revoked_through: u64,
    /// `to_remote` scripts on the peer's commitments (ours).
    our_to_remote: BTreeSet<ScriptBuf>,
    /// `to_remote` scripts on our commitments (theirs).
    their_to_remote: BTreeSet<ScriptBuf>,
    /// The peer's `to_local` script on each of their commitments.
    remote_to_local: BTreeMap<u64, ScriptBuf>,
}

impl Oracle {
    fn new(world: World, coop: Option<Transaction>) -> Oracle {
        let sim = &world.sim;
        let last_remote = sim
            .remote_pending_number()
            .unwrap_or(sim.remote_commitment_number());
        let mut pool = Vec::new();
        let (mut our_to_remote, mut their_to_remote, mut remote_to_local) =
            (BTreeSet::new(), BTreeSet::new(), BTreeMap::new());
        for (holder, last) in [
            (Party::Local, sim.local_commitment_number()),
            (Party::Remote, last_remote),
        ] {
            for n in 0..=last {
                let tx = world.tx(holder, n);
                for o in sim.built_commitment(holder, n).unwrap().outputs {
                    let script = tx.output[o.index as usize].script_pubkey.clone();
                    match (holder, o.kind) {
                        (Party::Remote, OutputKind::ToRemote) => {
                            our_to_remote.insert(script);
                        }
                        (Party::Remote, OutputKind::ToLocal) => {
                            remote_to_local.insert(n, script);
                        }
                        (Party::Local, OutputKind::ToRemote) => {
                            their_to_remote.insert(script);
                        }
                        _ => {}
                    }
                }
                pool.push(tx);
            }
        }
        pool.extend(coop);
        let c = &world.data.commitments;
        let local = c.local.as_ref().unwrap().commitment.number;
        let remote = c.remote_current.as_ref().unwrap().number;
        let txid = |holder, n| world.tx(holder, n).compute_txid();
        Oracle {
            local_current: (local, txid(Party::Local, local)),
            remote_current: (remote, txid(Party::Remote, remote)),
            remote_pending: c
                .remote_pending
                .as_ref()
                .map(|p| (p.number, txid(Party::Remote, p.number))),
            local_revoked_through: c.local_revoked_through.unwrap(),
            pool,
            our_to_remote,
            their_to_remote,
            remote_to_local,
            world,
        }
    }

    /// Why `c` is right for `tx`, or what is wrong with it.
    fn justify(&self, tx: &Transaction, c: &Classification) -> Result<(), String> {
        let funding = self.world.sim.funding;
        let spends = tx
            .input
            .iter()
            .position(|i| i.previous_output == funding.outpoint);
        let close = match (c, spends) {
            (Classification::NotAFundingSpend, None) => return Ok(()),
            (Classification::FundingSpent { spend, close }, Some(i))
                if spend.input_index == i && spend.funding == funding =>
            {
                close
            }
            _ => return Err("wrong funding spend".into()),
        };
        let txid = tx.compute_txid();
        for (known, expected) in [
            (
                Some(self.local_current),
                Close::LocalCurrent {
                    number: self.local_current.0,
                },
            ),
            (
                Some(self.remote_current),
                Close::RemoteCurrent {
                    number: self.remote_current.0,
                },
            ),
            (
                self.remote_pending,
                Close::RemotePending {
                    number: self.remote_pending.map_or(0, |p| p.0),
                },
            ),
        ] {
            if known.is_some_and(|(_, t)| t == txid) && *close != expected {
                return Err(format!("a known commitment's txid must be {expected:?}"));
            }
        }
        let decoded = decode_commitment_number(tx, self.world.data.info.obscuring_factor);
        let pays =
            |set: &BTreeSet<ScriptBuf>| tx.output.iter().any(|o| set.contains(&o.script_pubkey));
        let pays_to_local = |n: u64| {
            self.remote_to_local
                .get(&n)
                .is_some_and(|s| tx.output.iter().any(|o| o.script_pubkey == *s))
        };
        let secret_held = |n: u64, secret: &[u8; 32]| {
            n < self.remote_current.0 && *secret == self.world.secret(n)
        };
        let known_max = self.remote_pending.map_or(self.remote_current.0, |p| p.0);
        // Every zero-fee commitment carries the shared pay-to-anchor output (BOLT 3
        // "`shared_anchor` Output"): it says nothing of the balances.
        let zero_fee = self.world.data.info.channel_type == ChannelType::ZeroFeeCommitments;
        let ok = match close {
            Close::Cooperative => {
                let (local, remote) = shutdown_scripts();
                decoded.is_none()
                    && !tx.output.is_empty()
                    && tx
                        .output
                        .iter()
                        .all(|o| o.script_pubkey == local || o.script_pubkey == remote)
            }
            Close::LocalCurrent { number } => (*number, txid) == self.local_current,
            Close::RemoteCurrent { number } => (*number, txid) == self.remote_current,
            Close::RemotePending { number } => Some((*number, txid)) == self.remote_pending,
            Close::LocalRevoked { number } => {
                decoded == Some(*number)
                    && *number <= self.local_revoked_through
                    && pays(&self.their_to_remote)
            }
            Close::RemoteRevoked {
                number,
                per_commitment_secret,
            } => {
                decoded == Some(*number)
                    && secret_held(*number, per_commitment_secret)
                    && (pays_to_local(*number) || pays(&self.our_to_remote))
            }
            Close::RemoteRevokedUnconfirmed {
                number,
                per_commitment_secret,
            } => {
                decoded == Some(*number)
                    && secret_held(*number, per_commitment_secret)
                    && !pays_to_local(*number)
                    && !pays(&self.our_to_remote)
                    && tx
                        .output
                        .iter()
                        .filter(|o| {
                            !(zero_fee && o.script_pubkey.as_bytes() == PAY_TO_ANCHOR_SCRIPT)
                        })
                        .all(|o| o.script_pubkey.is_p2wsh())
            }
            Close::RemoteFuture { number } => {
                decoded == Some(*number) && *number > known_max && pays(&self.our_to_remote)
            }
            Close::Unknown { .. } => true,
        };
        if ok {
            Ok(())
        } else {
            Err("no txid or output justifies it".into())
        }
    }
}

fn mutate(rng: &mut XorShift, tx: &mut Transaction, pool: &[Transaction], factor: u64) {
    let outputs = tx.output.len();
    match rng.below(16) {
        0 => {}
        1 => tx.lock_time = LockTime::from_consensus(rng.u32()),
        2 => {
            let s = rng.u32();
            if let Some(i) = tx.input.first_mut() {
                i.sequence = Sequence(s);
            }
        }
        3 => {
            tx.lock_time =
                LockTime::from_consensus(tx.lock_time.to_consensus_u32() ^ (1 << rng.below(24)))
        }
        4 => {
            let bit = 1 << rng.below(24);
            if let Some(i) = tx.input.first_mut() {
                i.sequence = Sequence(i.sequence.0 ^ bit);
            }
        }
        5 => {
            let interesting = [
                0,
                1,
                2,
                3,
                4,
                5,
                6,
                1_000,
                MAX_COMMITMENT_NUMBER,
                rng.next() & MAX_COMMITMENT_NUMBER,
            ];
            let (lock_time, sequence) =
                encode_commitment_number(interesting[rng.below(interesting.len())], factor);
            tx.lock_time = lock_time;
            if let Some(i) = tx.input.first_mut() {
                i.sequence = sequence;
            }
        }
        6 if outputs > 0 => {
            tx.output.remove(rng.below(outputs));
        }
        7 if outputs > 0 => {
            let o = tx.output[rng.below(outputs)].clone();
            tx.output.insert(rng.below(outputs + 1), o);
        }
        8 if outputs > 0 => {
            let len = rng.below(80);
            let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            tx.output[rng.below(outputs)].script_pubkey = ScriptBuf::from_bytes(bytes);
        }
        9 if outputs > 0 => {
            let other = &pool[rng.below(pool.len())];
            if !other.output.is_empty() {
                let script = other.output[rng.below(other.output.len())]
                    .script_pubkey
                    .clone();
                tx.output[rng.below(outputs)].script_pubkey = script;
            }
        }
        10 if outputs > 1 => tx.output.swap(rng.below(outputs), rng.below(outputs)),
        11 => tx.output.clear(),
        12 if outputs > 0 => {
            tx.output[rng.below(outputs)].value = Amount::from_sat(rng.next() >> 20)
        }
        13 => {
            let txid = Txid::from_byte_array(rng.bytes32());
            if let Some(i) = tx.input.first_mut() {
                i.previous_output = OutPoint {
                    txid,
                    vout: rng.u32() % 4,
                };
            }
        }
        14 if !tx.input.is_empty() => {
            let mut extra = tx.input[0].clone();
            extra.previous_output = OutPoint {
                txid: Txid::from_byte_array(rng.bytes32()),
                vout: 0,
            };
            tx.input.insert(rng.below(tx.input.len() + 1), extra);
        }
        15 => tx.output.truncate(rng.below(outputs + 1)),
        _ => tx.input.clear(),
    }
}

fn label(c: &Classification) -> &'static str {
    match c.close() {
        None => "not_a_funding_spend",
        Some(Close::Cooperative) => "cooperative",
        Some(Close::LocalCurrent { .. }) => "local_current",
        Some(Close::LocalRevoked { .. }) => "local_revoked",
        Some(Close::RemoteCurrent { .. }) => "remote_current",
        Some(Close::RemotePending { .. }) => "remote_pending",
        Some(Close::RemoteRevoked { .. }) => "remote_revoked",
        Some(Close::RemoteRevokedUnconfirmed { .. }) => "remote_revoked_unconfirmed",
        Some(Close::RemoteFuture { .. }) => "remote_future",
        Some(Close::Unknown { .. }) => "unknown",
    }
}

/// The engine saw three updates; the sim went on with two (HTLCs added, then all settled), so the
/// peer's 4 and 5 are future and a cooperative close of the settled state exists.
fn lagging_world(channel_type: ChannelType) -> Oracle {
    let mut w = World::busy(21, channel_type);
    w.set_shutdown();
    let unseen = add_unseen(&mut w.sim);
    w.sim.commit().unwrap();
    w.settle_all();
    for h in unseen {
        w.sim.settle_htlc(h.key).unwrap();
    }
    w.sim.commit().unwrap();
    let (local, remote) = shutdown_scripts();
    let coop = w.sim.cooperative_close_tx(local, remote, 1_000).unwrap();
    Oracle::new(w, Some(coop))
}

/// The engine saw everything, the last update only half: the peer's 4 is pending.
fn pending_world(channel_type: ChannelType) -> Oracle {
    let mut w = World::busy(22, channel_type);
    w.add_both_ways(9);
    let events = w.sim.propose().unwrap();
    w.see(events);
    w.set_shutdown();
    Oracle::new(w, None)
}

#[test]
fn mutated_commitments_never_panic_and_every_match_is_justified() {
    let worlds: Vec<(Oracle, &[&str])> = TYPES
        .into_iter()
        .flat_map(|ct| {
            let lagging: &[&str] = &[
                "cooperative",
                "local_current",
                "local_revoked",
                "remote_current",
                "remote_revoked",
                "remote_future",
            ];
            let pending: &[&str] = &[
                "local_current",
                "local_revoked",
                "remote_current",
                "remote_pending",
                "remote_revoked",
            ];
            [(lagging_world(ct), lagging), (pending_world(ct), pending)]
        })
        .collect();
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let per_world = 5_000 / worlds.len();
    for (oracle, must_see) in &worlds {
        let info = &oracle.world.data.info;
        let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
        for i in 0..per_world {
            let mut tx = oracle.pool[rng.below(oracle.pool.len())].clone();
            for _ in 0..rng.below(5) {
                mutate(&mut rng, &mut tx, &oracle.pool, info.obscuring_factor);
            }
            let c = classify_close(&tx, info, &oracle.world.data.commitments);
            if let Err(why) = oracle.justify(&tx, &c) {
                panic!(
                    "iteration {i} ({:?}): {c:?}: {why}\n{tx:?}",
                    info.channel_type
                );
            }
            *seen.entry(label(&c)).or_default() += 1;
        }
        for kind in must_see.iter().chain(&["unknown", "not_a_funding_spend"]) {
            assert!(
                seen.contains_key(kind),
                "{:?}: never saw {kind}: {seen:?}",
                info.channel_type
            );
        }
    }
}
