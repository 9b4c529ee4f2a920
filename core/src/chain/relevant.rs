//! What a flight recorder must keep of a block: its header and the transactions this engine's
//! index routes. A pure function of the engine's state before the block; replaying the reduced
//! block from that same state gives the same actions as the full block.
//!
//! A transaction is routed ([`ChainArbitrator::connect`]'s walk over the block) only when one of
//! its inputs spends an outpoint in the watched-outpoint index or an output of a confirmed close
//! the index knows. The index is refreshed after each routed spend, so a transaction may become
//! relevant by spending an output of an earlier transaction *of the same block*; every such
//! output came from a routed (hence kept) transaction, so keeping every transaction that spends
//! an output of a kept one is a superset of what the walk can route. Nothing else of a block is
//! read by the engine (its height, hash, parent and time are kept).
//!
//! A mempool event is kept whole or not at all: a transaction is kept when one of its inputs
//! spends a watched outpoint or an output of a known close (the same test, with no block to
//! chain through), a removal when the index tracks that transaction. Anything else steps to no
//! action and no change ([`ChainArbitrator::mempool_tx`]'s walk skips every such input), so
//! replay needs no trace of it.

use std::collections::BTreeSet;

use bitcoin::{OutPoint, Txid};

use super::ChainArbitrator;
use crate::event::{Block, Event};

impl ChainArbitrator {
    /// `block` with only the transactions this engine, in its current state, could route:
    /// those spending a watched outpoint or an output of a known close, and those spending an
    /// output of a transaction kept before them in the block. Block order is kept.
    pub fn relevant_block(&self, block: &Block) -> Block {
        let mut kept: BTreeSet<Txid> = BTreeSet::new();
        let mut txs = Vec::new();
        for tx in &block.txs {
            let relevant = tx.input.iter().any(|input| {
                let prev = input.previous_output;
                self.routes_spend_of(&prev) || kept.contains(&prev.txid)
            });
            if relevant {
                kept.insert(tx.compute_txid());
                txs.push(tx.clone());
            }
        }
        Block {
            height: block.height,
            hash: block.hash,
            prev_hash: block.prev_hash,
            time: block.time,
            txs,
        }
    }

    /// Whether the engine's index routes a spend of `prev`: a watched outpoint, or an output of
    /// a confirmed close it knows.
    fn routes_spend_of(&self, prev: &OutPoint) -> bool {
        self.index.outpoints.get(prev).is_some() || self.index.closes.contains_key(&prev.txid)
    }

    /// Whether a mempool event can change this engine in its current state: a transaction
    /// spending a watched outpoint or an output of a known close, or the removal of a
    /// transaction the index tracks. Any other mempool event steps to no action and no change.
    pub fn relevant_mempool_event(&self, event: &Event) -> bool {
        match event {
            Event::MempoolTx { tx, .. } => tx
                .input
                .iter()
                .any(|input| self.routes_spend_of(&input.previous_output)),
            Event::MempoolRemoved { txid, .. } => self.index.mempool.contains_key(txid),
            _ => true,
        }
    }

    /// What a flight recorder keeps of `event`, fed to this engine in its current state: a
    /// connected block reduced to [`Self::relevant_block`]; nothing (`None`) of a mempool event
    /// that is not [relevant](Self::relevant_mempool_event); any other event as it is.
    pub fn recordable(&self, event: &Event) -> Option<Event> {
        match event {
            Event::BlockConnected(block) => Some(Event::BlockConnected(self.relevant_block(block))),
            other if !self.relevant_mempool_event(other) => None,
            other => Some(other.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use bitcoin::hashes::Hash;
    use bitcoin::{
        absolute, transaction, Amount, BlockHash, OutPoint, ScriptBuf, Transaction, Txid,
    };
    use bitcoin::{Sequence, TxIn, TxOut, Witness};

    use super::*;
    use crate::bolt3::ChannelType;
    use crate::chain::Config;
    use crate::sim::{SimChannel, SimSetup};
    use crate::types::{HtlcDirection, Party, RawTx};

    fn spending(prev: OutPoint, sat: u64) -> Transaction {
        Transaction {
            version: transaction::Version::TWO,
            lock_time: absolute::LockTime::ZERO,
            input: vec![TxIn {
                previous_output: prev,
                script_sig: ScriptBuf::new(),
                sequence: Sequence::MAX,
                witness: Witness::new(),
            }],
            output: vec![TxOut {
                value: Amount::from_sat(sat),
                script_pubkey: ScriptBuf::new(),
            }],
        }
    }

    fn hash(n: u8) -> BlockHash {
        BlockHash::from_byte_array([n; 32])
    }

    fn out(tx: &Transaction) -> OutPoint {
        OutPoint {
            txid: tx.compute_txid(),
            vout: 0,
        }
    }

    #[test]
    fn a_recorded_block_keeps_its_header_and_what_the_index_routes_and_steps_the_same() {
        let setup = SimSetup::new(3, ChannelType::AnchorsZeroFeeHtlc);
        let (mut sim, opened) = SimChannel::open(setup).unwrap();
        let mut arb = ChainArbitrator::new(Config::default());
        sim.add_htlc(HtlcDirection::Outgoing, 20_000_000, 600)
            .unwrap();
        let committed = sim.commit().unwrap();
        for e in opened.iter().chain(&committed) {
            arb.step(e).unwrap();
        }
        let first = Block {
            height: 100,
            hash: hash(1),
            prev_hash: hash(0),
            time: 0,
            txs: Vec::new(),
        };
        arb.step(&Event::BlockConnected(first)).unwrap();
        let commitment = sim
            .commitment_tx(Party::Remote, sim.remote_commitment_number())
            .unwrap();
        // Spends every output of the commitment, and its child: relevant only through the block.
        let mut child = spending(out(&commitment), 1_000);
        child.input = (0..commitment.output.len() as u32)
            .map(|vout| TxIn {
                previous_output: OutPoint {
                    txid: commitment.compute_txid(),
                    vout,
                },
                ..child.input[0].clone()
            })
            .collect();
        let grandchild = spending(out(&child), 500);
        let noise = spending(
            OutPoint {
                txid: Txid::from_byte_array([7; 32]),
                vout: 1,
            },
            5_000,
        );
        let noise_child = spending(out(&noise), 4_000);
        let txs = [&noise, &commitment, &noise_child, &child, &grandchild];
        let block = Block {
            height: 101,
            hash: hash(2),
            prev_hash: hash(1),
            time: 5,
            txs: txs.iter().map(|t| RawTx((*t).clone())).collect(),
        };

        let kept = arb.relevant_block(&block);
        let mut full = arb.clone();
        let mut reduced = arb.clone();
        let a = full.step(&Event::BlockConnected(block.clone())).unwrap();
        let b = reduced.step(&Event::BlockConnected(kept.clone())).unwrap();
        assert!(!a.is_empty(), "the close must make the engine act");
        assert_eq!(a, b);
        assert_eq!(full, reduced);
        let kept_ids: Vec<_> = kept.txs.iter().map(|t| t.compute_txid()).collect();
        let want: Vec<_> = [&commitment, &child, &grandchild]
            .iter()
            .map(|t| t.compute_txid())
            .collect();
        assert_eq!(kept_ids, want);
        assert_eq!(
            (kept.height, kept.hash, kept.prev_hash, kept.time),
            (101, hash(2), hash(1), 5)
        );
        assert_eq!(
            arb.recordable(&Event::BlockConnected(block.clone())),
            Some(Event::BlockConnected(kept.clone()))
        );
    }

    #[test]
    fn a_mempool_event_is_recorded_whole_only_when_it_can_change_the_engine() {
        use crate::event::MempoolRemovalReason;
        let setup = SimSetup::new(4, ChannelType::AnchorsZeroFeeHtlc);
        let (mut sim, opened) = SimChannel::open(setup).unwrap();
        let mut arb = ChainArbitrator::new(Config::default());
        sim.add_htlc(HtlcDirection::Incoming, 20_000_000, 600)
            .unwrap();
        for e in opened.iter().chain(&sim.commit().unwrap()) {
            arb.step(e).unwrap();
        }
        let mempool = |tx: &Transaction| Event::MempoolTx {
            tx: RawTx(tx.clone()),
            fee_sat: 300,
            vsize: 150,
        };
        let removed = |tx: &Transaction| Event::MempoolRemoved {
            txid: tx.compute_txid(),
            reason: MempoolRemovalReason::Evicted,
        };
        // Noise: a transaction spending nothing the engine watches, and its removal.
        let noise = spending(
            OutPoint {
                txid: Txid::from_byte_array([9; 32]),
                vout: 0,
            },
            5_000,
        );
        for event in [mempool(&noise), removed(&noise)] {
            assert_eq!(arb.recordable(&event), None, "{event:?}");
            let mut stepped = arb.clone();
            assert_eq!(stepped.step(&event).unwrap(), Vec::new());
            assert_eq!(stepped, arb, "an unrecorded event changes nothing");
        }
        // The peer's commitment in the mempool spends our funding output: kept whole, and it acts.
        let commitment = sim
            .commitment_tx(Party::Remote, sim.remote_commitment_number())
            .unwrap();
        let seen = mempool(&commitment);
        assert_eq!(arb.recordable(&seen), Some(seen.clone()));
        let before = arb.clone();
        let actions = arb.step(&seen).unwrap();
        assert!(
            !actions.is_empty() || arb != before,
            "the commitment must change the engine"
        );
        // Once tracked, its removal is kept too; the noise's still is not.
        let gone = removed(&commitment);
        assert_eq!(arb.recordable(&gone), Some(gone.clone()));
        assert_eq!(arb.recordable(&removed(&noise)), None);
        // Other events are kept as they are.
        let tick = Event::Tick { unix_secs: 7 };
        assert_eq!(arb.recordable(&tick), Some(tick));
    }

    #[test]
    fn an_engine_watching_nothing_keeps_no_transaction() {
        let arb = ChainArbitrator::new(Config::default());
        let tx = spending(OutPoint::null(), 1);
        let block = Block {
            height: 1,
            hash: hash(1),
            prev_hash: hash(0),
            time: 0,
            txs: vec![RawTx(tx)],
        };
        assert!(arb.relevant_block(&block).txs.is_empty());
    }
}
