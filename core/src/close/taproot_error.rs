//! Why the contracts of a simple taproot close could not be given ([`super::taproot`]).

use crate::bolt3::keys::KeyError;
use crate::bolt3::taproot::TaprootScriptError;
use crate::bolt3::ChannelType;
use crate::commitments::RebuildError;

/// Why the contracts of a taproot close could not be given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TaprootCloseError {
    /// The channel is not a simple taproot channel.
    NotTaproot {
        /// Its type.
        channel_type: ChannelType,
    },
    /// A commitment identified by its txid does not rebuild (keys or bolt3 refused it).
    Rebuild(RebuildError),
    /// The commitment rebuilt does not have the confirmed transaction's txid.
    RebuiltTxidMismatch {
        /// The commitment number.
        number: u64,
    },
    /// The revoked log's entry is for another commitment number.
    WrongRevokedRecord {
        /// The confirmed commitment's number.
        expected: u64,
        /// The entry's.
        got: u64,
    },
    /// A key could not be derived from the revealed secret.
    Key(KeyError),
    /// A tap tree could not be built.
    Script(TaprootScriptError),
    /// A rebuilt output index is not in the confirmed transaction.
    MissingOutput {
        /// The index.
        vout: u32,
    },
    /// A rebuilt HTLC output names an HTLC the spec does not have.
    MissingHtlc {
        /// The output.
        vout: u32,
        /// The HTLC id.
        htlc_id: u64,
    },
    /// An output kind a taproot commitment cannot have (the shared pay-to-anchor).
    UnexpectedOutput {
        /// The output.
        vout: u32,
    },
    /// The tree rebuilt for an output does not give the confirmed scriptPubKey.
    ScriptMismatch {
        /// The output.
        vout: u32,
    },
    /// The holder's second-level transaction could not be built for this HTLC output.
    SecondLevel {
        /// The output.
        vout: u32,
    },
}

impl std::fmt::Display for TaprootCloseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TaprootCloseError::Rebuild(e) => write!(f, "taproot close: {e}"),
            TaprootCloseError::Key(e) => write!(f, "taproot close: {e}"),
            TaprootCloseError::Script(e) => write!(f, "taproot close: {e}"),
            other => write!(f, "taproot close: {other:?}"),
        }
    }
}

impl std::error::Error for TaprootCloseError {}
