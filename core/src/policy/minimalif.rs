//! MINIMALIF for P2WSH spends: in segwit v0, the argument of `OP_IF`/`OP_NOTIF` must be empty or
//! exactly `0x01`. Bitcoin Core enforces this as policy only, so a consensus script interpreter
//! accepts witnesses that no node would relay.
//!
//! The check runs a small abstract interpreter over the witness script. The initial stack is the
//! witness (minus the script), each item remembering which witness item it is; stack operations
//! move those items around, hashes and `OP_SIZE`/`OP_EQUAL` of known values are computed, and
//! signature checks produce an unknown boolean. When `OP_IF`/`OP_NOTIF` consumes:
//!
//! - a known value: it must be empty or `0x01` ([`PolicyError::NonMinimalIf`] names the witness
//!   item it came from, if any), and the branch taken is the one it selects;
//! - an unknown boolean (e.g. a signature check's result): both branches are explored;
//! - any other unknown value: [`PolicyError::MinimalIfUndetermined`].
//!
//! A path on which the script certainly fails (stack underflow, `OP_VERIFY` of a known false,
//! `OP_RETURN`, ...) is abandoned: such a spend is invalid anyway, which the consensus
//! interpreter reports. A violation on any explored path is reported.

use bitcoin::hashes::{hash160, ripemd160, sha1, sha256, sha256d, Hash};
use bitcoin::opcodes::all::*;
use bitcoin::opcodes::{Class, ClassifyContext, Opcode};
use bitcoin::script::Instruction;
use bitcoin::{Script, Transaction, TxOut, Witness};

use super::PolicyError;

/// The most execution paths explored per witness script before giving up with
/// [`PolicyError::MinimalIfTooComplex`].
pub const MAX_PATHS: usize = 256;

/// The largest element a script may push (`MAX_SCRIPT_ELEMENT_SIZE`).
const MAX_ELEMENT_SIZE: usize = 520;

/// MINIMALIF on every input of `tx` that looks like a P2WSH spend.
///
/// Without the prevouts the input type is guessed from the witness: every non-empty witness is
/// treated as `<items...> <witness script>`, except a P2WPKH-shaped one (exactly two items, the
/// second a 33-byte compressed public key). Taproot spends are not recognised; use
/// [`check_minimalif_with_prevouts`] when the prevouts are known.
pub fn check_minimalif(tx: &Transaction) -> Result<(), PolicyError> {
    for (input, txin) in tx.input.iter().enumerate() {
        if !looks_like_p2wpkh(&txin.witness) {
            check_p2wsh_witness(input, &txin.witness)?;
        }
    }
    Ok(())
}

/// MINIMALIF on every input of `tx` whose prevout (`prevouts[i]` for input `i`) is P2WSH, or
/// P2SH wrapping P2WSH.
pub fn check_minimalif_with_prevouts(
    tx: &Transaction,
    prevouts: &[TxOut],
) -> Result<(), PolicyError> {
    if prevouts.len() != tx.input.len() {
        return Err(PolicyError::PrevoutCountMismatch {
            inputs: tx.input.len(),
            prevouts: prevouts.len(),
        });
    }
    for (input, (txin, prevout)) in tx.input.iter().zip(prevouts).enumerate() {
        let spk = &prevout.script_pubkey;
        let p2wsh =
            spk.is_p2wsh() || (spk.is_p2sh() && nested_program(&txin.script_sig).is_p2wsh());
        if p2wsh {
            check_p2wsh_witness(input, &txin.witness)?;
        }
    }
    Ok(())
}

/// The redeem script of a P2SH-wrapped witness spend: the `scriptSig`'s single push (or an
/// empty script if it is not a single push).
pub(crate) fn nested_program(script_sig: &Script) -> &Script {
    let mut instructions = script_sig.instructions();
    match (instructions.next(), instructions.next()) {
        (Some(Ok(Instruction::PushBytes(bytes))), None) => Script::from_bytes(bytes.as_bytes()),
        _ => Script::from_bytes(&[]),
    }
}

fn looks_like_p2wpkh(witness: &Witness) -> bool {
    witness.len() == 2
        && witness
            .last()
            .is_some_and(|key| key.len() == 33 && (key[0] == 0x02 || key[0] == 0x03))
}

/// Check one P2WSH witness: `<items...> <witness script>`.
fn check_p2wsh_witness(input: usize, witness: &Witness) -> Result<(), PolicyError> {
    let Some(script) = witness.last() else {
        return Ok(());
    };
    let items: Vec<&[u8]> = witness.iter().take(witness.len() - 1).collect();
    run(input, Script::from_bytes(script), &items)
}

/// A stack value as far as the checker knows it.
#[derive(Clone, Debug)]
enum Val {
    /// A value whose bytes are known.
    Known {
        bytes: Vec<u8>,
        /// The witness item it is (a copy of), if any.
        witness_item: Option<usize>,
    },
    /// A computed value; `boolean` when it is certainly empty or `0x01`.
    Unknown { boolean: bool },
}

impl Val {
    fn known(bytes: Vec<u8>) -> Val {
        Val::Known {
            bytes,
            witness_item: None,
        }
    }

    fn boolean(b: bool) -> Val {
        Val::known(if b { vec![1] } else { Vec::new() })
    }
}

/// One parsed script element.
enum Op<'a> {
    Push(&'a [u8]),
    Code(Opcode),
    /// A push running past the end of the script.
    Invalid,
}

/// One execution path.
#[derive(Clone)]
struct Path {
    pc: usize,
    stack: Vec<Val>,
    alt: Vec<Val>,
    exec: Vec<bool>,
}

enum Step {
    Next,
    /// The script certainly fails on this path: stop exploring it.
    Stop,
    /// Continue, and also explore this other path.
    Fork(Path),
}

fn run(input: usize, script: &Script, items: &[&[u8]]) -> Result<(), PolicyError> {
    let mut ops = Vec::new();
    for instruction in script.instructions() {
        match instruction {
            Ok(Instruction::PushBytes(bytes)) => ops.push(Op::Push(bytes.as_bytes())),
            Ok(Instruction::Op(code)) => ops.push(Op::Code(code)),
            Err(_) => {
                ops.push(Op::Invalid);
                break;
            }
        }
    }
    let start = Path {
        pc: 0,
        stack: items
            .iter()
            .enumerate()
            .map(|(i, bytes)| Val::Known {
                bytes: bytes.to_vec(),
                witness_item: Some(i),
            })
            .collect(),
        alt: Vec::new(),
        exec: Vec::new(),
    };
    let mut work = vec![start];
    let mut paths = 1;
    while let Some(mut path) = work.pop() {
        while let Some(op) = ops.get(path.pc) {
            path.pc += 1;
            match step(input, &mut path, op)? {
                Step::Next => {}
                Step::Stop => break,
                Step::Fork(other) => {
                    paths += 1;
                    if paths > MAX_PATHS {
                        return Err(PolicyError::MinimalIfTooComplex {
                            input,
                            max_paths: MAX_PATHS,
                        });
                    }
                    work.push(other);
                }
            }
        }
    }
    Ok(())
}

fn step(input: usize, path: &mut Path, op: &Op<'_>) -> Result<Step, PolicyError> {
    let executing = path.exec.iter().all(|e| *e);
    let code = match op {
        Op::Invalid => return Ok(Step::Stop),
        Op::Push(bytes) => {
            if bytes.len() > MAX_ELEMENT_SIZE {
                return Ok(Step::Stop);
            }
            if executing {
                path.stack.push(Val::known(bytes.to_vec()));
            }
            return Ok(Step::Next);
        }
        Op::Code(code) => *code,
    };
    match code {
        OP_IF | OP_NOTIF => {
            if !executing {
                path.exec.push(false);
                return Ok(Step::Next);
            }
            let Some(arg) = path.stack.pop() else {
                return Ok(Step::Stop);
            };
            let negate = code == OP_NOTIF;
            return match arg {
                Val::Known {
                    bytes,
                    witness_item,
                } => {
                    if !(bytes.is_empty() || bytes == [1]) {
                        return Err(PolicyError::NonMinimalIf {
                            input,
                            witness_item,
                            argument: bytes,
                        });
                    }
                    path.exec.push((bytes == [1]) != negate);
                    Ok(Step::Next)
                }
                Val::Unknown { boolean: true } => {
                    let mut other = path.clone();
                    other.exec.push(false);
                    path.exec.push(true);
                    Ok(Step::Fork(other))
                }
                Val::Unknown { boolean: false } => {
                    Err(PolicyError::MinimalIfUndetermined { input })
                }
            };
        }
        OP_ELSE => {
            return Ok(match path.exec.last_mut() {
                Some(top) => {
                    *top = !*top;
                    Step::Next
                }
                None => Step::Stop,
            });
        }
        OP_ENDIF => {
            return Ok(match path.exec.pop() {
                Some(_) => Step::Next,
                None => Step::Stop,
            });
        }
        _ => {}
    }
    match code.classify(ClassifyContext::Legacy) {
        // Disabled opcodes, OP_VERIF and OP_VERNOTIF fail even in an unexecuted branch.
        Class::IllegalOp if code != OP_INVALIDOPCODE || executing => Ok(Step::Stop),
        _ if !executing => Ok(Step::Next),
        Class::ReturnOp | Class::SuccessOp | Class::IllegalOp => Ok(Step::Stop),
        Class::NoOp => {
            // OP_CHECKLOCKTIMEVERIFY / OP_CHECKSEQUENCEVERIFY read (and keep) the top item.
            let reads_top = code == OP_CLTV || code == OP_CSV;
            Ok(if reads_top && path.stack.is_empty() {
                Step::Stop
            } else {
                Step::Next
            })
        }
        Class::PushNum(n) => {
            path.stack.push(Val::known(encode_num(i64::from(n))));
            Ok(Step::Next)
        }
        Class::PushBytes(0) => {
            path.stack.push(Val::known(Vec::new()));
            Ok(Step::Next)
        }
        Class::PushBytes(_) => Ok(Step::Stop),
        Class::Ordinary(_) => ordinary(input, path, code),
    }
}

/// Pop `n` values, or `None` if the stack is too short.
fn pop_n(stack: &mut Vec<Val>, n: usize) -> Option<Vec<Val>> {
    let at = stack.len().checked_sub(n)?;
    Some(stack.split_off(at))
}

/// Execute a non-control-flow, non-push opcode.
fn ordinary(input: usize, path: &mut Path, code: Opcode) -> Result<Step, PolicyError> {
    let stack = &mut path.stack;
    let len = stack.len();
    macro_rules! need {
        ($n:expr) => {
            if len < $n {
                return Ok(Step::Stop);
            }
        };
    }
    match code {
        OP_VERIFY => {
            need!(1);
            if let Some(Val::Known { bytes, .. }) = stack.pop() {
                if !cast_to_bool(&bytes) {
                    return Ok(Step::Stop);
                }
            }
        }
        OP_TOALTSTACK => {
            need!(1);
            path.alt.extend(stack.pop());
        }
        OP_FROMALTSTACK => match path.alt.pop() {
            Some(v) => stack.push(v),
            None => return Ok(Step::Stop),
        },
        OP_2DROP => {
            need!(2);
            stack.truncate(len - 2);
        }
        OP_DROP => {
            need!(1);
            stack.truncate(len - 1);
        }
        OP_DUP | OP_2DUP | OP_3DUP => {
            let n = if code == OP_DUP {
                1
            } else if code == OP_2DUP {
                2
            } else {
                3
            };
            need!(n);
            stack.extend_from_within(len - n..);
        }
        OP_OVER => {
            need!(2);
            stack.push(stack[len - 2].clone());
        }
        OP_2OVER => {
            need!(4);
            stack.extend_from_within(len - 4..len - 2);
        }
        OP_NIP => {
            need!(2);
            stack.remove(len - 2);
        }
        OP_TUCK => {
            need!(2);
            stack.insert(len - 2, stack[len - 1].clone());
        }
        OP_SWAP => {
            need!(2);
            stack.swap(len - 1, len - 2);
        }
        OP_2SWAP => {
            need!(4);
            stack[len - 4..].rotate_left(2);
        }
        OP_ROT => {
            need!(3);
            stack[len - 3..].rotate_left(1);
        }
        OP_2ROT => {
            need!(6);
            stack[len - 6..].rotate_left(2);
        }
        OP_PICK | OP_ROLL => {
            need!(1);
            let Some(n) = pop_count(input, stack)? else {
                return Ok(Step::Stop);
            };
            let Some(at) = stack.len().checked_sub(n + 1) else {
                return Ok(Step::Stop);
            };
            let v = if code == OP_PICK {
                stack[at].clone()
            } else {
                stack.remove(at)
            };
            stack.push(v);
        }
        OP_IFDUP => {
            need!(1);
            let top = stack[len - 1].clone();
            match top {
                Val::Known { ref bytes, .. } => {
                    if cast_to_bool(bytes) {
                        stack.push(top);
                    }
                }
                Val::Unknown { boolean: true } => {
                    let mut other = path.clone();
                    other.stack[len - 1] = Val::boolean(false);
                    path.stack[len - 1] = Val::boolean(true);
                    path.stack.push(Val::boolean(true));
                    return Ok(Step::Fork(other));
                }
                Val::Unknown { boolean: false } => {
                    return Err(PolicyError::MinimalIfUndetermined { input })
                }
            }
        }
        OP_DEPTH => stack.push(Val::known(encode_num(len as i64))),
        OP_SIZE => {
            need!(1);
            let size = match &stack[len - 1] {
                Val::Known { bytes, .. } => Val::known(encode_num(bytes.len() as i64)),
                Val::Unknown { .. } => Val::Unknown { boolean: false },
            };
            stack.push(size);
        }
        OP_EQUAL | OP_EQUALVERIFY => {
            need!(2);
            let b = stack.pop();
            let a = stack.pop();
            let equal = match (a, b) {
                (Some(Val::Known { bytes: a, .. }), Some(Val::Known { bytes: b, .. })) => {
                    Some(a == b)
                }
                _ => None,
            };
            if code == OP_EQUAL {
                stack.push(equal.map_or(Val::Unknown { boolean: true }, Val::boolean));
            } else if equal == Some(false) {
                return Ok(Step::Stop);
            }
        }
        OP_1ADD | OP_1SUB | OP_NEGATE | OP_ABS | OP_NOT | OP_0NOTEQUAL => {
            need!(1);
            stack.truncate(len - 1);
            let boolean = code == OP_NOT || code == OP_0NOTEQUAL;
            stack.push(Val::Unknown { boolean });
        }
        OP_ADD | OP_SUB | OP_MIN | OP_MAX => {
            need!(2);
            stack.truncate(len - 2);
            stack.push(Val::Unknown { boolean: false });
        }
        OP_BOOLAND
        | OP_BOOLOR
        | OP_NUMEQUAL
        | OP_NUMNOTEQUAL
        | OP_LESSTHAN
        | OP_GREATERTHAN
        | OP_LESSTHANOREQUAL
        | OP_GREATERTHANOREQUAL => {
            need!(2);
            stack.truncate(len - 2);
            stack.push(Val::Unknown { boolean: true });
        }
        OP_NUMEQUALVERIFY | OP_CHECKSIGVERIFY => {
            need!(2);
            stack.truncate(len - 2);
        }
        OP_WITHIN => {
            need!(3);
            stack.truncate(len - 3);
            stack.push(Val::Unknown { boolean: true });
        }
        OP_RIPEMD160 | OP_SHA1 | OP_SHA256 | OP_HASH160 | OP_HASH256 => {
            need!(1);
            let hashed = match stack.pop() {
                Some(Val::Known { bytes, .. }) => Val::known(hash(code, &bytes)),
                _ => Val::Unknown { boolean: false },
            };
            stack.push(hashed);
        }
        OP_CODESEPARATOR => {}
        OP_CHECKSIG => {
            need!(2);
            stack.truncate(len - 2);
            stack.push(Val::Unknown { boolean: true });
        }
        OP_CHECKMULTISIG | OP_CHECKMULTISIGVERIFY => {
            let Some(keys) = pop_count(input, stack)? else {
                return Ok(Step::Stop);
            };
            if keys > 20 || pop_n(stack, keys).is_none() {
                return Ok(Step::Stop);
            }
            let Some(sigs) = pop_count(input, stack)? else {
                return Ok(Step::Stop);
            };
            // The signatures and the extra (dummy) element.
            if sigs > keys || pop_n(stack, sigs + 1).is_none() {
                return Ok(Step::Stop);
            }
            if code == OP_CHECKMULTISIG {
                stack.push(Val::Unknown { boolean: true });
            }
        }
        _ => return Ok(Step::Stop),
    }
    Ok(Step::Next)
}

/// Pop a non-negative count (for `OP_PICK`, `OP_ROLL`, `OP_CHECKMULTISIG`); `Ok(None)` if the
/// script certainly fails (empty stack, negative or malformed number).
fn pop_count(input: usize, stack: &mut Vec<Val>) -> Result<Option<usize>, PolicyError> {
    match stack.pop() {
        None => Ok(None),
        Some(Val::Unknown { .. }) => Err(PolicyError::MinimalIfUndetermined { input }),
        Some(Val::Known { bytes, .. }) => {
            Ok(decode_num(&bytes).and_then(|n| usize::try_from(n).ok()))
        }
    }
}

fn hash(code: Opcode, bytes: &[u8]) -> Vec<u8> {
    match code {
        OP_RIPEMD160 => ripemd160::Hash::hash(bytes).to_byte_array().to_vec(),
        OP_SHA1 => sha1::Hash::hash(bytes).to_byte_array().to_vec(),
        OP_SHA256 => sha256::Hash::hash(bytes).to_byte_array().to_vec(),
        OP_HASH160 => hash160::Hash::hash(bytes).to_byte_array().to_vec(),
        _ => sha256d::Hash::hash(bytes).to_byte_array().to_vec(),
    }
}

/// Script truthiness: any non-zero byte, except a lone sign bit in the last byte.
fn cast_to_bool(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .enumerate()
        .any(|(i, b)| *b != 0 && !(i + 1 == bytes.len() && *b == 0x80))
}

/// The minimal script number encoding of `n` (little-endian sign-magnitude).
fn encode_num(n: i64) -> Vec<u8> {
    let mut out = Vec::new();
    let negative = n < 0;
    let mut abs = n.unsigned_abs();
    while abs > 0 {
        out.push((abs & 0xff) as u8);
        abs >>= 8;
    }
    if let Some(last) = out.last_mut() {
        if *last & 0x80 != 0 {
            out.push(if negative { 0x80 } else { 0 });
        } else if negative {
            *last |= 0x80;
        }
    }
    out
}

/// Decode a script number of at most 4 bytes.
fn decode_num(bytes: &[u8]) -> Option<i64> {
    if bytes.len() > 4 {
        return None;
    }
    let mut value: i64 = 0;
    for (i, b) in bytes.iter().enumerate() {
        value |= i64::from(*b) << (8 * i);
    }
    match bytes.last() {
        Some(last) if last & 0x80 != 0 => {
            let sign_bit = 0x80i64 << (8 * (bytes.len() - 1));
            Some(-(value & !sign_bit))
        }
        _ => Some(value),
    }
}

#[cfg(test)]
#[path = "minimalif_tests.rs"]
mod tests;
