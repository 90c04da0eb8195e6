//! Facet builders. Each returns `(key, facet)` with `_producer` and `_schemaURL` set to the
//! facet's definition in the vendored spec version, ready to insert into a facet map.

use serde_json::{Map, Value, json};

use crate::PRODUCER;

/// A facet: `fields` plus the base facet properties.
fn facet(key: &str, spec: &str, fields: Value) -> (String, Value) {
    let name = spec.rsplit('/').next().unwrap_or(spec).trim_end_matches(".json");
    facet_at(key, &format!("https://openlineage.io/spec/facets/{spec}#/$defs/{name}"), fields)
}

/// A facet whose schema is at `schema_url`.
fn facet_at(key: &str, schema_url: &str, fields: Value) -> (String, Value) {
    let mut object = match fields {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    object.insert("_producer".into(), json!(PRODUCER));
    object.insert("_schemaURL".into(), json!(schema_url));
    (key.to_string(), Value::Object(object))
}

/// `jobType`: Marquez requires all three of `processingType`, `integration`, `jobType`.
pub fn job_type(processing: &str, job_type: &str, streaming_window_secs: Option<u64>) -> (String, Value) {
    let mut fields = json!({ "processingType": processing, "integration": "INGOT", "jobType": job_type });
    if let Some(window) = streaming_window_secs {
        fields["emissionPattern"] = json!({ "eventTrigger": "EVENT_BASED", "eventContentMode": "ACCUMULATIVE", "windowDuration": window });
    }
    facet("jobType", "2-0-4/JobTypeJobFacet.json", fields)
}

pub fn sql(query: &str) -> (String, Value) {
    facet("sql", "1-1-0/SQLJobFacet.json", json!({ "query": query, "dialect": "datafusion" }))
}

pub fn documentation_job(description: &str) -> (String, Value) {
    facet("documentation", "1-1-0/DocumentationJobFacet.json", json!({ "description": description }))
}

/// `sourceCodeLocation`: `url` must be an absolute http(s) URL for Marquez to link it.
pub fn source_code_location(url: &str, path: &str) -> (String, Value) {
    facet(
        "sourceCodeLocation",
        "1-1-0/SourceCodeLocationJobFacet.json",
        json!({ "type": "git", "url": url, "path": path }),
    )
}

pub fn processing_engine(name: &str, version: &str) -> (String, Value) {
    facet(
        "processing_engine",
        "1-1-1/ProcessingEngineRunFacet.json",
        json!({ "name": name, "version": version, "openlineageAdapterVersion": env!("CARGO_PKG_VERSION") }),
    )
}

/// `parent`: the run that started this one, and the root of the hierarchy.
pub fn parent(run_id: uuid::Uuid, namespace: &str, name: &str) -> (String, Value) {
    let pointer = json!({ "run": { "runId": run_id }, "job": { "namespace": namespace, "name": name } });
    let mut fields = pointer.clone();
    fields["root"] = pointer;
    facet("parent", "1-2-0/ParentRunFacet.json", fields)
}

pub fn nominal_time(start: &str, end: Option<&str>) -> (String, Value) {
    let mut fields = json!({ "nominalStartTime": start });
    if let Some(end) = end {
        fields["nominalEndTime"] = json!(end);
    }
    facet("nominalTime", "1-0-1/NominalTimeRunFacet.json", fields)
}

pub fn error_message(message: &str) -> (String, Value) {
    facet(
        "errorMessage",
        "1-0-1/ErrorMessageRunFacet.json",
        json!({ "message": message, "programmingLanguage": "rust" }),
    )
}

/// `schema` from `(name, type)` columns.
pub fn schema(columns: &[(String, String)]) -> (String, Value) {
    let fields: Vec<Value> = columns
        .iter()
        .enumerate()
        .map(|(i, (name, ty))| json!({ "name": name, "type": ty, "ordinal_position": i + 1 }))
        .collect();
    facet("schema", "1-2-0/SchemaDatasetFacet.json", json!({ "fields": fields }))
}

/// `tags`: `(key, value, field)`, a tag on one column when `field` is given (`pii`).
pub fn tags(tags: &[(&str, String, Option<String>)]) -> (String, Value) {
    let tags: Vec<Value> = tags
        .iter()
        .map(|(key, value, field)| {
            let mut tag = json!({ "key": key, "value": value, "source": "INGOT" });
            if let Some(field) = field {
                tag["field"] = json!(field);
            }
            tag
        })
        .collect();
    facet("tags", "1-0-0/TagsDatasetFacet.json", json!({ "tags": tags }))
}

/// `dataSource`: named by the namespace; `uri` must be a URI, so the bare `file` namespace
/// becomes `file:///`.
pub fn data_source(namespace: &str) -> (String, Value) {
    let uri = if namespace.contains("://") { namespace.to_string() } else { format!("{namespace}:///") };
    facet("dataSource", "1-0-1/DatasourceDatasetFacet.json", json!({ "name": namespace, "uri": uri }))
}

/// `symlinks`: the catalog's name for a location-identified table.
pub fn symlink_table(namespace: &str, name: &str) -> (String, Value) {
    facet(
        "symlinks",
        "1-0-1/SymlinksDatasetFacet.json",
        json!({ "identifiers": [{ "namespace": namespace, "name": name, "type": "TABLE" }] }),
    )
}

pub fn iceberg_storage() -> (String, Value) {
    facet(
        "storage",
        "1-0-1/StorageDatasetFacet.json",
        json!({ "storageLayer": "iceberg", "fileFormat": "parquet" }),
    )
}

/// `version`: the Iceberg snapshot id read or written.
pub fn version(snapshot_id: i64) -> (String, Value) {
    facet(
        "version",
        "1-0-1/DatasetVersionDatasetFacet.json",
        json!({ "datasetVersion": snapshot_id.to_string() }),
    )
}

pub fn catalog(kind: &str, name: &str, warehouse: &str, metadata: Option<&str>) -> (String, Value) {
    let mut fields = json!({ "framework": "iceberg", "type": kind, "name": name, "warehouseUri": warehouse });
    if let Some(uri) = metadata {
        fields["metadataUri"] = json!(uri);
    }
    facet("catalog", "1-1-0/CatalogDatasetFacet.json", fields)
}

pub fn dataset_type(kind: &str) -> (String, Value) {
    facet("datasetType", "1-0-1/DatasetTypeDatasetFacet.json", json!({ "datasetType": kind }))
}

/// `rowCount`, and `size` and `fileCount` when known: the fields both statistics facets share.
fn statistics(rows: u64, bytes: Option<u64>, files: Option<u64>) -> Value {
    let mut fields = json!({ "rowCount": rows });
    if let Some(b) = bytes {
        fields["size"] = json!(b);
    }
    if let Some(f) = files {
        fields["fileCount"] = json!(f);
    }
    fields
}

pub fn input_statistics(rows: u64, bytes: Option<u64>, files: Option<u64>) -> (String, Value) {
    facet("inputStatistics", "1-0-0/InputStatisticsInputDatasetFacet.json", statistics(rows, bytes, files))
}

pub fn output_statistics(rows: u64, bytes: Option<u64>, files: Option<u64>) -> (String, Value) {
    facet("outputStatistics", "1-0-2/OutputStatisticsOutputDatasetFacet.json", statistics(rows, bytes, files))
}

/// One check of `dataQualityAssertions`.
#[derive(Debug, Clone)]
pub struct Assertion {
    pub name: String,
    pub column: Option<String>,
    pub success: bool,
    pub failed_rows: u64,
}

pub fn data_quality_assertions(assertions: &[Assertion]) -> (String, Value) {
    let items: Vec<Value> = assertions
        .iter()
        .map(|a| {
            let mut item = json!({ "assertion": a.name, "success": a.success, "actual": a.failed_rows.to_string(), "expected": "0" });
            if let Some(column) = &a.column {
                item["column"] = json!(column);
            }
            item
        })
        .collect();
    facet(
        "dataQualityAssertions",
        "1-1-0/DataQualityAssertionsDatasetFacet.json",
        json!({ "assertions": items }),
    )
}

/// How an output column came from an input column (`columnLineage` transformation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnSource {
    pub namespace: String,
    pub name: String,
    pub field: String,
    /// `DIRECT` or `INDIRECT`.
    pub kind: &'static str,
    /// `IDENTITY`, `TRANSFORMATION`, `AGGREGATION`, `FILTER`, `GROUP_BY`, …
    pub subtype: &'static str,
}

/// `columnLineage`: per output column its sources, and the sources that shape the whole
/// dataset (filters, group keys, …) under `dataset`.
pub fn column_lineage(fields: &[(String, Vec<ColumnSource>)], dataset: &[ColumnSource]) -> (String, Value) {
    let source = |s: &ColumnSource| {
        json!({
            "namespace": s.namespace, "name": s.name, "field": s.field,
            "transformations": [{ "type": s.kind, "subtype": s.subtype }]
        })
    };
    let mut map = Map::new();
    for (column, sources) in fields {
        map.insert(column.clone(), json!({ "inputFields": sources.iter().map(source).collect::<Vec<_>>() }));
    }
    let dataset: Vec<Value> = dataset.iter().map(source).collect();
    facet(
        "columnLineage",
        "1-2-0/ColumnLineageDatasetFacet.json",
        json!({ "fields": map, "dataset": dataset }),
    )
}

/// ingot's own input facet: the Kafka offset range consumed per partition.
pub fn kafka_offsets(ranges: &[(i32, i64, i64)]) -> (String, Value) {
    let partitions: Vec<Value> = ranges
        .iter()
        .map(|(p, from, to)| json!({ "partition": p, "fromOffset": from, "toOffset": to }))
        .collect();
    // The schema lives in this repository (lineage/schemas/).
    let schema =
        format!("{PRODUCER}/lineage/schemas/KafkaOffsetsInputFacet.json#/$defs/KafkaOffsetsInputFacet");
    facet_at("ingot_kafkaOffsets", &schema, json!({ "partitions": partitions }))
}
