//! The mempool rules that Bitcoin Core's script interpreter does not check: finality at a height
//! (`nLockTime`, BIP 68), MINIMALIF on witnesses, and standardness (version, weight, dust,
//! minimum relay fee, witness limits), plus package (CPFP) fee evaluation with the TRUC
//! (version 3) and ephemeral dust rules.
//!
//! Every function is pure: a transaction, the outputs it spends and the numbers of a chain go
//! in, and `Ok(())` or the first [`PolicyError`] found comes out. Tests use them beside a
//! consensus script check; an embedded chain's mempool uses them to decide what to accept.

use bitcoin::{Transaction, TxOut};
use serde::{Deserialize, Serialize};

pub mod error;
pub mod finality;
pub mod minimalif;
pub mod package;
pub mod reject;
pub mod standard;
#[cfg(test)]
mod testutil;
pub mod truc;
pub mod truc_mempool;

pub use error::PolicyError;
pub use finality::check_final;
pub use minimalif::{check_minimalif, check_minimalif_with_prevouts};
pub use package::check_package_fee;
pub use reject::{classify_reject, is_already_known, is_fee_refusal, RejectClass};
pub use standard::{check_standard, dust_threshold, fee_for_vsize};
pub use truc::{check_ephemeral_spends, check_package_truc, TrucViolation};

/// The relay settings, with Bitcoin Core's defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyConfig {
    /// `-minrelaytxfee` in sat per 1000 virtual bytes (default 1000).
    pub min_relay_fee_sat_per_kvb: u64,
    /// `-dustrelayfee` in sat per 1000 virtual bytes (default 3000).
    pub dust_relay_fee_sat_per_kvb: u64,
    /// The heaviest standard transaction in weight units (default 400,000).
    pub max_standard_weight: u64,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            min_relay_fee_sat_per_kvb: 1000,
            dust_relay_fee_sat_per_kvb: 3000,
            max_standard_weight: 400_000,
        }
    }
}

/// [`check_final`] at `block_height` and then [`check_standard`]: whether a mempool whose tip is
/// at `block_height - 1` would accept `tx` on its own.
///
/// `prevouts[i]` and `prevout_heights[i]` describe the output input `i` spends and the height
/// it confirmed at (`None`: unconfirmed).
pub fn check_all(
    tx: &Transaction,
    prevouts: &[TxOut],
    prevout_heights: &[Option<u32>],
    block_height: u32,
    config: &PolicyConfig,
) -> Result<(), PolicyError> {
    check_final(tx, block_height, prevout_heights)?;
    check_standard(tx, prevouts, config)
}

#[cfg(test)]
mod tests {
    use super::testutil::*;
    use super::*;
    use bitcoin::Sequence;

    #[test]
    fn defaults_are_bitcoin_core_defaults() {
        let c = PolicyConfig::default();
        assert_eq!(c.min_relay_fee_sat_per_kvb, 1000);
        assert_eq!(c.dust_relay_fee_sat_per_kvb, 3000);
        assert_eq!(c.max_standard_weight, 400_000);
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(serde_json::from_str::<PolicyConfig>(&json).unwrap(), c);
    }

    #[test]
    fn check_all_applies_finality_then_standardness() {
        let script = to_local_script(144);
        let mut tx = spend(&[witness(&[&sig(), &[]], &script)]);
        tx.input[0].sequence = Sequence(144);
        let prevouts = [p2wsh_prevout(&script, 20_000)];
        let config = PolicyConfig::default();
        assert!(matches!(
            check_all(&tx, &prevouts, &[Some(100)], 243, &config),
            Err(PolicyError::RelativeLockNotReached { .. })
        ));
        assert_eq!(
            check_all(&tx, &prevouts, &[Some(100)], 244, &config),
            Ok(())
        );
        let short = [p2wsh_prevout(&script, 10_000)];
        assert!(matches!(
            check_all(&tx, &short, &[Some(100)], 244, &config),
            Err(PolicyError::FeeBelowMinRelay { .. })
        ));
    }

    #[test]
    fn every_error_message_is_lower_case() {
        let errors = [
            PolicyError::PrevoutCountMismatch {
                inputs: 1,
                prevouts: 2,
            },
            PolicyError::LockTimeNotReached {
                lock_time: 1,
                block_height: 1,
            },
            PolicyError::TimeLockUnsupported { lock_time: 1 },
            PolicyError::NonMinimalIf {
                input: 0,
                witness_item: Some(1),
                argument: vec![2],
            },
            PolicyError::VersionNonStandard { version: 4 },
            PolicyError::ValueOutOfRange,
            PolicyError::PackageEmpty,
            PolicyError::MissingEphemeralSpends,
            PolicyError::Truc(TrucViolation::TooManyAncestors),
            PolicyError::Truc(TrucViolation::TooBig { vsize: 10_001 }),
            PolicyError::PackageMember {
                index: 0,
                error: Box::new(PolicyError::ValueOutOfRange),
            },
        ];
        for e in errors {
            let msg = e.to_string();
            assert!(
                msg.chars().next().unwrap().is_lowercase()
                    || msg.starts_with(|c: char| c.is_ascii_digit()),
                "{msg}"
            );
        }
    }
}
