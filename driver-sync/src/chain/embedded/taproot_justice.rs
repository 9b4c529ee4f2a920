//! Bitcoin Core's script interpreter (the kernel, TAPROOT, every spent output given) on core's
//! taproot justice transaction (`resolver::taproot_justice`, issue 21): a revoked peer
//! commitment's `to_local` by its revoke leaf, an offered and an accepted HTLC output and a
//! second-level output by their revocation key paths, in one transaction signed by the driver's
//! signer with the revocation key (our revocation basepoint secret and the peer's revealed
//! per-commitment secret). Accepted as built; refused with a flipped signature bit on any input,
//! and when signed for another revealed secret.

use bitcoin::hashes::{sha256, Hash};
use bitcoin::secp256k1::PublicKey;
use bitcoin::{Amount, FeeRate, OutPoint, ScriptBuf, Transaction, TxOut, Txid, WPubkeyHash};
use contractcourt_core::action::{Basepoint, KeyTweak, SigningKey, TaprootSignOutcome};
use contractcourt_core::bolt3::taproot::{
    accepted_htlc, offered_htlc, second_level, to_local, TapOutput,
};
use contractcourt_core::bolt3::{keys, CommitmentKeys, PaymentHash};
use contractcourt_core::close::taproot::{TapKeySpend, TapLeafSpend};
use contractcourt_core::resolver::taproot_justice::{JusticeInput, JusticePath, TaprootJustice};
use contractcourt_core::types::{ChannelId, ClaimId, RequestId};

use super::script::verify_scripts;
use super::taproot_test_support::secrets;
use super::MempoolReject;
use crate::signer::InMemorySigner;

const CHANNEL: ChannelId = ChannelId([41; 32]);
const SECRET: [u8; 32] = [7; 32];

fn key_path(internal_key: &PublicKey, output: &TapOutput) -> JusticePath {
    JusticePath::KeyPath(TapKeySpend {
        internal_key: *internal_key,
        merkle_root: output.merkle_root(),
    })
}

fn input(txid: Txid, vout: u32, value: u64, output: &TapOutput, path: JusticePath) -> JusticeInput {
    JusticeInput {
        outpoint: OutPoint::new(txid, vout),
        prevout: TxOut {
            value: Amount::from_sat(value),
            script_pubkey: output.script_pubkey(),
        },
        path,
    }
}

/// The justice of the peer's commitment for `SECRET` (keys with the peer as holder): its
/// `to_local`, an offered and an accepted HTLC (stand-in txids: only the outputs matter to the
/// scripts) and one second-level output, signed with the revocation key of `SECRET`.
fn justice() -> TaprootJustice {
    let (ours, theirs) = (secrets(0), secrets(10));
    let point = keys::per_commitment_point(&SECRET).unwrap();
    let k = CommitmentKeys::derive(&point, &theirs.basepoints(), &ours.basepoints()).unwrap();
    let hash = PaymentHash(sha256::Hash::hash(&[5; 32]).to_byte_array());
    let local = to_local::to_local(&k.local_delayed_pubkey, &k.revocation_pubkey, 144).unwrap();
    let offered = offered_htlc::offered_htlc(
        &k.revocation_pubkey,
        &k.local_htlc_pubkey,
        &k.remote_htlc_pubkey,
        &hash,
    )
    .unwrap();
    let accepted = accepted_htlc::accepted_htlc(
        &k.revocation_pubkey,
        &k.local_htlc_pubkey,
        &k.remote_htlc_pubkey,
        &hash,
        800_000,
    )
    .unwrap();
    let l2 = second_level::second_level_htlc(&k.revocation_pubkey, &k.local_delayed_pubkey, 144)
        .unwrap();
    let (close, htlc_tx) = (
        Txid::from_byte_array([1; 32]),
        Txid::from_byte_array([2; 32]),
    );
    let revoke = JusticePath::RevokeLeaf(TapLeafSpend {
        leaf: local.revoke_script.clone(),
        control_block: local.output.control_block(&local.revoke_script).unwrap(),
    });
    let r = &k.revocation_pubkey;
    TaprootJustice {
        inputs: vec![
            input(close, 0, 700_000, &local.output, revoke),
            input(
                close,
                1,
                40_000,
                &offered.output,
                key_path(r, &offered.output),
            ),
            input(
                close,
                2,
                30_000,
                &accepted.output,
                key_path(r, &accepted.output),
            ),
            input(htlc_tx, 0, 20_000, &l2.output, key_path(r, &l2.output)),
        ],
        key: SigningKey::Channel {
            channel: CHANNEL,
            basepoint: Basepoint::Revocation,
            tweak: KeyTweak::Revocation {
                per_commitment_secret: SECRET,
            },
        },
    }
}

/// `justice` built at 10 sat/vB, and the driver's signer's (our basepoint secrets) answer.
fn signed(justice: &TaprootJustice) -> (Transaction, TaprootSignOutcome) {
    let mut signer = InMemorySigner::new();
    signer.add_channel(CHANNEL, secrets(0));
    let destination = ScriptBuf::new_p2wpkh(&WPubkeyHash::from_byte_array([4; 20]));
    let tx = justice
        .tx(destination, FeeRate::from_sat_per_kwu(2_500))
        .unwrap();
    let request = justice.sign_request(
        RequestId {
            claim: ClaimId(1),
            attempt: 0,
        },
        &tx,
    );
    let outcome = signer.sign_taproot(&request);
    (tx, outcome)
}

fn prevouts(justice: &TaprootJustice) -> Vec<TxOut> {
    justice.inputs.iter().map(|i| i.prevout.clone()).collect()
}

#[test]
fn bitcoin_core_accepts_core_taproot_justice_and_refuses_it_with_any_signature_flipped() {
    let justice = justice();
    let (tx, outcome) = signed(&justice);
    let TaprootSignOutcome::Signed { signatures } = outcome else {
        panic!("{outcome:?}");
    };
    let done = justice.finish(tx.clone(), &signatures).unwrap();
    assert_eq!(verify_scripts(&done, &prevouts(&justice)), Ok(()));
    assert!(done.weight().to_wu() <= justice.max_weight(&tx));
    for n in 0..justice.inputs.len() {
        let mut bad = signatures.clone();
        let mut bytes = bad[n].signature.signature.serialize();
        bytes[10] ^= 1;
        bad[n].signature.signature =
            bitcoin::secp256k1::schnorr::Signature::from_slice(&bytes).unwrap();
        let broken = justice.finish(tx.clone(), &bad).unwrap();
        let result = verify_scripts(&broken, &prevouts(&justice));
        assert!(
            matches!(result, Err(MempoolReject::ScriptFailure { input, .. }) if input == n),
            "input {n}: {result:?}"
        );
    }
}

#[test]
fn the_driver_signer_refuses_a_revocation_key_of_another_secret_that_no_output_holds() {
    // The key of another revealed secret is in no leaf and tweaks to no output key: the signer
    // refuses rather than sign something Bitcoin Core would reject.
    let mut wrong = justice();
    wrong.key = SigningKey::Channel {
        channel: CHANNEL,
        basepoint: Basepoint::Revocation,
        tweak: KeyTweak::Revocation {
            per_commitment_secret: [8; 32],
        },
    };
    let (_, outcome) = signed(&wrong);
    assert!(
        matches!(&outcome, TaprootSignOutcome::Failed { reason } if reason.starts_with("input 0:")),
        "{outcome:?}"
    );
}
