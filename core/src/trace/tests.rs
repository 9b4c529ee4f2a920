use super::*;
use crate::action::{Alert, AlertKind, Report};
use crate::types::ChannelId;

/// A machine that counts ticks and refuses anything else: enough to exercise replay itself.
#[derive(Default)]
struct TickCounter {
    ticks: u64,
}

impl Machine for TickCounter {
    type Error = String;
    fn step(&mut self, event: &Event) -> Result<Vec<Action>, String> {
        match event {
            Event::Tick { unix_secs } => {
                self.ticks += 1;
                Ok(vec![Action::Report(Report::Alert(Alert {
                    channel: Some(ChannelId([self.ticks as u8; 32])),
                    kind: AlertKind::RefusedEvent,
                    message: format!("tick {} at {unix_secs}", self.ticks),
                }))])
            }
            _ => Err("only ticks".to_string()),
        }
    }
}

fn recorded() -> Trace {
    let mut trace = Trace::new("ticks", TraceSetup::Empty);
    let mut m = TickCounter::default();
    trace.record(&mut m, Event::Tick { unix_secs: 10 });
    trace.record(&mut m, Event::Resumed { tip: None });
    trace.record(&mut m, Event::Tick { unix_secs: 20 });
    trace
}

#[test]
fn recorded_trace_replays_exactly() {
    let trace = recorded();
    assert_eq!(replay(&mut TickCounter::default(), &trace.steps), Ok(3));
}

#[test]
fn trace_survives_json_round_trip_byte_for_byte() {
    let json = recorded().to_json();
    let parsed = Trace::from_json(&json).expect("parses");
    assert_eq!(parsed.to_json(), json);
    assert!(matches!(parsed.steps[1].expect, Expected::Refused { .. }));
}

#[test]
fn replay_reports_first_differing_step_with_readable_diff() {
    let mut trace = recorded();
    if let Expected::Actions { actions } = &mut trace.steps[2].expect {
        if let Action::Report(Report::Alert(alert)) = &mut actions[0] {
            alert.message = "tick 2 at 99".into();
        }
    }
    let err = replay(&mut TickCounter::default(), &trace.steps).expect_err("must differ");
    assert_eq!(err.step, 2);
    assert!(
        err.diff.contains("- ") && err.diff.contains("tick 2 at 99"),
        "{}",
        err.diff
    );
    assert!(
        err.diff.contains("+ ") && err.diff.contains("tick 2 at 20"),
        "{}",
        err.diff
    );
    let shown = err.to_string();
    assert!(shown.starts_with("trace step 2 differs"), "{shown}");
}

#[test]
fn replay_flags_an_unexpected_refusal() {
    let mut trace = recorded();
    trace.steps[1].expect = Expected::Actions { actions: vec![] };
    let err = replay(&mut TickCounter::default(), &trace.steps).expect_err("must differ");
    assert_eq!(err.step, 1);
    assert!(err.diff.contains("only ticks"), "{}", err.diff);
}

#[test]
fn unknown_version_and_foreign_format_are_refused() {
    let json = recorded().to_json();
    let v2 = json.replacen("\"version\": 1", "\"version\": 2", 1);
    assert!(matches!(
        Trace::from_json(&v2),
        Err(TraceError::UnknownVersion { version: 2 })
    ));
    let other = json.replacen(TRACE_FORMAT, "something-else", 1);
    assert!(matches!(
        Trace::from_json(&other),
        Err(TraceError::NotATrace { .. })
    ));
    assert!(matches!(Trace::from_json("{"), Err(TraceError::Json(_))));
}

#[test]
fn line_diff_marks_changes_and_folds_long_unchanged_runs() {
    let a = "1\n2\n3\n4\n5\n6\n7\n8\n9\nx\n";
    let b = "1\n2\n3\n4\n5\n6\n7\n8\n9\ny\n";
    let d = line_diff(a, b);
    assert!(d.contains("- x\n+ y\n"), "{d}");
    assert!(d.contains("unchanged lines"), "{d}");
    assert_eq!(line_diff("same\n", "same\n"), "  same\n");
}
