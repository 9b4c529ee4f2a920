//! The fork-point walk of the polled chain sources ([`crate::chain::sync`]) against a server
//! whose every answer the fuzz bytes choose.
//!
//! The server knows three chains sharing a prefix (A: heights 0–11; B: A's 0–4, then its own
//! 5–12; C: A's 0–8, then its own 9–13), each grown to a length the bytes set. Each call reads one
//! byte: most answer truly from the best chain of the moment, some switch the best chain or grow
//! it first (a reorg while the walk reads), some fail, say "not there", or lie (a hash or block
//! from anywhere, a tip that is not on any chain). When the bytes run out every call fails.
//!
//! A chain arbitrator plays the engine: it is polled a few times as a driver polls (its own
//! locator in, the walk's events fed to it). Whatever the server says, the walk ends (an error,
//! or events), its disconnections come before its connections, and the engine takes every event
//! it produced: each disconnection is of the engine's tip, each block links to it.

use bitcoin::block::{Header, Version};
use bitcoin::hashes::Hash;
use bitcoin::{BlockHash, CompactTarget, TxMerkleNode};
use contractcourt_core::chain::{ChainArbitrator, Config};
use contractcourt_core::event::Event;
use contractcourt_core::types::{BlockRef, Height};

use super::Bytes;
use crate::chain::sync::{self, BlockClient, Delivered};

/// How many times the engine polls the server.
const POLLS: usize = 4;

/// The three chains, each block with its height.
fn chains() -> [Vec<bitcoin::Block>; 3] {
    fn grow(chain: &mut Vec<bitcoin::Block>, to: usize, nonce: u32) {
        while chain.len() < to {
            let prev = chain
                .last()
                .map_or(BlockHash::all_zeros(), |b| b.block_hash());
            chain.push(bitcoin::Block {
                header: Header {
                    version: Version::TWO,
                    prev_blockhash: prev,
                    merkle_root: TxMerkleNode::all_zeros(),
                    time: 1_700_000_000 + chain.len() as u32,
                    bits: CompactTarget::from_consensus(0x207f_ffff),
                    nonce,
                },
                txdata: Vec::new(),
            });
        }
    }
    let mut a = Vec::new();
    grow(&mut a, 12, 0);
    let mut b = a[..5].to_vec();
    grow(&mut b, 13, 1);
    let mut c = a[..9].to_vec();
    grow(&mut c, 14, 2);
    [a, b, c]
}

/// An answer the bytes chose.
enum Answer {
    True,
    Fail,
    Missing,
    Lie(usize),
}

struct Server<'a> {
    bytes: Bytes<'a>,
    chains: [Vec<bitcoin::Block>; 3],
    /// Each chain's current length (at least 1).
    lengths: [usize; 3],
    best: usize,
}

impl Server<'_> {
    /// Every block the server knows, of any chain (with repeats of the shared prefix).
    fn any_block(&self, i: usize) -> &bitcoin::Block {
        let all: usize = self.chains.iter().map(Vec::len).sum();
        let mut i = i % all;
        for chain in &self.chains {
            if i < chain.len() {
                return &chain[i];
            }
            i -= chain.len();
        }
        &self.chains[0][0]
    }

    fn find(&self, hash: &BlockHash) -> Option<&bitcoin::Block> {
        self.chains
            .iter()
            .flat_map(|c| c.iter())
            .find(|b| b.block_hash() == *hash)
    }

    fn answer(&mut self) -> Answer {
        if self.bytes.is_empty() {
            return Answer::Fail;
        }
        let b = self.bytes.u8();
        match b % 16 {
            0 => Answer::Fail,
            1 => Answer::Missing,
            2 => Answer::Lie(usize::from(self.bytes.u8())),
            3 => {
                self.best = self.bytes.below(3);
                Answer::True
            }
            4 => {
                let best = self.best;
                self.lengths[best] = (self.lengths[best] + 1).min(self.chains[best].len());
                Answer::True
            }
            _ => Answer::True,
        }
    }
}

impl BlockClient for Server<'_> {
    type Error = ();

    fn best_tip(&mut self) -> Result<BlockRef, ()> {
        match self.answer() {
            Answer::True => {
                let top = self.lengths[self.best] - 1;
                Ok(BlockRef {
                    height: top as Height,
                    hash: self.chains[self.best][top].block_hash(),
                })
            }
            Answer::Fail | Answer::Missing => Err(()),
            Answer::Lie(i) => Ok(BlockRef {
                height: Height::from(self.bytes.u8()),
                hash: self.any_block(i).block_hash(),
            }),
        }
    }

    fn hash_at(&mut self, height: Height) -> Result<Option<BlockHash>, ()> {
        match self.answer() {
            Answer::True => {
                let chain = &self.chains[self.best][..self.lengths[self.best]];
                Ok(chain.get(height as usize).map(bitcoin::Block::block_hash))
            }
            Answer::Fail => Err(()),
            Answer::Missing => Ok(None),
            Answer::Lie(i) => Ok(Some(self.any_block(i).block_hash())),
        }
    }

    fn header(&mut self, hash: &BlockHash) -> Result<Option<Header>, ()> {
        match self.answer() {
            Answer::True => Ok(self.find(hash).map(|b| b.header)),
            Answer::Fail => Err(()),
            Answer::Missing => Ok(None),
            Answer::Lie(i) => Ok(Some(self.any_block(i).header)),
        }
    }

    fn block(&mut self, hash: &BlockHash) -> Result<Option<bitcoin::Block>, ()> {
        match self.answer() {
            Answer::True => Ok(self.find(hash).cloned()),
            Answer::Fail => Err(()),
            Answer::Missing => Ok(None),
            Answer::Lie(i) => Ok(Some(self.any_block(i).clone())),
        }
    }
}

/// `data` as the answers of a chain server to an engine polling it. See the module
/// documentation.
pub fn chain_sync(data: &[u8]) {
    let _ = engine_after_polls(data);
}

/// [`chain_sync`]'s engine after its polls.
fn engine_after_polls(data: &[u8]) -> ChainArbitrator {
    let mut bytes = Bytes::new(data);
    let first_height = Height::from(bytes.u8() % 8);
    let chains = chains();
    let lengths = [
        1 + bytes.below(chains[0].len()),
        1 + bytes.below(chains[1].len()),
        1 + bytes.below(chains[2].len()),
    ];
    let best = bytes.below(3);
    let mut server = Server {
        bytes,
        chains,
        lengths,
        best,
    };
    let mut engine = ChainArbitrator::new(Config::default());
    let mut delivered = Delivered::default();
    for _ in 0..POLLS {
        let locator = engine.locator();
        let Ok(events) = sync::blocks_after(&mut server, &locator, first_height, &mut delivered)
        else {
            continue;
        };
        let first_connection = events
            .iter()
            .position(|e| matches!(e, Event::BlockConnected(_)))
            .unwrap_or(events.len());
        assert!(
            events[first_connection..]
                .iter()
                .all(|e| matches!(e, Event::BlockConnected(_))),
            "a disconnection after a connection"
        );
        for event in &events {
            if let Err(e) = engine.step(event) {
                panic!("the engine refused the walk's {event:?}: {e}");
            }
        }
    }
    engine
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tip_of(chain: &[bitcoin::Block]) -> BlockRef {
        BlockRef {
            height: (chain.len() - 1) as Height,
            hash: chain[chain.len() - 1].block_hash(),
        }
    }

    #[test]
    fn true_answers_bring_the_engine_to_the_best_tip() {
        // First height 0, chain A 6 blocks long and best, then true answers only.
        let mut data = vec![0u8, 5, 0, 0, 0];
        data.extend(std::iter::repeat_n(5u8, 200));
        let [a, _, _] = chains();
        assert_eq!(engine_after_polls(&data).tip(), Some(tip_of(&a[..6])));
    }

    #[test]
    fn a_switch_to_another_chain_between_polls_ends_on_its_tip() {
        // A 6 blocks long and best, C 14; the first poll takes A's blocks (13 answers), then
        // the best chain becomes C: the next polls disconnect A's 5 and 6 and connect C's.
        let mut data = vec![0u8, 5, 0, 13, 0];
        data.extend(std::iter::repeat_n(5u8, 13));
        data.extend([3u8, 2]);
        data.extend(std::iter::repeat_n(5u8, 200));
        let [_, _, c] = chains();
        assert_eq!(engine_after_polls(&data).tip(), Some(tip_of(&c)));
    }

    #[test]
    fn lies_and_failures_end_the_walk_with_an_error_or_events_the_engine_takes() {
        for seed in 0u8..=255 {
            let data: Vec<u8> = (0u8..120)
                .map(|i| i.wrapping_mul(seed).wrapping_add(seed))
                .collect();
            chain_sync(&data);
        }
    }
}
