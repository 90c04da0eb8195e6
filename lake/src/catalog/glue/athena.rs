//! Athena reads Iceberg tables from Glue, but not every Iceberg type: `time`, `uuid`,
//! `fixed(L)` and the nanosecond timestamps have no Athena type. A table a Glue catalog
//! would publish with one of them is refused when it is created or evolved, naming the
//! column, instead of breaking every Athena query on it later. (`timestamptz`, which
//! ingot writes for event times, is readable: only Athena's own DDL cannot create it.)

use iceberg::spec::{PrimitiveType, Type};

/// Why Athena cannot read a column of this type, if it cannot.
pub(crate) fn unreadable(field_type: &Type) -> Option<String> {
    match field_type {
        Type::Primitive(p) => match p {
            PrimitiveType::Time => Some("time".into()),
            PrimitiveType::Uuid => Some("uuid".into()),
            PrimitiveType::Fixed(length) => Some(format!("fixed({length})")),
            PrimitiveType::TimestampNs => Some("timestamp_ns".into()),
            PrimitiveType::TimestamptzNs => Some("timestamptz_ns".into()),
            _ => None,
        },
        Type::Struct(s) => s.fields().iter().find_map(|f| unreadable(&f.field_type)),
        Type::List(l) => unreadable(&l.element_field.field_type),
        Type::Map(m) => unreadable(&m.key_field.field_type).or_else(|| unreadable(&m.value_field.field_type)),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use iceberg::spec::{ListType, NestedField, StructType};

    use super::*;

    #[test]
    fn a_time_nested_in_a_list_of_structs_is_found() {
        let inner = StructType::new(vec![
            NestedField::required(2, "at", Type::Primitive(PrimitiveType::Timestamptz)).into(),
            NestedField::optional(3, "opens", Type::Primitive(PrimitiveType::Time)).into(),
        ]);
        let list =
            Type::List(ListType::new(Arc::new(NestedField::list_element(4, Type::Struct(inner), true))));
        assert_eq!(unreadable(&list).as_deref(), Some("time"));
        assert_eq!(unreadable(&Type::Primitive(PrimitiveType::Timestamptz)), None);
        assert_eq!(unreadable(&Type::Primitive(PrimitiveType::Decimal { precision: 20, scale: 0 })), None);
    }
}
