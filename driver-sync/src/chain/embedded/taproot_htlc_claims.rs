//! Bitcoin Core's script interpreter (the kernel, TAPROOT, every spent output given) on core's
//! direct HTLC claims on the peer's simple taproot commitment (`resolver::taproot_htlc_claim`,
//! issue 21), signed by the driver's signer: an HTLC we received, by its success leaf with the
//! preimage, and one we offered, by its timeout leaf with nLockTime `cltv_expiry`. Each is
//! accepted as built, and refused with nSequence 0 (the leaves' `1 OP_CSV`), the timeout one also
//! with nLockTime one block short, the success one with another preimage. Also the sweep of our
//! own second-level output by its delay leaf.

use bitcoin::absolute::LockTime;
use bitcoin::hashes::Hash;
use bitcoin::secp256k1::PublicKey;
use bitcoin::{Amount, FeeRate, ScriptBuf, Sequence, Transaction, TxOut, WPubkeyHash, Witness};
use contractcourt_core::action::TaprootSignOutcome;
use contractcourt_core::bolt3::commitment::CommitmentHtlc;
use contractcourt_core::bolt3::taproot::{accepted_htlc, offered_htlc, second_level, TapOutput};
use contractcourt_core::bolt3::{keys, CommitmentKeys, PaymentPreimage};
use contractcourt_core::close::taproot::{
    SecondLevelOutput, TapKeySpend, TapLeafSpend, TaprootContract, TaprootHtlcOutput, TaprootOutput,
};
use contractcourt_core::resolver::taproot_htlc_claim::{
    taproot_remote_htlc_claim, TaprootHtlcClaim,
};
use contractcourt_core::types::{ChannelId, ClaimId, Party, RequestId};

use super::script::verify_scripts;
use super::taproot_test_support::{refused, secrets};
use crate::signer::InMemorySigner;

const CHANNEL: ChannelId = ChannelId([43; 32]);
const EXPIRY: u32 = 800_010;
const PREIMAGE: PaymentPreimage = PaymentPreimage([6; 32]);

fn leaf(output: &TapOutput, script: &ScriptBuf) -> TapLeafSpend {
    TapLeafSpend {
        leaf: script.clone(),
        control_block: output.control_block(script).unwrap(),
    }
}

/// The contract of an HTLC output on the peer's commitment (the peer holds it) and a stand-in
/// close paying it at output 0. `offered`: the peer offered it (we received it).
fn htlc_on_their_commitment(offered: bool) -> (Transaction, TaprootContract) {
    htlc_on(Party::Remote, offered)
}

/// [`htlc_on_their_commitment`], on the commitment `holder` holds (`offered` by the holder).
fn htlc_on(holder: Party, offered: bool) -> (Transaction, TaprootContract) {
    let point = keys::per_commitment_point(&[9; 32]).unwrap();
    let (ours, theirs) = (secrets(0), secrets(10));
    let (h, c) = match holder {
        Party::Remote => (theirs.basepoints(), ours.basepoints()),
        Party::Local => (ours.basepoints(), theirs.basepoints()),
    };
    let k = CommitmentKeys::derive(&point, &h, &c).unwrap();
    let htlc = CommitmentHtlc {
        id: 0,
        offered,
        amount_msat: 60_000_000,
        payment_hash: PREIMAGE.payment_hash(),
        cltv_expiry: EXPIRY,
    };
    let (r, local, remote) = (
        &k.revocation_pubkey,
        &k.local_htlc_pubkey,
        &k.remote_htlc_pubkey,
    );
    let (output, timeout, success) = if offered {
        let o = offered_htlc::offered_htlc(r, local, remote, &htlc.payment_hash).unwrap();
        let (t, s) = (
            leaf(&o.output, &o.timeout_script),
            leaf(&o.output, &o.success_script),
        );
        (o.output, t, s)
    } else {
        let hash = &htlc.payment_hash;
        let a = accepted_htlc::accepted_htlc(r, local, remote, hash, EXPIRY).unwrap();
        let (t, s) = (
            leaf(&a.output, &a.timeout_script),
            leaf(&a.output, &a.success_script),
        );
        (a.output, t, s)
    };
    let l2 = second_level::second_level_htlc(r, &k.local_delayed_pubkey, 144).unwrap();
    let key_spend = |internal: &PublicKey, o: &TapOutput| TapKeySpend {
        internal_key: *internal,
        merkle_root: o.merkle_root(),
    };
    let close = Transaction {
        version: bitcoin::transaction::Version::TWO,
        lock_time: LockTime::ZERO,
        input: Vec::new(),
        output: vec![TxOut {
            value: Amount::from_sat(60_000),
            script_pubkey: output.script_pubkey(),
        }],
    };
    let contract = TaprootContract {
        vout: 0,
        value_sat: 60_000,
        owner: if offered { holder } else { other(holder) },
        revoked: false,
        output: TaprootOutput::Htlc(Box::new(TaprootHtlcOutput {
            htlc,
            revocation: key_spend(r, &output),
            timeout,
            success,
            second_level: SecondLevelOutput {
                script_pubkey: l2.output.script_pubkey(),
                delay: leaf(&l2.output, &l2.delay_script),
                revocation: key_spend(r, &l2.output),
            },
            second_level_tx: None,
        })),
        per_commitment_point: Some(point),
    };
    (close, contract)
}

fn other(p: Party) -> Party {
    match p {
        Party::Local => Party::Remote,
        Party::Remote => Party::Local,
    }
}

/// `claim` with its transaction edited by `edit` before it is signed by the driver's signer.
fn signed(claim: &TaprootHtlcClaim, edit: impl FnOnce(&mut Transaction)) -> Transaction {
    let mut signer = InMemorySigner::new();
    signer.add_channel(CHANNEL, secrets(0));
    let destination = ScriptBuf::new_p2wpkh(&WPubkeyHash::from_byte_array([4; 20]));
    let mut tx = claim
        .tx(destination, FeeRate::from_sat_per_kwu(2_500))
        .unwrap();
    edit(&mut tx);
    let id = RequestId {
        claim: ClaimId(1),
        attempt: 0,
    };
    match signer.sign_taproot(&claim.sign_request(id, &tx)) {
        TaprootSignOutcome::Signed { signatures } => claim.finish(tx, &signatures[0].signature),
        TaprootSignOutcome::Failed { reason } => panic!("{reason}"),
    }
}

#[test]
fn bitcoin_core_accepts_our_taproot_success_claim_with_the_preimage_and_refuses_it_otherwise() {
    let (close, contract) = htlc_on_their_commitment(true);
    let claim = taproot_remote_htlc_claim(CHANNEL, &close, 800, &contract, Some(PREIMAGE)).unwrap();
    let prevout = &claim.prevout;
    let tx = signed(&claim, |_| {});
    assert_eq!(verify_scripts(&tx, std::slice::from_ref(prevout)), Ok(()));
    assert!(tx.weight().to_wu() <= claim.max_weight(&tx));
    refused(
        &signed(&claim, |tx| tx.input[0].sequence = Sequence::ZERO),
        prevout,
    );
    // Another 32-byte preimage in the witness (the signature does not commit to it).
    let mut other = tx.clone();
    let mut items: Vec<Vec<u8>> = other.input[0].witness.iter().map(<[u8]>::to_vec).collect();
    items[1] = vec![7; 32];
    other.input[0].witness = Witness::from_slice(&items);
    refused(&other, prevout);
}

#[test]
fn bitcoin_core_accepts_our_taproot_timeout_claim_at_the_expiry_and_refuses_it_a_block_early() {
    let (close, contract) = htlc_on_their_commitment(false);
    let claim = taproot_remote_htlc_claim(CHANNEL, &close, 800, &contract, None).unwrap();
    let prevout = &claim.prevout;
    let tx = signed(&claim, |_| {});
    assert_eq!(tx.lock_time, LockTime::from_height(EXPIRY).unwrap());
    assert_eq!(verify_scripts(&tx, std::slice::from_ref(prevout)), Ok(()));
    assert!(tx.weight().to_wu() <= claim.max_weight(&tx));
    refused(
        &signed(&claim, |tx| tx.input[0].sequence = Sequence::ZERO),
        prevout,
    );
    let early = |tx: &mut Transaction| tx.lock_time = LockTime::from_height(EXPIRY - 1).unwrap();
    refused(&signed(&claim, early), prevout);
}

/// Core's sweep of our own second-level output (`taproot_sweep::taproot_second_level_sweep`: the
/// delay leaf after `to_self_delay`), signed by the driver's signer: accepted by Bitcoin Core, and
/// refused re-signed with nSequence one short of the delay.
#[test]
fn bitcoin_core_accepts_our_second_level_output_sweep_and_refuses_it_a_block_early() {
    use contractcourt_core::resolver::taproot_sweep::{taproot_second_level_sweep, TaprootSweep};

    let (_, contract) = htlc_on(Party::Local, true);
    let TaprootOutput::Htlc(h) = &contract.output else {
        unreachable!()
    };
    // A stand-in for our confirmed HTLC-timeout transaction: output 0 pays the second level.
    let htlc_tx = Transaction {
        version: bitcoin::transaction::Version::TWO,
        lock_time: LockTime::from_height(EXPIRY).unwrap(),
        input: Vec::new(),
        output: vec![TxOut {
            value: Amount::from_sat(59_000),
            script_pubkey: h.second_level.script_pubkey.clone(),
        }],
    };
    let point = contract.per_commitment_point.unwrap();
    let sweep = taproot_second_level_sweep(CHANNEL, &htlc_tx, 0, 800, h, 144, point).unwrap();
    let sign = |sweep: &TaprootSweep| {
        let mut signer = InMemorySigner::new();
        signer.add_channel(CHANNEL, secrets(0));
        let destination = ScriptBuf::new_p2wpkh(&WPubkeyHash::from_byte_array([4; 20]));
        let tx = sweep
            .tx(destination, FeeRate::from_sat_per_kwu(2_500))
            .unwrap();
        let id = RequestId {
            claim: ClaimId(2),
            attempt: 0,
        };
        match signer.sign_taproot(&sweep.sign_request(id, &tx)) {
            TaprootSignOutcome::Signed { signatures } => sweep.finish(tx, &signatures[0].signature),
            TaprootSignOutcome::Failed { reason } => panic!("{reason}"),
        }
    };
    let tx = sign(&sweep);
    let prevout = &sweep.prevout;
    assert_eq!(verify_scripts(&tx, std::slice::from_ref(prevout)), Ok(()));
    let mut early = sweep.clone();
    early.sequence = Sequence::from_height(143);
    refused(&sign(&early), prevout);
}

/// Core's completion of our own second-level HTLC transactions
/// (`resolver::taproot_second_level`): the peer's `SIGHASH_SINGLE|SIGHASH_ANYONECANPAY` signature
/// from the peer's signer, ours from ours, the preimage for the success one. Bitcoin Core accepts
/// both, and refuses each with our signature's bit flipped.
#[test]
fn bitcoin_core_accepts_our_completed_taproot_htlc_timeout_and_success_transactions() {
    use contractcourt_core::action::taproot::SECOND_LEVEL_COUNTERPARTY_SIGHASH;
    use contractcourt_core::action::{
        Basepoint, KeyTweak, SigningKey, TapSignPath, TaprootSignInput, TaprootSignRequest,
    };
    use contractcourt_core::resolver::taproot_second_level::taproot_second_level;
    use contractcourt_core::types::RawTx;

    let signer = |b: u8| {
        let mut s = InMemorySigner::new();
        s.add_channel(CHANNEL, secrets(b));
        s
    };
    let (ours, theirs) = (signer(0), signer(10));
    for offered in [true, false] {
        let (close, mut contract) = htlc_on(Party::Local, offered);
        let point = contract.per_commitment_point.unwrap();
        let TaprootOutput::Htlc(h) = &mut contract.output else {
            unreachable!()
        };
        // Our HTLC-timeout (locktime the expiry) or HTLC-success transaction, as bolt3 builds it.
        let htlc_tx = Transaction {
            version: bitcoin::transaction::Version::TWO,
            lock_time: if offered {
                LockTime::from_height(EXPIRY).unwrap()
            } else {
                LockTime::ZERO
            },
            input: vec![bitcoin::TxIn {
                previous_output: bitcoin::OutPoint::new(close.compute_txid(), 0),
                sequence: Sequence::from_height(1),
                ..Default::default()
            }],
            output: vec![TxOut {
                value: Amount::from_sat(60_000),
                script_pubkey: h.second_level.script_pubkey.clone(),
            }],
        };
        h.second_level_tx = Some(htlc_tx.clone());
        let leaf = if offered { &h.timeout } else { &h.success };
        let id = RequestId {
            claim: ClaimId(3),
            attempt: 0,
        };
        let request = TaprootSignRequest {
            request: id,
            tx: RawTx(htlc_tx),
            prevouts: vec![close.output[0].clone()],
            inputs: vec![TaprootSignInput {
                input: 0,
                path: TapSignPath::from(leaf),
                sighash: SECOND_LEVEL_COUNTERPARTY_SIGHASH,
                key: SigningKey::Channel {
                    channel: CHANNEL,
                    basepoint: Basepoint::Htlc,
                    tweak: KeyTweak::PerCommitmentPoint { point },
                },
            }],
        };
        let TaprootSignOutcome::Signed { signatures } = theirs.sign_taproot(&request) else {
            panic!("the peer's signer refused");
        };
        let preimage = (!offered).then_some(PREIMAGE);
        let second = taproot_second_level(
            CHANNEL,
            &close,
            800,
            &contract,
            signatures[0].signature,
            preimage,
        )
        .unwrap();
        let TaprootSignOutcome::Signed { signatures } = ours.sign_taproot(&second.sign_request(id))
        else {
            panic!("our signer refused");
        };
        let mut sig = signatures[0].signature;
        let tx = second.finish(&sig);
        let prevout = &second.prevout;
        assert_eq!(
            verify_scripts(&tx, std::slice::from_ref(prevout)),
            Ok(()),
            "offered {offered}"
        );
        let mut bytes = sig.signature.serialize();
        bytes[3] ^= 1;
        sig.signature = bitcoin::secp256k1::schnorr::Signature::from_slice(&bytes).unwrap();
        refused(&second.finish(&sig), prevout);
    }
}
