//! The tools' Podium HTTP calls, through the `podium-client` crate
//! (clients/rust) in its blocking form. Every call returns the status and
//! body instead of turning 4xx/5xx into errors, because the load tool counts
//! statuses and retries 429s itself (so the client's own retries are not
//! used here); only transport failures are `Err`.

use std::time::Duration;

use podium_client::{blocking, Auth, Method};

pub use podium_client::{Error, RawReply as Reply};

pub struct Api {
    client: blocking::Client,
}

impl Api {
    pub fn new(base: &str, ingest_key: &str, admin_key: &str, timeout: Duration) -> anyhow::Result<Self> {
        let mut b = podium_client::Client::builder(base)
            // Bounded: a stuck server never hangs the tool past this per request.
            .timeout(timeout)
            .admin_key(admin_key);
        if !ingest_key.is_empty() {
            b = b.ingest_key(ingest_key);
        }
        Ok(Self { client: blocking::Client::new(b.build()?)? })
    }

    pub fn base(&self) -> &str {
        self.client.base_url()
    }

    fn send(
        &self,
        m: Method,
        path: &str,
        auth: Auth,
        body: Option<(&'static str, &str)>,
        idem: Option<&str>,
    ) -> Result<Reply, Error> {
        let body = body.map(|(ct, b)| (ct, b.as_bytes().to_vec()));
        self.client.call(|c| c.raw(m, path, auth, body, idem))
    }

    pub fn get(&self, path: &str) -> Result<Reply, Error> {
        self.send(Method::GET, path, Auth::None, None, None)
    }

    pub fn put_admin(&self, path: &str, body: &str) -> Result<Reply, Error> {
        self.send(Method::PUT, path, Auth::Admin, Some(("application/json", body)), None)
    }

    pub fn delete_admin(&self, path: &str) -> Result<Reply, Error> {
        self.send(Method::DELETE, path, Auth::Admin, None, None)
    }

    /// `POST {path}` (an import) with the admin key, an NDJSON body and an
    /// `Idempotency-Key`, so a retry after a lost answer sets nothing twice.
    pub fn post_ndjson_admin(&self, path: &str, body: &str, idem: &str) -> Result<Reply, Error> {
        self.send(Method::POST, path, Auth::Admin, Some(("application/x-ndjson", body)), Some(idem))
    }

    /// `POST /v1/events` with the ingest key; `idem` becomes `Idempotency-Key`.
    pub fn post_events(&self, body: &str, idem: Option<&str>) -> Result<Reply, Error> {
        self.send(Method::POST, "/v1/events", Auth::Ingest, Some(("application/json", body)), idem)
    }
}
