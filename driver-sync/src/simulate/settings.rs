//! The engine's settings a simulation can change (`contractcourt simulate --reorg-safety-depth
//! …`): the fields of the core's [`Config`] an operator tunes. Unset fields keep the core's
//! defaults. A resumable run keeps its settings in its state file, and a restart with other
//! settings is refused (the engine in the store ran with the first ones).

use contractcourt_core::chain::Config;
use serde::{Deserialize, Serialize};

use super::SimError;

/// Overrides of the engine's configuration; `None` keeps the default.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::Args)]
#[serde(deny_unknown_fields)]
pub struct EngineSettings {
    /// Confirmations after which irreversible steps are taken (failing upstream, finality)
    /// [engine default: 6].
    #[arg(long, value_name = "BLOCKS")]
    pub reorg_safety_depth: Option<u32>,
    /// Confirmations after which a fully resolved channel is archived [engine default: 100].
    #[arg(long, value_name = "BLOCKS")]
    pub archive_depth: Option<u32>,
    /// Fail an incoming HTLC upstream this many blocks before its expiry while its outgoing leg
    /// is unresolved on chain; 0 disables the rule [engine default: 3].
    #[arg(long, value_name = "BLOCKS")]
    pub cut_loss_blocks: Option<u32>,
    /// Blocks before an outgoing HTLC's expiry at which we go to chain [engine default: 0].
    #[arg(long, value_name = "BLOCKS")]
    pub outgoing_broadcast_delta: Option<u32>,
    /// Blocks before an incoming HTLC's expiry at which we go to chain when we hold its
    /// preimage [engine default: 24].
    #[arg(long, value_name = "BLOCKS")]
    pub incoming_broadcast_delta: Option<u32>,
    /// Share of an HTLC's value its claim may spend on fees, in percent [engine default: 50].
    #[arg(long, value_name = "PERCENT")]
    pub htlc_budget_percent: Option<u8>,
    /// Share of our balance its sweep may spend on fees, in percent [engine default: 5].
    #[arg(long, value_name = "PERCENT")]
    pub balance_budget_percent: Option<u8>,
    /// Blocks after maturity by which a sweep of our balance should confirm [engine default:
    /// 1008].
    #[arg(long, value_name = "BLOCKS")]
    pub balance_deadline_blocks: Option<u32>,
    /// The most one claim on an HTLC may spend on fees, in satoshis [engine default: no cap].
    #[arg(long, value_name = "SAT")]
    pub htlc_budget_cap_sat: Option<u64>,
    /// The most one sweep of our balance may spend on fees, in satoshis [engine default: no
    /// cap].
    #[arg(long, value_name = "SAT")]
    pub balance_budget_cap_sat: Option<u64>,
}

fn invalid(flag: &str, reason: String) -> SimError {
    SimError(format!("--{flag}: {reason}"))
}

impl EngineSettings {
    /// `config` with these settings applied; refused (naming the flag) when out of range.
    pub fn apply(&self, mut config: Config) -> Result<Config, SimError> {
        let close = &mut config.close;
        if let Some(d) = self.reorg_safety_depth {
            if d == 0 {
                return Err(invalid("reorg-safety-depth", "must be at least 1".into()));
            }
            close.reorg_safety_depth = d;
        }
        if let Some(d) = self.archive_depth {
            close.archive_depth = d;
        }
        if close.archive_depth < close.reorg_safety_depth {
            return Err(invalid(
                "archive-depth",
                format!(
                    "{} is below the reorg safety depth {}",
                    close.archive_depth, close.reorg_safety_depth
                ),
            ));
        }
        if let Some(b) = self.cut_loss_blocks {
            close.cut_loss_blocks = (b > 0).then_some(b);
        }
        if let Some(d) = self.outgoing_broadcast_delta {
            config.deadlines.outgoing_broadcast_delta = d;
        }
        if let Some(d) = self.incoming_broadcast_delta {
            config.deadlines.incoming_broadcast_delta = d;
        }
        let sweep = &mut config.sweep;
        for (flag, value, field) in [
            (
                "htlc-budget-percent",
                self.htlc_budget_percent,
                &mut sweep.htlc_budget_percent,
            ),
            (
                "balance-budget-percent",
                self.balance_budget_percent,
                &mut sweep.balance_budget_percent,
            ),
        ] {
            if let Some(p) = value {
                if p > 100 {
                    return Err(invalid(flag, format!("{p} is above 100")));
                }
                *field = p;
            }
        }
        if let Some(b) = self.balance_deadline_blocks {
            if b == 0 {
                return Err(invalid(
                    "balance-deadline-blocks",
                    "must be at least 1".into(),
                ));
            }
            sweep.balance_deadline_blocks = b;
        }
        if self.htlc_budget_cap_sat.is_some() {
            sweep.htlc_budget_cap_sat = self.htlc_budget_cap_sat;
        }
        if self.balance_budget_cap_sat.is_some() {
            sweep.balance_budget_cap_sat = self.balance_budget_cap_sat;
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_settings_keep_the_engines_defaults() {
        let config = EngineSettings::default()
            .apply(Config::default())
            .expect("defaults");
        assert_eq!(config, Config::default());
    }

    #[test]
    fn each_setting_reaches_the_engines_configuration() {
        let settings = EngineSettings {
            reorg_safety_depth: Some(3),
            archive_depth: Some(50),
            cut_loss_blocks: Some(0),
            outgoing_broadcast_delta: Some(2),
            incoming_broadcast_delta: Some(30),
            htlc_budget_percent: Some(40),
            balance_budget_percent: Some(7),
            balance_deadline_blocks: Some(144),
            htlc_budget_cap_sat: Some(20_000),
            balance_budget_cap_sat: Some(9_000),
        };
        let c = settings.apply(Config::default()).expect("in range");
        assert_eq!(c.close.reorg_safety_depth, 3);
        assert_eq!(c.close.archive_depth, 50);
        assert_eq!(c.close.cut_loss_blocks, None);
        assert_eq!(c.deadlines.outgoing_broadcast_delta, 2);
        assert_eq!(c.deadlines.incoming_broadcast_delta, 30);
        assert_eq!(c.sweep.htlc_budget_percent, 40);
        assert_eq!(c.sweep.balance_budget_percent, 7);
        assert_eq!(c.sweep.balance_deadline_blocks, 144);
        assert_eq!(c.sweep.htlc_budget_cap_sat, Some(20_000));
        assert_eq!(c.sweep.balance_budget_cap_sat, Some(9_000));
    }

    #[test]
    fn the_defaults_the_help_states_are_the_engines() {
        use clap::Args;
        let command = EngineSettings::augment_args(clap::Command::new("simulate"));
        let c = Config::default();
        let cap = |v: Option<u64>| v.map_or_else(|| "no cap".to_owned(), |v| v.to_string());
        let expected = [
            ("reorg_safety_depth", c.close.reorg_safety_depth.to_string()),
            ("archive_depth", c.close.archive_depth.to_string()),
            (
                "cut_loss_blocks",
                c.close.cut_loss_blocks.unwrap_or(0).to_string(),
            ),
            (
                "outgoing_broadcast_delta",
                c.deadlines.outgoing_broadcast_delta.to_string(),
            ),
            (
                "incoming_broadcast_delta",
                c.deadlines.incoming_broadcast_delta.to_string(),
            ),
            (
                "htlc_budget_percent",
                c.sweep.htlc_budget_percent.to_string(),
            ),
            (
                "balance_budget_percent",
                c.sweep.balance_budget_percent.to_string(),
            ),
            (
                "balance_deadline_blocks",
                c.sweep.balance_deadline_blocks.to_string(),
            ),
            ("htlc_budget_cap_sat", cap(c.sweep.htlc_budget_cap_sat)),
            (
                "balance_budget_cap_sat",
                cap(c.sweep.balance_budget_cap_sat),
            ),
        ];
        for (id, value) in &expected {
            let arg = command
                .get_arguments()
                .find(|a| a.get_id() == *id)
                .unwrap_or_else(|| panic!("no flag {id}"));
            let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
            let help = help.split_whitespace().collect::<Vec<_>>().join(" ");
            assert!(
                help.ends_with(&format!("[engine default: {value}]")),
                "{id}: {help}"
            );
        }
        assert_eq!(command.get_arguments().count(), expected.len());
    }

    #[test]
    fn out_of_range_settings_are_refused_naming_the_flag() {
        let refused = |s: EngineSettings| s.apply(Config::default()).expect_err("refused").0;
        let e = refused(EngineSettings {
            reorg_safety_depth: Some(0),
            ..EngineSettings::default()
        });
        assert!(e.starts_with("--reorg-safety-depth:"), "{e}");
        let e = refused(EngineSettings {
            reorg_safety_depth: Some(10),
            archive_depth: Some(9),
            ..EngineSettings::default()
        });
        assert!(e.starts_with("--archive-depth:"), "{e}");
        let e = refused(EngineSettings {
            htlc_budget_percent: Some(101),
            ..EngineSettings::default()
        });
        assert!(e.starts_with("--htlc-budget-percent:"), "{e}");
        let e = refused(EngineSettings {
            balance_deadline_blocks: Some(0),
            ..EngineSettings::default()
        });
        assert!(e.starts_with("--balance-deadline-blocks:"), "{e}");
    }
}
