//! Where ad-hoc queries run: a runtime of their own, apart from ingestion and the HTTP
//! server, with a bounded number of slots.
//!
//! A query's planning recurses per level of expression nesting and cannot be interrupted; its
//! operators can burn every core. On their own threads (with a stack sized for the deepest
//! nesting [`QueryLimits`] admits) a runaway query slows the rest of the process by its share
//! of the CPU, never stops it: health checks, ingestion and commits keep their threads.

use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use datafusion::physical_plan::execute_stream;
use futures::StreamExt;
use ingot_lake::{AsOf, Lake};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};

use super::bounded_functions::bound_amplifying_functions;
use super::budget::{Budget, Stop, guard};
use super::limits::QueryLimits;
use super::session::{Planned, explain, plan_query};
use crate::TransformError;
use crate::lake_session::bounded_context;

/// Stack of each query thread. DataFusion's planner used ~100 KiB per nesting level in a debug
/// build (2 MiB, tokio's default, overflowed at 20 levels of `NOT`); 64 MiB holds the default
/// `max_expression_depth` with room to spare and costs only the pages a query touches.
const QUERY_STACK_BYTES: usize = 64 << 20;

/// Batches buffered between a running query and its reader: the query waits for a slow reader
/// instead of piling its result up in memory.
const BUFFERED_BATCHES: usize = 2;

/// Runs queries on threads of their own, at most `limits.max_concurrent` at once.
pub struct QueryPool {
    runtime: Option<tokio::runtime::Runtime>,
    slots: Arc<Semaphore>,
    limits: Arc<QueryLimits>,
}

impl QueryPool {
    /// Starts the pool's threads (`limits.threads`, by default one fewer than the cores).
    pub fn new(limits: QueryLimits) -> Result<Self, TransformError> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let threads = limits.threads.unwrap_or(cores.saturating_sub(1)).max(1);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_stack_size(QUERY_STACK_BYTES)
            .thread_name("ingot-query")
            .enable_all()
            .build()
            .map_err(|e| TransformError::Sql(format!("cannot start the query threads: {e}")))?;
        let slots = Arc::new(Semaphore::new(limits.max_concurrent.max(1)));
        Ok(Self { runtime: Some(runtime), slots, limits: Arc::new(limits) })
    }

    /// The bounds every query of this pool runs within.
    pub fn limits(&self) -> &QueryLimits {
        &self.limits
    }

    /// Plans `sql` (every table read as of `as_of` when given) in a free slot and starts it;
    /// [`TransformError::Busy`] at once when there is none. Resolves when the query is
    /// planned (or refused, or out of time); its rows then come from [`QueryStream::next`].
    pub async fn start(
        &self,
        lake: &Lake,
        sql: &str,
        as_of: Option<AsOf>,
    ) -> Result<QueryStream, TransformError> {
        let permit = self
            .slots
            .clone()
            .try_acquire_owned()
            .map_err(|_| TransformError::Busy(self.limits.max_concurrent))?;
        let budget = Arc::new(Budget::new(self.limits.timeout));
        let (planned_tx, planned_rx) = oneshot::channel();
        let (batches_tx, batches_rx) = mpsc::channel(BUFFERED_BATCHES);
        let run = Run {
            lake: lake.clone(),
            sql: sql.to_string(),
            as_of,
            limits: self.limits.clone(),
            budget: budget.clone(),
            _permit: permit,
        };
        let runtime = self.runtime.as_ref().expect("the runtime lives as long as the pool");
        runtime.spawn(run.run(planned_tx, batches_tx));
        // Any failure here drops both receivers, so the run stops at its next send; past the
        // deadline it is also told to stop its operators.
        let (schema, pinned) = match tokio::time::timeout_at(budget.deadline().into(), planned_rx).await {
            Err(_) => {
                budget.cancel();
                return Err(TransformError::TimedOut(budget.timeout()));
            }
            Ok(Err(_)) => return Err(TransformError::Sql("the query thread stopped unexpectedly".into())),
            Ok(Ok(planned)) => planned?,
        };
        Ok(QueryStream { schema, pinned, batches: batches_rx, budget })
    }
}

impl Drop for QueryPool {
    fn drop(&mut self) {
        // Queries still running are cancelled at their next batch; nothing waits for them.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// A started query: its schema, the snapshots it pinned, and its rows as they are produced.
/// Dropping it stops the query.
pub struct QueryStream {
    pub schema: SchemaRef,
    /// `table → snapshot id` for every time-travel reference (tables read at their current
    /// snapshot are not listed).
    pub pinned: Vec<(String, i64)>,
    batches: mpsc::Receiver<Result<RecordBatch, TransformError>>,
    budget: Arc<Budget>,
}

impl QueryStream {
    /// The next batch of rows, `None` at the end; [`TransformError::TimedOut`] once the
    /// query's deadline passes, however busy its threads are.
    pub async fn next(&mut self) -> Option<Result<RecordBatch, TransformError>> {
        match tokio::time::timeout_at(self.budget.deadline().into(), self.batches.recv()).await {
            Ok(item) => item,
            Err(_) => {
                self.budget.cancel();
                Some(Err(TransformError::TimedOut(self.budget.timeout())))
            }
        }
    }
}

impl Drop for QueryStream {
    fn drop(&mut self) {
        self.budget.cancel();
    }
}

/// One query on the pool's threads, holding its slot until it ends.
struct Run {
    lake: Lake,
    sql: String,
    as_of: Option<AsOf>,
    limits: Arc<QueryLimits>,
    budget: Arc<Budget>,
    _permit: OwnedSemaphorePermit,
}

type PlannedAnswer = Result<(SchemaRef, Vec<(String, i64)>), TransformError>;

impl Run {
    async fn run(
        self,
        planned_tx: oneshot::Sender<PlannedAnswer>,
        batches: mpsc::Sender<Result<RecordBatch, TransformError>>,
    ) {
        let planned = match self.plan().await {
            Ok(planned) => planned,
            Err(e) => {
                let _ = planned_tx.send(Err(e));
                return;
            }
        };
        if planned_tx.send(Ok((planned.schema.clone(), planned.pinned.clone()))).is_err() {
            return;
        }
        let mut rows = 0usize;
        let mut stream = match guard(planned.plan.clone(), &self.budget)
            .and_then(|plan| execute_stream(plan, planned.task.clone()))
        {
            Ok(stream) => stream,
            Err(e) => {
                let _ = batches.send(Err(self.failed(&planned, e).await)).await;
                return;
            }
        };
        while let Some(batch) = stream.next().await {
            let item = match batch {
                Ok(batch) => {
                    rows += batch.num_rows();
                    match rows > self.limits.max_rows {
                        true => Err(TransformError::TooBig(format!(
                            "the result has more than {} rows (query.max_rows); add a LIMIT or narrow the query",
                            self.limits.max_rows
                        ))),
                        false => Ok(batch),
                    }
                }
                Err(e) => Err(self.failed(&planned, e).await),
            };
            let last = item.is_err();
            // The reader went away: dropping the stream stops the operators.
            if batches.send(item).await.is_err() || last {
                return;
            }
        }
    }

    /// Plans the query in a session bounded by `max_memory`.
    async fn plan(&self) -> Result<Planned, TransformError> {
        // Queries fail rather than spill: a temporary file per query could fill the disk the
        // warehouse or the spool lives on.
        let ctx = bounded_context(self.limits.max_memory, false)?;
        bound_amplifying_functions(&ctx, self.limits.max_memory)?;
        plan_query(&self.lake, ctx, &self.sql, self.as_of, &self.limits).await
    }

    /// A run's failure, said in terms of the bound it hit when it hit one.
    async fn failed(&self, planned: &Planned, error: datafusion::error::DataFusionError) -> TransformError {
        match self.budget.stopped() {
            Some(Stop::TimedOut) => TransformError::TimedOut(self.budget.timeout()),
            Some(Stop::Cancelled) => TransformError::Sql("the query was cancelled".into()),
            None => match TransformError::from_run(error, self.limits.max_memory, "query.max_memory") {
                TransformError::DataFusion(e) => {
                    explain(&self.lake, &planned.logical, &planned.aliases, e.into()).await
                }
                other => other,
            },
        }
    }
}
