//! Sweeps that batch outputs of several channels into one transaction, end to end: the sweeper
//! batches compatible inputs whatever channel they come from, each input is signed with its own
//! channel's keys, and the batch is checked by Bitcoin Core's interpreter and the policy check,
//! confirms, and resolves every channel's output.

use std::collections::BTreeSet;

use bitcoin::{OutPoint, Transaction, Txid};
use contractcourt_core::action::{Outcome, Report, Resolution};
use contractcourt_core::bolt3::ChannelType;
use contractcourt_core::sim::SimSetup;
use contractcourt_core::types::{ChannelId, HtlcDirection, Party};
use contractcourt_tests::checks::{check_broadcasts, sweeping_config};
use contractcourt_tests::{Harness, START_HEIGHT};

/// What a miner takes from everything broadcast since `from`, newest first: each transaction
/// whose every input exists on chain and is not spent (on chain or by a newer one taken).
fn minable(h: &Harness, from: usize) -> Vec<Transaction> {
    let mut created: BTreeSet<Txid> = BTreeSet::new();
    let mut spent: BTreeSet<OutPoint> = BTreeSet::new();
    for b in &h.blocks {
        for tx in &b.txs {
            created.insert(tx.compute_txid());
            spent.extend(tx.input.iter().map(|i| i.previous_output));
        }
    }
    let mut block: Vec<Transaction> = Vec::new();
    for tx in h.broadcasts[from..].iter().rev() {
        let ok = tx.input.iter().all(|i| {
            created.contains(&i.previous_output.txid) && !spent.contains(&i.previous_output)
        });
        if ok {
            spent.extend(tx.input.iter().map(|i| i.previous_output));
            block.push(tx.clone());
        }
    }
    block
}

/// Mine `n` blocks, each taking what was broadcast since `from` (checked first), which then
/// moves on to the broadcasts of the new block; returns every transaction mined.
fn mine_broadcasts(h: &mut Harness, from: &mut usize, n: u32) -> Vec<Transaction> {
    let mut mined = Vec::new();
    for _ in 0..n {
        check_broadcasts(h, *from, &[]);
        let block = minable(h, *from);
        mined.extend(block.iter().cloned());
        *from = h.broadcasts.len();
        h.mine(block);
    }
    check_broadcasts(h, *from, &[]);
    mined
}

/// The channels whose close `tx` spends outputs of.
fn channels_spent(tx: &Transaction, closes: &[(ChannelId, Transaction)]) -> BTreeSet<ChannelId> {
    closes
        .iter()
        .filter(|(_, close)| {
            let txid = close.compute_txid();
            tx.input.iter().any(|i| i.previous_output.txid == txid)
        })
        .map(|(id, _)| *id)
        .collect()
}

/// The resolutions reported for outputs of `close`.
fn resolutions_of(h: &Harness, close: &Transaction) -> Vec<Resolution> {
    let txid = close.compute_txid();
    h.reports()
        .into_iter()
        .filter_map(|r| match r {
            Report::Resolution(x) if x.outpoint.txid == txid => Some(x.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn balances_of_three_channels_closed_by_their_peers_in_one_block_are_swept_in_one_transaction_each_input_signed_with_its_own_channels_keys(
) {
    let mut h = Harness::new(sweeping_config());
    let ids: Vec<ChannelId> = (0..3)
        .map(|i| h.open(SimSetup::new(801 + i, ChannelType::StaticRemoteKey)))
        .collect();
    let closes: Vec<(ChannelId, Transaction)> = ids
        .iter()
        .map(|id| (*id, h.sim(*id).commitment_tx(Party::Remote, 0).unwrap()))
        .collect();
    let from = h.broadcasts.len();
    h.mine(closes.iter().map(|(_, tx)| tx.clone()).collect());
    check_broadcasts(&h, from, &[]);
    let batch = h.broadcasts[from..]
        .iter()
        .rev()
        .find(|t| channels_spent(t, &closes).len() == 3)
        .cloned()
        .expect("one sweep of the three channels' balances, signed and broadcast");
    assert_eq!(batch.input.len(), 3, "our balance on each close");
    // It confirms, and each channel's balance resolves as claimed by it.
    let mut from = from;
    let mined = mine_broadcasts(&mut h, &mut from, 8);
    let batch_txid = batch.compute_txid();
    assert!(mined.iter().any(|t| t.compute_txid() == batch_txid));
    for (id, close) in &closes {
        let claimed: Vec<Resolution> = resolutions_of(&h, close)
            .into_iter()
            .filter(|r| r.outcome == Outcome::Claimed)
            .collect();
        assert_eq!(claimed.len(), 1, "channel {id}: its balance claimed");
        assert_eq!(claimed[0].channel, *id);
        assert_eq!(claimed[0].spending_txid, Some(batch_txid));
    }
}

#[test]
fn timeouts_of_outgoing_htlcs_on_two_anchors_peers_commitments_are_claimed_in_one_transaction_with_each_channels_htlc_keys(
) {
    let expiry = START_HEIGHT + 20;
    let mut h = Harness::new(sweeping_config());
    let ids: Vec<ChannelId> = (0..2)
        .map(|i| h.open(SimSetup::new(811 + i, ChannelType::AnchorsZeroFeeHtlc)))
        .collect();
    for id in &ids {
        h.with_sim(*id, |sim| {
            sim.add_htlc(HtlcDirection::Outgoing, 80_000_000, expiry)
                .unwrap();
            sim.commit().unwrap()
        });
    }
    let closes: Vec<(ChannelId, Transaction)> = ids
        .iter()
        .map(|id| (*id, h.sim(*id).commitment_tx(Party::Remote, 1).unwrap()))
        .collect();
    // Our balances (behind CSV 1) go first, then the timeouts from the HTLCs' expiry on.
    let mut from = h.broadcasts.len();
    h.mine(closes.iter().map(|(_, tx)| tx.clone()).collect());
    let blocks = expiry + 10 - h.height();
    let mined = mine_broadcasts(&mut h, &mut from, blocks);

    let htlc_outputs: Vec<OutPoint> = closes
        .iter()
        .map(|(_, close)| {
            let vout = close
                .output
                .iter()
                .position(|o| o.value.to_sat() == 80_000)
                .expect("the HTLC output");
            OutPoint {
                txid: close.compute_txid(),
                vout: u32::try_from(vout).unwrap(),
            }
        })
        .collect();
    let timeouts = mined
        .iter()
        .find(|t| {
            htlc_outputs
                .iter()
                .all(|o| t.input.iter().any(|i| i.previous_output == *o))
        })
        .cloned()
        .expect("one transaction timing out both channels' HTLCs, mined");
    assert!(timeouts.lock_time.to_consensus_u32() >= expiry);
    let balances = mined
        .iter()
        .find(|t| {
            channels_spent(t, &closes).len() == 2
                && !htlc_outputs
                    .iter()
                    .any(|o| t.input.iter().any(|i| i.previous_output == *o))
        })
        .expect("one sweep of both balances, mined");
    for (id, close) in &closes {
        let resolutions = resolutions_of(&h, close);
        let timed_out = resolutions
            .iter()
            .find(|r| r.outcome == Outcome::TimedOut)
            .unwrap_or_else(|| panic!("channel {id}: its HTLC timed out: {resolutions:?}"));
        assert_eq!(timed_out.spending_txid, Some(timeouts.compute_txid()));
        assert!(resolutions
            .iter()
            .any(|r| r.outcome == Outcome::Claimed
                && r.spending_txid == Some(balances.compute_txid())));
    }
}
