//! RecordIO, the framing of the scheduler event stream: `<length>\n<bytes>`,
//! the length in ASCII decimal. Pure and bounded: a record longer than the
//! limit, or a length that is not a number, is an error, not an allocation.

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RecordIoError {
    #[error("the event stream is malformed: the record length {0:?} is not a number")]
    BadLength(String),
    #[error("the event stream announced a record of {0} bytes, over the {1}-byte limit")]
    TooLong(u64, usize),
}

/// Feeds bytes in, takes whole records out.
#[derive(Debug)]
pub struct Decoder {
    buf: Vec<u8>,
    limit: usize,
}

impl Decoder {
    pub fn new(limit: usize) -> Self {
        Self { buf: Vec::new(), limit }
    }

    pub fn feed(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole record, if the buffer holds one.
    pub fn next_record(&mut self) -> Result<Option<Vec<u8>>, RecordIoError> {
        let Some(nl) = self.buf.iter().position(|b| *b == b'\n') else {
            // A length is at most 20 digits: more without a newline is garbage.
            if self.buf.len() > 20 {
                return Err(RecordIoError::BadLength(String::from_utf8_lossy(&self.buf[..20]).into_owned()));
            }
            return Ok(None);
        };
        let text = std::str::from_utf8(&self.buf[..nl]).unwrap_or("").trim();
        let len: u64 = text.parse().map_err(|_| RecordIoError::BadLength(text.chars().take(20).collect()))?;
        if len > self.limit as u64 {
            return Err(RecordIoError::TooLong(len, self.limit));
        }
        let end = nl + 1 + len as usize;
        if self.buf.len() < end {
            return Ok(None);
        }
        let record = self.buf[nl + 1..end].to_vec();
        self.buf.drain(..end);
        Ok(Some(record))
    }
}

pub fn encode(record: &[u8]) -> Vec<u8> {
    let mut out = format!("{}\n", record.len()).into_bytes();
    out.extend_from_slice(record);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_come_out_whole_however_the_bytes_are_cut() {
        let stream = [encode(br#"{"type":"SUBSCRIBED"}"#), encode(b""), encode(br#"{"type":"HEARTBEAT"}"#)].concat();
        for cut in 1..stream.len() {
            let mut d = Decoder::new(1 << 20);
            let mut out = Vec::new();
            for chunk in stream.chunks(cut) {
                d.feed(chunk);
                while let Some(r) = d.next_record().unwrap() {
                    out.push(r);
                }
            }
            assert_eq!(out, vec![br#"{"type":"SUBSCRIBED"}"#.to_vec(), vec![], br#"{"type":"HEARTBEAT"}"#.to_vec()]);
        }
    }

    #[test]
    fn garbage_and_huge_lengths_are_errors_not_allocations() {
        let mut d = Decoder::new(100);
        d.feed(b"HTTP/1.1 200 OK\n");
        assert!(matches!(d.next_record(), Err(RecordIoError::BadLength(_))));
        let mut d = Decoder::new(100);
        d.feed(b"99999999999\n{");
        assert_eq!(d.next_record(), Err(RecordIoError::TooLong(99999999999, 100)));
        let mut d = Decoder::new(100);
        d.feed(&[b'7'; 40]);
        assert!(d.next_record().is_err(), "no newline in sight");
    }
}
