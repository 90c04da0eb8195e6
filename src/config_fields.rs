//! The field names of a config struct, read from its own `Deserialize` impl, so the list of
//! sections environment overrides may set cannot drift from the types.

use serde::de::{self, Deserialize, Deserializer, Visitor};

/// The fields `T` (a struct deriving `Deserialize`) declares, in order.
pub fn fields_of<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(FieldNames { fields: &mut fields });
    fields
}

/// A deserializer that, asked for a struct, records the struct's field names and stops.
struct FieldNames<'a> {
    fields: &'a mut &'static [&'static str],
}

#[derive(Debug)]
struct Stopped;

impl std::fmt::Display for Stopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("field names recorded")
    }
}

impl std::error::Error for Stopped {}

impl de::Error for Stopped {
    fn custom<T: std::fmt::Display>(_: T) -> Self {
        Stopped
    }
}

impl<'de> Deserializer<'de> for FieldNames<'_> {
    type Error = Stopped;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stopped> {
        Err(Stopped)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Stopped> {
        *self.fields = fields;
        Err(Stopped)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option
        unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_fields_a_struct_declares() {
        #[derive(serde::Deserialize)]
        #[allow(dead_code)]
        struct Example {
            first: u32,
            #[serde(rename = "second_key")]
            second: String,
        }
        assert_eq!(fields_of::<Example>(), ["first", "second_key"]);
    }
}
