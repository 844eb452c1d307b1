//! The small key/value table each Durable Object keeps beside its own data
//! (a board's spec, the catalog, a live hub's last top).

use worker::{Result, SqlStorage};

pub fn open(sql: &SqlStorage) -> Result<()> {
    sql.exec("CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v TEXT NOT NULL)", None)?;
    Ok(())
}

/// Every key and value, in one statement (a cold object's load reads its
/// handful of keys at once); none when the table does not exist yet.
pub fn all(sql: &SqlStorage) -> Result<std::collections::HashMap<String, String>> {
    #[derive(serde::Deserialize)]
    struct Row {
        k: String,
        v: String,
    }
    let rows: Vec<Row> = match sql.exec("SELECT k, v FROM kv", None) {
        Ok(c) => c.to_array()?,
        // (a statement that names a missing table fails to prepare)
        Err(_) => {
            open(sql)?;
            sql.exec("SELECT k, v FROM kv", None)?.to_array()?
        }
    };
    Ok(rows.into_iter().map(|r| (r.k, r.v)).collect())
}

pub fn get(sql: &SqlStorage, key: &str) -> Result<Option<String>> {
    #[derive(serde::Deserialize)]
    struct Row {
        v: String,
    }
    let rows: Vec<Row> = sql.exec("SELECT v FROM kv WHERE k = ?", vec![key.into()])?.to_array()?;
    Ok(rows.into_iter().next().map(|r| r.v))
}

pub fn put(sql: &SqlStorage, key: &str, value: &str) -> Result<()> {
    sql.exec(
        "INSERT INTO kv (k, v) VALUES (?, ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v",
        vec![key.into(), value.into()],
    )?;
    Ok(())
}

pub fn delete(sql: &SqlStorage, key: &str) -> Result<()> {
    sql.exec("DELETE FROM kv WHERE k = ?", vec![key.into()])?;
    Ok(())
}
