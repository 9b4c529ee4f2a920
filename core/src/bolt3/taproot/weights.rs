//! The largest witness of each spend path of the simple taproot outputs, in weight units
//! (witness bytes count 1 WU each; the input's outpoint, nSequence and empty scriptSig are not
//! included).
//!
//! A witness serialises as `varint(item count)` then, per item, `varint(length) || item`; every
//! count and length here is below 253, so each varint is 1 byte. Item sizes:
//!
//! - a BIP 340 signature: 64 bytes with `SIGHASH_DEFAULT`, 65 otherwise; the maxima count 65;
//! - a preimage: 32 bytes;
//! - a control block: `33 + 32·depth` bytes (depth 1 in the two-leaf trees of `to_local` and
//!   the HTLC outputs, 0 in the one-leaf trees of `to_remote`, the anchors and the second-level
//!   output);
//! - leaf scripts: an x-only key push is 33 bytes, an opcode 1 byte, a number push `1..=16` 1 byte
//!   (`OP_1`..`OP_16`), otherwise `1 + n` for its `n`-byte minimal encoding: `to_self_delay`
//!   (u16) takes at most 3 data bytes (`0x8000..=0xffff` needs a sign byte) so 4, `cltv_expiry`
//!   (a block height, `< 500_000_000 < 2^31`) at most 4 data bytes so 5. The preimage check
//!   `OP_SIZE 32 OP_EQUALVERIFY OP_HASH160 <20> OP_EQUALVERIFY` is `1+2+1+1+21+1 = 27` bytes.

/// `to_delay_script` (and the second-level delay leaf): `33 + 1 + 4 + 1 = 39`, at most.
pub const DELAY_SCRIPT_MAX_LEN: usize = 33 + 1 + 4 + 1;
/// `revoke_script`: `33 + 1 + 33 + 1 = 68`.
pub const REVOKE_SCRIPT_LEN: usize = 33 + 1 + 33 + 1;
/// `to_remote_script`: `33 + 1 + 1 + 1 = 36`.
pub const TO_REMOTE_SCRIPT_LEN: usize = 33 + 1 + 1 + 1;
/// `anchor_script`: `OP_16 OP_CSV`, 2.
pub const ANCHOR_SCRIPT_LEN: usize = 2;
/// Offered `htlc_timeout`: `33 + 1 + 33 + 1 = 68`.
pub const OFFERED_TIMEOUT_SCRIPT_LEN: usize = 33 + 1 + 33 + 1;
/// Offered `htlc_success`: `27 + 33 + 1 + 1 + 1 = 63`.
pub const OFFERED_SUCCESS_SCRIPT_LEN: usize = 27 + 33 + 1 + 1 + 1;
/// Accepted `htlc_success`: `27 + 33 + 1 + 33 + 1 = 95`.
pub const ACCEPTED_SUCCESS_SCRIPT_LEN: usize = 27 + 33 + 1 + 33 + 1;
/// Accepted `htlc_timeout`: `33 + 1 + 1 + 1 + 1 + 5 + 1 = 43`, at most.
pub const ACCEPTED_TIMEOUT_SCRIPT_MAX_LEN: usize = 33 + 1 + 1 + 1 + 1 + 5 + 1;

/// The largest signature (65 bytes: a sighash byte after the 64).
pub const MAX_SIG_LEN: usize = 65;
/// A control block at depth 0 (one-leaf tree).
pub const CONTROL_BLOCK_DEPTH0: usize = 33;
/// A control block at depth 1 (two-leaf tree).
pub const CONTROL_BLOCK_DEPTH1: usize = 33 + 32;

/// One witness item: its length varint (1 byte below 253) and its bytes.
const fn item(len: usize) -> usize {
    1 + len
}

/// `to_local` delay path: `1 + (1+65) + (1+39) + (1+65) = 173`.
pub const TO_LOCAL_DELAY_WITNESS_WEIGHT: usize =
    1 + item(MAX_SIG_LEN) + item(DELAY_SCRIPT_MAX_LEN) + item(CONTROL_BLOCK_DEPTH1);
/// `to_local` revoke path: `1 + (1+65) + (1+68) + (1+65) = 202`.
pub const TO_LOCAL_REVOKE_WITNESS_WEIGHT: usize =
    1 + item(MAX_SIG_LEN) + item(REVOKE_SCRIPT_LEN) + item(CONTROL_BLOCK_DEPTH1);
/// `to_remote`: `1 + (1+65) + (1+36) + (1+33) = 138`.
pub const TO_REMOTE_WITNESS_WEIGHT: usize =
    1 + item(MAX_SIG_LEN) + item(TO_REMOTE_SCRIPT_LEN) + item(CONTROL_BLOCK_DEPTH0);
/// Any key-path spend (anchor owner, revocation of an HTLC or second-level output):
/// `1 + (1+65) = 67`.
pub const KEY_PATH_WITNESS_WEIGHT: usize = 1 + item(MAX_SIG_LEN);
/// Anchor sweep by anyone: `1 + (1+2) + (1+33) = 38`.
pub const ANCHOR_SWEEP_WITNESS_WEIGHT: usize =
    1 + item(ANCHOR_SCRIPT_LEN) + item(CONTROL_BLOCK_DEPTH0);
/// Offered HTLC, timeout leaf (HTLC-timeout tx): `1 + 2·(1+65) + (1+68) + (1+65) = 268`.
pub const OFFERED_TIMEOUT_WITNESS_WEIGHT: usize =
    1 + 2 * item(MAX_SIG_LEN) + item(OFFERED_TIMEOUT_SCRIPT_LEN) + item(CONTROL_BLOCK_DEPTH1);
/// Offered HTLC, success leaf (counterparty): `1 + (1+65) + (1+32) + (1+63) + (1+65) = 230`.
pub const OFFERED_SUCCESS_WITNESS_WEIGHT: usize = 1
    + item(MAX_SIG_LEN)
    + item(32)
    + item(OFFERED_SUCCESS_SCRIPT_LEN)
    + item(CONTROL_BLOCK_DEPTH1);
/// Accepted HTLC, success leaf (HTLC-success tx):
/// `1 + 2·(1+65) + (1+32) + (1+95) + (1+65) = 328`.
pub const ACCEPTED_SUCCESS_WITNESS_WEIGHT: usize = 1
    + 2 * item(MAX_SIG_LEN)
    + item(32)
    + item(ACCEPTED_SUCCESS_SCRIPT_LEN)
    + item(CONTROL_BLOCK_DEPTH1);
/// Accepted HTLC, timeout leaf (counterparty): `1 + (1+65) + (1+43) + (1+65) = 177`.
pub const ACCEPTED_TIMEOUT_WITNESS_WEIGHT: usize =
    1 + item(MAX_SIG_LEN) + item(ACCEPTED_TIMEOUT_SCRIPT_MAX_LEN) + item(CONTROL_BLOCK_DEPTH1);
/// Second-level output, delay leaf: `1 + (1+65) + (1+39) + (1+33) = 141`.
pub const SECOND_LEVEL_DELAY_WITNESS_WEIGHT: usize =
    1 + item(MAX_SIG_LEN) + item(DELAY_SCRIPT_MAX_LEN) + item(CONTROL_BLOCK_DEPTH0);
