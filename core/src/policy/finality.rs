//! Finality at a height: `nLockTime` and BIP 68 relative locks (the rules Bitcoin Core applies
//! before mining a transaction in a block, or accepting it into a mempool at tip + 1).

use bitcoin::Transaction;

use super::PolicyError;

/// `nLockTime` values below this are block heights, the others UNIX times.
pub const LOCKTIME_THRESHOLD: u32 = 500_000_000;

/// The timestamp of Bitcoin's mainnet genesis block, the earliest genesis time of any public
/// chain (regtest, testnet and signet start later).
///
/// A chain's median time past is never below its genesis time, so a time-based `nLockTime`
/// below this value has passed on every chain. This is what makes BOLT 3 commitment
/// transactions final without a clock: their `nLockTime` is `0x20` followed by 24 bits of the
/// obscured commitment number, at most `0x20ffffff` (1987).
pub const EARLIEST_CHAIN_TIME: u32 = 1_231_006_505;

/// `nSequence` bit 31: BIP 68 does not apply to the input.
const SEQUENCE_LOCKTIME_DISABLE_FLAG: u32 = 1 << 31;
/// `nSequence` bit 22: the relative lock is in units of 512 seconds, not blocks.
const SEQUENCE_LOCKTIME_TYPE_FLAG: u32 = 1 << 22;
/// `nSequence` bits 0..16: the relative lock value.
const SEQUENCE_LOCKTIME_MASK: u32 = 0xffff;

/// Whether `tx` may be included in a block at `block_height` (a mempool checks its tip + 1).
///
/// `prevout_heights[i]` is the height at which input `i`'s prevout confirmed, or `None` if it
/// is unconfirmed (treated as confirming in `block_height` itself, as a mempool does).
///
/// - `nLockTime`: a height lock must be below `block_height`, unless every input has
///   `nSequence` 0xffffffff (which disables it). An enabled time lock below
///   [`EARLIEST_CHAIN_TIME`] has passed on every chain; any other enabled time lock is refused
///   with [`PolicyError::TimeLockUnsupported`] (the engine never builds one and has no clock).
/// - BIP 68, for `nVersion >= 2` (as unsigned): an input without the disable flag and with a
///   height lock of `n` blocks needs its prevout confirmed at `h` with `h + n <= block_height`.
///   A time-based relative lock other than zero is refused with
///   [`PolicyError::RelativeTimeLockUnsupported`].
pub fn check_final(
    tx: &Transaction,
    block_height: u32,
    prevout_heights: &[Option<u32>],
) -> Result<(), PolicyError> {
    if prevout_heights.len() != tx.input.len() {
        return Err(PolicyError::PrevoutCountMismatch {
            inputs: tx.input.len(),
            prevouts: prevout_heights.len(),
        });
    }
    check_lock_time(tx, block_height)?;
    check_relative_locks(tx, block_height, prevout_heights)
}

fn check_lock_time(tx: &Transaction, block_height: u32) -> Result<(), PolicyError> {
    let lock_time = tx.lock_time.to_consensus_u32();
    if lock_time == 0 || tx.input.iter().all(|i| i.sequence.0 == u32::MAX) {
        return Ok(());
    }
    if lock_time < LOCKTIME_THRESHOLD {
        if lock_time < block_height {
            return Ok(());
        }
        return Err(PolicyError::LockTimeNotReached {
            lock_time,
            block_height,
        });
    }
    if lock_time < EARLIEST_CHAIN_TIME {
        return Ok(());
    }
    Err(PolicyError::TimeLockUnsupported { lock_time })
}

fn check_relative_locks(
    tx: &Transaction,
    block_height: u32,
    prevout_heights: &[Option<u32>],
) -> Result<(), PolicyError> {
    // Bitcoin Core compares the version as unsigned, so negative versions enforce BIP 68 too.
    if (tx.version.0 as u32) < 2 {
        return Ok(());
    }
    for (input, (txin, prevout_height)) in tx.input.iter().zip(prevout_heights).enumerate() {
        let sequence = txin.sequence.0;
        if sequence & SEQUENCE_LOCKTIME_DISABLE_FLAG != 0 {
            continue;
        }
        let value = sequence & SEQUENCE_LOCKTIME_MASK;
        if sequence & SEQUENCE_LOCKTIME_TYPE_FLAG != 0 {
            if value == 0 {
                continue;
            }
            return Err(PolicyError::RelativeTimeLockUnsupported { input, sequence });
        }
        let confirmed_at = prevout_height.unwrap_or(block_height);
        if u64::from(confirmed_at) + u64::from(value) > u64::from(block_height) {
            return Err(PolicyError::RelativeLockNotReached {
                input,
                // The mask keeps 16 bits, so this cannot truncate.
                blocks: value as u16,
                prevout_height: *prevout_height,
                block_height,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin::absolute::LockTime;
    use bitcoin::transaction::Version;
    use bitcoin::{Amount, OutPoint, ScriptBuf, Sequence, TxIn, TxOut, Witness};

    fn tx(version: i32, lock_time: u32, sequences: &[u32]) -> Transaction {
        Transaction {
            version: Version(version),
            lock_time: LockTime::from_consensus(lock_time),
            input: sequences
                .iter()
                .map(|s| TxIn {
                    previous_output: OutPoint::null(),
                    script_sig: ScriptBuf::new(),
                    sequence: Sequence(*s),
                    witness: Witness::new(),
                })
                .collect(),
            output: vec![TxOut {
                value: Amount::from_sat(1000),
                script_pubkey: ScriptBuf::new(),
            }],
        }
    }

    #[test]
    fn height_lock_equal_to_block_height_is_refused_and_below_it_accepted() {
        let t = tx(2, 800, &[0xffff_fffe]);
        assert_eq!(
            check_final(&t, 800, &[Some(1)]),
            Err(PolicyError::LockTimeNotReached {
                lock_time: 800,
                block_height: 800
            })
        );
        assert_eq!(check_final(&t, 801, &[Some(1)]), Ok(()));
        assert_eq!(check_final(&tx(2, 0, &[0]), 0, &[Some(0)]), Ok(()));
    }

    #[test]
    fn final_sequences_disable_the_lock_time() {
        let t = tx(2, 900, &[u32::MAX, u32::MAX]);
        assert_eq!(check_final(&t, 100, &[Some(1), None]), Ok(()));
        let t = tx(2, 2_000_000_000, &[u32::MAX]);
        assert_eq!(check_final(&t, 100, &[Some(1)]), Ok(()));
        // One non-final input enables it again.
        let t = tx(2, 900, &[u32::MAX, 0xffff_fffe]);
        assert!(check_final(&t, 100, &[Some(1), Some(1)]).is_err());
    }

    #[test]
    fn commitment_style_time_lock_passes_and_real_time_locks_are_unsupported() {
        // A BOLT 3 commitment: nLockTime 0x20 << 24 | low bits, nSequence 0x80 << 24 | bits.
        let commitment = tx(2, 0x2000_2a2b, &[0x8038_b021]);
        assert_eq!(check_final(&commitment, 1, &[Some(1)]), Ok(()));
        let t = tx(2, EARLIEST_CHAIN_TIME, &[0]);
        assert_eq!(
            check_final(&t, 1_000_000, &[Some(1)]),
            Err(PolicyError::TimeLockUnsupported {
                lock_time: EARLIEST_CHAIN_TIME
            })
        );
    }

    #[test]
    fn csv_144_is_refused_one_block_early_and_accepted_at_expiry() {
        let t = tx(2, 0, &[144]);
        let h = 1_000;
        assert_eq!(
            check_final(&t, h + 143, &[Some(h)]),
            Err(PolicyError::RelativeLockNotReached {
                input: 0,
                blocks: 144,
                prevout_height: Some(h),
                block_height: h + 143
            })
        );
        assert_eq!(check_final(&t, h + 144, &[Some(h)]), Ok(()));
    }

    #[test]
    fn unconfirmed_prevout_fails_csv_1_but_not_csv_0() {
        assert_eq!(
            check_final(&tx(2, 0, &[0, 1]), 500, &[None, None]),
            Err(PolicyError::RelativeLockNotReached {
                input: 1,
                blocks: 1,
                prevout_height: None,
                block_height: 500
            })
        );
        assert_eq!(check_final(&tx(2, 0, &[0]), 500, &[None]), Ok(()));
    }

    #[test]
    fn bip68_needs_version_2_and_no_disable_flag() {
        assert_eq!(check_final(&tx(1, 0, &[144]), 10, &[None]), Ok(()));
        assert_eq!(
            check_final(
                &tx(2, 0, &[SEQUENCE_LOCKTIME_DISABLE_FLAG | 144]),
                10,
                &[None]
            ),
            Ok(())
        );
        // Negative versions are large unsigned versions: BIP 68 applies.
        assert!(check_final(&tx(-1, 0, &[144]), 10, &[None]).is_err());
        // Bits outside the mask and the flags are ignored.
        assert_eq!(
            check_final(&tx(2, 0, &[0x0001_0005]), 10, &[Some(5)]),
            Ok(())
        );
    }

    #[test]
    fn time_based_relative_locks_are_unsupported() {
        let sequence = SEQUENCE_LOCKTIME_TYPE_FLAG | 10;
        assert_eq!(
            check_final(&tx(2, 0, &[sequence]), 10, &[Some(1)]),
            Err(PolicyError::RelativeTimeLockUnsupported { input: 0, sequence })
        );
    }

    #[test]
    fn prevout_heights_must_match_the_inputs() {
        assert_eq!(
            check_final(&tx(2, 0, &[0, 0]), 10, &[Some(1)]),
            Err(PolicyError::PrevoutCountMismatch {
                inputs: 2,
                prevouts: 1
            })
        );
    }
}
