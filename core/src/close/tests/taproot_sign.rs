//! Taproot sign requests (`action::taproot`) over the contracts of taproot closes, served by the
//! simulated signer. Each signature is verified independently of the code under test: the BIP
//! 341 sighash recomputed here with the `bitcoin` crate, BIP 340 verification under the key
//! pushed in the leaf (script path) or the spent output's key (key path).

use bitcoin::hashes::Hash;
use bitcoin::secp256k1::Message;
use bitcoin::sighash::{Prevouts, SighashCache, TapSighashType};
use bitcoin::taproot::{LeafVersion, TapLeafHash};
use bitcoin::{Amount, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, XOnlyPublicKey};

use super::taproot::{classify, output_key, secrets, tap_tx, taproot_world};
use crate::action::taproot::{TaprootSignError, SECOND_LEVEL_COUNTERPARTY_SIGHASH};
use crate::action::{
    Basepoint, KeyTweak, SigningKey, TapSignPath, TaprootSignInput, TaprootSignOutcome,
    TaprootSignRequest,
};
use crate::close::taproot::{TaprootContract, TaprootOutput};
use crate::types::{ChannelId, Party, RawTx, RequestId};

/// A one-input spend of `c` (an output of `close_tx`) to a P2WPKH-sized output.
fn spend_of(close_tx: &Transaction, c: &TaprootContract) -> (Transaction, Vec<TxOut>) {
    let prevout = close_tx.output[c.vout as usize].clone();
    let tx = Transaction {
        version: bitcoin::transaction::Version::TWO,
        lock_time: bitcoin::absolute::LockTime::ZERO,
        input: vec![TxIn {
            previous_output: OutPoint::new(close_tx.compute_txid(), c.vout),
            sequence: Sequence(1),
            ..TxIn::default()
        }],
        output: vec![TxOut {
            value: Amount::from_sat(c.value_sat / 2),
            script_pubkey: ScriptBuf::new_op_return([1u8; 4]),
        }],
    };
    (tx, vec![prevout])
}

fn request(
    tx: Transaction,
    prevouts: Vec<TxOut>,
    path: TapSignPath,
    key: SigningKey,
) -> TaprootSignRequest {
    request_with(tx, prevouts, path, key, TapSighashType::Default)
}

fn request_with(
    tx: Transaction,
    prevouts: Vec<TxOut>,
    path: TapSignPath,
    key: SigningKey,
    sighash: TapSighashType,
) -> TaprootSignRequest {
    TaprootSignRequest {
        request: RequestId {
            claim: crate::types::ClaimId(7),
            attempt: 0,
        },
        tx: RawTx(tx),
        prevouts,
        inputs: vec![TaprootSignInput {
            input: 0,
            path,
            sighash,
            key,
        }],
    }
}

fn channel_key(channel: ChannelId, basepoint: Basepoint, tweak: KeyTweak) -> SigningKey {
    SigningKey::Channel {
        channel,
        basepoint,
        tweak,
    }
}

/// The one signature of a signed request, verified: recomputed sighash, BIP 340 under `key`.
pub(super) fn verified(req: &TaprootSignRequest, outcome: TaprootSignOutcome, key: XOnlyPublicKey) {
    let TaprootSignOutcome::Signed { signatures } = outcome else {
        panic!("{outcome:?}");
    };
    assert_eq!(signatures.len(), 1);
    let input = &req.inputs[0];
    let sig = signatures[0].signature;
    assert_eq!(sig.sighash_type, input.sighash);
    let mut cache = SighashCache::new(&req.tx.0);
    let prevouts = Prevouts::All(&req.prevouts);
    let hash = match &input.path {
        TapSignPath::ScriptPath { leaf } => cache.taproot_script_spend_signature_hash(
            0,
            &prevouts,
            TapLeafHash::from_script(leaf, LeafVersion::TapScript),
            input.sighash,
        ),
        TapSignPath::KeyPath { .. } => {
            cache.taproot_key_spend_signature_hash(0, &prevouts, input.sighash)
        }
    }
    .unwrap();
    let msg = Message::from_digest(hash.to_byte_array());
    crate::bolt3::secp()
        .verify_schnorr(&sig.signature, &msg, &key)
        .unwrap();
    // 64 bytes under SIGHASH_DEFAULT, 65 with the type byte otherwise.
    let len = if input.sighash == TapSighashType::Default {
        64
    } else {
        65
    };
    assert_eq!(sig.serialize().len(), len);
}

fn leaf_key(leaf: &ScriptBuf, at: usize) -> XOnlyPublicKey {
    XOnlyPublicKey::from_slice(&leaf.as_bytes()[at..at + 32]).unwrap()
}

#[test]
fn the_sim_signs_our_taproot_commitments_delay_leaf_and_anchor_key_path() {
    let (w, _) = taproot_world(41);
    let id = w.data.info.id;
    let n = w.sim.local_commitment_number();
    let tx = tap_tx(&w, Party::Local, n);
    let point = w
        .sim
        .commitment_spec(Party::Local, n)
        .unwrap()
        .keys
        .per_commitment_point;
    let ours = secrets(&w, Party::Local);
    let close = classify(&w, &tx, None);
    let delayed = channel_key(
        id,
        Basepoint::DelayedPayment,
        KeyTweak::PerCommitmentPoint { point },
    );
    let mut signed = 0;
    for c in close.contracts.iter().filter(|c| c.owner == Party::Local) {
        let (spend, prevouts) = spend_of(&tx, c);
        let spk = &prevouts[0].script_pubkey;
        match &c.output {
            TaprootOutput::ToLocal { delay, .. } => {
                let req = request(spend, prevouts.clone(), delay.into(), delayed.clone());
                verified(&req, ours.sign_taproot(&req), leaf_key(&delay.leaf, 1));
                // The payment key is not in the delay leaf: refused, typed.
                let secret = ours.payment_base;
                assert_eq!(
                    req.sign_input(&req.inputs[0], &secret),
                    Err(TaprootSignError::KeyNotInLeaf { input: 0 })
                );
                signed += 1;
            }
            TaprootOutput::Anchor { key, .. } => {
                let req = request(spend.clone(), prevouts.clone(), key.into(), delayed.clone());
                verified(&req, ours.sign_taproot(&req), output_key(spk));
                // Another root: the tweaked key is not the output's.
                let wrong = TapSignPath::KeyPath { merkle_root: None };
                let req = request(spend, prevouts, wrong, delayed.clone());
                assert!(matches!(
                    ours.sign_taproot(&req),
                    TaprootSignOutcome::Failed { reason } if reason.contains("not the spent output's key")
                ));
                signed += 1;
            }
            _ => {}
        }
    }
    assert_eq!(signed, 2);
}

#[test]
fn the_sim_signs_a_breachs_revocation_paths_and_our_to_remote() {
    let (w, log) = taproot_world(42);
    let id = w.data.info.id;
    let n = 2;
    let tx = tap_tx(&w, Party::Remote, n);
    let secret = w.secret(n);
    let ours = secrets(&w, Party::Local);
    let close = classify(&w, &tx, Some(&log[n as usize]));
    let revocation = channel_key(
        id,
        Basepoint::Revocation,
        KeyTweak::Revocation {
            per_commitment_secret: secret,
        },
    );
    let (mut htlcs, mut to_local, mut to_remote) = (0, 0, 0);
    for c in &close.contracts {
        let (spend, prevouts) = spend_of(&tx, c);
        let spk = prevouts[0].script_pubkey.clone();
        let (req, key) = match &c.output {
            TaprootOutput::Htlc(h) => {
                htlcs += 1;
                let path = (&h.revocation).into();
                (
                    request(spend, prevouts, path, revocation.clone()),
                    output_key(&spk),
                )
            }
            TaprootOutput::ToLocal { revoke, .. } => {
                to_local += 1;
                let key = leaf_key(&revoke.leaf, 35);
                (
                    request(spend, prevouts, revoke.into(), revocation.clone()),
                    key,
                )
            }
            TaprootOutput::ToRemote { leaf } => {
                to_remote += 1;
                let payment = channel_key(id, Basepoint::Payment, KeyTweak::None);
                (
                    request(spend, prevouts, leaf.into(), payment),
                    leaf_key(&leaf.leaf, 1),
                )
            }
            TaprootOutput::Anchor { .. } => continue,
        };
        verified(&req, ours.sign_taproot(&req), key);
    }
    assert!(htlcs > 0);
    assert_eq!((to_local, to_remote), (1, 1));
}

/// Our signature on the peer's HTLC-timeout transaction is the counterparty's
/// `SIGHASH_SINGLE|SIGHASH_ANYONECANPAY` one: 65 bytes ending `0x83`, over their timeout leaf.
#[test]
fn the_sim_signs_the_peers_second_level_with_single_anyonecanpay() {
    let (w, _) = taproot_world(43);
    let id = w.data.info.id;
    let n = w.sim.remote_commitment_number();
    let tx = tap_tx(&w, Party::Remote, n);
    let point = w
        .sim
        .commitment_spec(Party::Remote, n)
        .unwrap()
        .keys
        .per_commitment_point;
    let close = classify(&w, &tx, None);
    let offered = close.contracts.iter().find_map(|c| match &c.output {
        TaprootOutput::Htlc(h) if h.htlc.offered => Some((c, h)),
        _ => None,
    });
    let (c, h) = offered.expect("the peer offered HTLCs");
    let (spend, prevouts) = spend_of(&tx, c);
    let htlc = channel_key(id, Basepoint::Htlc, KeyTweak::PerCommitmentPoint { point });
    let sighash = SECOND_LEVEL_COUNTERPARTY_SIGHASH;
    let req = request_with(spend, prevouts, (&h.timeout).into(), htlc, sighash);
    let outcome = secrets(&w, Party::Local).sign_taproot(&req);
    // <local_htlcpubkey> OP_CHECKSIGVERIFY <remote_htlcpubkey> OP_CHECKSIG: ours is the second.
    verified(&req, outcome.clone(), leaf_key(&h.timeout.leaf, 35));
    let TaprootSignOutcome::Signed { signatures } = outcome else {
        unreachable!()
    };
    assert_eq!(signatures[0].signature.serialize().last(), Some(&0x83));
}

#[test]
fn malformed_taproot_sign_requests_are_refused_with_typed_errors() {
    let (w, _) = taproot_world(44);
    let id = w.data.info.id;
    let n = w.sim.remote_commitment_number();
    let tx = tap_tx(&w, Party::Remote, n);
    let close = classify(&w, &tx, None);
    let c = close
        .contracts
        .iter()
        .find(|c| matches!(c.output, TaprootOutput::ToRemote { .. }))
        .unwrap();
    let TaprootOutput::ToRemote { leaf } = &c.output else {
        unreachable!()
    };
    let (spend, prevouts) = spend_of(&tx, c);
    let payment = channel_key(id, Basepoint::Payment, KeyTweak::None);
    let ours = secrets(&w, Party::Local);
    let good = request(spend, prevouts, leaf.into(), payment);
    // No prevouts: a BIP 341 sighash commits to all of them.
    let mut req = good.clone();
    req.prevouts.clear();
    let err = req
        .sign_input(&req.inputs[0], &ours.payment_base)
        .unwrap_err();
    assert!(matches!(err, TaprootSignError::Sighash(_)), "{err:?}");
    // An input the transaction does not have.
    let mut req = good.clone();
    req.inputs[0].input = 3;
    assert!(matches!(
        req.sign_input(&req.inputs[0], &ours.payment_base),
        Err(TaprootSignError::Sighash(_))
    ));
    assert!(matches!(
        ours.sign_taproot(&req),
        TaprootSignOutcome::Failed { .. }
    ));
    // A wallet input.
    let mut req = good.clone();
    req.inputs[0].key = SigningKey::Wallet;
    assert_eq!(
        ours.sign_taproot(&req),
        TaprootSignOutcome::Failed {
            reason: TaprootSignError::WalletInput { input: 0 }.to_string()
        }
    );
    // Requests and answers go through JSON unchanged.
    let json = serde_json::to_string(&good).unwrap();
    assert_eq!(
        serde_json::from_str::<TaprootSignRequest>(&json).unwrap(),
        good
    );
    let outcome = ours.sign_taproot(&good);
    let json = serde_json::to_string(&outcome).unwrap();
    assert_eq!(
        serde_json::from_str::<TaprootSignOutcome>(&json).unwrap(),
        outcome
    );
}
