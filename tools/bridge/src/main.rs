//! podium-bridge: forwards a customer's Redis Streams and RabbitMQ queues to
//! Podium's `POST /v1/events`, so existing producers feed Podium unchanged
//! (issue 17). See README.md for the config, the delivery guarantees and
//! deployment.

mod amqp_source;
mod config;
mod error;
mod forward;
mod mapping;
mod podium;
mod redis_source;
mod stats;

use std::future::Future;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use tokio::sync::watch;
use tracing::{error, info, warn};

use config::Config;
use error::{Error, Result};
use forward::{sleep_or_stop, Sender};
use podium::Podium;
use stats::{Backoff, Snapshot, Stats};

#[derive(Parser)]
#[command(name = "podium-bridge", version, about = "Forwards Redis Streams and RabbitMQ queues to Podium's ingest API")]
struct Cli {
    /// The config file (TOML): Podium, the sources and their mappings.
    #[arg(long, short, env = "PODIUM_BRIDGE_CONFIG")]
    config: PathBuf,
    /// Podium's base URL; overrides `podium.url` in the file.
    #[arg(long, env = "PODIUM_URL")]
    url: Option<String>,
    /// Drain every source (pending entries included), then exit.
    #[arg(long)]
    once: bool,
    /// Seconds between progress lines on stderr (0: none).
    #[arg(long, default_value_t = 2.0)]
    progress: f64,
    /// Check the config (and that the key variable is set), then exit.
    #[arg(long)]
    check: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    // Structured logs: one JSON object per line on stdout (journald keeps
    // them); RUST_LOG filters (`warn`, `info,lapin=warn`), `info` by default.
    use tracing_subscriber::prelude::*;
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|s| s.parse::<tracing_subscriber::filter::Targets>().ok())
        .unwrap_or_else(|| tracing_subscriber::filter::Targets::new().with_default(tracing::Level::INFO));
    tracing_subscriber::registry().with(tracing_subscriber::fmt::layer().json().with_writer(std::io::stdout)).with(filter).init();
    match run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!(error = %e, "podium-bridge stopped on an error");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<()> {
    let text = std::fs::read_to_string(&cli.config).map_err(|e| error::config(format!("{}: {e}", cli.config.display())))?;
    let cfg = Config::load(&text, cli.url)?;
    let names: Vec<String> = cfg.sources().iter().map(|s| s.name()).collect();
    if cli.check {
        info!(podium = %cfg.podium.url, sources = ?names, "config is valid");
        return Ok(());
    }
    info!(podium = %cfg.podium.url, sources = ?names, once = cli.once, "podium-bridge starting");
    for a in &cfg.amqp {
        info!(queue = %a.queue, "amqp: messages without a message-id (and without the id field the mapping names) are delivered at least once, not exactly once; they are counted as no-identity");
    }
    let podium = Arc::new(Podium::new(&cfg.podium)?);
    let stats = Arc::new(Stats::default());
    let (stop_tx, stop) = watch::channel(false);
    tokio::spawn(async move {
        wait_for_signal().await;
        info!("stop requested: finishing the current batch; what is not acknowledged stays in the broker");
        let _ = stop_tx.send(true);
    });
    let progress = (cli.progress > 0.0).then(|| tokio::spawn(stats::progress(stats.clone(), Duration::from_secs_f64(cli.progress))));
    let started = Instant::now();
    let max_backoff = Duration::from_millis(cfg.podium.max_backoff_ms);

    let mut tasks = tokio::task::JoinSet::new();
    for src in cfg.sources() {
        let (podium, stats) = (podium.clone(), stats.clone());
        let runner_stop = stop.clone();
        tasks.spawn(supervise(src.name(), cli.once, stop.clone(), max_backoff, move || {
            let sender = Sender::new(podium.clone(), stats.clone(), max_backoff, src.label());
            let (src, stop) = (src.clone(), runner_stop.clone());
            async move { src.run(sender, cli.once, stop).await }
        }));
    }
    let mut failed = None;
    while let Some(done) = tasks.join_next().await {
        let res = done.unwrap_or_else(|e| Err(Error::Broker(format!("a source task panicked: {e}"))));
        if let Err(e) = res {
            // One source failing for good stops the others: a half-running bridge hides the failure.
            tasks.abort_all();
            failed.get_or_insert(e);
        }
    }
    if let Some(p) = progress {
        p.abort();
    }
    let (line, _) = stats.line(&Snapshot::default(), started.elapsed());
    eprintln!("\n{line}");
    let s = stats.snapshot();
    info!(
        received = s.received,
        forwarded = s.forwarded,
        dead_lettered = s.dead_lettered,
        retries = s.retries,
        no_identity = s.no_identity,
        seconds = started.elapsed().as_secs_f64(),
        "podium-bridge finished"
    );
    failed.map_or(Ok(()), Err)
}

/// Runs a source, and runs it again after a backoff when its broker
/// connection fails (unless `--once`, where the error ends the run). Fatal
/// errors (config, Podium refusing the key) end it at once.
async fn supervise<F, Fut>(name: String, once: bool, mut stop: watch::Receiver<bool>, max_backoff: Duration, mut start: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<()>>,
{
    let mut backoff = Backoff::new(max_backoff);
    loop {
        match start().await {
            Ok(()) => return Ok(()),
            Err(e) if once || e.is_fatal() => return Err(e),
            Err(e) => {
                let wait = backoff.next(None);
                warn!(source = %name, error = %e, retry_in_ms = wait.as_millis() as u64, "source failed: reconnecting after a backoff (unacknowledged messages stay in the broker)");
                if sleep_or_stop(wait, &mut stop).await {
                    return Ok(());
                }
            }
        }
    }
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {},
                    _ = term.recv() => {},
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
