//! The one parser of a sendpath stream, for every receiver (copying, io_uring, rr): it takes
//! the stream in pieces of any size, as reads return it, and reports each whole message and
//! the end frame. Whole messages inside a piece are read in place; a header or end frame that
//! straddles two pieces is stitched, and a payload is checked where its bytes lie, so nothing
//! is copied but the 16-byte headers that straddle.

use super::end::{SenderReport, MAX_END_LEN};
use super::message::{check_payload, get_header, payload_matches_at, END_SEQ, HEADER_LEN};
use crate::error::{Error, Result};

/// What a piece of the stream ended with.
#[derive(Debug, PartialEq)]
pub enum Parsed {
    /// The stream goes on: more pieces are needed.
    More,
    /// The end frame is whole: the sender's report, or None for an end frame without one
    /// (the rr client's).
    End(Option<Box<SenderReport>>),
}

/// Parses messages of one size (and the end frame) from pieces of a stream.
pub struct Parser {
    msg: usize,
    verify: bool,
    /// A header being stitched together, and how much of it is in.
    hdr: [u8; HEADER_LEN],
    hdr_len: usize,
    /// The message whose payload is arriving: (seq, send ts).
    cur: Option<(u64, u64)>,
    payload_left: usize,
    payload_bad: bool,
    /// The end frame being collected: its length and the bytes so far.
    end: Option<(usize, Vec<u8>)>,
}

impl Parser {
    /// A parser of `msg_size`-byte messages; with `verify` every payload is checked against
    /// the pattern of its sequence number.
    pub fn new(msg_size: usize, verify: bool) -> Self {
        Parser {
            msg: msg_size,
            verify,
            hdr: [0; HEADER_LEN],
            hdr_len: 0,
            cur: None,
            payload_left: 0,
            payload_bad: false,
            end: None,
        }
    }

    /// Whether the parser stands at a message boundary (nothing half read).
    pub fn at_boundary(&self) -> bool {
        self.hdr_len == 0 && self.cur.is_none() && self.end.is_none()
    }

    /// Takes the next piece of the stream. Calls `message(seq, send_ts, payload_ok)` for every
    /// message it completes (`payload_ok` is true unless verifying found a wrong byte), in
    /// order; returns [`Parsed::End`] once the end frame is whole (bytes after it are ignored).
    #[inline]
    pub fn feed(
        &mut self,
        mut data: &[u8],
        mut message: impl FnMut(u64, u64, bool),
    ) -> Result<Parsed> {
        loop {
            if let Some((len, buf)) = &mut self.end {
                let take = (*len - buf.len()).min(data.len());
                buf.extend_from_slice(&data[..take]);
                // (What follows the end frame is ignored.)
                if buf.len() < *len {
                    return Ok(Parsed::More);
                }
                if buf.is_empty() {
                    return Ok(Parsed::End(None));
                }
                let report = serde_json::from_slice(buf)
                    .map_err(|e| Error::Protocol(format!("unreadable end frame: {e}")))?;
                return Ok(Parsed::End(Some(Box::new(report))));
            }
            if self.cur.is_none() && self.hdr_len == 0 {
                // Whole messages in place.
                while data.len() >= self.msg.max(HEADER_LEN) {
                    let (seq, ts) = get_header(data);
                    if seq == END_SEQ {
                        break;
                    }
                    let ok =
                        !self.verify || check_payload(&data[HEADER_LEN..self.msg], seq).is_none();
                    message(seq, ts, ok);
                    data = &data[self.msg..];
                }
            }
            if data.is_empty() {
                return Ok(Parsed::More);
            }
            if self.cur.is_none() {
                let take = (HEADER_LEN - self.hdr_len).min(data.len());
                self.hdr[self.hdr_len..self.hdr_len + take].copy_from_slice(&data[..take]);
                self.hdr_len += take;
                data = &data[take..];
                if self.hdr_len < HEADER_LEN {
                    return Ok(Parsed::More);
                }
                self.hdr_len = 0;
                let (seq, ts) = get_header(&self.hdr);
                if seq == END_SEQ {
                    let len = ts as usize;
                    if len > MAX_END_LEN {
                        return Err(Error::Protocol(format!("end frame of {len} bytes")));
                    }
                    self.end = Some((len, Vec::with_capacity(len)));
                    continue;
                }
                self.cur = Some((seq, ts));
                self.payload_left = self.msg - HEADER_LEN;
                self.payload_bad = false;
            }
            let (seq, ts) = self.cur.expect("a message is arriving");
            let take = self.payload_left.min(data.len());
            if self.verify && take > 0 {
                let offset = self.msg - HEADER_LEN - self.payload_left;
                self.payload_bad |= !payload_matches_at(&data[..take], seq, offset);
            }
            data = &data[take..];
            self.payload_left -= take;
            if self.payload_left == 0 {
                self.cur = None;
                message(seq, ts, !self.payload_bad);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::end::encode_end;
    use crate::wire::message::{fill_payload, put_header};

    fn stream(msg: usize, seqs: impl IntoIterator<Item = u64>) -> Vec<u8> {
        let mut out = Vec::new();
        for seq in seqs {
            let mut m = vec![0u8; msg];
            put_header(&mut m, seq, 1000 + seq);
            fill_payload(&mut m[HEADER_LEN..], seq);
            out.extend_from_slice(&m);
        }
        out
    }

    fn parse_in_pieces(bytes: &[u8], msg: usize, piece: usize) -> (Vec<(u64, u64, bool)>, Parsed) {
        let mut p = Parser::new(msg, true);
        let mut got = Vec::new();
        for chunk in bytes.chunks(piece) {
            let r = p.feed(chunk, |s, t, ok| got.push((s, t, ok))).unwrap();
            if r != Parsed::More {
                return (got, r);
            }
        }
        (got, Parsed::More)
    }

    #[test]
    fn pieces_of_any_size_parse_like_one_buffer() {
        let report = SenderReport {
            messages: 5,
            ..SenderReport::default()
        };
        for msg in [16, 17, 100, 4096] {
            let mut bytes = stream(msg, 0..5);
            bytes.extend_from_slice(&encode_end(&report));
            let want: Vec<(u64, u64, bool)> = (0..5).map(|s| (s, 1000 + s, true)).collect();
            for piece in [1, 3, 15, 16, 17, msg, msg + 1, bytes.len()] {
                let (got, end) = parse_in_pieces(&bytes, msg, piece);
                assert_eq!(got, want, "msg {msg} piece {piece}");
                assert_eq!(
                    end,
                    Parsed::End(Some(Box::new(report.clone()))),
                    "msg {msg} piece {piece}"
                );
            }
        }
    }

    #[test]
    fn a_wrong_byte_anywhere_marks_its_message_only() {
        let msg = 64;
        for bad in [16, 17, 40, 63] {
            let mut bytes = stream(msg, 0..3);
            bytes[msg + bad] ^= 1;
            for piece in [1, 7, 64, 1000] {
                let (got, _) = parse_in_pieces(&bytes, msg, piece);
                let oks: Vec<bool> = got.iter().map(|g| g.2).collect();
                assert_eq!(oks, vec![true, false, true], "byte {bad} piece {piece}");
            }
        }
    }

    #[test]
    fn an_empty_end_frame_and_a_huge_one() {
        let mut end = [0u8; HEADER_LEN];
        put_header(&mut end, END_SEQ, 0);
        let (_, r) = parse_in_pieces(&end, 64, 5);
        assert_eq!(r, Parsed::End(None));
        put_header(&mut end, END_SEQ, MAX_END_LEN as u64 + 1);
        assert!(Parser::new(64, false).feed(&end, |_, _, _| {}).is_err());
        let mut p = Parser::new(64, false);
        let mut bad = end;
        put_header(&mut bad, END_SEQ, 2);
        assert_eq!(p.feed(&bad, |_, _, _| {}).unwrap(), Parsed::More);
        assert!(p.feed(b"{]", |_, _, _| {}).is_err(), "unreadable JSON");
    }
}
