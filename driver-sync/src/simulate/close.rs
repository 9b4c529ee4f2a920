//! The scenario's moves at a height: preimages the node learns, and the close itself (ours, the
//! peer's commitment of whichever kind, or a cooperative close).

use bitcoin::Transaction;
use contractcourt_core::event::{Event, ForceCloseReason, PreimageSource};
use contractcourt_core::types::{ChannelId, Height, HtlcDirection, HtlcKey, Party};

use super::io::lock;
use super::scenario::{CloseKind, Closer, PreimageFrom};
use super::setup::shutdown_scripts;
use super::{err, Sim, SimError};

/// The virtual size a cooperative close is priced at (one 2-of-2 input, two outputs).
const COOP_CLOSE_VBYTES: u64 = 225;

impl Sim<'_> {
    /// Feed the preimages the scenario has the node learn at relative height `rel` (a repeat
    /// after a restart is harmless: the engine never forgets a preimage and ignores a known one).
    pub(super) fn learn_preimages_at(&mut self, l: usize, rel: u32) -> Result<(), SimError> {
        let tip = self.tip();
        for (htlc, i) in self.lanes[l].htlcs.clone() {
            let Some(learn) = self.lanes[l].spec.htlcs[i].learns_preimage else {
                continue;
            };
            if learn.at_height != rel {
                continue;
            }
            let (source, what) = match learn.from {
                PreimageFrom::Invoice => (
                    PreimageSource::Invoice { htlc: htlc.key },
                    "our invoice's preimage",
                ),
                // The HTLC this one was forwarded to, on a channel the engine does not watch.
                PreimageFrom::Downstream => (
                    PreimageSource::Downstream {
                        htlc: HtlcKey {
                            channel: ChannelId([0xdd; 32]),
                            htlc_id: htlc.key.htlc_id,
                            direction: HtlcDirection::Outgoing,
                        },
                    },
                    "the preimage from downstream",
                ),
            };
            lock(&self.log).push(
                tip,
                format!(
                    "{}node learns {what} of incoming htlc {}",
                    self.lanes[l].tag, htlc.key.htlc_id
                ),
                None,
                None,
                None,
            );
            self.feed(Event::PreimageLearned {
                preimage: htlc.preimage,
                source,
            })?;
        }
        Ok(())
    }

    /// The scenario's close, at the tip.
    pub(super) fn close_now(&mut self, l: usize, tip: Height) -> Result<(), SimError> {
        let close = self.lanes[l].spec.close;
        let tag = self.lanes[l].tag.clone();
        match (close.by, close.kind) {
            (_, CloseKind::Cooperative) => {
                let tx = self.cooperative_close_tx(l)?;
                let who = match close.by {
                    Closer::Us => "we",
                    Closer::Peer => "the peer",
                };
                self.peer_submit(
                    tip,
                    format!("{tag}cooperative close (both signed; {who} broadcast it)"),
                    tx,
                );
            }
            (Closer::Us, _) => {
                lock(&self.log).push(tip, format!("{tag}we force close"), None, None, None);
                self.feed(Event::ForceCloseRequested {
                    channel: self.lanes[l].sim.channel_id,
                    reason: ForceCloseReason::User,
                })?;
            }
            (Closer::Peer, kind) => {
                if kind == CloseKind::DataLoss {
                    self.detect_data_loss(l, tip)?;
                }
                let (number, what) = self.peer_closing_commitment(l, kind)?;
                let tx = self.lanes[l]
                    .sim
                    .commitment_tx(Party::Remote, number)
                    .map_err(err("the peer's commitment"))?;
                self.peer_submit(tip, format!("{tag}peer broadcasts {what}"), tx);
            }
        }
        Ok(())
    }

    /// `channel_reestablish` shows the peer is ahead of us: the engine is told so.
    fn detect_data_loss(&mut self, l: usize, tip: Height) -> Result<(), SimError> {
        let current = self.lanes[l].sim.remote_commitment_number();
        let event = self.lanes[l]
            .sim
            .data_loss_detected()
            .map_err(err("the peer's channel_reestablish"))?;
        lock(&self.log).push(
            tip,
            format!(
                "{}channel_reestablish: the peer is at commitment {current}, newer than our state (DATA LOSS)",
                self.lanes[l].tag
            ),
            None,
            None,
            None,
        );
        self.feed(event)
    }

    /// The number of the peer's commitment a close of `kind` broadcasts, and its description.
    fn peer_closing_commitment(
        &self,
        l: usize,
        kind: CloseKind,
    ) -> Result<(u64, &'static str), SimError> {
        let current = self.lanes[l].sim.remote_commitment_number();
        Ok(match kind {
            CloseKind::Current | CloseKind::Cooperative => (current, "its current commitment"),
            CloseKind::DataLoss => (
                current,
                "its current commitment (one we lost: our state is older)",
            ),
            CloseKind::Revoked | CloseKind::RevokedWithHtlcs => {
                let Some(number) = revoked_number(kind, current) else {
                    return Err(SimError(
                        "close.kind revoked: the peer has no revoked commitment \
                         (add an htlc so the channel has an update)"
                            .into(),
                    ));
                };
                (number, "a REVOKED commitment (a breach)")
            }
            CloseKind::Pending => match self.lanes[l].sim.remote_pending_number() {
                Some(n) => (
                    n,
                    "its PENDING commitment (signed by us, not yet revoked its last)",
                ),
                None => return Err(SimError("close.kind pending: no pending commitment".into())),
            },
        })
    }

    /// The cooperative close of the scenario: both balances to the shutdown scripts, the fee
    /// (we funded, we pay it) at the fee rate in force at the close height.
    pub(super) fn cooperative_close_tx(&self, l: usize) -> Result<Transaction, SimError> {
        let spec = &self.lanes[l].spec;
        let (local, remote) = shutdown_scripts(spec);
        let at = spec.close.at_height.unwrap_or(0);
        let rate = u64::from(
            self.scenario
                .fee_rate_at(at)
                .unwrap_or(super::DEFAULT_SAT_PER_VB),
        );
        self.lanes[l]
            .sim
            .cooperative_close_tx(local, remote, rate * COOP_CLOSE_VBYTES)
            .map_err(err("the cooperative close"))
    }
}

/// The peer's revoked commitment a breach of `kind` broadcasts: its oldest (`revoked`), or the
/// one before its current, which carries the HTLCs (`revoked_with_htlcs`). None if the peer
/// has no revoked commitment.
pub(super) fn revoked_number(kind: CloseKind, current: u64) -> Option<u64> {
    match kind {
        CloseKind::Revoked => (current > 0).then_some(0),
        CloseKind::RevokedWithHtlcs => current.checked_sub(1),
        _ => None,
    }
}
