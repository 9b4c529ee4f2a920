//! The files an operator gives the program: a `simulate` scenario (JSON) and the `simulate` and
//! `serve` configuration files (TOML).

use std::time::Instant;

use contractcourt_core::chain::Config;

use crate::serve::settings::{ServeConfig, StoreConfig};
use crate::serve::{ServeSettings, SettingsError};
use crate::simulate::config_file::ConfigFileError;
use crate::simulate::{EngineSettings, Scenario, ScenarioError};

/// `data` as a scenario file ([`Scenario::from_json`]): refused with a typed error naming its
/// field, or accepted; an accepted scenario passes its checks again, survives a JSON round trip
/// and splits into one view per channel.
pub fn scenario_json(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let scenario = match Scenario::from_json(text) {
        Ok(s) => s,
        Err(ScenarioError::Json(_)) => return,
        Err(ScenarioError::Invalid { field, reason }) => {
            assert!(
                !field.is_empty() && !reason.is_empty(),
                "a refusal names its field and why"
            );
            return;
        }
    };
    if let Err(e) = scenario.check() {
        panic!("an accepted scenario fails its checks when checked again: {e}");
    }
    let json = serde_json::to_string(&scenario).expect("a scenario encodes");
    match Scenario::from_json(&json) {
        Ok(again) => assert_eq!(again, scenario, "a scenario changed in a JSON round trip"),
        Err(e) => panic!("an accepted scenario, encoded, is refused: {e}\n{json}"),
    }
    let views = scenario.channel_views();
    assert_eq!(views.len(), 1 + scenario.extra_channels.len());
    for h in [0, 1, scenario.run_blocks / 2, scenario.run_blocks, u32::MAX] {
        if let Some(rate) = scenario.fee_rate_at(h) {
            assert!(rate > 0, "fee rate 0 in force at {h}");
        }
    }
}

/// `data` as a configuration file of `simulate` ([`EngineSettings::from_toml`]) and of `serve`
/// ([`ServeSettings::from_toml`], then [`ServeSettings::over`] the flags and
/// [`ServeSettings::resolve`]). The file is the text up to the first NUL byte; the bytes after it
/// are `serve`'s numeric flags (what `clap` reads from the command line: any `u64` or `u32`),
/// each a presence byte and its value. Accepted engine settings apply to the core's
/// configuration and survive a TOML round trip; resolved `serve` settings hold only durations
/// the service can wait for (a deadline that far from now exists).
pub fn settings_toml(data: &[u8]) {
    let (file, flags) = match data.iter().position(|b| *b == 0) {
        Some(nul) => (&data[..nul], &data[nul + 1..]),
        None => (data, &[][..]),
    };
    let Ok(text) = std::str::from_utf8(file) else {
        return;
    };
    engine_settings(text);
    serve_settings(text, &numeric_flags(flags));
}

/// `serve`'s numeric flags from bytes: for each, a byte whose low bit says whether it is given,
/// then its value (little-endian).
fn numeric_flags(bytes: &[u8]) -> ServeSettings {
    fn flag(b: &mut super::Bytes<'_>) -> Option<u64> {
        (b.u8() & 1 == 1).then(|| u64::from_le_bytes(std::array::from_fn(|_| b.u8())))
    }
    let b = &mut super::Bytes::new(bytes);
    ServeSettings {
        poll_ms: flag(b),
        outage_alert_secs: flag(b),
        max_backoff_ms: flag(b),
        node_timeout_secs: flag(b),
        lease_ms: flag(b),
        postgres_reconnect_ms: flag(b),
        start_height: flag(b).map(|v| v as u32),
        fallback_sat_per_vb: flag(b).map(|v| v as u32),
        ..ServeSettings::default()
    }
}

fn engine_settings(text: &str) {
    let settings = match EngineSettings::from_toml(text) {
        Ok(s) => s,
        Err(
            ConfigFileError::Syntax(_)
            | ConfigFileError::UnknownKey { .. }
            | ConfigFileError::BadValue { .. }
            | ConfigFileError::OutOfRange { .. },
        ) => return,
    };
    if let Err(e) = settings.apply(Config::default()) {
        panic!("accepted settings are refused by the engine: {e}");
    }
    let toml = toml::to_string(&settings).expect("settings encode as TOML");
    assert_eq!(
        EngineSettings::from_toml(&toml).as_ref(),
        Ok(&settings),
        "settings changed in a TOML round trip:\n{toml}"
    );
    assert_eq!(
        settings.clone().over(EngineSettings::default()),
        settings,
        "settings over nothing are themselves"
    );
}

fn serve_settings(text: &str, flags: &ServeSettings) {
    let file = match ServeSettings::from_toml(text) {
        Ok(s) => s,
        Err(SettingsError::File(_)) => return,
        Err(e) => panic!("reading a file is refused with an error that is not the file's: {e}"),
    };
    let settings = flags.clone().over(file);
    assert_eq!(
        settings.clone().over(ServeSettings::default()),
        settings,
        "settings over nothing are themselves"
    );
    assert_eq!(
        ServeSettings::default().over(settings.clone()),
        settings,
        "nothing over settings is the settings"
    );
    let config = match settings.resolve() {
        Ok(config) => config,
        Err(
            SettingsError::File(_)
            | SettingsError::Missing(_)
            | SettingsError::Conflict(..)
            | SettingsError::Invalid(..),
        ) => return,
    };
    waits_exist(&config);
}

/// Every duration of a resolved configuration is one the service can wait for: a deadline that
/// far from now exists (`Instant + Duration` panics otherwise).
fn waits_exist(config: &ServeConfig) {
    let now = Instant::now();
    let mut waits = vec![
        ("poll", config.poll),
        ("outage_alert", config.outage_alert),
        ("max_backoff", config.max_backoff),
        ("node_timeout", config.node_timeout),
    ];
    if let StoreConfig::Postgres(pg) = &config.store {
        waits.push(("lease", pg.lease));
        waits.push(("reconnect", pg.reconnect));
    }
    for (name, wait) in waits {
        assert!(
            now.checked_add(wait).is_some(),
            "{name} of {wait:?} was accepted: no deadline that far from now exists"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenarios() -> Vec<(&'static str, &'static str)> {
        vec![
            (
                "force-close-htlcs",
                include_str!("../../../scenarios/force-close-htlcs.json"),
            ),
            (
                "multi-channel",
                include_str!("../../../scenarios/multi-channel.json"),
            ),
            (
                "anchors-force-close",
                include_str!("../../../scenarios/anchors-force-close.json"),
            ),
        ]
    }

    #[test]
    fn the_shipped_scenarios_are_accepted_and_round_trip() {
        for (name, text) in scenarios() {
            assert!(Scenario::from_json(text).is_ok(), "{name}");
            scenario_json(text.as_bytes());
        }
    }

    #[test]
    fn refused_scenarios_and_bytes_that_are_not_text_return_quietly() {
        scenario_json(b"\xff\xfe");
        scenario_json(b"{}");
        let text = scenarios()[0]
            .1
            .replace("\"run_blocks\": ", "\"run_blocks\": 0");
        scenario_json(text.as_bytes());
    }

    #[test]
    fn engine_settings_round_trip_through_toml() {
        settings_toml(b"reorg_safety_depth = 3\nhtlc_budget_cap_sat = 5000\n");
        settings_toml(b"archive_depth = 1\nreorg_safety_depth = 3\n");
        settings_toml(b"not toml [");
    }

    /// What the fuzzer found first (`fuzz/artifacts-found/`): `--outage-alert-secs` of
    /// 11863788345444574296 over a file naming a store and a socket was accepted.
    #[test]
    fn a_wait_no_deadline_can_be_counted_to_is_refused() {
        settings_toml(include_bytes!(
            "../../../fuzz/artifacts-found/settings_toml-wait-beyond-any-deadline"
        ));
    }

    #[test]
    fn a_serve_file_that_resolves_is_checked_for_waits() {
        settings_toml(b"db = \"/tmp/x.sqlite\"\nsocket = \"/tmp/s\"\nnode_timeout_secs = 30\n");
        let mut with_flags = b"db = \"/tmp/x.sqlite\"\nsocket = \"/tmp/s\"\n\0".to_vec();
        with_flags.extend([1, 200, 0, 0, 0, 0, 0, 0, 0]);
        settings_toml(&with_flags);
        settings_toml(
            b"postgres = \"host=/run/postgresql\"\nregtest = \"/tmp/c\"\nsocket = \"/tmp/s\"\n\
              lease_ms = 1000\n[engine]\nreorg_safety_depth = 2\n",
        );
    }
}
