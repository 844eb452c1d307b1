//! A board's member rows read in bulk for its cold load (`domain::rows` has
//! both forms and reads them):
//! 1. SQLite concatenates the rows of each range of 4,096 rowids whose
//!    numbers are all integers into one text (a few hundred KB, under the
//!    platform's 2 MB per string), so C does the per-row work and wasm gets
//!    one string per range;
//! 2. only if some rows have fractional or huge numbers, the JS helper
//!    below walks a cursor over just those rows and packs a chunk of them
//!    into one byte buffer of exact `f64`s.

use wasm_bindgen::prelude::*;
use worker::{Result, SqlStorage, SqlStorageValue};

use super::platform::rust_err;
use crate::core::ranking::RankingBuilder;
use crate::domain::rows::{PackedRows, RowsError, TextRows};

#[wasm_bindgen(inline_js = r#"
const enc = new TextEncoder();
export function podiumRowsOpen(sql, query) {
  return sql.exec(query).raw();
}
// Packs up to `max` rows [member, score, seq, ts, sub] as
// u32 len | utf-8 id | f64 score | f64 sub | f64 seq | f64 ts (little-endian).
// Returns null when the cursor is done.
export function podiumRowsPack(it, max) {
  let buf = new Uint8Array(1 << 19);
  let dv = new DataView(buf.buffer);
  let at = 0;
  let n = 0;
  while (n < max) {
    const r = it.next();
    if (r.done) break;
    const [m, score, seq, ts, sub] = r.value;
    if (typeof m !== 'string' || typeof score !== 'number' || typeof sub !== 'number') {
      throw new Error('bad members row');
    }
    const need = at + 4 + 3 * m.length + 32;
    if (need > buf.length) {
      const bigger = new Uint8Array(Math.max(need, buf.length * 2));
      bigger.set(buf.subarray(0, at));
      buf = bigger;
      dv = new DataView(buf.buffer);
    }
    const { written } = enc.encodeInto(m, buf.subarray(at + 4));
    dv.setUint32(at, written, true);
    at += 4 + written;
    dv.setFloat64(at, score, true);
    dv.setFloat64(at + 8, sub, true);
    dv.setFloat64(at + 16, Number(seq), true);
    dv.setFloat64(at + 24, Number(ts), true);
    at += 32;
    n += 1;
  }
  return n === 0 ? null : buf.subarray(0, at);
}
"#)]
extern "C" {
    #[wasm_bindgen(catch, js_name = podiumRowsOpen)]
    fn rows_open(sql: &JsValue, query: &str) -> std::result::Result<JsValue, JsValue>;
    #[wasm_bindgen(catch, js_name = podiumRowsPack)]
    fn rows_pack(it: &JsValue, max: u32) -> std::result::Result<Option<js_sys::Uint8Array>, JsValue>;
}

/// Rows per packed buffer: ~0.4 MB with 16-byte ids.
const CHUNK: u32 = 8192;

/// Rowids per text range: at most 4,096 rows of at most ~200 bytes each
/// (a 128-byte id and five numbers) is 0.8 MB, under the 2 MB a string may hold.
const RANGE: i64 = 4096;

/// The rows whose scores print exactly as integers (an integral REAL that
/// fits an i64 is exactly that integer; `seq`/`ts` have INTEGER affinity,
/// and member ids never hold control characters: the parser rejects a line
/// that is not five fields). Every other row goes to the packer.
const EXACT: &str = "score = CAST(score AS INTEGER) AND sub = CAST(sub AS INTEGER)";

enum Phase {
    /// Text ranges of rowids: the next range starts after `next`; `last` is
    /// the largest rowid; `others` counts rows left for the packer.
    Text {
        next: i64,
        last: i64,
        others: f64,
    },
    Packed {
        it: JsValue,
    },
    Done,
}

enum Chunk {
    Text(TextRows),
    Packed(PackedRows),
}

/// Every member row of a board (`member, score, seq, ts, sub`), read a
/// chunk at a time and lent from it into a [`RankingBuilder`]
/// ([`MemberRows::feed`]: no allocation per member). The first error ends
/// the rows and is kept in `failed`.
pub struct MemberRows<'a> {
    /// How many rows there are (the ranking reserves its entries once).
    pub count: usize,
    sql: &'a SqlStorage,
    phase: Phase,
    chunk: Option<Chunk>,
    pub failed: Option<worker::Error>,
    /// Milliseconds spent in SQLite and the packer (the load's log line).
    pub read_ms: f64,
}

impl<'a> MemberRows<'a> {
    pub fn open(sql: &'a SqlStorage) -> Result<MemberRows<'a>> {
        // One statement for the three: the first and last rowid bound the
        // ranges (a board that lost many members may start far from 1).
        let first = sql.exec("SELECT min(rowid), max(rowid), count(*) FROM members", None)?.raw().next();
        let cols = match first {
            Some(row) => row?,
            None => Vec::new(),
        };
        let int = |i: usize| match cols.get(i) {
            Some(SqlStorageValue::Integer(n)) => *n,
            Some(SqlStorageValue::Float(f)) => *f as i64,
            _ => 0,
        };
        let (start, last, count) = (int(0), int(1), int(2).max(0) as usize);
        Ok(MemberRows {
            count,
            sql,
            phase: Phase::Text { next: start, last, others: 0.0 },
            chunk: None,
            failed: None,
            read_ms: 0.0,
        })
    }

    /// The next chunk, or None when every row was read.
    fn refill(&mut self) -> Result<Option<Chunk>> {
        loop {
            match &mut self.phase {
                Phase::Text { next, last, others } => {
                    if *next > *last {
                        self.phase = if *others > 0.0 {
                            let q = format!(
                                "SELECT member, score, seq, ts, sub FROM members WHERE NOT ({EXACT})"
                            );
                            Phase::Packed {
                                it: rows_open(self.sql.as_ref(), &q).map_err(worker::Error::from)?,
                            }
                        } else {
                            Phase::Done
                        };
                        continue;
                    }
                    let lo = *next;
                    *next = lo + RANGE;
                    // one printf per row (each `||` would copy the line so far)
                    let q = format!(
                        "SELECT group_concat(CASE WHEN {EXACT} THEN \
                         printf('%s\t%lld\t%lld\t%lld\t%lld', member, score, seq, ts, sub) END, char(10)), \
                         count(*) FROM members WHERE rowid >= ? AND rowid < ?"
                    );
                    let row = self
                        .sql
                        .exec(&q, vec![(lo as f64).into(), ((lo + RANGE) as f64).into()])?
                        .raw()
                        .next();
                    let cols = match row {
                        Some(r) => r?,
                        None => continue,
                    };
                    let rows = match cols.get(1) {
                        Some(SqlStorageValue::Integer(n)) => *n as f64,
                        Some(SqlStorageValue::Float(n)) => *n,
                        _ => 0.0,
                    };
                    let text = match cols.into_iter().next() {
                        Some(SqlStorageValue::String(text)) => text,
                        _ => String::new(),
                    };
                    let lines = if text.is_empty() { 0 } else { 1 + text.matches('\n').count() };
                    *others += rows - lines as f64;
                    if lines > 0 {
                        return Ok(Some(Chunk::Text(TextRows::new(text))));
                    }
                }
                Phase::Packed { it } => {
                    return match rows_pack(it, CHUNK).map_err(worker::Error::from)? {
                        Some(buf) => Ok(Some(Chunk::Packed(PackedRows::new(buf.to_vec())))),
                        None => {
                            self.phase = Phase::Done;
                            Ok(None)
                        }
                    };
                }
                Phase::Done => return Ok(None),
            }
        }
    }
}

/// Pushes the rows a chunk lends (`next_ref`) into `b` until they end
/// (`None`), one fails (its error) or `b` takes no more.
macro_rules! feed_from {
    ($b:expr, $chunk:expr) => {{
        let mut err = None;
        while let Some(row) = $chunk.next_ref() {
            match row {
                Ok(row) => $b.push(row),
                Err(e) => {
                    err = Some(e);
                    break;
                }
            }
            if $b.is_full() {
                break;
            }
        }
        err
    }};
}

impl MemberRows<'_> {
    /// Pushes every row into `b`, each borrowed from its chunk, until the
    /// rows end, one fails (kept in `failed`) or `b` takes no more.
    pub fn feed(&mut self, b: &mut RankingBuilder) {
        loop {
            if self.failed.is_some() || b.is_full() {
                return;
            }
            let err: Option<RowsError> = match self.chunk.as_mut() {
                Some(Chunk::Text(t)) => feed_from!(b, t),
                Some(Chunk::Packed(p)) => feed_from!(b, p),
                None => None,
            };
            if let Some(e) = err {
                self.failed = Some(rust_err(format!("member rows: {e:?}")));
                return;
            }
            if b.is_full() {
                return;
            }
            let t = js_sys::Date::now();
            let chunk = self.refill();
            self.read_ms += js_sys::Date::now() - t;
            match chunk {
                Ok(Some(c)) => self.chunk = Some(c),
                Ok(None) => return,
                Err(e) => {
                    self.failed = Some(e);
                    return;
                }
            }
        }
    }
}
