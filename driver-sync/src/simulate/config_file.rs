//! A configuration file for the engine's settings (`contractcourt simulate --config FILE`):
//! TOML, one key per [`EngineSettings`] field, named as its flag with `_` for `-`
//! (`reorg_safety_depth = 3`). A flag given on the command line overrides the file.
//!
//! ```toml
//! reorg_safety_depth = 3
//! htlc_budget_percent = 30
//! balance_budget_cap_sat = 5000
//! ```

use contractcourt_core::chain::Config;

use super::EngineSettings;

/// The keys a file may set, in the order `--help` lists the flags.
pub const KEYS: [&str; 10] = [
    "reorg_safety_depth",
    "archive_depth",
    "cut_loss_blocks",
    "outgoing_broadcast_delta",
    "incoming_broadcast_delta",
    "htlc_budget_percent",
    "balance_budget_percent",
    "balance_deadline_blocks",
    "htlc_budget_cap_sat",
    "balance_budget_cap_sat",
];

/// Why a configuration file is not usable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigFileError {
    /// Not TOML.
    Syntax(String),
    /// A key that is no setting (a typo, or a setting of another program).
    UnknownKey {
        /// The key.
        key: String,
    },
    /// A setting's value of the wrong type (a string for a number, a negative count).
    BadValue {
        /// The key.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// A setting's value the engine refuses (out of its range).
    OutOfRange {
        /// The key.
        key: String,
        /// What is wrong.
        reason: String,
    },
}

impl std::fmt::Display for ConfigFileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigFileError::Syntax(e) => write!(f, "not TOML: {e}"),
            ConfigFileError::UnknownKey { key } => write!(
                f,
                "{key}: not a setting (the settings: {})",
                KEYS.join(", ")
            ),
            ConfigFileError::BadValue { key, reason }
            | ConfigFileError::OutOfRange { key, reason } => {
                write!(f, "{key}: {reason}")
            }
        }
    }
}

impl std::error::Error for ConfigFileError {}

impl EngineSettings {
    /// The settings of a configuration file's text, each checked: unknown keys, values of the
    /// wrong type and values the engine refuses are errors naming their key.
    pub fn from_toml(text: &str) -> Result<EngineSettings, ConfigFileError> {
        let table: toml::Table =
            toml::from_str(text).map_err(|e| ConfigFileError::Syntax(e.message().to_string()))?;
        let mut settings = EngineSettings::default();
        for (key, value) in table {
            if !KEYS.contains(&key.as_str()) {
                return Err(ConfigFileError::UnknownKey { key });
            }
            let mut one = toml::Table::new();
            one.insert(key.clone(), value);
            let parsed: EngineSettings =
                one.try_into()
                    .map_err(|e: toml::de::Error| ConfigFileError::BadValue {
                        key: key.clone(),
                        reason: e.message().to_string(),
                    })?;
            settings = parsed.over(settings);
        }
        settings
            .apply(Config::default())
            .map_err(|e| out_of_range(&e.0))?;
        Ok(settings)
    }

    /// These settings, with `base`'s for the ones not set here (flags over a file).
    pub fn over(self, base: EngineSettings) -> EngineSettings {
        EngineSettings {
            reorg_safety_depth: self.reorg_safety_depth.or(base.reorg_safety_depth),
            archive_depth: self.archive_depth.or(base.archive_depth),
            cut_loss_blocks: self.cut_loss_blocks.or(base.cut_loss_blocks),
            outgoing_broadcast_delta: self
                .outgoing_broadcast_delta
                .or(base.outgoing_broadcast_delta),
            incoming_broadcast_delta: self
                .incoming_broadcast_delta
                .or(base.incoming_broadcast_delta),
            htlc_budget_percent: self.htlc_budget_percent.or(base.htlc_budget_percent),
            balance_budget_percent: self.balance_budget_percent.or(base.balance_budget_percent),
            balance_deadline_blocks: self
                .balance_deadline_blocks
                .or(base.balance_deadline_blocks),
            htlc_budget_cap_sat: self.htlc_budget_cap_sat.or(base.htlc_budget_cap_sat),
            balance_budget_cap_sat: self.balance_budget_cap_sat.or(base.balance_budget_cap_sat),
        }
    }
}

/// The engine's refusal (`--flag: reason`) in a file's terms (`key: reason`).
fn out_of_range(message: &str) -> ConfigFileError {
    let (flag, reason) = message
        .strip_prefix("--")
        .and_then(|m| m.split_once(": "))
        .unwrap_or(("settings", message));
    ConfigFileError::OutOfRange {
        key: flag.replace('-', "_"),
        reason: reason.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_sets_what_it_names_and_nothing_else() {
        let s = EngineSettings::from_toml("reorg_safety_depth = 3\nhtlc_budget_cap_sat = 5000\n")
            .expect("valid");
        assert_eq!(s.reorg_safety_depth, Some(3));
        assert_eq!(s.htlc_budget_cap_sat, Some(5000));
        assert_eq!(
            EngineSettings {
                reorg_safety_depth: None,
                htlc_budget_cap_sat: None,
                ..s
            },
            EngineSettings::default()
        );
    }

    #[test]
    fn every_key_is_a_setting_and_every_setting_a_key() {
        // Each key alone sets exactly one field.
        for key in KEYS {
            let s = EngineSettings::from_toml(&format!("{key} = 50")).expect(key);
            assert_ne!(s, EngineSettings::default(), "{key}");
        }
        // And the settings serialise to exactly these keys.
        let all = EngineSettings::from_toml(
            &KEYS
                .iter()
                .map(|k| format!("{k} = 50\n"))
                .collect::<String>(),
        )
        .expect("all");
        let value = serde_json::to_value(&all).expect("json");
        let mut names: Vec<&str> = value
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        names.sort_unstable();
        let mut keys = KEYS.to_vec();
        keys.sort_unstable();
        assert_eq!(names, keys);
    }

    #[test]
    fn a_bad_key_or_value_is_a_typed_error_naming_the_key() {
        assert_eq!(
            EngineSettings::from_toml("reorg_safety_dept = 3"),
            Err(ConfigFileError::UnknownKey {
                key: "reorg_safety_dept".into()
            })
        );
        assert!(matches!(
            EngineSettings::from_toml("htlc_budget_percent = \"thirty\""),
            Err(ConfigFileError::BadValue { key, .. }) if key == "htlc_budget_percent"
        ));
        assert!(matches!(
            EngineSettings::from_toml("archive_depth = -1"),
            Err(ConfigFileError::BadValue { key, .. }) if key == "archive_depth"
        ));
        assert!(matches!(
            EngineSettings::from_toml("htlc_budget_percent = 101"),
            Err(ConfigFileError::OutOfRange { key, .. }) if key == "htlc_budget_percent"
        ));
        assert!(matches!(
            EngineSettings::from_toml("reorg_safety_depth = 0"),
            Err(ConfigFileError::OutOfRange { key, .. }) if key == "reorg_safety_depth"
        ));
        assert!(matches!(
            EngineSettings::from_toml("reorg_safety_depth = "),
            Err(ConfigFileError::Syntax(_))
        ));
    }

    #[test]
    fn flags_override_the_file() {
        let file =
            EngineSettings::from_toml("reorg_safety_depth = 3\narchive_depth = 50").expect("valid");
        let flags = EngineSettings {
            reorg_safety_depth: Some(9),
            ..EngineSettings::default()
        };
        let merged = flags.over(file);
        assert_eq!(merged.reorg_safety_depth, Some(9), "the flag wins");
        assert_eq!(merged.archive_depth, Some(50), "the file fills the rest");
    }
}
