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

/// Where an outgoing HTLC was forwarded from: `htlcs[htlc]` of channel `channel` (0: the
/// scenario's own, `i + 1`: `extra_channels[i]`), an earlier channel than its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForwardedFrom {
    /// The channel's position (0: the scenario's own).
    pub channel: usize,
    /// The incoming HTLC's position in that channel's `htlcs`.
    pub htlc: usize,
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

    /// Each extra channel checked as a channel of its own (a forwarded HTLC against the one it
    /// was forwarded from) (a field is named
    /// `extra_channels[i].field`), with a seed of its own.
    pub(super) fn check_extra_channels(&self) -> Result<(), ScenarioError> {
        let views = self.channel_views();
        check_forwards(&views, 0, "")?;
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
            check_forwards(&views, i, &prefix)?;
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

/// The forwarded HTLCs of channel `i` (named under `prefix`): each outgoing, from an incoming
/// HTLC of an earlier channel worth at least as much (the difference is our fee) and expiring
/// later (the difference is our CLTV delta: BOLT 2 lets us time out the outgoing leg first).
fn check_forwards(views: &[Scenario], i: usize, prefix: &str) -> Result<(), ScenarioError> {
    for (j, h) in views[i].htlcs.iter().enumerate() {
        let Some(from) = h.forwarded_from else {
            continue;
        };
        let field = if prefix.is_empty() {
            format!("htlcs[{j}].forwarded_from")
        } else {
            format!("{prefix}.htlcs[{j}].forwarded_from")
        };
        let refuse = |reason: String| {
            Err(ScenarioError::Invalid {
                field: field.clone(),
                reason,
            })
        };
        if h.direction != super::Direction::Outgoing {
            return refuse("applies to outgoing htlcs only".into());
        }
        if from.channel >= i {
            return refuse(format!(
                "channel {} is not an earlier channel than this one ({i})",
                from.channel
            ));
        }
        let Some(incoming) = views[from.channel].htlcs.get(from.htlc) else {
            return refuse(format!(
                "channel {} has no htlc {}",
                from.channel, from.htlc
            ));
        };
        if incoming.direction != super::Direction::Incoming {
            return refuse("must name an incoming htlc".into());
        }
        if h.amount_msat > incoming.amount_msat || h.cltv_expiry >= incoming.cltv_expiry {
            return refuse(
                "the outgoing leg must be worth no more and expire earlier than the incoming one"
                    .into(),
            );
        }
    }
    Ok(())
}
