//! Bitcoin Core's script interpreter (the kernel, every consensus flag including TAPROOT, all
//! spent outputs given) on the simple taproot channel vectors (`vectors/bolt-simple-taproot.json`,
//! issue 21): each second-level HTLC transaction is valid when the output it spends is the HTLC
//! output `contractcourt_core::bolt3::taproot` builds, and invalid when that output belongs to
//! another HTLC or with a flipped signature bit; each commitment is valid spending the MuSig2
//! funding output it builds, at the funding amount only. (`bitcoinconsensus` in core's `testkit`
//! cannot verify taproot spends.)
//!
//! Then every spend path of every output, built and signed by core's `taproot::witness` (the
//! `taproot::fixture` spends, fixed test keys): accepted as built, and refused with a flipped
//! signature bit, a wrong preimage, or an nSequence/locktime short of the leaf's
//! `OP_CHECKSEQUENCEVERIFY`/`OP_CHECKLOCKTIMEVERIFY` (signed over, so only the timelock fails).

use bitcoin::consensus::deserialize;
use bitcoin::hashes::{sha256, Hash};
use bitcoin::secp256k1::PublicKey;
use bitcoin::sighash::TapSighashType;
use bitcoin::{Amount, ScriptBuf, Transaction, TxOut};
use bitcoin::{Sequence, Witness};
use contractcourt_core::bolt3::taproot::fixture::{
    spend, Spend, SpendParams, SpendPath, ALL_PATHS,
};
use contractcourt_core::bolt3::taproot::{accepted_htlc, offered_htlc};
use contractcourt_core::bolt3::PaymentHash;
use serde_json::Value;

use super::script::verify_scripts;
use super::taproot_test_support::refused;
use super::MempoolReject;

fn vectors() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../vectors/bolt-simple-taproot.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn hex_of(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap()).unwrap()
}

fn key(v: &Value, name: &str) -> PublicKey {
    PublicKey::from_slice(&hex_of(&v["params"]["keys"][name])).unwrap()
}

/// The HTLC outputs of one transaction vector as the holder builds them, in vector order.
fn htlc_outputs(v: &Value, test: &Value) -> Vec<TxOut> {
    let revocation = key(v, "derived_revocation_pubkey");
    let local = key(v, "derived_local_htlc_pubkey");
    let remote = key(v, "derived_remote_htlc_pubkey");
    let list = test["htlcs"].as_array().cloned().unwrap_or_default();
    list.iter()
        .map(|h| {
            let hash = PaymentHash(sha256::Hash::hash(&hex_of(&h["preimage"])).to_byte_array());
            let script_pubkey: ScriptBuf = if h["incoming"].as_bool().unwrap() {
                let expiry = h["expiry"].as_u64().unwrap() as u32;
                let out = accepted_htlc::accepted_htlc(&revocation, &local, &remote, &hash, expiry);
                out.unwrap().output.script_pubkey()
            } else {
                let out = offered_htlc::offered_htlc(&revocation, &local, &remote, &hash);
                out.unwrap().output.script_pubkey()
            };
            let value = Amount::from_sat(h["amount_msat"].as_u64().unwrap() / 1000);
            TxOut {
                value,
                script_pubkey,
            }
        })
        .collect()
}

#[test]
fn bitcoin_core_accepts_each_second_level_spend_of_our_htlc_outputs_and_refuses_others_and_bad_sigs(
) {
    let v = vectors();
    let mut checked = 0;
    for test in v["transactions"].as_array().unwrap() {
        let commitment: Transaction =
            deserialize(&hex_of(&test["expected_commitment_tx_hex"])).unwrap();
        let ours = htlc_outputs(&v, test);
        for desc in test["htlc_descs"].as_array().cloned().unwrap_or_default() {
            let spend: Transaction = deserialize(&hex_of(&desc["resolution_tx_hex"])).unwrap();
            let vout = spend.input[0].previous_output.vout as usize;
            let spent = &commitment.output[vout];
            let prevout = ours
                .iter()
                .find(|o| o.script_pubkey == spent.script_pubkey)
                .expect("the spent commitment output is one we build");
            assert_eq!(prevout, spent);
            assert_eq!(
                verify_scripts(&spend, std::slice::from_ref(prevout)),
                Ok(())
            );
            for other in ours
                .iter()
                .filter(|o| o.script_pubkey != prevout.script_pubkey)
            {
                let wrong = TxOut {
                    value: prevout.value,
                    script_pubkey: other.script_pubkey.clone(),
                };
                let result = verify_scripts(&spend, &[wrong]);
                assert!(
                    matches!(result, Err(MempoolReject::ScriptFailure { input: 0, .. })),
                    "{result:?}"
                );
            }
            let mut tampered = spend.clone();
            let mut items: Vec<Vec<u8>> = tampered.input[0]
                .witness
                .iter()
                .map(<[u8]>::to_vec)
                .collect();
            items[1][0] ^= 1; // the holder's signature
            tampered.input[0].witness = Witness::from_slice(&items);
            let result = verify_scripts(&tampered, std::slice::from_ref(prevout));
            assert!(
                matches!(result, Err(MempoolReject::ScriptFailure { input: 0, .. })),
                "{result:?}"
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 7);
}

#[test]
fn bitcoin_core_accepts_each_vector_commitment_spending_our_funding_output_at_its_amount_only() {
    let v = vectors();
    let funding_output = contractcourt_core::bolt3::taproot::funding::funding_output(
        &key(&v, "local_funding_pubkey"),
        &key(&v, "remote_funding_pubkey"),
    )
    .unwrap();
    let amount = Amount::from_sat(v["params"]["funding_amount_satoshis"].as_u64().unwrap());
    let prevout = TxOut {
        value: amount,
        script_pubkey: funding_output.script_pubkey(),
    };
    for test in v["transactions"].as_array().unwrap() {
        let commitment: Transaction =
            deserialize(&hex_of(&test["expected_commitment_tx_hex"])).unwrap();
        assert_eq!(
            verify_scripts(&commitment, std::slice::from_ref(&prevout)),
            Ok(())
        );
        // A taproot signature commits to every spent amount.
        let wrong = TxOut {
            value: amount - Amount::from_sat(1),
            script_pubkey: prevout.script_pubkey.clone(),
        };
        let result = verify_scripts(&commitment, &[wrong]);
        assert!(
            matches!(result, Err(MempoolReject::ScriptFailure { input: 0, .. })),
            "{result:?}"
        );
    }
}

fn edit_witness(s: &Spend, edit: impl FnOnce(&mut Vec<Vec<u8>>)) -> Transaction {
    let mut tx = s.tx.clone();
    let mut items: Vec<Vec<u8>> = tx.input[0].witness.iter().map(<[u8]>::to_vec).collect();
    edit(&mut items);
    tx.input[0].witness = Witness::from_slice(&items);
    tx
}

#[test]
fn bitcoin_core_accepts_every_spend_path_we_build_and_refuses_each_with_a_flipped_signature() {
    let largest = SpendParams {
        sighash_type: TapSighashType::All,
        to_self_delay: u16::MAX,
        cltv_expiry: 499_999_999,
        ..SpendParams::default()
    };
    for params in [SpendParams::default(), largest] {
        for path in ALL_PATHS {
            let s = spend(path, &params).unwrap();
            let result = verify_scripts(&s.tx, std::slice::from_ref(&s.prevout));
            assert_eq!(result, Ok(()), "{path:?} {params:?}");
            if path != SpendPath::AnchorSweep {
                refused(&edit_witness(&s, |it| it[0][5] ^= 1), &s.prevout);
            }
            // Another amount: every taproot signature commits to it (none in the anchor sweep).
            let mut other = s.prevout.clone();
            other.value += Amount::from_sat(1);
            let result = verify_scripts(&s.tx, &[other]);
            assert_eq!(result.is_ok(), path == SpendPath::AnchorSweep, "{path:?}");
        }
    }
}

#[test]
fn bitcoin_core_refuses_a_success_leaf_spend_with_a_wrong_preimage() {
    for (path, at) in [
        (SpendPath::OfferedSuccess, 1),
        (SpendPath::AcceptedSuccess, 2),
    ] {
        let s = spend(path, &SpendParams::default()).unwrap();
        refused(&edit_witness(&s, |it| it[at] = vec![0x43; 32]), &s.prevout);
        refused(&edit_witness(&s, |it| it[at].push(0)), &s.prevout);
    }
}

#[test]
fn bitcoin_core_refuses_each_timelocked_path_one_block_early() {
    let early = |path, sequence: u32, lock_time: Option<u32>| {
        let params = SpendParams {
            sequence: Some(Sequence(sequence)),
            lock_time,
            ..SpendParams::default()
        };
        let s = spend(path, &params).unwrap();
        refused(&s.tx, &s.prevout);
    };
    let delay = u32::from(SpendParams::default().to_self_delay);
    let cltv = SpendParams::default().cltv_expiry;
    early(SpendPath::ToLocalDelay, delay - 1, None);
    early(SpendPath::SecondLevelDelay, delay - 1, None);
    early(SpendPath::ToRemote, 0, None);
    early(SpendPath::AnchorSweep, 15, None);
    early(SpendPath::OfferedSuccess, 0, None);
    early(SpendPath::AcceptedTimeout, 0, None);
    early(SpendPath::AcceptedTimeout, 1, Some(cltv - 1));
    // The relative lock disabled (bit 31) does not satisfy OP_CHECKSEQUENCEVERIFY either.
    early(SpendPath::ToLocalDelay, delay | (1 << 31), None);
}

/// A one-input spend of `prevout` (at `outpoint` 0 of a made-up txid) with nSequence `sequence`.
fn one_input_spend(prevout: &TxOut, sequence: u32) -> Transaction {
    use bitcoin::{absolute::LockTime, transaction::Version, OutPoint, TxIn, Txid};
    Transaction {
        version: Version::TWO,
        lock_time: LockTime::ZERO,
        input: vec![TxIn {
            previous_output: OutPoint::new(Txid::from_byte_array([9; 32]), 0),
            sequence: Sequence(sequence),
            ..TxIn::default()
        }],
        output: vec![TxOut {
            value: prevout.value - Amount::from_sat(500),
            script_pubkey: ScriptBuf::new_op_return([1u8; 4]),
        }],
    }
}

/// The driver's signer (`InMemorySigner::sign_taproot`, keys derived from basepoint secrets and
/// the request's BOLT 3 tweak) signs a `to_local` delay leaf (per-commitment tweak), a
/// `to_remote` leaf (untweaked payment key) and a revoked HTLC's key path (revocation key from
/// the peer's secret, tap-tweaked with the HTLC's root); each witness built by
/// `taproot::witness` is accepted by Bitcoin Core and refused with a flipped signature bit.
#[test]
fn bitcoin_core_accepts_the_driver_signers_taproot_signatures() {
    use contractcourt_core::action::{
        Basepoint, KeyTweak, SigningKey, TapSignPath, TaprootSignInput, TaprootSignOutcome,
        TaprootSignRequest,
    };
    use contractcourt_core::bolt3::taproot::{to_local, to_remote, witness as w, TapOutput};
    use contractcourt_core::bolt3::{keys, CommitmentKeys};
    use contractcourt_core::types::{ChannelId, ClaimId, RawTx, RequestId};

    use super::taproot_test_support::secrets;
    use crate::signer::InMemorySigner;

    let (ours, theirs) = (secrets(0), secrets(10));
    let channel = ChannelId([21; 32]);
    let mut signer = InMemorySigner::new();
    signer.add_channel(channel, ours.clone());
    let (our_point, their_secret) = (keys::per_commitment_point(&[7; 32]).unwrap(), [8u8; 32]);
    let their_point = keys::per_commitment_point(&their_secret).unwrap();
    let our_keys = CommitmentKeys::derive(&our_point, &ours.basepoints(), &theirs.basepoints());
    let their_keys = CommitmentKeys::derive(&their_point, &theirs.basepoints(), &ours.basepoints());
    let (our_keys, their_keys) = (our_keys.unwrap(), their_keys.unwrap());
    let key = |basepoint, tweak| SigningKey::Channel {
        channel,
        basepoint,
        tweak,
    };
    let sign = |prevout: &TxOut, seq: u32, path: TapSignPath, key: SigningKey| {
        let tx = one_input_spend(prevout, seq);
        let request = TaprootSignRequest {
            request: RequestId {
                claim: ClaimId(1),
                attempt: 0,
            },
            tx: RawTx(tx.clone()),
            prevouts: vec![prevout.clone()],
            inputs: vec![TaprootSignInput {
                input: 0,
                path,
                sighash: TapSighashType::Default,
                key,
            }],
        };
        match signer.sign_taproot(&request) {
            TaprootSignOutcome::Signed { signatures } => (tx, signatures[0].signature),
            TaprootSignOutcome::Failed { reason } => panic!("{reason}"),
        }
    };
    let txout = |output: &TapOutput| TxOut {
        value: Amount::from_sat(50_000),
        script_pubkey: output.script_pubkey(),
    };
    let mut spends = Vec::new();
    // Our to_local, delay leaf.
    let local = to_local::to_local(
        &our_keys.local_delayed_pubkey,
        &our_keys.revocation_pubkey,
        144,
    )
    .unwrap();
    let prevout = txout(&local.output);
    let path = TapSignPath::ScriptPath {
        leaf: local.delay_script.clone(),
    };
    let tweak = KeyTweak::PerCommitmentPoint { point: our_point };
    let (mut tx, sig) = sign(&prevout, 144, path, key(Basepoint::DelayedPayment, tweak));
    tx.input[0].witness = w::to_local_delay(&local, &sig).unwrap();
    spends.push((tx, prevout));
    // Our to_remote on their commitment.
    let remote = to_remote::to_remote(&their_keys.remote_payment_pubkey).unwrap();
    let prevout = txout(&remote.output);
    let path = TapSignPath::ScriptPath {
        leaf: remote.script.clone(),
    };
    let (mut tx, sig) = sign(&prevout, 1, path, key(Basepoint::Payment, KeyTweak::None));
    tx.input[0].witness = w::to_remote(&remote, &sig).unwrap();
    spends.push((tx, prevout));
    // A revoked HTLC of theirs, revocation key path.
    let k = &their_keys;
    let htlc = offered_htlc::offered_htlc(
        &k.revocation_pubkey,
        &k.local_htlc_pubkey,
        &k.remote_htlc_pubkey,
        &PaymentHash([3; 32]),
    )
    .unwrap();
    let prevout = txout(&htlc.output);
    let tweak = KeyTweak::Revocation {
        per_commitment_secret: their_secret,
    };
    let path = TapSignPath::from(&htlc.output);
    let (mut tx, sig) = sign(&prevout, 0, path, key(Basepoint::Revocation, tweak));
    tx.input[0].witness = w::revocation_key_path(&sig);
    spends.push((tx, prevout));
    for (tx, prevout) in spends {
        assert_eq!(verify_scripts(&tx, std::slice::from_ref(&prevout)), Ok(()));
        let mut items: Vec<Vec<u8>> = tx.input[0].witness.iter().map(<[u8]>::to_vec).collect();
        items[0][5] ^= 1;
        let mut flipped = tx.clone();
        flipped.input[0].witness = Witness::from_slice(&items);
        refused(&flipped, &prevout);
    }
    // An unknown channel is refused, naming the input.
    let other = SigningKey::Channel {
        channel: ChannelId([22; 32]),
        basepoint: Basepoint::Payment,
        tweak: KeyTweak::None,
    };
    let request = TaprootSignRequest {
        request: RequestId {
            claim: ClaimId(2),
            attempt: 0,
        },
        tx: RawTx(one_input_spend(&txout(&remote.output), 1)),
        prevouts: vec![txout(&remote.output)],
        inputs: vec![TaprootSignInput {
            input: 0,
            path: TapSignPath::ScriptPath {
                leaf: remote.script.clone(),
            },
            sighash: TapSighashType::Default,
            key: other,
        }],
    };
    assert!(matches!(
        signer.sign_taproot(&request),
        TaprootSignOutcome::Failed { reason } if reason.starts_with("input 0:")
    ));
}

/// Core's taproot commitment sweep (`resolver::taproot_sweep`) of our `to_local` (delay leaf,
/// `to_self_delay`) and our `to_remote` (`1 OP_CSV` leaf), signed by the driver's signer: Bitcoin
/// Core accepts each, and refuses each re-signed with nSequence one short of its CSV.
#[test]
fn bitcoin_core_accepts_core_taproot_commitment_sweeps_and_refuses_them_one_block_early() {
    use bitcoin::{FeeRate, WPubkeyHash};
    use contractcourt_core::action::TaprootSignOutcome;
    use contractcourt_core::bolt3::taproot::{to_local, to_remote, TapOutput};
    use contractcourt_core::bolt3::{keys, CommitmentKeys};
    use contractcourt_core::close::taproot::{TapLeafSpend, TaprootContract, TaprootOutput};
    use contractcourt_core::resolver::taproot_sweep::{taproot_commit_sweep, TaprootSweep};
    use contractcourt_core::types::{ChannelId, ClaimId, Party, RequestId};

    use crate::signer::InMemorySigner;

    let secrets = super::taproot_test_support::secrets;
    let (ours, theirs) = (secrets(0), secrets(10));
    let channel = ChannelId([31; 32]);
    let mut signer = InMemorySigner::new();
    signer.add_channel(channel, ours.clone());
    let point = keys::per_commitment_point(&[7; 32]).unwrap();
    let k = CommitmentKeys::derive(&point, &ours.basepoints(), &theirs.basepoints()).unwrap();
    let leaf = |output: &TapOutput, script: &ScriptBuf| TapLeafSpend {
        leaf: script.clone(),
        control_block: output.control_block(script).unwrap(),
    };
    let local = to_local::to_local(&k.local_delayed_pubkey, &k.revocation_pubkey, 144).unwrap();
    let remote = to_remote::to_remote(&ours.basepoints().payment_basepoint).unwrap();
    let cases = [
        (
            local.output.script_pubkey(),
            TaprootOutput::ToLocal {
                to_self_delay: 144,
                delay: leaf(&local.output, &local.delay_script),
                revoke: leaf(&local.output, &local.revoke_script),
            },
            144u16,
        ),
        (
            remote.output.script_pubkey(),
            TaprootOutput::ToRemote {
                leaf: leaf(&remote.output, &remote.script),
            },
            1,
        ),
    ];
    let destination = ScriptBuf::new_p2wpkh(&WPubkeyHash::from_byte_array([4; 20]));
    let signed = |sweep: &TaprootSweep| {
        let tx = sweep
            .tx(destination.clone(), FeeRate::from_sat_per_kwu(2_500))
            .unwrap();
        let id = RequestId {
            claim: ClaimId(1),
            attempt: 0,
        };
        match signer.sign_taproot(&sweep.sign_request(id, &tx)) {
            TaprootSignOutcome::Signed { signatures } => sweep.finish(tx, &signatures[0].signature),
            TaprootSignOutcome::Failed { reason } => panic!("{reason}"),
        }
    };
    for (script_pubkey, output, csv) in cases {
        // A stand-in close: any transaction whose output 0 is ours.
        let funding = TxOut {
            value: Amount::from_sat(100_500),
            script_pubkey: ScriptBuf::new(),
        };
        let mut close = one_input_spend(&funding, 0);
        close.output[0] = TxOut {
            value: Amount::from_sat(100_000),
            script_pubkey,
        };
        let contract = TaprootContract {
            vout: 0,
            value_sat: 100_000,
            owner: Party::Local,
            revoked: false,
            output,
            per_commitment_point: Some(point),
        };
        let sweep = taproot_commit_sweep(channel, &close, 800, &contract).unwrap();
        assert_eq!(sweep.sequence, Sequence::from_height(csv));
        let tx = signed(&sweep);
        assert_eq!(
            verify_scripts(&tx, std::slice::from_ref(&sweep.prevout)),
            Ok(())
        );
        assert!(tx.weight().to_wu() <= sweep.max_weight(&tx));
        let mut early = sweep.clone();
        early.sequence = Sequence::from_height(csv - 1);
        refused(&signed(&early), &sweep.prevout);
    }
}
