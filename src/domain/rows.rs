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

use crate::core::ranking::{Row, RowRef};

/// Why a packed buffer could not be read (a bug in the packer, never input).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RowsError {
    Truncated,
    NotUtf8,
    NotInteger,
}

/// Reads rows out of one packed buffer, in order: owned ([`Iterator`]) or
/// borrowed from the buffer ([`PackedRows::next_ref`]).
pub struct PackedRows {
    buf: Vec<u8>,
    at: usize,
}

impl PackedRows {
    pub fn new(buf: Vec<u8>) -> PackedRows {
        PackedRows { buf, at: 0 }
    }

    /// The next row, its id borrowed from the buffer (`None` at the end).
    /// An error ends the rows: nothing after a broken row can be trusted.
    pub fn next_ref(&mut self) -> Option<Result<RowRef<'_>, RowsError>> {
        let PackedRows { buf, at } = self;
        if *at >= buf.len() {
            return None;
        }
        let r = Self::row(buf, *at);
        *at = match &r {
            Ok((_, end)) => *end,
            Err(_) => buf.len(),
        };
        Some(r.map(|(row, _)| row))
    }

    /// The row at `at` of `buf` and where the next one starts.
    #[inline]
    fn row(buf: &[u8], at: usize) -> Result<(RowRef<'_>, usize), RowsError> {
        let span = |from: usize, n: usize| {
            let end = from.checked_add(n).ok_or(RowsError::Truncated)?;
            Ok::<_, RowsError>((buf.get(from..end).ok_or(RowsError::Truncated)?, end))
        };
        let (len, at) = span(at, 4)?;
        let len: [u8; 4] = len.try_into().map_err(|_| RowsError::Truncated)?;
        let (id, at) = span(at, u32::from_le_bytes(len) as usize)?;
        let member = std::str::from_utf8(id).map_err(|_| RowsError::NotUtf8)?;
        let (nums, end) = span(at, 32)?;
        let mut f = nums.chunks_exact(8).map(|c| c.try_into().map(f64::from_le_bytes));
        let mut f64 = || f.next().and_then(Result::ok).ok_or(RowsError::Truncated);
        let (score, sub, seq, ts) = (f64()?, f64()?, f64()?, f64()?);
        // Metadata stays in SQLite (issue 12: bounded memory); reads fetch
        // it for the members they list.
        Ok((RowRef { member, score, sub, seq: seq as u64, ts: ts as i64 }, end))
    }
}

impl Iterator for PackedRows {
    type Item = Result<Row, RowsError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_ref().map(|r| r.map(RowRef::to_row))
    }
}

/// Reads the lines of one [`TextRows`] text, in order: owned ([`Iterator`])
/// or borrowed from the text ([`TextRows::next_ref`]).
pub struct TextRows {
    text: String,
    at: usize,
}

/// A decimal integer as `str::parse::<i64>` reads it (an optional sign, then
/// one or more ASCII digits, in range), without the `&str` and its checks.
#[inline]
fn int(s: &[u8]) -> Result<i64, RowsError> {
    let (neg, digits) = match s {
        [b'-', d @ ..] => (true, d),
        [b'+', d @ ..] => (false, d),
        d => (false, d),
    };
    if digits.is_empty() {
        return Err(RowsError::NotInteger);
    }
    let mut v: i64 = 0;
    for &c in digits {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return Err(RowsError::NotInteger);
        }
        let next =
            v.checked_mul(10)
                .and_then(|v| if neg { v.checked_sub(d as i64) } else { v.checked_add(d as i64) });
        v = next.ok_or(RowsError::NotInteger)?;
    }
    Ok(v)
}

/// The line at `at` of `b` in one pass, when it has the usual form: an id
/// without a tab, then four integers of 1 to 18 digits, each after a tab and
/// an optional `-`, then a newline or the end. `(end of the id, [score, seq,
/// ts, sub], start of the next line)`; `None` for anything else, which
/// [`TextRows::line`] then reads (or refuses) exactly.
#[inline]
fn quick(b: &[u8], at: usize) -> Option<(usize, [i64; 4], usize)> {
    let mut i = at;
    loop {
        match *b.get(i)? {
            b'\t' => break,
            b'\n' => return None,
            _ => i += 1,
        }
    }
    let id_end = i;
    let mut nums = [0i64; 4];
    for (f, n) in nums.iter_mut().enumerate() {
        i += 1;
        let neg = b.get(i) == Some(&b'-');
        if neg {
            i += 1;
        }
        let start = i;
        let mut v: i64 = 0;
        while let Some(&c) = b.get(i) {
            let d = c.wrapping_sub(b'0');
            if d > 9 {
                break;
            }
            v = v.wrapping_mul(10).wrapping_add(d as i64);
            i += 1;
        }
        if i == start || i - start > 18 {
            return None;
        }
        *n = if neg { -v } else { v };
        let ok = match b.get(i) {
            Some(b'\t') => f < 3,
            Some(b'\n') | None => f == 3,
            Some(_) => false,
        };
        if !ok {
            return None;
        }
    }
    Some((id_end, nums, i + 1))
}

impl TextRows {
    pub fn new(text: String) -> TextRows {
        TextRows { text, at: 0 }
    }

    /// The next line's row, its id borrowed from the text (`None` at the end).
    pub fn next_ref(&mut self) -> Option<Result<RowRef<'_>, RowsError>> {
        let start = self.at;
        let line = quick(self.text.as_bytes(), start);
        if let Some((id_end, [score, seq, ts, sub], next)) = line.filter(|l| self.text.is_char_boundary(l.0))
        {
            self.at = next;
            // (an i64 that came from an integral f64 is that f64 again)
            let (score, sub, seq) = (score as f64, sub as f64, seq.max(0) as u64);
            return self.text.get(start..id_end).map(|member| Ok(RowRef { member, score, sub, seq, ts }));
        }
        let rest = self.text.get(self.at..).filter(|r| !r.is_empty())?;
        let len = rest.bytes().position(|c| c == b'\n').unwrap_or(rest.len());
        self.at += len + 1;
        Some(TextRows::line(rest.get(..len).unwrap_or(rest)))
    }

    /// `member \t score \t seq \t ts \t sub`
    #[inline]
    fn line(line: &str) -> Result<RowRef<'_>, RowsError> {
        let mut f = line.as_bytes().split(|&c| c == b'\t');
        let mut field = || f.next().ok_or(RowsError::Truncated);
        let id = field()?;
        let member = line.get(..id.len()).ok_or(RowsError::Truncated)?;
        let score = int(field()?)? as f64;
        let seq = int(field()?)?;
        let ts = int(field()?)?;
        let sub = int(field()?)? as f64;
        // (an i64 that came from an integral f64 is that f64 again)
        if f.next().is_some() {
            return Err(RowsError::Truncated);
        }
        Ok(RowRef { member, score, sub, seq: seq.max(0) as u64, ts })
    }
}

impl Iterator for TextRows {
    type Item = Result<Row, RowsError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_ref().map(|r| r.map(RowRef::to_row))
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

    /// The one-pass reading of usual lines gives what the exact one does,
    /// and leaves every other line to it.
    #[test]
    fn a_line_reads_the_same_either_way() {
        let lines = [
            "alice\t12\t1700000000000\t0\t0",
            "\t1\t2\t3\t4",
            "Zoë 🎉\t-3\t-1\t1700000000001\t-7",
            "a\t-0\t0\t-0\t00042",
            "a\t+5\t1\t0\t0",
            "a\t999999999999999999\t1\t0\t-999999999999999999",
            "a\t9223372036854775807\t1\t0\t-9223372036854775808",
            "a\t9223372036854775808\t1\t0\t0",
            "a\t-9223372036854775809\t1\t0\t0",
            "a\t00000000000000000000001\t1\t0\t0",
            "a\t1\t1\t0\t",
            "a\t1\t1\t0\t0\t",
            "a\t1\t1\t0",
            "a\t-\t1\t0\t0",
            "a\t1 \t1\t0\t0",
            "a\t1\t1\t0\t0\r",
            "a b\tc\t1\t1\t0\t0",
            "just an id",
            "",
        ];
        for line in lines {
            let exact = TextRows::line(line);
            assert_eq!(
                TextRows::new(line.to_string()).next_ref(),
                Some(exact.clone()).filter(|_| !line.is_empty()),
                "{line:?}"
            );
            let two = format!("{line}\nb\t1\t2\t3\t4");
            let mut rows = TextRows::new(two);
            assert_eq!(
                rows.next_ref().map(|r| r.map(RowRef::to_row)),
                Some(exact.map(RowRef::to_row)),
                "{line:?}"
            );
            let next = rows.next_ref().map(|r| r.map(RowRef::to_row));
            assert_eq!(next.map(|r| r.map(|r| r.member)), Some(Ok("b".to_string())), "{line:?}");
            assert!(rows.next_ref().is_none());
        }
        for s in
            ["0", "-1", "+1", "1-", "--1", "", "-", "+", "12a", "9223372036854775807", "-9223372036854775808"]
        {
            assert_eq!(int(s.as_bytes()).ok(), s.parse::<i64>().ok(), "{s:?}");
        }
    }

    #[test]
    fn borrowed_rows_are_the_owned_ones() {
        let t = "alice\t12\t1700000000000\t0\t0\nbob\t1\t-5\t7\t3\nbroken";
        let owned: Vec<_> = TextRows::new(t.to_string()).collect();
        let mut lent = Vec::new();
        let mut rows = TextRows::new(t.to_string());
        while let Some(r) = rows.next_ref() {
            lent.push(r.map(RowRef::to_row));
        }
        assert_eq!(lent, owned);
        assert_eq!(owned.len(), 3);
        assert_eq!(owned[1].as_ref().map(|r| r.seq), Ok(0), "a negative seq is 0");
        let b = pack(&[("alice", 0.5, 0.0, 1.7e12, 0.0), ("ünï", -5.5, 2.25, 1.8e12, 1.8e12 + 1.0)]);
        let owned: Vec<_> = PackedRows::new(b.clone()).collect();
        let mut p = PackedRows::new(b);
        let mut lent = Vec::new();
        while let Some(r) = p.next_ref() {
            lent.push(r.map(RowRef::to_row));
        }
        assert_eq!(lent, owned);
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
