//! Fuzzing the parsers of outside input the core owns: a trace file (what `replay` and the
//! golden tests read, and what a field incident becomes), and an event in JSON (what a node
//! sends through the process protocol). Whatever parses is fed to a chain arbitrator: each event
//! is applied or refused, a refusal leaves the state as it was, and nothing panics.

use crate::chain::ChainArbitrator;
use crate::event::Event;
use crate::trace::Trace;

/// The most steps of one input replayed (a mutated trace can be long).
const MAX_STEPS: usize = 400;

/// Feed `events` to `arb`: each is applied or refused, and a refusal changes nothing.
fn feed<'a>(arb: &mut ChainArbitrator, events: impl Iterator<Item = &'a Event>) {
    for event in events.take(MAX_STEPS) {
        let before = arb.clone();
        if let Err(e) = arb.step(event) {
            assert!(*arb == before, "a refused event changed the state: {e}");
        }
        let _ = arb.ledger();
    }
}

/// `data` as a trace file: parsed (other formats and versions refused by
/// [`Trace::from_json`]), its setup started, its events fed. What each step answers is not
/// compared: a mutated trace expects what it expects.
pub fn trace_replay(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(trace) = Trace::from_json(text) else {
        return;
    };
    let Ok(mut arb) = crate::sim::trace_start(&trace.setup) else {
        return;
    };
    feed(&mut arb, trace.steps.iter().map(|s| &s.event));
}

/// `data` as events in JSON after a start: its first byte picks one of `starts` (trace files: the
/// fuzz target passes golden traces whose setups and steps put an arbitrator in a rich state —
/// a close with claims, anchors with a CPFP, a breach) and how many of that trace's steps are
/// replayed first, so the events land in every phase of a close; the rest is a JSON array of
/// events (or one event) fed after them.
pub fn event_json(starts: &[&str], data: &[u8]) {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let events: Vec<Event> = match serde_json::from_slice::<Vec<Event>>(rest) {
        Ok(events) => events,
        Err(_) => match serde_json::from_slice::<Event>(rest) {
            Ok(event) => vec![event],
            Err(_) => return,
        },
    };
    if starts.is_empty() {
        return;
    }
    let start = Trace::from_json(starts[usize::from(pick) % starts.len()])
        .unwrap_or_else(|e| panic!("a start trace does not parse: {e}"));
    let mut arb = crate::sim::trace_start(&start.setup)
        .unwrap_or_else(|e| panic!("a start trace's setup does not start: {e}"));
    let first = usize::from(pick / 4) * start.steps.len() / 64;
    for step in start.steps.iter().take(first) {
        let _ = arb.step(&step.event);
    }
    feed(&mut arb, events.iter());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The golden traces the `event_json` fuzz target starts from (compiled in, as there).
    fn starts() -> Vec<String> {
        [
            include_str!("../../../tests/golden/remote_close_claims.json"),
            include_str!("../../../tests/golden/anchors_cpfp_local_commitment.json"),
            include_str!("../../../tests/golden/breach_handoff.json"),
        ]
        .iter()
        .map(|t| t.to_string())
        .collect()
    }

    /// Every start is a trace that parses and replays through the fuzz entry point.
    #[test]
    fn every_start_is_a_trace_that_replays_without_a_broken_invariant() {
        for text in starts() {
            trace_replay(text.as_bytes());
            let trace = Trace::from_json(&text).unwrap();
            assert!(trace.steps.len() >= 8, "{}", trace.description);
        }
    }

    /// A node's events after every phase of a close: the golden trace's own later events, fed
    /// again after a prefix, are applied or refused without a broken invariant.
    #[test]
    fn events_in_json_are_fed_after_any_prefix_of_a_start() {
        let texts = starts();
        let starts: Vec<&str> = texts.iter().map(String::as_str).collect();
        let trace = Trace::from_json(starts[0]).unwrap();
        let events: Vec<&Event> = trace.steps.iter().map(|s| &s.event).collect();
        let json = serde_json::to_vec(&events).unwrap();
        for pick in [0u8, 64, 128, 255] {
            let mut data = vec![pick];
            data.extend_from_slice(&json);
            event_json(&starts, &data);
        }
        event_json(&starts, b"\x00not json");
        event_json(&starts, b"");
    }
}
