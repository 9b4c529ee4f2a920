//! Breach: the peer's revoked commitment confirmed (BOLT 5 B05-REV, PEN). Everything on it is
//! ours by revocation: their `to_local`, every HTLC output, and the output of any second-level
//! transaction the peer gets confirmed first (its `to_local`-style script, revocable until its
//! CSV delay runs out). Our `to_remote` is an ordinary commitment sweep.
//!
//! The revoked commitment's HTLC data lives in the append-only revoked log, read only now
//! ([`Action::ReadRevokedLog`]): the commitment is rebuilt from it with BOLT 3 and checked against
//! the confirmed transaction (which also confirms a close classified as *probably* revoked). Each
//! output is then claimed through the sweeper by its revocation path, with the whole output as
//! its budget and, as its deadline, the block before the peer's own spend becomes final (`to_self_delay`
//! blocks after confirmation, BIP 68). The requests are
//! contestable, so the sweeper puts them in one justice transaction (its budget the whole
//! penalty, spent as the earliest deadline nears) and splits it, one transaction per input, if
//! it stays unconfirmed for `SweeperPolicy::split_after_blocks`, so a pinned input cannot hold
//! back the others; an input the peer spends first is dropped and the rest re-planned.

use bitcoin::ScriptBuf;

use crate::action::{Action, AlertKind, CloseKind, Record};
use crate::bolt3::commitment::{BuiltCommitment, CommitmentSpec};
use crate::bolt3::keys::per_commitment_point;
use crate::bolt3::scripts;
use crate::bolt3::CommitmentKeys;
use crate::commitments::CommitmentRecord;
use crate::types::Party;

use super::ChannelArbitrator;

impl ChannelArbitrator {
    /// The revoked commitment's number, while a breach is being resolved.
    fn breach_number(&self) -> Option<u64> {
        match self.close.as_ref()?.kind {
            CloseKind::Breach { commitment_number } => Some(commitment_number),
            _ => None,
        }
    }

    /// The request to read the revoked commitment's log entry, while it is needed and missing.
    pub(crate) fn revoked_log_request(&self) -> Option<Action> {
        let number = self.breach_number()?;
        if self.revoked.is_some() {
            return None;
        }
        Some(Action::ReadRevokedLog {
            channel: self.data.info.id,
            commitment_number: number,
        })
    }

    /// The revoked commitment rebuilt from its log entry: its spec and transaction.
    pub(crate) fn revoked_commitment(&self) -> Option<(CommitmentSpec, BuiltCommitment)> {
        let close = self.close.as_ref()?;
        let record = self.revoked.as_ref()?;
        let (spec, built) = self
            .data
            .info
            .build(Party::Remote, record, &close.funding)
            .ok()?;
        (built.tx.compute_txid() == close.txid).then_some((spec, built))
    }

    /// The store answered a revoked-log read: keep the entry if it rebuilds the confirmed
    /// commitment, otherwise say so (and keep claiming what is ours by script).
    pub fn on_revoked_log_read(
        &mut self,
        commitment_number: u64,
        record: Option<&Record>,
    ) -> Vec<Action> {
        if self.breach_number() != Some(commitment_number) || self.revoked.is_some() {
            return Vec::new();
        }
        let decoded = record.and_then(|r| r.body.decode::<CommitmentRecord>().ok());
        let Some(decoded) = decoded.filter(|c| c.number == commitment_number) else {
            return vec![self.alert(
                AlertKind::ChannelFailure,
                format!(
                    "breach: revoked commitment {commitment_number} is missing from the revoked log; \
                     only outputs recognisable by script can be claimed"
                ),
            )];
        };
        self.revoked = Some(decoded);
        if self.revoked_commitment().is_none() {
            self.revoked = None;
            return vec![self.alert(
                AlertKind::ChannelFailure,
                format!(
                    "breach: the revoked log's commitment {commitment_number} does not rebuild the \
                     confirmed transaction; not claiming its HTLC outputs"
                ),
            )];
        }
        Vec::new()
    }

    /// The peer's revealed secret for the revoked commitment that confirmed.
    pub(super) fn breach_secret(&self) -> Option<[u8; 32]> {
        self.data
            .commitments
            .remote_secrets
            .get_by_commitment_number(self.breach_number()?)
    }

    /// The script every revocable `to_local`-style output of the revoked commitment pays — their
    /// `to_local`, and each of their second-level transactions' outputs — and its revocation
    /// key. Derived from the revealed secret alone: no HTLC data needed.
    pub(super) fn revoked_to_local(&self) -> Option<(ScriptBuf, bitcoin::secp256k1::PublicKey)> {
        let info = &self.data.info;
        let point = per_commitment_point(&self.breach_secret()?).ok()?;
        let keys =
            CommitmentKeys::derive(&point, &info.remote_basepoints, &info.local_basepoints).ok()?;
        Some((
            scripts::to_local_script(
                &keys.revocation_pubkey,
                info.remote_to_self_delay,
                &keys.local_delayed_pubkey,
            ),
            keys.revocation_pubkey,
        ))
    }
}
