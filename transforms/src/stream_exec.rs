//! An operator that hands its one input's batches on through a function of the stream: same
//! schema, same partitions, same order. What ingot inserts into DataFusion plans is of this
//! kind: conforming scanned batches to their declared types, and guarding a query's budget.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use datafusion::common::Result;
use datafusion::error::DataFusionError;
use datafusion::execution::TaskContext;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties, SendableRecordBatchStream,
};

/// What a [`StreamExec`] does to each partition's stream of its input.
pub(crate) type StreamFn =
    Arc<dyn Fn(SendableRecordBatchStream) -> Result<SendableRecordBatchStream> + Send + Sync>;

/// `input`, its every partition's stream passed through `wrap`.
pub(crate) struct StreamExec {
    name: &'static str,
    input: Arc<dyn ExecutionPlan>,
    wrap: StreamFn,
    /// Whether DataFusion may repartition the input before this node. `false` where the node
    /// must meet the input's batches first (a repartition would see them unwrapped).
    repartition_input: bool,
    /// The node's own properties when `wrap` changes the schema (else the input's).
    properties: Option<Arc<PlanProperties>>,
}

impl StreamExec {
    pub fn new(
        name: &'static str,
        input: Arc<dyn ExecutionPlan>,
        wrap: StreamFn,
        repartition_input: bool,
    ) -> Self {
        Self { name, input, wrap, repartition_input, properties: None }
    }

    /// A node whose streams are of `schema` (the input's partitioning and order otherwise).
    pub fn with_schema(mut self, schema: arrow_schema::SchemaRef) -> Self {
        let eq = datafusion::physical_expr::EquivalenceProperties::new(schema);
        self.properties = Some(Arc::new(self.input.properties().as_ref().clone().with_eq_properties(eq)));
        self
    }
}

impl fmt::Debug for StreamExec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(self.name).field("input", &self.input).finish()
    }
}

impl DisplayAs for StreamExec {
    fn fmt_as(&self, _: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.name)
    }
}

impl ExecutionPlan for StreamExec {
    fn name(&self) -> &str {
        self.name
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.properties.as_ref().unwrap_or_else(|| self.input.properties())
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        vec![self.repartition_input]
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        match children.pop() {
            Some(input) if children.is_empty() => {
                let mut node = Self::new(self.name, input, self.wrap.clone(), self.repartition_input);
                if self.properties.is_some() {
                    node = node.with_schema(self.schema());
                }
                Ok(Arc::new(node))
            }
            _ => Err(DataFusionError::Internal(format!("{} has exactly one child", self.name))),
        }
    }

    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        (self.wrap)(self.input.execute(partition, context)?)
    }
}
