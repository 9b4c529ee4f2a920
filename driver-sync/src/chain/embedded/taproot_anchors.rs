//! Bitcoin Core's script interpreter (the kernel, TAPROOT, every spent output given) on core's
//! taproot anchor spends (`resolver::taproot_anchor`, issue 21): our anchor on our commitment by
//! its key path (delayed payment key tweaked with the commitment's point, then tap-tweaked),
//! signed by the driver's signer — accepted, refused with the signature flipped; and anyone's
//! `OP_16 OP_CSV` leaf — accepted at nSequence 16, refused at 15.

use bitcoin::absolute::LockTime;
use bitcoin::transaction::Version;
use bitcoin::{Amount, ScriptBuf, Transaction, TxIn, TxOut};
use contractcourt_core::action::TaprootSignOutcome;
use contractcourt_core::bolt3::taproot::anchor;
use contractcourt_core::bolt3::{keys, CommitmentKeys};
use contractcourt_core::close::taproot::{
    TapKeySpend, TapLeafSpend, TaprootContract, TaprootOutput,
};
use contractcourt_core::resolver::taproot_anchor::{
    taproot_anyone_anchor, taproot_own_anchor, TaprootAnchorInput,
};
use contractcourt_core::types::{ChannelId, ClaimId, Party, RequestId};

use super::script::verify_scripts;
use super::taproot_test_support::{refused, secrets};
use crate::signer::InMemorySigner;

const CHANNEL: ChannelId = ChannelId([47; 32]);

/// Our commitment's own anchor (holder's: `local_delayedpubkey`) at output 0 of a stand-in close.
fn our_anchor() -> (Transaction, TaprootContract) {
    let point = keys::per_commitment_point(&[11; 32]).unwrap();
    let (ours, theirs) = (secrets(0), secrets(10));
    let k = CommitmentKeys::derive(&point, &ours.basepoints(), &theirs.basepoints()).unwrap();
    let a = anchor::local_anchor(&k.local_delayed_pubkey).unwrap();
    let close = Transaction {
        version: Version::TWO,
        lock_time: LockTime::ZERO,
        input: Vec::new(),
        output: vec![TxOut {
            value: Amount::from_sat(330),
            script_pubkey: a.output.script_pubkey(),
        }],
    };
    let contract = TaprootContract {
        vout: 0,
        value_sat: 330,
        owner: Party::Local,
        revoked: false,
        output: TaprootOutput::Anchor {
            key: TapKeySpend {
                internal_key: k.local_delayed_pubkey,
                merkle_root: a.output.merkle_root(),
            },
            sweep: TapLeafSpend {
                leaf: a.script.clone(),
                control_block: a.output.control_block(&a.script).unwrap(),
            },
        },
        per_commitment_point: Some(point),
    };
    (close, contract)
}

/// A one-input spend of `anchor` with nSequence `sequence`.
fn child(anchor: &TaprootAnchorInput, sequence: bitcoin::Sequence) -> Transaction {
    Transaction {
        version: Version::TWO,
        lock_time: LockTime::ZERO,
        input: vec![TxIn {
            previous_output: anchor.outpoint,
            sequence,
            ..TxIn::default()
        }],
        output: vec![TxOut {
            value: Amount::ZERO,
            script_pubkey: ScriptBuf::new_op_return([1u8; 4]),
        }],
    }
}

#[test]
fn bitcoin_core_accepts_our_taproot_anchor_key_path_spend_and_refuses_a_flipped_signature() {
    let (close, contract) = our_anchor();
    let local = secrets(0).basepoints();
    let anchor = taproot_own_anchor(CHANNEL, &close, 700, &contract, &local).unwrap();
    let mut tx = child(&anchor, anchor.sequence);
    let mut signer = InMemorySigner::new();
    signer.add_channel(CHANNEL, secrets(0));
    let id = RequestId {
        claim: ClaimId(1),
        attempt: 0,
    };
    let request = anchor
        .sign_request(id, &tx, 0, vec![anchor.prevout.clone()])
        .unwrap();
    let TaprootSignOutcome::Signed { signatures } = signer.sign_taproot(&request) else {
        panic!("refused");
    };
    let mut sig = signatures[0].signature;
    tx.input[0].witness = anchor.witness(Some(&sig));
    let prevout = &anchor.prevout;
    assert_eq!(verify_scripts(&tx, std::slice::from_ref(prevout)), Ok(()));
    let mut bytes = sig.signature.serialize();
    bytes[7] ^= 1;
    sig.signature = bitcoin::secp256k1::schnorr::Signature::from_slice(&bytes).unwrap();
    tx.input[0].witness = anchor.witness(Some(&sig));
    refused(&tx, prevout);
}

#[test]
fn bitcoin_core_accepts_anyones_taproot_anchor_sweep_after_16_blocks_only() {
    let (close, contract) = our_anchor();
    let anchor = taproot_anyone_anchor(&close, 700, &contract).unwrap();
    let prevout = &anchor.prevout;
    let mut tx = child(&anchor, anchor.sequence);
    tx.input[0].witness = anchor.witness(None);
    assert_eq!(verify_scripts(&tx, std::slice::from_ref(prevout)), Ok(()));
    let mut early = child(&anchor, bitcoin::Sequence::from_height(15));
    early.input[0].witness = anchor.witness(None);
    refused(&early, prevout);
}
