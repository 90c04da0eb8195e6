//! A commit as a REST catalog takes it: the updates that turn the base metadata into the new
//! one, and the requirements that make the server refuse it if the table moved meanwhile.

use std::collections::{HashMap, HashSet};

use iceberg::spec::{SnapshotReference, TableMetadata};
use iceberg::{TableRequirement, TableUpdate};

use crate::LakeError;

/// The branch every ingot commit moves.
const MAIN: &str = "main";

/// (requirements, updates) for replacing `base` with `new`. Covers what ingot's commits
/// change — snapshots, the `main` ref, schemas, partition specs, properties — and refuses
/// anything else rather than dropping it silently.
pub(crate) fn commit_request(
    table: &str,
    base: &TableMetadata,
    new: &TableMetadata,
) -> Result<(Vec<TableRequirement>, Vec<TableUpdate>), LakeError> {
    let unsupported = |what: &str| {
        LakeError::Unsupported(format!(
            "commit to {table} changes {what}, which ingot does not send to a REST catalog"
        ))
    };
    if base.uuid() != new.uuid()
        || base.location() != new.location()
        || base.format_version() != new.format_version()
    {
        return Err(unsupported("the table's identity, location or format version"));
    }
    if base.default_sort_order_id() != new.default_sort_order_id() {
        return Err(unsupported("the sort order"));
    }
    let mut requirements = vec![
        TableRequirement::UuidMatch { uuid: base.uuid() },
        TableRequirement::RefSnapshotIdMatch { r#ref: MAIN.into(), snapshot_id: base.current_snapshot_id() },
    ];
    let mut updates = Vec::new();

    let known_schemas: HashSet<i32> = base.schemas_iter().map(|s| s.schema_id()).collect();
    for schema in new.schemas_iter().filter(|s| !known_schemas.contains(&s.schema_id())) {
        updates.push(TableUpdate::AddSchema { schema: schema.as_ref().clone() });
    }
    let schemas_added = !updates.is_empty();
    if schemas_added || base.current_schema_id() != new.current_schema_id() {
        requirements
            .push(TableRequirement::CurrentSchemaIdMatch { current_schema_id: base.current_schema_id() });
        requirements.push(TableRequirement::LastAssignedFieldIdMatch {
            last_assigned_field_id: base.last_column_id(),
        });
        updates.push(TableUpdate::SetCurrentSchema { schema_id: new.current_schema_id() });
    }
    let known_specs: HashSet<i32> = base.partition_specs_iter().map(|s| s.spec_id()).collect();
    for spec in new.partition_specs_iter().filter(|s| !known_specs.contains(&s.spec_id())) {
        updates.push(TableUpdate::AddSpec { spec: spec.as_ref().clone().into_unbound() });
    }
    if base.default_partition_spec_id() != new.default_partition_spec_id() {
        requirements
            .push(TableRequirement::DefaultSpecIdMatch { default_spec_id: base.default_partition_spec_id() });
        updates.push(TableUpdate::SetDefaultSpec { spec_id: new.default_partition_spec_id() });
    }

    // Snapshots in commit order, so a server applying them one by one sees parents first.
    let mut added: Vec<_> =
        new.snapshots().filter(|s| base.snapshot_by_id(s.snapshot_id()).is_none()).collect();
    added.sort_by_key(|s| s.sequence_number());
    updates.extend(added.into_iter().map(|s| TableUpdate::AddSnapshot { snapshot: s.as_ref().clone() }));
    let removed: Vec<i64> =
        base.snapshots().map(|s| s.snapshot_id()).filter(|id| new.snapshot_by_id(*id).is_none()).collect();
    if !removed.is_empty() {
        updates.push(TableUpdate::RemoveSnapshots { snapshot_ids: removed });
    }
    let (base_refs, new_refs) = (refs(table, base)?, refs(table, new)?);
    for (name, reference) in &new_refs {
        if base_refs.get(name) != Some(reference) {
            if name != MAIN {
                return Err(unsupported(&format!("the ref `{name}`")));
            }
            updates
                .push(TableUpdate::SetSnapshotRef { ref_name: name.clone(), reference: reference.clone() });
        }
    }
    for name in base_refs.keys().filter(|name| !new_refs.contains_key(*name)) {
        updates.push(TableUpdate::RemoveSnapshotRef { ref_name: name.clone() });
    }

    let changed: HashMap<String, String> = new
        .properties()
        .iter()
        .filter(|(k, v)| base.properties().get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if !changed.is_empty() {
        updates.push(TableUpdate::SetProperties { updates: changed });
    }
    let gone: Vec<String> =
        base.properties().keys().filter(|k| !new.properties().contains_key(*k)).cloned().collect();
    if !gone.is_empty() {
        updates.push(TableUpdate::RemoveProperties { removals: gone });
    }
    Ok((requirements, updates))
}

/// The table's branches and tags (iceberg-rust keeps them private; its serialized form has
/// them).
fn refs(table: &str, metadata: &TableMetadata) -> Result<HashMap<String, SnapshotReference>, LakeError> {
    let problem = |e: serde_json::Error| LakeError::Summary { table: table.into(), problem: e.to_string() };
    let mut json = serde_json::to_value(metadata).map_err(problem)?;
    match json.get_mut("refs").map(serde_json::Value::take) {
        Some(refs) => serde_json::from_value(refs).map_err(problem),
        None => Ok(HashMap::new()),
    }
}

#[cfg(test)]
mod tests {
    use iceberg::TableCreation;
    use iceberg::spec::{
        NestedField, Operation, PrimitiveType, Schema, Snapshot, Summary, TableMetadataBuilder, Type,
    };

    use super::*;

    fn created() -> TableMetadata {
        let schema = Schema::builder()
            .with_fields(vec![NestedField::required(1, "id", Type::Primitive(PrimitiveType::Long)).into()])
            .build()
            .unwrap();
        let creation = TableCreation::builder()
            .name("t".into())
            .location("file:///w/ns/t".into())
            .schema(schema)
            .build();
        TableMetadataBuilder::from_table_creation(creation).unwrap().build().unwrap().metadata
    }

    fn snapshot(id: i64, parent: Option<i64>, sequence: i64) -> Snapshot {
        Snapshot::builder()
            .with_snapshot_id(id)
            .with_parent_snapshot_id(parent)
            .with_sequence_number(sequence)
            .with_timestamp_ms(chrono::Utc::now().timestamp_millis())
            .with_manifest_list(format!("file:///w/ns/t/metadata/snap-{id}.avro"))
            .with_summary(Summary { operation: Operation::Append, additional_properties: HashMap::new() })
            .with_schema_id(0)
            .build()
    }

    fn with_branch(base: &TableMetadata, snapshot: Snapshot) -> TableMetadata {
        base.clone().into_builder(None).set_branch_snapshot(snapshot, MAIN).unwrap().build().unwrap().metadata
    }

    #[test]
    fn an_append_adds_its_snapshot_moves_main_and_requires_the_base() {
        let base = created();
        let new = with_branch(&base, snapshot(11, None, 1));
        let (requirements, updates) = commit_request("ns.t", &base, &new).unwrap();
        assert_eq!(
            requirements,
            vec![
                TableRequirement::UuidMatch { uuid: base.uuid() },
                TableRequirement::RefSnapshotIdMatch { r#ref: MAIN.into(), snapshot_id: None },
            ]
        );
        assert!(matches!(&updates[0], TableUpdate::AddSnapshot { snapshot } if snapshot.snapshot_id() == 11));
        assert!(
            matches!(&updates[1], TableUpdate::SetSnapshotRef { ref_name, reference } if ref_name == MAIN && reference.snapshot_id == 11)
        );
        assert_eq!(updates.len(), 2, "{updates:?}");
    }

    #[test]
    fn expiry_removes_snapshots_and_a_property_change_is_sent() {
        let one = with_branch(&created(), snapshot(11, None, 1));
        let two = with_branch(&one, snapshot(12, Some(11), 2));
        let expired = two
            .clone()
            .into_builder(None)
            .remove_snapshots(&[11])
            .set_properties(HashMap::from([("k".to_string(), "v".to_string())]))
            .unwrap()
            .build()
            .unwrap()
            .metadata;
        let (requirements, updates) = commit_request("ns.t", &two, &expired).unwrap();
        assert!(
            requirements.contains(&TableRequirement::RefSnapshotIdMatch {
                r#ref: MAIN.into(),
                snapshot_id: Some(12)
            })
        );
        assert!(updates.contains(&TableUpdate::RemoveSnapshots { snapshot_ids: vec![11] }), "{updates:?}");
        assert!(
            updates
                .iter()
                .any(|u| matches!(u, TableUpdate::SetProperties { updates } if updates["k"] == "v"))
        );
        assert!(
            !updates
                .iter()
                .any(|u| matches!(u, TableUpdate::AddSnapshot { .. } | TableUpdate::SetSnapshotRef { .. }))
        );
    }
}
