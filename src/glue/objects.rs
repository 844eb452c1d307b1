//! Calls from the worker (or one object) to a Durable Object: a JSON
//! command posted to its stub, a JSON answer back. Kept apart from `http`,
//! which answers clients: an object's answer is never shown to a client as
//! is, so its failures become `internal` errors here.

use serde::{de::DeserializeOwned, Serialize};
use worker::{Headers, Method, Request, RequestInit, Stub};

use super::http::{internal, ApiResult};
use super::platform::body_of;

/// Calls a Durable Object with a JSON body and reads a JSON answer. Its
/// non-2xx answers are internal errors: objects only answer the worker.
pub async fn call_object<B: Serialize, T: DeserializeOwned>(
    stub: &Stub,
    path: &str,
    body: &B,
) -> ApiResult<T> {
    let text = serde_json::to_string(body).map_err(|e| internal("serialize", e))?;
    call_object_raw(stub, path, text).await
}

/// `call_object` with a body already encoded (e.g. an intake command's wire form).
pub async fn call_object_raw<T: DeserializeOwned>(stub: &Stub, path: &str, text: String) -> ApiResult<T> {
    let headers = Headers::new();
    let _ = headers.set("Content-Type", "application/json");
    let mut init = RequestInit::new();
    init.with_method(Method::Post).with_headers(headers).with_body(Some(text.into()));
    let req = Request::new_with_init(&format!("https://object{path}"), &init)
        .map_err(|e| internal("request", e))?;
    let resp = stub.fetch_with_request(req).await.map_err(|e| internal(path, e))?;
    let status = resp.status_code();
    let body = body_of(resp).await.map_err(|e| internal(path, e))?;
    if !(200..300).contains(&status) {
        let text = String::from_utf8_lossy(&body);
        return Err(internal(path, format!("object answered {status}: {text}")));
    }
    serde_json::from_slice(&body).map_err(|e| internal(path, e))
}
