//! What the chain arbitrator asks for when the driver resumes it, and which channels count in
//! the fee reserve's exposure.

use bitcoin::hashes::Hash;
use bitcoin::BlockHash;

use super::exposure::exposure;
use super::{ChainArbitrator, Config};
use crate::action::Action;
use crate::bolt3::ChannelType;
use crate::event::{Block, Event};
use crate::sim::{SimChannel, SimSetup};
use crate::types::BlockRef;

fn block(height: u32, hash: u8, prev: u8) -> Event {
    Event::BlockConnected(Block {
        height,
        hash: BlockHash::from_byte_array([hash; 32]),
        prev_hash: BlockHash::from_byte_array([prev; 32]),
        time: 0,
        txs: Vec::new(),
    })
}

fn sync_requests(actions: &[Action]) -> Vec<Vec<BlockRef>> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::SyncFrom { locator } => Some(locator.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_resumed_engine_asks_to_sync_from_its_tip_only_once_it_knows_blocks() {
    let mut arb = ChainArbitrator::new(Config::default());
    let fresh = arb.step(&Event::Resumed { tip: None }).expect("resumes");
    assert_eq!(
        sync_requests(&fresh),
        Vec::<Vec<BlockRef>>::new(),
        "no block known: nothing to sync from"
    );
    arb.step(&block(100, 1, 0)).expect("first block");
    arb.step(&block(101, 2, 1)).expect("its child");
    let resumed = arb.step(&Event::Resumed { tip: None }).expect("resumes");
    let locators = sync_requests(&resumed);
    assert_eq!(locators.len(), 1, "one sync request: {resumed:?}");
    assert_eq!(
        locators[0].first().map(|b| (b.height, b.hash)),
        Some((101, BlockHash::from_byte_array([2; 32]))),
        "the locator starts at the engine's tip"
    );
}

#[test]
fn only_an_open_anchor_channel_counts_in_the_fee_reserves_exposure() {
    for (channel_type, counts) in [
        (ChannelType::StaticRemoteKey, false),
        (ChannelType::AnchorsZeroFeeHtlc, true),
    ] {
        let mut arb = ChainArbitrator::new(Config::default());
        let (_, open) = SimChannel::open(SimSetup::new(5, channel_type)).expect("opens");
        for event in &open {
            arb.step(event).expect("accepted");
        }
        let channel = arb.channels.values().next().expect("one channel");
        assert_eq!(exposure(channel).is_some(), counts, "{channel_type:?}");
    }
}
