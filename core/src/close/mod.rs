//! Close classification (lnd's chain watcher): a pure, total function from a transaction that
//! spends a channel's funding output, and what the engine knows of the channel's commitments, to
//! the kind of close it is.
//!
//! # Order of checks
//!
//! [`classify_close`] decides in this order, and the first rule that applies wins:
//!
//! 1. **Funding.** No input spends one of the channel's funding outputs →
//!    [`Classification::NotAFundingSpend`].
//! 2. **Txid identity.** The txid equals, on the funding output spent, our latest commitment's →
//!    [`Close::LocalCurrent`]; the peer's current one → [`Close::RemoteCurrent`]; the peer's
//!    pending one → [`Close::RemotePending`]. A txid commits to every input, output, nLockTime
//!    and nSequence, so nothing else needs checking.
//! 3. **Shape.** Without one input, an nLockTime prefixed `0x20` and an nSequence prefixed `0x80`
//!    (B03-CMT-02) it is no commitment: [`Close::Cooperative`] when both shutdown scripts are known
//!    and every output pays one of them, [`Close::Unknown`] otherwise.
//! 4. **Revoked.** The obscured number `n` decodes (B03-CMT-03):
//!    - we hold the peer's secret for `n` and the transaction pays their `to_local` (derived from
//!      that secret) or our `to_remote` → [`Close::RemoteRevoked`] (B05-REV);
//!    - `n <= local_revoked_through` and it pays the peer's `to_remote` → [`Close::LocalRevoked`];
//!    - we hold the secret, neither of those outputs is there and every output is P2WSH (only HTLC
//!      and anchor outputs remain) → [`Close::RemoteRevokedUnconfirmed`], for the caller to confirm
//!      with the HTLC data of the revoked log.
//! 5. **Future.** `n` is above every remote commitment we know and it pays our `to_remote`, or we
//!    detected data loss, `n` is the peer's current number they told us about and it pays their
//!    `to_local` derived from the point they sent → [`Close::RemoteFuture`] (B05-RMT-06/07).
//! 6. **Unknown.** Anything else → [`Close::Unknown`] (B05-RMT-06: tell the user).
//!
//! Simple taproot channels go through the same rules; the peer's `to_local` and the anchors
//! compared are their P2TR outputs and "only HTLC candidates" means only P2TR outputs. [`taproot`]
//! adds the per-output contracts (leaves, control blocks, key paths) of such a close.
//!
//! # Why the number alone proves nothing
//!
//! The commitment number is 48 bits hidden in nLockTime and nSequence, which whoever signs a
//! transaction sets freely; the obscuring factor is a hash of two basepoints, not a secret. A
//! transaction spending the funding output with any number encoded — a buggy co-signer, leaked
//! funding keys, a restored node signing from stale state — passes the number check, and one in
//! 65,536 arbitrary one-input transactions even has the right prefixes. Acting on the number
//! alone would be worse than not acting: a "breach" would send justice transactions against
//! outputs that do not exist, a "remote close" would wait for HTLC outputs that never confirm and
//! fail HTLCs upstream that are in fact still claimable elsewhere. So every rule past the txid
//! identity also asks for an output that only that commitment carries: a script derived from the
//! revealed secret, or a `to_remote` paying a payment basepoint that appears only on one side's
//! commitments. A transaction whose number decodes but whose outputs match nothing is
//! [`Close::Unknown`].
//!
//! The function never panics: every lookup on the transaction is checked, key derivation failures
//! count as "no match", and the work is linear in the number of outputs.

use bitcoin::secp256k1::PublicKey;
use bitcoin::{ScriptBuf, Transaction};
use serde::{Deserialize, Serialize};

use crate::action::CloseKind;
use crate::bolt3::commitment::decode_commitment_number;
use crate::bolt3::keys::per_commitment_point;
use crate::bolt3::scripts::{
    anchor_script, to_local_script, to_remote_script_pubkey, PAY_TO_ANCHOR_SCRIPT,
};
use crate::bolt3::CommitmentKeys;
use crate::commitments::{ChannelInfo, CommitmentRecord, Commitments};
use crate::event::FundingOutput;

/// The funding output a transaction spends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FundingSpend {
    /// The index of the input that spends it.
    pub input_index: usize,
    /// Its index in [`ChannelInfo::funding`] (and in [`CommitmentRecord::txids`]).
    pub funding_index: usize,
    /// The funding output.
    pub funding: FundingOutput,
}

/// How a transaction relates to a channel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Classification {
    /// No input spends any of the channel's funding outputs.
    NotAFundingSpend,
    /// It spends a funding output: the channel is closing.
    FundingSpent {
        /// Which funding output, by which input.
        spend: FundingSpend,
        /// What kind of close it is.
        close: Close,
    },
}

impl Classification {
    /// The funding output spent, if any.
    pub fn spend(&self) -> Option<&FundingSpend> {
        match self {
            Classification::NotAFundingSpend => None,
            Classification::FundingSpent { spend, .. } => Some(spend),
        }
    }

    /// The kind of close, if the funding output was spent.
    pub fn close(&self) -> Option<&Close> {
        match self {
            Classification::NotAFundingSpend => None,
            Classification::FundingSpent { close, .. } => Some(close),
        }
    }

    /// The report vocabulary's kind of close, if the funding output was spent.
    pub fn close_kind(&self) -> Option<CloseKind> {
        self.close().map(CloseKind::from)
    }
}

/// The kind of close a funding spend is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Close {
    /// A mutual close: no commitment shape, every output pays a shutdown script.
    Cooperative,
    /// Our latest commitment (txid identity).
    LocalCurrent {
        /// Its number.
        number: u64,
    },
    /// A revoked commitment of ours. We never broadcast one (B05-REV-02): an alert, our keys may
    /// have leaked or an old backup was run.
    LocalRevoked {
        /// Its number.
        number: u64,
    },
    /// The peer's current commitment (txid identity).
    RemoteCurrent {
        /// Its number.
        number: u64,
    },
    /// The peer's pending commitment, signed by us, its predecessor not yet revoked (txid
    /// identity).
    RemotePending {
        /// Its number.
        number: u64,
    },
    /// A revoked commitment of the peer's, confirmed by its `to_local` or our `to_remote`: a
    /// breach to punish.
    RemoteRevoked {
        /// Its number.
        number: u64,
        /// The peer's revealed secret for it.
        #[serde(with = "crate::bolt3::hex_32")]
        per_commitment_secret: [u8; 32],
    },
    /// Probably a revoked commitment of the peer's: its number has a revealed secret, it has
    /// neither their `to_local` nor our `to_remote` (both balances dust) and only P2WSH outputs
    /// remain. The caller must confirm it against the HTLC scripts of the revoked log before
    /// treating it as a breach, and treat it as [`Close::Unknown`] if they do not match.
    RemoteRevokedUnconfirmed {
        /// Its number.
        number: u64,
        /// The peer's revealed secret for it.
        #[serde(with = "crate::bolt3::hex_32")]
        per_commitment_secret: [u8; 32],
    },
    /// A commitment of the peer's newer than any we know: we lost data. Only our `to_remote` can
    /// be swept (B05-RMT-07).
    RemoteFuture {
        /// Its number.
        number: u64,
    },
    /// A spend of the funding output nothing explains (B05-RMT-06: funds may be lost).
    Unknown {
        /// Why nothing matched.
        reason: UnknownReason,
    },
}

/// Why a funding spend could not be classified.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum UnknownReason {
    /// Not commitment-shaped, and we know no shutdown scripts to call it cooperative.
    NoShutdownScripts,
    /// Not commitment-shaped, and it has no outputs or an output pays neither shutdown script.
    NotOnlyShutdownScripts,
    /// Commitment-shaped with this number, but no txid or output matches a commitment that the
    /// number could be.
    UnmatchedCommitment {
        /// The decoded commitment number.
        number: u64,
    },
}

impl std::fmt::Display for UnknownReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UnknownReason::NoShutdownScripts => {
                f.write_str("not a commitment and no shutdown scripts are known")
            }
            UnknownReason::NotOnlyShutdownScripts => {
                f.write_str("not a commitment and does not pay only the shutdown scripts")
            }
            UnknownReason::UnmatchedCommitment { number } => write!(
                f,
                "commitment number {number} but no output matches a commitment it could be"
            ),
        }
    }
}

impl From<&Close> for CloseKind {
    /// [`Close::RemoteRevokedUnconfirmed`] maps to [`CloseKind::Breach`] tentatively: the caller
    /// reports it only once the revoked log confirmed it, and as [`CloseKind::Unknown`] otherwise.
    fn from(close: &Close) -> CloseKind {
        match *close {
            Close::Cooperative => CloseKind::Cooperative,
            Close::LocalCurrent { number } => CloseKind::Local {
                commitment_number: number,
            },
            Close::LocalRevoked { number } => CloseKind::OldLocal {
                commitment_number: number,
            },
            Close::RemoteCurrent { number } => CloseKind::Remote {
                commitment_number: number,
                pending: false,
            },
            Close::RemotePending { number } => CloseKind::Remote {
                commitment_number: number,
                pending: true,
            },
            Close::RemoteRevoked { number, .. }
            | Close::RemoteRevokedUnconfirmed { number, .. } => CloseKind::Breach {
                commitment_number: number,
            },
            Close::RemoteFuture { number } => CloseKind::FutureRemote {
                commitment_number: number,
            },
            Close::Unknown { .. } => CloseKind::Unknown,
        }
    }
}

impl From<Close> for CloseKind {
    fn from(close: Close) -> CloseKind {
        CloseKind::from(&close)
    }
}

/// The first input (by index) that spends one of the channel's funding outputs, with that output.
pub fn spends_funding(tx: &Transaction, info: &ChannelInfo) -> Option<(usize, FundingOutput)> {
    funding_spend(tx, info).map(|s| (s.input_index, s.funding))
}

fn funding_spend(tx: &Transaction, info: &ChannelInfo) -> Option<FundingSpend> {
    tx.input
        .iter()
        .enumerate()
        .find_map(|(input_index, input)| {
            let funding_index = info
                .funding
                .iter()
                .position(|f| f.outpoint == input.previous_output)?;
            let funding = *info.funding.get(funding_index)?;
            Some(FundingSpend {
                input_index,
                funding_index,
                funding,
            })
        })
}

/// Classify `tx` against the channel: which funding output it spends and what kind of close it is.
/// Pure and total: any transaction gets an answer. See the module documentation for the order of
/// the checks.
pub fn classify_close(
    tx: &Transaction,
    info: &ChannelInfo,
    commitments: &Commitments,
) -> Classification {
    let Some(spend) = funding_spend(tx, info) else {
        return Classification::NotAFundingSpend;
    };
    let close = classify_spend(tx, info, commitments, spend.funding_index);
    Classification::FundingSpent { spend, close }
}

fn classify_spend(
    tx: &Transaction,
    info: &ChannelInfo,
    commitments: &Commitments,
    funding_index: usize,
) -> Close {
    // 2. Txid identity.
    if let Some(close) = by_txid(tx, commitments, funding_index) {
        return close;
    }
    // 3. Shape: a closing transaction never carries both commitment prefixes.
    let Some(number) = decode_commitment_number(tx, info.obscuring_factor) else {
        return cooperative_or_unknown(tx, info);
    };
    let outputs = Outputs(tx);
    // 4. Revoked.
    let secret = commitments.remote_secrets.get_by_commitment_number(number);
    if let Some(per_commitment_secret) = secret {
        if pays_remote_to_local(&outputs, info, &per_commitment_secret)
            || outputs.pays(&our_to_remote(info))
        {
            // Only the peer's commitments pay our payment basepoint as `to_remote`, and we signed
            // exactly one of theirs with this number on each funding output, so the number names it.
            return Close::RemoteRevoked {
                number,
                per_commitment_secret,
            };
        }
    }
    if commitments
        .local_revoked_through
        .is_some_and(|through| number <= through)
        && outputs.pays(&their_to_remote(info))
    {
        // Only our commitments pay the peer's payment basepoint as `to_remote`.
        return Close::LocalRevoked { number };
    }
    if let Some(per_commitment_secret) = secret {
        if outputs.only_htlc_candidates(info, &per_commitment_secret) {
            return Close::RemoteRevokedUnconfirmed {
                number,
                per_commitment_secret,
            };
        }
    }
    // 5. Future.
    if is_future(number, commitments) && is_future_commitment(&outputs, info, commitments, number) {
        return Close::RemoteFuture { number };
    }
    // 6. Unknown: the number decoded, but nothing the number could be is confirmed by an output.
    Close::Unknown {
        reason: UnknownReason::UnmatchedCommitment { number },
    }
}

fn by_txid(tx: &Transaction, commitments: &Commitments, funding_index: usize) -> Option<Close> {
    let txid = tx.compute_txid();
    let is = |record: &CommitmentRecord| record.txids.get(funding_index) == Some(&txid);
    if let Some(local) = commitments.local.as_ref().filter(|l| is(&l.commitment)) {
        return Some(Close::LocalCurrent {
            number: local.commitment.number,
        });
    }
    if let Some(current) = commitments.remote_current.as_ref().filter(|c| is(c)) {
        return Some(Close::RemoteCurrent {
            number: current.number,
        });
    }
    if let Some(pending) = commitments.remote_pending.as_ref().filter(|p| is(p)) {
        return Some(Close::RemotePending {
            number: pending.number,
        });
    }
    None
}

fn cooperative_or_unknown(tx: &Transaction, info: &ChannelInfo) -> Close {
    let Some(shutdown) = info.shutdown.as_ref() else {
        return Close::Unknown {
            reason: UnknownReason::NoShutdownScripts,
        };
    };
    let only_shutdown = !tx.output.is_empty()
        && tx
            .output
            .iter()
            .all(|o| o.script_pubkey == shutdown.local || o.script_pubkey == shutdown.remote);
    if only_shutdown {
        Close::Cooperative
    } else {
        Close::Unknown {
            reason: UnknownReason::NotOnlyShutdownScripts,
        }
    }
}

/// Whether `number` is above every remote commitment we know.
fn is_future(number: u64, commitments: &Commitments) -> bool {
    [
        commitments.remote_current.as_ref(),
        commitments.remote_pending.as_ref(),
    ]
    .into_iter()
    .flatten()
    .all(|c| number > c.number)
}

/// A future commitment must pay our `to_remote` (static key: sweepable even after data loss), or,
/// once data loss was detected, be the peer's current commitment they told us about and pay the
/// `to_local` derived from the point they sent with it.
fn is_future_commitment(
    outputs: &Outputs<'_>,
    info: &ChannelInfo,
    commitments: &Commitments,
    number: u64,
) -> bool {
    if outputs.pays(&our_to_remote(info)) {
        return true;
    }
    let Some(loss) = commitments.data_loss.as_ref() else {
        return false;
    };
    // `next_commitment_number` is the next one the peer expects to receive: it holds the one before.
    let current = loss.remote_next_commitment_number.checked_sub(1);
    match loss.remote_per_commitment_point {
        Some(point) if current == Some(number) => {
            remote_to_local(info, &point).is_some_and(|script| outputs.pays(&script))
        }
        _ => false,
    }
}

fn pays_remote_to_local(outputs: &Outputs<'_>, info: &ChannelInfo, secret: &[u8; 32]) -> bool {
    per_commitment_point(secret)
        .ok()
        .and_then(|point| remote_to_local(info, &point))
        .is_some_and(|script| outputs.pays(&script))
}

/// The peer's `to_local` scriptPubKey on their commitment with `point`: revocable by us, delayed
/// by `remote_to_self_delay`. `None` if the keys cannot be derived.
fn remote_to_local(info: &ChannelInfo, point: &PublicKey) -> Option<ScriptBuf> {
    let keys =
        CommitmentKeys::derive(point, &info.remote_basepoints, &info.local_basepoints).ok()?;
    if info.channel_type.is_taproot() {
        return Some(taproot::remote_to_local(&keys, info));
    }
    Some(
        to_local_script(
            &keys.revocation_pubkey,
            info.remote_to_self_delay,
            &keys.local_delayed_pubkey,
        )
        .to_p2wsh(),
    )
}

/// Our `to_remote` on the peer's commitments (static key: our payment basepoint).
fn our_to_remote(info: &ChannelInfo) -> ScriptBuf {
    to_remote_script_pubkey(info.channel_type, &info.local_basepoints.payment_basepoint)
}

/// The peer's `to_remote` on our commitments (their payment basepoint).
fn their_to_remote(info: &ChannelInfo) -> ScriptBuf {
    to_remote_script_pubkey(info.channel_type, &info.remote_basepoints.payment_basepoint)
}

/// The outputs of the transaction being classified.
struct Outputs<'a>(&'a Transaction);

impl Outputs<'_> {
    fn pays(&self, script: &ScriptBuf) -> bool {
        self.0.output.iter().any(|o| o.script_pubkey == *script)
    }

    /// Every output is P2WSH (an HTLC or an anchor) and at least one is not an anchor: what a
    /// commitment whose balances are both dust looks like. A zero-fee commitment's shared
    /// pay-to-anchor output is left aside. Simple taproot: P2TR, the anchors keyed from the
    /// revealed `secret` ([`taproot::only_htlc_candidates`]).
    fn only_htlc_candidates(&self, info: &ChannelInfo, secret: &[u8; 32]) -> bool {
        if info.channel_type.is_taproot() {
            return taproot::only_htlc_candidates(self.0, info, secret);
        }
        let anchors = if info.channel_type.has_anchors() {
            vec![
                anchor_script(&info.local_basepoints.funding_pubkey).to_p2wsh(),
                anchor_script(&info.remote_basepoints.funding_pubkey).to_p2wsh(),
            ]
        } else {
            Vec::new()
        };
        let shared = info.channel_type.has_shared_anchor();
        let outputs: Vec<_> = self
            .0
            .output
            .iter()
            .filter(|o| !(shared && o.script_pubkey.as_bytes() == PAY_TO_ANCHOR_SCRIPT))
            .collect();
        outputs.iter().all(|o| o.script_pubkey.is_p2wsh())
            && outputs.iter().any(|o| !anchors.contains(&o.script_pubkey))
    }
}

pub mod taproot;
mod taproot_error;
mod taproot_outputs;

#[cfg(test)]
mod tests;
