//! The bridge's config file (TOML): where Podium is, and one table per
//! source (`[[redis]]`, `[[amqp]]`) with its `[*.event]` mapping. Secrets
//! (the ingest key, broker passwords) come from environment variables that
//! the file names, never from the file itself.

use serde::Deserialize;

use crate::error::{config, Result};
use crate::mapping::{Broker, EventToml, Mapping};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigToml {
    #[serde(default)]
    podium: PodiumToml,
    #[serde(default)]
    redis: Vec<RedisToml>,
    #[serde(default)]
    amqp: Vec<AmqpToml>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PodiumToml {
    url: Option<String>,
    key_env: Option<String>,
    batch: Option<usize>,
    max_backoff_ms: Option<u64>,
    timeout_ms: Option<u64>,
    inflight: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RedisToml {
    url: Option<String>,
    url_env: Option<String>,
    stream: String,
    group: Option<String>,
    consumer: Option<String>,
    start: Option<String>,
    batch: Option<usize>,
    block_ms: Option<u64>,
    claim_idle_ms: Option<u64>,
    dead_letter: Option<String>,
    event: EventToml,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AmqpToml {
    url: Option<String>,
    url_env: Option<String>,
    queue: String,
    declare: Option<bool>,
    durable: Option<bool>,
    batch: Option<usize>,
    linger_ms: Option<u64>,
    dead_letter: Option<String>,
    event: EventToml,
}

/// Podium's limit on events per request (API.md, Ingest).
pub const MAX_BATCH: usize = 1000;

#[derive(Debug, Clone)]
pub struct PodiumConfig {
    pub url: String,
    pub key: String,
    pub batch: usize,
    pub max_backoff_ms: u64,
    pub timeout_ms: u64,
}

/// Podium requests in flight per source when the config says nothing.
const INFLIGHT: usize = 4;

#[derive(Debug, Clone)]
pub struct RedisSource {
    pub url: String,
    pub stream: String,
    pub group: String,
    pub consumer: String,
    pub start: String,
    pub batch: usize,
    pub block_ms: u64,
    pub claim_idle_ms: u64,
    pub dead_letter: String,
    pub inflight: usize,
    pub mapping: Mapping,
}

#[derive(Debug, Clone)]
pub struct AmqpSource {
    pub url: String,
    pub queue: String,
    pub declare: bool,
    pub durable: bool,
    /// Messages per Podium request; the channel's prefetch is batch × inflight.
    pub batch: usize,
    pub linger_ms: u64,
    pub dead_letter: String,
    pub inflight: usize,
    pub mapping: Mapping,
}

/// One source of either broker.
#[derive(Debug, Clone)]
pub enum Source {
    Redis(RedisSource),
    Amqp(AmqpSource),
}

impl Source {
    /// `redis:<stream>` or `amqp:<queue>`, for logs.
    pub fn name(&self) -> String {
        match self {
            Source::Redis(r) => format!("redis:{}", r.stream),
            Source::Amqp(a) => format!("amqp:{}", a.queue),
        }
    }

    /// The stream or queue name.
    pub fn label(&self) -> &str {
        match self {
            Source::Redis(r) => &r.stream,
            Source::Amqp(a) => &a.queue,
        }
    }

    pub async fn run(&self, sender: crate::forward::Sender, once: bool, stop: tokio::sync::watch::Receiver<bool>) -> Result<()> {
        match self {
            Source::Redis(r) => crate::redis_source::run(r, sender, once, stop).await,
            Source::Amqp(a) => crate::amqp_source::run(a, sender, once, stop).await,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub podium: PodiumConfig,
    pub redis: Vec<RedisSource>,
    pub amqp: Vec<AmqpSource>,
}

/// Reads an environment variable that the config names.
fn env(name: &str, what: &str) -> Result<String> {
    std::env::var(name).map_err(|_| config(format!("{what}: environment variable {name} is not set")))
}

/// A broker URL: `url` in the file, or `url_env` naming a variable (for URLs with passwords).
fn broker_url(url: &Option<String>, url_env: &Option<String>, what: &str) -> Result<String> {
    match (url, url_env) {
        (Some(u), None) => Ok(u.clone()),
        (None, Some(e)) => env(e, what),
        _ => Err(config(format!("{what}: give exactly one of url and url_env"))),
    }
}

/// What every source resolves alike: its broker URL, its dead-letter
/// stream or queue (`<name>.dead` unless named) and its mapping.
fn resolve(url: &Option<String>, url_env: &Option<String>, dead_letter: Option<String>, event: &EventToml, name: &str, broker: Broker) -> Result<(String, String, Mapping)> {
    let what = match broker {
        Broker::Redis => format!("redis stream {name}"),
        Broker::Amqp => format!("amqp queue {name}"),
    };
    Ok((
        broker_url(url, url_env, &what)?,
        dead_letter.unwrap_or_else(|| format!("{name}.dead")),
        Mapping::parse(event, broker).map_err(|e| e.within(&what))?,
    ))
}

impl Config {
    pub fn sources(&self) -> Vec<Source> {
        self.redis.iter().cloned().map(Source::Redis).chain(self.amqp.iter().cloned().map(Source::Amqp)).collect()
    }

    /// `url_override` is `--url`/`PODIUM_URL`, which wins over the file.
    pub fn load(text: &str, url_override: Option<String>) -> Result<Config> {
        let t: ConfigToml = toml::from_str(text).map_err(config)?;
        let p = t.podium;
        let url = url_override.or(p.url).ok_or_else(|| config("podium.url is not set (nor --url / PODIUM_URL)"))?;
        let key_env = p.key_env.unwrap_or_else(|| "PODIUM_INGEST_KEY".into());
        let batch = p.batch.unwrap_or(MAX_BATCH);
        if batch == 0 || batch > MAX_BATCH {
            return Err(config(format!("podium.batch must be 1-{MAX_BATCH}")));
        }
        let podium = PodiumConfig {
            url: url.trim_end_matches('/').to_string(),
            key: env(&key_env, "podium ingest key")?,
            batch,
            max_backoff_ms: p.max_backoff_ms.unwrap_or(30_000).max(1),
            timeout_ms: p.timeout_ms.unwrap_or(30_000),
        };
        let inflight = p.inflight.unwrap_or(INFLIGHT).clamp(1, 64);
        let redis = t
            .redis
            .into_iter()
            .map(|r| {
                let (url, dead_letter, mapping) = resolve(&r.url, &r.url_env, r.dead_letter, &r.event, &r.stream, Broker::Redis)?;
                Ok(RedisSource {
                    url,
                    dead_letter,
                    mapping,
                    inflight,
                    group: r.group.unwrap_or_else(|| "podium-bridge".into()),
                    consumer: r.consumer.unwrap_or_else(|| "podium-bridge".into()),
                    start: r.start.unwrap_or_else(|| "$".into()),
                    batch: r.batch.unwrap_or(batch).clamp(1, MAX_BATCH),
                    block_ms: r.block_ms.unwrap_or(1000),
                    claim_idle_ms: r.claim_idle_ms.unwrap_or(60_000),
                    stream: r.stream,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let amqp = t
            .amqp
            .into_iter()
            .map(|a| {
                let (url, dead_letter, mapping) = resolve(&a.url, &a.url_env, a.dead_letter, &a.event, &a.queue, Broker::Amqp)?;
                Ok(AmqpSource {
                    url,
                    dead_letter,
                    mapping,
                    inflight,
                    declare: a.declare.unwrap_or(true),
                    durable: a.durable.unwrap_or(false),
                    batch: a.batch.unwrap_or(batch).clamp(1, MAX_BATCH),
                    linger_ms: a.linger_ms.unwrap_or(20),
                    queue: a.queue,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        if redis.is_empty() && amqp.is_empty() {
            return Err(config("no source: add a [[redis]] or [[amqp]] table"));
        }
        Ok(Config { podium, redis, amqp })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_seed_config_is_valid_and_says_what_the_readme_says() {
        // Only this test sets the variable; the config reads it by name.
        std::env::set_var("PODIUM_INGEST_KEY", "k");
        let cfg = Config::load(include_str!("../examples/seeds.toml"), None).expect("examples/seeds.toml loads");
        assert_eq!(cfg.podium.url, "https://podium.example.workers.dev");
        assert_eq!((cfg.podium.batch, cfg.podium.max_backoff_ms), (MAX_BATCH, 30_000));
        let r = &cfg.redis[0];
        assert_eq!((r.stream.as_str(), r.group.as_str(), r.start.as_str(), r.dead_letter.as_str()), ("user_actions", "podium-bridge", "0", "user_actions.dead"));
        let a = &cfg.amqp[0];
        assert_eq!((a.queue.as_str(), a.durable, a.batch, a.inflight), ("rank_update", false, MAX_BATCH, INFLIGHT));
        assert!(Config::load("[podium]\nurl = \"x\"\n", None).is_err(), "no source");
        assert!(Config::load("[podium]\nurl = \"x\"\nbogus = 1\n[[redis]]\nurl=\"r\"\nstream=\"s\"\n[redis.event]\ntype=\"t\"\nmember=\"m\"\n", None).is_err(), "unknown key");
    }
}
