//! `serve`'s settings: from flags, a TOML file (`--config`; keys are the flags' names with `_`
//! for `-`, e.g. `poll_ms = 500`, and the engine's settings in an `[engine]` table, e.g.
//! `reorg_safety_depth = 3`), or both — a flag overrides the file — resolved into a
//! [`ServeConfig`] with typed errors.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::simulate::EngineSettings;

/// The longest wait a setting may ask for (a poll interval, a timeout, a lease): a hundred
/// years. The service counts its waits from the clock (`Instant` plus the wait), and a wait of
/// hundreds of billions of years (what `u64` seconds reach) has no deadline to count to.
pub const MAX_WAIT: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);

/// `value` of `flag` as a duration (`unit` converts it), at most [`MAX_WAIT`].
fn wait(
    flag: &'static str,
    value: u64,
    unit: fn(u64) -> Duration,
) -> Result<Duration, SettingsError> {
    let wait = unit(value);
    if wait > MAX_WAIT {
        return Err(SettingsError::Invalid(
            flag,
            format!("{value} is more than a hundred years"),
        ));
    }
    Ok(wait)
}

/// `serve`'s settings as given; `None` is unset.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, clap::Args)]
#[serde(deny_unknown_fields)]
pub struct ServeSettings {
    /// The engine's SQLite store (created if absent). Give this or --postgres.
    #[arg(long, value_name = "PATH", conflicts_with = "postgres")]
    pub db: Option<PathBuf>,
    /// The engine's store in PostgreSQL: a connection string (`host=/run/postgresql
    /// dbname=cc`) or URL (`postgresql://user@host/cc`). Two `serve`s on one store make a hot
    /// standby: one holds the store's lease and runs, the other waits and takes over within
    /// --lease-ms of the first one stopping (needs --regtest with the embedded chain).
    #[arg(long, value_name = "URL")]
    pub postgres: Option<String>,
    /// The PostgreSQL schema holding the store [default: contractcourt].
    #[arg(long, value_name = "NAME", requires = "postgres")]
    pub postgres_schema: Option<String>,
    /// How long the PostgreSQL store's lease lasts unrenewed: a standby takes over at most
    /// this long after the running `serve` died [default: 10000].
    #[arg(long, value_name = "MS", requires = "postgres")]
    pub lease_ms: Option<u64>,
    /// How long a lost PostgreSQL connection (a restarted or failed-over server) is tried
    /// again, with backoff, before `serve` stops with the error; 0: not at all [default: 60000].
    #[arg(long, value_name = "MS", requires = "postgres")]
    pub postgres_reconnect_ms: Option<u64>,
    /// The Unix socket the node connects to (created owner-only, 0600).
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// Follow bitcoind's JSON-RPC at URL (`http://host:port`).
    #[arg(long, value_name = "URL", conflicts_with_all = ["esplora", "regtest"])]
    pub bitcoind: Option<String>,
    /// bitcoind's cookie file (re-read after a 401) [default: none; give this or
    /// --bitcoind-user and --bitcoind-password].
    #[arg(long, value_name = "FILE")]
    pub bitcoind_cookie: Option<PathBuf>,
    /// bitcoind's RPC user.
    #[arg(long, value_name = "USER", requires = "bitcoind_password")]
    pub bitcoind_user: Option<String>,
    /// bitcoind's RPC password.
    #[arg(long, value_name = "PASSWORD", requires = "bitcoind_user")]
    pub bitcoind_password: Option<String>,
    /// Follow the Esplora API at URL (with its prefix, e.g. `http://127.0.0.1:3002/api`).
    #[arg(long, value_name = "URL", conflicts_with = "regtest")]
    pub esplora: Option<String>,
    /// Follow the embedded regtest chain kept in DIR [the default, in PATH.chain beside --db].
    #[arg(long, value_name = "DIR")]
    pub regtest: Option<PathBuf>,
    /// Milliseconds between two polls of the chain source [default: 2000].
    #[arg(long, value_name = "MS")]
    pub poll_ms: Option<u64>,
    /// Seconds the chain source may stay unreachable before an alert [default: 600].
    #[arg(long, value_name = "SECS")]
    pub outage_alert_secs: Option<u64>,
    /// The longest wait between two retries of an unreachable source, in ms [default: 60000].
    #[arg(long, value_name = "MS")]
    pub max_backoff_ms: Option<u64>,
    /// Seconds to wait for the node's answer to a sign or funding request [default: 30].
    #[arg(long, value_name = "SECS")]
    pub node_timeout_secs: Option<u64>,
    /// A new store follows the chain from this height [default: the source's tip at the
    /// first start].
    #[arg(long, value_name = "HEIGHT")]
    pub start_height: Option<u32>,
    /// Where claims pay to: the scriptPubKey, in hex (the node's wallet) [default: the store's
    /// setting; without one the engine cannot sweep].
    #[arg(long, value_name = "HEX")]
    pub sweep_script: Option<String>,
    /// The fee rate claims are priced at until the source gives fee conditions, in sat/vB
    /// [default: the engine's, 2].
    #[arg(long, value_name = "SAT_PER_VB")]
    pub fallback_sat_per_vb: Option<u32>,
    /// The engine's settings (`simulate`'s: `--reorg-safety-depth`, the budgets, ...); in the
    /// TOML file, an `[engine]` table. Unset ones keep the store's (or the core's defaults).
    #[command(flatten, next_help_heading = "Engine settings")]
    #[serde(default)]
    pub engine: EngineSettings,
}

/// Where the chain comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SourceConfig {
    /// bitcoind's JSON-RPC.
    Bitcoind {
        /// The URL.
        url: String,
        /// The credentials.
        auth: RpcAuth,
    },
    /// An Esplora server.
    Esplora {
        /// The API's base URL.
        url: String,
    },
    /// The embedded regtest chain kept in a directory.
    Regtest {
        /// The directory.
        dir: PathBuf,
    },
}

/// bitcoind's RPC credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RpcAuth {
    /// A cookie file, read at start and again after every 401.
    Cookie(PathBuf),
    /// A user and a password.
    UserPass(String, String),
    /// None (a node without RPC authentication, or a proxy that adds it).
    None,
}

/// Where the engine's store is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreConfig {
    /// A SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL schema, with a lease (hot standby).
    Postgres(crate::store::PostgresConfig),
}

impl std::fmt::Display for StoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreConfig::Sqlite(path) => write!(f, "{}", path.display()),
            // Not the connection string: it may hold a password.
            StoreConfig::Postgres(pg) => write!(f, "postgres schema {}", pg.schema),
        }
    }
}

/// `serve`'s resolved settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServeConfig {
    /// The store.
    pub store: StoreConfig,
    /// The node's socket.
    pub socket: PathBuf,
    /// The chain source.
    pub source: SourceConfig,
    /// Between two polls.
    pub poll: Duration,
    /// An unreachable source is alerted after this long.
    pub outage_alert: Duration,
    /// The longest wait between two retries.
    pub max_backoff: Duration,
    /// The wait for the node's answer to a sign or funding request.
    pub node_timeout: Duration,
    /// Where a new store starts following the chain (`None`: the source's tip).
    pub start_height: Option<u32>,
    /// Where claims pay to, and the fee rate before fee conditions arrive.
    pub sweep: Option<(bitcoin::ScriptBuf, bitcoin::FeeRate)>,
    /// The engine's settings, over the store's configuration.
    pub engine: EngineSettings,
}

/// Why the settings do not make a configuration.
#[derive(Debug, PartialEq, Eq)]
pub enum SettingsError {
    /// The TOML file is not valid (syntax, unknown key, wrong type).
    File(String),
    /// A required setting is missing.
    Missing(&'static str),
    /// Two settings exclude each other.
    Conflict(&'static str, &'static str),
    /// A setting's value is not valid.
    Invalid(&'static str, String),
}

impl std::fmt::Display for SettingsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SettingsError::File(e) => write!(f, "config file: {e}"),
            SettingsError::Missing(flag) => write!(f, "--{flag} is required"),
            SettingsError::Conflict(a, b) => write!(f, "--{a} and --{b} exclude each other"),
            SettingsError::Invalid(flag, why) => write!(f, "--{flag}: {why}"),
        }
    }
}

impl std::error::Error for SettingsError {}

impl ServeSettings {
    /// The settings of a TOML file.
    pub fn from_toml(text: &str) -> Result<ServeSettings, SettingsError> {
        toml::from_str(text).map_err(|e| SettingsError::File(e.message().to_string()))
    }

    /// These settings over `base`: each one set here wins.
    pub fn over(self, base: ServeSettings) -> ServeSettings {
        ServeSettings {
            db: self.db.or(base.db),
            postgres: self.postgres.or(base.postgres),
            postgres_schema: self.postgres_schema.or(base.postgres_schema),
            lease_ms: self.lease_ms.or(base.lease_ms),
            postgres_reconnect_ms: self.postgres_reconnect_ms.or(base.postgres_reconnect_ms),
            socket: self.socket.or(base.socket),
            bitcoind: self.bitcoind.or(base.bitcoind),
            bitcoind_cookie: self.bitcoind_cookie.or(base.bitcoind_cookie),
            bitcoind_user: self.bitcoind_user.or(base.bitcoind_user),
            bitcoind_password: self.bitcoind_password.or(base.bitcoind_password),
            esplora: self.esplora.or(base.esplora),
            regtest: self.regtest.or(base.regtest),
            poll_ms: self.poll_ms.or(base.poll_ms),
            outage_alert_secs: self.outage_alert_secs.or(base.outage_alert_secs),
            max_backoff_ms: self.max_backoff_ms.or(base.max_backoff_ms),
            node_timeout_secs: self.node_timeout_secs.or(base.node_timeout_secs),
            start_height: self.start_height.or(base.start_height),
            sweep_script: self.sweep_script.or(base.sweep_script),
            fallback_sat_per_vb: self.fallback_sat_per_vb.or(base.fallback_sat_per_vb),
            engine: self.engine.over(base.engine),
        }
    }

    /// The configuration, or what is missing or contradictory.
    pub fn resolve(self) -> Result<ServeConfig, SettingsError> {
        let postgres_only = self.postgres_schema.is_some()
            || self.lease_ms.is_some()
            || self.postgres_reconnect_ms.is_some();
        let store = match (self.db, self.postgres) {
            (Some(_), Some(_)) => return Err(SettingsError::Conflict("db", "postgres")),
            (None, None) => return Err(SettingsError::Missing("db")),
            (Some(db), None) => StoreConfig::Sqlite(db),
            (None, Some(url)) => {
                let mut pg = crate::store::PostgresConfig::new(url);
                if let Some(schema) = self.postgres_schema {
                    pg.schema = schema;
                }
                if let Some(ms) = self.lease_ms {
                    if ms == 0 {
                        return Err(SettingsError::Invalid(
                            "lease-ms",
                            "must be positive".into(),
                        ));
                    }
                    pg.lease = wait("lease-ms", ms, Duration::from_millis)?;
                }
                if let Some(ms) = self.postgres_reconnect_ms {
                    pg.reconnect = wait("postgres-reconnect-ms", ms, Duration::from_millis)?;
                }
                StoreConfig::Postgres(pg)
            }
        };
        if postgres_only && !matches!(store, StoreConfig::Postgres(_)) {
            return Err(SettingsError::Missing("postgres"));
        }
        let socket = self.socket.ok_or(SettingsError::Missing("socket"))?;
        let source = match (self.bitcoind, self.esplora, self.regtest) {
            (Some(_), Some(_), _) => return Err(SettingsError::Conflict("bitcoind", "esplora")),
            (Some(_), _, Some(_)) => return Err(SettingsError::Conflict("bitcoind", "regtest")),
            (_, Some(_), Some(_)) => return Err(SettingsError::Conflict("esplora", "regtest")),
            (Some(url), None, None) => SourceConfig::Bitcoind {
                url,
                auth: match (
                    self.bitcoind_cookie,
                    self.bitcoind_user,
                    self.bitcoind_password,
                ) {
                    (Some(_), Some(_), _) => {
                        return Err(SettingsError::Conflict("bitcoind-cookie", "bitcoind-user"))
                    }
                    (Some(cookie), None, _) => RpcAuth::Cookie(cookie),
                    (None, Some(user), Some(password)) => RpcAuth::UserPass(user, password),
                    (None, Some(_), None) => {
                        return Err(SettingsError::Missing("bitcoind-password"))
                    }
                    (None, None, _) => RpcAuth::None,
                },
            },
            (None, Some(url), None) => SourceConfig::Esplora { url },
            (None, None, Some(dir)) => SourceConfig::Regtest { dir },
            (None, None, None) => match &store {
                StoreConfig::Sqlite(db) => {
                    let mut name = db.clone().into_os_string();
                    name.push(".chain");
                    SourceConfig::Regtest {
                        dir: PathBuf::from(name),
                    }
                }
                StoreConfig::Postgres(_) => return Err(SettingsError::Missing("regtest")),
            },
        };
        let sweep = match self.sweep_script {
            Some(hex) => {
                let script = bitcoin::ScriptBuf::from_hex(&hex)
                    .map_err(|e| SettingsError::Invalid("sweep-script", e.to_string()))?;
                let rate = match self.fallback_sat_per_vb {
                    Some(rate) => bitcoin::FeeRate::from_sat_per_vb(u64::from(rate)).ok_or(
                        SettingsError::Invalid("fallback-sat-per-vb", "too large".into()),
                    )?,
                    None => contractcourt_core::chain::DEFAULT_FALLBACK_FEERATE,
                };
                Some((script, rate))
            }
            None => None,
        };
        Ok(ServeConfig {
            store,
            socket,
            source,
            poll: wait(
                "poll-ms",
                self.poll_ms.unwrap_or(2000),
                Duration::from_millis,
            )?,
            outage_alert: wait(
                "outage-alert-secs",
                self.outage_alert_secs.unwrap_or(600),
                Duration::from_secs,
            )?,
            max_backoff: wait(
                "max-backoff-ms",
                self.max_backoff_ms.unwrap_or(60_000),
                Duration::from_millis,
            )?,
            node_timeout: wait(
                "node-timeout-secs",
                self.node_timeout_secs.unwrap_or(30),
                Duration::from_secs,
            )?,
            start_height: self.start_height,
            sweep,
            engine: self.engine,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flag_overrides_the_file_and_the_default_source_is_the_embedded_chain_beside_the_db() {
        let file = ServeSettings::from_toml(
            "db = \"/var/cc.db\"\nsocket = \"/run/cc.sock\"\npoll_ms = 500\n\n[engine]\nreorg_safety_depth = 3\narchive_depth = 50\n",
        )
        .unwrap();
        let flags = ServeSettings {
            poll_ms: Some(100),
            engine: EngineSettings {
                archive_depth: Some(80),
                ..EngineSettings::default()
            },
            ..ServeSettings::default()
        };
        let config = flags.over(file).resolve().unwrap();
        assert_eq!(config.poll, Duration::from_millis(100));
        assert_eq!(config.engine.reorg_safety_depth, Some(3));
        assert_eq!(config.engine.archive_depth, Some(80));
        assert_eq!(
            config.source,
            SourceConfig::Regtest {
                dir: PathBuf::from("/var/cc.db.chain")
            }
        );
    }

    /// Found by the `settings_toml` fuzz target: a wait no deadline can be counted to was
    /// accepted, and `serve` panicked adding the node timeout to the clock at its first sign
    /// request (`--node-timeout-secs 18446744073709551615`).
    #[test]
    fn a_wait_beyond_a_hundred_years_is_a_typed_error_naming_its_flag() {
        let base = || ServeSettings::from_toml("db = \"a\"\nsocket = \"b\"").unwrap();
        let longest = MAX_WAIT.as_secs();
        type Overlay = fn(u64) -> ServeSettings;
        let cases: [(&str, Overlay); 4] = [
            ("node-timeout-secs", |v| ServeSettings {
                node_timeout_secs: Some(v),
                ..ServeSettings::default()
            }),
            ("outage-alert-secs", |v| ServeSettings {
                outage_alert_secs: Some(v),
                ..ServeSettings::default()
            }),
            ("poll-ms", |v| ServeSettings {
                poll_ms: Some(v.saturating_mul(1000)),
                ..ServeSettings::default()
            }),
            ("max-backoff-ms", |v| ServeSettings {
                max_backoff_ms: Some(v.saturating_mul(1000)),
                ..ServeSettings::default()
            }),
        ];
        for (flag, set) in cases {
            assert!(set(longest).over(base()).resolve().is_ok(), "{flag}");
            for value in [longest + 1, u64::MAX] {
                assert!(
                    matches!(
                        set(value).over(base()).resolve(),
                        Err(SettingsError::Invalid(f, _)) if f == flag
                    ),
                    "{flag} {value}"
                );
            }
        }
        let pg = ServeSettings::from_toml(
            "postgres = \"host=/run/pg\"\nsocket = \"b\"\nregtest = \"/chain\"",
        )
        .unwrap();
        for (flag, settings) in [
            (
                "lease-ms",
                ServeSettings {
                    lease_ms: Some(u64::MAX),
                    ..pg.clone()
                },
            ),
            (
                "postgres-reconnect-ms",
                ServeSettings {
                    postgres_reconnect_ms: Some(u64::MAX),
                    ..pg.clone()
                },
            ),
        ] {
            assert!(
                matches!(settings.resolve(), Err(SettingsError::Invalid(f, _)) if f == flag),
                "{flag}"
            );
        }
    }

    #[test]
    fn unknown_keys_missing_and_conflicting_settings_are_typed_errors() {
        assert!(matches!(
            ServeSettings::from_toml("pol_ms = 5"),
            Err(SettingsError::File(_))
        ));
        assert_eq!(
            ServeSettings::default().resolve(),
            Err(SettingsError::Missing("db"))
        );
        let both = ServeSettings::from_toml(
            "db = \"a\"\nsocket = \"b\"\nbitcoind = \"http://x\"\nesplora = \"http://y\"",
        )
        .unwrap();
        assert_eq!(
            both.resolve(),
            Err(SettingsError::Conflict("bitcoind", "esplora"))
        );
        let cookie = ServeSettings::from_toml(
            "db = \"a\"\nsocket = \"b\"\nbitcoind = \"http://x\"\nbitcoind_cookie = \"/c\"",
        )
        .unwrap();
        assert_eq!(
            cookie.resolve().unwrap().source,
            SourceConfig::Bitcoind {
                url: "http://x".into(),
                auth: RpcAuth::Cookie("/c".into())
            }
        );
    }

    #[test]
    fn postgres_is_an_alternative_to_db_with_a_schema_and_a_lease() {
        let pg = ServeSettings::from_toml(
            "postgres = \"host=/run/pg\"\npostgres_schema = \"node_a\"\nlease_ms = 2500\n\
             postgres_reconnect_ms = 7000\nsocket = \"b\"\nregtest = \"/chain\"",
        )
        .unwrap();
        let config = pg.clone().resolve().unwrap();
        assert_eq!(
            config.store,
            StoreConfig::Postgres(crate::store::PostgresConfig {
                url: "host=/run/pg".into(),
                schema: "node_a".into(),
                lease: Duration::from_millis(2500),
                reconnect: Duration::from_millis(7000),
            })
        );
        let defaults = ServeSettings::from_toml(
            "postgres = \"host=/run/pg\"\nsocket = \"b\"\nregtest = \"/chain\"",
        )
        .unwrap()
        .resolve()
        .unwrap();
        let StoreConfig::Postgres(defaults) = defaults.store else {
            panic!("a postgres store");
        };
        assert_eq!(defaults.schema, "contractcourt");
        assert_eq!(defaults.lease, Duration::from_secs(10));
        assert_eq!(defaults.reconnect, Duration::from_secs(60));
        let both = ServeSettings {
            db: Some("a".into()),
            ..pg.clone()
        };
        assert_eq!(
            both.resolve(),
            Err(SettingsError::Conflict("db", "postgres"))
        );
        let no_chain = ServeSettings {
            regtest: None,
            ..pg.clone()
        };
        assert_eq!(no_chain.resolve(), Err(SettingsError::Missing("regtest")));
        let zero = ServeSettings {
            lease_ms: Some(0),
            ..pg.clone()
        };
        assert!(matches!(
            zero.resolve(),
            Err(SettingsError::Invalid("lease-ms", _))
        ));
        let lease_without_postgres = ServeSettings {
            postgres: None,
            db: Some("a".into()),
            ..pg
        };
        assert_eq!(
            lease_without_postgres.resolve(),
            Err(SettingsError::Missing("postgres"))
        );
    }
}
