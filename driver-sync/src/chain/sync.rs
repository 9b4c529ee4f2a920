//! The fork-point walk shared by the polling chain sources ([`super::bitcoind`],
//! [`super::esplora`]): the mechanics of [`ChainSource::blocks_after`] over any server that can
//! say which block hash is at a height, give a header by hash and a full block by hash.
//!
//! Given the core's locator (its recent blocks, newest first):
//!
//! 1. **Fork point**: the newest locator entry whose hash is still the server's best-chain hash
//!    at its height. None on the best chain is [`SyncError::LocatorOffChain`]; an empty locator
//!    asks for every block from the source's first height on.
//! 2. **Disconnections**: the engine's blocks above the fork point, from its tip (the locator's
//!    first entry) down, each a [`Event::BlockDisconnected`]. A locator is sparse below its
//!    tenth entry, so the hash of an engine block between two entries is found by following
//!    parents: the locator entry one below, else a block this source delivered earlier, else
//!    the server's header for the hash (bitcoind keeps headers of stale blocks; an Esplora
//!    server may not, and then the walk fails with [`SyncError::UnknownBlock`]).
//! 3. **Connections**: each best-chain block above the fork point up to the tip, oldest first,
//!    as the full block in an [`Event::BlockConnected`]. Every block must hash to what the
//!    server said and link to the one before: if the best chain changes while it is read, the
//!    whole walk starts again (at most [`MAX_ATTEMPTS`] times, then
//!    [`SyncError::ChainMoving`]).
//!
//! The walk decides nothing beyond that: what the events mean is the core's business.
//!
//! [`ChainSource::blocks_after`]: crate::driver::ChainSource::blocks_after

use std::collections::BTreeMap;
use std::fmt;

use bitcoin::block::Header;
use bitcoin::BlockHash;
use contractcourt_core::event::{Block, Event};
use contractcourt_core::types::{BlockRef, Height, RawTx};

/// How many times a walk is started again when the best chain changes while it is read.
pub const MAX_ATTEMPTS: u32 = 3;

/// How many heights below the tip the blocks a source delivered are remembered (to find the
/// parents of the engine's blocks during a reorg without asking the server).
pub const REMEMBERED_DEPTH: Height = 2016;

/// Why a polling chain source could not produce the chain events.
#[derive(Debug)]
pub enum SyncError<E> {
    /// The client failed (transport, server error, undecodable answer): its own error, whole.
    Client(E),
    /// No entry of the locator is on the server's best chain (a reorg deeper than the
    /// locator reaches, or a server on another network).
    LocatorOffChain {
        /// The locator's newest entry.
        newest: BlockRef,
        /// The locator's oldest entry.
        oldest: BlockRef,
    },
    /// The parent of one of the engine's blocks above the fork point is not known: it is not in
    /// the locator, this source did not deliver it, and the server has no header for it.
    UnknownBlock {
        /// The block whose parent is missing.
        block: BlockRef,
    },
    /// The locator is not a chain: its heights do not strictly decrease, or following parents
    /// from its tip does not pass through its own entries down to the fork point.
    BadLocator {
        /// What is wrong.
        detail: String,
    },
    /// The server answered a block whose hash is not the one asked for.
    WrongBlock {
        /// The height it was asked at.
        height: Height,
        /// The hash asked for.
        expected: BlockHash,
        /// The hash of the block received.
        received: BlockHash,
    },
    /// The best chain kept changing while it was read.
    ChainMoving {
        /// How many walks were started.
        attempts: u32,
    },
}

impl<E: fmt::Display> fmt::Display for SyncError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SyncError::Client(e) => write!(f, "chain source: {e}"),
            SyncError::LocatorOffChain { newest, oldest } => write!(
                f,
                "no block of the locator (from {} at {} down to {} at {}) is on the server's \
                 best chain",
                newest.hash, newest.height, oldest.hash, oldest.height
            ),
            SyncError::UnknownBlock { block } => write!(
                f,
                "the parent of block {} at {} is unknown to this source and the server",
                block.hash, block.height
            ),
            SyncError::BadLocator { detail } => write!(f, "the locator is not a chain: {detail}"),
            SyncError::WrongBlock {
                height,
                expected,
                received,
            } => write!(
                f,
                "asked for block {expected} at {height}, the server answered block {received}"
            ),
            SyncError::ChainMoving { attempts } => write!(
                f,
                "the best chain changed during each of {attempts} attempts to read it"
            ),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for SyncError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SyncError::Client(e) => Some(e),
            _ => None,
        }
    }
}

/// What the walk needs from a server. `Ok(None)` means "not there" (a height above the tip, an
/// unknown hash); errors are the client's own.
pub(crate) trait BlockClient {
    /// The client's error.
    type Error;
    /// The best chain's tip.
    fn best_tip(&mut self) -> Result<BlockRef, Self::Error>;
    /// The best chain's block hash at `height`.
    fn hash_at(&mut self, height: Height) -> Result<Option<BlockHash>, Self::Error>;
    /// The header of the block `hash` (best chain or not).
    fn header(&mut self, hash: &BlockHash) -> Result<Option<Header>, Self::Error>;
    /// The full block `hash`.
    fn block(&mut self, hash: &BlockHash) -> Result<Option<bitcoin::Block>, Self::Error>;
}

/// The blocks a source delivered recently: hash → (height, parent hash).
#[derive(Clone, Debug, Default)]
pub(crate) struct Delivered {
    blocks: BTreeMap<BlockHash, (Height, BlockHash)>,
}

impl Delivered {
    fn parent_of(&self, block: &BlockRef) -> Option<BlockHash> {
        self.blocks
            .get(&block.hash)
            .filter(|(height, _)| *height == block.height)
            .map(|(_, parent)| *parent)
    }

    fn remember(&mut self, block: &Block) {
        self.blocks
            .insert(block.hash, (block.height, block.prev_hash));
    }

    fn forget_below(&mut self, tip: Height) {
        let floor = tip.saturating_sub(REMEMBERED_DEPTH);
        self.blocks.retain(|_, (height, _)| *height >= floor);
    }
}

/// The core's block for a block at `height`.
pub(crate) fn event_block(block: bitcoin::Block, height: Height) -> Block {
    Block {
        height,
        hash: block.block_hash(),
        prev_hash: block.header.prev_blockhash,
        time: block.header.time,
        txs: block.txdata.into_iter().map(RawTx).collect(),
    }
}

/// One walk's failure: fatal, or the chain moved under it (start again).
enum Failure<E> {
    Fatal(SyncError<E>),
    Moved,
}

impl<E> From<SyncError<E>> for Failure<E> {
    fn from(e: SyncError<E>) -> Self {
        Failure::Fatal(e)
    }
}

/// [`ChainSource::blocks_after`](crate::driver::ChainSource::blocks_after) over `client`: see the
/// module documentation. An empty locator yields every best-chain block from `first_height` on.
/// The connected blocks are remembered in `delivered`.
pub(crate) fn blocks_after<C: BlockClient>(
    client: &mut C,
    locator: &[BlockRef],
    first_height: Height,
    delivered: &mut Delivered,
) -> Result<Vec<Event>, SyncError<C::Error>> {
    check_locator(locator)?;
    for _ in 0..MAX_ATTEMPTS {
        match walk(client, locator, first_height, delivered) {
            Ok(events) => return Ok(events),
            Err(Failure::Fatal(e)) => return Err(e),
            Err(Failure::Moved) => continue,
        }
    }
    Err(SyncError::ChainMoving {
        attempts: MAX_ATTEMPTS,
    })
}

/// The locator's heights must strictly decrease.
fn check_locator<E>(locator: &[BlockRef]) -> Result<(), SyncError<E>> {
    match locator
        .windows(2)
        .find(|pair| pair[1].height >= pair[0].height)
    {
        Some(pair) => Err(SyncError::BadLocator {
            detail: format!(
                "entry at {} follows entry at {}",
                pair[1].height, pair[0].height
            ),
        }),
        None => Ok(()),
    }
}

fn client<T, E>(result: Result<T, E>) -> Result<T, Failure<E>> {
    result.map_err(|e| Failure::Fatal(SyncError::Client(e)))
}

fn walk<C: BlockClient>(
    client_: &mut C,
    locator: &[BlockRef],
    first_height: Height,
    delivered: &mut Delivered,
) -> Result<Vec<Event>, Failure<C::Error>> {
    let tip = client(client_.best_tip())?;
    let mut events = Vec::new();

    // 1. The fork point.
    let fork = match (locator.first(), locator.last()) {
        (Some(newest), Some(oldest)) => {
            let mut fork = None;
            for entry in locator.iter().filter(|e| e.height <= tip.height) {
                if client(client_.hash_at(entry.height))? == Some(entry.hash) {
                    fork = Some(*entry);
                    break;
                }
            }
            let fork = fork.ok_or(SyncError::LocatorOffChain {
                newest: *newest,
                oldest: *oldest,
            })?;
            // 2. The engine's blocks above it, from its tip down.
            disconnections(client_, locator, *newest, fork, delivered, &mut events)?;
            Some(fork)
        }
        _ => None,
    };

    // 3. The best chain above it, oldest first, each block linked to the one before.
    let start = fork.map_or(first_height, |f| f.height.saturating_add(1));
    let mut prev = fork.map(|f| f.hash);
    let mut connected = Vec::new();
    for height in start..=tip.height {
        let Some(hash) = client(client_.hash_at(height))? else {
            return Err(Failure::Moved);
        };
        let Some(block) = client(client_.block(&hash))? else {
            return Err(Failure::Moved);
        };
        let received = block.block_hash();
        if received != hash {
            return Err(Failure::Fatal(SyncError::WrongBlock {
                height,
                expected: hash,
                received,
            }));
        }
        if prev.is_some_and(|p| p != block.header.prev_blockhash) {
            return Err(Failure::Moved);
        }
        prev = Some(hash);
        connected.push(event_block(block, height));
    }
    for block in &connected {
        delivered.remember(block);
    }
    delivered.forget_below(tip.height);
    events.extend(connected.into_iter().map(Event::BlockConnected));
    Ok(events)
}

fn disconnections<C: BlockClient>(
    client_: &mut C,
    locator: &[BlockRef],
    newest: BlockRef,
    fork: BlockRef,
    delivered: &Delivered,
    events: &mut Vec<Event>,
) -> Result<(), Failure<C::Error>> {
    let by_height: BTreeMap<Height, BlockHash> =
        locator.iter().map(|b| (b.height, b.hash)).collect();
    let mut at = newest;
    while at.height > fork.height {
        if by_height.get(&at.height).is_some_and(|h| *h != at.hash) {
            return Err(Failure::Fatal(SyncError::BadLocator {
                detail: format!(
                    "following parents from its tip reaches {} at {}, not its entry there",
                    at.hash, at.height
                ),
            }));
        }
        events.push(Event::BlockDisconnected { block: at });
        let parent_height = at.height - 1;
        let parent = match by_height.get(&parent_height) {
            Some(hash) => *hash,
            None => match delivered.parent_of(&at) {
                Some(hash) => hash,
                None => client(client_.header(&at.hash))?
                    .map(|h| h.prev_blockhash)
                    .ok_or(SyncError::UnknownBlock { block: at })?,
            },
        };
        at = BlockRef {
            height: parent_height,
            hash: parent,
        };
    }
    if at != fork {
        return Err(Failure::Fatal(SyncError::BadLocator {
            detail: format!(
                "following parents from its tip reaches {} at {}, not the fork point {} at {}",
                at.hash, at.height, fork.hash, fork.height
            ),
        }));
    }
    Ok(())
}

/// The rejection reason of a package a server refused: its message, then each member's error
/// in package order, all as the server wrote them (`"<message>; <txid>: <error>"`).
pub(crate) fn package_rejection<'a>(
    message: &str,
    members: impl IntoIterator<Item = (bitcoin::Txid, Option<&'a str>)>,
) -> String {
    let mut reason = message.to_owned();
    for (txid, error) in members {
        if let Some(error) = error {
            reason.push_str(&format!("; {txid}: {error}"));
        }
    }
    reason
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use bitcoin::block::Version;
    use bitcoin::hashes::Hash;
    use bitcoin::{CompactTarget, TxMerkleNode};

    use super::*;

    fn block(prev: BlockHash, nonce: u32) -> bitcoin::Block {
        bitcoin::Block {
            header: Header {
                version: Version::TWO,
                prev_blockhash: prev,
                merkle_root: TxMerkleNode::all_zeros(),
                time: 0,
                bits: CompactTarget::from_consensus(0x207f_ffff),
                nonce,
            },
            txdata: Vec::new(),
        }
    }

    /// Chain A: heights 0..=5. Chain B: A's 0..=2, then its own 3..=6.
    fn chains() -> [Vec<bitcoin::Block>; 2] {
        let mut a = vec![block(BlockHash::all_zeros(), 0)];
        for _ in 1..=5 {
            let prev = a[a.len() - 1].block_hash();
            a.push(block(prev, 0));
        }
        let mut b = a[..=2].to_vec();
        for _ in 3..=6 {
            let prev = b[b.len() - 1].block_hash();
            b.push(block(prev, 1));
        }
        [a, b]
    }

    /// A server whose best chain switches between A and B after some `hash_at` calls.
    struct Fake {
        chains: [Vec<bitcoin::Block>; 2],
        active: usize,
        calls: usize,
        /// Switch to B after this many `hash_at` calls.
        switch_after: Option<usize>,
        /// Switch chains after every `hash_at` call.
        flap: bool,
        /// Answer every block request with chain B's block at the same height.
        lie: bool,
    }

    impl Fake {
        fn new() -> Fake {
            Fake {
                chains: chains(),
                active: 0,
                calls: 0,
                switch_after: None,
                flap: false,
                lie: false,
            }
        }

        fn find(&self, hash: &BlockHash) -> Option<(usize, &bitcoin::Block)> {
            self.chains
                .iter()
                .flat_map(|c| c.iter().enumerate())
                .find(|(_, b)| b.block_hash() == *hash)
        }
    }

    impl BlockClient for Fake {
        type Error = Infallible;

        fn best_tip(&mut self) -> Result<BlockRef, Infallible> {
            let chain = &self.chains[self.active];
            Ok(BlockRef {
                height: (chain.len() - 1) as Height,
                hash: chain[chain.len() - 1].block_hash(),
            })
        }

        fn hash_at(&mut self, height: Height) -> Result<Option<BlockHash>, Infallible> {
            let hash = self.chains[self.active]
                .get(height as usize)
                .map(bitcoin::Block::block_hash);
            self.calls += 1;
            if self.flap || self.switch_after == Some(self.calls) {
                self.active = 1 - self.active;
            }
            Ok(hash)
        }

        fn header(&mut self, hash: &BlockHash) -> Result<Option<Header>, Infallible> {
            Ok(self.find(hash).map(|(_, b)| b.header))
        }

        fn block(&mut self, hash: &BlockHash) -> Result<Option<bitcoin::Block>, Infallible> {
            Ok(match self.find(hash) {
                Some((height, _)) if self.lie => self.chains[1].get(height).cloned(),
                found => found.map(|(_, b)| b.clone()),
            })
        }
    }

    fn locator(chain: &[bitcoin::Block], heights: &[Height]) -> Vec<BlockRef> {
        heights
            .iter()
            .map(|h| BlockRef {
                height: *h,
                hash: chain[*h as usize].block_hash(),
            })
            .collect()
    }

    fn connected(
        chain: &[bitcoin::Block],
        heights: std::ops::RangeInclusive<Height>,
    ) -> Vec<Event> {
        heights
            .map(|h| Event::BlockConnected(event_block(chain[h as usize].clone(), h)))
            .collect()
    }

    #[test]
    fn a_reorg_while_the_blocks_are_read_starts_the_walk_again_on_the_new_chain() {
        let mut fake = Fake::new();
        // The fork point, then block 3 of A; from then on B is the best chain.
        fake.switch_after = Some(2);
        let [a, b] = chains();
        let events = blocks_after(
            &mut fake,
            &locator(&a, &[2, 1, 0]),
            0,
            &mut Delivered::default(),
        )
        .unwrap();
        assert_eq!(events, connected(&b, 3..=6));
    }

    #[test]
    fn a_chain_that_keeps_changing_is_a_typed_error_after_the_last_attempt() {
        let mut fake = Fake::new();
        fake.flap = true;
        let [a, _] = chains();
        let result = blocks_after(
            &mut fake,
            &locator(&a, &[2, 1, 0]),
            0,
            &mut Delivered::default(),
        );
        assert!(matches!(
            result,
            Err(SyncError::ChainMoving {
                attempts: MAX_ATTEMPTS
            })
        ));
    }

    #[test]
    fn a_block_that_does_not_hash_to_what_was_asked_is_a_typed_error() {
        let mut fake = Fake::new();
        fake.lie = true;
        let [a, b] = chains();
        let result = blocks_after(&mut fake, &locator(&a, &[2]), 0, &mut Delivered::default());
        match result {
            Err(SyncError::WrongBlock {
                height,
                expected,
                received,
            }) => {
                assert_eq!(height, 3);
                assert_eq!(expected, a[3].block_hash());
                assert_eq!(received, b[3].block_hash());
            }
            other => panic!("expected WrongBlock, got {other:?}"),
        }
    }

    #[test]
    fn disconnections_follow_delivered_parents_before_asking_the_server() {
        let [a, b] = chains();
        let mut fake = Fake::new();
        let mut delivered = Delivered::default();
        blocks_after(&mut fake, &[], 0, &mut delivered).unwrap();
        // The server forgets A's headers and switches to B; the locator skips 4 and 3.
        fake.active = 1;
        fake.chains[0] = b.clone();
        let events = blocks_after(&mut fake, &locator(&a, &[5, 2]), 0, &mut delivered).unwrap();
        let mut expected: Vec<Event> = locator(&a, &[5, 4, 3])
            .into_iter()
            .map(|block| Event::BlockDisconnected { block })
            .collect();
        expected.extend(connected(&b, 3..=6));
        assert_eq!(events, expected);
        // Without what it delivered, the parent of A's 5 is unknown.
        let result = blocks_after(
            &mut fake,
            &locator(&a, &[5, 2]),
            0,
            &mut Delivered::default(),
        );
        assert!(matches!(result, Err(SyncError::UnknownBlock { block }) if block.height == 5));
    }
}
