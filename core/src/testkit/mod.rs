//! Test support shared by every crate of the workspace (feature `testkit`, or `cfg(test)`).
//!
//! [`verify_with_bitcoin_core`] runs each input of a transaction through Bitcoin Core's own
//! script interpreter (libbitcoinconsensus 25.1, built by the `bitcoin` crate's
//! `bitcoinconsensus` feature) with the consensus flags of today's chain. The interpreter checks
//! signatures, scripts, `OP_CHECKLOCKTIMEVERIFY` against the transaction's `nLockTime` and
//! `OP_CHECKSEQUENCEVERIFY` against the input's `nSequence`. It does not check finality at a
//! height, standardness or fees: that is [`crate::policy`]'s job.

use bitcoin::consensus::encode::serialize;
use bitcoin::consensus::validation::{verify_script_with_flags, BitcoinconsensusError};
use bitcoin::{Transaction, TxOut};

/// libbitcoinconsensus `SCRIPT_FLAGS_VERIFY_P2SH` (BIP 16).
pub const VERIFY_P2SH: u32 = 1 << 0;
/// libbitcoinconsensus `SCRIPT_FLAGS_VERIFY_DERSIG` (BIP 66, strict DER signatures).
pub const VERIFY_DERSIG: u32 = 1 << 2;
/// libbitcoinconsensus `SCRIPT_FLAGS_VERIFY_NULLDUMMY` (BIP 147, empty `OP_CHECKMULTISIG` dummy).
pub const VERIFY_NULLDUMMY: u32 = 1 << 4;
/// libbitcoinconsensus `SCRIPT_FLAGS_VERIFY_CHECKLOCKTIMEVERIFY` (BIP 65).
pub const VERIFY_CHECKLOCKTIMEVERIFY: u32 = 1 << 9;
/// libbitcoinconsensus `SCRIPT_FLAGS_VERIFY_CHECKSEQUENCEVERIFY` (BIP 112).
pub const VERIFY_CHECKSEQUENCEVERIFY: u32 = 1 << 10;
/// libbitcoinconsensus `SCRIPT_FLAGS_VERIFY_WITNESS` (BIP 141/143).
pub const VERIFY_WITNESS: u32 = 1 << 11;

/// Every flag [`verify_with_bitcoin_core`] sets: P2SH | DERSIG | NULLDUMMY |
/// CHECKLOCKTIMEVERIFY | CHECKSEQUENCEVERIFY | WITNESS.
pub const CONSENSUS_FLAGS: u32 = VERIFY_P2SH
    | VERIFY_DERSIG
    | VERIFY_NULLDUMMY
    | VERIFY_CHECKLOCKTIMEVERIFY
    | VERIFY_CHECKSEQUENCEVERIFY
    | VERIFY_WITNESS;

/// Why Bitcoin Core's interpreter refused a transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConsensusFailure {
    /// `prevouts` does not have exactly one entry per input.
    PrevoutCountMismatch {
        /// How many inputs the transaction has.
        inputs: usize,
        /// How many prevouts were given.
        prevouts: usize,
    },
    /// The interpreter rejected one input.
    InputRejected {
        /// The index of the rejected input (the first one, in input order).
        input: usize,
        /// The interpreter's error.
        error: BitcoinconsensusError,
    },
}

impl ConsensusFailure {
    /// The input the interpreter rejected, if it got that far.
    pub fn input(&self) -> Option<usize> {
        match self {
            ConsensusFailure::PrevoutCountMismatch { .. } => None,
            ConsensusFailure::InputRejected { input, .. } => Some(*input),
        }
    }
}

impl std::fmt::Display for ConsensusFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConsensusFailure::PrevoutCountMismatch { inputs, prevouts } => write!(
                f,
                "the transaction has {inputs} inputs but {prevouts} prevouts were given"
            ),
            ConsensusFailure::InputRejected { input, error } => {
                // libbitcoinconsensus reports every script failure as `ERR_SCRIPT`, and the
                // wrapper's `Display` hides even that: show the code.
                write!(f, "bitcoin core rejected input {input}: {error:?}")
            }
        }
    }
}

impl std::error::Error for ConsensusFailure {}

/// Verify every input of `tx` against the output it spends (`prevouts[i]` for input `i`) with
/// Bitcoin Core's script interpreter and [`CONSENSUS_FLAGS`].
///
/// Returns the first input the interpreter rejects. The outpoints are not checked against the
/// prevouts: the caller says what each input spends.
pub fn verify_with_bitcoin_core(
    tx: &Transaction,
    prevouts: &[TxOut],
) -> Result<(), ConsensusFailure> {
    if prevouts.len() != tx.input.len() {
        return Err(ConsensusFailure::PrevoutCountMismatch {
            inputs: tx.input.len(),
            prevouts: prevouts.len(),
        });
    }
    let bytes = serialize(tx);
    for (input, prevout) in prevouts.iter().enumerate() {
        verify_script_with_flags(
            &prevout.script_pubkey,
            input,
            prevout.value,
            &bytes,
            CONSENSUS_FLAGS,
        )
        .map_err(|error| ConsensusFailure::InputRejected { input, error })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bolt3::{scripts, secp, sign};
    use bitcoin::absolute::LockTime;
    use bitcoin::secp256k1::{PublicKey, SecretKey};
    use bitcoin::sighash::EcdsaSighashType;
    use bitcoin::transaction::Version;
    use bitcoin::{Amount, OutPoint, ScriptBuf, Sequence, TxIn, Witness};

    fn key(byte: u8) -> (SecretKey, PublicKey) {
        let secret = SecretKey::from_slice(&[byte; 32]).unwrap();
        (secret, PublicKey::from_secret_key(secp(), &secret))
    }

    /// A 2-of-2 P2WSH output and a transaction spending it, signed by both keys.
    fn multisig_spend(dummy: Vec<u8>) -> (Transaction, TxOut) {
        let (sa, pa) = key(1);
        let (sb, pb) = key(2);
        let script = scripts::funding_script(&pa, &pb);
        let prevout = TxOut {
            value: Amount::from_sat(100_000),
            script_pubkey: script.to_p2wsh(),
        };
        let mut tx = Transaction {
            version: Version::TWO,
            lock_time: LockTime::ZERO,
            input: vec![TxIn {
                previous_output: OutPoint::null(),
                script_sig: ScriptBuf::new(),
                sequence: Sequence::MAX,
                witness: Witness::new(),
            }],
            output: vec![TxOut {
                value: Amount::from_sat(90_000),
                script_pubkey: script.to_p2wsh(),
            }],
        };
        let all = EcdsaSighashType::All;
        let sig_a = sign::sign_p2wsh(&tx, 0, &script, prevout.value, all, &sa).unwrap();
        let sig_b = sign::sign_p2wsh(&tx, 0, &script, prevout.value, all, &sb).unwrap();
        let (first, second) = if pa.serialize() <= pb.serialize() {
            (sig_a, sig_b)
        } else {
            (sig_b, sig_a)
        };
        let mut witness = Witness::new();
        witness.push(dummy);
        witness.push_ecdsa_signature(&first);
        witness.push_ecdsa_signature(&second);
        witness.push(script.as_bytes());
        tx.input[0].witness = witness;
        (tx, prevout)
    }

    #[test]
    fn valid_multisig_spend_is_accepted() {
        let (tx, prevout) = multisig_spend(Vec::new());
        assert_eq!(verify_with_bitcoin_core(&tx, &[prevout]), Ok(()));
    }

    #[test]
    fn nulldummy_flag_is_enforced() {
        let (tx, prevout) = multisig_spend(vec![1]);
        let err = verify_with_bitcoin_core(&tx, &[prevout]).unwrap_err();
        assert_eq!(err.input(), Some(0));
        let message = err.to_string();
        assert!(message.starts_with("bitcoin core rejected input 0: "));
        assert!(message.contains("ERR_SCRIPT"), "{message}");
    }

    #[test]
    fn wrong_amount_is_rejected_because_segwit_signs_the_amount() {
        let (tx, mut prevout) = multisig_spend(Vec::new());
        prevout.value = Amount::from_sat(100_001);
        assert!(verify_with_bitcoin_core(&tx, &[prevout]).is_err());
    }

    #[test]
    fn prevout_count_mismatch_is_reported() {
        let (tx, _) = multisig_spend(Vec::new());
        let err = verify_with_bitcoin_core(&tx, &[]).unwrap_err();
        assert_eq!(
            err,
            ConsensusFailure::PrevoutCountMismatch {
                inputs: 1,
                prevouts: 0
            }
        );
        assert_eq!(err.input(), None);
        assert!(err.to_string().contains("1 inputs"));
    }

    #[test]
    fn csv_flag_is_enforced() {
        let (secret, pubkey) = key(3);
        let script = scripts::to_local_script(&pubkey, 10, &pubkey);
        let prevout = TxOut {
            value: Amount::from_sat(50_000),
            script_pubkey: script.to_p2wsh(),
        };
        let spend = |sequence: u32| {
            let mut tx = Transaction {
                version: Version::TWO,
                lock_time: LockTime::ZERO,
                input: vec![TxIn {
                    previous_output: OutPoint::null(),
                    script_sig: ScriptBuf::new(),
                    sequence: Sequence(sequence),
                    witness: Witness::new(),
                }],
                output: vec![TxOut {
                    value: Amount::from_sat(49_000),
                    script_pubkey: script.to_p2wsh(),
                }],
            };
            let all = EcdsaSighashType::All;
            let sig = sign::sign_p2wsh(&tx, 0, &script, prevout.value, all, &secret).unwrap();
            let mut witness = Witness::new();
            witness.push_ecdsa_signature(&sig);
            witness.push(Vec::<u8>::new());
            witness.push(script.as_bytes());
            tx.input[0].witness = witness;
            verify_with_bitcoin_core(&tx, std::slice::from_ref(&prevout))
        };
        assert_eq!(spend(10), Ok(()));
        assert!(spend(9).is_err());
    }
}
