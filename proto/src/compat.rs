//! Whether a new version of a contract can replace the old one without breaking ingest: what
//! `ingot contract check --against <git ref>` reports.
//!
//! Breaking for ingot is stricter than wire compatibility, because bronze columns are named
//! after fields and never dropped or retyped: a removed field makes producers still sending it
//! fail as `unknown_fields`; a renamed or reused field number puts new values in a different
//! column (or the wrong one); a changed type or cardinality cannot be stored in the existing
//! column; a removed enum value reads back as a bare number. Added fields, messages and enum
//! values are additive: a restart adds their columns.

use std::collections::HashSet;
use std::fmt;

use prost_reflect::{EnumDescriptor, FieldDescriptor, Kind, MessageDescriptor};

/// Where in a `.proto` file a change is: the file (relative to the contracts directory) and
/// the 1-based line, when the compiler kept source positions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceLocation {
    pub file: String,
    pub line: Option<u32>,
}

impl fmt::Display for SourceLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}", self.file),
            None => f.write_str(&self.file),
        }
    }
}

/// One difference between two versions of a contract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContractChange {
    pub breaking: bool,
    /// In the new version (or, for what it no longer has, where its message is).
    pub at: SourceLocation,
    pub what: String,
}

impl fmt::Display for ContractChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = if self.breaking { "BREAKING" } else { "additive" };
        write!(f, "{}: {verdict}: {}", self.at, self.what)
    }
}

/// Every change from `old` to `new` (the same message in two versions of the contracts),
/// descending into the message and enum types their fields use.
pub fn compare_messages(old: &MessageDescriptor, new: &MessageDescriptor) -> Vec<ContractChange> {
    let mut changes = Vec::new();
    let mut seen = HashSet::new();
    compare(old, new, &mut seen, &mut changes);
    changes
}

fn compare(
    old: &MessageDescriptor,
    new: &MessageDescriptor,
    seen: &mut HashSet<(String, String)>,
    out: &mut Vec<ContractChange>,
) {
    if !seen.insert((old.full_name().to_string(), new.full_name().to_string())) {
        return;
    }
    let message = new.full_name();
    for was in old.fields() {
        match new.get_field(was.number()) {
            None => out.push(ContractChange {
                breaking: true,
                at: message_location(new),
                what: match new.get_field_by_name(was.name()) {
                    Some(now) => format!(
                        "{message}.{} moved from number {} to {}: producers on the old contract send it as an unknown field",
                        was.name(),
                        was.number(),
                        now.number()
                    ),
                    None => format!(
                        "{message}.{} (= {}) was removed: producers still sending it are quarantined as unknown_fields; \
                         keep the field (it may stay unset) or mark it `reserved` only once no producer sends it",
                        was.name(),
                        was.number()
                    ),
                },
            }),
            Some(now) if now.name() != was.name() => out.push(ContractChange {
                breaking: true,
                at: field_location(&now),
                what: format!(
                    "field number {} of {message} was `{}` and is now `{}`: its values would land in a new column \
                     (a reused number puts old producers' values in the wrong one)",
                    was.number(),
                    was.name(),
                    now.name()
                ),
            }),
            Some(now) => compare_field(&was, &now, seen, out),
        }
    }
    for now in new.fields() {
        if old.get_field(now.number()).is_none() && old.get_field_by_name(now.name()).is_none() {
            out.push(ContractChange {
                breaking: false,
                at: field_location(&now),
                what: format!(
                    "{message}.{} (= {}) added: a restart adds its column",
                    now.name(),
                    now.number()
                ),
            });
        }
    }
}

fn compare_field(
    was: &FieldDescriptor,
    now: &FieldDescriptor,
    seen: &mut HashSet<(String, String)>,
    out: &mut Vec<ContractChange>,
) {
    let name = now.full_name();
    if was.cardinality() != now.cardinality() || was.is_map() != now.is_map() {
        out.push(ContractChange {
            breaking: true,
            at: field_location(now),
            what: format!(
                "{name} changed from {} to {}: the column cannot hold both",
                shape(was),
                shape(now)
            ),
        });
        return;
    }
    match (was.kind(), now.kind()) {
        (Kind::Message(a), Kind::Message(b)) => {
            if is_well_known(&a) || is_well_known(&b) {
                if a.full_name() != b.full_name() {
                    out.push(type_changed(name, now, a.full_name(), b.full_name()));
                }
            } else {
                compare(&a, &b, seen, out);
            }
        }
        (Kind::Enum(a), Kind::Enum(b)) => compare_enums(name, now, &a, &b, out),
        (a, b) if a == b => {}
        (a, b) => out.push(type_changed(name, now, &kind_name(&a), &kind_name(&b))),
    }
}

fn compare_enums(
    field: &str,
    now: &FieldDescriptor,
    old: &EnumDescriptor,
    new: &EnumDescriptor,
    out: &mut Vec<ContractChange>,
) {
    for value in old.values() {
        match new.get_value(value.number()) {
            None => out.push(ContractChange {
                breaking: true,
                at: field_location(now),
                what: format!(
                    "{field}: enum value {} (= {}) of {} was removed: producers sending it store a bare number",
                    value.name(),
                    value.number(),
                    new.full_name()
                ),
            }),
            Some(v) if v.name() != value.name() => out.push(ContractChange {
                breaking: true,
                at: field_location(now),
                what: format!(
                    "{field}: enum value {} of {} was `{}` and is now `{}`: stored names change meaning",
                    value.number(),
                    new.full_name(),
                    value.name(),
                    v.name()
                ),
            }),
            Some(_) => {}
        }
    }
}

fn type_changed(field: &str, now: &FieldDescriptor, was: &str, is: &str) -> ContractChange {
    ContractChange {
        breaking: true,
        at: field_location(now),
        what: format!(
            "{field} changed type from {was} to {is}: bronze columns are never retyped; add a new field"
        ),
    }
}

fn shape(field: &FieldDescriptor) -> &'static str {
    if field.is_map() {
        "a map"
    } else if field.is_list() {
        "repeated"
    } else {
        "singular"
    }
}

fn kind_name(kind: &Kind) -> String {
    match kind {
        Kind::Message(m) => m.full_name().to_string(),
        Kind::Enum(e) => e.full_name().to_string(),
        other => format!("{other:?}").to_lowercase(),
    }
}

fn is_well_known(message: &MessageDescriptor) -> bool {
    message.package_name() == "google.protobuf"
}

fn field_location(field: &FieldDescriptor) -> SourceLocation {
    location(&field.parent_file(), field.path())
}

/// Where `message` is defined.
pub fn message_location(message: &MessageDescriptor) -> SourceLocation {
    location(&message.parent_file(), message.path())
}

fn location(file: &prost_reflect::FileDescriptor, path: &[i32]) -> SourceLocation {
    let proto = file.file_descriptor_proto();
    let line = proto
        .source_code_info
        .as_ref()
        .and_then(|info| info.location.iter().find(|l| l.path == path))
        .and_then(|l| l.span.first())
        .map(|line| *line as u32 + 1);
    SourceLocation { file: file.name().to_string(), line }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ContractRegistry;

    const BASE: &str = r#"syntax = "proto3";
package t.v1;
import "google/protobuf/timestamp.proto";

enum Status {
  STATUS_UNSPECIFIED = 0;
  STATUS_OK = 1;
  STATUS_BAD = 2;
}

message Item {
  string sku = 1;
  int32 quantity = 2;
}

message Event {
  string id = 1;
  int64 amount = 2;
  Status status = 3;
  repeated Item items = 4;
  google.protobuf.Timestamp at = 5;
  map<string, string> tags = 6;
}
"#;

    fn event(text: &str) -> MessageDescriptor {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("event.proto"), text).unwrap();
        ContractRegistry::load(dir.path()).unwrap().message("t.v1.Event").unwrap()
    }

    /// (edit, new text, breaking?, a phrase the report must hold)
    fn cases() -> Vec<(&'static str, String, bool, &'static str)> {
        let edit = |from: &str, to: &str| {
            assert!(BASE.contains(from), "{from}");
            BASE.replacen(from, to, 1)
        };
        vec![
            ("nothing", BASE.to_string(), false, ""),
            ("a comment", edit("message Event {", "// Orders.\nmessage Event {"), false, ""),
            (
                "a field added",
                edit(
                    "  map<string, string> tags = 6;\n",
                    "  map<string, string> tags = 6;\n  string note = 7;\n",
                ),
                false,
                "t.v1.Event.note (= 7) added",
            ),
            (
                "a nested field added",
                edit("  int32 quantity = 2;\n", "  int32 quantity = 2;\n  string name = 3;\n"),
                false,
                "t.v1.Item.name (= 3) added",
            ),
            (
                "an enum value added",
                edit("  STATUS_BAD = 2;\n", "  STATUS_BAD = 2;\n  STATUS_NEW = 3;\n"),
                false,
                "",
            ),
            (
                "a field removed",
                edit("  int64 amount = 2;\n", ""),
                true,
                "t.v1.Event.amount (= 2) was removed",
            ),
            (
                "a field renamed",
                edit("int64 amount = 2;", "int64 total = 2;"),
                true,
                "field number 2 of t.v1.Event was `amount` and is now `total`",
            ),
            (
                "a number reused",
                edit("int64 amount = 2;", "string coupon = 2;"),
                true,
                "was `amount` and is now `coupon`",
            ),
            (
                "a field renumbered",
                edit("int64 amount = 2;", "int64 amount = 9;"),
                true,
                "moved from number 2 to 9",
            ),
            (
                "int64 to int32",
                edit("int64 amount = 2;", "int32 amount = 2;"),
                true,
                "event.proto:18: BREAKING: t.v1.Event.amount changed type from int64 to int32",
            ),
            (
                "int64 to string",
                edit("int64 amount = 2;", "string amount = 2;"),
                true,
                "from int64 to string",
            ),
            (
                "singular to repeated",
                edit("int64 amount = 2;", "repeated int64 amount = 2;"),
                true,
                "from singular to repeated",
            ),
            (
                "a nested type changed",
                edit("int32 quantity = 2;", "int64 quantity = 2;"),
                true,
                "t.v1.Item.quantity changed type",
            ),
            (
                "a timestamp to a number",
                edit("google.protobuf.Timestamp at = 5;", "int64 at = 5;"),
                true,
                "from google.protobuf.Timestamp to int64",
            ),
            (
                "an enum value removed",
                edit("  STATUS_BAD = 2;\n", ""),
                true,
                "enum value STATUS_BAD (= 2) of t.v1.Status was removed",
            ),
            (
                "a map to a message list",
                edit("map<string, string> tags = 6;", "repeated Item tags = 6;"),
                true,
                "from a map to repeated",
            ),
        ]
    }

    #[test]
    fn each_edit_gets_its_verdict_with_file_and_line() {
        let old = event(BASE);
        for (edit, text, breaking, phrase) in cases() {
            let changes = compare_messages(&old, &event(&text));
            let report: Vec<String> = changes.iter().map(ToString::to_string).collect();
            assert_eq!(changes.iter().any(|c| c.breaking), breaking, "{edit}: {report:#?}");
            if !phrase.is_empty() {
                assert!(report.iter().any(|r| r.contains(phrase)), "{edit}: no `{phrase}` in {report:#?}");
            }
            if phrase.is_empty() {
                assert!(changes.iter().all(|c| !c.breaking), "{edit}: {report:#?}");
            }
            assert!(
                changes.iter().all(|c| c.at.file == "event.proto" && c.at.line.is_some()),
                "{edit}: {report:#?}"
            );
        }
    }
}
