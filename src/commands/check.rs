//! `ingot check`: is this config usable, without touching Kafka, the catalog or storage?
//! Parses it (env overrides included), resolves every topic's message in the contracts and
//! reads every transform's SQL, so CI and a container build can catch a broken deployment
//! before it starts.

use ingot_proto::ContractRegistry;

use super::CliError;
use crate::config::Config;
use crate::output::outln;

pub fn check(config: &Config, file: &std::path::Path) -> Result<(), CliError> {
    let registry = ContractRegistry::load(&config.contracts.dir)?;
    for topic in &config.topics {
        registry.message(&topic.message)?;
    }
    for transform in &config.transforms {
        transform.read_sql()?;
    }
    crate::schedule::validate(&config.schedule).map_err(CliError::Usage)?;
    outln!(
        "{}: ok ({} topics, {} transforms, catalog {} at {})",
        file.display(),
        config.topics.len(),
        config.transforms.len(),
        config.catalog.kind,
        config.catalog.warehouse
    );
    Ok(())
}
