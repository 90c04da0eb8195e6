//! Column lineage from a DataFusion logical plan: for each output column, the input table
//! columns it derives from and how (IDENTITY, TRANSFORMATION, AGGREGATION), plus the input
//! columns that shape the whole result without flowing into a column (FILTER, GROUP_BY, JOIN,
//! SORT, WINDOW).

use std::collections::BTreeSet;

use datafusion::logical_expr::{Expr, LogicalPlan};

/// An input column: (table as written in the SQL, column).
pub type Source = (String, String);

/// How strongly an output depends on a source; the strongest step along the path wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Direct {
    Identity,
    Transformation,
    Aggregation,
}

impl Direct {
    pub fn subtype(self) -> &'static str {
        match self {
            Direct::Identity => "IDENTITY",
            Direct::Transformation => "TRANSFORMATION",
            Direct::Aggregation => "AGGREGATION",
        }
    }
}

/// Lineage of a plan's output.
#[derive(Debug, Default, PartialEq)]
pub struct PlanLineage {
    /// Per output column (in order): its sources.
    pub columns: Vec<(String, BTreeSet<(Source, Direct)>)>,
    /// Sources that affect the whole result, with the INDIRECT subtype.
    pub indirect: BTreeSet<(Source, &'static str)>,
    /// The output's columns and Arrow types, for a table that does not exist yet.
    pub output_types: Vec<(String, String)>,
}

/// Walks `plan` (unoptimized, as DataFusion builds it from the SQL).
pub fn plan_lineage(plan: &LogicalPlan) -> PlanLineage {
    let mut lineage = PlanLineage::default();
    collect_indirect(plan, &mut lineage.indirect);
    for (i, field) in plan.schema().fields().iter().enumerate() {
        lineage.columns.push((field.name().clone(), origins(plan, i)));
        lineage.output_types.push((field.name().clone(), field.data_type().to_string()));
    }
    lineage
}

/// Sources of output column `index` of `plan`.
fn origins(plan: &LogicalPlan, index: usize) -> BTreeSet<(Source, Direct)> {
    match plan {
        LogicalPlan::TableScan(scan) => {
            let field = scan.projected_schema.field(index).name().clone();
            BTreeSet::from([((scan.table_name.to_string(), field), Direct::Identity)])
        }
        LogicalPlan::Projection(p) => expr_origins(&p.input, &p.expr[index], Direct::Identity),
        LogicalPlan::Aggregate(a) => {
            let groups = a.group_expr.len();
            if index < groups {
                expr_origins(&a.input, &a.group_expr[index], Direct::Identity)
            } else {
                a.aggr_expr
                    .get(index - groups)
                    .map_or_else(BTreeSet::new, |e| expr_origins(&a.input, e, Direct::Aggregation))
            }
        }
        LogicalPlan::Window(w) => {
            let inputs = w.input.schema().fields().len();
            if index < inputs {
                origins(&w.input, index)
            } else {
                w.window_expr
                    .get(index - inputs)
                    .map_or_else(BTreeSet::new, |e| expr_origins(&w.input, e, Direct::Aggregation))
            }
        }
        LogicalPlan::Join(j) => {
            let left = j.left.schema().fields().len();
            if index < left { origins(&j.left, index) } else { origins(&j.right, index - left) }
        }
        LogicalPlan::Union(u) => u.inputs.iter().flat_map(|input| origins(input, index)).collect(),
        // Same columns as their input.
        other => match other.inputs().as_slice() {
            [input] if input.schema().fields().len() == other.schema().fields().len() => {
                origins(input, index)
            }
            _ => BTreeSet::new(),
        },
    }
}

/// Sources of `expr` evaluated over `input`: a bare (possibly aliased) column keeps its
/// sources' kind; anything computed is at least a TRANSFORMATION.
fn expr_origins(input: &LogicalPlan, expr: &Expr, floor: Direct) -> BTreeSet<(Source, Direct)> {
    let bare = matches!(strip_alias(expr), Expr::Column(_));
    let floor = if bare { floor } else { floor.max(Direct::Transformation) };
    let mut out = BTreeSet::new();
    for column in expr.column_refs() {
        let Ok(i) = input.schema().index_of_column(column) else { continue };
        for (source, kind) in origins(input, i) {
            out.insert((source, kind.max(floor)));
        }
    }
    out
}

fn strip_alias(expr: &Expr) -> &Expr {
    match expr {
        Expr::Alias(a) => strip_alias(&a.expr),
        other => other,
    }
}

/// Columns used by filters, group keys, join keys, sorts and window partitions anywhere in
/// the plan.
fn collect_indirect(plan: &LogicalPlan, out: &mut BTreeSet<(Source, &'static str)>) {
    let mut note = |input: &LogicalPlan, expr: &Expr, subtype: &'static str| {
        for column in expr.column_refs() {
            if let Ok(i) = input.schema().index_of_column(column) {
                out.extend(origins(input, i).into_iter().map(|(s, _)| (s, subtype)));
            }
        }
    };
    match plan {
        LogicalPlan::Filter(f) => note(&f.input, &f.predicate, "FILTER"),
        LogicalPlan::Aggregate(a) => a.group_expr.iter().for_each(|e| note(&a.input, e, "GROUP_BY")),
        LogicalPlan::Sort(s) => s.expr.iter().for_each(|e| note(&s.input, &e.expr, "SORT")),
        LogicalPlan::Join(j) => {
            for (l, r) in &j.on {
                note(&j.left, l, "JOIN");
                note(&j.right, r, "JOIN");
            }
            if let Some(filter) = &j.filter {
                note(plan, filter, "JOIN");
            }
        }
        _ => {}
    }
    for input in plan.inputs() {
        collect_indirect(input, out);
    }
}

#[cfg(test)]
mod tests {
    use datafusion::prelude::SessionContext;

    use super::*;

    #[tokio::test]
    async fn aggregates_transformations_and_group_keys() {
        let ctx = SessionContext::new();
        ctx.sql(
            "CREATE TABLE s (t TIMESTAMP, c VARCHAR, amount DECIMAL(18,2), customer VARCHAR, flag BOOLEAN)",
        )
        .await
        .unwrap();
        let sql = "SELECT date_trunc('hour', t) AS w, c, count(*) AS n, sum(amount) AS revenue, \
                   count(DISTINCT customer) AS customers FROM s WHERE flag GROUP BY 1, 2";
        let plan = ctx.sql(sql).await.unwrap().logical_plan().clone();
        let lineage = plan_lineage(&plan);
        let get = |name: &str| lineage.columns.iter().find(|(n, _)| n == name).unwrap().1.clone();
        let src = |c: &str| ("s".to_string(), c.to_string());
        assert_eq!(get("w"), BTreeSet::from([(src("t"), Direct::Transformation)]));
        assert_eq!(get("c"), BTreeSet::from([(src("c"), Direct::Identity)]));
        assert_eq!(get("revenue"), BTreeSet::from([(src("amount"), Direct::Aggregation)]));
        assert_eq!(get("customers"), BTreeSet::from([(src("customer"), Direct::Aggregation)]));
        assert!(get("n").is_empty());
        assert!(lineage.indirect.contains(&(src("flag"), "FILTER")));
        assert!(lineage.indirect.contains(&(src("t"), "GROUP_BY")));
        assert!(lineage.indirect.contains(&(src("c"), "GROUP_BY")));
    }
}
