//! The plaintext payload: a compact, exact binary encoding of rows.
//!
//! ```text
//! payload  := record* END
//! record   := 0x01 value{ncols}           a row (values in manifest column order,
//!                                           the rowid first when the table has one)
//!           | 0x02 varint(len) key-bytes   a deleted row (incremental backups only)
//! END      := 0x00 varint(rows) varint(deletes)
//! value    := 0x00                        NULL
//!           | 0x01 zigzag-varint          INTEGER (full i64 range)
//!           | 0x02 u64-le                 REAL (IEEE-754 bits: -0.0, subnormals exact)
//!           | 0x03 varint(len) bytes      TEXT (raw bytes, may be invalid UTF-8)
//!           | 0x04 varint(len) bytes      BLOB
//! ```
//!
//! Varints are unsigned LEB128 (at most 10 bytes). Lengths read from a file are
//! bounded by [`MAX_VALUE_LEN`] and buffers grow only as bytes actually arrive,
//! so a corrupt length cannot make the reader allocate more than the file holds.

use std::io::{self, Read};

use rusqlite::types::ValueRef;

/// Longest TEXT or BLOB accepted (SQLite's default `SQLITE_MAX_LENGTH`).
pub(crate) const MAX_VALUE_LEN: u64 = 1_000_000_000;

const REC_END: u8 = 0x00;
const REC_ROW: u8 = 0x01;
const REC_DELETE: u8 = 0x02;

const VAL_NULL: u8 = 0x00;
const VAL_INTEGER: u8 = 0x01;
const VAL_REAL: u8 = 0x02;
const VAL_TEXT: u8 = 0x03;
const VAL_BLOB: u8 = 0x04;

/// An owned SQLite value, compared exactly (REAL by its bit pattern).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Value {
    Null,
    Integer(i64),
    /// IEEE-754 bits of the REAL.
    Real(u64),
    /// Raw TEXT bytes (not necessarily UTF-8).
    Text(Vec<u8>),
    Blob(Vec<u8>),
}

impl Value {
    /// True for NULL.
    pub(crate) fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }
}

/// One decoded record.
#[derive(Debug)]
pub(crate) enum Record {
    Row(Vec<Value>),
    Delete(Vec<u8>),
    End { rows: u64, deletes: u64 },
}

fn put_varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// Appends one value read from SQLite.
pub(crate) fn put_value_ref(buf: &mut Vec<u8>, v: ValueRef<'_>) {
    match v {
        ValueRef::Null => buf.push(VAL_NULL),
        ValueRef::Integer(i) => {
            buf.push(VAL_INTEGER);
            put_varint(buf, zigzag(i));
        }
        ValueRef::Real(f) => {
            buf.push(VAL_REAL);
            buf.extend_from_slice(&f.to_bits().to_le_bytes());
        }
        ValueRef::Text(t) => put_bytes(buf, VAL_TEXT, t),
        ValueRef::Blob(b) => put_bytes(buf, VAL_BLOB, b),
    }
}

/// Appends one owned value.
pub(crate) fn put_value(buf: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Null => buf.push(VAL_NULL),
        Value::Integer(i) => {
            buf.push(VAL_INTEGER);
            put_varint(buf, zigzag(*i));
        }
        Value::Real(bits) => {
            buf.push(VAL_REAL);
            buf.extend_from_slice(&bits.to_le_bytes());
        }
        Value::Text(t) => put_bytes(buf, VAL_TEXT, t),
        Value::Blob(b) => put_bytes(buf, VAL_BLOB, b),
    }
}

fn put_bytes(buf: &mut Vec<u8>, tag: u8, bytes: &[u8]) {
    buf.push(tag);
    put_varint(buf, bytes.len() as u64);
    buf.extend_from_slice(bytes);
}

/// Starts a row record; the caller appends exactly `ncols` values.
pub(crate) fn begin_row(buf: &mut Vec<u8>) {
    buf.push(REC_ROW);
}

/// Appends a delete record for an encoded key.
pub(crate) fn put_delete(buf: &mut Vec<u8>, key: &[u8]) {
    put_bytes(buf, REC_DELETE, key);
}

/// Appends the END record.
pub(crate) fn put_end(buf: &mut Vec<u8>, rows: u64, deletes: u64) {
    buf.push(REC_END);
    put_varint(buf, rows);
    put_varint(buf, deletes);
}

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// Decodes records from a (buffered) plaintext stream.
pub(crate) struct RecordReader<R> {
    inner: R,
    ncols: usize,
}

impl<R: Read> RecordReader<R> {
    /// `ncols`: values per row (from the manifest, already bounded).
    pub(crate) fn new(inner: R, ncols: usize) -> Self {
        RecordReader { inner, ncols }
    }

    /// The underlying reader (to check for trailing bytes after END).
    pub(crate) fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    fn byte(&mut self) -> io::Result<u8> {
        let mut b = [0u8; 1];
        self.inner.read_exact(&mut b)?;
        Ok(b[0])
    }

    fn varint(&mut self) -> io::Result<u64> {
        let mut v: u64 = 0;
        for i in 0..10 {
            let b = self.byte()?;
            if i == 9 && b > 1 {
                return Err(invalid("varint overflows 64 bits"));
            }
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(invalid("varint longer than 10 bytes"))
    }

    fn bytes(&mut self) -> io::Result<Vec<u8>> {
        let len = self.varint()?;
        if len > MAX_VALUE_LEN {
            return Err(invalid(format!(
                "value length {len} exceeds the maximum {MAX_VALUE_LEN}"
            )));
        }
        // Grow with the data actually present, never trust `len` for capacity.
        let mut out = Vec::with_capacity((len as usize).min(64 * 1024));
        (&mut self.inner).take(len).read_to_end(&mut out)?;
        if out.len() as u64 != len {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "payload ends inside a value",
            ));
        }
        Ok(out)
    }

    fn value(&mut self) -> io::Result<Value> {
        Ok(match self.byte()? {
            VAL_NULL => Value::Null,
            VAL_INTEGER => Value::Integer(unzigzag(self.varint()?)),
            VAL_REAL => {
                let mut b = [0u8; 8];
                self.inner.read_exact(&mut b)?;
                Value::Real(u64::from_le_bytes(b))
            }
            VAL_TEXT => Value::Text(self.bytes()?),
            VAL_BLOB => Value::Blob(self.bytes()?),
            t => return Err(invalid(format!("unknown value tag 0x{t:02x}"))),
        })
    }

    /// Reads the next record.
    pub(crate) fn next_record(&mut self) -> io::Result<Record> {
        match self.byte()? {
            REC_ROW => {
                let mut vals = Vec::with_capacity(self.ncols);
                for _ in 0..self.ncols {
                    vals.push(self.value()?);
                }
                Ok(Record::Row(vals))
            }
            REC_DELETE => Ok(Record::Delete(self.bytes()?)),
            REC_END => {
                let rows = self.varint()?;
                let deletes = self.varint()?;
                Ok(Record::End { rows, deletes })
            }
            t => Err(invalid(format!("unknown record tag 0x{t:02x}"))),
        }
    }
}

/// Encodes the key of a row: `0x00 + rowid` when the row is keyed by rowid,
/// `0x01 + values` when keyed by its primary key. A rowid table's declared
/// primary key may hold NULL (an old SQLite quirk); such rows fall back to
/// their rowid so keys stay unique.
pub(crate) fn row_key(
    out: &mut Vec<u8>,
    values: &[Value],
    rowid_pos: Option<usize>,
    key_pos: &[usize],
) {
    out.clear();
    let pk_usable = !key_pos.is_empty() && key_pos.iter().all(|&i| !values[i].is_null());
    if pk_usable {
        out.push(1);
        for &i in key_pos {
            put_value(out, &values[i]);
        }
    } else {
        out.push(0);
        match rowid_pos {
            Some(i) => put_value(out, &values[i]),
            // WITHOUT ROWID tables have a NOT NULL primary key, so this is unreachable
            // for them; encode the (null) key values anyway to stay total.
            None => {
                for &i in key_pos {
                    put_value(out, &values[i]);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip() {
        let vals = vec![
            Value::Null,
            Value::Integer(i64::MIN),
            Value::Integer(i64::MAX),
            Value::Integer(0),
            Value::Integer(-1),
            Value::Real((-0.0f64).to_bits()),
            Value::Real(f64::MIN_POSITIVE.to_bits() >> 1),
            Value::Text(vec![0xff, 0xfe, b'a']),
            Value::Text(vec![]),
            Value::Blob(vec![0; 300]),
        ];
        let mut buf = Vec::new();
        begin_row(&mut buf);
        for v in &vals {
            put_value(&mut buf, v);
        }
        put_end(&mut buf, 1, 0);
        let mut r = RecordReader::new(&buf[..], vals.len());
        match r.next_record().unwrap() {
            Record::Row(got) => assert_eq!(got, vals),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            r.next_record().unwrap(),
            Record::End {
                rows: 1,
                deletes: 0
            }
        ));
    }

    #[test]
    fn huge_length_is_rejected_without_allocating() {
        let mut buf = vec![REC_ROW, VAL_BLOB];
        put_varint(&mut buf, u64::MAX / 2);
        let mut r = RecordReader::new(&buf[..], 1);
        assert!(r.next_record().is_err());
        let mut buf = vec![REC_ROW, VAL_BLOB];
        put_varint(&mut buf, 1 << 29);
        let mut r = RecordReader::new(&buf[..], 1);
        assert_eq!(
            r.next_record().unwrap_err().kind(),
            io::ErrorKind::UnexpectedEof
        );
    }
}
