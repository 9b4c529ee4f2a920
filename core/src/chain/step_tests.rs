//! The chain arbitrator's step alone, on `sim` channels: what it asks for when the driver resumes
//! it, which channels count in the fee reserve's exposure, and the claims a close hands the
//! sweeper.

use bitcoin::hashes::Hash;
use bitcoin::{BlockHash, FeeRate, ScriptBuf, WPubkeyHash};

use super::exposure::exposure;
use super::{ChainArbitrator, Config};
use crate::action::Action;
use crate::bolt3::ChannelType;
use crate::event::{Block, Event};
use crate::sim::{SimChannel, SimSetup};
use crate::sweeper::SweeperConfig;
use crate::types::{BlockRef, Party, RawTx};

fn block(height: u32, hash: u8, prev: u8) -> Event {
    block_with(height, hash, prev, Vec::new())
}

fn block_with(height: u32, hash: u8, prev: u8, txs: Vec<RawTx>) -> Event {
    Event::BlockConnected(Block {
        height,
        hash: BlockHash::from_byte_array([hash; 32]),
        prev_hash: BlockHash::from_byte_array([prev; 32]),
        time: 0,
        txs,
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

#[test]
fn a_confirmed_close_hands_the_sweeper_a_claim_for_our_balance_and_none_without_a_destination() {
    for (sweep_to, claims) in [(true, 1), (false, 0)] {
        let mut config = Config::default();
        if sweep_to {
            config.sweep_to = Some(SweeperConfig {
                destination: ScriptBuf::new_p2wpkh(&WPubkeyHash::from_byte_array([7; 20])),
                fallback_feerate: FeeRate::from_sat_per_kwu(1_000),
                fee_wallet: None,
            });
        }
        let mut arb = ChainArbitrator::new(config);
        let (sim, open) =
            SimChannel::open(SimSetup::new(5, ChannelType::StaticRemoteKey)).expect("opens");
        for event in &open {
            arb.step(event).expect("accepted");
        }
        // The peer's commitment, without HTLCs: our `to_remote` is the one output we claim.
        let n = sim.remote_commitment_number();
        let theirs = sim
            .commitment_tx(Party::Remote, n)
            .expect("their commitment");
        arb.step(&block(100, 1, 0)).expect("a block");
        arb.step(&block_with(101, 2, 1, vec![RawTx(theirs)]))
            .expect("the close");
        assert_eq!(
            arb.sweeper.claims().len(),
            claims,
            "sweep_to set: {sweep_to}"
        );
    }
}
