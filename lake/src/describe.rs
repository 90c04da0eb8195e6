//! A table as lineage names it: location, metadata file, columns, catalog.

use iceberg::TableIdent;
use iceberg::table::Table;
use ingot_lineage::Dataset;
use ingot_lineage::datasets::{self, IcebergTable};

use crate::Lake;

impl Lake {
    /// `table` (or the table `ident` will become) as an OpenLineage dataset as of `snapshot`:
    /// its location, metadata file, catalog and the columns of the schema at that snapshot.
    pub fn lineage_dataset(
        &self,
        ident: &TableIdent,
        table: Option<&Table>,
        snapshot: Option<i64>,
    ) -> Dataset {
        let (location, metadata_location, columns) = match table {
            Some(t) => {
                let metadata = t.metadata();
                let schema = snapshot
                    .and_then(|s| metadata.snapshot_by_id(s))
                    .and_then(|s| s.schema(metadata).ok())
                    .unwrap_or_else(|| metadata.current_schema().clone());
                let columns: Vec<(String, String)> = schema
                    .as_struct()
                    .fields()
                    .iter()
                    .map(|f| (f.name.clone(), f.field_type.to_string()))
                    .collect();
                (metadata.location().to_string(), t.metadata_location().map(str::to_string), columns)
            }
            // Not created yet: where the catalog will put it.
            None => {
                let location =
                    format!("{}/{}/{}", self.warehouse(), ident.namespace().join("/"), ident.name());
                (location, None, Vec::new())
            }
        };
        let ident = ident.to_string();
        let description = IcebergTable {
            ident: &ident,
            location: &location,
            metadata_location: metadata_location.as_deref(),
            columns: &columns,
            warehouse: self.warehouse(),
            catalog_name: self.catalog_name(),
        };
        datasets::iceberg_table(description, snapshot)
    }
}
