//! The end of a simulation: its outcome (with the reports of a resumed run read back from the
//! store's flight recorder), and the names the timeline gives outputs.

use bitcoin::OutPoint;
use contractcourt_core::action::{Action, CloseSummary, Report};
use contractcourt_core::bolt3::commitment::OutputKind;
use contractcourt_core::types::Party;

use super::close::revoked_number;
use super::io::{close_line, lock};
use super::scenario::CloseKind;
use super::{err, Closing, Sim, SimError, SimOutcome};
use crate::driver::replay_flight_recorder;

impl Sim<'_> {
    /// Name every output of every commitment that may close the channel, in our terms.
    pub(super) fn name_outputs(&mut self, l: usize) -> Result<(), SimError> {
        let tag = self.lanes[l].tag.clone();
        let current = self.lanes[l].sim.remote_commitment_number();
        let mut commitments = vec![
            (
                Party::Local,
                self.lanes[l].sim.local_commitment_number(),
                false,
            ),
            (Party::Remote, current, false),
        ];
        if let Some(n) = self.lanes[l].sim.remote_pending_number() {
            commitments.push((Party::Remote, n, false));
        }
        for kind in [CloseKind::Revoked, CloseKind::RevokedWithHtlcs] {
            if let Some(n) = revoked_number(kind, current) {
                if !commitments.contains(&(Party::Remote, n, true)) {
                    commitments.push((Party::Remote, n, true));
                }
            }
        }
        if self.lanes[l].spec.close.kind == CloseKind::Cooperative {
            let txid = self.cooperative_close_tx(l)?.compute_txid();
            lock(&self.log)
                .labels
                .insert(txid, format!("{tag}cooperative close"));
            self.lanes[l].candidates.push((
                txid,
                Closing {
                    holder: Party::Local,
                    number: 0,
                    revoked: false,
                    cooperative: true,
                },
            ));
        }
        let pending = self.lanes[l].sim.remote_pending_number();
        let mut log = lock(&self.log);
        if let Some(f) = self.lanes[l].sim.setup().funding_outpoint {
            log.names.insert(f, format!("{tag}funding output"));
        }
        for (holder, number, revoked) in commitments {
            let built = self.lanes[l]
                .sim
                .built_commitment(holder, number)
                .map_err(err("building a commitment"))?;
            let txid = built.tx.compute_txid();
            let whose = match (holder, revoked) {
                (Party::Local, _) => "our commitment",
                (Party::Remote, false) if pending == Some(number) => "peer's pending commitment",
                (Party::Remote, false) => "peer's commitment",
                (Party::Remote, true) => "peer's REVOKED commitment",
            };
            log.labels.insert(txid, format!("{tag}{whose}"));
            self.lanes[l].candidates.push((
                txid,
                Closing {
                    holder,
                    number,
                    revoked,
                    cooperative: false,
                },
            ));
            for o in &built.outputs {
                // In our terms: the holder's offered HTLC is ours outgoing if we hold it.
                let name = match (&o.kind, holder) {
                    (OutputKind::ToLocal, Party::Local) => "our to_local".to_string(),
                    (OutputKind::ToLocal, Party::Remote) => "peer's to_local".to_string(),
                    (OutputKind::ToRemote, Party::Local) => "peer's to_remote".to_string(),
                    (OutputKind::ToRemote, Party::Remote) => "our to_remote".to_string(),
                    (OutputKind::LocalAnchor, Party::Local)
                    | (OutputKind::RemoteAnchor, Party::Remote) => "our anchor".to_string(),
                    (OutputKind::LocalAnchor, Party::Remote)
                    | (OutputKind::RemoteAnchor, Party::Local) => "peer's anchor".to_string(),
                    (OutputKind::SharedAnchor, _) => "shared anchor".to_string(),
                    (OutputKind::OfferedHtlc { htlc_id }, Party::Local)
                    | (OutputKind::ReceivedHtlc { htlc_id }, Party::Remote) => {
                        format!("outgoing htlc {htlc_id}")
                    }
                    (OutputKind::OfferedHtlc { htlc_id }, Party::Remote)
                    | (OutputKind::ReceivedHtlc { htlc_id }, Party::Local) => {
                        format!("incoming htlc {htlc_id}")
                    }
                };
                log.names.insert(
                    OutPoint {
                        txid,
                        vout: o.index,
                    },
                    format!("{tag}{name}"),
                );
            }
        }
        Ok(())
    }

    pub(super) fn finish(mut self) -> Result<SimOutcome, SimError> {
        let ledger = self.driver.engine().ledger();
        let resumed = self.persist.as_ref().is_some_and(|p| p.restarts > 0);
        let reports = if resumed {
            // The log of a resumed run may have lost a report made between its last save and
            // the interruption; the flight recorder has every event the engine was fed.
            let reports = self.recorded_reports()?;
            let mut log = lock(&self.log);
            for s in close_summaries(&reports) {
                if !log.reports.contains(&Report::CloseSummary(s.clone())) {
                    log.push(
                        s.height,
                        close_line(&s),
                        Some(s.closing_txid),
                        None,
                        Some(s.our_balance_sat),
                    );
                }
            }
            reports
        } else {
            lock(&self.log).reports.clone()
        };
        let mut close_summaries = close_summaries(&reports);
        close_summaries.dedup();
        let count = |f: fn(&Report) -> bool| reports.iter().filter(|r| f(r)).count() as u64;
        let alerts = count(|r| matches!(r, Report::Alert(_)));
        let losses = count(|r| matches!(r, Report::Loss { .. }));
        let log = lock(&self.log);
        for lane in &self.lanes {
            if lane.closing.is_none() {
                self.notes.push(format!(
                    "{}no commitment confirmed during the run: the channel did not close",
                    lane.tag
                ));
            }
        }
        if let Some(p) = self.persist.as_ref().filter(|p| p.restarts > 0) {
            self.notes.push(format!(
                "this run was interrupted and resumed {} time(s): the engine reloaded from its \
                 store each time; timeline lines of what happened between the last saved block \
                 and an interruption may be missing or repeated",
                p.restarts
            ));
        }
        Ok(SimOutcome {
            scenario: self.scenario.name.clone(),
            channel_type: format!("{:?}", self.scenario.channel_type),
            channel: self.lanes[0].sim.channel_id,
            extra_channels: self.lanes[1..].iter().map(|l| l.sim.channel_id).collect(),
            start_height: self.start,
            end_height: self.tip(),
            timeline: log.timeline.clone(),
            close_summaries,
            ledger,
            broadcasts: log.broadcasts,
            rebroadcasts: log.rebroadcasts,
            rejections: log.rejections,
            alerts,
            losses,
            notes: self.notes.clone(),
        })
    }

    /// The reports the engine made, as replayed from the store's flight recorder (the core is
    /// deterministic: the replay makes the reports the live engine made).
    fn recorded_reports(&self) -> Result<Vec<Report>, SimError> {
        let replay = replay_flight_recorder(self.driver.config().clone(), self.driver.store())
            .map_err(err("replaying the flight recorder"))?;
        Ok(replay
            .transcript
            .into_iter()
            .filter_map(|a| match a {
                Action::Report(r) => Some(r),
                _ => None,
            })
            .collect())
    }
}

/// The close summaries among `reports`, in order.
fn close_summaries(reports: &[Report]) -> Vec<CloseSummary> {
    reports
        .iter()
        .filter_map(|r| match r {
            Report::CloseSummary(s) => Some(s.clone()),
            _ => None,
        })
        .collect()
}
