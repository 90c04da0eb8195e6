//! Trino's time-travel clauses, which DataFusion's parser does not know, rewritten into
//! references to tables pinned at the named snapshot.
//!
//! `FROM bronze.orders FOR VERSION AS OF 42 o` becomes `FROM "bronze.orders@v42" o`; without
//! an alias, the table's own name is added as one so `orders.col` still resolves.

use chrono::{DateTime, NaiveDateTime, Utc};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer, Word};
use ingot_lake::AsOf;

use crate::TransformError;

/// One time-travel reference found in a query.
#[derive(Debug, Clone, PartialEq)]
pub struct TimeTravelRef {
    /// The table as written, e.g. `bronze.orders`.
    pub table: String,
    pub as_of: AsOf,
    /// The name the rewritten query uses for it; resolve and register under this name.
    pub alias_table: String,
}

/// Rewrites every `<table> FOR TIMESTAMP|VERSION AS OF <value>` in `sql`.
pub fn rewrite_time_travel(sql: &str) -> Result<(String, Vec<TimeTravelRef>), TransformError> {
    let located = Tokenizer::new(&GenericDialect {}, sql)
        .tokenize_with_location()
        .map_err(|e| TransformError::Sql(format!("cannot read the query: {e}")))?;
    // What is not rewritten is copied as written: a token printed back from its parsed value
    // loses its escapes (`'it''s'` would come back as `'it's'`: an error, or another statement).
    let texts = token_texts(sql, &located);
    let tokens: Vec<Token> = located.into_iter().map(|t| t.token).collect();
    let mut out: Vec<String> = Vec::with_capacity(tokens.len());
    let mut refs = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let Some((kind, after_of)) = period_clause(&tokens, i) else {
            out.push(texts[i].to_string());
            i += 1;
            continue;
        };
        let (table, name_tokens) = table_before(&tokens, i)
            .ok_or_else(|| TransformError::Sql("`FOR … AS OF` must follow a table name".into()))?;
        let (as_of, next) = period_value(&tokens, after_of, kind)?;
        // Drop the table name (and the whitespace between it and FOR) already emitted.
        let emitted_ws = tokens[..i].iter().rev().take_while(|t| matches!(t, Token::Whitespace(_))).count();
        out.truncate(out.len() - emitted_ws - name_tokens);
        let alias_table = match as_of {
            AsOf::Version(v) => format!("{table}@v{v}"),
            AsOf::Timestamp(t) => format!("{table}@t{}", t.timestamp_micros()),
        };
        out.push(
            Token::Word(Word {
                value: alias_table.clone(),
                quote_style: Some('"'),
                keyword: Keyword::NoKeyword,
            })
            .to_string(),
        );
        if !has_alias(&tokens, next) {
            let short = table.rsplit('.').next().unwrap_or(&table).to_string();
            out.push(format!(
                " AS {}",
                Token::Word(Word { value: short, quote_style: Some('"'), keyword: Keyword::NoKeyword })
            ));
        }
        refs.push(TimeTravelRef { table, as_of, alias_table });
        i = next;
    }
    Ok((out.concat(), refs))
}

/// Each token's text exactly as written: from where it starts to where the next one does.
fn token_texts<'a>(sql: &'a str, located: &[TokenWithSpan]) -> Vec<&'a str> {
    // The tokenizer counts lines and columns (in characters) from 1.
    let mut starts = Vec::with_capacity(located.len());
    let (mut line, mut column) = (1u64, 1u64);
    let mut chars = sql.char_indices().peekable();
    for token in located {
        let at = token.span.start;
        while (line, column) < (at.line, at.column) {
            let Some((_, c)) = chars.next() else { break };
            (line, column) = if c == '\n' { (line + 1, 1) } else { (line, column + 1) };
        }
        starts.push(chars.peek().map_or(sql.len(), |(offset, _)| *offset));
    }
    let ends = starts.iter().skip(1).copied().chain(std::iter::once(sql.len()));
    starts.iter().zip(ends).map(|(start, end)| &sql[*start..end]).collect()
}

#[derive(Clone, Copy, PartialEq)]
enum Period {
    Timestamp,
    Version,
}

fn next_solid(tokens: &[Token], mut i: usize) -> Option<usize> {
    while i < tokens.len() {
        if !matches!(tokens[i], Token::Whitespace(_)) {
            return Some(i);
        }
        i += 1;
    }
    None
}

fn prev_solid(tokens: &[Token], i: usize) -> Option<usize> {
    (0..i).rev().find(|&j| !matches!(tokens[j], Token::Whitespace(_)))
}

fn is_keyword(token: &Token, keyword: Keyword) -> bool {
    matches!(token, Token::Word(w) if w.keyword == keyword && w.quote_style.is_none())
}

/// At `FOR`, `TIMESTAMP|VERSION`, `AS`, `OF`: the kind and the index after `OF`.
fn period_clause(tokens: &[Token], i: usize) -> Option<(Period, usize)> {
    if !is_keyword(&tokens[i], Keyword::FOR) {
        return None;
    }
    let a = next_solid(tokens, i + 1)?;
    let kind = if is_keyword(&tokens[a], Keyword::TIMESTAMP) {
        Period::Timestamp
    } else if is_keyword(&tokens[a], Keyword::VERSION) {
        Period::Version
    } else {
        return None;
    };
    let b = next_solid(tokens, a + 1)?;
    let c = next_solid(tokens, b + 1)?;
    (is_keyword(&tokens[b], Keyword::AS) && is_keyword(&tokens[c], Keyword::OF)).then_some((kind, c + 1))
}

/// The dotted table name ending just before `FOR`, and how many tokens it spans.
fn table_before(tokens: &[Token], for_at: usize) -> Option<(String, usize)> {
    let last = prev_solid(tokens, for_at)?;
    let mut first = last;
    let mut parts = Vec::new();
    loop {
        let Token::Word(word) = &tokens[first] else { return None };
        parts.push(word.value.clone());
        match first.checked_sub(1).map(|j| &tokens[j]) {
            Some(Token::Period) if first >= 2 && matches!(tokens[first - 2], Token::Word(_)) => first -= 2,
            _ => break,
        }
    }
    parts.reverse();
    Some((parts.join("."), last + 1 - first))
}

/// The value after `AS OF` and the index after it.
fn period_value(tokens: &[Token], at: usize, kind: Period) -> Result<(AsOf, usize), TransformError> {
    let at = next_solid(tokens, at).ok_or_else(|| TransformError::Sql("`AS OF` needs a value".into()))?;
    match kind {
        Period::Version => match &tokens[at] {
            Token::Number(n, _) => n.parse::<i64>().map(|v| (AsOf::Version(v), at + 1)).map_err(|_| {
                TransformError::Sql(format!("`FOR VERSION AS OF {n}`: a snapshot id is an integer"))
            }),
            other => Err(TransformError::Sql(format!(
                "`FOR VERSION AS OF` takes a snapshot id (an integer), found `{other}`"
            ))),
        },
        Period::Timestamp => {
            let (literal_at, text) = match &tokens[at] {
                t if is_keyword(t, Keyword::TIMESTAMP) => {
                    let lit = next_solid(tokens, at + 1);
                    match lit.map(|j| (j, &tokens[j])) {
                        Some((j, Token::SingleQuotedString(s))) => (j, s.clone()),
                        _ => {
                            return Err(TransformError::Sql(
                                "`TIMESTAMP` must be followed by a quoted literal".into(),
                            ));
                        }
                    }
                }
                Token::SingleQuotedString(s) => (at, s.clone()),
                other => {
                    return Err(TransformError::Sql(format!(
                        "`FOR TIMESTAMP AS OF` takes a literal such as TIMESTAMP '2026-11-20 18:00:00 UTC', found `{other}`"
                    )));
                }
            };
            Ok((AsOf::Timestamp(parse_timestamp(&text)?), literal_at + 1))
        }
    }
}

/// Whether the relation at `i` already has an alias (`AS x` or a bare identifier).
fn has_alias(tokens: &[Token], i: usize) -> bool {
    match next_solid(tokens, i).map(|j| &tokens[j]) {
        Some(Token::Word(w)) => {
            w.keyword == Keyword::AS || w.keyword == Keyword::NoKeyword || w.quote_style.is_some()
        }
        _ => false,
    }
}

/// Parses a Trino timestamp literal: `2026-11-20 18:00:00[.fff] [UTC|Z|±hh:mm]` or RFC 3339.
/// Without a zone the instant is taken as UTC (ingot's session zone).
pub fn parse_timestamp(text: &str) -> Result<DateTime<Utc>, TransformError> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    let (base, zone) = match text.rsplit_once(' ') {
        Some((base, zone)) if zone.eq_ignore_ascii_case("UTC") || zone == "Z" => (base, None),
        Some((base, zone)) if zone.starts_with('+') || zone.starts_with('-') => (base, Some(zone)),
        _ => (text, None),
    };
    let naive = ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S%.f"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(base, f).ok())
        .or_else(|| {
            chrono::NaiveDate::parse_from_str(base, "%Y-%m-%d").ok().and_then(|d| d.and_hms_opt(0, 0, 0))
        })
        .ok_or_else(|| {
            TransformError::Sql(format!(
                "timestamp '{text}' is not like '2026-11-20 18:00:00 UTC' or '2026-11-20T18:00:00Z'"
            ))
        })?;
    match zone {
        None => Ok(naive.and_utc()),
        Some(zone) => {
            let offset =
                DateTime::parse_from_str(&format!("2000-01-01 00:00:00 {zone}"), "%Y-%m-%d %H:%M:%S %:z")
                    .map_err(|_| {
                        TransformError::Sql(format!("timestamp '{text}': zone `{zone}` is not UTC or ±hh:mm"))
                    })?
                    .offset()
                    .to_owned();
            Ok((naive - chrono::Duration::seconds(i64::from(offset.local_minus_utc()))).and_utc())
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn quotes_inside_literals_and_identifiers_come_back_as_written() {
        for sql in [
            "SELECT 'it''s' AS v",
            "SELECT * FROM t WHERE topic = 'x'' OR ''1''=''1'",
            r#"SELECT "odd""name" FROM t"#,
            "SELECT 'é''ü'\n  FROM t -- ünïcode comment\nWHERE a = 'x\ny'",
            "SELECT E'a\\'' FROM t",
        ] {
            let (rewritten, refs) = rewrite_time_travel(sql).unwrap();
            assert!(refs.is_empty());
            assert_eq!(rewritten, sql);
        }
        let (rewritten, _) =
            rewrite_time_travel("SELECT 'a''b' FROM bronze.orders FOR VERSION AS OF 7 WHERE x = 'c''d'")
                .unwrap();
        assert!(rewritten.contains("'a''b'") && rewritten.contains("'c''d'"), "{rewritten}");
    }

    #[test]
    fn rewrites_version_and_timestamp_clauses() {
        let (sql, refs) = rewrite_time_travel(
            "SELECT count(*) FROM bronze.orders FOR VERSION AS OF 42 o JOIN silver.x FOR TIMESTAMP AS OF TIMESTAMP '2026-11-20 18:00:00 UTC' ON o.id = x.id",
        )
        .unwrap();
        assert_eq!(
            sql,
            "SELECT count(*) FROM \"bronze.orders@v42\" o JOIN \"silver.x@t1795197600000000\" AS \"x\" ON o.id = x.id"
        );
        assert_eq!(refs[0].as_of, AsOf::Version(42));
        assert_eq!(refs[1].as_of, AsOf::Timestamp(Utc.with_ymd_and_hms(2026, 11, 20, 18, 0, 0).unwrap()));
    }

    #[test]
    fn leaves_other_for_and_strings_alone() {
        let sql = "SELECT substring(s FROM 1 FOR 2), 'FOR VERSION AS OF 1' FROM t";
        let (out, refs) = rewrite_time_travel(sql).unwrap();
        assert_eq!(out, sql);
        assert!(refs.is_empty());
    }

    #[test]
    fn timestamp_literals() {
        let at = Utc.with_ymd_and_hms(2026, 11, 20, 18, 0, 0).unwrap();
        for text in [
            "2026-11-20 18:00:00 UTC",
            "2026-11-20 18:00:00",
            "2026-11-20T18:00:00Z",
            "2026-11-20 19:00:00 +01:00",
        ] {
            assert_eq!(parse_timestamp(text).unwrap(), at, "{text}");
        }
        assert!(parse_timestamp("yesterday").is_err());
    }

    #[test]
    fn clear_errors() {
        let err = rewrite_time_travel("SELECT * FROM t FOR VERSION AS OF 'x'").unwrap_err();
        assert!(err.to_string().contains("snapshot id"), "{err}");
    }
}
