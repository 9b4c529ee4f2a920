//! A simple taproot spend in the engine's vocabulary (`bolt3::classify`'s [`HtlcSpend`] and
//! [`ToLocalSpend`]): what [`classify_witness`] names, read as what it means for the output's
//! owners — so that the resolvers written for BOLT 3's P2WSH witnesses learn the same facts from a
//! taproot close (who took an HTLC, by which path, with which preimage).
//!
//! Total, like `bolt3::classify`: any witness gets an answer, a preimage is reported only when it
//! hashes to the payment hash, and anything that fits no path of the output is `Unknown`.

use bitcoin::Witness;

use super::classify::{classify_witness, TaprootSpendKind};
use crate::bolt3::classify::{HtlcOutputKind, HtlcSpend, ToLocalSpend};
use crate::bolt3::PaymentHash;

/// How an HTLC output of kind `kind` (seen from the commitment's holder) paying to
/// `payment_hash` was spent, judged by the spending input's `witness`:
///
/// | `kind` | witness (extension section) | spend |
/// |---|---|---|
/// | offered | timeout leaf, both signatures ("Offered HTLCs": the holder's HTLC-timeout transaction) | `SecondLevelTimeout` |
/// | offered | success leaf with the preimage (the counterparty) | `Preimage` |
/// | received | success leaf, both signatures and the preimage ("Accepted HTLCs": the holder's HTLC-success transaction) | `SecondLevelSuccess` |
/// | received | timeout leaf (the counterparty after `cltv_expiry`) | `Timeout` |
/// | either | key path (`revocation_pubkey` is the internal key: the only key path) | `Revocation` |
///
/// A leaf of the other kind of HTLC, of another output, or a preimage of another payment hash is
/// `Unknown`.
pub fn classify_taproot_htlc_spend(
    witness: &Witness,
    kind: HtlcOutputKind,
    payment_hash: &PaymentHash,
) -> HtlcSpend {
    let Ok(spend) = classify_witness(witness) else {
        return HtlcSpend::Unknown;
    };
    let ours = |p: &crate::bolt3::PaymentPreimage| p.payment_hash() == *payment_hash;
    match (kind, spend) {
        (_, TaprootSpendKind::KeyPath) => HtlcSpend::Revocation,
        (HtlcOutputKind::Offered, TaprootSpendKind::OfferedTimeout) => {
            HtlcSpend::SecondLevelTimeout
        }
        (HtlcOutputKind::Offered, TaprootSpendKind::OfferedSuccess { preimage })
            if ours(&preimage) =>
        {
            HtlcSpend::Preimage(preimage)
        }
        (HtlcOutputKind::Received, TaprootSpendKind::AcceptedSuccess { preimage })
            if ours(&preimage) =>
        {
            HtlcSpend::SecondLevelSuccess(preimage)
        }
        (HtlcOutputKind::Received, TaprootSpendKind::AcceptedTimeout { .. }) => HtlcSpend::Timeout,
        _ => HtlcSpend::Unknown,
    }
}

/// How a `to_local` output or the output of a second-level HTLC transaction was spent: its delay
/// leaf is [`ToLocalSpend::Delayed`]; `to_local`'s revoke leaf, or the second-level output's key
/// path (its internal key is `revocation_pubkey`; `to_local`'s is the NUMS point, so it has no
/// key path), is [`ToLocalSpend::Revocation`]; anything else is [`ToLocalSpend::Unknown`].
pub fn classify_taproot_to_local_spend(witness: &Witness) -> ToLocalSpend {
    match classify_witness(witness) {
        Ok(TaprootSpendKind::ToLocalDelay { .. } | TaprootSpendKind::SecondLevelDelay { .. }) => {
            ToLocalSpend::Delayed
        }
        Ok(TaprootSpendKind::ToLocalRevoke | TaprootSpendKind::KeyPath) => ToLocalSpend::Revocation,
        _ => ToLocalSpend::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bolt3::taproot::fixture::{spend, SpendParams, SpendPath, ALL_PATHS, PREIMAGE};
    use crate::bolt3::PaymentPreimage;

    fn witness(path: SpendPath) -> Witness {
        spend(path, &SpendParams::default()).unwrap().tx.input[0]
            .witness
            .clone()
    }

    /// Every fixture path (built and signed by `taproot::witness`) read as an HTLC spend of each
    /// kind: the table of the function's doc, and `Unknown` everywhere else.
    #[test]
    fn every_taproot_spend_path_reads_as_the_htlc_spend_it_is_and_nothing_else() {
        use HtlcOutputKind::{Offered, Received};
        let hash = PaymentPreimage(PREIMAGE).payment_hash();
        let p = PaymentPreimage(PREIMAGE);
        for path in ALL_PATHS {
            let w = witness(path);
            let expected = |kind| match (kind, path) {
                (_, SpendPath::OfferedRevoke | SpendPath::AcceptedRevoke) => HtlcSpend::Revocation,
                // Any key path is a revocation on an HTLC output: its only key path.
                (_, SpendPath::AnchorKeyPath | SpendPath::SecondLevelRevoke) => {
                    HtlcSpend::Revocation
                }
                (Offered, SpendPath::OfferedTimeout) => HtlcSpend::SecondLevelTimeout,
                (Offered, SpendPath::OfferedSuccess) => HtlcSpend::Preimage(p),
                (Received, SpendPath::AcceptedSuccess) => HtlcSpend::SecondLevelSuccess(p),
                (Received, SpendPath::AcceptedTimeout) => HtlcSpend::Timeout,
                _ => HtlcSpend::Unknown,
            };
            for kind in [Offered, Received] {
                assert_eq!(
                    classify_taproot_htlc_spend(&w, kind, &hash),
                    expected(kind),
                    "{path:?} as {kind:?}"
                );
            }
            // A preimage is never reported for another payment hash.
            let other = PaymentHash([9; 32]);
            for kind in [Offered, Received] {
                assert_eq!(
                    classify_taproot_htlc_spend(&w, kind, &other).preimage(),
                    None
                );
            }
        }
    }

    #[test]
    fn taproot_to_local_and_second_level_spends_read_as_delayed_or_revoked() {
        for path in ALL_PATHS {
            let expected = match path {
                SpendPath::ToLocalDelay | SpendPath::SecondLevelDelay => ToLocalSpend::Delayed,
                SpendPath::ToLocalRevoke
                | SpendPath::SecondLevelRevoke
                | SpendPath::OfferedRevoke
                | SpendPath::AcceptedRevoke
                | SpendPath::AnchorKeyPath => ToLocalSpend::Revocation,
                _ => ToLocalSpend::Unknown,
            };
            assert_eq!(
                classify_taproot_to_local_spend(&witness(path)),
                expected,
                "{path:?}"
            );
        }
        // Garbage and the empty witness.
        for w in [Witness::new(), Witness::from_slice(&[vec![1u8; 70]])] {
            assert_eq!(classify_taproot_to_local_spend(&w), ToLocalSpend::Unknown);
            let hash = PaymentHash([1; 32]);
            assert_eq!(
                classify_taproot_htlc_spend(&w, HtlcOutputKind::Offered, &hash),
                HtlcSpend::Unknown
            );
        }
    }
}
