//! Delivery off the pipeline's path: a bounded queue drained by one task, in order. A
//! retryable failure (endpoint down, 5xx, timeout) parks the event — and every later one —
//! in a spool file until the endpoint answers again, so order is kept and nothing is lost;
//! an event the endpoint refuses (4xx) is logged and counted, never retried forever.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::{LineageConfig, RunEvent, TransportKind};

/// Events waiting in memory before the sender starts dropping (and counting) them.
const QUEUE: usize = 10_000;
const SPOOL_FILE: &str = "events.jsonl";

/// Counters, for logs, metrics and tests.
#[derive(Debug, Default)]
pub struct EmitterStats {
    pub delivered: AtomicU64,
    pub spooled: AtomicU64,
    pub rejected: AtomicU64,
    pub dropped: AtomicU64,
}

/// What became of one event: counted here and as `ingot_lineage_events_total{outcome}`.
#[derive(Debug, Clone, Copy)]
enum Outcome {
    Delivered,
    Spooled,
    Rejected,
    Dropped,
}

impl EmitterStats {
    fn note(&self, outcome: Outcome) {
        let (counter, label) = match outcome {
            Outcome::Delivered => (&self.delivered, "delivered"),
            Outcome::Spooled => (&self.spooled, "spooled"),
            Outcome::Rejected => (&self.rejected, "rejected"),
            Outcome::Dropped => (&self.dropped, "dropped"),
        };
        counter.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("ingot_lineage_events_total", "outcome" => label).increment(1);
    }
}

enum Message {
    Event(String),
    Flush(oneshot::Sender<()>),
}

/// Hands events to the delivery task. Cheap to clone.
#[derive(Clone)]
pub struct Emitter {
    tx: Option<mpsc::Sender<Message>>,
    namespace: String,
    source_url: Option<String>,
    pub stats: Arc<EmitterStats>,
}

impl std::fmt::Debug for Emitter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emitter")
            .field("enabled", &self.tx.is_some())
            .field("namespace", &self.namespace)
            .finish()
    }
}

impl Emitter {
    /// Starts the delivery task (inside a Tokio runtime). Errors name the bad config key.
    pub fn start(config: &LineageConfig) -> Result<Emitter, String> {
        let stats = Arc::new(EmitterStats::default());
        if let Some(url) = &config.source_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(format!("lineage.source_url must be an absolute http(s) URL, got `{url}`"));
        }
        let source_url = config.source_url.clone();
        let sink = match config.transport {
            TransportKind::None => {
                return Ok(Emitter { tx: None, namespace: config.namespace.clone(), source_url, stats });
            }
            TransportKind::Http => {
                let url =
                    config.url.as_ref().ok_or("lineage.url is required for transport = \"http\"")?.expose();
                let token = std::env::var(&config.api_key_env).ok().filter(|t| !t.is_empty());
                let mut builder = reqwest::Client::builder().timeout(config.timeout);
                if let Some(path) = &config.ca_file {
                    let pem = std::fs::read(path)
                        .map_err(|e| format!("lineage.ca_file {}: {e}", path.display()))?;
                    let certificates = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                        format!("lineage.ca_file {}: not PEM certificates: {e}", path.display())
                    })?;
                    for certificate in certificates {
                        builder = builder.add_root_certificate(certificate);
                    }
                }
                let client = builder.build().map_err(|e| format!("lineage http client: {e}"))?;
                Sink::Http { client, url: format!("{}/api/v1/lineage", url.trim_end_matches('/')), token }
            }
            TransportKind::File => {
                Sink::File(config.path.clone().ok_or("lineage.path is required for transport = \"file\"")?)
            }
            TransportKind::Console => Sink::Console,
        };
        std::fs::create_dir_all(&config.spool_dir)
            .map_err(|e| format!("lineage.spool_dir {}: {e}", config.spool_dir.display()))?;
        let (tx, rx) = mpsc::channel(QUEUE);
        let spool = Spool { path: config.spool_dir.join(SPOOL_FILE) };
        tokio::spawn(deliver_loop(rx, sink, spool, stats.clone()));
        Ok(Emitter { tx: Some(tx), namespace: config.namespace.clone(), source_url, stats })
    }

    /// An emitter that emits nothing.
    pub fn disabled() -> Emitter {
        Emitter { tx: None, namespace: "ingot".into(), source_url: None, stats: Arc::default() }
    }

    /// The job namespace of ingot's jobs.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The repository URL jobs link their code to, if configured.
    pub fn source_url(&self) -> Option<&str> {
        self.source_url.as_deref()
    }

    pub fn enabled(&self) -> bool {
        self.tx.is_some()
    }

    /// Queues an event. Never blocks and never fails: a full queue drops the event and
    /// counts it (the queue holds 10k events; it fills only if the spool disk stalls).
    pub fn emit(&self, event: &RunEvent) {
        let Some(tx) = &self.tx else { return };
        if tx.try_send(Message::Event(event.to_json())).is_err() {
            self.stats.note(Outcome::Dropped);
            tracing::error!(job = %event.job.name, "lineage queue full: event dropped");
        }
    }

    /// Waits (at most `timeout`) until everything queued so far is delivered or spooled,
    /// trying the spool once more first. For shutdown and tests.
    pub async fn flush(&self, timeout: Duration) {
        let Some(tx) = &self.tx else { return };
        let (done, wait) = oneshot::channel();
        if tx.send(Message::Flush(done)).await.is_ok() {
            let _ = tokio::time::timeout(timeout, wait).await;
        }
    }
}

enum Sink {
    Http { client: reqwest::Client, url: String, token: Option<String> },
    File(PathBuf),
    Console,
}

enum Failure {
    /// Try again later (spool).
    Retry(String),
    /// The endpoint will never take this event.
    Refused(String),
}

impl Sink {
    async fn send(&self, json: &str) -> Result<(), Failure> {
        match self {
            Sink::Http { client, url, token } => {
                let mut request =
                    client.post(url).header("content-type", "application/json").body(json.to_string());
                if let Some(token) = token {
                    request = request.bearer_auth(token);
                }
                match request.send().await {
                    Ok(r) if r.status().is_success() => Ok(()),
                    Ok(r) if r.status().is_server_error() || r.status().as_u16() == 429 => {
                        Err(Failure::Retry(format!("HTTP {}", r.status())))
                    }
                    Ok(r) => {
                        let status = r.status();
                        let body = r.text().await.unwrap_or_default();
                        Err(Failure::Refused(format!(
                            "HTTP {status}: {}",
                            body.chars().take(300).collect::<String>()
                        )))
                    }
                    // Without the URL: it may carry a password.
                    Err(e) => Err(Failure::Retry(e.without_url().to_string())),
                }
            }
            Sink::File(path) => {
                let mut file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| Failure::Retry(format!("{}: {e}", path.display())))?;
                writeln!(file, "{json}").map_err(|e| Failure::Retry(format!("{}: {e}", path.display())))
            }
            Sink::Console => {
                eprintln!("{json}");
                Ok(())
            }
        }
    }

    /// A few quick retries with backoff before giving the event to the spool.
    async fn send_with_retries(&self, json: &str) -> Result<(), Failure> {
        let mut last = None;
        for attempt in 0..3u32 {
            match self.send(json).await {
                Ok(()) => return Ok(()),
                Err(Failure::Refused(e)) => return Err(Failure::Refused(e)),
                Err(Failure::Retry(e)) => last = Some(e),
            }
            tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
        }
        Err(Failure::Retry(last.unwrap_or_default()))
    }
}

/// Events waiting for the endpoint, oldest first, one JSON document per line.
struct Spool {
    path: PathBuf,
}

impl Spool {
    fn pending(&self) -> Vec<String> {
        std::fs::read_to_string(&self.path)
            .map(|text| text.lines().filter(|l| !l.is_empty()).map(str::to_string).collect())
            .unwrap_or_default()
    }

    fn append(&self, json: &str) {
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .and_then(|mut f| writeln!(f, "{json}"));
        if let Err(e) = written {
            tracing::error!(path = %self.path.display(), error = %e, "cannot spool lineage event: dropped");
        }
    }

    fn replace(&self, remaining: &[String]) {
        let result = if remaining.is_empty() {
            std::fs::remove_file(&self.path)
                .or_else(|e| if e.kind() == std::io::ErrorKind::NotFound { Ok(()) } else { Err(e) })
        } else {
            let tmp = self.path.with_extension("tmp");
            std::fs::write(&tmp, remaining.join("\n") + "\n").and_then(|()| std::fs::rename(&tmp, &self.path))
        };
        if let Err(e) = result {
            tracing::warn!(path = %self.path.display(), error = %e, "cannot rewrite the lineage spool");
        }
    }

    /// Delivers spooled events in order until one fails; true when the spool is empty.
    async fn drain(&self, sink: &Sink, stats: &EmitterStats) -> bool {
        let pending = self.pending();
        if pending.is_empty() {
            return true;
        }
        let mut sent = 0;
        for json in &pending {
            match sink.send(json).await {
                Ok(()) => stats.note(Outcome::Delivered),
                Err(Failure::Refused(e)) => {
                    tracing::error!(error = %e, "lineage endpoint refused a spooled event");
                    stats.note(Outcome::Rejected)
                }
                Err(Failure::Retry(_)) => break,
            };
            sent += 1;
        }
        self.replace(&pending[sent..]);
        if sent > 0 {
            tracing::info!(events = sent, left = pending.len() - sent, "delivered spooled lineage events");
        }
        sent == pending.len()
    }
}

async fn deliver_loop(mut rx: mpsc::Receiver<Message>, sink: Sink, spool: Spool, stats: Arc<EmitterStats>) {
    let mut spooling = !spool.pending().is_empty();
    let mut retry = tokio::time::interval(Duration::from_secs(2));
    loop {
        let message = tokio::select! {
            message = rx.recv() => message,
            _ = retry.tick(), if spooling => {
                spooling = !spool.drain(&sink, &stats).await;
                continue;
            }
        };
        match message {
            None => {
                // Senders gone: one last try, then whatever is left stays spooled for next start.
                spool.drain(&sink, &stats).await;
                return;
            }
            Some(Message::Flush(done)) => {
                if spooling {
                    spooling = !spool.drain(&sink, &stats).await;
                }
                let _ = done.send(());
            }
            Some(Message::Event(json)) => {
                if spooling {
                    // Keep order: nothing overtakes what is already waiting.
                    spool.append(&json);
                    stats.note(Outcome::Spooled);
                    continue;
                }
                match sink.send_with_retries(&json).await {
                    Ok(()) => stats.note(Outcome::Delivered),
                    Err(Failure::Refused(e)) => {
                        stats.note(Outcome::Rejected);
                        tracing::error!(error = %e, "lineage endpoint refused an event");
                    }
                    Err(Failure::Retry(e)) => {
                        tracing::warn!(error = %e, "lineage endpoint unavailable; spooling events until it is back");
                        spool.append(&json);
                        stats.note(Outcome::Spooled);
                        spooling = true;
                    }
                }
            }
        }
    }
}
