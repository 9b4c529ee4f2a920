//! The refusal wordings of Bitcoin Core 25 to 29 and Esplora, as their sources and functional
//! tests print them (`<reject reason>, <details>` from `TxValidationState::ToString`, the RPC's own
//! `TransactionErrorString` text, `testmempoolaccept`'s `reject-reason`), each with its meaning.

use super::*;
use RejectClass::*;

/// (message, class, where it comes from).
const TABLE: &[(&str, RejectClass, &str)] = &[
    // Already there: success.
    ("txn-already-in-mempool", AlreadyInMempool, "validation.cpp PreChecks, 25-29"),
    (
        "txn-same-nonwitness-data-in-mempool",
        AlreadyInMempool,
        "validation.cpp PreChecks: same txid, another witness, 25-29",
    ),
    ("txn-already-known", AlreadyConfirmed, "validation.cpp PreChecks: outputs in the UTXO set, 25-29"),
    (
        "Transaction already in block chain",
        AlreadyConfirmed,
        "util/error.cpp TransactionErrorString ALREADY_IN_CHAIN, RPC -27, 25-27",
    ),
    (
        "Transaction outputs already in utxo set",
        AlreadyConfirmed,
        "common/messages.cpp TransactionErrorString ALREADY_IN_UTXO_SET (node/transaction.cpp), RPC -27, 28-29",
    ),
    (
        r#"sendrawtransaction RPC error: {"code":-27,"message":"Transaction outputs already in utxo set"}"#,
        AlreadyConfirmed,
        "Esplora POST /tx, bitcoind 28+",
    ),
    // Fees.
    ("min relay fee not met, 110 < 141", FeeTooLow, "validation.cpp CheckFeeRate, 25-29"),
    ("mempool min fee not met, 1000 < 2346", FeeTooLow, "validation.cpp CheckFeeRate, 25-29"),
    ("mempool full", FeeTooLow, "validation.cpp LimitMempoolSize, 25-29"),
    (
        "insufficient fee, rejecting replacement 5e3c…; new feerate 0.00001000 BTC/kvB <= old feerate 0.00002000 BTC/kvB",
        FeeTooLow,
        "policy/rbf.cpp PaysMoreThanConflicts, 25-29",
    ),
    (
        "insufficient fee, rejecting replacement 5e3c…, less fees than conflicting txs; 0.00001 < 0.00002",
        FeeTooLow,
        "policy/rbf.cpp PaysForRBF, 25-29",
    ),
    (
        "insufficient fee, rejecting replacement 5e3c…, not enough additional fees to relay; 0.00 < 0.00000141",
        FeeTooLow,
        "policy/rbf.cpp PaysForRBF, 25-29",
    ),
    (
        r#"sendrawtransaction RPC error: {"code":-26,"message":"min relay fee not met, 110 < 141"}"#,
        FeeTooLow,
        "Esplora POST /tx",
    ),
    ("max-fee-exceeded", FeeAboveNodeMaximum, "testmempoolaccept, 25-29"),
    (
        "Fee exceeds maximum configured by user (e.g. -maxtxfee, maxfeerate)",
        FeeAboveNodeMaximum,
        "RPC -25 TransactionErrorString, 25-29",
    ),
    // Inputs.
    ("bad-txns-inputs-missingorspent", InputsMissingOrSpent, "validation.cpp PreChecks, 25-29"),
    ("missing-inputs", InputsMissingOrSpent, "testmempoolaccept reject-reason, 25-29"),
    ("Inputs missing or spent", InputsMissingOrSpent, "RPC -25 TransactionErrorString, 25-29"),
    ("txn-mempool-conflict", Conflict, "validation.cpp PreChecks (non-replaceable conflict), 25-29"),
    (
        "bad-txns-spends-conflicting-tx, 5e3c… spends conflicting transaction 7a1f…",
        Conflict,
        "policy/rbf.cpp EntriesAndTxidsDisjoint, 25-29",
    ),
    (
        "too many potential replacements, rejecting replacement 5e3c…; too many potential replacements (101 > 100)",
        Conflict,
        "policy/rbf.cpp GetEntriesForConflicts, 25-29",
    ),
    // Finality.
    ("non-final", NotFinal, "validation.cpp PreChecks (nLockTime), 25-29"),
    ("non-BIP68-final", NotFinal, "validation.cpp PreChecks (BIP 68), 25-29"),
    // Limits and TRUC.
    (
        "too-long-mempool-chain, too many unconfirmed ancestors [limit: 25]",
        ChainLimit,
        "validation.cpp PreChecks, 25-29",
    ),
    (
        "too-long-mempool-chain, exceeds descendant size limit for tx 5e3c… [limit: 101000]",
        ChainLimit,
        "validation.cpp PreChecks, 25-29",
    ),
    (
        "TRUC-violation, version=3 tx 5e3c… (wtxid=9b2d…) cannot spend from non-version=3 tx 7a1f… (wtxid=c4e0…)",
        Truc,
        "policy/truc_policy.cpp SingleTRUCChecks, 28-29",
    ),
    (
        "TRUC-violation, version=3 child tx 5e3c… (wtxid=9b2d…) is too big: 1001 > 1000 virtual bytes",
        Truc,
        "policy/truc_policy.cpp, 28-29",
    ),
    (
        "TRUC-violation, non-version=3 tx 5e3c… (wtxid=9b2d…) cannot spend from version=3 tx 7a1f… (wtxid=c4e0…)",
        Truc,
        "policy/truc_policy.cpp SingleTRUCChecks, 28-29",
    ),
    (
        "TRUC-violation, tx 5e3c… (wtxid=9b2d…) would have too many ancestors",
        Truc,
        "policy/truc_policy.cpp PackageTRUCChecks, 28-29",
    ),
    (
        "TRUC-violation, tx 7a1f… (wtxid=c4e0…) would exceed descendant count limit",
        Truc,
        "policy/truc_policy.cpp, 28-29",
    ),
    (
        "TRUC-violation, version=3 tx 5e3c… (wtxid=9b2d…) is too big: 10001 > 10000 virtual bytes",
        Truc,
        "policy/truc_policy.cpp SingleTRUCChecks, 28-29",
    ),
    (
        "missing-ephemeral-spends, tx 5e3c… (wtxid=9b2d…) did not spend parent's ephemeral dust",
        Truc,
        "policy/ephemeral_policy.cpp CheckEphemeralSpends, 29",
    ),
    (
        "dust, tx with dust output must be 0-fee",
        Truc,
        "policy/ephemeral_policy.cpp PreCheckEphemeralTx, 29",
    ),
    (
        "insufficient fee (including sibling eviction), rejecting replacement 5e3c…; new feerate 0.00001000 BTC/kvB <= old feerate 0.00002000 BTC/kvB",
        FeeTooLow,
        "validation.cpp ReplacementChecks, policy/rbf.cpp PaysMoreThanConflicts, 28-29",
    ),
    (
        "insufficient fee (including sibling eviction), rejecting replacement 5e3c…, not enough additional fees to relay; 0.00 < 0.00000141",
        FeeTooLow,
        "validation.cpp ReplacementChecks, policy/rbf.cpp PaysForRBF, 28-29",
    ),
    (
        "too many potential replacements (including sibling eviction), rejecting replacement 5e3c…; too many potential replacements (101 > 100)",
        Conflict,
        "validation.cpp ReplacementChecks, policy/rbf.cpp GetEntriesForConflicts, 28-29",
    ),
    // Packages.
    ("package-not-child-with-parents", Package, "policy/packages.cpp, 25-29"),
    ("package-too-many-transactions", Package, "policy/packages.cpp, 25-29"),
    ("package-too-large", Package, "policy/packages.cpp, 25-29"),
    ("package-contains-duplicates", Package, "policy/packages.cpp, 26-29"),
    ("package-not-sorted", Package, "policy/packages.cpp, 25-29"),
    ("conflict-in-package", Package, "policy/packages.cpp, 25-29"),
    ("package-mempool-limits", Package, "validation.cpp AcceptMultipleTransactions, 25-29"),
    (
        "package topology disallowed. not child-with-parents or parents depend on each other.",
        Package,
        "rpc/mempool.cpp submitpackage, RPC -25, 26-29",
    ),
    ("Transaction rejected due to invalid package", Package, "RPC -25 TransactionErrorString, 26-29"),
    (
        "package-not-child-with-unconfirmed-parents",
        Package,
        "validation.cpp AcceptPackage (submitpackage package_msg), 26-29",
    ),
    (
        "package RBF failed: package must be 1-parent-1-child",
        Package,
        "validation.cpp PackageRBFChecks, 28-29",
    ),
    (
        "package RBF failed: new transaction cannot have mempool ancestors",
        Package,
        "validation.cpp PackageRBFChecks, 28-29",
    ),
    (
        "package RBF failed: insufficient anti-DoS fees, rejecting replacement 5e3c…, not enough additional fees to relay; 0.00000011 < 0.00000022",
        FeeTooLow,
        "validation.cpp PackageRBFChecks (policy/rbf.cpp PaysForRBF), 28-29",
    ),
    (
        "package RBF failed: insufficient feerate: does not improve feerate diagram",
        FeeTooLow,
        "validation.cpp PackageRBFChecks (policy/rbf.cpp ImprovesFeerateDiagram), 28-29",
    ),
    (
        "package RBF failed: too many potential replacements, rejecting replacement 5e3c…; too many potential replacements (101 > 100)",
        Conflict,
        "validation.cpp PackageRBFChecks (policy/rbf.cpp GetEntriesForConflicts), 28-29",
    ),
    // Consensus and standardness: nothing to retry as is.
    (
        "mandatory-script-verify-flag-failed (Signature must be zero for failed CHECK(MULTI)SIG operation)",
        Invalid,
        "validation.cpp CheckInputScripts, 25-29",
    ),
    (
        "non-mandatory-script-verify-flag (Witness program hash mismatch)",
        Invalid,
        "validation.cpp CheckInputScripts, 25-29",
    ),
    ("dust", Invalid, "policy/policy.cpp IsStandardTx, 25-29"),
    ("tx-size", Invalid, "policy/policy.cpp IsStandardTx, 25-29"),
    ("bad-txns-in-belowout, value in (1000) < value out (2000)", Invalid, "consensus/tx_verify.cpp, 25-29"),
];

#[test]
fn every_bitcoin_core_and_esplora_wording_has_its_meaning() {
    for (message, class, source) in TABLE {
        assert_eq!(classify_reject(message), *class, "{message:?} ({source})");
    }
}

#[test]
fn already_there_is_success_whatever_the_version() {
    for (message, class, _) in TABLE {
        let expected = matches!(class, AlreadyInMempool | AlreadyConfirmed);
        assert_eq!(is_already_known(message), expected, "{message:?}");
    }
    // The wording Bitcoin Core 28 introduced, which the engine did not know.
    assert!(is_already_known("Transaction outputs already in utxo set"));
}

#[test]
fn only_fee_refusals_ask_for_a_higher_fee() {
    for (message, class, _) in TABLE {
        assert_eq!(is_fee_refusal(message), *class == FeeTooLow, "{message:?}");
    }
}
