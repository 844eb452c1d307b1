//! `transactionSync` on a SQLite-backed Durable Object's storage. workers-rs
//! 0.8.7 does not expose it, so it is reached through `wasm-bindgen` on the
//! raw storage object. The callback's writes commit together, or, when it
//! returns an error (or the wasm instance traps inside it), none of them do:
//! the runtime rolls the transaction back and rethrows.

use js_sys::{Function, Reflect};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use worker::{Result, SqlStorage, SqlStorageValue, Storage};

/// One statement of a transaction, with its bound values.
pub struct Stmt {
    pub sql: &'static str,
    pub args: Vec<SqlStorageValue>,
}

impl Stmt {
    pub fn new(sql: &'static str, args: Vec<SqlStorageValue>) -> Stmt {
        Stmt { sql, args }
    }
}

/// Runs `stmts` in one SQLite transaction. `fail_after` (test faults only)
/// makes the callback throw after that many statements ran, to prove that
/// the earlier ones roll back.
pub fn write_all(storage: &Storage, stmts: Vec<Stmt>, fail_after: Option<usize>) -> Result<()> {
    let raw: &JsValue = storage.as_raw().as_ref();
    let func: Function = Reflect::get(raw, &JsValue::from_str("transactionSync"))
        .map_err(worker::Error::from)?
        .dyn_into()
        .map_err(|_| worker::Error::RustError("storage has no transactionSync".into()))?;
    let sql: SqlStorage = storage.sql();
    let body = Closure::once(move || -> std::result::Result<JsValue, JsValue> {
        for (i, s) in stmts.into_iter().enumerate() {
            if fail_after == Some(i) {
                return Err(JsValue::from_str("test fault inside the transaction"));
            }
            sql.exec(s.sql, s.args).map_err(|e| JsValue::from_str(&e.to_string()))?;
        }
        Ok(JsValue::UNDEFINED)
    });
    func.call1(raw, body.as_ref().unchecked_ref()).map_err(worker::Error::from)?;
    Ok(())
}
