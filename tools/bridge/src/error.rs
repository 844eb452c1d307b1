//! The bridge's one error type. A source that fails with a broker error is
//! restarted by main's supervisor after a backoff; a config or auth error
//! stops the bridge, since retrying cannot mend it.

use std::fmt;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The config file or the command line is wrong: fatal.
    #[error("config: {0}")]
    Config(String),
    /// Podium refused the bridge itself (bad key, wrong URL): fatal, since
    /// every later request would be refused the same way and nothing was acked.
    #[error("podium refused the bridge: {0}")]
    Podium(String),
    /// The broker refused something mid-way (a consumer cancelled, a dead
    /// letter not confirmed): the source restarts and redelivery resumes.
    #[error("broker: {0}")]
    Broker(String),
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("amqp: {0}")]
    Amqp(#[from] lapin::Error),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

impl Error {
    /// Whether restarting the source after a backoff can help (the broker
    /// went away, a connection dropped) or the bridge should stop.
    pub fn is_fatal(&self) -> bool {
        matches!(self, Error::Config(_) | Error::Podium(_))
    }

    /// A config error said about one part of the config (`redis stream x: …`).
    pub fn within(self, what: &str) -> Error {
        match self {
            Error::Config(m) => Error::Config(format!("{what}: {m}")),
            other => other,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A config error from anything printable.
pub fn config(msg: impl fmt::Display) -> Error {
    Error::Config(msg.to_string())
}
