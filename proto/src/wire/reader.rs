//! The Protobuf wire format, read without allocating: tags, varints, fixed-width values and
//! length-delimited slices.

/// One field occurrence as it appears on the wire. Length-delimited values are kept as a
/// byte range of the buffer being read, so a parsed message is a handful of integers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Raw {
    Varint(u64),
    Fixed64(u64),
    Fixed32(u32),
    Len { start: u32, end: u32 },
}

impl Raw {
    /// The bytes of a length-delimited value.
    pub fn bytes<'a>(&self, buf: &'a [u8]) -> Option<&'a [u8]> {
        match *self {
            Raw::Len { start, end } => Some(&buf[start as usize..end as usize]),
            _ => None,
        }
    }
}

/// Iterates over the fields of one message's bytes.
pub(crate) struct FieldReader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> FieldReader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// The next `(field number, value)`, `None` at the end, or why the bytes are invalid.
    pub fn next_field(&mut self) -> Result<Option<(u32, Raw)>, String> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let tag = self.varint()?;
        let number = (tag >> 3) as u32;
        if number == 0 || tag >> 3 > u64::from(u32::MAX >> 3) {
            return Err(format!("invalid field number in tag {tag} at byte {}", self.pos));
        }
        let raw = match tag & 7 {
            0 => Raw::Varint(self.varint()?),
            1 => Raw::Fixed64(u64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes"))),
            2 => {
                let len = self.varint()?;
                let start = self.pos;
                let len = usize::try_from(len).map_err(|_| "length overflows".to_string())?;
                self.take(len)?;
                Raw::Len { start: start as u32, end: self.pos as u32 }
            }
            5 => Raw::Fixed32(u32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes"))),
            3 | 4 => return Err(format!("field {number}: groups are not supported")),
            other => return Err(format!("field {number}: invalid wire type {other}")),
        };
        Ok(Some((number, raw)))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.pos.checked_add(n).filter(|e| *e <= self.buf.len()).ok_or_else(|| {
            format!("truncated: needs {n} bytes at byte {} of {}", self.pos, self.buf.len())
        })?;
        let slice = &self.buf[self.pos..end];
        self.pos = end;
        Ok(slice)
    }

    fn varint(&mut self) -> Result<u64, String> {
        let (value, len) = read_varint(&self.buf[self.pos..])
            .ok_or_else(|| format!("truncated or overlong varint at byte {}", self.pos))?;
        self.pos += len;
        Ok(value)
    }
}

/// A varint at the start of `buf`: its value and length.
#[inline]
pub(crate) fn read_varint(buf: &[u8]) -> Option<(u64, usize)> {
    // Tags and most lengths and small numbers fit in one byte.
    if let Some(&byte) = buf.first()
        && byte < 0x80
    {
        return Some((u64::from(byte), 1));
    }
    let mut value = 0u64;
    for (i, byte) in buf.iter().take(10).enumerate() {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

pub(crate) fn zigzag32(v: u64) -> i32 {
    let v = v as u32;
    ((v >> 1) as i32) ^ -((v & 1) as i32)
}

pub(crate) fn zigzag64(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_varints_and_lengths() {
        // field 1 varint 150, field 2 "hi"
        let buf = [0x08, 0x96, 0x01, 0x12, 0x02, b'h', b'i'];
        let mut r = FieldReader::new(&buf);
        assert_eq!(r.next_field().unwrap(), Some((1, Raw::Varint(150))));
        let (n, raw) = r.next_field().unwrap().unwrap();
        assert_eq!((n, raw.bytes(&buf)), (2, Some(&b"hi"[..])));
        assert_eq!(r.next_field().unwrap(), None);
    }

    #[test]
    fn rejects_truncation() {
        assert!(FieldReader::new(&[0x12, 0x05, b'a']).next_field().is_err());
        assert!(FieldReader::new(&[0x08, 0x96]).next_field().is_err());
    }

    #[test]
    fn zigzag_round_trips() {
        assert_eq!(zigzag32(1), -1);
        assert_eq!(zigzag64(4), 2);
    }
}
