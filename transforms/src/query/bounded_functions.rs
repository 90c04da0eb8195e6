//! String functions whose output can dwarf their input (`repeat('x', 100000000)` is 100 MB a
//! row), checked before they build it: the memory pool only sees what operators buffer, and a
//! projection's batch exists before anything downstream can refuse it.

use std::any::Any;

use arrow_array::{Array, ArrayRef, Int64Array};
use arrow_schema::{DataType, FieldRef};
use datafusion::common::{Result, ScalarValue};
use datafusion::error::DataFusionError;
use datafusion::execution::FunctionRegistry;
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
};
use datafusion::prelude::SessionContext;

/// The functions wrapped: each builds an output sized by a count argument (the second).
const AMPLIFYING: [&str; 3] = ["repeat", "lpad", "rpad"];

/// Replaces `repeat`, `lpad` and `rpad` in `ctx` with versions that refuse to build more than
/// `max_bytes` in one call.
pub(crate) fn bound_amplifying_functions(ctx: &SessionContext, max_bytes: usize) -> Result<()> {
    for name in AMPLIFYING {
        let inner = ctx.udf(name)?;
        ctx.register_udf(ScalarUDF::new_from_impl(Bounded { inner: (*inner).clone(), max_bytes }));
    }
    Ok(())
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Bounded {
    inner: ScalarUDF,
    max_bytes: usize,
}

impl ScalarUDFImpl for Bounded {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn name(&self) -> &str {
        self.inner.name()
    }

    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner.return_type(arg_types)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        self.inner.return_field_from_args(args)
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        self.inner.coerce_types(arg_types)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let bound = output_bound(&args.args, args.number_rows);
        if bound > self.max_bytes as u128 {
            return Err(DataFusionError::ResourcesExhausted(format!(
                "{}() would build about {} MiB in one batch, more than the query's memory ({} MiB)",
                self.name(),
                bound >> 20,
                self.max_bytes >> 20
            )));
        }
        self.inner.invoke_with_args(args)
    }
}

/// An upper bound of what `f(text, count, …)` builds over `rows` rows: the text's bytes times
/// the count (`repeat`), or the count in 4-byte characters plus the text (`lpad`/`rpad`), summed
/// over the rows; whichever is larger.
fn output_bound(args: &[ColumnarValue], rows: usize) -> u128 {
    let (Some(text), Some(count)) = (args.first(), args.get(1)) else { return 0 };
    let text_bytes = |row_share: bool| -> u128 {
        match text {
            ColumnarValue::Array(array) => array.get_buffer_memory_size() as u128,
            ColumnarValue::Scalar(scalar) => {
                let len = scalar_text_len(scalar);
                if row_share { len * rows.max(1) as u128 } else { len }
            }
        }
    };
    match count {
        ColumnarValue::Scalar(scalar) => {
            let n = scalar_count(scalar);
            let rows_out = match text {
                ColumnarValue::Scalar(_) => 1,
                ColumnarValue::Array(_) => rows.max(1) as u128,
            };
            (text_bytes(false) * n).max(n * 4 * rows_out + text_bytes(false))
        }
        ColumnarValue::Array(array) => {
            let counts = counts_of(array);
            let longest_text = match text {
                ColumnarValue::Scalar(scalar) => scalar_text_len(scalar),
                ColumnarValue::Array(array) => array.get_buffer_memory_size() as u128,
            };
            (longest_text * counts).max(counts * 4 + text_bytes(true))
        }
    }
}

fn scalar_text_len(scalar: &ScalarValue) -> u128 {
    match scalar {
        ScalarValue::Utf8(Some(s)) | ScalarValue::LargeUtf8(Some(s)) | ScalarValue::Utf8View(Some(s)) => {
            s.len() as u128
        }
        _ => 0,
    }
}

fn scalar_count(scalar: &ScalarValue) -> u128 {
    scalar
        .cast_to(&DataType::Int64)
        .ok()
        .and_then(|v| if let ScalarValue::Int64(Some(n)) = v { Some(n.max(0) as u128) } else { None })
        .unwrap_or(0)
}

/// The sum of the positive counts in `array`.
fn counts_of(array: &ArrayRef) -> u128 {
    let Ok(cast) = arrow_cast::cast(array, &DataType::Int64) else { return 0 };
    let Some(counts) = cast.as_any().downcast_ref::<Int64Array>() else { return 0 };
    counts.iter().flatten().map(|n| n.max(0) as u128).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_huge_repeat_is_refused_and_a_small_one_answers() {
        let ctx = SessionContext::new();
        bound_amplifying_functions(&ctx, 64 << 20).unwrap();
        let small = ctx.sql("SELECT length(repeat('ab', 1000)) AS n").await.unwrap().collect().await.unwrap();
        assert_eq!(small[0].num_rows(), 1);
        for sql in [
            "SELECT length(repeat('x', 100000000)) FROM range(4)",
            "SELECT length(repeat(CAST(value AS VARCHAR), 10000000)) FROM range(100)",
            "SELECT length(lpad('x', 100000000)) FROM range(4)",
            "SELECT length(rpad(CAST(value AS VARCHAR), CAST(value * 10000000 AS BIGINT))) FROM range(100)",
        ] {
            let result = match ctx.sql(sql).await {
                Ok(frame) => frame.collect().await.map(|_| ()),
                Err(e) => Err(e),
            };
            let err = result.expect_err(sql).to_string();
            assert!(err.contains("more than the query's memory (64 MiB)"), "{sql}: {err}");
        }
    }
}
