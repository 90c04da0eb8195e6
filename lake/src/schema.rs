//! Table creation and additive schema evolution.

use std::collections::HashMap;

use arrow_schema::{DataType, Field, Fields, Schema as ArrowSchema};
use iceberg::arrow::arrow_schema_to_schema_auto_assign_ids;
use iceberg::spec::{Transform, Type, UnboundPartitionSpec};
use iceberg::table::Table;
use iceberg::transaction::{AddColumn, ApplyTransactionAction, Transaction};
use iceberg::{TableCreation, TableIdent};

use crate::pinned::PinnedCatalog;
use crate::{Lake, LakeError};

/// What a table should look like: its Arrow schema (field ids are assigned by the catalog)
/// and the timestamp column whose day partitions it.
#[derive(Debug, Clone)]
pub struct TableSpec {
    pub ident: TableIdent,
    pub schema: ArrowSchema,
    /// Partition by `day(<column>)` of this timestamp column.
    pub partition_day: Option<String>,
}

/// What `ensure_table` had to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TableStatus {
    Created,
    /// Columns (dotted paths) added to an existing table.
    Evolved(Vec<String>),
    Unchanged,
}

/// Properties every ingot table gets. The `commit.retry.*` properties keep Iceberg's
/// defaults: every engine reads them (Trino's optimize, Spark's rewrites, PyIceberg's
/// appends), and ingot commits every few seconds, so they must allow retries. ingot's own
/// commits never go through iceberg's retry loop (see `pinned`); its policy is its config.
fn table_properties() -> HashMap<String, String> {
    HashMap::from([
        ("write.format.default".into(), "parquet".into()),
        ("write.parquet.compression-codec".into(), "zstd".into()),
    ])
}

/// What [`Lake::ensure_table`] would change, worked out without changing anything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SchemaPlan {
    /// The table does not exist yet: it would be created.
    pub create: bool,
    /// Columns (dotted paths) it would add.
    pub added: Vec<String>,
    /// The table's columns the spec no longer has: kept (Iceberg columns are never dropped),
    /// null in new rows.
    pub no_longer_in_spec: Vec<String>,
}

/// What earlier ingot versions set and no table should keep: zero retries for every engine.
const RETRIES_DISABLED: (&str, &str) = ("commit.retry.num-retries", "0");

impl Lake {
    /// Creates the table, or adds the columns the spec has and the table lacks. Columns are
    /// never dropped or retyped: old rows keep their values, new columns read as null.
    pub async fn ensure_table(&self, spec: &TableSpec) -> Result<(Table, TableStatus), LakeError> {
        if !self.exists(&spec.ident).await? {
            return self.create_table(spec).await;
        }
        let mut table = self.load(&spec.ident).await?;
        if table.metadata().properties().get(RETRIES_DISABLED.0).map(String::as_str)
            == Some(RETRIES_DISABLED.1)
        {
            table = self.allow_retries(table).await?;
        }
        let (_, additions) = column_additions(&table, spec)?;
        if additions.is_empty() {
            return Ok((table, TableStatus::Unchanged));
        }
        let mut action = Transaction::new(&table).update_schema();
        let mut added = Vec::new();
        for (parent, field) in additions {
            let ty = iceberg_type(&spec.ident, &field)?;
            self.check_readable(&spec.ident, field.name(), &ty)?;
            added.push(dotted(parent.as_deref(), field.name()));
            let column = match parent {
                Some(p) => AddColumn::builder().parent(p).name(field.name()).field_type(ty).build(),
                None => AddColumn::optional(field.name(), ty),
            };
            action = action.add_column(column);
        }
        let table = action
            .apply(Transaction::new(&table))
            .map_err(LakeError::iceberg("prepare schema update"))?
            .commit(&PinnedCatalog { lake: self, table: table.clone() })
            .await
            .map_err(LakeError::commit(&spec.ident, "evolve schema of"))?;
        tracing::info!(table = %spec.ident, columns = ?added, "added columns");
        Ok((table, TableStatus::Evolved(added)))
    }

    /// What [`Lake::ensure_table`] would do to the table; the error it would stop with (a
    /// retyped column) is returned as it would be.
    pub async fn plan_table(&self, spec: &TableSpec) -> Result<SchemaPlan, LakeError> {
        if !self.exists(&spec.ident).await? {
            return Ok(SchemaPlan { create: true, ..Default::default() });
        }
        let table = self.load(&spec.ident).await?;
        let (current, additions) = column_additions(&table, spec)?;
        let added = additions.iter().map(|(parent, field)| dotted(parent.as_deref(), field.name())).collect();
        let mut no_longer_in_spec = Vec::new();
        absent_columns(None, current.fields(), spec.schema.fields(), &mut no_longer_in_spec);
        Ok(SchemaPlan { create: false, added, no_longer_in_spec })
    }

    /// Refuses a column the catalog's readers cannot read (see `catalog::glue::athena`).
    fn check_readable(&self, table: &TableIdent, column: &str, field_type: &Type) -> Result<(), LakeError> {
        match crate::catalog::athena_unreadable(field_type).filter(|_| self.athena_types) {
            None => Ok(()),
            Some(found) => Err(LakeError::Schema {
                table: table.to_string(),
                problem: format!(
                    "column `{column}` holds Iceberg type {found}, which Athena cannot read; cast it in the SQL \
                     (or set catalog.glue.athena_types = false if Athena never reads this catalog)"
                ),
            }),
        }
    }

    /// Drops the zero-retries property tables created by earlier ingot versions carry.
    async fn allow_retries(&self, table: Table) -> Result<Table, LakeError> {
        let ident = table.identifier().clone();
        let updated = Transaction::new(&table)
            .update_table_properties()
            .remove(RETRIES_DISABLED.0.to_string())
            .apply(Transaction::new(&table))
            .map_err(LakeError::iceberg("prepare property update"))?
            .commit(&PinnedCatalog { lake: self, table })
            .await;
        match updated {
            Ok(table) => {
                tracing::info!(table = %ident, "removed commit.retry.num-retries=0: other engines may retry again");
                Ok(table)
            }
            // Another writer got there first; the next start tries again.
            Err(e) if e.kind() == iceberg::ErrorKind::CatalogCommitConflicts => self.load(&ident).await,
            Err(e) => Err(LakeError::iceberg(format!("update properties of {ident}"))(e)),
        }
    }

    async fn create_table(&self, spec: &TableSpec) -> Result<(Table, TableStatus), LakeError> {
        self.ensure_namespace(spec.ident.namespace()).await?;
        let schema = arrow_schema_to_schema_auto_assign_ids(&spec.schema)
            .map_err(LakeError::iceberg(format!("map schema of {}", spec.ident)))?;
        for field in schema.as_struct().fields() {
            self.check_readable(&spec.ident, &field.name, &field.field_type)?;
        }
        let mut creation = TableCreation::builder()
            .name(spec.ident.name().to_string())
            .schema(schema.clone())
            .properties(table_properties())
            .build();
        if let Some(column) = &spec.partition_day {
            let field = schema.field_by_name(column).ok_or_else(|| LakeError::Schema {
                table: spec.ident.to_string(),
                problem: format!("partition column `{column}` is not in the schema"),
            })?;
            let partition = UnboundPartitionSpec::builder()
                .add_partition_field(field.id, format!("{column}_day"), Transform::Day)
                .map_err(LakeError::iceberg("build partition spec"))?
                .build();
            creation.partition_spec = Some(partition);
        }
        match self.catalog().create_table(spec.ident.namespace(), creation).await {
            Ok(table) => Ok((table, TableStatus::Created)),
            // Lost a creation race with another ingot: use the winner's table.
            Err(_) if self.exists(&spec.ident).await? => Box::pin(self.ensure_table(spec)).await,
            Err(e) => Err(LakeError::iceberg(format!("create table {}", spec.ident))(e)),
        }
    }
}

/// A column to add: the dotted path of its parent struct (none at the top level), the field.
type Addition = (Option<String>, Field);

/// The table's current schema, and every column of `spec` it lacks.
fn column_additions(table: &Table, spec: &TableSpec) -> Result<(ArrowSchema, Vec<Addition>), LakeError> {
    let current = iceberg::arrow::schema_to_arrow_schema(table.metadata().current_schema())
        .map_err(LakeError::iceberg("convert table schema"))?;
    let mut additions = Vec::new();
    missing_columns(&spec.ident, None, current.fields(), spec.schema.fields(), &mut additions)?;
    Ok((current, additions))
}

/// `parent.name`, or `name` at the top level.
fn dotted(parent: Option<&str>, name: &str) -> String {
    match parent {
        Some(p) => format!("{p}.{name}"),
        None => name.to_string(),
    }
}

/// Collects `(parent path, field)` for every field of `wanted` that `current` lacks,
/// descending into structs present in both.
fn missing_columns(
    table: &TableIdent,
    parent: Option<&str>,
    current: &Fields,
    wanted: &Fields,
    out: &mut Vec<Addition>,
) -> Result<(), LakeError> {
    for field in wanted {
        match current.iter().find(|c| c.name() == field.name()) {
            None => out.push((parent.map(str::to_string), field.as_ref().clone())),
            Some(existing) => match (existing.data_type(), field.data_type()) {
                (DataType::Struct(have), DataType::Struct(want)) => {
                    missing_columns(table, Some(&dotted(parent, field.name())), have, want, out)?;
                }
                (have, want) if same_kind(have, want) => {}
                (have, want) => {
                    return Err(LakeError::Schema {
                        table: table.to_string(),
                        problem: format!(
                            "column `{}` is {have} in the table but {want} in the contract; \
                             Iceberg columns are not retyped — add a new field instead",
                            field.name()
                        ),
                    });
                }
            },
        }
    }
    Ok(())
}

/// Collects the dotted paths of `current`'s fields that `wanted` lacks.
fn absent_columns(parent: Option<&str>, current: &Fields, wanted: &Fields, out: &mut Vec<String>) {
    for field in current {
        let path = dotted(parent, field.name());
        match wanted.iter().find(|w| w.name() == field.name()) {
            None => out.push(path),
            Some(w) => {
                if let (DataType::Struct(have), DataType::Struct(want)) = (field.data_type(), w.data_type()) {
                    absent_columns(Some(&path), have, want, out);
                }
            }
        }
    }
}

/// Same type, ignoring field ids and nullability inside nested types.
fn same_kind(a: &DataType, b: &DataType) -> bool {
    match (a, b) {
        (DataType::List(x), DataType::List(y)) => same_kind(x.data_type(), y.data_type()),
        (DataType::Map(x, _), DataType::Map(y, _)) => same_kind(x.data_type(), y.data_type()),
        (DataType::Struct(x), DataType::Struct(y)) => y
            .iter()
            .all(|f| x.iter().any(|g| g.name() == f.name() && same_kind(g.data_type(), f.data_type()))),
        (DataType::Timestamp(u, _), DataType::Timestamp(v, _)) => u == v,
        _ => a == b,
    }
}

fn iceberg_type(table: &TableIdent, field: &Field) -> Result<Type, LakeError> {
    let schema =
        arrow_schema_to_schema_auto_assign_ids(&ArrowSchema::new(vec![field.clone()])).map_err(|e| {
            LakeError::Schema { table: table.to_string(), problem: format!("column `{}`: {e}", field.name()) }
        })?;
    Ok(schema.as_struct().fields()[0].field_type.as_ref().clone())
}
