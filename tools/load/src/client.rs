//! A thin blocking client for Podium's HTTP API. Every call returns the status
//! and body instead of turning 4xx/5xx into errors, because the load tool
//! counts statuses and retries 429s itself; only transport failures are `Err`.

use std::time::Duration;

use anyhow::Context;

pub struct Api {
    agent: ureq::Agent,
    base: String,
    ingest_auth: String,
    admin_auth: String,
}

/// One answered request.
pub struct Reply {
    pub status: u16,
    /// `Retry-After` in seconds, when sent as a number (Podium sends seconds).
    pub retry_after: Option<f64>,
    pub body: String,
}

impl Reply {
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    pub fn json(&self) -> anyhow::Result<serde_json::Value> {
        serde_json::from_str(&self.body)
            .with_context(|| format!("status {} body is not JSON: {:.200}", self.status, self.body))
    }
}

impl Api {
    pub fn new(base: &str, ingest_key: &str, admin_key: &str, timeout: Duration) -> Self {
        let config = ureq::Agent::config_builder()
            // The tool wants every status as data (it tallies them).
            .http_status_as_error(false)
            // Bounded: a stuck server never hangs the tool past this per request.
            .timeout_global(Some(timeout))
            .build();
        Self {
            agent: ureq::Agent::new_with_config(config),
            base: base.trim_end_matches('/').to_string(),
            ingest_auth: format!("Bearer {ingest_key}"),
            admin_auth: format!("Bearer {admin_key}"),
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn get(&self, path: &str) -> Result<Reply, ureq::Error> {
        let resp = self.agent.get(format!("{}{}", self.base, path)).call()?;
        read(resp)
    }

    pub fn put_admin(&self, path: &str, body: &str) -> Result<Reply, ureq::Error> {
        let resp = self
            .agent
            .put(format!("{}{}", self.base, path))
            .header("Authorization", &self.admin_auth)
            .header("Content-Type", "application/json")
            .send(body)?;
        read(resp)
    }

    pub fn delete_admin(&self, path: &str) -> Result<Reply, ureq::Error> {
        let resp = self
            .agent
            .delete(format!("{}{}", self.base, path))
            .header("Authorization", &self.admin_auth)
            .call()?;
        read(resp)
    }

    /// `POST {path}` (an import) with the admin key, an NDJSON body and an
    /// `Idempotency-Key`, so a retry after a lost answer sets nothing twice.
    pub fn post_ndjson_admin(&self, path: &str, body: &str, idem: &str) -> Result<Reply, ureq::Error> {
        let resp = self
            .agent
            .post(format!("{}{}", self.base, path))
            .header("Authorization", &self.admin_auth)
            .header("Content-Type", "application/x-ndjson")
            .header("Idempotency-Key", idem)
            .send(body)?;
        read(resp)
    }

    /// `POST /v1/events` with the ingest key; `idem` becomes `Idempotency-Key`.
    pub fn post_events(&self, body: &str, idem: Option<&str>) -> Result<Reply, ureq::Error> {
        let mut req = self
            .agent
            .post(format!("{}/v1/events", self.base))
            .header("Authorization", &self.ingest_auth)
            .header("Content-Type", "application/json");
        if let Some(k) = idem {
            req = req.header("Idempotency-Key", k);
        }
        read(req.send(body)?)
    }
}

fn read(mut resp: ureq::http::Response<ureq::Body>) -> Result<Reply, ureq::Error> {
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0);
    let body = resp.body_mut().read_to_string()?;
    Ok(Reply { status, retry_after, body })
}
