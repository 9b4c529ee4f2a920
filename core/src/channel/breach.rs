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

use bitcoin::{OutPoint, ScriptBuf, Transaction, TxOut};

use crate::action::{
    Action, AlertKind, Basepoint, CloseKind, KeyTweak, Record, SigningKey, SweepRequest,
};
use crate::bolt3::commitment::{BuiltCommitment, CommitmentSpec, OutputKind};
use crate::bolt3::keys::per_commitment_point;
use crate::bolt3::scripts;
use crate::bolt3::witness::ClaimPath;
use crate::bolt3::CommitmentKeys;
use crate::commitments::CommitmentRecord;
use crate::resolver::{Resolver, ResolverKind, Stage};
use crate::types::{Height, Party};

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
        let decoded = record
            .and_then(|r| <CommitmentRecord as serde::Deserialize>::deserialize(&r.body).ok());
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
    fn breach_secret(&self) -> Option<[u8; 32]> {
        self.data
            .commitments
            .remote_secrets
            .get_by_commitment_number(self.breach_number()?)
    }

    /// The script every revocable `to_local`-style output of the revoked commitment pays — their
    /// `to_local`, and each of their second-level transactions' outputs — and its revocation
    /// key. Derived from the revealed secret alone: no HTLC data needed.
    fn revoked_to_local(&self) -> Option<(ScriptBuf, bitcoin::secp256k1::PublicKey)> {
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

    /// The peer's second-level transaction spent an HTLC output of the revoked commitment: its
    /// output at the same index (HTLC input i pays output i, even batched under anchors) is ours
    /// by revocation until its CSV delay runs out.
    pub(crate) fn breach_hand_off(
        &self,
        spent: OutPoint,
        tx: &Transaction,
        height: Height,
    ) -> Option<Resolver> {
        let r = self.resolvers.get(&spent)?;
        let ResolverKind::Breach { commitment_number } = r.kind else {
            return None;
        };
        if spent.txid != self.close.as_ref()?.txid {
            return None; // already a second-level output: its spend ends it
        }
        let (to_local, _) = self.revoked_to_local()?;
        let index = tx.input.iter().position(|i| i.previous_output == spent)?;
        let output = tx.output.get(index)?;
        if output.script_pubkey != to_local.to_p2wsh() {
            return None;
        }
        let mut next = Resolver::new(
            OutPoint {
                txid: tx.compute_txid(),
                vout: u32::try_from(index).ok()?,
            },
            output.value.to_sat(),
            ResolverKind::Breach { commitment_number },
        );
        next.created_at = Some(height);
        Some(next)
    }

    /// The justice claims: every active breach resolver by its revocation path. `to_local`-style
    /// outputs need only the revealed secret; HTLC outputs need the revoked log's entry.
    pub(crate) fn breach_requests(&self) -> Vec<SweepRequest> {
        let (Some(close), Some(secret), Some((to_local, revocation_pubkey))) =
            (&self.close, self.breach_secret(), self.revoked_to_local())
        else {
            return Vec::new();
        };
        let rebuilt = self.revoked_commitment();
        let channel = self.data.info.id;
        let key = SigningKey::Channel {
            channel,
            basepoint: Basepoint::Revocation,
            tweak: KeyTweak::Revocation {
                per_commitment_secret: secret,
            },
        };
        let to_self_delay = self.data.info.remote_to_self_delay;
        let revocable = ClaimPath::ToLocalRevocation { to_self_delay };
        let mut out = Vec::new();
        for r in self.resolvers.values() {
            if !matches!(r.kind, ResolverKind::Breach { .. }) || !matches!(r.stage, Stage::Active) {
                continue;
            }
            let on_commitment = r.outpoint.txid == close.txid;
            let txout = if on_commitment {
                close.tx.output.get(r.outpoint.vout as usize).cloned()
            } else {
                Some(TxOut {
                    value: bitcoin::Amount::from_sat(r.value_sat),
                    script_pubkey: to_local.to_p2wsh(),
                })
            };
            let Some(txout) = txout else {
                continue;
            };
            let (path, script) = if txout.script_pubkey == to_local.to_p2wsh() {
                (revocable, to_local.clone())
            } else {
                let Some((spec, built)) = &rebuilt else {
                    continue; // an HTLC output: waiting for the revoked log
                };
                match htlc_revocation(self.revoked.as_ref(), spec, built, r.outpoint.vout) {
                    Some(x) => x,
                    None => continue,
                }
            };
            let witness_pubkey = matches!(
                path,
                ClaimPath::OfferedHtlcRevocation { .. } | ClaimPath::ReceivedHtlcRevocation { .. }
            )
            .then_some(revocation_pubkey);
            let since = if on_commitment {
                close.height
            } else {
                r.created_at.unwrap_or(close.height)
            };
            let mature_at = since.saturating_add(1);
            out.push(SweepRequest {
                channel,
                outpoint: r.outpoint,
                txout,
                path,
                script,
                key: key.clone(),
                preimage: None,
                witness_pubkey,
                // The peer's delay is our deadline: its own spend (nSequence = its delay) is
                // final from block `since + to_self_delay` (BIP 68), so ours must confirm by the
                // block before. The whole output is worth spending on it.
                deadline: since
                    .saturating_add(u32::from(to_self_delay))
                    .saturating_sub(1)
                    .max(mature_at),
                budget_sat: r.value_sat,
                contestable: true,
                exclusive_group: None,
                mature_at,
            });
        }
        out
    }
}

/// The revocation path and witness script of HTLC output `vout` of the rebuilt revoked
/// commitment.
fn htlc_revocation(
    record: Option<&CommitmentRecord>,
    spec: &CommitmentSpec,
    built: &BuiltCommitment,
    vout: u32,
) -> Option<(ClaimPath, ScriptBuf)> {
    let o = built.outputs.iter().find(|o| o.index == vout)?;
    let script = o.witness_script.clone()?;
    let path = match o.kind {
        OutputKind::OfferedHtlc { .. } => ClaimPath::OfferedHtlcRevocation {
            channel_type: spec.channel_type,
        },
        OutputKind::ReceivedHtlc { htlc_id } => {
            let cltv_expiry = record?
                .htlcs
                .iter()
                .find(|h| h.htlc_id == htlc_id && !h.as_commitment_htlc(Party::Remote).offered)?
                .cltv_expiry;
            ClaimPath::ReceivedHtlcRevocation {
                channel_type: spec.channel_type,
                cltv_expiry,
            }
        }
        _ => return None,
    };
    Some((path, script))
}
