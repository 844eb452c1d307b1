//! The client for threaded programs (tools/load runs std threads, no async):
//! each blocking client owns a current-thread tokio runtime and runs the
//! async client's calls to completion on the calling thread.

use std::future::Future;

use crate::{Error, Result};

pub struct Client {
    inner: crate::Client,
    rt: tokio::runtime::Runtime,
}

impl Client {
    pub fn new(inner: crate::Client) -> Result<Self> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::Config(format!("tokio runtime: {e}")))?;
        Ok(Self { inner, rt })
    }

    pub fn base_url(&self) -> &str {
        self.inner.base_url()
    }

    /// Runs any call of the async client: `c.call(|p| p.top("likes", &q))`.
    pub fn call<'a, F, T>(&'a self, f: impl FnOnce(&'a crate::Client) -> F) -> T
    where
        F: Future<Output = T> + 'a,
    {
        self.rt.block_on(f(&self.inner))
    }
}
