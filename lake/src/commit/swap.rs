//! Swapping the catalog's metadata pointer: write the new metadata file, then move the
//! pointer only if it still points where the commit started from (the JDBC catalog
//! protocol, which PyIceberg and Java's JdbcCatalog follow on the same tables).

use std::str::FromStr;
use std::sync::atomic::{AtomicU32, Ordering};

use iceberg::MetadataLocation;
use iceberg::spec::TableMetadata;
use iceberg::table::Table;
use sqlx::AnyPool;

use crate::{Lake, LakeError};

/// How ingot reaches the row that holds a table's metadata location.
#[derive(Debug)]
pub(crate) struct SqlPointer {
    pub pool: AnyPool,
    pub catalog_name: String,
    /// Postgres numbers its parameters (`$1`), SQLite takes `?`.
    pub numbered_params: bool,
    /// Test hook: this many successful swaps report a lost answer instead (see
    /// [`Lake::lose_next_commit_answers`]).
    pub lose_answers: AtomicU32,
}

impl SqlPointer {
    fn update_statement(&self) -> String {
        let p = |i: usize| if self.numbered_params { format!("${i}") } else { "?".to_string() };
        format!(
            "UPDATE iceberg_tables SET metadata_location = {}, previous_metadata_location = {} \
             WHERE catalog_name = {} AND table_name = {} AND table_namespace = {} \
             AND (iceberg_type = 'TABLE' OR iceberg_type IS NULL) AND metadata_location = {}",
            p(1),
            p(2),
            p(3),
            p(4),
            p(5),
            p(6)
        )
    }
}

impl Lake {
    /// Makes the next `n` successful catalog swaps of this handle report a lost answer, as a
    /// timeout after the database committed would. For tests of unknown-outcome handling.
    #[doc(hidden)]
    pub fn lose_next_commit_answers(&self, n: u32) {
        self.pointer.lose_answers.store(n, Ordering::SeqCst);
    }

    /// Makes `metadata` the table's current metadata if nobody else moved the pointer since
    /// `table` was loaded: [`LakeError::CommitConflict`] if someone did,
    /// [`LakeError::CommitUnknown`] if the catalog's answer was lost.
    pub(crate) async fn swap(&self, table: &Table, metadata: &TableMetadata) -> Result<(), LakeError> {
        let ident = table.identifier();
        let old =
            table.metadata_location_result().map_err(LakeError::iceberg(format!("metadata of {ident}")))?;
        let new = MetadataLocation::from_str(old)
            .map_err(LakeError::iceberg(format!("parse metadata location of {ident}")))?
            // A fresh file (next version, new uuid): the current one is never rewritten, and
            // two racing writers never write the same path.
            .with_next_version()
            .with_new_metadata(metadata);
        super::metadata_file::write_metadata(table.file_io(), &new, metadata).await?;
        let new = new.to_string();
        let pointer = &self.pointer;
        let result = sqlx::query(&pointer.update_statement())
            .bind(new.clone())
            .bind(old.to_string())
            .bind(pointer.catalog_name.clone())
            .bind(ident.name().to_string())
            .bind(ident.namespace().join("."))
            .bind(old.to_string())
            .execute(&pointer.pool)
            .await;
        match result {
            Ok(done) if done.rows_affected() == 1 => {
                let lost = pointer
                    .lose_answers
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
                match lost {
                    Ok(_) => Err(LakeError::CommitUnknown {
                        table: ident.to_string(),
                        error: "answer lost (test hook)".into(),
                    }),
                    Err(_) => Ok(()),
                }
            }
            Ok(_) => {
                // The pointer moved on: our metadata file will never be referenced.
                let _ = table.file_io().delete(&new).await;
                Err(LakeError::CommitConflict { table: ident.to_string() })
            }
            Err(e) => Err(LakeError::CommitUnknown { table: ident.to_string(), error: e.to_string() }),
        }
    }
}
