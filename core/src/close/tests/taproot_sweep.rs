//! The taproot commitment sweep (`resolver::taproot_sweep`) of our balance on closes classified
//! by `close::taproot`: signed by the simulated signer, the witness classified as its leaf, the
//! signature verified independently, the weight and fee checked against hand-derived numbers.

use bitcoin::hashes::Hash;
use bitcoin::{FeeRate, ScriptBuf, Sequence, Transaction, WPubkeyHash};

use super::taproot::{classify, output_key, secrets, tap_tx, taproot_world};
use super::taproot_sign::verified;
use crate::bolt3::taproot::classify::{classify_witness, TaprootSpendKind};
use crate::close::taproot::{TaprootContract, TaprootOutput};
use crate::resolver::taproot_sweep::{
    taproot_commit_sweep, taproot_second_level_sweep, TaprootSweepError,
};
use crate::types::{ClaimId, Party, RequestId};

const RATE: FeeRate = FeeRate::from_sat_per_kwu(2_500); // 10 sat/vB

fn destination() -> ScriptBuf {
    ScriptBuf::new_p2wpkh(&WPubkeyHash::from_byte_array([4; 20]))
}

fn find(contracts: &[TaprootContract], f: impl Fn(&TaprootContract) -> bool) -> &TaprootContract {
    contracts.iter().find(|c| f(c)).expect("such an output")
}

/// Sweep `c` of `close` with our sim keys; the signed transaction.
fn swept(
    w: &super::World,
    close: &Transaction,
    c: &TaprootContract,
    expect_csv: u16,
) -> Transaction {
    let sweep = taproot_commit_sweep(w.data.info.id, close, 800, c).unwrap();
    assert_eq!(sweep.sequence, Sequence::from_height(expect_csv));
    assert_eq!(sweep.mature_at, 800 + u32::from(expect_csv));
    let tx = sweep.tx(destination(), RATE).unwrap();
    let request = sweep.sign_request(
        RequestId {
            claim: ClaimId(3),
            attempt: 0,
        },
        &tx,
    );
    let outcome = secrets(w, Party::Local).sign_taproot(&request);
    let x_only = bitcoin::XOnlyPublicKey::from_slice(&sweep.leaf.leaf.as_bytes()[1..33]).unwrap();
    verified(&request, outcome.clone(), x_only);
    let crate::action::TaprootSignOutcome::Signed { signatures } = outcome else {
        unreachable!()
    };
    let signed = sweep.finish(tx.clone(), &signatures[0].signature);
    // Weight: the maximum counts a 65-byte signature and, for `to_local`, `to_self_delay` at its
    // largest push (opcode + 3 bytes); ours is 64 bytes and 144 takes opcode + 2 bytes.
    let actual = signed.weight().to_wu();
    let slack = if expect_csv == 1 { 1 } else { 2 };
    assert_eq!(sweep.max_weight(&tx), actual + slack);
    // Fee: 10 sat/vB on the maximum weight, rounded up to whole vbytes.
    let fee = c.value_sat - signed.output[0].value.to_sat();
    assert_eq!(fee, (actual + slack).div_ceil(4) * 10);
    assert_eq!(signed.input[0].previous_output.txid, close.compute_txid());
    assert_eq!(
        output_key(&sweep.prevout.script_pubkey),
        output_key(&close.output[c.vout as usize].script_pubkey)
    );
    signed
}

#[test]
fn our_taproot_to_local_is_swept_by_its_delay_leaf_after_to_self_delay() {
    let (w, _) = taproot_world(51);
    let close = tap_tx(&w, Party::Local, w.sim.local_commitment_number());
    let contracts = classify(&w, &close, None).contracts;
    let c = find(&contracts, |c| {
        matches!(c.output, TaprootOutput::ToLocal { .. })
    });
    let signed = swept(&w, &close, c, 144);
    assert_eq!(
        classify_witness(&signed.input[0].witness),
        Ok(TaprootSpendKind::ToLocalDelay { to_self_delay: 144 })
    );
    // Neither the peer's balance nor an anchor nor an HTLC is a commitment sweep of ours.
    for other in contracts.iter().filter(|o| o.vout != c.vout) {
        assert_eq!(
            taproot_commit_sweep(w.data.info.id, &close, 800, other),
            Err(TaprootSweepError::NotOurBalance { vout: other.vout })
        );
    }
}

#[test]
fn our_taproot_to_remote_is_swept_by_its_one_block_csv_leaf() {
    let (w, log) = taproot_world(52);
    let n = w.sim.remote_commitment_number();
    for (number, record) in [(n, None), (1, Some(&log[1]))] {
        let close = tap_tx(&w, Party::Remote, number);
        let contracts = classify(&w, &close, record).contracts;
        let c = find(&contracts, |c| {
            matches!(c.output, TaprootOutput::ToRemote { .. })
        });
        let signed = swept(&w, &close, c, 1);
        assert_eq!(
            classify_witness(&signed.input[0].witness),
            Ok(TaprootSpendKind::ToRemote)
        );
        // On the revoked one the peer's to_local is ours by revocation, not a balance sweep.
        let theirs = find(&contracts, |c| {
            matches!(c.output, TaprootOutput::ToLocal { .. })
        });
        assert!(matches!(
            taproot_commit_sweep(w.data.info.id, &close, 800, theirs),
            Err(TaprootSweepError::NotOurBalance { .. })
        ));
    }
}

#[test]
fn a_taproot_sweep_the_fee_would_leave_dust_is_refused() {
    let (w, _) = taproot_world(53);
    let close = tap_tx(&w, Party::Local, w.sim.local_commitment_number());
    let contracts = classify(&w, &close, None).contracts;
    let c = find(&contracts, |c| {
        matches!(c.output, TaprootOutput::ToLocal { .. })
    });
    let sweep = taproot_commit_sweep(w.data.info.id, &close, 800, c).unwrap();
    let huge = FeeRate::from_sat_per_kwu(c.value_sat * 10); // the fee is about 5 times the value
    assert!(matches!(
        sweep.tx(destination(), huge),
        Err(TaprootSweepError::BelowDust { .. })
    ));
    let mut missing = c.clone();
    missing.vout = close.output.len() as u32;
    assert_eq!(
        taproot_commit_sweep(w.data.info.id, &close, 800, &missing),
        Err(TaprootSweepError::MissingOutput { vout: missing.vout })
    );
    let mut pointless = c.clone();
    pointless.per_commitment_point = None;
    assert_eq!(
        taproot_commit_sweep(w.data.info.id, &close, 800, &pointless),
        Err(TaprootSweepError::NoPerCommitmentPoint { vout: c.vout })
    );
}

#[test]
fn our_second_level_output_is_swept_by_its_delay_leaf_after_to_self_delay() {
    let (w, _) = taproot_world(54);
    let close = tap_tx(&w, Party::Local, w.sim.local_commitment_number());
    let contracts = classify(&w, &close, None).contracts;
    let id = w.data.info.id;
    let mut swept_kinds = 0;
    for c in &contracts {
        let TaprootOutput::Htlc(h) = &c.output else {
            continue;
        };
        // Our HTLC-timeout or HTLC-success transaction (its txid does not depend on witnesses).
        let htlc_tx = h.second_level_tx.clone().expect("ours on our commitment");
        let point = c.per_commitment_point.unwrap();
        let sweep = taproot_second_level_sweep(id, &htlc_tx, 0, 900, h, 144, point).unwrap();
        assert_eq!(sweep.sequence, Sequence::from_height(144));
        assert_eq!(sweep.mature_at, 900 + 144);
        let tx = sweep.tx(destination(), RATE).unwrap();
        let request = sweep.sign_request(
            RequestId {
                claim: ClaimId(5),
                attempt: 0,
            },
            &tx,
        );
        let outcome = secrets(&w, Party::Local).sign_taproot(&request);
        let key = bitcoin::XOnlyPublicKey::from_slice(&sweep.leaf.leaf.as_bytes()[1..33]).unwrap();
        verified(&request, outcome.clone(), key);
        let crate::action::TaprootSignOutcome::Signed { signatures } = outcome else {
            unreachable!()
        };
        let signed = sweep.finish(tx.clone(), &signatures[0].signature);
        assert_eq!(
            classify_witness(&signed.input[0].witness),
            Ok(TaprootSpendKind::SecondLevelDelay { to_self_delay: 144 })
        );
        assert_eq!(signed.input[0].previous_output.txid, htlc_tx.compute_txid());
        // The maximum counts a 65-byte signature and the largest delay (opcode + 3 bytes); ours
        // is 64 bytes and 144 takes opcode + 2 bytes.
        assert_eq!(sweep.max_weight(&tx), signed.weight().to_wu() + 1 + 1);
        // Another delay than the leaf's, an output the transaction lacks, and the commitment's
        // own HTLC output (not the second-level one) are refused.
        assert_eq!(
            taproot_second_level_sweep(id, &htlc_tx, 0, 900, h, 143, point),
            Err(TaprootSweepError::NotSecondLevelOutput { vout: 0 })
        );
        assert_eq!(
            taproot_second_level_sweep(id, &htlc_tx, 1, 900, h, 144, point),
            Err(TaprootSweepError::MissingOutput { vout: 1 })
        );
        assert_eq!(
            taproot_second_level_sweep(id, &close, c.vout, 900, h, 144, point),
            Err(TaprootSweepError::NotSecondLevelOutput { vout: c.vout })
        );
        swept_kinds += 1;
    }
    assert!(swept_kinds >= 2, "HTLC-timeout and HTLC-success outputs");
}
