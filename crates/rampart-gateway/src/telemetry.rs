//! OpenTelemetry traces: one span per admitted chat request, one linked span per shadow call,
//! exported over OTLP/HTTP (protobuf) when `[telemetry] otlp_endpoint` is set.
//!
//! Attributes follow the GenAI semantic conventions (`gen_ai.operation.name`,
//! `gen_ai.request.model`, `gen_ai.usage.input_tokens`, `gen_ai.usage.output_tokens`,
//! `gen_ai.response.finish_reasons`, `error.type`) plus rampart's own (`rampart.route`,
//! `rampart.rollout`, `rampart.variant`, `rampart.cohort`, `rampart.stage`,
//! `rampart.request_id`, `rampart.shadow`), so a tracing tool can split any chart by cohort. An
//! incoming W3C `traceparent` is continued; the shadow call's span starts a trace of its own
//! with a link to the request's span (it outlives the request).
//!
//! The request path never waits on export: a finished span goes to a bounded queue
//! (`telemetry.queue_capacity`) with `try_send`; a full queue drops it. One task sends batches
//! to the collector. Every span ends up counted in
//! `rampart_trace_spans_total{outcome="exported"|"export_failed"|"dropped"}`, so a dead
//! collector shows up as `export_failed` (and `dropped` once the queue is full), never as
//! latency.

use std::fmt;
use std::time::Duration;

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{
    Link, Span as _, SpanContext, SpanKind, Status, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{
    SdkTracer, SdkTracerProvider, Span, SpanData, SpanExporter as _, SpanProcessor,
};
use prometheus_client::metrics::counter::Counter;
use rampart_core::config::{TelemetryConfig, VariantConfig};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Spans sent to the collector in one request, at most.
const BATCH: usize = 512;

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("telemetry.otlp_endpoint: cannot build the OTLP exporter: {0}")]
    Exporter(String),
}

/// Span counts by outcome (`rampart_trace_spans_total`).
#[derive(Clone, Debug, Default)]
pub struct SpanCounts {
    pub exported: Counter,
    pub export_failed: Counter,
    pub dropped: Counter,
}

impl SpanCounts {
    /// The three `rampart_trace_spans_total` series the exporter increments.
    pub fn of(m: &crate::metrics::TraceMetrics) -> SpanCounts {
        let c = |o: &str| {
            m.spans
                .get_or_create(&crate::metrics::SpanOutcomeLabels {
                    outcome: o.to_string(),
                })
                .clone()
        };
        SpanCounts {
            exported: c("exported"),
            export_failed: c("export_failed"),
            dropped: c("dropped"),
        }
    }
}

/// The tracer, or nothing when telemetry is off (then every span is a no-op).
pub struct Telemetry {
    tracer: Option<SdkTracer>,
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    pub fn disabled() -> Telemetry {
        Telemetry {
            tracer: None,
            provider: None,
        }
    }

    /// The tracer and its export task, or [`Telemetry::disabled`] without an endpoint. Must be
    /// called inside a Tokio runtime (the task is returned to be spawned).
    pub fn build(
        cfg: &TelemetryConfig,
        counts: SpanCounts,
    ) -> Result<(Telemetry, Option<ExportTask>), TelemetryError> {
        use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
        let Some(endpoint) = &cfg.otlp_endpoint else {
            return Ok((Telemetry::disabled(), None));
        };
        let client = reqwest::Client::builder()
            .timeout(cfg.export_timeout)
            .build()
            .map_err(|e| TelemetryError::Exporter(e.to_string()))?;
        let mut exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_http_client(client)
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(format!("{endpoint}/v1/traces"))
            .with_timeout(cfg.export_timeout)
            .build()
            .map_err(|e| TelemetryError::Exporter(e.to_string()))?;
        let resource = Resource::builder()
            .with_service_name(cfg.service_name.clone())
            .build();
        exporter.set_resource(&resource);
        let (tx, rx) = mpsc::channel(cfg.queue_capacity);
        let provider = SdkTracerProvider::builder()
            .with_resource(resource)
            .with_span_processor(QueueProcessor {
                tx,
                dropped: counts.dropped.clone(),
            })
            .build();
        let tracer = provider.tracer("rampart");
        Ok((
            Telemetry {
                tracer: Some(tracer),
                provider: Some(provider),
            },
            Some(ExportTask {
                rx,
                exporter,
                counts,
            }),
        ))
    }

    /// The span of a chat request on `route`, continuing the caller's `traceparent` if any.
    pub fn request(&self, headers: &http::HeaderMap, route: &str) -> RequestSpan {
        let Some(tracer) = &self.tracer else {
            return RequestSpan(None);
        };
        let parent =
            TraceContextPropagator::new().extract(&opentelemetry_http::HeaderExtractor(headers));
        let span = tracer
            .span_builder(format!("chat {route}"))
            .with_kind(SpanKind::Server)
            .with_attributes([
                KeyValue::new("gen_ai.operation.name", "chat"),
                KeyValue::new("rampart.route", route.to_string()),
            ])
            .start_with_context(tracer, &parent);
        RequestSpan(Some(span))
    }

    /// The span of a shadow call, linked to the request's span (`link`), in a trace of its own.
    pub fn shadow(&self, link: Option<SpanContext>, route: &str, request_id: &str) -> RequestSpan {
        let Some(tracer) = &self.tracer else {
            return RequestSpan(None);
        };
        let span = tracer
            .span_builder(format!("shadow chat {route}"))
            .with_kind(SpanKind::Client)
            .with_links(link.into_iter().map(Link::with_context).collect())
            .with_attributes([
                KeyValue::new("gen_ai.operation.name", "chat"),
                KeyValue::new("rampart.route", route.to_string()),
                KeyValue::new("rampart.request_id", request_id.to_string()),
                KeyValue::new("rampart.shadow", true),
            ])
            .start_with_context(tracer, &Context::new());
        RequestSpan(Some(span))
    }

    /// Stop making spans (at shutdown, after the last request).
    pub fn shutdown(&self) {
        if let Some(p) = &self.provider {
            let _ = p.shutdown();
        }
    }
}

/// One span; a no-op when telemetry is off. Ends when finished or dropped.
pub struct RequestSpan(Option<Span>);

impl RequestSpan {
    pub fn none() -> RequestSpan {
        RequestSpan(None)
    }

    /// Where the request went: variant (and its model), cohort, rollout and stage.
    pub fn assigned(
        &mut self,
        request_id: &str,
        variant: &VariantConfig,
        cohort: &str,
        rollout: Option<&str>,
        stage: Option<&str>,
    ) {
        let Some(s) = &mut self.0 else { return };
        s.set_attribute(KeyValue::new("rampart.request_id", request_id.to_string()));
        s.set_attribute(KeyValue::new("gen_ai.request.model", variant.model.clone()));
        s.set_attribute(KeyValue::new(
            "gen_ai.provider.name",
            variant.provider.clone(),
        ));
        s.set_attribute(KeyValue::new("rampart.variant", variant.name.clone()));
        s.set_attribute(KeyValue::new("rampart.cohort", cohort.to_string()));
        if let Some(r) = rollout {
            s.set_attribute(KeyValue::new("rampart.rollout", r.to_string()));
        }
        if let Some(st) = stage {
            s.set_attribute(KeyValue::new("rampart.stage", st.to_string()));
        }
    }

    /// The span's context, to link a shadow call's span to it.
    pub fn context(&self) -> Option<SpanContext> {
        self.0.as_ref().map(|s| s.span_context().clone())
    }

    /// End the span with the answer's usage, or the error.
    pub fn finish(
        &mut self,
        status: u16,
        usage: Option<(u64, u64)>,
        finish_reason: Option<&str>,
        error: Option<&str>,
    ) {
        let Some(mut s) = self.0.take() else { return };
        s.set_attribute(KeyValue::new(
            "http.response.status_code",
            i64::from(status),
        ));
        if let Some((input, output)) = usage {
            s.set_attribute(KeyValue::new(
                "gen_ai.usage.input_tokens",
                i64::try_from(input).unwrap_or(i64::MAX),
            ));
            s.set_attribute(KeyValue::new(
                "gen_ai.usage.output_tokens",
                i64::try_from(output).unwrap_or(i64::MAX),
            ));
        }
        if let Some(f) = finish_reason {
            s.set_attribute(KeyValue::new(
                "gen_ai.response.finish_reasons",
                opentelemetry::Value::Array(opentelemetry::Array::String(vec![
                    f.to_string().into(),
                ])),
            ));
        }
        if let Some(e) = error {
            s.set_attribute(KeyValue::new("error.type", status.to_string()));
            s.set_status(Status::error(e.to_string()));
        }
        s.end();
    }
}

impl fmt::Debug for RequestSpan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "RequestSpan(recording)"
        } else {
            "RequestSpan(off)"
        })
    }
}

/// Hands finished spans to the export task without waiting; a full queue drops (counted).
#[derive(Debug)]
struct QueueProcessor {
    tx: mpsc::Sender<SpanData>,
    dropped: Counter,
}

impl SpanProcessor for QueueProcessor {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        if self.tx.try_send(span).is_err() {
            self.dropped.inc();
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }
}

/// Sends queued spans to the collector in batches.
pub struct ExportTask {
    rx: mpsc::Receiver<SpanData>,
    exporter: opentelemetry_otlp::SpanExporter,
    counts: SpanCounts,
}

impl ExportTask {
    /// Export until the queue closes or `shutdown` fires (then export what is queued).
    pub async fn run(mut self, shutdown: CancellationToken) {
        loop {
            let first = tokio::select! {
                s = self.rx.recv() => s,
                _ = shutdown.cancelled() => { self.rx.close(); self.rx.recv().await }
            };
            let Some(first) = first else { return };
            let mut batch = vec![first];
            while batch.len() < BATCH {
                match self.rx.try_recv() {
                    Ok(s) => batch.push(s),
                    Err(_) => break,
                }
            }
            let n = batch.len() as u64;
            match self.exporter.export(batch).await {
                Ok(()) => {
                    self.counts.exported.inc_by(n);
                }
                Err(e) => {
                    self.counts.export_failed.inc_by(n);
                    tracing::warn!(error = %e, spans = n, "trace export failed; spans dropped");
                }
            }
        }
    }
}
