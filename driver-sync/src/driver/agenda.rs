//! The order in which a driver feeds events and runs effects, shared by the blocking driver and
//! the async one (`contractcourt-tokio`), so both follow exactly the same order.
//!
//! The order is depth-first (`DESIGN.md`, "Driver contract"):
//!
//! 1. feed an event: record it, step the engine, commit the step's `Persist` batch;
//! 2. run the step's effects one at a time, in action order; an effect that has a result (a
//!    signature, a broadcast outcome, wallet funding, the blocks a `SyncFrom` asks for) is fed
//!    back at once — with all that *it* causes, recursively — before the next effect runs;
//! 3. an effect with several results (`SyncFrom`: disconnections then connections) feeds them
//!    one at a time, each with all it causes, before the next.
//!
//! The **transcript** is every action of every committed step, in the order the steps were
//! taken (which is the order their events were fed and recorded): the concatenation of each
//! step's actions, `Persist` included. Replaying the flight recorder through a fresh engine gives
//! the same transcript.

use std::collections::VecDeque;

use bitcoin::Transaction;
use contractcourt_core::action::{Action, Batch, FundingRequest, SignRequest};
use contractcourt_core::event::{BroadcastOutcome, Event, FundingOutcome, SignOutcome};
use contractcourt_core::types::RequestId;

/// What a driver does next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Next {
    /// Feed this event: record it, step, commit; then hand the step's actions to
    /// [`Agenda::stepped`].
    Feed(Event),
    /// Run this effect; hand its results (if any) to [`Agenda::results`].
    Run(Action),
}

/// A driver's to-do list for one call: a stack of queues, the newest (innermost) on top.
#[derive(Clone, Debug, Default)]
pub struct Agenda {
    stack: Vec<VecDeque<Next>>,
    transcript: Vec<Action>,
}

impl Agenda {
    /// An agenda that feeds `events` in order.
    pub fn new(events: Vec<Event>) -> Agenda {
        let mut agenda = Agenda::default();
        agenda.results(events);
        agenda
    }

    /// The next thing to do, or `None` when everything is done.
    pub fn take_next(&mut self) -> Option<Next> {
        while let Some(top) = self.stack.last_mut() {
            if let Some(next) = top.pop_front() {
                return Some(next);
            }
            self.stack.pop();
        }
        None
    }

    /// A fed event's step was committed: add its actions to the transcript and run its effects
    /// (every action but `Persist`) next, in order, before anything queued earlier.
    pub fn stepped(&mut self, actions: Vec<Action>) {
        let effects: VecDeque<Next> = actions
            .iter()
            .filter(|a| !matches!(a, Action::Persist(_)))
            .cloned()
            .map(Next::Run)
            .collect();
        self.transcript.extend(actions);
        if !effects.is_empty() {
            self.stack.push(effects);
        }
    }

    /// An effect's results: feed them next, in order, before anything queued earlier.
    pub fn results(&mut self, events: Vec<Event>) {
        if !events.is_empty() {
            self.stack
                .push(events.into_iter().map(Next::Feed).collect());
        }
    }

    /// The transcript so far: the actions of every committed step, in step order.
    pub fn transcript(&self) -> &[Action] {
        &self.transcript
    }

    /// The transcript, taking it.
    pub fn into_transcript(self) -> Vec<Action> {
        self.transcript
    }
}

/// The `Persist` batches among a step's actions, in order (the core emits at most one, first).
pub fn batches(actions: &[Action]) -> Vec<&Batch> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Persist(batch) => Some(batch),
            _ => None,
        })
        .collect()
}

/// The event answering a sign request.
pub fn signed(request: &SignRequest, outcome: SignOutcome) -> Event {
    Event::Signed {
        request: request.request,
        outcome,
    }
}

/// The event answering a wallet funding request.
pub fn funded(request: &FundingRequest, outcome: FundingOutcome) -> Event {
    Event::WalletFunded {
        request: request.request,
        outcome,
    }
}

/// The event answering the broadcast of `tx`.
pub fn broadcast_result(request: RequestId, tx: &Transaction, outcome: BroadcastOutcome) -> Event {
    Event::BroadcastResult {
        request,
        txid: tx.compute_txid(),
        outcome,
    }
}

/// The event answering the broadcast of a package: it names the child.
pub fn package_result(request: RequestId, child: &Transaction, outcome: BroadcastOutcome) -> Event {
    broadcast_result(request, child, outcome)
}

#[cfg(test)]
mod tests {
    use super::*;
    use contractcourt_core::action::Report;
    use contractcourt_core::event::ForceCloseReason;
    use contractcourt_core::types::{ChannelId, ClaimId};

    fn event(n: u8) -> Event {
        Event::ForceCloseRequested {
            channel: ChannelId([n; 32]),
            reason: ForceCloseReason::User,
        }
    }

    fn release(n: u64) -> Action {
        Action::ReleaseInputs { claim: ClaimId(n) }
    }

    #[test]
    fn results_run_depth_first_before_later_effects() {
        let mut agenda = Agenda::new(vec![event(0), event(9)]);
        assert_eq!(agenda.take_next(), Some(Next::Feed(event(0))));
        agenda.stepped(vec![
            Action::Persist(Batch::default()),
            release(1),
            release(2),
        ]);
        assert_eq!(agenda.take_next(), Some(Next::Run(release(1))));
        agenda.results(vec![event(1), event(2)]);
        assert_eq!(agenda.take_next(), Some(Next::Feed(event(1))));
        agenda.stepped(vec![release(11)]);
        assert_eq!(agenda.take_next(), Some(Next::Run(release(11))));
        agenda.results(Vec::new());
        assert_eq!(agenda.take_next(), Some(Next::Feed(event(2))));
        agenda.stepped(Vec::new());
        assert_eq!(agenda.take_next(), Some(Next::Run(release(2))));
        assert_eq!(agenda.take_next(), Some(Next::Feed(event(9))));
        agenda.stepped(vec![Action::Report(Report::Alert(
            contractcourt_core::action::Alert {
                channel: None,
                kind: contractcourt_core::action::AlertKind::RefusedEvent,
                message: String::new(),
            },
        ))]);
        assert!(matches!(
            agenda.take_next(),
            Some(Next::Run(Action::Report(_)))
        ));
        assert_eq!(agenda.take_next(), None);
        assert_eq!(agenda.transcript().len(), 5);
        assert_eq!(agenda.transcript()[3], release(11));
    }
}
