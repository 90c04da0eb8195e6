//! Swapping a table's current metadata through the catalog's own compare-and-swap (see
//! `CatalogBackend::commit`), with a test hook that loses the answer to a commit that landed.

use std::sync::atomic::Ordering;

use iceberg::spec::TableMetadata;
use iceberg::table::Table;

use crate::events::{CommitOutcomeUnknown, CommitRaceLost};
use crate::{Lake, LakeError};

impl Lake {
    /// Makes the next `n` successful catalog swaps of this handle report a lost answer, as a
    /// timeout after the catalog committed would. For tests of unknown-outcome handling.
    #[doc(hidden)]
    pub fn lose_next_commit_answers(&self, n: u32) {
        self.lose_answers.store(n, Ordering::SeqCst);
    }

    /// Makes `metadata` the table's current metadata if nobody else moved the pointer since
    /// `table` was loaded: [`LakeError::CommitConflict`] if someone did,
    /// [`LakeError::CommitUnknown`] if the catalog's answer was lost.
    pub(crate) async fn swap(&self, table: &Table, metadata: &TableMetadata) -> Result<(), LakeError> {
        let result = match self.backend().commit(table, metadata).await {
            Ok(()) => {
                let lost =
                    self.lose_answers.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
                match lost {
                    Ok(_) => Err(LakeError::CommitUnknown {
                        table: table.identifier().to_string(),
                        error: "answer lost (test hook)".into(),
                    }),
                    Err(_) => Ok(()),
                }
            }
            Err(e) => Err(e),
        };
        match &result {
            Err(LakeError::CommitConflict { table }) => CommitRaceLost { table }.emit(),
            Err(LakeError::CommitUnknown { table, error }) => CommitOutcomeUnknown { table, error }.emit(),
            _ => {}
        }
        result
    }
}
