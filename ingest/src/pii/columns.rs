//! PII actions on decoded Arrow columns. A field path walks into struct columns and through
//! lists (`items.sku` reaches the `sku` of every line item); the types stay as they are.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef, ListArray, StringArray, StructArray, new_null_array};
use arrow_schema::DataType;

use super::{PiiAction, PiiKey};

/// `array` with `action` applied at `path` below it (empty: to `array` itself).
pub(super) fn apply(
    array: &ArrayRef,
    path: &[String],
    action: PiiAction,
    key: &PiiKey,
) -> Result<ArrayRef, String> {
    let Some((name, rest)) = path.split_first() else {
        return leaf(array, action, key);
    };
    match array.data_type() {
        DataType::Struct(fields) => {
            let parent = array.as_struct();
            let (index, _) =
                fields.find(name).ok_or_else(|| format!("no field `{name}` in {}", array.data_type()))?;
            let mut columns = parent.columns().to_vec();
            columns[index] = apply(&columns[index], rest, action, key)?;
            let rebuilt = StructArray::try_new(fields.clone(), columns, parent.nulls().cloned());
            Ok(Arc::new(rebuilt.map_err(|e| e.to_string())?))
        }
        DataType::List(_) => each_element(array, |values| apply(values, path, action, key)),
        other => Err(format!("cannot look for `{name}` inside a {other} column")),
    }
}

fn leaf(array: &ArrayRef, action: PiiAction, key: &PiiKey) -> Result<ArrayRef, String> {
    match action {
        PiiAction::Drop => Ok(new_null_array(array.data_type(), array.len())),
        PiiAction::Kept => Ok(array.clone()),
        PiiAction::Tokenize | PiiAction::Mask { .. } => {
            map_strings(array, &|s| action.rewrite(s, key).unwrap_or_else(|| s.to_string()))
        }
    }
}

/// Every string in `array` (a string column or a list of them) through `f`.
fn map_strings(array: &ArrayRef, f: &dyn Fn(&str) -> String) -> Result<ArrayRef, String> {
    match array.data_type() {
        DataType::Utf8 => {
            let mapped: StringArray = array.as_string::<i32>().iter().map(|value| value.map(f)).collect();
            Ok(Arc::new(mapped))
        }
        DataType::List(_) => each_element(array, |values| map_strings(values, f)),
        other => Err(format!("tokenize and mask need a string column, not {other}")),
    }
}

/// The list `array` with its element values replaced by `f(values)`.
fn each_element(
    array: &ArrayRef,
    f: impl FnOnce(&ArrayRef) -> Result<ArrayRef, String>,
) -> Result<ArrayRef, String> {
    let DataType::List(field) = array.data_type() else {
        return Err(format!("expected a list, found {}", array.data_type()));
    };
    let list = array.as_list::<i32>();
    let values = f(list.values())?;
    let rebuilt = ListArray::try_new(field.clone(), list.offsets().clone(), values, list.nulls().cloned());
    Ok(Arc::new(rebuilt.map_err(|e| e.to_string())?))
}
