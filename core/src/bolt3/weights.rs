//! Predicted weights of every transaction the engine builds: single-input claims of each spend
//! path, batches (per-input and per-output contributions), and the inputs of second-level HTLC
//! transactions (which gain fee inputs under anchors).
//!
//! Predictions are conservative: every signature is counted at [`MAX_SIGNATURE_LEN`] bytes (a
//! 72-byte DER signature plus its sighash byte), so a signed transaction never weighs more than
//! predicted, and at most a few weight units less (RFC 6979 low-S signatures are 71 or 72 bytes
//! with the sighash byte). Script lengths are exact, computed from the same encoding rules as
//! [`super::scripts`] (the `to_self_delay` and `cltv_expiry` pushes vary in size).
//!
//! The BOLT 3 fee-calculation constants (which are *not* true weights, kept by the spec for
//! history) live in [`super::commitment`] and are re-exported here.

use super::witness::ClaimPath;
use super::ChannelType;

pub use super::commitment::{
    COMMITMENT_BASE_WEIGHT, COMMITMENT_BASE_WEIGHT_ANCHORS, COMMITMENT_WEIGHT_PER_HTLC,
    HTLC_SUCCESS_WEIGHT, HTLC_TIMEOUT_WEIGHT,
};

/// The longest signature a witness carries: a 72-byte DER ECDSA signature and its sighash byte.
pub const MAX_SIGNATURE_LEN: usize = 73;
/// The non-witness weight of one input: outpoint (36), empty scriptSig (1), nSequence (4), ×4.
pub const INPUT_NON_WITNESS_WEIGHT: u64 = 41 * 4;
/// The segwit marker and flag bytes (counted once per transaction, at one unit each).
pub const SEGWIT_MARKER_WEIGHT: u64 = 2;
/// The length of the anchors `to_remote` script `<33-byte key> OP_CHECKSIGVERIFY 1 OP_CSV`.
pub const TO_REMOTE_ANCHOR_SCRIPT_LEN: usize = 37;
/// The length of an anchor script `<33-byte key> OP_CHECKSIG OP_IFDUP OP_NOTIF 16 OP_CSV
/// OP_ENDIF`.
pub const ANCHOR_SCRIPT_LEN: usize = 40;
/// The length of a P2WSH scriptPubKey (`0 <32 bytes>`), as every second-level output has.
pub const P2WSH_SCRIPT_PUBKEY_LEN: usize = 34;
/// The length of a P2WPKH scriptPubKey (`0 <20 bytes>`).
pub const P2WPKH_SCRIPT_PUBKEY_LEN: usize = 22;

/// The length of a compressed public key.
const PUBKEY_LEN: usize = 33;
/// The length of a payment preimage.
const PREIMAGE_LEN: usize = 32;
/// The offered-HTLC script without the anchors `1 OP_CSV OP_DROP`.
const OFFERED_HTLC_SCRIPT_LEN: usize = 133;
/// The received-HTLC script without the `cltv_expiry` push and the anchors suffix.
const RECEIVED_HTLC_SCRIPT_LEN_WITHOUT_EXPIRY: usize = 135;
/// The `to_local` script without the `to_self_delay` push.
const TO_LOCAL_SCRIPT_LEN_WITHOUT_DELAY: usize = 74;
/// `1 OP_CSV OP_DROP`, appended to HTLC scripts under anchors.
const ANCHOR_HTLC_SUFFIX_LEN: usize = 3;

/// The size of Bitcoin's variable-length integer (CompactSize) encoding of `n`.
pub fn varint_len(n: usize) -> usize {
    match n {
        0..=0xfc => 1,
        0xfd..=0xffff => 3,
        0x1_0000..=0xffff_ffff => 5,
        _ => 9,
    }
}

/// The bytes `Builder::push_int(n)` writes: one opcode for -1 and 0..=16, otherwise a direct
/// push of the minimal script-number encoding.
pub fn script_int_push_len(n: i64) -> usize {
    if (-1..=16).contains(&n) {
        return 1;
    }
    let magnitude = n.unsigned_abs();
    let bytes = (64 - magnitude.leading_zeros()).div_ceil(8) as usize;
    // A set top bit needs an extra byte for the sign.
    let sign_byte = usize::from((magnitude >> (bytes * 8 - 1)) & 1 == 1);
    1 + bytes + sign_byte
}

/// The length of the `to_local` script (and of every second-level HTLC output's script).
pub fn to_local_script_len(to_self_delay: u16) -> usize {
    TO_LOCAL_SCRIPT_LEN_WITHOUT_DELAY + script_int_push_len(i64::from(to_self_delay))
}

fn anchor_suffix(channel_type: ChannelType) -> usize {
    if channel_type.has_anchors() {
        ANCHOR_HTLC_SUFFIX_LEN
    } else {
        0
    }
}

/// The length of an offered-HTLC script.
pub fn offered_htlc_script_len(channel_type: ChannelType) -> usize {
    OFFERED_HTLC_SCRIPT_LEN + anchor_suffix(channel_type)
}

/// The length of a received-HTLC script expiring at `cltv_expiry`.
pub fn received_htlc_script_len(cltv_expiry: u32, channel_type: ChannelType) -> usize {
    RECEIVED_HTLC_SCRIPT_LEN_WITHOUT_EXPIRY
        + script_int_push_len(i64::from(cltv_expiry))
        + anchor_suffix(channel_type)
}

/// A witness element's serialised size: its length prefix and its bytes.
fn item(len: usize) -> usize {
    varint_len(len) + len
}

/// The serialised witness of one input, given its elements' lengths (element count included).
fn witness_len(items: &[usize]) -> u64 {
    let total = varint_len(items.len()) + items.iter().map(|&l| item(l)).sum::<usize>();
    total as u64
}

/// The witness weight (one unit per byte) of an input spending `path`, signatures at their
/// maximum length.
pub fn claim_witness_weight(path: &ClaimPath) -> u64 {
    let sig = MAX_SIGNATURE_LEN;
    match *path {
        ClaimPath::ToLocalDelayed { to_self_delay } => {
            witness_len(&[sig, 0, to_local_script_len(to_self_delay)])
        }
        ClaimPath::ToLocalRevocation { to_self_delay } => {
            witness_len(&[sig, 1, to_local_script_len(to_self_delay)])
        }
        ClaimPath::ToRemote { channel_type } => match channel_type {
            ChannelType::StaticRemoteKey | ChannelType::ZeroFeeCommitments => {
                witness_len(&[sig, PUBKEY_LEN])
            }
            ChannelType::AnchorsZeroFeeHtlc => witness_len(&[sig, TO_REMOTE_ANCHOR_SCRIPT_LEN]),
            // The P2TR `to_remote` leaf spend (`taproot::weights`; the sweeper refuses the type).
            ChannelType::SimpleTaproot => super::taproot::weights::TO_REMOTE_WITNESS_WEIGHT as u64,
        },
        ClaimPath::OfferedHtlcPreimage { channel_type } => {
            witness_len(&[sig, PREIMAGE_LEN, offered_htlc_script_len(channel_type)])
        }
        ClaimPath::OfferedHtlcRevocation { channel_type } => {
            witness_len(&[sig, PUBKEY_LEN, offered_htlc_script_len(channel_type)])
        }
        ClaimPath::ReceivedHtlcTimeout {
            cltv_expiry,
            channel_type,
        } => witness_len(&[sig, 0, received_htlc_script_len(cltv_expiry, channel_type)]),
        ClaimPath::ReceivedHtlcRevocation {
            cltv_expiry,
            channel_type,
        } => witness_len(&[
            sig,
            PUBKEY_LEN,
            received_htlc_script_len(cltv_expiry, channel_type),
        ]),
        ClaimPath::AnchorOwner => witness_len(&[sig, ANCHOR_SCRIPT_LEN]),
        ClaimPath::AnchorAnyone => witness_len(&[0, ANCHOR_SCRIPT_LEN]),
        ClaimPath::PayToAnchor => witness_len(&[]),
    }
}

/// The whole weight one input spending `path` adds to a transaction (non-witness and witness).
pub fn claim_input_weight(path: &ClaimPath) -> u64 {
    INPUT_NON_WITNESS_WEIGHT + claim_witness_weight(path)
}

/// The weight of the input of a second-level HTLC transaction: `0 <remote_sig> <local_sig>
/// <preimage> <received_htlc_script>` for HTLC-success, `... <> <offered_htlc_script>` for
/// HTLC-timeout. `cltv_expiry` only matters for HTLC-success (the received script holds it).
pub fn htlc_tx_input_weight(success: bool, cltv_expiry: u32, channel_type: ChannelType) -> u64 {
    let sig = MAX_SIGNATURE_LEN;
    let witness = if success {
        witness_len(&[
            0,
            sig,
            sig,
            PREIMAGE_LEN,
            received_htlc_script_len(cltv_expiry, channel_type),
        ])
    } else {
        witness_len(&[0, sig, sig, 0, offered_htlc_script_len(channel_type)])
    };
    INPUT_NON_WITNESS_WEIGHT + witness
}

/// The weight one output with a `script_pubkey_len`-byte scriptPubKey adds: value (8), length
/// prefix and script, ×4.
pub fn output_weight(script_pubkey_len: usize) -> u64 {
    4 * (8 + item(script_pubkey_len)) as u64
}

/// The weight of a segwit transaction's envelope: version, input and output counts, nLockTime
/// (×4) and the marker and flag.
pub fn tx_overhead_weight(inputs: usize, outputs: usize) -> u64 {
    4 * (4 + varint_len(inputs) + varint_len(outputs) + 4) as u64 + SEGWIT_MARKER_WEIGHT
}

/// The predicted weight of a claim transaction spending one output per path, with one output
/// per entry of `output_script_lens`.
pub fn claim_batch_weight(paths: &[ClaimPath], output_script_lens: &[usize]) -> u64 {
    tx_overhead_weight(paths.len(), output_script_lens.len())
        + paths.iter().map(claim_input_weight).sum::<u64>()
        + output_script_lens
            .iter()
            .map(|&len| output_weight(len))
            .sum::<u64>()
}

/// The predicted weight of the single-input, single-output claim of `path` paying to a
/// `destination_script_len`-byte scriptPubKey (see [`super::witness::build_claim_tx`]).
pub fn claim_tx_weight(path: &ClaimPath, destination_script_len: usize) -> u64 {
    claim_batch_weight(std::slice::from_ref(path), &[destination_script_len])
}

/// The predicted weight of a second-level HTLC transaction as BOLT 3 builds it (one input, one
/// P2WSH output), not the fee-calculation constant of the spec.
pub fn htlc_tx_weight(success: bool, cltv_expiry: u32, channel_type: ChannelType) -> u64 {
    tx_overhead_weight(1, 1)
        + htlc_tx_input_weight(success, cltv_expiry, channel_type)
        + output_weight(P2WSH_SCRIPT_PUBKEY_LEN)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bolt3::{scripts, secp, CommitmentKeys, PaymentHash};
    use bitcoin::script::Builder;
    use bitcoin::secp256k1::{PublicKey, SecretKey};

    fn key(byte: u8) -> PublicKey {
        PublicKey::from_secret_key(secp(), &SecretKey::from_slice(&[byte; 32]).unwrap())
    }

    fn keys() -> CommitmentKeys {
        CommitmentKeys {
            per_commitment_point: key(1),
            revocation_pubkey: key(2),
            local_delayed_pubkey: key(3),
            local_htlc_pubkey: key(4),
            remote_htlc_pubkey: key(5),
            remote_payment_pubkey: key(6),
        }
    }

    const TYPES: [ChannelType; 3] = [
        ChannelType::StaticRemoteKey,
        ChannelType::AnchorsZeroFeeHtlc,
        ChannelType::ZeroFeeCommitments,
    ];

    #[test]
    fn script_int_push_len_matches_the_script_builder() {
        let values = [
            -1i64,
            0,
            1,
            16,
            17,
            127,
            128,
            255,
            256,
            32_767,
            32_768,
            65_535,
            499_999,
            8_388_607,
            8_388_608,
            2_147_483_647,
            2_147_483_648,
            4_294_967_295,
        ];
        for n in values {
            let built = Builder::new().push_int(n).into_script().len();
            assert_eq!(script_int_push_len(n), built, "push_int({n})");
        }
    }

    #[test]
    fn script_lengths_match_the_scripts_module() {
        for delay in [0u16, 1, 16, 17, 144, 2016, 32_767, 32_768, u16::MAX] {
            let script = scripts::to_local_script(&key(2), delay, &key(3));
            assert_eq!(to_local_script_len(delay), script.len(), "delay {delay}");
        }
        let hash = PaymentHash([7; 32]);
        for ct in TYPES {
            let offered = scripts::offered_htlc_script(&keys(), &hash, ct);
            assert_eq!(offered_htlc_script_len(ct), offered.len());
            for cltv in [1u32, 16, 17, 500, 32_768, 800_000, 8_388_608, u32::MAX] {
                let received = scripts::received_htlc_script(&keys(), &hash, cltv, ct);
                assert_eq!(
                    received_htlc_script_len(cltv, ct),
                    received.len(),
                    "cltv {cltv}"
                );
            }
        }
        assert_eq!(
            scripts::to_remote_anchor_script(&key(6)).len(),
            TO_REMOTE_ANCHOR_SCRIPT_LEN
        );
        assert_eq!(scripts::anchor_script(&key(6)).len(), ANCHOR_SCRIPT_LEN);
    }

    #[test]
    fn batch_weight_is_envelope_plus_inputs_plus_outputs() {
        let a = ClaimPath::AnchorOwner;
        let b = ClaimPath::ToLocalRevocation { to_self_delay: 144 };
        let single_a = claim_tx_weight(&a, 22);
        let single_b = claim_tx_weight(&b, 22);
        let both = claim_batch_weight(&[a, b], &[22]);
        // The shared envelope and output are counted once.
        assert_eq!(
            both,
            single_a + single_b - tx_overhead_weight(1, 1) - output_weight(22)
        );
    }

    #[test]
    fn varint_len_follows_compact_size() {
        assert_eq!(varint_len(0xfc), 1);
        assert_eq!(varint_len(0xfd), 3);
        assert_eq!(varint_len(0x1_0000), 5);
    }
}
