//! The schema wrapped for every transport: each response gets stable error codes
//! ([`finalize_response`]) and is counted in the metrics, whether it came over HTTP or a
//! WebSocket. The schema is the gateway's (all-in-one server) or one subgraph's
//! (`znovel serve --role <subgraph>`), see [`ServedSchema`].

use crate::graphql::errors::{ErrorCode, finalize_response};
use crate::graphql::{AppSchema, SubgraphSchema};
use crate::metrics::Metrics;
use async_graphql::futures_util::stream::{BoxStream, StreamExt};
use async_graphql::{Data, Executor, Request, Response};
use std::sync::Arc;
use std::time::Instant;

/// The schema a process serves on `/graphql`.
#[derive(Clone)]
pub enum ServedSchema {
    /// The gateway schema: every subgraph merged (the all-in-one server).
    Gateway(AppSchema),
    /// One subgraph, behind a federation router.
    Subgraph(SubgraphSchema),
}

impl From<AppSchema> for ServedSchema {
    fn from(s: AppSchema) -> Self {
        Self::Gateway(s)
    }
}

impl From<SubgraphSchema> for ServedSchema {
    fn from(s: SubgraphSchema) -> Self {
        Self::Subgraph(s)
    }
}

impl Executor for ServedSchema {
    async fn execute(&self, request: Request) -> Response {
        match self {
            Self::Gateway(s) => s.execute(request).await,
            Self::Subgraph(s) => s.execute(request).await,
        }
    }

    fn execute_stream(
        &self,
        request: Request,
        session_data: Option<Arc<Data>>,
    ) -> BoxStream<'static, Response> {
        match self {
            Self::Gateway(s) => Executor::execute_stream(s, request, session_data),
            Self::Subgraph(s) => Executor::execute_stream(s, request, session_data),
        }
    }
}

/// The GraphQL schema plus metrics: what the transports execute requests on.
#[derive(Clone)]
pub struct InstrumentedSchema {
    schema: ServedSchema,
    metrics: Metrics,
}

impl InstrumentedSchema {
    /// Wraps `schema` (the gateway's or a subgraph's).
    pub fn new(schema: impl Into<ServedSchema>, metrics: Metrics) -> Self {
        Self {
            schema: schema.into(),
            metrics,
        }
    }

    fn observe(&self, resp: &mut Response, operation: Option<&str>, started: Instant) {
        finalize_response(resp);
        // A request refused before execution (it does not parse or validate) names no
        // operation that exists: its client-chosen name never becomes a label.
        let refused = resp.data == async_graphql::Value::Null
            && resp.is_err()
            && resp.errors.iter().all(|e| e.path.is_empty());
        let operation = if refused {
            self.metrics.invalid_operation()
        } else {
            self.metrics.operation(operation)
        };
        operation.observe(started.elapsed().as_secs_f64());
        for e in &resp.errors {
            self.metrics
                .graphql_errors
                .with_label_values(&[ErrorCode::of(e).as_str()])
                .inc();
        }
    }
}

impl Executor for InstrumentedSchema {
    async fn execute(&self, request: Request) -> Response {
        let operation = request.operation_name.clone();
        let started = Instant::now();
        let mut resp = self.schema.execute(request).await;
        self.observe(&mut resp, operation.as_deref(), started);
        resp
    }

    fn execute_stream(
        &self,
        request: Request,
        session_data: Option<Arc<Data>>,
    ) -> BoxStream<'static, Response> {
        let operation = request.operation_name.clone();
        let this = self.clone();
        let started = Instant::now();
        Executor::execute_stream(&self.schema, request, session_data)
            .map(move |mut resp| {
                this.observe(&mut resp, operation.as_deref(), started);
                resp
            })
            .boxed()
    }
}
