//! What a mempool's refusal of a broadcast means. Drivers pass a node's answer through raw; this
//! reads the wordings of Bitcoin Core 25 to 29 — `sendrawtransaction`'s and `submitpackage`'s
//! messages (`<reject reason>[, <details>]`, or the RPC's own text when there is no reason) and
//! `testmempoolaccept`'s `reject-reason` — and Esplora's, which wraps the same messages
//! (`sendrawtransaction RPC error: {"code":-26,"message":"..."}`).
//!
//! Matching is by substring, case-insensitively, in a fixed order: "already there" first (a
//! rebroadcast of what is already in the mempool or the chain is success), then the fee
//! refusals, then the rest.

/// The meaning of a refusal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RejectClass {
    /// The transaction (or one with the same txid and another witness) is in the mempool:
    /// `txn-already-in-mempool`, `txn-same-nonwitness-data-in-mempool`.
    AlreadyInMempool,
    /// The transaction is confirmed: its outputs are in the UTXO set (`txn-already-known` up to
    /// Bitcoin Core 27, RPC `Transaction already in block chain`; from 28 `Transaction outputs
    /// already in utxo set`).
    AlreadyConfirmed,
    /// The fee or fee rate is too low: `min relay fee not met`, `mempool min fee not met`,
    /// `mempool full`, BIP 125's `insufficient fee`, a package's fee.
    FeeTooLow,
    /// The node's own cap on fees (`max-fee-exceeded`; RPC `Fee exceeds maximum configured by
    /// user`): the node refuses to pay that much, whatever the network would take.
    FeeAboveNodeMaximum,
    /// An input is missing or already spent in the chain: `bad-txns-inputs-missingorspent`,
    /// `missing-inputs`, RPC `Inputs missing or spent`.
    InputsMissingOrSpent,
    /// An input is spent by a mempool transaction that cannot be replaced by this one:
    /// `txn-mempool-conflict`, `bad-txns-spends-conflicting-tx`, `too many potential
    /// replacements`.
    Conflict,
    /// Not final at the next block: `non-final` (`nLockTime`), `non-BIP68-final` (CSV).
    NotFinal,
    /// Mempool ancestry limits: `too-long-mempool-chain`, `too-large-cluster`.
    ChainLimit,
    /// A version 3 (TRUC) topology or size rule, `TRUC-violation` (Core 28-29
    /// `policy/truc_policy.cpp`), or an ephemeral dust rule: `missing-ephemeral-spends`, `dust,
    /// tx with dust output must be 0-fee` (Core 29 `policy/ephemeral_policy.cpp`,
    /// `validation.cpp`).
    Truc,
    /// A package that is not well formed: `package-not-child-with-parents`,
    /// `package-too-many-transactions`, `package-too-large`, `package-contains-duplicates`,
    /// `package-not-sorted`, `conflict-in-package`, `package-mempool-limits`, RPC `package
    /// topology disallowed` and `Transaction rejected due to invalid package`.
    Package,
    /// Anything else: consensus or standardness (scripts, dust, size, version, …).
    Invalid,
}

const ALREADY_IN_MEMPOOL: &[&str] = &[
    "txn-already-in-mempool",
    "txn-same-nonwitness-data-in-mempool",
    // Esplora and other broadcasters' own wording.
    "already in mempool",
    "already known",
];
const ALREADY_CONFIRMED: &[&str] = &[
    "txn-already-known",
    "already in block chain",
    "outputs already in utxo set",
];
const FEE_ABOVE_MAXIMUM: &[&str] = &["max-fee-exceeded", "fee exceeds maximum"];
const FEE_TOO_LOW: &[&str] = &[
    "insufficient fee",
    "min relay fee not met",
    "mempool min fee not met",
    "mempool full",
    "fee not met",
    "feerate too low",
    "fee too low",
    // Package RBF (validation.cpp PackageRBFChecks, 28-29): "package RBF failed: insufficient
    // anti-DoS fees", "... insufficient feerate: does not improve feerate diagram".
    "insufficient anti-dos fees",
    "insufficient feerate",
];
const PACKAGE: &[&str] = &[
    "package-not-child-with-parents",
    "package-not-child-with-unconfirmed-parents",
    "package must be 1-parent-1-child",
    "cannot have mempool ancestors",
    "package-too-many-transactions",
    "package-too-large",
    "package-contains-duplicates",
    "package-not-sorted",
    "conflict-in-package",
    "package-mempool-limits",
    "package topology disallowed",
    "rejected due to invalid package",
];
const INPUTS_MISSING: &[&str] = &[
    "missingorspent",
    "missing-inputs",
    "missing inputs",
    "inputs missing or spent",
    "inputs-spent",
];
const CONFLICT: &[&str] = &[
    "txn-mempool-conflict",
    "bad-txns-spends-conflicting-tx",
    "too many potential replacements",
    "conflict",
];
const NOT_FINAL: &[&str] = &["non-final", "non-bip68-final"];
const CHAIN_LIMIT: &[&str] = &["too-long-mempool-chain", "too-large-cluster"];
const TRUC: &[&str] = &[
    "truc-violation",
    "missing-ephemeral-spends",
    "dust output must be 0-fee",
];

/// Classify a node's refusal (see the [module documentation](self)).
pub fn classify_reject(reason: &str) -> RejectClass {
    let r = reason.to_ascii_lowercase();
    let any = |needles: &[&str]| needles.iter().any(|n| r.contains(n));
    // The order matters: "already" answers first; fee refusals before the generic "conflict"
    // (a replacement's "insufficient fee" names the conflict); package errors before it too.
    let table: [(&[&str], RejectClass); 10] = [
        (ALREADY_CONFIRMED, RejectClass::AlreadyConfirmed),
        (ALREADY_IN_MEMPOOL, RejectClass::AlreadyInMempool),
        (FEE_ABOVE_MAXIMUM, RejectClass::FeeAboveNodeMaximum),
        (FEE_TOO_LOW, RejectClass::FeeTooLow),
        (PACKAGE, RejectClass::Package),
        (INPUTS_MISSING, RejectClass::InputsMissingOrSpent),
        (CONFLICT, RejectClass::Conflict),
        (NOT_FINAL, RejectClass::NotFinal),
        (CHAIN_LIMIT, RejectClass::ChainLimit),
        (TRUC, RejectClass::Truc),
    ];
    table
        .iter()
        .find(|(needles, _)| any(needles))
        .map_or(RejectClass::Invalid, |(_, class)| *class)
}

/// Whether a refusal means the transaction is already in the mempool or the chain: success.
pub fn is_already_known(reason: &str) -> bool {
    matches!(
        classify_reject(reason),
        RejectClass::AlreadyInMempool | RejectClass::AlreadyConfirmed
    )
}

/// Whether a refusal says the fee (or fee rate) is too low: a minimum, a full mempool, or a
/// replacement that does not pay enough.
pub fn is_fee_refusal(reason: &str) -> bool {
    classify_reject(reason) == RejectClass::FeeTooLow
}

#[cfg(test)]
#[path = "reject_tests.rs"]
mod tests;
