//! Zero-fee commitments (BOLT PR 1228) on the embedded chain: its mempool (Bitcoin Core's
//! script interpreter and the core's policy) refuses a version-3 commitment that pays no fee on
//! its own and a package whose child breaks TRUC, accepts it with a version-3 child spending its
//! pay-to-anchor output, and Bitcoin Core's kernel mines them; `simulate` runs the scenario
//! `zero-fee-commitments.json` with no transaction refused.

use bitcoin::transaction::Version;
use bitcoin::{Amount, FeeRate, OutPoint, ScriptBuf, Transaction};
use contractcourt_core::bolt3::scripts::{funding_script, PAY_TO_ANCHOR_SCRIPT};
use contractcourt_core::bolt3::ChannelType;
use contractcourt_core::policy::{PolicyError, TrucViolation};
use contractcourt_core::sim::{PartySecrets, SimChannel, SimSetup};
use contractcourt_core::types::Party;
use contractcourt_sync::chain::embedded::{EmbeddedChain, MempoolReject, TestWallet};

mod program;
use program::run;

/// Our signed zero-fee commitment 0 of a channel funded on `chain` by `wallet`.
fn zero_fee_commitment(chain: &mut EmbeddedChain, wallet: &TestWallet) -> Transaction {
    let mut setup = SimSetup::new(51, ChannelType::ZeroFeeCommitments);
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
    let (sim, _events) = SimChannel::open(setup).unwrap();
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
    let refused = chain.submit_package(commitment.clone(), child.clone());
    assert!(
        matches!(
            &refused,
            Err(MempoolReject::Policy(PolicyError::PackageMember { index: 1, error }))
                if **error == PolicyError::Truc(TrucViolation::NonTrucSpendsTruc)
        ),
        "{refused:?}"
    );
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

/// Re-sign every wallet input of `tx` (after a change to the transaction).
fn sign_wallet_inputs(chain: &EmbeddedChain, wallet: &TestWallet, tx: &mut Transaction) {
    for index in 0..tx.input.len() {
        let Some(prevout) = chain.prevout(&tx.input[index].previous_output) else {
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
