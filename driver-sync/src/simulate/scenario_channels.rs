//! Several channels in one scenario: `extra_channels[]`, each a channel of its own (its seed,
//! capacity, HTLCs, close and peer) on the same chain, watched by the same engine, under the
//! scenario's fee rates and for its `run_blocks`.

use serde::{Deserialize, Serialize};

use super::{
    default_delay, default_dust, default_feerate_per_kw, Close, PeerBehaviour, Scenario,
    ScenarioChannelType, ScenarioError, ScenarioHtlc,
};

/// One more channel of a scenario. Its fields mean what the scenario's own channel fields mean;
/// its `seed` must differ from every other channel's (the keys derive from it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtraChannel {
    /// The seed its keys and preimages derive from.
    pub seed: u64,
    /// The commitment format.
    pub channel_type: ScenarioChannelType,
    /// The channel capacity.
    pub capacity_sat: u64,
    /// Our opening balance (we funded it).
    pub local_balance_sat: u64,
    /// The CSV delay on both parties' outputs.
    #[serde(default = "default_delay")]
    pub to_self_delay: u16,
    /// Both parties' dust limit.
    #[serde(default = "default_dust")]
    pub dust_limit_sat: u64,
    /// The commitment fee rate.
    #[serde(default = "default_feerate_per_kw")]
    pub commitment_feerate_per_kw: u32,
    /// Its live HTLCs.
    #[serde(default)]
    pub htlcs: Vec<ScenarioHtlc>,
    /// Who closes it, when, and how.
    pub close: Close,
    /// What its peer does.
    #[serde(default)]
    pub peer: PeerBehaviour,
}

impl Scenario {
    /// One single-channel scenario per channel, in order (the scenario's own channel first),
    /// each with the scenario's name, fee rates and length.
    pub fn channel_views(&self) -> Vec<Scenario> {
        let first = Scenario {
            extra_channels: Vec::new(),
            ..self.clone()
        };
        let mut views = vec![first.clone()];
        for c in &self.extra_channels {
            views.push(Scenario {
                seed: c.seed,
                channel_type: c.channel_type,
                capacity_sat: c.capacity_sat,
                local_balance_sat: c.local_balance_sat,
                to_self_delay: c.to_self_delay,
                dust_limit_sat: c.dust_limit_sat,
                commitment_feerate_per_kw: c.commitment_feerate_per_kw,
                htlcs: c.htlcs.clone(),
                close: c.close,
                peer: c.peer,
                ..first.clone()
            });
        }
        views
    }

    /// Each extra channel checked as a channel of its own (a field is named
    /// `extra_channels[i].field`), with a seed of its own.
    pub(super) fn check_extra_channels(&self) -> Result<(), ScenarioError> {
        let views = self.channel_views();
        for (i, view) in views.iter().enumerate().skip(1) {
            let prefix = format!("extra_channels[{}]", i - 1);
            if views[..i].iter().any(|v| v.seed == view.seed) {
                return Err(ScenarioError::Invalid {
                    field: format!("{prefix}.seed"),
                    reason: format!(
                        "{} is the seed of another channel (each channel's keys derive from its own)",
                        view.seed
                    ),
                });
            }
            view.check_one().map_err(|e| match e {
                ScenarioError::Invalid { field, reason } => ScenarioError::Invalid {
                    field: format!("{prefix}.{field}"),
                    reason,
                },
                other => other,
            })?;
        }
        Ok(())
    }
}
