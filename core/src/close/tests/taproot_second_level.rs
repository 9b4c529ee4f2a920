//! Our second-level HTLC transactions on our own taproot commitment
//! (`resolver::taproot_second_level`): the peer's `SIGHASH_SINGLE|SIGHASH_ANYONECANPAY` signature
//! made by the simulated peer and checked, ours by the simulated us (verified independently),
//! the witness classified as the holder's timeout or success path with the preimage read back.

use bitcoin::taproot::Signature;
use bitcoin::Transaction;

use super::taproot::{classify, secrets, tap_tx, taproot_world};
use super::taproot_sign::verified;
use crate::action::taproot::SECOND_LEVEL_COUNTERPARTY_SIGHASH;
use crate::action::{
    Basepoint, KeyTweak, SigningKey, TapSignPath, TaprootSignInput, TaprootSignOutcome,
    TaprootSignRequest,
};
use crate::bolt3::taproot::classify::{classify_witness, TaprootSpendKind};
use crate::bolt3::PaymentPreimage;
use crate::close::taproot::{TaprootContract, TaprootOutput};
use crate::resolver::taproot_second_level::{taproot_second_level, TaprootSecondLevelError};
use crate::types::{ClaimId, Party, RequestId};

const CLOSE_HEIGHT: u32 = 590;
const REQUEST: RequestId = RequestId {
    claim: ClaimId(6),
    attempt: 0,
};

/// The peer's signature of our second-level transaction for `c`, as it sends it with
/// `commitment_signed`: its HTLC key on our commitment, `SINGLE|ANYONECANPAY`.
fn peer_signature(w: &super::World, close: &Transaction, c: &TaprootContract) -> Signature {
    let TaprootOutput::Htlc(h) = &c.output else {
        panic!("not an HTLC")
    };
    let tx = h.second_level_tx.clone().unwrap();
    let leaf = if h.htlc.offered {
        &h.timeout
    } else {
        &h.success
    };
    let request = TaprootSignRequest {
        request: REQUEST,
        tx: crate::types::RawTx(tx),
        prevouts: vec![close.output[c.vout as usize].clone()],
        inputs: vec![TaprootSignInput {
            input: 0,
            path: TapSignPath::from(leaf),
            sighash: SECOND_LEVEL_COUNTERPARTY_SIGHASH,
            key: SigningKey::Channel {
                channel: w.data.info.id,
                basepoint: Basepoint::Htlc,
                tweak: KeyTweak::PerCommitmentPoint {
                    point: c.per_commitment_point.unwrap(),
                },
            },
        }],
    };
    match secrets(w, Party::Remote).sign_taproot(&request) {
        TaprootSignOutcome::Signed { signatures } => signatures[0].signature,
        TaprootSignOutcome::Failed { reason } => panic!("{reason}"),
    }
}

fn preimage_of(w: &super::World, c: &TaprootContract) -> PaymentPreimage {
    let TaprootOutput::Htlc(h) = &c.output else {
        panic!("not an HTLC")
    };
    let n = w.sim.local_commitment_number();
    w.sim
        .state(Party::Local, n)
        .unwrap()
        .htlcs
        .values()
        .find(|s| s.preimage.payment_hash() == h.htlc.payment_hash)
        .unwrap()
        .preimage
}

#[test]
fn our_taproot_htlc_timeout_and_success_transactions_carry_both_signatures_and_the_preimage() {
    let (w, _) = taproot_world(81);
    let close = tap_tx(&w, Party::Local, w.sim.local_commitment_number());
    let contracts = classify(&w, &close, None).contracts;
    let id = w.data.info.id;
    let mut kinds = (0, 0);
    for c in &contracts {
        let TaprootOutput::Htlc(h) = &c.output else {
            continue;
        };
        let peer = peer_signature(&w, &close, c);
        assert_eq!(
            peer.serialize().len(),
            65,
            "SINGLE|ANYONECANPAY carries its type byte"
        );
        let preimage = (!h.htlc.offered).then(|| preimage_of(&w, c));
        let second = taproot_second_level(id, &close, CLOSE_HEIGHT, c, peer, preimage).unwrap();
        let request = second.sign_request(REQUEST);
        let outcome = secrets(&w, Party::Local).sign_taproot(&request);
        // Our key in both leaves: `<local_htlcpubkey> OP_CHECKSIGVERIFY`, before the peer's.
        let leaf = second.leaf.leaf.as_bytes();
        let at = leaf.len() - 33 - 2 - 32;
        let ours = bitcoin::XOnlyPublicKey::from_slice(&leaf[at..at + 32]).unwrap();
        verified(&request, outcome.clone(), ours);
        let TaprootSignOutcome::Signed { signatures } = outcome else {
            unreachable!()
        };
        let tx = second.finish(&signatures[0].signature);
        assert_eq!(tx.input[0].previous_output.txid, close.compute_txid());
        match classify_witness(&tx.input[0].witness).unwrap() {
            TaprootSpendKind::OfferedTimeout => {
                assert!(h.htlc.offered);
                assert_eq!(tx.lock_time.to_consensus_u32(), h.htlc.cltv_expiry);
                assert_eq!(
                    second.mature_at,
                    (CLOSE_HEIGHT + 1).max(h.htlc.cltv_expiry + 1)
                );
                kinds.0 += 1;
            }
            TaprootSpendKind::AcceptedSuccess { preimage: p } => {
                assert_eq!(Some(p), preimage);
                assert_eq!(second.mature_at, CLOSE_HEIGHT + 1);
                kinds.1 += 1;
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(kinds.0 > 0 && kinds.1 > 0, "{kinds:?}");
}

#[test]
fn a_bad_peer_signature_a_missing_preimage_or_the_peers_commitment_are_refused() {
    let (w, _) = taproot_world(82);
    let id = w.data.info.id;
    let close = tap_tx(&w, Party::Local, w.sim.local_commitment_number());
    let contracts = classify(&w, &close, None).contracts;
    let find = |offered: bool| {
        contracts
            .iter()
            .find(|c| matches!(&c.output, TaprootOutput::Htlc(h) if h.htlc.offered == offered))
            .unwrap()
    };
    let (offered, received) = (find(true), find(false));
    let good = peer_signature(&w, &close, offered);
    // Another output's signature, a flipped bit, another sighash type.
    let wrong = peer_signature(&w, &close, received);
    let mut flipped = good;
    let mut bytes = flipped.signature.serialize();
    bytes[5] ^= 1;
    flipped.signature = bitcoin::secp256k1::schnorr::Signature::from_slice(&bytes).unwrap();
    let mut retyped = good;
    retyped.sighash_type = bitcoin::sighash::TapSighashType::All;
    for bad in [wrong, flipped, retyped] {
        assert_eq!(
            taproot_second_level(id, &close, CLOSE_HEIGHT, offered, bad, None),
            Err(TaprootSecondLevelError::BadPeerSignature { vout: offered.vout })
        );
    }
    // An HTLC we received: without its preimage, or with another.
    let sig = peer_signature(&w, &close, received);
    for p in [None, Some(PaymentPreimage([3; 32]))] {
        assert_eq!(
            taproot_second_level(id, &close, CLOSE_HEIGHT, received, sig, p),
            Err(TaprootSecondLevelError::Preimage {
                vout: received.vout
            })
        );
    }
    // The peer's commitment has no second-level transaction of ours; nor has `to_local`.
    let theirs = tap_tx(&w, Party::Remote, w.sim.remote_commitment_number());
    let t = classify(&w, &theirs, None).contracts;
    let htlc = t
        .iter()
        .find(|c| matches!(c.output, TaprootOutput::Htlc(_)))
        .unwrap();
    assert_eq!(
        taproot_second_level(id, &theirs, CLOSE_HEIGHT, htlc, good, None),
        Err(TaprootSecondLevelError::NotOurs { vout: htlc.vout })
    );
    let balance = contracts
        .iter()
        .find(|c| matches!(c.output, TaprootOutput::ToLocal { .. }))
        .unwrap();
    assert_eq!(
        taproot_second_level(id, &close, CLOSE_HEIGHT, balance, good, None),
        Err(TaprootSecondLevelError::NotOurs { vout: balance.vout })
    );
    // Another transaction than the commitment it was built on.
    assert_eq!(
        taproot_second_level(id, &theirs, CLOSE_HEIGHT, offered, good, None),
        Err(TaprootSecondLevelError::MissingOutput { vout: offered.vout })
    );
}
