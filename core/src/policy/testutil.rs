//! Hand-built keys, scripts and transactions for the policy unit tests.

use bitcoin::hashes::{hash160, ripemd160, sha256, Hash};
use bitcoin::opcodes::all::*;
use bitcoin::script::Builder;
use bitcoin::secp256k1::{PublicKey, SecretKey};
use bitcoin::transaction::Version;
use bitcoin::{
    absolute::LockTime, Amount, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Txid,
    WPubkeyHash, Witness,
};

use crate::bolt3::secp;

/// A fixed public key.
pub fn key() -> PublicKey {
    let secret = SecretKey::from_slice(&[0x42; 32]).unwrap();
    PublicKey::from_secret_key(secp(), &secret)
}

/// A signature-sized placeholder (72 bytes: DER plus sighash byte).
pub fn sig() -> Vec<u8> {
    let mut s = vec![0x30, 0x45];
    s.resize(72, 0x11);
    s
}

/// P2WPKH of [`key`].
pub fn p2wpkh_script() -> ScriptBuf {
    ScriptBuf::new_p2wpkh(&WPubkeyHash::from_byte_array(
        hash160::Hash::hash(&key().serialize()).to_byte_array(),
    ))
}

/// BOLT 3 `to_local`, with [`key`] for both keys.
pub fn to_local_script(delay: i64) -> ScriptBuf {
    Builder::new()
        .push_opcode(OP_IF)
        .push_slice(key().serialize())
        .push_opcode(OP_ELSE)
        .push_int(delay)
        .push_opcode(OP_CSV)
        .push_opcode(OP_DROP)
        .push_slice(key().serialize())
        .push_opcode(OP_ENDIF)
        .push_opcode(OP_CHECKSIG)
        .into_script()
}

/// BOLT 3 offered HTLC (no anchors), with [`key`] as the revocation key.
pub fn offered_htlc_script() -> ScriptBuf {
    let revocation_hash = hash160::Hash::hash(&key().serialize()).to_byte_array();
    let payment_hash = sha256::Hash::hash(b"preimage").to_byte_array();
    let payment_hash160 = ripemd160::Hash::hash(&payment_hash).to_byte_array();
    Builder::new()
        .push_opcode(OP_DUP)
        .push_opcode(OP_HASH160)
        .push_slice(revocation_hash)
        .push_opcode(OP_EQUAL)
        .push_opcode(OP_IF)
        .push_opcode(OP_CHECKSIG)
        .push_opcode(OP_ELSE)
        .push_slice(key().serialize())
        .push_opcode(OP_SWAP)
        .push_opcode(OP_SIZE)
        .push_int(32)
        .push_opcode(OP_EQUAL)
        .push_opcode(OP_NOTIF)
        .push_opcode(OP_DROP)
        .push_int(2)
        .push_opcode(OP_SWAP)
        .push_slice(key().serialize())
        .push_int(2)
        .push_opcode(OP_CHECKMULTISIG)
        .push_opcode(OP_ELSE)
        .push_opcode(OP_HASH160)
        .push_slice(payment_hash160)
        .push_opcode(OP_EQUALVERIFY)
        .push_opcode(OP_CHECKSIG)
        .push_opcode(OP_ENDIF)
        .push_opcode(OP_ENDIF)
        .into_script()
}

/// BOLT 3 anchor output script, with [`key`] as the funding key.
pub fn anchor_script() -> ScriptBuf {
    Builder::new()
        .push_slice(key().serialize())
        .push_opcode(OP_CHECKSIG)
        .push_opcode(OP_IFDUP)
        .push_opcode(OP_NOTIF)
        .push_int(16)
        .push_opcode(OP_CSV)
        .push_opcode(OP_ENDIF)
        .into_script()
}

/// `items` followed by `script`.
pub fn witness(items: &[&[u8]], script: &ScriptBuf) -> Witness {
    let mut w = Witness::new();
    for item in items {
        w.push(item);
    }
    w.push(script.as_bytes());
    w
}

/// A version-2 transaction with one input per witness (distinct dummy prevouts) and one
/// 10,000-sat P2WPKH output.
pub fn spend(witnesses: &[Witness]) -> Transaction {
    Transaction {
        version: Version::TWO,
        lock_time: LockTime::ZERO,
        input: witnesses
            .iter()
            .enumerate()
            .map(|(i, w)| TxIn {
                previous_output: OutPoint {
                    txid: Txid::from_byte_array([i as u8 + 1; 32]),
                    vout: 0,
                },
                script_sig: ScriptBuf::new(),
                sequence: Sequence::MAX,
                witness: w.clone(),
            })
            .collect(),
        output: vec![TxOut {
            value: Amount::from_sat(10_000),
            script_pubkey: p2wpkh_script(),
        }],
    }
}

/// A P2WSH prevout of `script` worth `sat`.
pub fn p2wsh_prevout(script: &ScriptBuf, sat: u64) -> TxOut {
    TxOut {
        value: Amount::from_sat(sat),
        script_pubkey: ScriptBuf::new_p2wsh(&script.wscript_hash()),
    }
}
