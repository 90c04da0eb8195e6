//! `[query]`: the bounds every ad-hoc query runs within, over the HTTP API and `ingot query`
//! alike, and the check of a query's shape made before DataFusion plans it.

use std::ops::ControlFlow;
use std::time::Duration;

use datafusion::sql::parser::{DFParserBuilder, Statement as DfStatement};
use datafusion::sql::sqlparser::ast::{Expr, Visit, Visitor};
use serde::Deserialize;

use crate::TransformError;

/// How much one query may take. The defaults suit an API on a small machine; each names the
/// config key a refusal points to.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct QueryLimits {
    /// A query running longer is stopped, wherever it is (planning excepted: see
    /// `max_expression_depth`), and answered 504.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Memory the query's operators (sorts, aggregates, joins) may hold; past it the query
    /// fails with a clear error instead of growing the process.
    #[serde(default = "default_max_memory", deserialize_with = "byte_size")]
    pub max_memory: usize,
    /// A result with more rows is cut off with an error.
    #[serde(default = "default_max_rows")]
    pub max_rows: usize,
    /// A result larger than this once encoded (JSON lines, CSV, Arrow) is cut off with an error.
    #[serde(default = "default_max_result_bytes", deserialize_with = "byte_size")]
    pub max_result_bytes: usize,
    /// Queries running at once over the API; one more is answered 429.
    #[serde(default = "default_max_concurrent")]
    pub max_concurrent: usize,
    /// Deepest nesting of expressions (`NOT NOT …`, `a + b + …`, nested `CASE`) accepted.
    /// DataFusion's planner recurses per level and its cost grows with the square of the
    /// depth, so this bounds the stack and the time spent planning, which cannot be cancelled.
    #[serde(default = "default_max_expression_depth")]
    pub max_expression_depth: usize,
    /// Longest SQL text accepted, in bytes.
    #[serde(default = "default_max_sql_bytes", deserialize_with = "byte_size")]
    pub max_sql_bytes: usize,
    /// Threads the queries run on. Default: one fewer than the cores (at least one), so
    /// queries never hold every core ingestion and the HTTP server need.
    #[serde(default)]
    pub threads: Option<usize>,
}

fn default_timeout() -> Duration {
    Duration::from_secs(30)
}
fn default_max_memory() -> usize {
    256 << 20
}
fn default_max_rows() -> usize {
    1_000_000
}
fn default_max_result_bytes() -> usize {
    256 << 20
}
fn default_max_concurrent() -> usize {
    2
}
fn default_max_expression_depth() -> usize {
    128
}
fn default_max_sql_bytes() -> usize {
    64 << 10
}

impl Default for QueryLimits {
    fn default() -> Self {
        Self {
            timeout: default_timeout(),
            max_memory: default_max_memory(),
            max_rows: default_max_rows(),
            max_result_bytes: default_max_result_bytes(),
            max_concurrent: default_max_concurrent(),
            max_expression_depth: default_max_expression_depth(),
            max_sql_bytes: default_max_sql_bytes(),
            threads: None,
        }
    }
}

/// A size given as a number of bytes or as text with a unit: `"256MiB"`, `"64 KiB"`, `"1GB"`.
pub fn byte_size<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<usize, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Size {
        Bytes(usize),
        Text(String),
    }
    match Size::deserialize(deserializer)? {
        Size::Bytes(n) => Ok(n),
        Size::Text(text) => parse_byte_size(&text).map_err(serde::de::Error::custom),
    }
}

fn parse_byte_size(text: &str) -> Result<usize, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: usize = number.parse().map_err(|_| format!("`{text}` is not a size like \"256MiB\""))?;
    let factor: usize = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1_000,
        "kib" | "k" => 1 << 10,
        "mb" => 1_000_000,
        "mib" | "m" => 1 << 20,
        "gb" => 1_000_000_000,
        "gib" | "g" => 1 << 30,
        other => {
            return Err(format!("unknown unit `{other}` in `{text}` (use B, KiB, MiB, GiB, KB, MB, GB)"));
        }
    };
    number.checked_mul(factor).ok_or_else(|| format!("`{text}` is too large"))
}

/// Refuses SQL longer than `max_sql_bytes`.
pub(crate) fn check_length(sql: &str, limits: &QueryLimits) -> Result<(), TransformError> {
    match sql.len() > limits.max_sql_bytes {
        true => Err(TransformError::Refused(format!(
            "the SQL is {} bytes, more than query.max_sql_bytes ({})",
            sql.len(),
            limits.max_sql_bytes
        ))),
        false => Ok(()),
    }
}

/// Refuses SQL nesting expressions deeper than `max_expression_depth`, before anything
/// deeper than the parser sees it.
pub(crate) fn check_depth(sql: &str, limits: &QueryLimits) -> Result<(), TransformError> {
    let statements = DFParserBuilder::new(sql).build()?.parse_statements()?;
    let mut depth = Depth { current: 0, limit: limits.max_expression_depth };
    for statement in &statements {
        // Only plain SQL statements hold expressions worth bounding; DataFusion's own
        // (`CREATE EXTERNAL TABLE`, `COPY`) are refused later as not read-only.
        if let DfStatement::Statement(statement) = statement
            && statement.visit(&mut depth).is_break()
        {
            return Err(TransformError::Refused(format!(
                "an expression nests deeper than query.max_expression_depth ({}); flatten it \
                 (an IN list instead of a chain of OR, a CASE with several WHEN instead of nested CASE)",
                limits.max_expression_depth
            )));
        }
    }
    Ok(())
}

/// Tracks the nesting of expressions during a visit and stops it past the limit, so the visit
/// itself never recurses deeper than the limit.
struct Depth {
    current: usize,
    limit: usize,
}

impl Visitor for Depth {
    type Break = ();

    fn pre_visit_expr(&mut self, _: &Expr) -> ControlFlow<()> {
        self.current += 1;
        if self.current > self.limit { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
    }

    fn post_visit_expr(&mut self, _: &Expr) -> ControlFlow<()> {
        self.current -= 1;
        ControlFlow::Continue(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(depth: usize) -> QueryLimits {
        QueryLimits { max_expression_depth: depth, ..QueryLimits::default() }
    }

    #[test]
    fn a_long_chain_of_terms_is_refused_naming_the_key() {
        let sql = format!("SELECT {}", vec!["1"; 300].join(" + "));
        let err = check_depth(&sql, &limits(128)).unwrap_err().to_string();
        assert!(err.contains("query.max_expression_depth (128)"), "{err}");
        check_depth(&sql, &limits(300)).unwrap();
    }

    #[test]
    fn depth_counts_nesting_not_breadth() {
        let wide =
            format!("SELECT {}", (0..500).map(|i| format!("{i} + 1 AS c{i}")).collect::<Vec<_>>().join(", "));
        check_depth(&wide, &limits(4)).unwrap();
        let nested = format!("SELECT {}true", "NOT ".repeat(10));
        assert!(check_depth(&nested, &limits(10)).is_err());
        check_depth(&nested, &limits(11)).unwrap();
    }

    #[test]
    fn subqueries_count_from_where_they_sit() {
        // AND > subquery > NOT > NOT > true.
        let sql = "SELECT (SELECT NOT NOT true) AND true";
        assert!(check_depth(sql, &limits(4)).is_err());
        check_depth(sql, &limits(5)).unwrap();
    }

    #[test]
    fn sizes_take_units() {
        assert_eq!(parse_byte_size("256MiB").unwrap(), 256 << 20);
        assert_eq!(parse_byte_size("64 KiB").unwrap(), 64 << 10);
        assert_eq!(parse_byte_size("1GB").unwrap(), 1_000_000_000);
        assert_eq!(parse_byte_size("42").unwrap(), 42);
        assert!(parse_byte_size("12 parsecs").unwrap_err().contains("unknown unit"));
    }

    #[test]
    fn overlong_sql_is_refused_before_parsing() {
        let sql = format!("SELECT '{}'", "x".repeat(100));
        let limits = QueryLimits { max_sql_bytes: 50, ..QueryLimits::default() };
        let err = check_length(&sql, &limits).unwrap_err().to_string();
        assert!(err.contains("query.max_sql_bytes (50)"), "{err}");
    }
}
