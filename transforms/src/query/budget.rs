//! Stopping a running query: at its deadline, or when whoever asked for it went away.
//!
//! Dropping a DataFusion stream stops only the tasks that reach an await point, and an
//! operator emitting a cross product from memory may not reach one for minutes. So every
//! operator of the physical plan is wrapped in a `GuardExec`, whose stream checks the budget each
//! time a batch is asked of it: a stopped query ends within one batch of one operator.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use datafusion::common::Result;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::error::DataFusionError;
use datafusion::execution::RecordBatchStream;
use datafusion::physical_plan::{ExecutionPlan, SendableRecordBatchStream};
use futures::{Stream, StreamExt};

use crate::stream_exec::{StreamExec, StreamFn};

/// Why a query stopped before its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    /// It ran past its deadline.
    TimedOut,
    /// Its caller dropped it (the HTTP client went away, the command was interrupted).
    Cancelled,
}

/// One query's deadline and cancellation flag, shared by all its operators.
#[derive(Debug)]
pub(crate) struct Budget {
    deadline: Instant,
    timeout: Duration,
    cancelled: AtomicBool,
}

impl Budget {
    pub fn new(timeout: Duration) -> Self {
        Self { deadline: Instant::now() + timeout, timeout, cancelled: AtomicBool::new(false) }
    }

    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Relaxed);
    }

    /// Whether (and why) the query must stop now.
    pub fn stopped(&self) -> Option<Stop> {
        if self.cancelled.load(Ordering::Relaxed) {
            Some(Stop::Cancelled)
        } else if Instant::now() >= self.deadline {
            Some(Stop::TimedOut)
        } else {
            None
        }
    }
}

/// `plan` with every operator guarded by `budget`. Applied to the final physical plan, after
/// DataFusion's optimizers, so none of them sees (or trips over) the wrappers.
pub(crate) fn guard(plan: Arc<dyn ExecutionPlan>, budget: &Arc<Budget>) -> Result<Arc<dyn ExecutionPlan>> {
    let wrap: StreamFn = {
        let budget = budget.clone();
        Arc::new(move |input| {
            Ok(Box::pin(GuardStream { input, budget: budget.clone(), done: false })
                as SendableRecordBatchStream)
        })
    };
    plan.transform_up(|node| {
        let guarded: Arc<dyn ExecutionPlan> =
            Arc::new(StreamExec::new("GuardExec", node, wrap.clone(), true));
        Ok(Transformed::yes(guarded))
    })
    .map(|t| t.data)
}

struct GuardStream {
    input: SendableRecordBatchStream,
    budget: Arc<Budget>,
    done: bool,
}

impl Stream for GuardStream {
    type Item = Result<RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        if let Some(stop) = self.budget.stopped() {
            self.done = true;
            return Poll::Ready(Some(Err(stopped(stop))));
        }
        self.input.poll_next_unpin(cx)
    }
}

impl RecordBatchStream for GuardStream {
    fn schema(&self) -> SchemaRef {
        self.input.schema()
    }
}

fn stopped(stop: Stop) -> DataFusionError {
    DataFusionError::Execution(match stop {
        Stop::TimedOut => "the query ran out of time".into(),
        Stop::Cancelled => "the query was cancelled".into(),
    })
}
