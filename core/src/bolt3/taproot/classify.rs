//! Which path of which simple taproot output a confirmed input spent, from its witness alone,
//! and the preimage a success-leaf spend reveals.
//!
//! BIP 341: an annex (a last item starting with `0x50`, with at least two items) is removed
//! first; one item left is a key-path spend; otherwise the last item is the control block and
//! the second-last the leaf script. The leaf is recognised by its template (keys and numbers
//! are not checked here: the caller compares them with its own outputs), then told apart by the
//! control block: `simple_taproot_nums` as the internal key means `to_local`/`to_remote`; a
//! 65-byte control block (depth 1) means a two-leaf tree.
//!
//! Pure and total: any witness gives a value or a [`WitnessClassError`], never a panic.

use bitcoin::hashes::{hash160, Hash};
use bitcoin::opcodes::all::{
    OP_CHECKSIG, OP_CHECKSIGVERIFY, OP_CLTV, OP_CSV, OP_DROP, OP_EQUALVERIFY, OP_HASH160, OP_SIZE,
    OP_VERIFY,
};
use bitcoin::opcodes::Opcode;
use bitcoin::script::Instruction;
use bitcoin::taproot::{ControlBlock, LeafVersion, TAPROOT_ANNEX_PREFIX};
use bitcoin::{Script, Witness};

use super::super::PaymentPreimage;
use super::{simple_taproot_nums, x_only};

/// A recognised taproot spend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TaprootSpendKind {
    /// A key-path spend (one 64- or 65-byte signature): the revocation of an HTLC or
    /// second-level output, an anchor's owner, or the funding output.
    KeyPath,
    /// `to_local`, delay leaf (the holder).
    ToLocalDelay {
        /// The leaf's `to_self_delay`.
        to_self_delay: u16,
    },
    /// `to_local`, revoke leaf (a breach).
    ToLocalRevoke,
    /// `to_remote` (the counterparty).
    ToRemote,
    /// An anchor's `OP_16 OP_CSV` leaf (anyone).
    AnchorSweep,
    /// Offered HTLC, timeout leaf (the holder's HTLC-timeout transaction).
    OfferedTimeout,
    /// Offered HTLC, success leaf (the counterparty, with the preimage).
    OfferedSuccess {
        /// The preimage the witness reveals.
        preimage: PaymentPreimage,
    },
    /// Accepted HTLC, success leaf (the holder's HTLC-success transaction).
    AcceptedSuccess {
        /// The preimage the witness reveals.
        preimage: PaymentPreimage,
    },
    /// Accepted HTLC, timeout leaf (the counterparty after `cltv_expiry`).
    AcceptedTimeout {
        /// The leaf's `cltv_expiry`.
        cltv_expiry: u32,
    },
    /// The second-level output's delay leaf (the holder).
    SecondLevelDelay {
        /// The leaf's `to_self_delay`.
        to_self_delay: u16,
    },
}

/// Why a witness is not a spend of a simple taproot output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WitnessClassError {
    /// No item (after removing an annex).
    Empty,
    /// One item that is not a 64-byte signature or a 65-byte one with a valid sighash byte.
    NotAKeyPathSignature,
    /// The last item is not a tapscript (leaf version `0xc0`) control block.
    BadControlBlock,
    /// The leaf script matches none of the extension's leaves.
    UnknownLeaf,
    /// The leaf matches, but not with this control block (tree depth or internal key).
    LeafInWrongTree,
    /// The leaf is known but the witness has the wrong number of arguments for it.
    WrongArgumentCount {
        /// Arguments the leaf takes.
        expected: usize,
        /// Arguments the witness has.
        got: usize,
    },
    /// A success leaf whose preimage argument is not 32 bytes hashing to the leaf's hash.
    PreimageMismatch,
}

impl std::fmt::Display for WitnessClassError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "not a simple taproot spend: {self:?}")
    }
}

impl std::error::Error for WitnessClassError {}

/// One recognised leaf template, before the control block is looked at.
enum Leaf {
    /// `<key> OP_CHECKSIGVERIFY <n> OP_CSV`: `to_local`/second-level delay, or `to_remote` (n = 1).
    KeyCsv(i64),
    Revoke,
    Anchor,
    OfferedTimeout,
    OfferedSuccess([u8; 20]),
    AcceptedSuccess([u8; 20]),
    AcceptedTimeout(i64),
}

/// Classifies one taproot input's witness.
pub fn classify_witness(witness: &Witness) -> Result<TaprootSpendKind, WitnessClassError> {
    let mut items: Vec<&[u8]> = witness.iter().collect();
    if items.len() >= 2 && items.last().and_then(|a| a.first()) == Some(&TAPROOT_ANNEX_PREFIX) {
        items.pop();
    }
    match items.as_slice() {
        [] => Err(WitnessClassError::Empty),
        [sig] => key_path(sig),
        [args @ .., script, control] => script_path(args, Script::from_bytes(script), control),
    }
}

/// BIP 341: 64 bytes, or 65 whose last byte is a defined sighash type other than `0x00`.
fn key_path(sig: &[u8]) -> Result<TaprootSpendKind, WitnessClassError> {
    match (sig.len(), sig.last()) {
        (64, _) | (65, Some(0x01..=0x03 | 0x81..=0x83)) => Ok(TaprootSpendKind::KeyPath),
        _ => Err(WitnessClassError::NotAKeyPathSignature),
    }
}

fn script_path(
    args: &[&[u8]],
    script: &Script,
    control: &[u8],
) -> Result<TaprootSpendKind, WitnessClassError> {
    let cb = ControlBlock::decode(control).map_err(|_| WitnessClassError::BadControlBlock)?;
    if cb.leaf_version != LeafVersion::TapScript {
        return Err(WitnessClassError::BadControlBlock);
    }
    let leaf = leaf_template(script).ok_or(WitnessClassError::UnknownLeaf)?;
    let nums = cb.internal_key == x_only(&simple_taproot_nums());
    let depth = cb.merkle_branch.len();
    let (kind, n_args) = match (leaf, nums, depth) {
        (Leaf::KeyCsv(n), true, 1) => (
            TaprootSpendKind::ToLocalDelay {
                to_self_delay: delay(n)?,
            },
            1,
        ),
        (Leaf::KeyCsv(1), true, 0) => (TaprootSpendKind::ToRemote, 1),
        (Leaf::KeyCsv(n), false, 0) => (
            TaprootSpendKind::SecondLevelDelay {
                to_self_delay: delay(n)?,
            },
            1,
        ),
        (Leaf::Revoke, true, 1) => (TaprootSpendKind::ToLocalRevoke, 1),
        (Leaf::Anchor, false, 0) => (TaprootSpendKind::AnchorSweep, 0),
        (Leaf::OfferedTimeout, false, 1) => (TaprootSpendKind::OfferedTimeout, 2),
        (Leaf::OfferedSuccess(h), false, 1) => {
            check_count(args, 2)?;
            let preimage = preimage(args[1], &h)?;
            (TaprootSpendKind::OfferedSuccess { preimage }, 2)
        }
        (Leaf::AcceptedSuccess(h), false, 1) => {
            check_count(args, 3)?;
            let preimage = preimage(args[2], &h)?;
            (TaprootSpendKind::AcceptedSuccess { preimage }, 3)
        }
        (Leaf::AcceptedTimeout(n), false, 1) => {
            let cltv_expiry = u32::try_from(n).map_err(|_| WitnessClassError::UnknownLeaf)?;
            (TaprootSpendKind::AcceptedTimeout { cltv_expiry }, 1)
        }
        _ => return Err(WitnessClassError::LeafInWrongTree),
    };
    check_count(args, n_args)?;
    Ok(kind)
}

fn delay(n: i64) -> Result<u16, WitnessClassError> {
    u16::try_from(n).map_err(|_| WitnessClassError::UnknownLeaf)
}

fn check_count(args: &[&[u8]], expected: usize) -> Result<(), WitnessClassError> {
    if args.len() == expected {
        Ok(())
    } else {
        Err(WitnessClassError::WrongArgumentCount {
            expected,
            got: args.len(),
        })
    }
}

fn preimage(arg: &[u8], hash160_expected: &[u8; 20]) -> Result<PaymentPreimage, WitnessClassError> {
    let bytes: [u8; 32] = arg
        .try_into()
        .map_err(|_| WitnessClassError::PreimageMismatch)?;
    if hash160::Hash::hash(&bytes).to_byte_array() == *hash160_expected {
        Ok(PaymentPreimage(bytes))
    } else {
        Err(WitnessClassError::PreimageMismatch)
    }
}

/// A script as a list of tokens, `None` if it does not parse.
#[derive(Clone, Copy)]
enum Tok<'a> {
    Op(Opcode),
    Push(&'a [u8]),
}

fn tokens(script: &Script) -> Option<Vec<Tok<'_>>> {
    script
        .instructions_minimal()
        .map(|i| match i.ok()? {
            Instruction::Op(op) => Some(Tok::Op(op)),
            Instruction::PushBytes(p) => Some(Tok::Push(p.as_bytes())),
        })
        .collect()
}

fn is_key(t: Tok<'_>) -> bool {
    matches!(t, Tok::Push(p) if p.len() == 32)
}

fn is_op(t: Tok<'_>, op: Opcode) -> bool {
    matches!(t, Tok::Op(o) if o == op)
}

/// A minimally pushed script number (`OP_1`..`OP_16` or a push of at most 5 bytes).
fn number(t: Tok<'_>) -> Option<i64> {
    match t {
        Tok::Op(op) => {
            let code = op.to_u8();
            (0x51..=0x60)
                .contains(&code)
                .then(|| i64::from(code) - 0x50)
        }
        Tok::Push(p) if !p.is_empty() && p.len() <= 5 => bitcoin::script::read_scriptint(p).ok(),
        Tok::Push(_) => None,
    }
}

fn hash20(t: Tok<'_>) -> Option<[u8; 20]> {
    match t {
        Tok::Push(p) => p.try_into().ok(),
        Tok::Op(_) => None,
    }
}

fn leaf_template(script: &Script) -> Option<Leaf> {
    let t = tokens(script)?;
    let csv = |i: usize| is_op(t[i], OP_CSV);
    let checks = |ops: &[Opcode], at: &[usize]| ops.iter().zip(at).all(|(op, &i)| is_op(t[i], *op));
    let preimage_check = t.len() >= 6
        && checks(
            &[OP_SIZE, OP_EQUALVERIFY, OP_HASH160, OP_EQUALVERIFY],
            &[0, 2, 3, 5],
        )
        && number(t[1]) == Some(32);
    match t.len() {
        2 if number(t[0]) == Some(16) && csv(1) => Some(Leaf::Anchor),
        4 if is_key(t[0]) && is_op(t[1], OP_CHECKSIGVERIFY) && csv(3) => {
            number(t[2]).map(Leaf::KeyCsv)
        }
        4 if is_key(t[0]) && is_op(t[1], OP_DROP) && is_key(t[2]) && is_op(t[3], OP_CHECKSIG) => {
            Some(Leaf::Revoke)
        }
        4 if is_key(t[0])
            && is_op(t[1], OP_CHECKSIGVERIFY)
            && is_key(t[2])
            && is_op(t[3], OP_CHECKSIG) =>
        {
            Some(Leaf::OfferedTimeout)
        }
        7 if is_key(t[0])
            && checks(
                &[OP_CHECKSIGVERIFY, OP_CSV, OP_VERIFY, OP_CLTV],
                &[1, 3, 4, 6],
            )
            && number(t[2]) == Some(1) =>
        {
            number(t[5]).map(Leaf::AcceptedTimeout)
        }
        10 if preimage_check
            && is_key(t[6])
            && is_op(t[7], OP_CHECKSIGVERIFY)
            && number(t[8]) == Some(1)
            && csv(9) =>
        {
            hash20(t[4]).map(Leaf::OfferedSuccess)
        }
        10 if preimage_check
            && is_key(t[6])
            && is_op(t[7], OP_CHECKSIGVERIFY)
            && is_key(t[8])
            && is_op(t[9], OP_CHECKSIG) =>
        {
            hash20(t[4]).map(Leaf::AcceptedSuccess)
        }
        _ => None,
    }
}
