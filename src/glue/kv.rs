//! The small key/value table each Durable Object keeps beside its own data
//! (a board's spec, the catalog, a live hub's last top).

use worker::{Result, SqlStorage};

pub fn open(sql: &SqlStorage) -> Result<()> {
    sql.exec("CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v TEXT NOT NULL)", None)?;
    Ok(())
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
