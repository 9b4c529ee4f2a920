//! The output scripts of BOLT 3: funding, `to_local`, `to_remote`, offered and received HTLCs
//! and anchors (BOLT 3 "Funding Transaction Output", "Commitment Transaction Outputs").
//!
//! These are the P2WSH/P2WPKH channel types' scripts. Simple taproot outputs are tap trees built
//! by [`super::taproot`]; of the functions taking a [`ChannelType`], only
//! [`to_remote_script_pubkey`] answers for it (the HTLC scripts given `SimpleTaproot` are the
//! P2WSH scripts without `1 OP_CSV`, which no simple taproot commitment contains).

use bitcoin::hashes::{hash160, ripemd160, Hash};
use bitcoin::opcodes::all::*;
use bitcoin::script::Builder;
use bitcoin::secp256k1::PublicKey;
use bitcoin::ScriptBuf;

use super::{ChannelType, CommitmentKeys, PaymentHash};

/// The 2-of-2 funding witness script: `2 <pubkey1> <pubkey2> 2 OP_CHECKMULTISIG`, keys in
/// lexicographic order of their compressed serialisation.
pub fn funding_script(a: &PublicKey, b: &PublicKey) -> ScriptBuf {
    let (first, second) = if a.serialize() <= b.serialize() {
        (a, b)
    } else {
        (b, a)
    };
    Builder::new()
        .push_opcode(OP_PUSHNUM_2)
        .push_slice(first.serialize())
        .push_slice(second.serialize())
        .push_opcode(OP_PUSHNUM_2)
        .push_opcode(OP_CHECKMULTISIG)
        .into_script()
}

/// The `to_local` witness script (also the output script of both HTLC transactions):
/// `OP_IF <revocationpubkey> OP_ELSE <to_self_delay> OP_CSV OP_DROP <local_delayedpubkey>
/// OP_ENDIF OP_CHECKSIG`.
pub fn to_local_script(
    revocation_pubkey: &PublicKey,
    to_self_delay: u16,
    local_delayed_pubkey: &PublicKey,
) -> ScriptBuf {
    Builder::new()
        .push_opcode(OP_IF)
        .push_slice(revocation_pubkey.serialize())
        .push_opcode(OP_ELSE)
        .push_int(i64::from(to_self_delay))
        .push_opcode(OP_CSV)
        .push_opcode(OP_DROP)
        .push_slice(local_delayed_pubkey.serialize())
        .push_opcode(OP_ENDIF)
        .push_opcode(OP_CHECKSIG)
        .into_script()
}

/// The anchors `to_remote` witness script: `<remotepubkey> OP_CHECKSIGVERIFY 1 OP_CSV`.
pub fn to_remote_anchor_script(remote_payment_pubkey: &PublicKey) -> ScriptBuf {
    Builder::new()
        .push_slice(remote_payment_pubkey.serialize())
        .push_opcode(OP_CHECKSIGVERIFY)
        .push_opcode(OP_PUSHNUM_1)
        .push_opcode(OP_CSV)
        .into_script()
}

/// The `to_remote` output's scriptPubKey: P2WPKH of `remotepubkey` (static remote key and
/// zero-fee commitments), P2WSH of [`to_remote_anchor_script`] (anchors), or the P2TR output of
/// simple taproot channels ([`super::taproot::commitment::to_remote_script_pubkey`]).
pub fn to_remote_script_pubkey(
    channel_type: ChannelType,
    remote_payment_pubkey: &PublicKey,
) -> ScriptBuf {
    match channel_type {
        ChannelType::StaticRemoteKey | ChannelType::ZeroFeeCommitments => {
            let key = bitcoin::CompressedPublicKey(*remote_payment_pubkey);
            ScriptBuf::new_p2wpkh(&key.wpubkey_hash())
        }
        ChannelType::AnchorsZeroFeeHtlc => {
            to_remote_anchor_script(remote_payment_pubkey).to_p2wsh()
        }
        ChannelType::SimpleTaproot => {
            super::taproot::commitment::to_remote_script_pubkey(remote_payment_pubkey)
        }
    }
}

fn revocation_hash(keys: &CommitmentKeys) -> [u8; 20] {
    hash160::Hash::hash(&keys.revocation_pubkey.serialize()).to_byte_array()
}

fn payment_hash160(payment_hash: &PaymentHash) -> [u8; 20] {
    ripemd160::Hash::hash(&payment_hash.0).to_byte_array()
}

fn push_anchor_csv(builder: Builder, channel_type: ChannelType) -> Builder {
    if channel_type.has_anchors() {
        builder
            .push_opcode(OP_PUSHNUM_1)
            .push_opcode(OP_CSV)
            .push_opcode(OP_DROP)
    } else {
        builder
    }
}

/// The offered-HTLC witness script: an HTLC the commitment's holder offered. The remote claims it
/// with the preimage, the holder only through the 2-of-2 HTLC-timeout transaction, and the
/// remote by revocation once the commitment is revoked.
pub fn offered_htlc_script(
    keys: &CommitmentKeys,
    payment_hash: &PaymentHash,
    channel_type: ChannelType,
) -> ScriptBuf {
    let builder = Builder::new()
        .push_opcode(OP_DUP)
        .push_opcode(OP_HASH160)
        .push_slice(revocation_hash(keys))
        .push_opcode(OP_EQUAL)
        .push_opcode(OP_IF)
        .push_opcode(OP_CHECKSIG)
        .push_opcode(OP_ELSE)
        .push_slice(keys.remote_htlc_pubkey.serialize())
        .push_opcode(OP_SWAP)
        .push_opcode(OP_SIZE)
        .push_int(32)
        .push_opcode(OP_EQUAL)
        .push_opcode(OP_NOTIF)
        .push_opcode(OP_DROP)
        .push_opcode(OP_PUSHNUM_2)
        .push_opcode(OP_SWAP)
        .push_slice(keys.local_htlc_pubkey.serialize())
        .push_opcode(OP_PUSHNUM_2)
        .push_opcode(OP_CHECKMULTISIG)
        .push_opcode(OP_ELSE)
        .push_opcode(OP_HASH160)
        .push_slice(payment_hash160(payment_hash))
        .push_opcode(OP_EQUALVERIFY)
        .push_opcode(OP_CHECKSIG)
        .push_opcode(OP_ENDIF);
    push_anchor_csv(builder, channel_type)
        .push_opcode(OP_ENDIF)
        .into_script()
}

/// The received-HTLC witness script: an HTLC the commitment's holder received. The holder claims
/// it with the preimage through the 2-of-2 HTLC-success transaction, the remote after
/// `cltv_expiry`, and the remote by revocation once the commitment is revoked.
pub fn received_htlc_script(
    keys: &CommitmentKeys,
    payment_hash: &PaymentHash,
    cltv_expiry: u32,
    channel_type: ChannelType,
) -> ScriptBuf {
    let builder = Builder::new()
        .push_opcode(OP_DUP)
        .push_opcode(OP_HASH160)
        .push_slice(revocation_hash(keys))
        .push_opcode(OP_EQUAL)
        .push_opcode(OP_IF)
        .push_opcode(OP_CHECKSIG)
        .push_opcode(OP_ELSE)
        .push_slice(keys.remote_htlc_pubkey.serialize())
        .push_opcode(OP_SWAP)
        .push_opcode(OP_SIZE)
        .push_int(32)
        .push_opcode(OP_EQUAL)
        .push_opcode(OP_IF)
        .push_opcode(OP_HASH160)
        .push_slice(payment_hash160(payment_hash))
        .push_opcode(OP_EQUALVERIFY)
        .push_opcode(OP_PUSHNUM_2)
        .push_opcode(OP_SWAP)
        .push_slice(keys.local_htlc_pubkey.serialize())
        .push_opcode(OP_PUSHNUM_2)
        .push_opcode(OP_CHECKMULTISIG)
        .push_opcode(OP_ELSE)
        .push_opcode(OP_DROP)
        .push_int(i64::from(cltv_expiry))
        .push_opcode(OP_CLTV)
        .push_opcode(OP_DROP)
        .push_opcode(OP_CHECKSIG)
        .push_opcode(OP_ENDIF);
    push_anchor_csv(builder, channel_type)
        .push_opcode(OP_ENDIF)
        .into_script()
}

/// The anchor witness script: `<funding_pubkey> OP_CHECKSIG OP_IFDUP OP_NOTIF OP_16 OP_CSV
/// OP_ENDIF` — its owner spends it at once, anyone after 16 blocks.
pub fn anchor_script(funding_pubkey: &PublicKey) -> ScriptBuf {
    Builder::new()
        .push_slice(funding_pubkey.serialize())
        .push_opcode(OP_CHECKSIG)
        .push_opcode(OP_IFDUP)
        .push_opcode(OP_NOTIF)
        .push_opcode(OP_PUSHNUM_16)
        .push_opcode(OP_CSV)
        .push_opcode(OP_ENDIF)
        .into_script()
}

/// The pay-to-anchor scriptPubKey of the `shared_anchor` output (`zero_fee_commitments`): the
/// segwit v1 program `OP_1 <0x4e73>`, spent by anyone with an empty witness (BOLT 3
/// "`shared_anchor` Output").
pub const PAY_TO_ANCHOR_SCRIPT: [u8; 4] = [0x51, 0x02, 0x4e, 0x73];

/// [`PAY_TO_ANCHOR_SCRIPT`] as a script.
pub fn pay_to_anchor_script_pubkey() -> ScriptBuf {
    ScriptBuf::from_bytes(PAY_TO_ANCHOR_SCRIPT.to_vec())
}
