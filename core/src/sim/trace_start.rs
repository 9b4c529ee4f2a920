//! Starting a trace replay from a `sim` setup ([`TraceSetup::Sim`]): the channels the setup
//! describes are opened with the sim and their opening events fed to a fresh engine, so a trace
//! need not carry a serialised state — only the seeds and parameters its channels come from.
//!
//! The setup's JSON is `{ "config": <engine Config, optional>, "channels": [<SimSetup>, …] }`.

use serde::{Deserialize, Serialize};

use crate::chain::{ChainArbitrator, Config};
use crate::trace::TraceSetup;

use super::{SimChannel, SimSetup};

/// The `setup` of a [`TraceSetup::Sim`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimTraceSetup {
    /// The engine's configuration (the default when absent).
    #[serde(default)]
    pub config: Config,
    /// The channels, opened in this order.
    pub channels: Vec<SimSetup>,
}

/// Why a trace's start could not be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TraceStartError {
    /// The setup is not of the expected shape.
    Setup(String),
    /// The sim refused to open a channel.
    Sim(String),
    /// The engine refused an opening event.
    Refused {
        /// Which channel of the setup.
        channel: usize,
        /// The engine's refusal.
        error: String,
    },
}

impl std::fmt::Display for TraceStartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TraceStartError::Setup(e) => write!(f, "the setup is not valid: {e}"),
            TraceStartError::Sim(e) => write!(f, "the sim cannot open a channel: {e}"),
            TraceStartError::Refused { channel, error } => {
                write!(f, "the engine refused channel {channel}'s opening: {error}")
            }
        }
    }
}

impl std::error::Error for TraceStartError {}

/// The engine a trace with `setup` starts from: a fresh one (`Empty`), one with the serialised
/// configuration (`State`), or one that has seen the opening events of the sim channels
/// (`Sim`).
pub fn trace_start(setup: &TraceSetup) -> Result<ChainArbitrator, TraceStartError> {
    match setup {
        TraceSetup::Empty => Ok(ChainArbitrator::new(Config::default())),
        TraceSetup::State { state } => serde_json::from_value(state.clone())
            .map(ChainArbitrator::new)
            .map_err(|e| TraceStartError::Setup(e.to_string())),
        TraceSetup::Sim { setup } => {
            let setup: SimTraceSetup = serde_json::from_value(setup.clone())
                .map_err(|e| TraceStartError::Setup(e.to_string()))?;
            let mut engine = ChainArbitrator::new(setup.config);
            for (channel, s) in setup.channels.into_iter().enumerate() {
                let (_, events) =
                    SimChannel::open(s).map_err(|e| TraceStartError::Sim(e.to_string()))?;
                for event in &events {
                    engine.step(event).map_err(|e| TraceStartError::Refused {
                        channel,
                        error: e.to_string(),
                    })?;
                }
            }
            Ok(engine)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bolt3::ChannelType;
    use crate::event::{Event, ForceCloseReason};
    use crate::trace::{replay, Trace};

    fn sim_setup() -> (TraceSetup, SimSetup) {
        let channel = SimSetup::new(7, ChannelType::AnchorsZeroFeeHtlc);
        let setup = TraceSetup::Sim {
            setup: serde_json::json!({ "channels": [channel.clone()] }),
        };
        (setup, channel)
    }

    #[test]
    fn a_sim_setup_starts_the_engine_with_its_channels_open() {
        let (setup, channel) = sim_setup();
        let (sim, _) = SimChannel::open(channel).unwrap();
        let engine = trace_start(&setup).unwrap();
        let ch = engine
            .channel(&sim.channel_id)
            .expect("the sim channel is registered");
        assert_eq!(ch.data.info.funding, vec![sim.funding]);
        assert!(ch.data.commitments.local.is_some());
        assert!(ch.close.is_none() && ch.force_close.is_none());
    }

    #[test]
    fn a_trace_recorded_from_a_sim_setup_replays_from_its_json() {
        let (setup, channel) = sim_setup();
        let (sim, _) = SimChannel::open(channel).unwrap();
        let mut trace = Trace::new("force close from a sim setup", setup.clone());
        let mut engine = trace_start(&setup).unwrap();
        trace.record(
            &mut engine,
            Event::ForceCloseRequested {
                channel: sim.channel_id,
                reason: ForceCloseReason::User,
            },
        );
        let read = Trace::from_json(&trace.to_json()).unwrap();
        let mut again = trace_start(&read.setup).unwrap();
        assert_eq!(replay(&mut again, &read.steps), Ok(1));
        // The recorded answer is a real force close: a signature request for our commitment.
        assert!(
            serde_json::to_string(&read.steps[0].expect)
                .unwrap()
                .contains("\"sign\""),
            "{:?}",
            read.steps[0].expect
        );
    }

    #[test]
    fn a_sim_setup_of_the_wrong_shape_is_a_typed_error() {
        let bad = TraceSetup::Sim {
            setup: serde_json::json!({ "channel": 3 }),
        };
        assert!(matches!(trace_start(&bad), Err(TraceStartError::Setup(_))));
    }
}
