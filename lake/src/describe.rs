//! A table as lineage names it: location, metadata file, columns, catalog.

use iceberg::TableIdent;
use iceberg::table::Table;

use ingot_lineage::Dataset;
use ingot_lineage::datasets::{self, IcebergTable};

use crate::Lake;

/// What a lineage event says about a table.
#[derive(Debug, Clone, PartialEq)]
pub struct TableDescription {
    /// `namespace.table` in the catalog.
    pub ident: String,
    /// The table's location (for a table not created yet, where the catalog will put it).
    pub location: String,
    pub metadata_location: Option<String>,
    /// `(name, Iceberg type)` of the schema at the snapshot (or the current schema).
    pub columns: Vec<(String, String)>,
    pub warehouse: String,
    pub catalog_name: String,
}

impl Lake {
    /// Describes `table` (or the table `ident` will become) as of `snapshot`.
    pub fn describe(
        &self,
        ident: &TableIdent,
        table: Option<&Table>,
        snapshot: Option<i64>,
    ) -> TableDescription {
        let (location, metadata_location, columns) = match table {
            Some(t) => {
                let metadata = t.metadata();
                let schema = snapshot
                    .and_then(|s| metadata.snapshot_by_id(s))
                    .and_then(|s| s.schema(metadata).ok())
                    .unwrap_or_else(|| metadata.current_schema().clone());
                let columns = schema
                    .as_struct()
                    .fields()
                    .iter()
                    .map(|f| (f.name.clone(), f.field_type.to_string()))
                    .collect();
                (metadata.location().to_string(), t.metadata_location().map(str::to_string), columns)
            }
            None => {
                let location =
                    format!("{}/{}/{}", self.warehouse(), ident.namespace().join("/"), ident.name());
                (location, None, Vec::new())
            }
        };
        TableDescription {
            ident: ident.to_string(),
            location,
            metadata_location,
            columns,
            warehouse: self.warehouse().to_string(),
            catalog_name: self.catalog_name().to_string(),
        }
    }

    /// `table` (or the table `ident` will become) as an OpenLineage dataset as of `snapshot`.
    pub fn lineage_dataset(
        &self,
        ident: &TableIdent,
        table: Option<&Table>,
        snapshot: Option<i64>,
    ) -> Dataset {
        let d = self.describe(ident, table, snapshot);
        datasets::iceberg_table(
            IcebergTable {
                ident: &d.ident,
                location: &d.location,
                metadata_location: d.metadata_location.as_deref(),
                columns: &d.columns,
                warehouse: &d.warehouse,
                catalog_name: &d.catalog_name,
            },
            snapshot,
        )
    }
}
