//! The config file (`ingot.toml` by default) and its `INGOT_…` environment overrides.
//!
//! Every key can be overridden from the environment: `INGOT_CATALOG__URI` sets
//! `catalog.uri`, `INGOT_TOPICS__0__TABLE` sets `table` of the first `[[topics]]` entry.
//! Values are read as TOML when they parse as such (numbers, booleans, arrays), else as text.

use std::path::{Path, PathBuf};

use ingot_ingest::{IngestConfig, KafkaConfig, TopicConfig};
use ingot_lake::CatalogConfig;
use serde::Deserialize;

use ingot_lineage::LineageConfig;
use ingot_transforms::{ScheduleConfig, TransformConfig};

use crate::jobs::maintenance::MaintenanceConfig;

const ENV_PREFIX: &str = "INGOT_";

/// All of ingot's settings.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub catalog: CatalogConfig,
    #[serde(default)]
    pub kafka: KafkaConfig,
    #[serde(default)]
    pub ingest: IngestConfig,
    #[serde(default)]
    pub contracts: ContractsConfig,
    #[serde(default)]
    pub topics: Vec<TopicConfig>,
    #[serde(default)]
    pub maintenance: MaintenanceConfig,
    /// When `ingot run` runs the transforms.
    #[serde(default)]
    pub transform: ScheduleConfig,
    /// Silver and gold tables, each from a SQL file.
    #[serde(default)]
    pub transforms: Vec<TransformConfig>,
    /// Where OpenLineage events go.
    #[serde(default)]
    pub lineage: LineageConfig,
    /// The HTTP API.
    #[serde(default)]
    pub api: crate::api::ApiConfig,
    /// Bounds of every ad-hoc query (the API's and `ingot query`'s).
    #[serde(default)]
    pub query: ingot_transforms::query::QueryLimits,
    /// Actions `ingot run` performs at cron times.
    #[serde(default)]
    pub schedule: Vec<crate::schedule::ScheduleEntry>,
    #[serde(default)]
    pub scheduler: crate::schedule::SchedulerConfig,
    /// How `ingot run` stops.
    #[serde(default)]
    pub service: crate::service::ServiceConfig,
    /// Where `ingot run` serves its metrics.
    #[serde(default)]
    pub metrics: crate::telemetry::MetricsConfig,
}

/// Where the `.proto` contracts live.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ContractsConfig {
    /// Directory searched recursively for `.proto` files; also the import root.
    #[serde(default = "default_contracts_dir")]
    pub dir: PathBuf,
}

fn default_contracts_dir() -> PathBuf {
    PathBuf::from("proto/contracts")
}

impl Default for ContractsConfig {
    fn default() -> Self {
        Self { dir: default_contracts_dir() }
    }
}

/// A config that cannot be used, naming the file and the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: cannot read: {source}")]
    Read { file: PathBuf, source: std::io::Error },
    #[error("{file}: {message}")]
    Parse { file: PathBuf, message: String },
    #[error("{file}: key `{key}`: {message}")]
    Key { file: PathBuf, key: String, message: String },
    #[error("environment variable {var}: {message}")]
    Env { var: String, message: String },
}

impl Config {
    /// Reads the file (a missing default file means all defaults), applies environment
    /// overrides, and resolves relative paths against the file's directory.
    pub fn load(file: &Path, required: bool) -> Result<Self, ConfigError> {
        let text = match std::fs::read_to_string(file) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => String::new(),
            Err(source) => return Err(ConfigError::Read { file: file.into(), source }),
        };
        Self::from_toml(&text, file, std::env::vars())
    }

    /// Parses config text; `vars` supplies the environment (tests pass their own).
    pub fn from_toml(
        text: &str,
        file: &Path,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut value: toml::Value = toml::from_str::<toml::Table>(text)
            .map(toml::Value::Table)
            .map_err(|e| ConfigError::Parse { file: file.into(), message: e.to_string() })?;
        // Only the config's own sections: other `INGOT_…` variables (`INGOT_LOG`,
        // `INGOT_CONFIG`, the test scripts' own) are not overrides.
        let sections = crate::config_fields::fields_of::<Config>();
        for (var, raw) in vars {
            let Some(path) = var.strip_prefix(ENV_PREFIX) else { continue };
            let section = path.split("__").next().unwrap_or_default().to_lowercase();
            if sections.contains(&section.as_str()) {
                apply_override(&mut value, path, &raw)
                    .map_err(|message| ConfigError::Env { var: var.clone(), message })?;
            }
        }
        let mut config: Config = serde_path_to_error::deserialize(value).map_err(|e| ConfigError::Key {
            file: file.into(),
            key: e.path().to_string(),
            message: e.inner().to_string(),
        })?;
        config.resolve_paths(file.parent().unwrap_or(Path::new(".")));
        config.validate(file)?;
        Ok(config)
    }

    fn resolve_paths(&mut self, base: &Path) {
        let resolve = |p: &Path| if p.is_absolute() { p.to_path_buf() } else { base.join(p) };
        self.contracts.dir = resolve(&self.contracts.dir);
        self.lineage.spool_dir = resolve(&self.lineage.spool_dir);
        self.scheduler.state_file = resolve(&self.scheduler.state_file);
        if let Some(path) = &self.lineage.path {
            self.lineage.path = Some(resolve(path));
        }
        for transform in &mut self.transforms {
            transform.sql = resolve(&transform.sql);
        }
        if let Some(path) = self.catalog.uri.expose().strip_prefix("sqlite://") {
            self.catalog.uri = format!("sqlite://{}", resolve(Path::new(path)).display()).into();
        }
        if !self.catalog.warehouse.contains("://") {
            self.catalog.warehouse = resolve(Path::new(&self.catalog.warehouse)).display().to_string();
        }
    }

    fn validate(&self, file: &Path) -> Result<(), ConfigError> {
        let key_error =
            |key: String, message: &str| ConfigError::Key { file: file.into(), key, message: message.into() };
        let mut seen = std::collections::HashSet::new();
        for (i, topic) in self.topics.iter().enumerate() {
            if !seen.insert(&topic.topic) {
                return Err(key_error(format!("topics[{i}].topic"), "topic is configured twice"));
            }
        }
        let flush = &self.ingest.flush;
        if flush.rows == 0 {
            return Err(key_error("ingest.flush.rows".into(), "must be at least 1"));
        }
        if flush.interval.is_zero() {
            return Err(key_error("ingest.flush.interval".into(), "must be longer than zero"));
        }
        if self.service.lease_ttl < std::time::Duration::from_secs(1) {
            return Err(key_error("service.lease_ttl".into(), "must be at least 1s"));
        }
        if ingot_lake::parse_ident(&self.service.lease_table).is_err() {
            return Err(key_error("service.lease_table".into(), "must look like <namespace>.<table>"));
        }
        Ok(())
    }
}

/// Sets `a__b__0__c` in the TOML tree, creating tables on the way.
fn apply_override(root: &mut toml::Value, path: &str, raw: &str) -> Result<(), String> {
    let segments: Vec<String> = path.split("__").map(str::to_lowercase).collect();
    if segments.iter().any(String::is_empty) {
        return Err("empty key segment (use `__` between keys)".into());
    }
    let parsed = toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()));
    let mut node = root;
    for (i, segment) in segments.iter().enumerate() {
        let last = i + 1 == segments.len();
        node = match node {
            toml::Value::Table(table) => {
                if last {
                    table.insert(segment.clone(), parsed);
                    return Ok(());
                }
                table.entry(segment.clone()).or_insert_with(|| toml::Value::Table(toml::Table::new()))
            }
            toml::Value::Array(items) => {
                let index: usize =
                    segment.parse().map_err(|_| format!("`{segment}` is not an array index"))?;
                let item = items.get_mut(index).ok_or_else(|| format!("there is no entry {index}"))?;
                if last {
                    *item = parsed;
                    return Ok(());
                }
                item
            }
            _ => return Err(format!("`{segment}` is below a plain value")),
        };
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str, vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_toml(
            text,
            Path::new("/etc/ingot/ingot.toml"),
            vars.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        )
    }

    #[test]
    fn bad_value_names_the_key_and_the_file() {
        let err = parse("[ingest.flush]\nrows = \"many\"\n", &[]).unwrap_err().to_string();
        assert!(err.starts_with("/etc/ingot/ingot.toml: key `ingest.flush.rows`"), "{err}");
    }

    #[test]
    fn unknown_key_is_refused() {
        let err = parse("[kafka]\nbrokers = \"x:1\"\nbroker = \"typo\"\n", &[]).unwrap_err().to_string();
        assert!(err.contains("key `kafka.broker`: unknown field"), "{err}");
    }

    #[test]
    fn env_overrides_any_key() {
        let config = parse(
            "[[topics]]\ntopic = \"orders\"\nmessage = \"a.B\"\n",
            &[
                ("INGOT_KAFKA__BROKERS", "h:1"),
                ("INGOT_INGEST__FLUSH__ROWS", "42"),
                ("INGOT_TOPICS__0__TABLE", "o"),
            ],
        )
        .unwrap();
        assert_eq!(config.kafka.brokers, "h:1");
        assert_eq!(config.ingest.flush.rows, 42);
        assert_eq!(config.topics[0].table.as_deref(), Some("o"));
    }

    #[test]
    fn relative_paths_resolve_against_the_config_file() {
        let config = parse("", &[]).unwrap();
        assert_eq!(config.contracts.dir, PathBuf::from("/etc/ingot/proto/contracts"));
        assert_eq!(config.catalog.uri.expose(), "sqlite:///etc/ingot/ingot-data/catalog.db");
    }

    #[test]
    fn kafka_properties_take_numbers_from_file_and_env() {
        let config = parse(
            "[kafka.properties]\n\"fetch.min.bytes\" = 1\n",
            &[("INGOT_KAFKA__PROPERTIES__FETCH.WAIT.MAX.MS", "50")],
        )
        .unwrap();
        assert_eq!(config.kafka.properties["fetch.min.bytes"], "1");
        assert_eq!(config.kafka.properties["fetch.wait.max.ms"], "50");
    }

    /// Every section the config declares takes overrides: a key no section has is refused
    /// naming it (an ignored variable would be silent), for tables and arrays of tables alike.
    #[test]
    fn every_section_takes_environment_overrides() {
        let sections = crate::config_fields::fields_of::<Config>();
        assert!(sections.len() >= 15, "{sections:?}");
        let base = "[[topics]]\ntopic = \"t\"\nmessage = \"a.B\"\n[[transforms]]\ntable = \"s.t\"\nkind = \"silver\"\nsql = \"x.sql\"\ninput = \"b.t\"\nevent_time = \"ts\"\n[[schedule]]\nname = \"n\"\ncron = \"0 3 * * *\"\naction = \"maintain\"\n";
        for section in sections {
            let array = matches!(*section, "topics" | "transforms" | "schedule");
            let var = match array {
                true => format!("INGOT_{}__0__NO_SUCH_KEY", section.to_uppercase()),
                false => format!("INGOT_{}__NO_SUCH_KEY", section.to_uppercase()),
            };
            let err = parse(base, &[(&var, "1")]).unwrap_err().to_string();
            let key =
                if array { format!("{section}[0].no_such_key") } else { format!("{section}.no_such_key") };
            assert!(err.contains(&format!("key `{key}`")), "{var}: {err}");
        }
    }

    /// Every key of every table section can be set from the environment: setting it changes
    /// the config or is refused naming the key, never ignored.
    #[test]
    fn every_key_of_every_section_takes_an_environment_override() {
        use crate::config_fields::fields_of;
        let sections: [(&str, &[&str]); 12] = [
            ("catalog", fields_of::<ingot_lake::CatalogConfig>()),
            ("kafka", fields_of::<ingot_ingest::KafkaConfig>()),
            ("ingest", fields_of::<ingot_ingest::IngestConfig>()),
            ("contracts", fields_of::<ContractsConfig>()),
            ("maintenance", fields_of::<MaintenanceConfig>()),
            ("transform", fields_of::<ingot_transforms::ScheduleConfig>()),
            ("lineage", fields_of::<LineageConfig>()),
            ("api", fields_of::<crate::api::ApiConfig>()),
            ("query", fields_of::<ingot_transforms::query::QueryLimits>()),
            ("scheduler", fields_of::<crate::schedule::SchedulerConfig>()),
            ("service", fields_of::<crate::service::ServiceConfig>()),
            ("metrics", fields_of::<crate::telemetry::MetricsConfig>()),
        ];
        let default = format!("{:?}", parse("", &[]).unwrap());
        for (section, keys) in sections {
            assert!(!keys.is_empty(), "{section}");
            for key in keys {
                let var = format!("INGOT_{}__{}", section.to_uppercase(), key.to_uppercase());
                // A value of the key's type, whatever it is, changes the config; a value of
                // another type is refused naming the key.
                let applied =
                    ["7", "true", "1s", "\"1s\"", "elsewhere", "7MiB", "none", "{}"].iter().any(|value| {
                        match parse("", &[(&var, value)]) {
                            Ok(config) => format!("{config:?}") != default,
                            Err(e) => e.to_string().contains(&format!("{section}.{key}")),
                        }
                    });
                assert!(applied, "{var} changes nothing and is not refused");
            }
        }
    }

    #[test]
    fn no_secret_shows_in_the_config_debug() {
        let config = parse(
            "[catalog]\nuri = \"postgres://ingot:planted-pw@db/lake\"\n[lineage]\nurl = \"http://ol:planted-ol@marquez:5000\"\n",
            &[("INGOT_KAFKA__PROPERTIES__SASL.PASSWORD", "planted-sasl")],
        )
        .unwrap();
        let shown = format!("{config:?}");
        for planted in ["planted-pw", "planted-ol", "planted-sasl"] {
            assert!(!shown.contains(planted), "{planted} in {shown}");
        }
        assert!(shown.contains("postgres://ingot:***@db/lake"), "{shown}");
        assert_eq!(config.kafka.properties["sasl.password"], "planted-sasl");
    }

    #[test]
    fn durations_are_humantime() {
        let config = parse("[ingest.flush]\ninterval = \"250ms\"\n", &[]).unwrap();
        assert_eq!(config.ingest.flush.interval, std::time::Duration::from_millis(250));
    }
}
