//! A board's member rows as its cold load receives them, in bulk, read here
//! into [`Row`]s. Row by row through workers-rs's cursor, each row crossed
//! the JS↔wasm boundary about seven times and a 1M-member load took ~2.4 s
//! (session 11); `glue/rows.rs` has the two bulk forms:
//!
//! - [`TextRows`]: what SQLite itself concatenates for a range of rowids,
//!   one line per row, `member \t score \t seq \t ts \t sub`, used for rows
//!   whose score and subscore are integral (exact as i64 text, and the usual
//!   case: counts and points);
//! - [`PackedRows`]: every other row, packed by a JS helper from the cursor:
//!   `u32` byte length of the id, the id's UTF-8 bytes, then `score`,
//!   `sub`, `seq`, `ts` as little-endian `f64` (JS numbers as SQLite gave
//!   them, so a score keeps every bit).

use crate::core::ranking::Row;

/// Why a packed buffer could not be read (a bug in the packer, never input).
#[derive(Debug, PartialEq, Eq)]
pub enum RowsError {
    Truncated,
    NotUtf8,
    NotInteger,
}

/// Reads rows out of one packed buffer, in order.
pub struct PackedRows {
    buf: Vec<u8>,
    at: usize,
}

impl PackedRows {
    pub fn new(buf: Vec<u8>) -> PackedRows {
        PackedRows { buf, at: 0 }
    }

    fn take(&mut self, n: usize) -> Result<&[u8], RowsError> {
        let end = self.at.checked_add(n).ok_or(RowsError::Truncated)?;
        let s = self.buf.get(self.at..end).ok_or(RowsError::Truncated)?;
        self.at = end;
        Ok(s)
    }

    fn f64(&mut self) -> Result<f64, RowsError> {
        let b: [u8; 8] = self.take(8)?.try_into().map_err(|_| RowsError::Truncated)?;
        Ok(f64::from_le_bytes(b))
    }

    fn row(&mut self) -> Result<Row, RowsError> {
        let len: [u8; 4] = self.take(4)?.try_into().map_err(|_| RowsError::Truncated)?;
        let len = u32::from_le_bytes(len) as usize;
        let member = std::str::from_utf8(self.take(len)?).map_err(|_| RowsError::NotUtf8)?.to_owned();
        let score = self.f64()?;
        let sub = self.f64()?;
        let seq = self.f64()?;
        let ts = self.f64()?;
        // Metadata stays in SQLite (issue 12: bounded memory); reads fetch
        // it for the members they list.
        Ok(Row { member, score, sub, seq: seq as u64, ts: ts as i64, meta: None })
    }
}

impl Iterator for PackedRows {
    type Item = Result<Row, RowsError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.at >= self.buf.len() {
            return None;
        }
        let r = self.row();
        if r.is_err() {
            // nothing after a broken row can be trusted
            self.at = self.buf.len();
        }
        Some(r)
    }
}

/// Reads the lines of one [`TextRows`] text, in order.
pub struct TextRows {
    text: String,
    at: usize,
}

impl TextRows {
    pub fn new(text: String) -> TextRows {
        TextRows { text, at: 0 }
    }

    fn line(line: &str) -> Result<Row, RowsError> {
        let mut f = line.split('\t');
        let mut field = || f.next().ok_or(RowsError::Truncated);
        let member = field()?.to_owned();
        let int = |s: &str| s.parse::<i64>().map_err(|_| RowsError::NotInteger);
        let score = int(field()?)? as f64;
        let seq = int(field()?)?;
        let ts = int(field()?)?;
        let sub = int(field()?)? as f64;
        // (an i64 that came from an integral f64 is that f64 again)
        if f.next().is_some() {
            return Err(RowsError::Truncated);
        }
        Ok(Row { member, score, sub, seq: seq.max(0) as u64, ts, meta: None })
    }
}

impl Iterator for TextRows {
    type Item = Result<Row, RowsError>;

    fn next(&mut self) -> Option<Self::Item> {
        let rest = self.text.get(self.at..).filter(|r| !r.is_empty())?;
        let line = rest.split('\n').next().unwrap_or(rest);
        self.at += line.len() + 1;
        Some(TextRows::line(line))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_rows_read_every_line() {
        let t = "alice\t12\t1700000000000\t0\t0\nZoë 🎉\t-3\t1700000000001\t1700000000001\t-7".to_string();
        let rows: Vec<Row> = TextRows::new(t).collect::<Result<_, _>>().unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(
            (rows[0].member.as_str(), rows[0].score, rows[0].seq, rows[0].ts),
            ("alice", 12.0, 1_700_000_000_000, 0)
        );
        assert_eq!(
            (rows[1].member.as_str(), rows[1].score, rows[1].sub, rows[1].ts),
            ("Zoë 🎉", -3.0, -7.0, 1_700_000_000_001)
        );
        assert_eq!(TextRows::new(String::new()).count(), 0);
    }

    #[test]
    fn a_text_row_that_is_not_five_integers_is_an_error() {
        assert_eq!(TextRows::new("a\t1.5\t1\t0\t0".into()).next(), Some(Err(RowsError::NotInteger)));
        assert_eq!(TextRows::new("a\t1\t1\t0".into()).next(), Some(Err(RowsError::Truncated)));
        assert_eq!(TextRows::new("a\t1\t1\t0\t0\t9".into()).next(), Some(Err(RowsError::Truncated)));
    }

    /// The packer's layout, as `glue/rows.rs`'s JS writes it.
    fn pack(rows: &[(&str, f64, f64, f64, f64)]) -> Vec<u8> {
        let mut b = Vec::new();
        for (m, score, sub, seq, ts) in rows {
            b.extend_from_slice(&(m.len() as u32).to_le_bytes());
            b.extend_from_slice(m.as_bytes());
            for x in [score, sub, seq, ts] {
                b.extend_from_slice(&x.to_le_bytes());
            }
        }
        b
    }

    #[test]
    fn packed_rows_read_back_bit_for_bit() {
        let score = 0.1 + 0.2; // needs all 17 digits
        let b = pack(&[("alice", score, 0.0, 1.7e12, 0.0), ("ünï", -5.5, 2.25, 1.8e12, 1.8e12 + 1.0)]);
        let rows: Vec<Row> = PackedRows::new(b).collect::<Result<_, _>>().unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].member, "alice");
        assert_eq!(rows[0].score.to_bits(), score.to_bits());
        assert_eq!(rows[0].seq, 1_700_000_000_000);
        assert_eq!(rows[1].member, "ünï");
        assert_eq!((rows[1].score, rows[1].sub, rows[1].ts), (-5.5, 2.25, 1_800_000_000_001));
        assert!(rows[1].meta.is_none());
    }

    #[test]
    fn a_truncated_buffer_is_an_error_and_ends_the_rows() {
        let mut b = pack(&[("alice", 1.0, 0.0, 1.0, 0.0), ("bob", 2.0, 0.0, 1.0, 0.0)]);
        b.truncate(b.len() - 3);
        let got: Vec<_> = PackedRows::new(b).collect();
        assert_eq!(got.len(), 2);
        assert!(got[0].is_ok());
        assert_eq!(got[1].as_ref().unwrap_err(), &RowsError::Truncated);
        assert_eq!(PackedRows::new(vec![255, 255, 255, 255, 1]).next(), Some(Err(RowsError::Truncated)));
    }

    #[test]
    fn an_id_that_is_not_utf8_is_an_error() {
        let mut b = pack(&[("ab", 1.0, 0.0, 1.0, 0.0)]);
        b[4] = 0xff;
        assert_eq!(PackedRows::new(b).next(), Some(Err(RowsError::NotUtf8)));
    }
}
