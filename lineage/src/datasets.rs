//! Datasets as ingot's events name them: Kafka topics and Iceberg tables.

use serde_json::{Map, Value};

use crate::{Dataset, facets, naming};

fn insert(map: &mut Map<String, Value>, (key, value): (String, Value)) {
    map.insert(key, value);
}

/// An Iceberg table, as far as lineage needs to know it.
#[derive(Debug, Clone, Copy)]
pub struct IcebergTable<'a> {
    /// `namespace.table` in the catalog.
    pub ident: &'a str,
    pub location: &'a str,
    pub metadata_location: Option<&'a str>,
    /// `(name, type)`; empty when the table does not exist yet.
    pub columns: &'a [(String, String)],
    pub warehouse: &'a str,
    pub catalog_name: &'a str,
}

/// The table named by its location, with the catalog name as a symlink, and its schema,
/// storage, catalog and (when known) snapshot as facets.
pub fn iceberg_table(table: IcebergTable<'_>, snapshot: Option<i64>) -> Dataset {
    let (namespace, name) = naming::iceberg_location(table.location);
    let mut facets = Map::new();
    let (warehouse_ns, _) = naming::iceberg_location(table.warehouse);
    let symlink_ns = if warehouse_ns == "file" { table.warehouse.to_string() } else { warehouse_ns };
    insert(&mut facets, facets::symlink_table(&symlink_ns, table.ident));
    insert(&mut facets, facets::data_source(&namespace));
    insert(&mut facets, facets::iceberg_storage());
    insert(&mut facets, facets::catalog("sql", table.catalog_name, table.warehouse, table.metadata_location));
    if !table.columns.is_empty() {
        insert(&mut facets, facets::schema(table.columns));
    }
    if let Some(id) = snapshot {
        insert(&mut facets, facets::version(id));
    }
    Dataset { namespace, name, facets, ..Default::default() }
}

/// A Kafka topic carrying Protobuf messages of `message_type`.
pub fn kafka_topic(brokers: &str, topic: &str, message_type: &str) -> Dataset {
    let (namespace, name) = naming::kafka(brokers, topic);
    let mut facets = Map::new();
    insert(&mut facets, facets::dataset_type("TOPIC"));
    insert(&mut facets, facets::data_source(&namespace));
    insert(
        &mut facets,
        facets::schema(&[
            ("key".into(), "bytes".into()),
            ("value".into(), format!("protobuf:{message_type}")),
        ]),
    );
    Dataset { namespace, name, facets, ..Default::default() }
}
