//! The Glue table entry ingot writes: Iceberg tables are `EXTERNAL_TABLE`s with
//! `table_type = ICEBERG` and `metadata_location` (what Athena, Trino's and Spark's Glue
//! catalogs and PyIceberg read), plus the current schema as Hive-typed columns so the Glue
//! console and crawlers show it. Readers take the schema from the metadata file, not these.

use iceberg::spec::{PrimitiveType, Schema, TableMetadata, Type};
use serde_json::{Map, Value, json};

/// `TableInput` for CreateTable/UpdateTable. `parameters` are the entry's current ones
/// (another engine's keys are kept); the metadata pointers are set over them.
pub(super) fn table_input(
    name: &str,
    metadata: &TableMetadata,
    metadata_location: &str,
    previous: Option<&str>,
    mut parameters: Map<String, Value>,
) -> Value {
    parameters.insert("table_type".into(), "ICEBERG".into());
    parameters.insert("metadata_location".into(), metadata_location.into());
    match previous {
        Some(previous) => parameters.insert("previous_metadata_location".into(), previous.into()),
        None => parameters.remove("previous_metadata_location"),
    };
    json!({
        "Name": name,
        "TableType": "EXTERNAL_TABLE",
        "Parameters": parameters,
        "StorageDescriptor": {
            "Location": metadata.location(),
            "Columns": columns(metadata.current_schema()),
        },
    })
}

fn columns(schema: &Schema) -> Vec<Value> {
    schema
        .as_struct()
        .fields()
        .iter()
        .map(|field| {
            json!({
                "Name": field.name,
                "Type": hive_type(&field.field_type),
                "Comment": field.doc.clone().unwrap_or_default(),
                "Parameters": {
                    "iceberg.field.id": field.id.to_string(),
                    "iceberg.field.optional": (!field.required).to_string(),
                    "iceberg.field.current": "true",
                },
            })
        })
        .collect()
}

/// The Hive type name Glue shows for an Iceberg type (the mapping Iceberg's own Glue
/// catalog uses).
fn hive_type(field_type: &Type) -> String {
    match field_type {
        Type::Primitive(p) => match p {
            PrimitiveType::Boolean => "boolean".into(),
            PrimitiveType::Int => "int".into(),
            PrimitiveType::Long => "bigint".into(),
            PrimitiveType::Float => "float".into(),
            PrimitiveType::Double => "double".into(),
            PrimitiveType::Decimal { precision, scale } => format!("decimal({precision},{scale})"),
            PrimitiveType::Date => "date".into(),
            PrimitiveType::Timestamp
            | PrimitiveType::Timestamptz
            | PrimitiveType::TimestampNs
            | PrimitiveType::TimestamptzNs => "timestamp".into(),
            PrimitiveType::Time | PrimitiveType::String | PrimitiveType::Uuid => "string".into(),
            PrimitiveType::Fixed(_) | PrimitiveType::Binary => "binary".into(),
        },
        Type::Struct(s) => {
            let fields: Vec<String> =
                s.fields().iter().map(|f| format!("{}:{}", f.name, hive_type(&f.field_type))).collect();
            format!("struct<{}>", fields.join(","))
        }
        Type::List(l) => format!("array<{}>", hive_type(&l.element_field.field_type)),
        Type::Map(m) => {
            format!("map<{},{}>", hive_type(&m.key_field.field_type), hive_type(&m.value_field.field_type))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use iceberg::spec::{ListType, NestedField, StructType};

    use super::*;

    #[test]
    fn nested_iceberg_types_become_hive_type_names() {
        let inner = StructType::new(vec![
            NestedField::required(3, "email", Type::Primitive(PrimitiveType::String)).into(),
            NestedField::optional(4, "since", Type::Primitive(PrimitiveType::Timestamptz)).into(),
        ]);
        let list = ListType::new(Arc::new(NestedField::list_element(
            6,
            Type::Primitive(PrimitiveType::Decimal { precision: 12, scale: 2 }),
            true,
        )));
        assert_eq!(hive_type(&Type::Struct(inner)), "struct<email:string,since:timestamp>");
        assert_eq!(hive_type(&Type::List(list)), "array<decimal(12,2)>");
        assert_eq!(hive_type(&Type::Primitive(PrimitiveType::Long)), "bigint");
    }
}
