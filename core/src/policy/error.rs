//! [`PolicyError`]: why a transaction would not be relayed or mined at a given height.

use super::truc::TrucViolation;

/// Why a transaction fails a finality or standardness rule. Every variant names the input,
/// output or witness item concerned and the numbers involved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PolicyError {
    /// `prevouts` (or `prevout_heights`) does not have one entry per input.
    PrevoutCountMismatch {
        /// How many inputs the transaction has.
        inputs: usize,
        /// How many entries were given.
        prevouts: usize,
    },
    /// The absolute height lock is not below the height of the block being built.
    LockTimeNotReached {
        /// The transaction's `nLockTime` (a height).
        lock_time: u32,
        /// The height of the block the transaction would be in.
        block_height: u32,
    },
    /// An enabled time-based `nLockTime` that cannot be known to have passed without a clock.
    TimeLockUnsupported {
        /// The transaction's `nLockTime` (a UNIX time).
        lock_time: u32,
    },
    /// A BIP 68 time-based relative lock, which the engine never builds.
    RelativeTimeLockUnsupported {
        /// The input index.
        input: usize,
        /// The input's `nSequence`.
        sequence: u32,
    },
    /// A BIP 68 height-based relative lock that has not expired.
    RelativeLockNotReached {
        /// The input index.
        input: usize,
        /// The relative lock in blocks.
        blocks: u16,
        /// The height the prevout confirmed at (`None`: unconfirmed).
        prevout_height: Option<u32>,
        /// The height of the block the transaction would be in.
        block_height: u32,
    },
    /// An `OP_IF`/`OP_NOTIF` argument that is neither empty nor exactly `0x01` (MINIMALIF).
    NonMinimalIf {
        /// The input index.
        input: usize,
        /// The witness item the argument came from, or `None` if the witness script made it.
        witness_item: Option<usize>,
        /// The argument.
        argument: Vec<u8>,
    },
    /// An `OP_IF`/`OP_NOTIF` argument the checker cannot evaluate (e.g. arithmetic on the
    /// witness), so MINIMALIF cannot be confirmed.
    MinimalIfUndetermined {
        /// The input index.
        input: usize,
    },
    /// The witness script branches into more paths than the checker explores.
    MinimalIfTooComplex {
        /// The input index.
        input: usize,
        /// The number of paths explored before giving up.
        max_paths: usize,
    },
    /// `nVersion` is not 1, 2 or 3.
    VersionNonStandard {
        /// The version.
        version: i32,
    },
    /// The transaction weighs more than the standard maximum.
    WeightTooHigh {
        /// The transaction weight (weight units).
        weight: u64,
        /// The maximum.
        max: u64,
    },
    /// The transaction without witness is smaller than 65 bytes.
    TooSmall {
        /// Its size without witness data.
        non_witness_size: usize,
    },
    /// A `scriptSig` that is larger than 1650 bytes or not push-only.
    ScriptSigNonStandard {
        /// The input index.
        input: usize,
        /// The `scriptSig` size.
        size: usize,
    },
    /// An output script of a type that is not relayed.
    OutputNonStandard {
        /// The output index.
        output: usize,
    },
    /// More than one `OP_RETURN` output.
    MultipleDataOutputs {
        /// How many there are.
        count: usize,
    },
    /// An output below the dust threshold of its script type.
    Dust {
        /// The output index.
        output: usize,
        /// Its value (sat).
        value_sat: u64,
        /// The dust threshold (sat): the output must be worth at least this.
        threshold_sat: u64,
    },
    /// A prevout whose script type is not standard to spend.
    InputNonStandard {
        /// The input index.
        input: usize,
    },
    /// A witness on an input whose prevout is not a witness program (or a pay-to-anchor spend
    /// with a witness).
    UnexpectedWitness {
        /// The input index.
        input: usize,
    },
    /// A P2WSH witness script above 3600 bytes.
    WitnessScriptTooLarge {
        /// The input index.
        input: usize,
        /// Its size.
        size: usize,
        /// The maximum.
        max: usize,
    },
    /// More than 100 P2WSH witness items besides the script.
    TooManyWitnessItems {
        /// The input index.
        input: usize,
        /// How many items there are besides the script.
        items: usize,
        /// The maximum.
        max: usize,
    },
    /// A witness item above 80 bytes.
    WitnessItemTooLarge {
        /// The input index.
        input: usize,
        /// The witness item index.
        item: usize,
        /// Its size.
        size: usize,
        /// The maximum.
        max: usize,
    },
    /// A taproot spend with an annex.
    TaprootAnnex {
        /// The input index.
        input: usize,
    },
    /// The sum of input or output values is not a valid amount.
    ValueOutOfRange,
    /// The outputs are worth more than the inputs.
    NegativeFee {
        /// Sum of the prevouts (sat).
        inputs_sat: u64,
        /// Sum of the outputs (sat).
        outputs_sat: u64,
    },
    /// The fee is below the minimum relay fee for the transaction's size.
    FeeBelowMinRelay {
        /// The fee (sat).
        fee_sat: u64,
        /// The minimum fee for `vsize` (sat).
        min_fee_sat: u64,
        /// The virtual size (vB).
        vsize: u64,
    },
    /// A package with no transaction.
    PackageEmpty,
    /// A package with more than 25 transactions.
    PackageTooManyTransactions {
        /// How many it has.
        count: usize,
        /// The maximum.
        max: usize,
    },
    /// A package heavier than 404,000 weight units.
    PackageTooHeavy {
        /// The package weight.
        weight: u64,
        /// The maximum.
        max: u64,
    },
    /// A package that is not one child with its parents, listed parents first (each parent
    /// spent by the child, no parent spending another).
    PackageNotChildWithParents {
        /// The index of the offending transaction in the package.
        index: usize,
    },
    /// A transaction of a package fails a rule.
    PackageMember {
        /// Its index in the package.
        index: usize,
        /// The rule it fails.
        error: Box<PolicyError>,
    },
    /// A TRUC (version 3) rule broken (Core: `TRUC-violation`).
    Truc(TrucViolation),
    /// A transaction of a package leaves a dust output of an in-package parent unspent (Core:
    /// `missing-ephemeral-spends`).
    MissingEphemeralSpends,
    /// The transactions that could not enter the mempool alone do not pay the minimum relay fee
    /// together.
    PackageFeeBelowMinRelay {
        /// Their total fee (sat).
        fee_sat: u64,
        /// The minimum fee for their total virtual size (sat).
        min_fee_sat: u64,
        /// Their total virtual size (vB).
        vsize: u64,
    },
}

impl std::fmt::Display for PolicyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use PolicyError as E;
        match self {
            E::PrevoutCountMismatch { inputs, prevouts } => write!(
                f,
                "{prevouts} prevout entries for a transaction with {inputs} inputs"
            ),
            E::LockTimeNotReached {
                lock_time,
                block_height,
            } => write!(
                f,
                "nlocktime {lock_time} is not below block height {block_height}"
            ),
            E::TimeLockUnsupported { lock_time } => {
                write!(f, "time lock not supported: nlocktime {lock_time}")
            }
            E::RelativeTimeLockUnsupported { input, sequence } => write!(
                f,
                "input {input}: time-based relative lock not supported (nsequence {sequence:#010x})"
            ),
            E::RelativeLockNotReached {
                input,
                blocks,
                prevout_height,
                block_height,
            } => match prevout_height {
                Some(h) => write!(
                    f,
                    "input {input}: relative lock of {blocks} blocks on a prevout confirmed at \
                     {h} not reached at height {block_height}"
                ),
                None => write!(
                    f,
                    "input {input}: relative lock of {blocks} blocks on an unconfirmed prevout \
                     not reached at height {block_height}"
                ),
            },
            E::NonMinimalIf {
                input,
                witness_item,
                argument,
            } => {
                let arg = hex::encode(argument);
                match witness_item {
                    Some(item) => write!(
                        f,
                        "input {input}: op_if argument 0x{arg} from witness item {item} is not \
                         empty or 0x01 (minimalif)"
                    ),
                    None => write!(
                        f,
                        "input {input}: op_if argument 0x{arg} made by the witness script is not \
                         empty or 0x01 (minimalif)"
                    ),
                }
            }
            E::MinimalIfUndetermined { input } => write!(
                f,
                "input {input}: cannot determine whether an op_if argument is minimal"
            ),
            E::MinimalIfTooComplex { input, max_paths } => write!(
                f,
                "input {input}: witness script has more than {max_paths} execution paths"
            ),
            E::VersionNonStandard { version } => {
                write!(f, "transaction version {version} is not standard")
            }
            E::WeightTooHigh { weight, max } => {
                write!(f, "transaction weight {weight} exceeds {max}")
            }
            E::TooSmall { non_witness_size } => write!(
                f,
                "transaction is {non_witness_size} bytes without witness, below 65"
            ),
            E::ScriptSigNonStandard { input, size } => write!(
                f,
                "input {input}: scriptsig of {size} bytes is too large or not push-only"
            ),
            E::OutputNonStandard { output } => {
                write!(f, "output {output}: script type is not standard")
            }
            E::MultipleDataOutputs { count } => {
                write!(f, "{count} op_return outputs, at most 1 is standard")
            }
            E::Dust {
                output,
                value_sat,
                threshold_sat,
            } => write!(
                f,
                "output {output}: {value_sat} sat is dust (threshold {threshold_sat} sat)"
            ),
            E::InputNonStandard { input } => {
                write!(f, "input {input}: spends a non-standard script type")
            }
            E::UnexpectedWitness { input } => {
                write!(f, "input {input}: witness on a prevout that takes none")
            }
            E::WitnessScriptTooLarge { input, size, max } => write!(
                f,
                "input {input}: witness script of {size} bytes exceeds {max}"
            ),
            E::TooManyWitnessItems { input, items, max } => {
                write!(f, "input {input}: {items} witness items exceed {max}")
            }
            E::WitnessItemTooLarge {
                input,
                item,
                size,
                max,
            } => write!(
                f,
                "input {input}: witness item {item} of {size} bytes exceeds {max}"
            ),
            E::TaprootAnnex { input } => write!(f, "input {input}: taproot annex is not standard"),
            E::ValueOutOfRange => f.write_str("sum of values is out of range"),
            E::NegativeFee {
                inputs_sat,
                outputs_sat,
            } => write!(
                f,
                "outputs ({outputs_sat} sat) exceed inputs ({inputs_sat} sat)"
            ),
            E::FeeBelowMinRelay {
                fee_sat,
                min_fee_sat,
                vsize,
            } => write!(
                f,
                "fee {fee_sat} sat is below the minimum relay fee {min_fee_sat} sat for {vsize} vB"
            ),
            E::Truc(v) => write!(f, "truc-violation: {v}"),
            E::MissingEphemeralSpends => {
                f.write_str("missing-ephemeral-spends: tx did not spend parent's ephemeral dust")
            }
            E::PackageEmpty => f.write_str("empty package"),
            E::PackageTooManyTransactions { count, max } => {
                write!(f, "package of {count} transactions exceeds {max}")
            }
            E::PackageTooHeavy { weight, max } => {
                write!(f, "package weight {weight} exceeds {max}")
            }
            E::PackageNotChildWithParents { index } => write!(
                f,
                "package transaction {index} breaks the child-with-parents topology"
            ),
            E::PackageMember { index, error } => {
                write!(f, "package transaction {index}: {error}")
            }
            E::PackageFeeBelowMinRelay {
                fee_sat,
                min_fee_sat,
                vsize,
            } => write!(
                f,
                "package fee {fee_sat} sat is below the minimum relay fee {min_fee_sat} sat for \
                 {vsize} vB"
            ),
        }
    }
}

impl std::error::Error for PolicyError {}
