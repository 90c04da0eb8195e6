//! Leases: which of several ingot instances may do the work only one may do at a time
//! (transforms, maintenance, scheduled actions).
//!
//! A lease is a property of a small table in the catalog (`ingot.lease.<name>` on the table
//! `service.lease_table` names), taken, renewed and released through the catalog's own
//! compare-and-swap — the same swap every commit uses — so it works on every catalog ingot
//! supports and needs no other service. A holder's claim says who holds it and until when;
//! anyone may take a lease whose time has run out, and each new holder gets the next term.
//! Expiry is judged by wall clocks: instances' clocks must agree to well within the lease
//! time (NTP does).

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arrow_schema::{DataType, Field, Schema};
use iceberg::TableIdent;
use iceberg::spec::{TableMetadata, TableMetadataBuilder};
use iceberg::table::Table;
use serde::{Deserialize, Serialize};

use crate::{Lake, LakeError, TableSpec};

/// How many times a claim is tried when other instances' claims keep winning the swap.
const CLAIM_ATTEMPTS: u32 = 10;

/// Old metadata files of the lease table kept in its log (every renewal writes one; the
/// ones that fall off the log are deleted at once, so the table stays a handful of files).
const KEPT_METADATA_FILES: &str = "2";

/// Who holds a lease, until when and in which term.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseClaim {
    pub holder: String,
    /// Milliseconds since the epoch at which the lease is free for anyone to take.
    pub expires_ms: i64,
    /// Counts holders: each change of holder is the next term, a renewal keeps it.
    pub term: u64,
}

impl LeaseClaim {
    fn live_at(&self, now_ms: i64) -> bool {
        self.expires_ms > now_ms
    }
}

/// The answer to a claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseOutcome {
    /// The caller holds the lease until `claim.expires_ms`.
    Held(LeaseClaim),
    /// Someone else does.
    HeldByOther(LeaseClaim),
}

impl Lake {
    /// Takes or renews lease `name` for `holder` for `ttl`, unless another holder's claim is
    /// still live. A lost swap is tried again with what the winner wrote; a lost answer is
    /// settled by reading the claim back.
    pub async fn claim_lease(
        &self,
        table: &TableIdent,
        name: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<LeaseOutcome, LakeError> {
        let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX / 2);
        let mut last_error = String::new();
        for attempt in 1..=CLAIM_ATTEMPTS {
            let base = self.lease_table(table).await?;
            let now = now_ms();
            let current = read_claim(&base, name)?;
            let term = match &current {
                Some(claim) if claim.holder != holder && claim.live_at(now) => {
                    return Ok(LeaseOutcome::HeldByOther(claim.clone()));
                }
                Some(claim) if claim.holder == holder && claim.live_at(now) => claim.term,
                Some(claim) => claim.term + 1,
                None => 1,
            };
            let claim = LeaseClaim { holder: holder.to_string(), expires_ms: now + ttl_ms, term };
            match self.swap_claim(&base, name, &claim).await {
                Ok(()) => return Ok(LeaseOutcome::Held(claim)),
                Err(LakeError::CommitConflict { .. }) => last_error = "another instance claimed first".into(),
                Err(e @ LakeError::CommitUnknown { .. }) => {
                    let after = self.lease_table(table).await?;
                    if read_claim(&after, name)?.as_ref() == Some(&claim) {
                        return Ok(LeaseOutcome::Held(claim));
                    }
                    last_error = e.to_string();
                }
                Err(e) => return Err(e),
            }
            tokio::time::sleep(Duration::from_millis(20 * u64::from(attempt))).await;
        }
        Err(LakeError::RetriesExhausted {
            what: format!("claim lease {name} on {table}"),
            attempts: CLAIM_ATTEMPTS,
            last: last_error,
        })
    }

    /// Gives lease `name` up if `holder` still holds it, so another instance need not wait
    /// for it to run out. Losing every race is not an error: the lease then runs out.
    pub async fn release_lease(&self, table: &TableIdent, name: &str, holder: &str) -> Result<(), LakeError> {
        for _ in 0..CLAIM_ATTEMPTS {
            let base = self.lease_table(table).await?;
            match read_claim(&base, name)? {
                Some(claim) if claim.holder == holder => {
                    let released = LeaseClaim { expires_ms: 0, ..claim };
                    match self.swap_claim(&base, name, &released).await {
                        Err(LakeError::CommitConflict { .. } | LakeError::CommitUnknown { .. }) => continue,
                        other => return other,
                    }
                }
                _ => return Ok(()),
            }
        }
        Ok(())
    }

    /// Who holds lease `name` (a claim whose time ran out is returned as it is).
    pub async fn read_lease(&self, table: &TableIdent, name: &str) -> Result<Option<LeaseClaim>, LakeError> {
        read_claim(&self.lease_table(table).await?, name)
    }

    /// Shared values kept beside the leases on the same table (`ingot.shared.<key>`), for
    /// what the coordinating instance must hand on to the next one (when each schedule last
    /// ran): the ones whose key starts with `prefix`.
    pub async fn read_shared(
        &self,
        table: &TableIdent,
        prefix: &str,
    ) -> Result<Vec<(String, String)>, LakeError> {
        let base = self.lease_table(table).await?;
        let full = format!("{SHARED_PREFIX}{prefix}");
        let mut values: Vec<(String, String)> = base
            .metadata()
            .properties()
            .iter()
            .filter_map(|(k, v)| {
                k.strip_prefix(SHARED_PREFIX)
                    .filter(|_| k.starts_with(&full))
                    .map(|k| (k.to_string(), v.clone()))
            })
            .collect();
        values.sort();
        Ok(values)
    }

    /// Sets shared value `key` (see [`Lake::read_shared`]) through the compare-and-swap; a
    /// lost race is tried again on the winner's state.
    pub async fn write_shared(&self, table: &TableIdent, key: &str, value: &str) -> Result<(), LakeError> {
        let mut last_error = String::new();
        for attempt in 1..=CLAIM_ATTEMPTS {
            let base = self.lease_table(table).await?;
            let property = (format!("{SHARED_PREFIX}{key}"), value.to_string());
            match self.swap_properties(&base, HashMap::from([property])).await {
                Ok(()) => return Ok(()),
                Err(e @ (LakeError::CommitConflict { .. } | LakeError::CommitUnknown { .. })) => {
                    // An unknown outcome is settled by the next read: setting it again is harmless.
                    last_error = e.to_string();
                }
                Err(e) => return Err(e),
            }
            tokio::time::sleep(Duration::from_millis(20 * u64::from(attempt))).await;
        }
        Err(LakeError::RetriesExhausted {
            what: format!("set {key} on {table}"),
            attempts: CLAIM_ATTEMPTS,
            last: last_error,
        })
    }

    /// The lease table, created on first use. Loaded first: every renewal reads it, and
    /// only the very first claim finds it missing.
    async fn lease_table(&self, ident: &TableIdent) -> Result<Table, LakeError> {
        match self.load(ident).await {
            Ok(table) => return Ok(table),
            Err(e) if self.exists(ident).await? => return Err(e),
            Err(_) => {}
        }
        // Iceberg tables need a column; this one stays empty (the leases are properties).
        let schema = Schema::new(vec![Field::new("note", DataType::Utf8, true)]);
        let spec = TableSpec { ident: ident.clone(), schema, partition_day: None };
        Ok(self.ensure_table(&spec).await?.0)
    }

    /// Swaps in `base` with lease `name` set to `claim`.
    async fn swap_claim(&self, base: &Table, name: &str, claim: &LeaseClaim) -> Result<(), LakeError> {
        let value = serde_json::to_string(claim).expect("a claim serializes");
        self.swap_properties(base, HashMap::from([(format!("{LEASE_PREFIX}{name}"), value)])).await
    }

    /// Swaps in `base` with `set` among its properties, then deletes the metadata files that
    /// fell off the table's log.
    async fn swap_properties(&self, base: &Table, set: HashMap<String, String>) -> Result<(), LakeError> {
        let ident = base.identifier();
        let mut properties = HashMap::from([
            ("write.metadata.previous-versions-max".to_string(), KEPT_METADATA_FILES.to_string()),
            (
                "comment".to_string(),
                "ingot's leases: which instance runs transforms, maintenance and schedules. Do not edit."
                    .to_string(),
            ),
        ]);
        properties.extend(set);
        let location = base.metadata_location().map(str::to_string);
        let metadata = TableMetadataBuilder::new_from_metadata(base.metadata().clone(), location)
            .set_properties(properties)
            .and_then(|b| b.build())
            .map_err(LakeError::iceberg(format!("prepare lease properties of {ident}")))?
            .metadata;
        self.swap(base, &metadata).await?;
        forget_dropped_metadata(base, &metadata).await;
        Ok(())
    }
}

const LEASE_PREFIX: &str = "ingot.lease.";
const SHARED_PREFIX: &str = "ingot.shared.";

/// Whether `table` holds leases: it has no data, and the lease code keeps its few files, so
/// maintenance leaves it alone.
pub fn is_lease_table(table: &Table) -> bool {
    table.metadata().properties().keys().any(|k| k.starts_with(LEASE_PREFIX))
}

fn read_claim(table: &Table, name: &str) -> Result<Option<LeaseClaim>, LakeError> {
    let key = format!("{LEASE_PREFIX}{name}");
    match table.metadata().properties().get(&key) {
        None => Ok(None),
        Some(text) => serde_json::from_str(text).map(Some).map_err(|e| LakeError::Summary {
            table: table.identifier().to_string(),
            problem: format!("property {key} is not a lease claim ({e}): {text}"),
        }),
    }
}

/// Deletes the metadata files `base` logged (or was) that `new` no longer logs: nobody can
/// reach them from the catalog any more. A failure only leaves a file for orphan cleanup.
async fn forget_dropped_metadata(base: &Table, new: &TableMetadata) {
    let kept: Vec<&str> = new.metadata_log().iter().map(|l| l.metadata_file.as_str()).collect();
    let dropped = base.metadata().metadata_log().iter().map(|l| l.metadata_file.as_str());
    for file in dropped.filter(|f| !kept.contains(f)) {
        if let Err(e) = base.file_io().delete(file).await {
            tracing::debug!(file, error = %e, "old lease metadata left for orphan cleanup");
        }
    }
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::CatalogConfig;

    struct Catalog {
        dir: tempfile::TempDir,
        config: CatalogConfig,
    }

    impl Catalog {
        fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            let config = CatalogConfig {
                uri: format!("sqlite://{}", dir.path().join("catalog.db").display()).as_str().into(),
                warehouse: dir.path().join("warehouse").display().to_string(),
                ..CatalogConfig::default()
            };
            Self { dir, config }
        }

        /// A handle of its own, as another instance would have.
        async fn open(&self) -> Lake {
            Lake::open(&self.config).await.unwrap()
        }
    }

    fn leases() -> TableIdent {
        TableIdent::from_strs(["ingot", "leases"]).unwrap()
    }

    const TTL: Duration = Duration::from_secs(30);

    #[tokio::test]
    async fn a_live_lease_is_refused_to_others_and_renewed_by_its_holder() {
        let catalog = Catalog::new();
        let (a, b) = (catalog.open().await, catalog.open().await);
        let LeaseOutcome::Held(first) = a.claim_lease(&leases(), "coordinator", "a", TTL).await.unwrap()
        else {
            panic!("a free lease is taken")
        };
        assert_eq!((first.holder.as_str(), first.term), ("a", 1));
        let refused = b.claim_lease(&leases(), "coordinator", "b", TTL).await.unwrap();
        assert_eq!(refused, LeaseOutcome::HeldByOther(first.clone()));
        tokio::time::sleep(Duration::from_millis(5)).await;
        let LeaseOutcome::Held(renewed) = a.claim_lease(&leases(), "coordinator", "a", TTL).await.unwrap()
        else {
            panic!("the holder renews")
        };
        assert_eq!(renewed.term, 1, "a renewal keeps the term");
        assert!(renewed.expires_ms > first.expires_ms);
        // Another lease on the same table is independent.
        let other = b.claim_lease(&leases(), "other", "b", TTL).await.unwrap();
        assert!(matches!(other, LeaseOutcome::Held(_)), "{other:?}");
        let names: Vec<String> = read_leases(&a).await.into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["coordinator", "other"]);
    }

    #[tokio::test]
    async fn a_lease_that_ran_out_or_was_released_goes_to_the_next_claimant_in_a_new_term() {
        let catalog = Catalog::new();
        let (a, b) = (catalog.open().await, catalog.open().await);
        a.claim_lease(&leases(), "coordinator", "a", Duration::from_millis(50)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(80)).await;
        let taken = b.claim_lease(&leases(), "coordinator", "b", TTL).await.unwrap();
        assert_eq!(taken, LeaseOutcome::Held(LeaseClaim { term: 2, ..lease_of(&b).await }));
        // Only the holder's release counts.
        a.release_lease(&leases(), "coordinator", "a").await.unwrap();
        assert_eq!(lease_of(&a).await.holder, "b");
        b.release_lease(&leases(), "coordinator", "b").await.unwrap();
        let LeaseOutcome::Held(claim) = a.claim_lease(&leases(), "coordinator", "a", TTL).await.unwrap()
        else {
            panic!("a released lease is free at once")
        };
        assert_eq!((claim.holder.as_str(), claim.term), ("a", 3));
    }

    #[tokio::test]
    async fn of_many_instances_claiming_at_once_exactly_one_holds_the_lease() {
        let catalog = Catalog::new();
        // The table exists first, as it does after any instance's first claim; creating it is
        // a race of its own (settled by ensure_table).
        read_leases(&catalog.open().await).await;
        let mut claims = Vec::new();
        for i in 0..6 {
            let lake = Arc::new(catalog.open().await);
            claims.push(tokio::spawn(async move {
                lake.claim_lease(&leases(), "coordinator", &format!("instance-{i}"), TTL).await.unwrap()
            }));
        }
        let mut holders = Vec::new();
        for claim in claims {
            match claim.await.unwrap() {
                LeaseOutcome::Held(claim) => holders.push(claim.holder),
                LeaseOutcome::HeldByOther(claim) => holders.push(format!("refused by {}", claim.holder)),
            }
        }
        let winners: Vec<&String> = holders.iter().filter(|h| !h.starts_with("refused")).collect();
        assert_eq!(winners.len(), 1, "{holders:?}");
        assert!(holders.iter().all(|h| h.ends_with(winners[0].as_str())), "{holders:?}");
        assert_eq!(&lease_of(&catalog.open().await).await.holder, winners[0]);
    }

    #[tokio::test]
    async fn a_claim_whose_answer_was_lost_is_settled_by_reading_it_back() {
        let catalog = Catalog::new();
        let a = catalog.open().await;
        read_leases(&a).await;
        a.lose_next_commit_answers(1);
        let outcome = a.claim_lease(&leases(), "coordinator", "a", TTL).await.unwrap();
        assert!(matches!(&outcome, LeaseOutcome::Held(c) if c.term == 1), "{outcome:?}");
        assert_eq!(lease_of(&a).await.holder, "a");
    }

    #[tokio::test]
    async fn renewals_keep_the_lease_table_to_a_few_files() {
        let catalog = Catalog::new();
        let a = catalog.open().await;
        for _ in 0..25 {
            a.claim_lease(&leases(), "coordinator", "a", TTL).await.unwrap();
        }
        let metadata_dir = catalog.dir.path().join("warehouse/ingot/leases/metadata");
        let files = std::fs::read_dir(&metadata_dir).unwrap().count();
        assert!(files <= 4, "{files} files in {}", metadata_dir.display());
        assert_eq!(lease_of(&a).await.term, 1);
    }

    #[tokio::test]
    async fn shared_values_survive_their_writer_and_racing_writers() {
        let catalog = Catalog::new();
        let (a, b) = (catalog.open().await, catalog.open().await);
        a.claim_lease(&leases(), "coordinator", "a", TTL).await.unwrap();
        let table = leases();
        let (x, y) = tokio::join!(
            a.write_shared(&table, "schedule.nightly", "2026-11-29T03:00:00Z"),
            b.write_shared(&table, "schedule.hourly", "2026-11-29T22:00:00Z"),
        );
        x.unwrap();
        y.unwrap();
        let values = b.read_shared(&leases(), "schedule.").await.unwrap();
        assert_eq!(
            values,
            [
                ("schedule.hourly".to_string(), "2026-11-29T22:00:00Z".to_string()),
                ("schedule.nightly".to_string(), "2026-11-29T03:00:00Z".to_string()),
            ]
        );
        assert_eq!(lease_of(&b).await.holder, "a", "the lease is untouched");
    }

    /// Every lease recorded on the table, by name.
    async fn read_leases(lake: &Lake) -> Vec<(String, LeaseClaim)> {
        let table = lake.lease_table(&leases()).await.unwrap();
        let mut names: Vec<&str> =
            table.metadata().properties().keys().filter_map(|k| k.strip_prefix(LEASE_PREFIX)).collect();
        names.sort();
        names.into_iter().map(|n| (n.to_string(), read_claim(&table, n).unwrap().unwrap())).collect()
    }

    async fn lease_of(lake: &Lake) -> LeaseClaim {
        lake.read_lease(&leases(), "coordinator").await.unwrap().expect("a claim")
    }
}
