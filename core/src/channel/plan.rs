//! Planning a close's resolvers: one per output of the confirmed close that matters to us, found
//! from the commitment it confirmed (rebuilt with `bolt3`), by script when we do not know it (the
//! peer's future commitment), or every output but ours on a revoked one (justice).

use super::claims::Confirmed;
use super::config::UNFORWARDED_TIMEOUT_SLACK;
use super::ChannelArbitrator;
use crate::bolt3::commitment::OutputKind;
use crate::bolt3::scripts;
use crate::close::Close;
use crate::commitments::CommitmentRecord;
use crate::node::NodeState;
use crate::resolver::{Resolver, ResolverKind};
use crate::types::{Height, HtlcDirection, Party};
use bitcoin::{OutPoint, Transaction, Txid};

impl ChannelArbitrator {
    /// The resolvers for a close, and the commitment record it confirmed (when we know it).
    pub(super) fn plan_resolvers(
        &self,
        close: &Close,
        tx: &Transaction,
        txid: Txid,
        height: Height,
        node: &NodeState,
    ) -> (Vec<Resolver>, Option<&CommitmentRecord>) {
        let (resolvers, record, _) = self.plan_resolvers_rebuilt(close, tx, txid, height, node);
        (resolvers, record)
    }

    /// [`Self::plan_resolvers`], with the commitment it rebuilt to find the outputs (and the
    /// funding output that build spends), so the close need not rebuild it again.
    pub(super) fn plan_resolvers_rebuilt(
        &self,
        close: &Close,
        tx: &Transaction,
        txid: Txid,
        height: Height,
        node: &NodeState,
    ) -> Planned<'_> {
        let info = &self.data.info;
        let c = &self.data.commitments;
        let (holder, record) = match close {
            Close::LocalCurrent { .. } => (Party::Local, c.local.as_ref().map(|l| &l.commitment)),
            Close::RemoteCurrent { .. } => (Party::Remote, c.remote_current.as_ref()),
            Close::RemotePending { .. } => (Party::Remote, c.remote_pending.as_ref()),
            Close::RemoteRevoked { number, .. }
            | Close::RemoteRevokedUnconfirmed { number, .. } => {
                return (self.breach_resolvers(tx, txid, height, *number), None, None);
            }
            Close::RemoteFuture { .. } => {
                return (self.own_outputs_by_script(tx, txid, height), None, None)
            }
            Close::Cooperative | Close::LocalRevoked { .. } | Close::Unknown { .. } => {
                return (Vec::new(), None, None)
            }
        };
        let Some(record) = record else {
            return (Vec::new(), None, None);
        };
        let funding = self.close_funding(tx);
        let Some((funding, Ok((spec, built)))) =
            funding.map(|f| (f, info.build(holder, record, &f)))
        else {
            return (Vec::new(), Some(record), None);
        };
        let find = |offered: bool, id: u64| {
            record
                .htlcs
                .iter()
                .find(|h| h.htlc_id == id && h.as_commitment_htlc(holder).offered == offered)
        };
        let mut out = Vec::new();
        for o in &built.outputs {
            let outpoint = OutPoint {
                txid,
                vout: o.index,
            };
            let kind = match (holder, o.kind) {
                (Party::Local, OutputKind::ToLocal) => ResolverKind::CommitSweep {
                    mature_at: height.saturating_add(u32::from(info.local_to_self_delay)),
                },
                (Party::Remote, OutputKind::ToRemote) => ResolverKind::CommitSweep {
                    mature_at: height.saturating_add(1),
                },
                (Party::Local, OutputKind::LocalAnchor)
                | (Party::Remote, OutputKind::RemoteAnchor)
                | (_, OutputKind::SharedAnchor) => ResolverKind::Anchor,
                (_, OutputKind::OfferedHtlc { htlc_id })
                | (_, OutputKind::ReceivedHtlc { htlc_id }) => {
                    let offered = matches!(o.kind, OutputKind::OfferedHtlc { .. });
                    let Some(h) = find(offered, htlc_id) else {
                        continue;
                    };
                    let htlc = self.htlc_key(h);
                    match h.direction {
                        HtlcDirection::Outgoing => ResolverKind::OutgoingHtlc {
                            htlc,
                            payment_hash: h.payment_hash,
                            cltv_expiry: h.cltv_expiry,
                            deadline: node.circuits.get(&htlc).map_or(
                                h.cltv_expiry.saturating_add(UNFORWARDED_TIMEOUT_SLACK),
                                |leg| leg.cltv_expiry,
                            ),
                        },
                        HtlcDirection::Incoming => ResolverKind::IncomingHtlc {
                            htlc,
                            payment_hash: h.payment_hash,
                            cltv_expiry: h.cltv_expiry,
                        },
                    }
                }
                _ => continue, // the peer's balance or anchor
            };
            out.push(Resolver::new(outpoint, o.value_sat, kind));
        }
        (out, Some(record), Some((funding, (holder, spec, built))))
    }

    pub(super) fn close_funding(&self, tx: &Transaction) -> Option<crate::event::FundingOutput> {
        tx.input
            .iter()
            .find_map(|i| self.data.info.funding_output(&i.previous_output).copied())
    }

    /// Our `to_remote` and our anchor (keyed, or the shared pay-to-anchor output), found by
    /// script (what we can claim without the commitment's details).
    pub(super) fn own_outputs_by_script(
        &self,
        tx: &Transaction,
        txid: Txid,
        height: Height,
    ) -> Vec<Resolver> {
        let info = &self.data.info;
        let to_remote = scripts::to_remote_script_pubkey(
            info.channel_type,
            &info.local_basepoints.payment_basepoint,
        );
        let anchor = scripts::anchor_script(&info.local_basepoints.funding_pubkey).to_p2wsh();
        tx.output
            .iter()
            .zip(0u32..)
            .filter_map(|(o, vout)| {
                let kind = if o.script_pubkey == to_remote {
                    ResolverKind::CommitSweep {
                        mature_at: height.saturating_add(1),
                    }
                } else if (info.channel_type.has_anchors() && o.script_pubkey == anchor)
                    || (info.channel_type.has_shared_anchor()
                        && o.script_pubkey.as_bytes() == scripts::PAY_TO_ANCHOR_SCRIPT)
                {
                    ResolverKind::Anchor
                } else {
                    return None;
                };
                Some(Resolver::new(
                    OutPoint { txid, vout },
                    o.value.to_sat(),
                    kind,
                ))
            })
            .collect()
    }

    /// On a revoked commitment every output but our `to_remote` and the anchors is ours by
    /// revocation: the peer's `to_local` and every HTLC.
    pub(super) fn breach_resolvers(
        &self,
        tx: &Transaction,
        txid: Txid,
        height: Height,
        number: u64,
    ) -> Vec<Resolver> {
        let info = &self.data.info;
        let mut out = self.own_outputs_by_script(tx, txid, height);
        let their_anchor =
            scripts::anchor_script(&info.remote_basepoints.funding_pubkey).to_p2wsh();
        for (o, vout) in tx.output.iter().zip(0u32..) {
            let outpoint = OutPoint { txid, vout };
            if out.iter().any(|r| r.outpoint == outpoint)
                || (info.channel_type.has_anchors() && o.script_pubkey == their_anchor)
            {
                continue;
            }
            out.push(Resolver::new(
                outpoint,
                o.value.to_sat(),
                ResolverKind::Breach {
                    commitment_number: number,
                },
            ));
        }
        out
    }
}

/// Planned resolvers, the commitment record they come from, and the commitment rebuilt to find
/// them with the funding output it spends.
pub(super) type Planned<'a> = (
    Vec<Resolver>,
    Option<&'a CommitmentRecord>,
    Option<(crate::event::FundingOutput, Confirmed)>,
);

pub(super) fn describe(kind: &ResolverKind) -> String {
    match kind {
        ResolverKind::CommitSweep { mature_at } => {
            format!("our balance, timelocked until {mature_at}")
        }
        ResolverKind::OutgoingHtlc {
            htlc,
            cltv_expiry,
            deadline,
            ..
        } => {
            format!(
                "outgoing htlc {} contested until {cltv_expiry}, must resolve by {deadline}",
                htlc.htlc_id
            )
        }
        ResolverKind::IncomingHtlc {
            htlc, cltv_expiry, ..
        } => {
            format!(
                "incoming htlc {} claimable with its preimage until {cltv_expiry}",
                htlc.htlc_id
            )
        }
        ResolverKind::Anchor => "our anchor".to_string(),
        ResolverKind::Breach { commitment_number } => {
            format!("revoked commitment {commitment_number} output, ours by revocation")
        }
    }
}
