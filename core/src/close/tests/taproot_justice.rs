//! Justice on revoked taproot commitments (`resolver::taproot_justice`) from the contracts of
//! `close::taproot`: signed by the simulated signer with the revocation key, each signature
//! verified independently (sighash recomputed with the `bitcoin` crate over every prevout, BIP
//! 340 under the key pushed in the revoke leaf or the spent output's key), each witness
//! classified as its path, the weight and fee checked against hand-derived numbers.

use bitcoin::hashes::Hash;
use bitcoin::secp256k1::Message;
use bitcoin::sighash::{Prevouts, SighashCache};
use bitcoin::{Amount, FeeRate, ScriptBuf, Sequence, Transaction, TxOut, WPubkeyHash};

use super::taproot::{classify, output_key, secrets, tap_tx, taproot_world};
use crate::action::{SchnorrInputSignature, TapSignPath, TaprootSignOutcome};
use crate::bolt3::taproot::classify::{classify_witness, TaprootSpendKind};
use crate::close::taproot::{TaprootContract, TaprootOutput};
use crate::resolver::taproot_justice::{
    second_level_justice_input, taproot_justice, JusticePath, TaprootJustice, TaprootJusticeError,
};
use crate::types::{ClaimId, Party, RequestId};

const RATE: FeeRate = FeeRate::from_sat_per_kwu(2_500); // 10 sat/vB

fn destination() -> ScriptBuf {
    ScriptBuf::new_p2wpkh(&WPubkeyHash::from_byte_array([4; 20]))
}

const REQUEST: RequestId = RequestId {
    claim: ClaimId(9),
    attempt: 0,
};

/// `justice` built at [`RATE`], signed by our sim keys, every signature verified on its own;
/// the signed transaction.
fn signed(w: &super::World, justice: &TaprootJustice) -> Transaction {
    let tx = justice.tx(destination(), RATE).unwrap();
    let request = justice.sign_request(REQUEST, &tx);
    assert_eq!(request.inputs.len(), justice.inputs.len());
    let TaprootSignOutcome::Signed { signatures } = secrets(w, Party::Local).sign_taproot(&request)
    else {
        panic!("the sim refused the revocation key");
    };
    let mut cache = SighashCache::new(&tx);
    let prevouts = Prevouts::All(&request.prevouts);
    for (s, input) in signatures.iter().zip(&request.inputs) {
        assert_eq!(s.input, input.input);
        let (hash, key) = match &input.path {
            TapSignPath::ScriptPath { leaf } => {
                let hash = cache
                    .taproot_script_spend_signature_hash(
                        s.input as usize,
                        &prevouts,
                        bitcoin::taproot::TapLeafHash::from_script(
                            leaf,
                            bitcoin::taproot::LeafVersion::TapScript,
                        ),
                        input.sighash,
                    )
                    .unwrap();
                // `<local_delayedpubkey> OP_DROP <revocation_pubkey> OP_CHECKSIG`.
                let key = bitcoin::XOnlyPublicKey::from_slice(&leaf.as_bytes()[35..67]).unwrap();
                (hash, key)
            }
            TapSignPath::KeyPath { .. } => {
                let hash = cache
                    .taproot_key_spend_signature_hash(s.input as usize, &prevouts, input.sighash)
                    .unwrap();
                let spent = &request.prevouts[s.input as usize].script_pubkey;
                (hash, output_key(spent))
            }
        };
        let msg = Message::from_digest(hash.to_byte_array());
        crate::bolt3::secp()
            .verify_schnorr(&s.signature.signature, &msg, &key)
            .unwrap();
    }
    justice.finish(tx, &signatures).unwrap()
}

fn contracts_of_revoked(
    w: &super::World,
    log: &[crate::commitments::CommitmentRecord],
    n: u64,
) -> (Transaction, Vec<TaprootContract>) {
    let tx = tap_tx(w, Party::Remote, n);
    (
        tx.clone(),
        classify(w, &tx, Some(&log[n as usize])).contracts,
    )
}

#[test]
fn a_revoked_taproot_commitment_is_taken_whole_to_local_by_its_revoke_leaf_htlcs_by_key_path() {
    let (w, log) = taproot_world(61);
    for n in 1..=2u64 {
        let (close, contracts) = contracts_of_revoked(&w, &log, n);
        let justice = taproot_justice(w.data.info.id, &close, &contracts, w.secret(n)).unwrap();
        // Every output but the anchors and our own balance: `to_local` and each HTLC.
        let htlcs = w.sim.state(Party::Remote, n).unwrap().htlcs.len();
        assert!(htlcs > 0);
        assert_eq!(justice.inputs.len(), 1 + htlcs);
        let tx = signed(&w, &justice);
        let mut seen = (0, 0);
        for (i, input) in tx.input.iter().enumerate() {
            assert_eq!(input.previous_output.txid, close.compute_txid());
            assert_eq!(input.sequence, Sequence::ENABLE_RBF_NO_LOCKTIME);
            let c = contracts
                .iter()
                .find(|c| c.vout == input.previous_output.vout)
                .unwrap();
            match (&c.output, classify_witness(&input.witness)) {
                (TaprootOutput::ToLocal { .. }, Ok(TaprootSpendKind::ToLocalRevoke)) => seen.0 += 1,
                (TaprootOutput::Htlc(_), Ok(TaprootSpendKind::KeyPath)) => seen.1 += 1,
                other => panic!("input {i}: {other:?}"),
            }
        }
        assert_eq!(seen, (1, htlcs));
        assert_eq!(tx.lock_time, bitcoin::absolute::LockTime::ZERO);
        // Weight: the maximum counts a 65-byte signature per input; ours are 64 bytes.
        let unsigned = justice.tx(destination(), RATE).unwrap();
        let actual = tx.weight().to_wu();
        assert_eq!(
            justice.max_weight(&unsigned),
            actual + justice.inputs.len() as u64
        );
        // Fee: 10 sat/vB on that maximum, rounded up to whole vbytes.
        let value: u64 = justice
            .inputs
            .iter()
            .map(|i| i.prevout.value.to_sat())
            .sum();
        let expected_value: u64 = contracts
            .iter()
            .filter(|c| {
                matches!(
                    c.output,
                    TaprootOutput::ToLocal { .. } | TaprootOutput::Htlc(_)
                )
            })
            .map(|c| c.value_sat)
            .sum();
        assert_eq!(value, expected_value);
        let fee = value - tx.output[0].value.to_sat();
        assert_eq!(fee, justice.max_weight(&unsigned).div_ceil(4) * 10);
    }
}

#[test]
fn a_second_level_output_of_a_revoked_htlc_is_taken_by_its_revocation_key_path() {
    let (w, log) = taproot_world(62);
    let (close, contracts) = contracts_of_revoked(&w, &log, 2);
    let htlc = contracts
        .iter()
        .find_map(|c| match &c.output {
            TaprootOutput::Htlc(h) => Some(h.clone()),
            _ => None,
        })
        .unwrap();
    // A stand-in for the peer's confirmed HTLC transaction: output 0 pays the second level.
    let mut second_level = close.clone();
    second_level.output = vec![TxOut {
        value: Amount::from_sat(50_000),
        script_pubkey: htlc.second_level.script_pubkey.clone(),
    }];
    let input = second_level_justice_input(&second_level, 0, &htlc).unwrap();
    assert_eq!(
        input.path,
        JusticePath::KeyPath(htlc.second_level.revocation)
    );
    let mut justice = taproot_justice(w.data.info.id, &close, &contracts, w.secret(2)).unwrap();
    justice.inputs.push(input);
    let tx = signed(&w, &justice);
    let last = tx.input.last().unwrap();
    assert_eq!(last.previous_output.txid, second_level.compute_txid());
    assert_eq!(
        classify_witness(&last.witness),
        Ok(TaprootSpendKind::KeyPath)
    );

    // Another output of it (not the second-level script) is refused; so is one it lacks.
    let mut other = second_level.clone();
    other.output[0].script_pubkey = destination();
    assert_eq!(
        second_level_justice_input(&other, 0, &htlc),
        Err(TaprootJusticeError::NotSecondLevelOutput { vout: 0 })
    );
    assert_eq!(
        second_level_justice_input(&second_level, 1, &htlc),
        Err(TaprootJusticeError::MissingOutput { vout: 1 })
    );
}

#[test]
fn justice_is_refused_for_an_unrevoked_commitment_and_when_nothing_or_dust_is_left() {
    let (w, log) = taproot_world(63);
    // The peer's current commitment: nothing is ours by revocation.
    let n = w.sim.remote_commitment_number();
    let current = tap_tx(&w, Party::Remote, n);
    let contracts = classify(&w, &current, None).contracts;
    let first = contracts
        .iter()
        .find(|c| {
            matches!(
                c.output,
                TaprootOutput::ToLocal { .. } | TaprootOutput::Htlc(_)
            )
        })
        .unwrap();
    assert_eq!(
        taproot_justice(w.data.info.id, &current, &contracts, [7; 32]),
        Err(TaprootJusticeError::NotRevoked { vout: first.vout })
    );
    // Only anchors and our balance: nothing to take.
    let (close, contracts) = contracts_of_revoked(&w, &log, 1);
    let ours_only: Vec<TaprootContract> = contracts
        .iter()
        .filter(|c| {
            matches!(
                c.output,
                TaprootOutput::Anchor { .. } | TaprootOutput::ToRemote { .. }
            )
        })
        .cloned()
        .collect();
    assert_eq!(
        taproot_justice(w.data.info.id, &close, &ours_only, w.secret(1)),
        Err(TaprootJusticeError::Nothing)
    );
    // A contract whose output the transaction lacks.
    let mut missing = contracts.clone();
    let gone = missing
        .iter_mut()
        .find(|c| matches!(c.output, TaprootOutput::ToLocal { .. }))
        .unwrap();
    gone.vout = close.output.len() as u32;
    let vout = gone.vout;
    assert_eq!(
        taproot_justice(w.data.info.id, &close, &missing, w.secret(1)),
        Err(TaprootJusticeError::MissingOutput { vout })
    );
    // A fee about five times what is at stake leaves dust.
    let justice = taproot_justice(w.data.info.id, &close, &contracts, w.secret(1)).unwrap();
    let value: u64 = justice
        .inputs
        .iter()
        .map(|i| i.prevout.value.to_sat())
        .sum();
    assert!(matches!(
        justice.tx(destination(), FeeRate::from_sat_per_kwu(value * 10)),
        Err(TaprootJusticeError::BelowDust { .. })
    ));
    // Signatures: one missing, or one for an input the transaction does not have.
    let tx = justice.tx(destination(), RATE).unwrap();
    let TaprootSignOutcome::Signed { signatures } =
        secrets(&w, Party::Local).sign_taproot(&justice.sign_request(REQUEST, &tx))
    else {
        panic!("refused");
    };
    let short: Vec<SchnorrInputSignature> = signatures[1..].to_vec();
    assert_eq!(
        justice.finish(tx.clone(), &short),
        Err(TaprootJusticeError::Signatures { input: 0 })
    );
    let mut extra = signatures.clone();
    extra.push(SchnorrInputSignature {
        input: justice.inputs.len() as u32,
        signature: signatures[0].signature,
    });
    assert_eq!(
        justice.finish(tx, &extra),
        Err(TaprootJusticeError::Signatures {
            input: justice.inputs.len() as u32
        })
    );
}
