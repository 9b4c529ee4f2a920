//! Zero-fee commitments (BOLT PR 1228) on the embedded chain: its mempool (Bitcoin Core's
//! script interpreter and the core's policy) refuses a version-3 commitment that pays no fee on
//! its own and a package whose child breaks TRUC, accepts it with a version-3 child spending its
//! pay-to-anchor output, and Bitcoin Core's kernel mines them; `simulate` runs the scenario
//! `zero-fee-commitments.json` with no transaction refused.

use bitcoin::hashes::Hash as _;
use bitcoin::transaction::Version;
use bitcoin::{Amount, FeeRate, OutPoint, ScriptBuf, Transaction};
use contractcourt_core::bolt3::scripts::{funding_script, PAY_TO_ANCHOR_SCRIPT};
use contractcourt_core::bolt3::ChannelType;
use contractcourt_core::event::Event;
use contractcourt_core::policy::{classify_reject, PolicyError, RejectClass, TrucViolation};
use contractcourt_core::sim::{PartySecrets, SimChannel, SimSetup};
use contractcourt_core::types::Party;
use contractcourt_sync::chain::embedded::{EmbeddedChain, MempoolReject, TestWallet};

mod program;
use program::run;

/// A zero-fee commitment channel (sim seed `seed`) funded on `chain` by `wallet`: the sim and
/// its opening events.
fn zero_fee_channel(
    chain: &mut EmbeddedChain,
    wallet: &TestWallet,
    seed: u64,
) -> (SimChannel, Vec<Event>) {
    let mut setup = SimSetup::new(seed, ChannelType::ZeroFeeCommitments);
    let local = PartySecrets::from_seed(&setup.seed, "local").basepoints();
    let remote = PartySecrets::from_seed(&setup.seed, "remote").basepoints();
    let script = funding_script(&local.funding_pubkey, &remote.funding_pubkey);
    let funding_tx = wallet
        .fund(
            chain,
            ScriptBuf::new_p2wsh(&script.wscript_hash()),
            Amount::from_sat(setup.funding_sat),
            FeeRate::from_sat_per_vb_u32(2),
        )
        .unwrap();
    let funding_txid = chain.submit(funding_tx).unwrap();
    chain.mine_blocks(1, wallet.script_pubkey()).unwrap();
    setup.funding_outpoint = Some(OutPoint {
        txid: funding_txid,
        vout: 0,
    });
    SimChannel::open(setup).unwrap()
}

/// Our signed zero-fee commitment 0 of a channel funded on `chain` by `wallet`.
fn zero_fee_commitment(chain: &mut EmbeddedChain, wallet: &TestWallet) -> Transaction {
    let (sim, _events) = zero_fee_channel(chain, wallet, 51);
    sim.commitment_tx(Party::Local, 0).unwrap()
}

#[test]
fn the_embedded_mempool_takes_a_zero_fee_commitment_only_with_a_truc_child_on_its_anchor() {
    let wallet = TestWallet::new(29);
    let mut chain = EmbeddedChain::new_temp().expect("kernel starts");
    chain.mine_blocks(101, wallet.script_pubkey()).unwrap();
    let commitment = zero_fee_commitment(&mut chain, &wallet);
    assert_eq!(commitment.version.0, 3);
    let anchor = commitment
        .output
        .iter()
        .position(|o| o.script_pubkey.as_bytes() == PAY_TO_ANCHOR_SCRIPT)
        .expect("shared anchor") as u32;
    // Alone: no fee.
    assert!(matches!(
        chain.submit(commitment.clone()),
        Err(MempoolReject::Policy(PolicyError::FeeBelowMinRelay {
            fee_sat: 0,
            ..
        }))
    ));
    // With a version-2 child: TRUC refuses it.
    let mut child = wallet
        .cpfp(&chain, &commitment, anchor, FeeRate::from_sat_per_vb_u32(5))
        .unwrap();
    child.version = Version::TWO;
    sign_wallet_inputs(&chain, &wallet, &mut child);
    let refused = chain
        .submit_package(commitment.clone(), child.clone())
        .unwrap_err();
    assert_truc_refusal(&refused, 1, TrucViolation::NonTrucSpendsTruc);
    // In Bitcoin Core's words (`policy/truc_policy.cpp`), classed a TRUC refusal.
    assert_eq!(
        refused.reason(),
        format!(
            "TRUC-violation, non-version=3 tx {} cannot spend from version=3 tx {}",
            ids(&child),
            ids(&commitment)
        )
    );
    assert_eq!(classify_reject(&refused.reason()), RejectClass::Truc);
    // With a version-3 child spending the anchor: accepted, and mined by Bitcoin Core.
    child.version = Version(3);
    sign_wallet_inputs(&chain, &wallet, &mut child);
    let accepted = chain
        .submit_package(commitment.clone(), child.clone())
        .unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(accepted.parent, commitment.compute_txid());
    let block = chain
        .mine_blocks(1, wallet.script_pubkey())
        .unwrap()
        .remove(0);
    let txids: Vec<_> = block.txs.iter().map(|t| t.compute_txid()).collect();
    assert_eq!(txids[1..], [accepted.parent, accepted.child]);
}

/// Core 29's `PackageTRUCChecks` (`policy/truc_policy.cpp`): a version-3 transaction has at most
/// one unconfirmed parent, the package's or the mempool's. A CPFP child of a zero-fee commitment
/// that also spends an output of a version-3 transaction waiting in the mempool is refused, in
/// Core's words; the same child without that input is accepted. A package parent with a
/// parent in the mempool cannot have its package child either.
#[test]
fn a_truc_package_child_with_a_parent_in_the_mempool_too_is_refused() {
    let wallet = TestWallet::new(33);
    let mut chain = EmbeddedChain::new_temp().expect("kernel starts");
    chain.mine_blocks(110, wallet.script_pubkey()).unwrap();
    let commitment = zero_fee_commitment(&mut chain, &wallet);
    let anchor = commitment
        .output
        .iter()
        .position(|o| o.script_pubkey.as_bytes() == PAY_TO_ANCHOR_SCRIPT)
        .expect("shared anchor") as u32;
    let waiting = truc_parent(&chain, &wallet);
    chain.submit(waiting.clone()).unwrap();
    let mut alone = wallet
        .cpfp(&chain, &commitment, anchor, FeeRate::from_sat_per_vb_u32(5))
        .unwrap();
    alone.version = Version(3);
    let mut child = alone.clone();
    sign_wallet_inputs_with(&chain, &wallet, Some(&commitment), &mut alone);
    child.input.push(bitcoin::TxIn {
        previous_output: OutPoint {
            txid: waiting.compute_txid(),
            vout: 0,
        },
        sequence: alone.input[alone.input.len() - 1].sequence,
        ..Default::default()
    });
    sign_wallet_inputs_with(&chain, &wallet, Some(&commitment), &mut child);
    let refused = chain
        .submit_package(commitment.clone(), child.clone())
        .unwrap_err();
    assert_truc_refusal(&refused, 1, TrucViolation::TooManyAncestors);
    assert_eq!(
        refused.reason(),
        format!(
            "TRUC-violation, tx {} would have too many ancestors",
            ids(&child)
        )
    );
    assert_eq!(classify_reject(&refused.reason()), RejectClass::Truc);
    assert_eq!(chain.mempool_tx(&commitment.compute_txid()), None);

    // Without the mempool input: accepted.
    let accepted = chain
        .submit_package(commitment.clone(), alone.clone())
        .unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(accepted.child, alone.compute_txid());

    // A version-3 package parent paying no fee, spending the waiting transaction: it cannot
    // have its package child as well, refused on the parent, naming the child.
    let mut parent = Transaction {
        version: Version(3),
        lock_time: bitcoin::absolute::LockTime::ZERO,
        input: vec![bitcoin::TxIn {
            previous_output: OutPoint {
                txid: waiting.compute_txid(),
                vout: 1,
            },
            ..Default::default()
        }],
        output: vec![bitcoin::TxOut {
            value: Amount::from_sat(50_000),
            script_pubkey: wallet.script_pubkey().to_owned(),
        }],
    };
    sign_wallet_inputs(&chain, &wallet, &mut parent);
    let kid = child_of(&chain, &wallet, &parent, 0, 5_000, 3);
    let refused = chain.submit_package(parent, kid.clone()).unwrap_err();
    assert_truc_refusal(&refused, 0, TrucViolation::TooManyAncestors);
    assert_eq!(
        refused.reason(),
        format!(
            "TRUC-violation, tx {} would have too many ancestors",
            ids(&kid)
        )
    );
}

/// `refused` is a TRUC refusal of package member `index` for `violation`.
fn assert_truc_refusal(refused: &MempoolReject, index: usize, violation: TrucViolation) {
    assert!(
        matches!(
            refused,
            MempoolReject::PackageMember { index: i, reject }
                if *i == index && matches!(&**reject, MempoolReject::Truc { violation: v, .. } if *v == violation)
        ),
        "{refused:?}"
    );
}

/// A transaction's txid and wtxid as Bitcoin Core's refusals name it: `<txid> (wtxid=<wtxid>)`.
fn ids(tx: &Transaction) -> String {
    format!("{} (wtxid={})", tx.compute_txid(), tx.compute_wtxid())
}

/// Re-sign every wallet input of `tx` (after a change to the transaction).
fn sign_wallet_inputs(chain: &EmbeddedChain, wallet: &TestWallet, tx: &mut Transaction) {
    sign_wallet_inputs_with(chain, wallet, None, tx);
}

/// [`sign_wallet_inputs`], with the outputs of `parent` (not in the chain or the mempool yet).
fn sign_wallet_inputs_with(
    chain: &EmbeddedChain,
    wallet: &TestWallet,
    parent: Option<&Transaction>,
    tx: &mut Transaction,
) {
    for index in 0..tx.input.len() {
        let outpoint = tx.input[index].previous_output;
        let from_parent = parent
            .filter(|p| p.compute_txid() == outpoint.txid)
            .and_then(|p| p.output.get(outpoint.vout as usize).cloned());
        let Some(prevout) = from_parent.or_else(|| chain.prevout(&outpoint)) else {
            continue;
        };
        if prevout.script_pubkey == *wallet.script_pubkey() {
            wallet.sign_input(tx, index, prevout.value).unwrap();
        }
    }
}

#[test]
fn simulate_zero_fee_commitments_confirms_the_package_and_claims_every_output() {
    let o = run(&["simulate", "--json", "scenarios/zero-fee-commitments.json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).expect("one JSON document");
    assert_eq!(
        doc["rejections"], 0,
        "every transaction accepted by the mempool"
    );
    let channels = doc["ledger"]["channels"].as_array().expect("channels");
    assert_eq!(channels[0]["state"], "fully_resolved");
    let outputs = channels[0]["outputs"].as_array().expect("outputs");
    let anchor = outputs
        .iter()
        .find(|o| o["what"] == "anchor")
        .expect("the shared anchor in the ledger");
    assert_eq!(
        anchor["status"]["status"], "recovered",
        "spent by our child"
    );
    assert!(anchor["fees_paid_sat"].as_u64() > Some(0));
    let second_level = outputs
        .iter()
        .filter(|o| o["status"]["status"] == "second_level")
        .count();
    assert_eq!(
        second_level, 2,
        "both HTLCs through zero-fee HTLC transactions"
    );
    assert_eq!(doc["ledger"]["totals"]["taken_by_peer_sat"], 0);
}

/// A version-3 transaction of `wallet` paying two 50,000-sat outputs back to it at 25 sat/vB
/// (more than any child below pays, so each child pays only for itself), signed.
fn truc_parent(chain: &EmbeddedChain, wallet: &TestWallet) -> Transaction {
    let out = bitcoin::TxOut {
        value: Amount::from_sat(50_000),
        script_pubkey: wallet.script_pubkey().to_owned(),
    };
    let mut tx = wallet
        .send(
            chain,
            vec![out.clone(), out],
            FeeRate::from_sat_per_vb_u32(25),
        )
        .unwrap();
    tx.version = Version(3);
    sign_wallet_inputs(chain, wallet, &mut tx);
    tx
}

/// A version-`version` child of `parent` spending its output `vout`, paying `rate` (sat/kwu)
/// for its own size.
fn child_of(
    chain: &EmbeddedChain,
    wallet: &TestWallet,
    parent: &Transaction,
    vout: u32,
    sat_per_kwu: u64,
    version: i32,
) -> Transaction {
    let mut tx = wallet
        .cpfp(chain, parent, vout, FeeRate::from_sat_per_kwu(sat_per_kwu))
        .unwrap();
    tx.version = Version(version);
    sign_wallet_inputs_with(chain, wallet, Some(parent), &mut tx);
    tx
}

/// Bitcoin Core's `CFeeRate(fee, vsize).ToString()` of a mempool entry, worked out here.
fn core_rate(fee_sat: u64, vsize: u64) -> String {
    format!("0.{:08} BTC/kvB", fee_sat * 1000 / vsize)
}

/// Issue 19 (Core 29 `truc_policy.cpp` `SingleTRUCChecks`, `validation.cpp` `PreChecks` and
/// `ReplacementChecks`): a version-3 parent in the mempool has one unconfirmed child; a second
/// child spending another of its outputs is considered for sibling eviction — refused unless it
/// pays a higher fee rate than the sibling and the sibling's fee plus the incremental relay fee
/// for its own size, each refusal in Core's words — and then replaces it. A non-version-3 child
/// is a TRUC violation.
#[test]
fn a_truc_parent_in_the_mempool_takes_a_second_child_only_by_sibling_eviction() {
    let wallet = TestWallet::new(31);
    let mut chain = EmbeddedChain::new_temp().expect("kernel starts");
    chain.mine_blocks(110, wallet.script_pubkey()).unwrap();
    let parent = truc_parent(&chain, &wallet);
    chain.submit(parent.clone()).unwrap();
    // The first child, 10 sat/vB (2,500 sat/kwu).
    let first = child_of(&chain, &wallet, &parent, 0, 2_500, 3);
    let first_txid = chain.submit(first.clone()).unwrap();
    let sibling = chain.mempool_tx(&first_txid).unwrap();

    // A version-2 child: TRUC refuses it, naming both.
    let v2 = child_of(&chain, &wallet, &parent, 1, 5_000, 2);
    let e = chain.submit(v2.clone()).unwrap_err();
    assert_eq!(
        e.reason(),
        format!(
            "TRUC-violation, non-version=3 tx {} cannot spend from version=3 tx {}",
            ids(&v2),
            ids(&parent)
        )
    );
    assert_eq!(classify_reject(&e.reason()), RejectClass::Truc);

    // A lower fee rate than the sibling (5 sat/vB): rule 6, with sibling eviction.
    let cheap = child_of(&chain, &wallet, &parent, 1, 1_250, 3);
    let e = chain.submit(cheap.clone()).unwrap_err();
    let expected_prefix = format!(
        "insufficient fee (including sibling eviction), rejecting replacement {}; new feerate ",
        cheap.compute_txid()
    );
    let reason = e.reason();
    assert!(reason.starts_with(&expected_prefix), "{reason}");
    assert!(
        reason.ends_with(&format!(
            " <= old feerate {}",
            core_rate(sibling.fee_sat, sibling.vsize)
        )),
        "{reason}"
    );
    assert_eq!(classify_reject(&reason), RejectClass::FeeTooLow);

    // A higher rate (10.5 sat/vB) but not the sibling's fee plus 1 sat/vB of relay: rule 4.
    let close = child_of(&chain, &wallet, &parent, 1, 2_625, 3);
    let reason = chain.submit(close.clone()).unwrap_err().reason();
    let expected = format!(
        "insufficient fee (including sibling eviction), rejecting replacement {}, not enough additional fees to relay; ",
        close.compute_txid()
    );
    assert!(reason.starts_with(&expected), "{reason}");
    assert_eq!(chain.mempool_tx(&first_txid), Some(sibling.clone()));

    // 20 sat/vB: the sibling is evicted, the new child takes its place.
    let better = child_of(&chain, &wallet, &parent, 1, 5_000, 3);
    chain.take_mempool_changes();
    let better_txid = chain.submit(better).unwrap();
    assert_eq!(chain.mempool_tx(&first_txid), None);
    assert!(chain.mempool_tx(&better_txid).is_some());
    let removed: Vec<_> = chain
        .take_mempool_changes()
        .into_iter()
        .filter(|c| {
            matches!(
                c,
                contractcourt_sync::chain::embedded::MempoolChange::Removed { .. }
            )
        })
        .collect();
    assert_eq!(removed.len(), 1, "{removed:?}");
}

/// A block for the engine alone at `height` on `prev` (the embedded chain only judges the
/// mempool here: mining would confirm what is being outbid).
fn engine_block(height: u32, prev: bitcoin::BlockHash) -> contractcourt_core::event::Block {
    use bitcoin::hashes::Hash;
    let mut bytes = [0x19; 32];
    bytes[..4].copy_from_slice(&height.to_le_bytes());
    contractcourt_core::event::Block {
        height,
        hash: bitcoin::BlockHash::from_byte_array(bytes),
        prev_hash: prev,
        time: 1_700_000_000 + height * 600,
        txs: Vec::new(),
    }
}

/// Step `event`, then answer the engine's requests against `chain` until none is left:
/// signatures from the sim's keys, packages to the embedded mempool (Core's wording on refusal).
/// Returns the refusals and the children accepted.
fn step_and_answer(
    arb: &mut contractcourt_core::chain::ChainArbitrator,
    sim: &SimChannel,
    chain: &mut EmbeddedChain,
    event: Event,
) -> (Vec<String>, Vec<Transaction>) {
    use contractcourt_core::action::Action;
    use contractcourt_core::event::BroadcastOutcome;
    let (mut refused, mut accepted) = (Vec::new(), Vec::new());
    let mut queue = std::collections::VecDeque::from([event]);
    while let Some(e) = queue.pop_front() {
        for action in arb.step(&e).unwrap() {
            match action {
                Action::Sign(req) => {
                    let outcome =
                        contractcourt_core::sim::sign_per_channel(&req, |_| Some(&sim.local));
                    queue.push_back(Event::Signed {
                        request: req.request,
                        outcome,
                    });
                }
                Action::BroadcastPackage {
                    request,
                    parent,
                    child,
                } => {
                    let outcome = match chain.submit_package(parent.0.clone(), child.0.clone()) {
                        Ok(_) => {
                            accepted.push(child.0.clone());
                            BroadcastOutcome::Accepted
                        }
                        Err(e) => {
                            refused.push(e.reason());
                            BroadcastOutcome::Rejected { reason: e.reason() }
                        }
                    };
                    queue.push_back(Event::BroadcastResult {
                        request,
                        txid: child.compute_txid(),
                        outcome,
                    });
                }
                Action::FundFromWallet(_) => panic!("our to_remote pays: no wallet funding"),
                _ => {}
            }
        }
    }
    (refused, accepted)
}

/// Issue 19: the peer's zero-fee commitment is in the mempool with a third party's child on its
/// shared anchor (8 sat/vB for the package). Our CPFP child — the anchor and our to_remote —
/// conflicts with it on the anchor: at the market's 2 sat/vB the embedded mempool refuses it in
/// Bitcoin Core's words ("insufficient fee, rejecting replacement …", classed a fee refusal),
/// and the engine bids again as its fee function rises until its child pays more (rate and
/// fee) than the one it replaces, which is evicted.
#[test]
fn the_engine_outbids_a_child_already_on_the_peers_p2a_and_bids_again_when_refused() {
    let wallet = TestWallet::new(37);
    let mut chain = EmbeddedChain::new_temp().expect("kernel starts");
    chain.mine_blocks(101, wallet.script_pubkey()).unwrap();
    let (sim, events) = zero_fee_channel(&mut chain, &wallet, 52);
    let theirs = sim.commitment_tx(Party::Remote, 0).unwrap();
    let anchor = theirs
        .output
        .iter()
        .position(|o| o.script_pubkey.as_bytes() == PAY_TO_ANCHOR_SCRIPT)
        .expect("shared anchor") as u32;
    let mut squatter = wallet
        .cpfp(&chain, &theirs, anchor, FeeRate::from_sat_per_vb_u32(8))
        .unwrap();
    squatter.version = Version(3);
    sign_wallet_inputs(&chain, &wallet, &mut squatter);
    chain
        .submit_package(theirs.clone(), squatter.clone())
        .unwrap();
    let replaced = chain.mempool_tx(&squatter.compute_txid()).unwrap();

    let config = contractcourt_core::chain::Config {
        sweep_to: Some(contractcourt_core::sweeper::SweeperConfig {
            destination: wallet.script_pubkey().to_owned(),
            fallback_feerate: FeeRate::from_sat_per_vb_u32(2),
            fee_wallet: None,
        }),
        ..contractcourt_core::chain::Config::default()
    };
    let mut arb = contractcourt_core::chain::ChainArbitrator::new(config);
    let mut block = engine_block(800, bitcoin::BlockHash::all_zeros());
    arb.step(&Event::BlockConnected(block.clone())).unwrap();
    for e in events {
        arb.step(&e).unwrap();
    }
    let market = FeeRate::from_sat_per_vb_u32(2);
    arb.step(&Event::FeeConditions(
        contractcourt_core::event::FeeConditions {
            estimates: vec![contractcourt_core::event::FeeEstimate {
                target_blocks: 1,
                feerate: market,
            }],
            mempool_min: FeeRate::from_sat_per_vb_u32(1),
            min_relay: FeeRate::from_sat_per_vb_u32(1),
            incremental_relay: FeeRate::from_sat_per_vb_u32(1),
        },
    ))
    .unwrap();
    arb.step(&Event::MempoolTx {
        tx: contractcourt_core::types::RawTx(theirs.clone()),
        fee_sat: 0,
        vsize: theirs.vsize() as u64,
    })
    .unwrap();

    let (mut refusals, mut children) = (Vec::new(), Vec::new());
    for _ in 0..100 {
        block = engine_block(block.height + 1, block.hash);
        let (r, a) = step_and_answer(
            &mut arb,
            &sim,
            &mut chain,
            Event::BlockConnected(block.clone()),
        );
        refusals.extend(r);
        children.extend(a);
        if !children.is_empty() {
            break;
        }
    }
    let first = refusals.first().expect("the first bids are refused");
    assert!(
        first.starts_with("insufficient fee, rejecting replacement "),
        "{first}"
    );
    assert_eq!(classify_reject(first), RejectClass::FeeTooLow);
    let ours = children.first().expect("a later bid is accepted");
    assert!(
        refusals.len() >= 2,
        "bid again after a refusal: {refusals:#?}"
    );
    // Ours replaced the squatter: anchor and our to_remote, no wallet input.
    assert!(chain.mempool_tx(&ours.compute_txid()).is_some());
    assert_eq!(chain.mempool_tx(&squatter.compute_txid()), None);
    assert_eq!(ours.input.len(), 2);
    assert_eq!(ours.input[0].previous_output.vout, anchor);
    // Core's replacement rules, checked here on the numbers: a higher fee rate than the child
    // replaced, and at least its fee plus 1 sat/vB (incremental relay) for our own size.
    let ours = chain.mempool_tx(&ours.compute_txid()).unwrap();
    assert!(
        u128::from(ours.fee_sat) * u128::from(replaced.vsize)
            > u128::from(replaced.fee_sat) * u128::from(ours.vsize)
    );
    assert!(ours.fee_sat >= replaced.fee_sat + ours.vsize);
}

/// Issue 19 (Core 29 `ephemeral_policy.cpp`, `validation.cpp`): a version-3 transaction with a
/// 0-sat pay-to-anchor output is refused alone when it pays a fee ("dust, tx with dust output
/// must be 0-fee"); paying none, it enters only with a child, and a child that leaves its dust
/// unspent is refused as `missing-ephemeral-spends` — each in Core's words, classed a TRUC
/// refusal.
#[test]
fn ephemeral_dust_refusals_are_worded_as_bitcoin_core_words_them() {
    let wallet = TestWallet::new(41);
    let mut chain = EmbeddedChain::new_temp().expect("kernel starts");
    chain.mine_blocks(105, wallet.script_pubkey()).unwrap();
    let keep = bitcoin::TxOut {
        value: Amount::from_sat(50_000),
        script_pubkey: wallet.script_pubkey().to_owned(),
    };
    let dust = bitcoin::TxOut {
        value: Amount::ZERO,
        script_pubkey: ScriptBuf::from_bytes(PAY_TO_ANCHOR_SCRIPT.to_vec()),
    };
    let mut parent = wallet
        .send(&chain, vec![keep, dust], FeeRate::from_sat_per_vb_u32(2))
        .unwrap();
    parent.version = Version(3);
    sign_wallet_inputs(&chain, &wallet, &mut parent);
    let e = chain.submit(parent.clone()).unwrap_err();
    assert_eq!(e.reason(), "dust, tx with dust output must be 0-fee");
    assert_eq!(classify_reject(&e.reason()), RejectClass::Truc);

    // The same parent paying nothing (its change takes the fee back), with a child that spends
    // its wallet output but not the dust.
    let inputs: u64 = parent
        .input
        .iter()
        .map(|i| chain.prevout(&i.previous_output).unwrap().value.to_sat())
        .sum();
    let others: u64 = parent.output.iter().map(|o| o.value.to_sat()).sum::<u64>()
        - parent.output.last().unwrap().value.to_sat();
    parent.output.last_mut().unwrap().value = Amount::from_sat(inputs - others);
    sign_wallet_inputs(&chain, &wallet, &mut parent);
    let child = child_of(&chain, &wallet, &parent, 0, 5_000, 3);
    let e = chain
        .submit_package(parent.clone(), child.clone())
        .unwrap_err();
    assert_eq!(
        e.reason(),
        format!(
            "missing-ephemeral-spends, tx {} did not spend parent's ephemeral dust",
            ids(&child)
        )
    );
    assert_eq!(classify_reject(&e.reason()), RejectClass::Truc);
    // Spending the dust too, the package enters.
    let anchor = parent
        .output
        .iter()
        .position(|o| o.value == Amount::ZERO)
        .unwrap() as u32;
    let child = child_of(&chain, &wallet, &parent, anchor, 5_000, 3);
    chain.submit_package(parent.clone(), child).unwrap();
    // A sibling submitted alone against the parent now in the mempool, paying well enough to
    // evict the first child but leaving the dust unspent: refused the same way.
    let sibling = child_of(&chain, &wallet, &parent, 0, 25_000, 3);
    let e = chain.submit(sibling.clone()).unwrap_err();
    assert_eq!(
        e.reason(),
        format!(
            "missing-ephemeral-spends, tx {} did not spend parent's ephemeral dust",
            ids(&sibling)
        )
    );
}
