//! The embedded regtest chain: every block validated by Bitcoin Core's kernel, a mempool in
//! front of it, real reorgs, and a test wallet.

use bitcoin::hashes::Hash;
use bitcoin::sighash::EcdsaSighashType;
use bitcoin::{absolute, Amount, BlockHash, FeeRate, OutPoint, ScriptBuf, Transaction, TxOut};
use contractcourt_core::bolt3::commitment::OutputKind;
use contractcourt_core::bolt3::scripts::funding_script;
use contractcourt_core::bolt3::sign::sign_p2wsh;
use contractcourt_core::bolt3::witness::{build_claim_tx, to_local_delayed_witness, ClaimPath};
use contractcourt_core::bolt3::ChannelType;
use contractcourt_core::event::{Event, MempoolRemovalReason};
use contractcourt_core::policy::PolicyError;
use contractcourt_core::sim::{PartySecrets, SimChannel, SimSetup};
use contractcourt_core::types::Party;
use contractcourt_sync::chain::embedded::{
    block_subsidy, BlockRejectReason, ChainError, ChainUpdate, EmbeddedChain, MempoolChange,
    MempoolReject, TestWallet,
};

fn rate(sat_per_vb: u32) -> FeeRate {
    FeeRate::from_sat_per_vb_u32(sat_per_vb)
}

/// A P2WPKH script of another wallet, to pay to.
fn elsewhere(seed: u64) -> ScriptBuf {
    TestWallet::new(seed).script_pubkey().to_owned()
}

/// A chain with 101 blocks mined to `wallet`: the first two coinbases are spendable.
fn funded_chain(wallet: &TestWallet) -> EmbeddedChain {
    let mut chain = EmbeddedChain::new_temp().expect("kernel starts");
    chain
        .mine_blocks(101, wallet.script_pubkey())
        .expect("101 blocks");
    chain
}

fn assert_block_refused(
    result: Result<impl std::fmt::Debug, ChainError>,
) -> BlockRejectReasonAndSuspect {
    match result {
        Err(ChainError::BlockRejected(rejection)) => BlockRejectReasonAndSuspect {
            reason: rejection.reason,
            suspect: rejection.suspect.map(|s| (s.index, s.reason)),
        },
        other => panic!("expected bitcoin core to refuse the block, got {other:?}"),
    }
}

struct BlockRejectReasonAndSuspect {
    reason: BlockRejectReason,
    suspect: Option<(usize, MempoolReject)>,
}

#[test]
fn mining_101_blocks_matures_a_coinbase_spent_through_the_mempool_into_a_block() {
    let wallet = TestWallet::new(1);
    let mut chain = EmbeddedChain::new_temp().unwrap();
    let genesis = chain.tip();
    assert_eq!(genesis.height, 0);

    let blocks = chain.mine_blocks(101, wallet.script_pubkey()).unwrap();
    assert_eq!(blocks.len(), 101);
    assert_eq!(blocks[0].prev_hash, genesis.hash);
    for (i, pair) in blocks.windows(2).enumerate() {
        assert_eq!(pair[1].prev_hash, pair[0].hash);
        assert_eq!(pair[1].height, i as u32 + 2);
        assert!(
            pair[1].time > pair[0].time,
            "header time strictly increases"
        );
    }
    assert_eq!(chain.tip().height, 101);
    assert_eq!(chain.tip().hash, blocks[100].hash);
    // Coinbases of heights 1 and 2 are mature at height 102.
    assert_eq!(wallet.utxos(&chain).len(), 2);

    let tx = wallet
        .fund(
            &chain,
            elsewhere(2),
            Amount::from_btc(1.0).unwrap(),
            rate(2),
        )
        .unwrap();
    let txid = chain.submit(tx.clone()).unwrap();
    let entry = chain
        .mempool_txs()
        .into_iter()
        .find(|e| e.txid == txid)
        .unwrap();
    let inputs: u64 = tx
        .input
        .iter()
        .map(|i| chain.utxo(&i.previous_output).unwrap().txout.value.to_sat())
        .sum();
    let outputs: u64 = tx.output.iter().map(|o| o.value.to_sat()).sum();
    assert_eq!(entry.fee_sat, inputs - outputs);
    assert_eq!(entry.vsize, tx.vsize() as u64);
    assert!(entry.fee_sat >= 2 * entry.vsize);
    assert!(
        matches!(entry.to_event(), Event::MempoolTx { fee_sat, .. } if fee_sat == entry.fee_sat)
    );

    let block = chain
        .mine_blocks(1, wallet.script_pubkey())
        .unwrap()
        .remove(0);
    assert_eq!(block.height, 102);
    assert_eq!(block.txs.len(), 2);
    assert_eq!(block.txs[1].compute_txid(), txid);
    assert_eq!(
        block.txs[0].output[0].value,
        block_subsidy(102) + Amount::from_sat(entry.fee_sat),
        "the coinbase claims the subsidy plus the fee"
    );
    assert_eq!(chain.tx_confirmation_height(&txid), Some(102));
    assert!(chain.mempool_txs().is_empty());
    let paid = OutPoint { txid, vout: 0 };
    assert_eq!(chain.utxo(&paid).unwrap().height, 102);
    assert_eq!(chain.block_at(102), Some(block));
    let changes = chain.take_mempool_changes();
    assert!(changes.contains(&MempoolChange::Removed {
        txid,
        reason: MempoolRemovalReason::Confirmed
    }));
}

#[test]
fn immature_coinbase_spend_is_rejected_by_mempool_and_bitcoin_core() {
    let wallet = TestWallet::new(3);
    let mut chain = EmbeddedChain::new_temp().unwrap();
    chain.mine_blocks(99, wallet.script_pubkey()).unwrap();
    assert!(
        wallet.utxos(&chain).is_empty(),
        "nothing is mature at height 100"
    );

    // Spend the coinbase of block 1 by hand (the wallet only offers mature coins).
    let coinbase = chain.block_at(1).unwrap().txs[0].compute_txid();
    let outpoint = OutPoint {
        txid: coinbase,
        vout: 0,
    };
    let value = chain.utxo(&outpoint).unwrap().txout.value;
    let mut tx = Transaction {
        version: bitcoin::transaction::Version::TWO,
        lock_time: absolute::LockTime::ZERO,
        input: vec![bitcoin::TxIn {
            previous_output: outpoint,
            ..Default::default()
        }],
        output: vec![TxOut {
            value: value - Amount::from_sat(1_000),
            script_pubkey: elsewhere(4),
        }],
    };
    wallet.sign_input(&mut tx, 0, value).unwrap();

    assert_eq!(
        chain.submit(tx.clone()),
        Err(MempoolReject::ImmatureCoinbase {
            input: 0,
            confirmed_at: 1,
            spendable_at: 101
        })
    );
    let tip = chain.tip();
    let refused =
        assert_block_refused(chain.mine_block_with(vec![tx.clone()], wallet.script_pubkey()));
    assert_eq!(refused.reason, BlockRejectReason::Consensus);
    assert!(matches!(
        refused.suspect,
        Some((1, MempoolReject::ImmatureCoinbase { .. }))
    ));
    assert_eq!(chain.tip(), tip, "the tip did not move");

    // One block later the coinbase has 100 confirmations at the next height.
    chain.mine_blocks(1, wallet.script_pubkey()).unwrap();
    let txid = chain.submit(tx).unwrap();
    chain.mine_blocks(1, wallet.script_pubkey()).unwrap();
    assert_eq!(chain.tx_confirmation_height(&txid), Some(101));
}

#[test]
fn bad_signature_is_rejected_by_mempool_and_its_block_refused_by_bitcoin_core() {
    let wallet = TestWallet::new(5);
    let mut chain = funded_chain(&wallet);
    let good = wallet
        .fund(&chain, elsewhere(6), Amount::from_sat(100_000), rate(2))
        .unwrap();
    let mut bad = good.clone();
    let mut items: Vec<Vec<u8>> = bad.input[0].witness.iter().map(<[u8]>::to_vec).collect();
    // Flip a bit inside the signature's r value: still DER, no longer valid.
    items[0][10] ^= 0x01;
    bad.input[0].witness = bitcoin::Witness::from_slice(&items);

    assert!(matches!(
        chain.submit(bad.clone()),
        Err(MempoolReject::ScriptFailure { input: 0, .. })
    ));
    let tip = chain.tip();
    let refused = assert_block_refused(chain.mine_block_with(vec![bad], wallet.script_pubkey()));
    assert_eq!(refused.reason, BlockRejectReason::Consensus);
    assert!(matches!(
        refused.suspect,
        Some((1, MempoolReject::ScriptFailure { input: 0, .. }))
    ));
    assert_eq!(chain.tip(), tip, "the tip did not move");

    // The correctly signed transaction goes through the same block path.
    let block = chain
        .mine_block_with(vec![good.clone()], wallet.script_pubkey())
        .unwrap();
    assert_eq!(block.height, tip.height + 1);
    assert_eq!(
        chain.tx_confirmation_height(&good.compute_txid()),
        Some(block.height)
    );
}

#[test]
fn csv_locked_to_local_of_a_sim_channel_is_refused_early_and_accepted_after_to_self_delay() {
    const DELAY: u16 = 10;
    let wallet = TestWallet::new(7);
    let mut chain = funded_chain(&wallet);

    // Fund the channel's 2-of-2 P2WSH output from the wallet.
    let mut setup = SimSetup::new(42, ChannelType::StaticRemoteKey);
    setup.local_to_self_delay = DELAY;
    let local = PartySecrets::from_seed(&setup.seed, "local").basepoints();
    let remote = PartySecrets::from_seed(&setup.seed, "remote").basepoints();
    let script = funding_script(&local.funding_pubkey, &remote.funding_pubkey);
    let funding_tx = wallet
        .fund(
            &chain,
            ScriptBuf::new_p2wsh(&script.wscript_hash()),
            Amount::from_sat(setup.funding_sat),
            rate(2),
        )
        .unwrap();
    let funding_txid = chain.submit(funding_tx).unwrap();
    chain.mine_blocks(1, wallet.script_pubkey()).unwrap();
    setup.funding_outpoint = Some(OutPoint {
        txid: funding_txid,
        vout: 0,
    });
    let (sim, _events) = SimChannel::open(setup).unwrap();

    // Broadcast our commitment and confirm it.
    let commitment = sim.commitment_tx(Party::Local, 0).unwrap();
    let commitment_txid = chain.submit(commitment).unwrap();
    let confirmed = chain.mine_blocks(1, wallet.script_pubkey()).unwrap()[0].height;
    assert_eq!(
        chain.tx_confirmation_height(&commitment_txid),
        Some(confirmed)
    );

    // Sweep to_local with the delayed key: nSequence = to_self_delay.
    let built = sim.built_commitment(Party::Local, 0).unwrap();
    let to_local = built
        .outputs
        .iter()
        .find(|o| o.kind == OutputKind::ToLocal)
        .unwrap();
    let witness_script = to_local.witness_script.clone().unwrap();
    let point = sim
        .commitment_spec(Party::Local, 0)
        .unwrap()
        .keys
        .per_commitment_point;
    let delayed_key = sim.local.delayed_payment_key(&point).unwrap();
    let value = Amount::from_sat(to_local.value_sat);
    let mut sweep = build_claim_tx(
        OutPoint {
            txid: commitment_txid,
            vout: to_local.index,
        },
        &ClaimPath::ToLocalDelayed {
            to_self_delay: DELAY,
        },
        wallet.script_pubkey().to_owned(),
        value - Amount::from_sat(1_000),
    );
    let sig = sign_p2wsh(
        &sweep,
        0,
        &witness_script,
        value,
        EcdsaSighashType::All,
        &delayed_key,
    )
    .unwrap();
    sweep.input[0].witness = to_local_delayed_witness(&sig, &witness_script);

    // Spendable in the block at confirmed + DELAY; mine up to one block short of that.
    let spendable_at = confirmed + u32::from(DELAY);
    chain
        .mine_blocks(spendable_at - 2 - chain.height(), wallet.script_pubkey())
        .unwrap();
    assert_eq!(chain.height() + 1, spendable_at - 1);
    assert!(matches!(
        chain.submit(sweep.clone()),
        Err(MempoolReject::Bip68NotMet(
            PolicyError::RelativeLockNotReached {
                input: 0,
                blocks: DELAY,
                ..
            }
        ))
    ));
    let tip = chain.tip();
    let refused =
        assert_block_refused(chain.mine_block_with(vec![sweep.clone()], wallet.script_pubkey()));
    assert_eq!(refused.reason, BlockRejectReason::Consensus);
    assert!(matches!(
        refused.suspect,
        Some((1, MempoolReject::Bip68NotMet(_)))
    ));
    assert_eq!(chain.tip(), tip, "bitcoin core refused the early sweep");

    chain.mine_blocks(1, wallet.script_pubkey()).unwrap();
    let txid = chain.submit(sweep).unwrap();
    let block = chain
        .mine_blocks(1, wallet.script_pubkey())
        .unwrap()
        .remove(0);
    assert_eq!(block.height, spendable_at);
    assert_eq!(chain.tx_confirmation_height(&txid), Some(spendable_at));
}

#[test]
fn nlocktime_in_the_future_is_non_final_for_mempool_and_bitcoin_core() {
    let wallet = TestWallet::new(8);
    let mut chain = funded_chain(&wallet);
    let mut tx = wallet
        .fund(&chain, elsewhere(9), Amount::from_sat(50_000), rate(2))
        .unwrap();
    // Final only in a block above the lock time: not in the next block.
    let next = chain.height() + 1;
    tx.lock_time = absolute::LockTime::from_height(next).unwrap();
    let value = chain
        .utxo(&tx.input[0].previous_output)
        .unwrap()
        .txout
        .value;
    wallet.sign_input(&mut tx, 0, value).unwrap();

    assert!(matches!(
        chain.submit(tx.clone()),
        Err(MempoolReject::NonFinal(
            PolicyError::LockTimeNotReached { .. }
        ))
    ));
    let refused =
        assert_block_refused(chain.mine_block_with(vec![tx.clone()], wallet.script_pubkey()));
    assert_eq!(refused.reason, BlockRejectReason::Consensus);
    assert_eq!(chain.height() + 1, next);

    chain.mine_blocks(1, wallet.script_pubkey()).unwrap();
    chain.submit(tx).unwrap();
}

#[test]
fn double_spend_in_one_block_is_refused_by_bitcoin_core() {
    let wallet = TestWallet::new(10);
    let mut chain = funded_chain(&wallet);
    let first = wallet
        .fund(&chain, elsewhere(11), Amount::from_sat(70_000), rate(2))
        .unwrap();
    let second = wallet
        .fund(&chain, elsewhere(12), Amount::from_sat(80_000), rate(2))
        .unwrap();
    assert_eq!(
        first.input[0].previous_output,
        second.input[0].previous_output
    );

    let tip = chain.tip();
    let refused = assert_block_refused(
        chain.mine_block_with(vec![first.clone(), second.clone()], wallet.script_pubkey()),
    );
    assert_eq!(refused.reason, BlockRejectReason::Consensus);
    assert!(matches!(
        refused.suspect,
        Some((2, MempoolReject::MissingInputs { .. }))
    ));
    assert_eq!(chain.tip(), tip);

    chain
        .mine_block_with(vec![first.clone()], wallet.script_pubkey())
        .unwrap();
    // Spent in the chain now: the other spend is missing its input.
    assert!(matches!(
        chain.submit(second),
        Err(MempoolReject::MissingInputs { .. })
    ));
}

/// Recompute the merkle root and grind the nonce again after editing a block.
fn remine(block: &mut bitcoin::Block) {
    block.header.merkle_root = block.compute_merkle_root().unwrap();
    let target = block.header.target();
    while !target.is_met_by(block.header.block_hash()) {
        block.header.nonce += 1;
    }
}

#[test]
fn coinbase_overpaying_or_mutated_block_is_refused_by_bitcoin_core() {
    let wallet = TestWallet::new(25);
    let mut chain = funded_chain(&wallet);
    let tip = chain.tip();

    // One satoshi more than subsidy plus fees: only the kernel's amount check catches it.
    let mut greedy = chain.build_block(vec![], wallet.script_pubkey()).unwrap();
    greedy.txdata[0].output[0].value += Amount::from_sat(1);
    remine(&mut greedy);
    match chain.submit_block(&greedy) {
        Err(ChainError::BlockRejected(rejection)) => {
            assert_eq!(rejection.reason, BlockRejectReason::Consensus);
            assert_eq!(rejection.height, tip.height + 1);
            assert_eq!(rejection.suspect, None, "no transaction is at fault");
        }
        other => panic!("expected the overpaying coinbase to be refused, got {other:?}"),
    }

    // A header whose merkle root does not match the transactions.
    let mut mutated = chain.build_block(vec![], wallet.script_pubkey()).unwrap();
    mutated.header.merkle_root = bitcoin::TxMerkleNode::all_zeros();
    while !mutated
        .header
        .target()
        .is_met_by(mutated.header.block_hash())
    {
        mutated.header.nonce += 1;
    }
    assert!(matches!(
        chain.submit_block(&mutated),
        Err(ChainError::BlockRejected(r)) if r.reason == BlockRejectReason::Mutated
    ));
    assert_eq!(chain.tip(), tip);

    // The untouched block is fine.
    let good = chain.build_block(vec![], wallet.script_pubkey()).unwrap();
    let updates = chain.submit_block(&good).unwrap();
    assert!(matches!(&updates[..], [ChainUpdate::Connected(b)] if b.hash == good.block_hash()));
}

#[test]
fn rbf_with_higher_fee_replaces_and_lower_fee_is_refused() {
    let wallet = TestWallet::new(13);
    let mut chain = funded_chain(&wallet);
    let amount = Amount::from_sat(60_000);
    // All built before any is submitted, so all spend the same coin.
    let original = wallet.fund(&chain, elsewhere(14), amount, rate(2)).unwrap();
    let lower = wallet.fund(&chain, elsewhere(15), amount, rate(1)).unwrap();
    let barely_higher = wallet
        .fund(
            &chain,
            elsewhere(16),
            amount,
            FeeRate::from_sat_per_kwu(625),
        )
        .unwrap();
    let higher = wallet
        .fund(&chain, elsewhere(17), amount, rate(10))
        .unwrap();

    let original_txid = chain.submit(original).unwrap();
    assert!(matches!(
        chain.submit(lower),
        Err(MempoolReject::ReplacementFeeRateTooLow { conflict, .. }) if conflict == original_txid
    ));
    // A higher fee rate, but not the incremental relay fee on top of the replaced fee.
    assert!(matches!(
        chain.submit(barely_higher),
        Err(MempoolReject::InsufficientReplacementFee { .. })
    ));
    assert!(chain.mempool_tx(&original_txid).is_some());

    let higher_txid = chain.submit(higher).unwrap();
    let mempool: Vec<_> = chain.mempool_txs().iter().map(|e| e.txid).collect();
    assert_eq!(mempool, vec![higher_txid]);
    assert!(chain
        .take_mempool_changes()
        .contains(&MempoolChange::Removed {
            txid: original_txid,
            reason: MempoolRemovalReason::Replaced {
                by: Some(higher_txid)
            }
        }));

    chain.mine_blocks(1, wallet.script_pubkey()).unwrap();
    assert_eq!(chain.tx_confirmation_height(&higher_txid), Some(102));
    assert_eq!(chain.tx_confirmation_height(&original_txid), None);
}

#[test]
fn reorg_to_a_heavier_fork_switches_bitcoin_core_and_returns_orphaned_tx_to_mempool() {
    let wallet = TestWallet::new(18);
    let mut chain = funded_chain(&wallet);
    let tx = wallet
        .fund(&chain, elsewhere(19), Amount::from_sat(90_000), rate(3))
        .unwrap();
    let txid = chain.submit(tx).unwrap();
    let orphaned = chain
        .mine_blocks(1, wallet.script_pubkey())
        .unwrap()
        .remove(0);
    assert_eq!(chain.tx_confirmation_height(&txid), Some(102));
    chain.take_mempool_changes();

    // A two-block fork from tip - 1, without the transaction.
    let updates = chain
        .reorg(101, vec![vec![], vec![]], &elsewhere(20))
        .unwrap();
    assert_eq!(updates.len(), 3);
    assert_eq!(
        updates[0],
        ChainUpdate::Disconnected(contractcourt_core::types::BlockRef {
            height: 102,
            hash: orphaned.hash
        })
    );
    let (ChainUpdate::Connected(a), ChainUpdate::Connected(b)) = (&updates[1], &updates[2]) else {
        panic!("expected two connections, got {updates:?}");
    };
    assert_eq!((a.height, b.height), (102, 103));
    assert_eq!(a.prev_hash, orphaned.prev_hash);
    assert_eq!(b.prev_hash, a.hash);
    assert_ne!(a.hash, orphaned.hash);
    assert!(matches!(
        updates[0].to_event(),
        Event::BlockDisconnected { .. }
    ));
    assert!(matches!(updates[2].to_event(), Event::BlockConnected(ref blk) if blk.height == 103));

    // Bitcoin Core switched: the tip is the fork's, block 102 is the fork's.
    assert_eq!(chain.tip().hash, b.hash);
    assert_eq!(chain.block_hash_at(102), Some(a.hash));
    // The orphaned transaction is back in the mempool, unconfirmed.
    assert_eq!(chain.tx_confirmation_height(&txid), None);
    assert!(chain.mempool_tx(&txid).is_some());
    assert!(chain
        .take_mempool_changes()
        .iter()
        .any(|c| matches!(c, MempoolChange::Added(e) if e.txid == txid)));

    // And confirms again on the new chain.
    chain.mine_blocks(1, wallet.script_pubkey()).unwrap();
    assert_eq!(chain.tx_confirmation_height(&txid), Some(104));
}

#[test]
fn fork_with_an_invalid_block_is_refused_and_the_chain_stays() {
    let wallet = TestWallet::new(21);
    let mut chain = funded_chain(&wallet);
    chain.mine_blocks(1, wallet.script_pubkey()).unwrap();
    let mut bad = wallet
        .fund(&chain, elsewhere(22), Amount::from_sat(90_000), rate(3))
        .unwrap();
    bad.output[0].value = Amount::from_sat(85_000); // the signature no longer matches
    let tip = chain.tip();
    // Fork from tip - 1: the bad spend in the first fork block, then one more block.
    match chain.reorg(101, vec![vec![bad], vec![]], wallet.script_pubkey()) {
        Err(ChainError::ForkRejected { rejection, applied }) => {
            assert_eq!(rejection.height, 102);
            assert_eq!(rejection.reason, BlockRejectReason::Consensus);
            assert!(matches!(
                rejection.suspect.map(|s| s.reason),
                Some(MempoolReject::ScriptFailure { .. })
            ));
            assert!(
                applied.is_empty(),
                "bitcoin core stayed on its chain: {applied:?}"
            );
        }
        other => panic!("expected the fork to be refused, got {other:?}"),
    }
    assert_eq!(chain.tip(), tip);
    assert!(matches!(
        chain.reorg(101, vec![vec![]], wallet.script_pubkey()),
        Err(ChainError::ForkNotHeavier { .. })
    ));
}

#[test]
fn cpfp_package_of_a_zero_fee_parent_and_a_child_is_accepted() {
    let wallet = TestWallet::new(23);
    let mut chain = funded_chain(&wallet);
    let parent = wallet
        .send(
            &chain,
            vec![TxOut {
                value: Amount::from_btc(1.0).unwrap(),
                script_pubkey: wallet.script_pubkey().to_owned(),
            }],
            FeeRate::ZERO,
        )
        .unwrap();
    assert!(matches!(
        chain.submit(parent.clone()),
        Err(MempoolReject::Policy(PolicyError::FeeBelowMinRelay {
            fee_sat: 0,
            ..
        }))
    ));

    let stingy = wallet.cpfp(&chain, &parent, 0, FeeRate::ZERO).unwrap();
    assert!(matches!(
        chain.submit_package(parent.clone(), stingy),
        Err(MempoolReject::Policy(
            PolicyError::PackageFeeBelowMinRelay { .. }
        ))
    ));

    let child = wallet.cpfp(&chain, &parent, 0, rate(5)).unwrap();
    let accepted = chain.submit_package(parent.clone(), child.clone()).unwrap();
    assert_eq!(accepted.parent, parent.compute_txid());
    assert_eq!(accepted.child, child.compute_txid());
    let parent_entry = chain.mempool_tx(&accepted.parent).unwrap();
    let child_entry = chain.mempool_tx(&accepted.child).unwrap();
    assert_eq!(parent_entry.fee_sat, 0);
    assert!(child_entry.fee_sat >= 5 * (parent_entry.vsize + child_entry.vsize));

    let block = chain
        .mine_blocks(1, wallet.script_pubkey())
        .unwrap()
        .remove(0);
    let txids: Vec<_> = block.txs.iter().map(|t| t.compute_txid()).collect();
    assert_eq!(txids[1..], [accepted.parent, accepted.child]);
}

fn scenario() -> Vec<BlockHash> {
    let wallet = TestWallet::new(99);
    let mut chain = funded_chain(&wallet);
    let tx = wallet
        .fund(&chain, elsewhere(98), Amount::from_sat(12_345), rate(4))
        .unwrap();
    chain.submit(tx.clone()).unwrap();
    chain.mine_blocks(2, wallet.script_pubkey()).unwrap();
    chain
        .reorg(101, vec![vec![tx], vec![], vec![]], wallet.script_pubkey())
        .unwrap();
    (0..=chain.height())
        .map(|h| chain.block_hash_at(h).unwrap())
        .collect()
}

#[test]
fn two_chains_from_the_same_seeds_produce_identical_block_hashes() {
    let first = scenario();
    assert_eq!(first.len(), 105);
    assert_eq!(first, scenario());
    assert!(first.iter().all(|h| *h != BlockHash::all_zeros()));
}

#[test]
fn reopening_a_data_directory_restores_the_chain_from_the_kernel() {
    let dir = std::env::temp_dir().join(format!(
        "contractcourt-embedded-chain-reopen-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let wallet = TestWallet::new(24);
    let (tip, coinbase) = {
        let mut chain = EmbeddedChain::new(&dir).unwrap();
        let blocks = chain.mine_blocks(5, wallet.script_pubkey()).unwrap();
        (chain.tip(), blocks[2].txs[0].compute_txid())
    };
    let reopened = EmbeddedChain::new(&dir).unwrap();
    assert_eq!(reopened.tip(), tip);
    assert_eq!(
        reopened
            .utxo(&OutPoint {
                txid: coinbase,
                vout: 0
            })
            .map(|u| (u.height, u.is_coinbase)),
        Some((3, true))
    );
    drop(reopened);
    let _ = std::fs::remove_dir_all(&dir);
}
