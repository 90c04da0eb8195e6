//! Writing a table's metadata file.

use std::str::FromStr;

use iceberg::MetadataLocation;
use iceberg::compression::CompressionCodec;
use iceberg::io::FileIO;
use iceberg::spec::TableMetadata;
use iceberg::table::Table;
use serde_json::Value;

use crate::LakeError;

/// Writes `metadata` to `location` with its `snapshots` in commit order (by sequence
/// number), as Java and PyIceberg write them. iceberg-rust keeps snapshots in a hash map and
/// writes them in hash order; the spec allows any order, but Trino's `$snapshots`, Spark's
/// `.snapshots` and every tool that prints the list would show it scrambled.
pub(crate) async fn write_metadata(
    file_io: &FileIO,
    location: &MetadataLocation,
    metadata: &TableMetadata,
) -> Result<(), LakeError> {
    let context = || format!("write metadata {location}");
    if location.compression_codec() != CompressionCodec::None {
        // Compressed metadata (a table property another engine may set): iceberg's writer.
        return metadata.write_to(file_io, location).await.map_err(LakeError::iceberg(context()));
    }
    let json = in_commit_order(metadata)
        .map_err(|e| LakeError::Summary { table: context(), problem: e.to_string() })?;
    file_io
        .new_output(location.to_string())
        .map_err(LakeError::iceberg(context()))?
        .write(json.into())
        .await
        .map_err(LakeError::iceberg(context()))
}

/// Writes `metadata` as the next metadata file of `base` (the next version number, a new
/// uuid: the current file is never rewritten, and two racing writers never write the same
/// path) and returns its location, for catalogs whose swap points at a file ingot writes.
pub(crate) async fn write_next_metadata(base: &Table, metadata: &TableMetadata) -> Result<String, LakeError> {
    let ident = base.identifier();
    let old = base.metadata_location_result().map_err(LakeError::iceberg(format!("metadata of {ident}")))?;
    let new = MetadataLocation::from_str(old)
        .map_err(LakeError::iceberg(format!("parse metadata location of {ident}")))?
        .with_next_version()
        .with_new_metadata(metadata);
    write_metadata(base.file_io(), &new, metadata).await?;
    Ok(new.to_string())
}

/// The metadata JSON with the snapshot list sorted by sequence number, then commit time.
fn in_commit_order(metadata: &TableMetadata) -> Result<Vec<u8>, serde_json::Error> {
    let mut json = serde_json::to_value(metadata)?;
    if let Some(snapshots) = json.get_mut("snapshots").and_then(Value::as_array_mut) {
        let key = |s: &Value| {
            let field = |name: &str| s.get(name).and_then(Value::as_i64).unwrap_or(0);
            (field("sequence-number"), field("timestamp-ms"))
        };
        snapshots.sort_by_key(key);
    }
    serde_json::to_vec(&json)
}
