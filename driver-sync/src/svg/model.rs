//! What the picture shows, gathered from a store's flight recorder: every event replayed
//! through a fresh engine, its reports read per output (lnd's and LDK's operators ask the same:
//! where each output stands, when it matures, what was broadcast and when it confirmed).

use std::collections::BTreeMap;

use bitcoin::OutPoint;
use contractcourt_core::action::{Action, Report};
use contractcourt_core::chain::{ChainArbitrator, Config};
use contractcourt_core::event::Event;
use contractcourt_core::types::Height;

use crate::store::Store;

/// A mark on a lane.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MarkKind {
    /// The output's timelock ends (CSV or CLTV): from here on it can be claimed.
    Timelock,
    /// The deadline a claim must confirm by.
    Deadline,
    /// A claim (or a fee bump of one) was broadcast.
    Broadcast,
    /// Its spend confirmed.
    Confirmed,
}

/// One mark.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mark {
    /// Where.
    pub height: Height,
    /// What.
    pub kind: MarkKind,
}

/// One output's lane.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lane {
    /// The channel.
    pub channel: contractcourt_core::types::ChannelId,
    /// The output.
    pub outpoint: OutPoint,
    /// The first height the engine reported of it (its commitment's confirmation).
    pub from: Height,
    /// What happened to it, in order.
    pub marks: Vec<Mark>,
    /// Its end: the height and the outcome, if it is resolved.
    pub end: Option<(Height, String)>,
    /// The ledger's words for it and its amount (filled by [`Picture::from_recording`]).
    pub what: String,
    /// Its value.
    pub amount_sat: u64,
}

/// Everything the picture draws.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Picture {
    /// A title.
    pub title: String,
    /// One lane per output, in the order the engine first reported them.
    pub lanes: Vec<Lane>,
    /// The fee rate (sat/vB, the estimate for the shortest target) from each height on.
    pub fee_rates: Vec<(Height, f64)>,
    /// The closing transactions' confirmations.
    pub closes: Vec<Height>,
    /// The lowest and highest heights shown.
    pub span: (Height, Height),
}

/// Why a picture could not be made.
#[derive(Debug)]
pub struct PictureError(pub String);

impl std::fmt::Display for PictureError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "drawing the resolution: {}", self.0)
    }
}

impl std::error::Error for PictureError {}

const PAGE: usize = 1024;

impl Picture {
    /// Replay the recording in `store` through an engine with `config`, reading its reports.
    pub fn from_recording<S: Store + ?Sized>(
        title: &str,
        config: Config,
        store: &S,
    ) -> Result<Picture, PictureError> {
        let mut engine = ChainArbitrator::new(config);
        let mut p = Picture {
            title: title.to_string(),
            ..Picture::default()
        };
        let mut lanes: BTreeMap<OutPoint, usize> = BTreeMap::new();
        let mut tip: Option<Height> = None;
        let mut next = 0u64;
        loop {
            let page = store
                .events(next, PAGE)
                .map_err(|e| PictureError(e.to_string()))?;
            if page.is_empty() {
                break;
            }
            for (seq, event) in page {
                next = seq + 1;
                p.note_event(&event, &mut tip);
                // A refused event changes nothing: the engine is where it was.
                let Ok(actions) = engine.step(&event) else {
                    continue;
                };
                for a in actions {
                    match a {
                        Action::Report(r) => p.note_report(&r, &mut lanes),
                        Action::Broadcast { tx, .. } => p.note_broadcast(&[&tx.0], tip, &lanes),
                        Action::BroadcastPackage { parent, child, .. } => {
                            p.note_broadcast(&[&parent.0, &child.0], tip, &lanes)
                        }
                        _ => {}
                    }
                }
            }
        }
        for row in engine
            .ledger()
            .channels
            .iter()
            .flat_map(|c| c.outputs.iter())
        {
            if let Some(&i) = lanes.get(&row.outpoint) {
                p.lanes[i].what = row.what.clone();
                p.lanes[i].amount_sat = row.amount_sat;
            }
        }
        p.set_span(tip);
        Ok(p)
    }

    fn note_event(&mut self, event: &Event, tip: &mut Option<Height>) {
        match event {
            Event::BlockConnected(b) => *tip = Some(b.height),
            Event::BlockDisconnected { block } => *tip = Some(block.height.saturating_sub(1)),
            Event::FeeConditions(f) => {
                let rate = f
                    .estimates
                    .iter()
                    .min_by_key(|e| e.target_blocks)
                    .map(|e| e.feerate.to_sat_per_kwu() as f64 * 4.0 / 1000.0);
                if let Some(rate) = rate {
                    // Fed before the block of the next height is mined: in force from there.
                    let at = tip.map_or(0, |t| t.saturating_add(1));
                    self.fee_rates.retain(|(h, _)| *h != at);
                    self.fee_rates.push((at, rate));
                }
            }
            _ => {}
        }
    }

    fn note_report(&mut self, r: &Report, lanes: &mut BTreeMap<OutPoint, usize>) {
        match r {
            Report::CloseSummary(s) => self.closes.push(s.height),
            Report::Timeline {
                channel,
                outpoint,
                height,
                stage,
                ..
            } => {
                let lane = self.lane(*channel, *outpoint, *height, lanes);
                for mark in marks_of(stage, *height) {
                    if !lane.marks.contains(&mark) {
                        lane.marks.push(mark);
                    }
                }
            }
            Report::Resolution(res) => {
                let lane = self.lane(res.channel, res.outpoint, res.height, lanes);
                lane.end = Some((res.height, format!("{:?}", res.outcome)));
            }
            _ => {}
        }
    }

    /// A broadcast spending a lane's output: a mark at the tip (the claim is offered for the
    /// next block).
    fn note_broadcast(
        &mut self,
        txs: &[&bitcoin::Transaction],
        tip: Option<Height>,
        lanes: &BTreeMap<OutPoint, usize>,
    ) {
        let Some(height) = tip else {
            return;
        };
        for tx in txs {
            for input in &tx.input {
                if let Some(&i) = lanes.get(&input.previous_output) {
                    let mark = Mark {
                        height,
                        kind: MarkKind::Broadcast,
                    };
                    if !self.lanes[i].marks.contains(&mark) {
                        self.lanes[i].marks.push(mark);
                    }
                }
            }
        }
    }

    fn lane(
        &mut self,
        channel: contractcourt_core::types::ChannelId,
        outpoint: OutPoint,
        height: Height,
        lanes: &mut BTreeMap<OutPoint, usize>,
    ) -> &mut Lane {
        let i = *lanes.entry(outpoint).or_insert_with(|| {
            self.lanes.push(Lane {
                channel,
                outpoint,
                from: height,
                marks: Vec::new(),
                end: None,
                what: String::new(),
                amount_sat: 0,
            });
            self.lanes.len() - 1
        });
        &mut self.lanes[i]
    }

    fn set_span(&mut self, tip: Option<Height>) {
        let mut lo = Height::MAX;
        let mut hi = 0;
        for l in &self.lanes {
            lo = lo.min(l.from);
            hi = hi.max(l.from);
            // A deadline far ahead (a budget's) would flatten everything else: it is drawn at
            // the edge instead.
            for m in l.marks.iter().filter(|m| m.kind != MarkKind::Deadline) {
                hi = hi.max(m.height);
            }
            if let Some((h, _)) = &l.end {
                hi = hi.max(*h);
            }
        }
        if let Some(t) = tip {
            hi = hi.max(t);
        }
        if lo == Height::MAX {
            lo = self.fee_rates.first().map_or(0, |(h, _)| *h);
        }
        self.span = (lo.saturating_sub(2), hi.max(lo).saturating_add(2));
    }
}

/// The marks an engine stage names: "timelocked until H", "contested until H, must resolve by
/// D", "claimable ... until H" (a deadline: the HTLC's expiry), "... deadline D ...", "spent
/// by ..." (a confirmation at the report's height). Broadcasts are read from the engine's
/// broadcast actions instead.
fn marks_of(stage: &str, height: Height) -> Vec<Mark> {
    let mut marks = Vec::new();
    let number_after = |word: &str| -> Option<Height> {
        let at = stage.find(word)? + word.len();
        let digits: String = stage[at..]
            .trim_start()
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().ok()
    };
    if stage.starts_with("spent by") {
        marks.push(Mark {
            height,
            kind: MarkKind::Confirmed,
        });
    }
    if stage.contains("timelocked until") || stage.contains("contested until") {
        if let Some(h) = number_after("until") {
            marks.push(Mark {
                height: h,
                kind: MarkKind::Timelock,
            });
        }
    }
    if stage.contains("claimable") {
        if let Some(h) = number_after("until") {
            marks.push(Mark {
                height: h,
                kind: MarkKind::Deadline,
            });
        }
    }
    for word in ["must resolve by", "deadline"] {
        if let Some(h) = number_after(word) {
            marks.push(Mark {
                height: h,
                kind: MarkKind::Deadline,
            });
        }
    }
    marks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_give_their_marks() {
        let k = |s: &str| -> Vec<(Height, MarkKind)> {
            marks_of(s, 100)
                .into_iter()
                .map(|m| (m.height, m.kind))
                .collect()
        };
        assert_eq!(
            k("our balance, timelocked until 128"),
            vec![(128, MarkKind::Timelock)]
        );
        assert_eq!(
            k("outgoing htlc 0 contested until 122, must resolve by 266"),
            vec![(122, MarkKind::Timelock), (266, MarkKind::Deadline)]
        );
        assert_eq!(
            k("claiming at 3.0 sat/vB (fee 363 sat), 29 blocks to deadline 137, budget left 1"),
            vec![(137, MarkKind::Deadline)]
        );
        assert_eq!(
            k("incoming htlc 0 claimable with its preimage until 242"),
            vec![(242, MarkKind::Deadline)]
        );
        assert_eq!(
            k("spent by ab12, final at 114"),
            vec![(100, MarkKind::Confirmed)]
        );
        assert!(k("claimable with its preimage").is_empty());
        assert!(k("revoked commitment 1 output, ours by revocation").is_empty());
    }
}
