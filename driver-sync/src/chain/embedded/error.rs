//! Typed errors of the embedded chain: [`ChainError`] for blocks and the chain,
//! [`MempoolReject`] for transactions refused by the mempool.

use std::fmt;
use std::path::PathBuf;

use bitcoin::{BlockHash, OutPoint, Txid};
use contractcourt_core::policy::{PolicyError, TrucViolation};
use contractcourt_core::types::Height;

use contractcourt_core::policy::truc_mempool::{
    MISSING_EPHEMERAL_SPENDS_REASON, TRUC_REJECT_REASON,
};

use super::ChainUpdate;

/// Why Bitcoin Core refused a block: the kernel's `BlockValidationResult`.
///
/// The kernel reports the class of failure, not Bitcoin Core's reject string; see
/// [`BlockRejection::suspect`] for which transaction most likely caused it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BlockRejectReason {
    /// A consensus rule failed (scripts, amounts, double spends, timelocks, coinbase, ...).
    Consensus,
    /// The block was already known to be invalid.
    CachedInvalid,
    /// The header is invalid (proof of work, time, version).
    InvalidHeader,
    /// The block's data does not match its header (merkle root, witness commitment).
    Mutated,
    /// The parent block is unknown.
    MissingPrev,
    /// The parent block is invalid.
    InvalidPrev,
    /// The header time is too far in the future.
    TimeFuture,
    /// The header chain has too little work.
    HeaderLowWork,
    /// The kernel took the block without reporting a failure, but did not make it (or the fork
    /// it ends) the tip of its active chain.
    NotConnected,
    /// The kernel refused the block without saying why.
    Unknown,
}

impl fmt::Display for BlockRejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BlockRejectReason::Consensus => "a consensus rule failed",
            BlockRejectReason::CachedInvalid => "the block is already known to be invalid",
            BlockRejectReason::InvalidHeader => "invalid header",
            BlockRejectReason::Mutated => "block data does not match its header",
            BlockRejectReason::MissingPrev => "unknown parent block",
            BlockRejectReason::InvalidPrev => "invalid parent block",
            BlockRejectReason::TimeFuture => "block time too far in the future",
            BlockRejectReason::HeaderLowWork => "header chain has too little work",
            BlockRejectReason::NotConnected => "the kernel did not make the block its tip",
            BlockRejectReason::Unknown => "refused for an unreported reason",
        })
    }
}

/// A transaction of a refused block that fails a consensus check (the same checks the mempool
/// runs, minus policy), found after the kernel refused the block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxFault {
    /// Its position in the block (the coinbase is 0).
    pub index: usize,
    /// Its txid.
    pub txid: Txid,
    /// What fails.
    pub reason: MempoolReject,
}

/// A block Bitcoin Core refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockRejection {
    /// The block's hash.
    pub hash: BlockHash,
    /// The height it would have had (0 if its parent is not on the active chain).
    pub height: Height,
    /// The kernel's verdict.
    pub reason: BlockRejectReason,
    /// The first transaction that fails the embedded chain's own consensus checks, as an
    /// explanation. The verdict is the kernel's; this is only a diagnosis (`None` when every
    /// transaction passes them, e.g. for a header or coinbase failure).
    pub suspect: Option<TxFault>,
}

impl fmt::Display for BlockRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "bitcoin core refused block {} at height {}: {}",
            self.hash, self.height, self.reason
        )?;
        if let Some(fault) = &self.suspect {
            write!(
                f,
                " (transaction {} at index {}: {})",
                fault.txid, fault.index, fault.reason
            )?;
        }
        Ok(())
    }
}

/// Why an operation on the embedded chain failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChainError {
    /// The data directory could not be prepared.
    Io {
        /// The path concerned.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The kernel failed to start or to answer (not a validation verdict).
    Kernel(String),
    /// Bitcoin Core refused a block; the tip did not move.
    BlockRejected(Box<BlockRejection>),
    /// Bitcoin Core refused a block of a fork, or did not switch to it. The chain is whatever
    /// the kernel's active chain is now; `applied` lists the changes that did happen (possibly
    /// none, possibly a switch to a valid prefix of the fork).
    ForkRejected {
        /// The refused block.
        rejection: Box<BlockRejection>,
        /// The disconnections and connections that happened anyway, in order.
        applied: Vec<ChainUpdate>,
    },
    /// A fork must start at a block of the active chain.
    ForkPointAboveTip {
        /// The requested fork point.
        fork_height: Height,
        /// The current tip height.
        tip_height: Height,
    },
    /// The fork would not have more work than the active chain, so Bitcoin Core would not
    /// switch to it.
    ForkNotHeavier {
        /// The height the fork would reach.
        fork_tip_height: Height,
        /// The current tip height.
        tip_height: Height,
    },
    /// A fork of no blocks.
    EmptyFork,
    /// The kernel's chain and the embedded chain's view of it disagree (a bug).
    Inconsistent(String),
    /// No nonce satisfies the proof of work (never happens at regtest difficulty).
    ProofOfWorkNotFound {
        /// The height of the block.
        height: Height,
    },
}

impl fmt::Display for ChainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChainError::Io { path, message } => write!(f, "{}: {message}", path.display()),
            ChainError::Kernel(message) => write!(f, "bitcoin kernel: {message}"),
            ChainError::BlockRejected(rejection) => rejection.fmt(f),
            ChainError::ForkRejected { rejection, applied } => write!(
                f,
                "fork not adopted after {} chain updates: {rejection}",
                applied.len()
            ),
            ChainError::ForkPointAboveTip {
                fork_height,
                tip_height,
            } => write!(
                f,
                "fork point {fork_height} is above the tip at height {tip_height}"
            ),
            ChainError::ForkNotHeavier {
                fork_tip_height,
                tip_height,
            } => write!(
                f,
                "a fork reaching height {fork_tip_height} is not heavier than the chain at \
                 height {tip_height}"
            ),
            ChainError::EmptyFork => f.write_str("a fork needs at least one block"),
            ChainError::Inconsistent(message) => write!(f, "chain view inconsistent: {message}"),
            ChainError::ProofOfWorkNotFound { height } => {
                write!(f, "no nonce meets the target at height {height}")
            }
        }
    }
}

impl std::error::Error for ChainError {}

/// Why the mempool refused a transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MempoolReject {
    /// The transaction is already in the mempool.
    AlreadyKnown {
        /// Its txid.
        txid: Txid,
    },
    /// The transaction is already confirmed in the active chain.
    AlreadyConfirmed {
        /// Its txid.
        txid: Txid,
        /// The height it confirmed at.
        height: Height,
    },
    /// A coinbase transaction cannot be relayed.
    Coinbase,
    /// Bitcoin Core's context-free transaction checks failed (no inputs or outputs, duplicate
    /// inputs, output values out of range, oversized, ...), or the bytes do not decode.
    Invalid {
        /// What the kernel said.
        reason: String,
    },
    /// Inputs that are neither unspent outputs of the active chain nor outputs of mempool
    /// transactions (never existed, or already spent in the chain).
    MissingInputs {
        /// The missing outpoints.
        outpoints: Vec<OutPoint>,
    },
    /// A coinbase output spent before 100 confirmations.
    ImmatureCoinbase {
        /// The input index.
        input: usize,
        /// The height the coinbase confirmed at.
        confirmed_at: Height,
        /// The first block height that may spend it.
        spendable_at: Height,
    },
    /// The outputs are worth more than the inputs.
    InputsBelowOutputs {
        /// Sum of the prevouts (sat).
        inputs_sat: u64,
        /// Sum of the outputs (sat).
        outputs_sat: u64,
    },
    /// `nLockTime` not reached at the next block height (or an unsupported time lock).
    NonFinal(PolicyError),
    /// A BIP 68 relative lock not reached at the next block height.
    Bip68NotMet(PolicyError),
    /// An input fails Bitcoin Core's script interpreter (all consensus flags, taproot
    /// included).
    ScriptFailure {
        /// The input index.
        input: usize,
        /// What the kernel said.
        reason: String,
    },
    /// A standardness rule (or the minimum relay fee) fails.
    Policy(PolicyError),
    /// A TRUC (version 3) rule fails: Bitcoin Core's `TRUC-violation`.
    Truc {
        /// The rule.
        violation: TrucViolation,
        /// Core's details (`truc_policy.cpp`), naming the transactions.
        details: String,
    },
    /// A child leaves an unconfirmed parent's ephemeral dust unspent: Core's
    /// `missing-ephemeral-spends`.
    MissingEphemeralSpends {
        /// Core's details, naming the child.
        details: String,
    },
    /// A transaction with one dust output pays a fee: Core's `dust, tx with dust output must be
    /// 0-fee` (only a transaction paying nothing may carry ephemeral dust).
    DustNotZeroFee,
    /// The transaction conflicts with a mempool transaction and may not replace it here (in a
    /// package, or while the mempool is rebuilt after a block).
    Conflict {
        /// The conflicting mempool transaction.
        txid: Txid,
    },
    /// A replacement spends an output of a transaction it would evict.
    SpendsConflictingTx {
        /// The transaction it would both spend and evict.
        txid: Txid,
    },
    /// A replacement would evict too many transactions.
    TooManyReplacements {
        /// How many it would evict.
        count: usize,
        /// The maximum.
        max: usize,
    },
    /// A replacement does not pay a higher fee rate than a transaction it conflicts with.
    ReplacementFeeRateTooLow {
        /// The replacement.
        txid: Txid,
        /// Whether the conflict is a TRUC sibling considered for eviction.
        sibling_eviction: bool,
        /// The conflicting transaction.
        conflict: Txid,
        /// The replacement's fee (sat).
        fee_sat: u64,
        /// The replacement's virtual size.
        vsize: u64,
        /// The conflicting transaction's fee (sat).
        conflict_fee_sat: u64,
        /// The conflicting transaction's virtual size.
        conflict_vsize: u64,
    },
    /// A replacement does not pay for everything it evicts plus the incremental relay fee for
    /// its own size.
    InsufficientReplacementFee {
        /// The replacement.
        txid: Txid,
        /// Whether a TRUC sibling is among the evicted.
        sibling_eviction: bool,
        /// The evicted transactions' fees (sat).
        conflicting_sat: u64,
        /// The replacement's fee (sat).
        fee_sat: u64,
        /// The fee it needs (sat): the evicted transactions' fees plus the incremental relay
        /// fee for its virtual size.
        required_sat: u64,
    },
    /// A member of a package fails on its own.
    PackageMember {
        /// Its index in the package (parent 0, child 1).
        index: usize,
        /// Why.
        reject: Box<MempoolReject>,
    },
}

impl MempoolReject {
    /// The whole refusal as `sendrawtransaction` / `submitpackage` word it: the reject code, a
    /// comma, the details (`TRUC-violation, version=3 child tx … is too big: …`); a package
    /// member's is its own.
    pub fn reason(&self) -> String {
        match self {
            MempoolReject::PackageMember { reject, .. } => reject.reason(),
            _ => format!("{}, {self}", self.code()),
        }
    }

    /// Bitcoin Core's reject code for this reason (what `sendrawtransaction` would say), for
    /// drivers that pass reasons through raw.
    pub fn code(&self) -> &'static str {
        match self {
            MempoolReject::AlreadyKnown { .. } => "txn-already-in-mempool",
            MempoolReject::AlreadyConfirmed { .. } => "txn-already-known",
            MempoolReject::Coinbase => "coinbase",
            MempoolReject::Invalid { .. } => "bad-txns",
            MempoolReject::MissingInputs { .. } => "missing-inputs",
            MempoolReject::ImmatureCoinbase { .. } => "bad-txns-premature-spend-of-coinbase",
            MempoolReject::InputsBelowOutputs { .. } => "bad-txns-in-belowout",
            MempoolReject::NonFinal(_) => "non-final",
            MempoolReject::Bip68NotMet(_) => "non-BIP68-final",
            MempoolReject::ScriptFailure { .. } => "mandatory-script-verify-flag-failed",
            MempoolReject::Policy(e) => match e {
                PolicyError::FeeBelowMinRelay { .. } => "min relay fee not met",
                PolicyError::PackageFeeBelowMinRelay { .. } => "package-fee-too-low",
                PolicyError::Dust { .. } => "dust",
                PolicyError::NonMinimalIf { .. }
                | PolicyError::MinimalIfUndetermined { .. }
                | PolicyError::MinimalIfTooComplex { .. } => {
                    "non-mandatory-script-verify-flag (minimalif)"
                }
                PolicyError::Truc(_) => TRUC_REJECT_REASON,
                PolicyError::MissingEphemeralSpends => MISSING_EPHEMERAL_SPENDS_REASON,
                PolicyError::PackageEmpty
                | PolicyError::PackageTooManyTransactions { .. }
                | PolicyError::PackageTooHeavy { .. }
                | PolicyError::PackageNotChildWithParents { .. }
                | PolicyError::PackageMember { .. } => "package-not-child-with-parents",
                _ => "non-standard",
            },
            MempoolReject::Conflict { .. } => "txn-mempool-conflict",
            MempoolReject::SpendsConflictingTx { .. } => "bad-txns-spends-conflicting-tx",
            MempoolReject::TooManyReplacements { .. } => "too many potential replacements",
            MempoolReject::Truc { .. } => TRUC_REJECT_REASON,
            MempoolReject::MissingEphemeralSpends { .. } => MISSING_EPHEMERAL_SPENDS_REASON,
            MempoolReject::DustNotZeroFee => "dust",
            MempoolReject::ReplacementFeeRateTooLow {
                sibling_eviction, ..
            }
            | MempoolReject::InsufficientReplacementFee {
                sibling_eviction, ..
            } => {
                if *sibling_eviction {
                    "insufficient fee (including sibling eviction)"
                } else {
                    "insufficient fee"
                }
            }
            MempoolReject::PackageMember { reject, .. } => reject.code(),
        }
    }
}

impl fmt::Display for MempoolReject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MempoolReject::AlreadyKnown { txid } => {
                write!(f, "transaction {txid} is already in the mempool")
            }
            MempoolReject::AlreadyConfirmed { txid, height } => {
                write!(
                    f,
                    "transaction {txid} is already confirmed at height {height}"
                )
            }
            MempoolReject::Coinbase => f.write_str("a coinbase transaction cannot be relayed"),
            MempoolReject::Invalid { reason } => write!(f, "invalid transaction: {reason}"),
            MempoolReject::MissingInputs { outpoints } => {
                f.write_str("missing or spent inputs:")?;
                for outpoint in outpoints {
                    write!(f, " {outpoint}")?;
                }
                Ok(())
            }
            MempoolReject::ImmatureCoinbase {
                input,
                confirmed_at,
                spendable_at,
            } => write!(
                f,
                "input {input} spends a coinbase confirmed at {confirmed_at}, spendable from \
                 height {spendable_at}"
            ),
            MempoolReject::InputsBelowOutputs {
                inputs_sat,
                outputs_sat,
            } => write!(
                f,
                "outputs worth {outputs_sat} sat exceed inputs worth {inputs_sat} sat"
            ),
            MempoolReject::NonFinal(e) => write!(f, "non-final: {e}"),
            MempoolReject::Bip68NotMet(e) => write!(f, "relative lock not met: {e}"),
            MempoolReject::ScriptFailure { input, reason } => {
                write!(f, "input {input} fails script verification: {reason}")
            }
            MempoolReject::Policy(e) => write!(f, "policy: {e}"),
            MempoolReject::Truc { details, .. }
            | MempoolReject::MissingEphemeralSpends { details } => f.write_str(details),
            MempoolReject::DustNotZeroFee => f.write_str("tx with dust output must be 0-fee"),
            MempoolReject::Conflict { txid } => {
                write!(f, "conflicts with mempool transaction {txid}")
            }
            MempoolReject::SpendsConflictingTx { txid } => write!(
                f,
                "replacement spends an output of {txid}, which it would evict"
            ),
            MempoolReject::TooManyReplacements { count, max } => write!(
                f,
                "replacement would evict {count} transactions, more than {max}"
            ),
            MempoolReject::ReplacementFeeRateTooLow {
                txid,
                fee_sat,
                vsize,
                conflict_fee_sat,
                conflict_vsize,
                ..
            } => write!(
                f,
                "rejecting replacement {txid}; new feerate {} <= old feerate {}",
                btc_per_kvb(*fee_sat, *vsize),
                btc_per_kvb(*conflict_fee_sat, *conflict_vsize)
            ),
            MempoolReject::InsufficientReplacementFee {
                txid,
                conflicting_sat,
                fee_sat,
                required_sat,
                ..
            } => {
                if fee_sat < conflicting_sat {
                    write!(
                        f,
                        "rejecting replacement {txid}, less fees than conflicting txs; {} < {}",
                        money(*fee_sat),
                        money(*conflicting_sat)
                    )
                } else {
                    write!(
                        f,
                        "rejecting replacement {txid}, not enough additional fees to relay; {} < {}",
                        money(fee_sat - conflicting_sat),
                        money(required_sat.saturating_sub(*conflicting_sat))
                    )
                }
            }
            MempoolReject::PackageMember { index, reject } => {
                write!(f, "package transaction {index}: {reject}")
            }
        }
    }
}

impl std::error::Error for MempoolReject {}

/// Bitcoin Core's `FormatMoney`: BTC with eight decimals, trailing zeros trimmed down to two.
fn money(sat: u64) -> String {
    let text = format!("{}.{:08}", sat / 100_000_000, sat % 100_000_000);
    let decimals = text.trim_end_matches('0');
    let keep = decimals.len().max(text.len() - 6);
    text[..keep].to_owned()
}

/// Bitcoin Core's `CFeeRate(fee, vsize).ToString()`: sat per 1,000 vB (rounded down), as
/// `0.00001000 BTC/kvB`.
fn btc_per_kvb(fee_sat: u64, vsize: u64) -> String {
    let per_kvb = fee_sat.saturating_mul(1000) / vsize.max(1);
    format!(
        "{}.{:08} BTC/kvB",
        per_kvb / 100_000_000,
        per_kvb % 100_000_000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Core's `FormatMoney` and `CFeeRate::ToString`, as its refusals print them
    /// (`policy/rbf.cpp`: `0.00 < 0.00000141`, `0.00001 < 0.00002`, `0.00001000 BTC/kvB`).
    #[test]
    fn amounts_and_rates_are_printed_as_bitcoin_core_prints_them() {
        assert_eq!(money(0), "0.00");
        assert_eq!(money(141), "0.00000141");
        assert_eq!(money(1_000), "0.00001");
        assert_eq!(money(2_000_000), "0.02");
        assert_eq!(money(123_000_000), "1.23");
        assert_eq!(btc_per_kvb(1_000, 1_000), "0.00001000 BTC/kvB");
        assert_eq!(btc_per_kvb(2_000, 1_000), "0.00002000 BTC/kvB");
        assert_eq!(btc_per_kvb(1_000, 3), "0.00333333 BTC/kvB");
    }
}
