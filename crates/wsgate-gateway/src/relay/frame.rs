//! Frame-header scanner: reads only the 2–14 header bytes of each frame and steps over the
//! payload by count, so the relay can forward bytes as they arrive without buffering messages.
//!
//! The scanner never changes a byte. It tells the pump how many bytes of a chunk are known to
//! be valid to forward, and stops at the first header that breaks RFC 6455 or a size limit, so
//! that the offending frame is never forwarded and the gateway can close cleanly at a frame
//! boundary.

use crate::policy::budget::{Budget, Exceeded, Verdict};

/// Which peer wrote the bytes. Client frames must be masked; upstream frames must not be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sender {
    Client,
    Upstream,
}

/// A header that the gateway refuses to forward, named by the rule it breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Violation {
    #[error("client frame not masked")]
    UnmaskedClientFrame,
    #[error("upstream frame masked")]
    MaskedUpstreamFrame,
    #[error("reserved opcode")]
    ReservedOpcode,
    #[error("reserved bits set without a negotiated extension")]
    ReservedBits,
    #[error("control frame over 125 bytes")]
    ControlFrameTooLong,
    #[error("fragmented control frame")]
    FragmentedControlFrame,
    #[error("continuation without a message")]
    UnexpectedContinuation,
    #[error("new message before the last one ended")]
    UnfinishedMessage,
    #[error("invalid payload length")]
    InvalidLength,
    #[error("frame too big")]
    FrameTooBig,
    #[error("message too big")]
    MessageTooBig,
    /// A message or byte limit whose plan says `close` is spent.
    #[error("{0}")]
    LimitExceeded(Exceeded),
}

impl Violation {
    /// The close code that both sides receive: 1009 for size limits, 1008 for plan limits,
    /// 1002 for the rest.
    pub fn close_code(self) -> u16 {
        match self {
            Violation::FrameTooBig | Violation::MessageTooBig => 1009,
            Violation::LimitExceeded(_) => 1008,
            _ => 1002,
        }
    }
}

/// What a scan of one chunk found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scan {
    /// The first `consumed` bytes may be forwarded; the rest (an incomplete header or close
    /// frame) must be presented again with more bytes after it.
    Continue { consumed: usize },
    /// A whole close frame starts at `start` and ends at `consumed`; nothing after it belongs
    /// to the connection.
    Close { start: usize, consumed: usize, code: Option<u16> },
    /// The frame starting at `consumed` breaks a rule; only the bytes before it may be forwarded.
    Violation { consumed: usize, violation: Violation },
    /// The frame starting at `consumed` must wait for the budget (a throttling limit); only the
    /// bytes before it may be forwarded, and it is scanned again when the budget allows.
    Paused { consumed: usize },
}

const CLOSE: u8 = 0x8;
/// Longest header: 2 bytes, 8 bytes of extended length, 4 bytes of mask.
pub const MAX_HEADER: usize = 14;
/// A whole close frame: the scanner holds it back until complete to read its code.
pub const MAX_CLOSE_FRAME: usize = MAX_HEADER + 125;

/// Per-direction framing state. Counters are read by the access log when the connection ends.
#[derive(Debug)]
pub struct Scanner {
    sender: Sender,
    max_frame: u64,
    max_message: u64,
    /// Whether RSV bits may be set: only when the handshake negotiated an extension
    /// (permessage-deflate uses RSV1), which then owns their meaning.
    extensions: bool,
    /// Payload bytes of the current frame not seen yet; 0 means "at a frame boundary".
    payload_left: u64,
    /// A fragmented data message is open (its first frame had FIN = 0).
    in_message: bool,
    message_len: u64,
    /// Whole data messages seen (counted at their final frame).
    pub messages: u64,
    /// Bytes accepted for forwarding, headers included.
    pub bytes: u64,
}

impl Scanner {
    pub fn new(sender: Sender, max_frame: u64, max_message: u64) -> Scanner {
        Scanner {
            sender,
            max_frame,
            max_message,
            extensions: false,
            payload_left: 0,
            in_message: false,
            message_len: 0,
            messages: 0,
            bytes: 0,
        }
    }

    /// Lets RSV bits through, for connections whose handshake negotiated an extension.
    pub fn with_extensions(self, negotiated: bool) -> Scanner {
        Scanner { extensions: negotiated, ..self }
    }

    /// Whether the bytes accepted so far end exactly at a frame boundary, where the gateway may
    /// insert a frame of its own.
    pub fn at_boundary(&self) -> bool {
        self.payload_left == 0
    }

    /// Scans `data`, which starts where the previous accepted bytes ended. With
    /// `stop_at_boundary`, returns at the first frame boundary reached, so that the caller can
    /// insert a frame there. `budget`, when limits meter this direction, admits each data frame.
    pub fn scan(&mut self, data: &[u8], stop_at_boundary: bool, mut budget: Option<&mut Budget>) -> Scan {
        let mut pos = 0;
        loop {
            if self.payload_left > 0 {
                let take = self.payload_left.min((data.len() - pos) as u64);
                pos += take as usize;
                self.payload_left -= take;
                if self.payload_left > 0 || stop_at_boundary {
                    return self.accept(pos);
                }
            }
            let Some(header) = Header::parse(&data[pos..]) else {
                return self.accept(pos);
            };
            if let Err(violation) = self.check(&header) {
                self.bytes += pos as u64;
                return Scan::Violation { consumed: pos, violation };
            }
            if header.opcode <= 0x2
                && let Some(budget) = budget.as_deref_mut()
            {
                match budget.admit(header.opcode != 0, header.payload) {
                    Verdict::Go => {}
                    Verdict::Wait => {
                        self.bytes += pos as u64;
                        return Scan::Paused { consumed: pos };
                    }
                    Verdict::Exceeded(exceeded) => {
                        self.bytes += pos as u64;
                        return Scan::Violation { consumed: pos, violation: Violation::LimitExceeded(exceeded) };
                    }
                }
            }
            if header.opcode == CLOSE {
                let end = pos + header.len + header.payload as usize;
                if data.len() < end {
                    return self.accept(pos);
                }
                let code = header.close_code(&data[pos + header.len..end]);
                self.bytes += end as u64;
                return Scan::Close { start: pos, consumed: end, code };
            }
            self.account(&header);
            pos += header.len;
            self.payload_left = header.payload;
            if self.payload_left == 0 && stop_at_boundary {
                return self.accept(pos);
            }
        }
    }

    fn accept(&mut self, consumed: usize) -> Scan {
        self.bytes += consumed as u64;
        Scan::Continue { consumed }
    }

    fn check(&self, header: &Header) -> Result<(), Violation> {
        match (self.sender, header.masked) {
            (Sender::Client, false) => return Err(Violation::UnmaskedClientFrame),
            (Sender::Upstream, true) => return Err(Violation::MaskedUpstreamFrame),
            _ => {}
        }
        if header.payload >> 63 != 0 {
            return Err(Violation::InvalidLength);
        }
        if header.rsv != 0 && !self.extensions {
            return Err(Violation::ReservedBits);
        }
        match header.opcode {
            0x8..=0xA => {
                if !header.fin {
                    return Err(Violation::FragmentedControlFrame);
                }
                if header.payload > 125 {
                    return Err(Violation::ControlFrameTooLong);
                }
            }
            0x0 if !self.in_message => return Err(Violation::UnexpectedContinuation),
            0x1 | 0x2 if self.in_message => return Err(Violation::UnfinishedMessage),
            0x0..=0x2 => {
                if header.payload > self.max_frame {
                    return Err(Violation::FrameTooBig);
                }
                if self.message_len + header.payload > self.max_message {
                    return Err(Violation::MessageTooBig);
                }
            }
            _ => return Err(Violation::ReservedOpcode),
        }
        Ok(())
    }

    fn account(&mut self, header: &Header) {
        if header.opcode > 0x2 {
            return; // ping and pong do not touch message state
        }
        if header.fin {
            self.messages += 1;
            self.in_message = false;
            self.message_len = 0;
        } else {
            self.in_message = true;
            self.message_len += header.payload;
        }
    }
}

/// The fields of one frame header the relay needs.
#[derive(Debug)]
struct Header {
    fin: bool,
    /// RSV1..3 as the bits 0x70 of the first byte.
    rsv: u8,
    opcode: u8,
    masked: bool,
    mask: [u8; 4],
    payload: u64,
    /// Header length in bytes (2..=14).
    len: usize,
}

impl Header {
    /// Parses a header at the start of `data`, or `None` when it is not complete yet.
    fn parse(data: &[u8]) -> Option<Header> {
        let [b0, b1, ..] = *data else { return None };
        let masked = b1 & 0x80 != 0;
        let (payload, mut len) = match b1 & 0x7F {
            126 => (u64::from(u16::from_be_bytes(data.get(2..4)?.try_into().ok()?)), 4),
            127 => (u64::from_be_bytes(data.get(2..10)?.try_into().ok()?), 10),
            short => (u64::from(short), 2),
        };
        let mut mask = [0; 4];
        if masked {
            mask.copy_from_slice(data.get(len..len + 4)?);
            len += 4;
        }
        Some(Header { fin: b0 & 0x80 != 0, rsv: b0 & 0x70, opcode: b0 & 0x0F, masked, mask, payload, len })
    }

    /// The status code of a close frame, unmasked for reading only; the bytes stay as sent.
    fn close_code(&self, payload: &[u8]) -> Option<u16> {
        let [a, b, ..] = *payload else { return None };
        let (a, b) = if self.masked { (a ^ self.mask[0], b ^ self.mask[1]) } else { (a, b) };
        Some(u16::from_be_bytes([a, b]))
    }
}

/// Writes a close frame made by the gateway into `out`, masked when it goes to the upstream
/// (the gateway is the client there). Returns the frame length.
pub fn write_close(out: &mut [u8; MAX_CLOSE_FRAME], code: u16, reason: &str, mask: Option<[u8; 4]>) -> usize {
    let reason = &reason.as_bytes()[..reason.len().min(123)];
    let payload_len = 2 + reason.len();
    out[0] = 0x80 | CLOSE;
    out[1] = payload_len as u8;
    let mut pos = 2;
    if let Some(key) = mask {
        out[1] |= 0x80;
        out[2..6].copy_from_slice(&key);
        pos = 6;
    }
    out[pos..pos + 2].copy_from_slice(&code.to_be_bytes());
    out[pos + 2..pos + payload_len].copy_from_slice(reason);
    if let Some(key) = mask {
        for (i, byte) in out[pos..pos + payload_len].iter_mut().enumerate() {
            *byte ^= key[i % 4];
        }
    }
    pos + payload_len
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a frame as a peer would send it; the payload is left unmasked since the scanner
    /// never looks at it.
    fn frame(fin: bool, opcode: u8, masked: bool, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![(u8::from(fin) << 7) | opcode];
        let mask_bit = if masked { 0x80 } else { 0 };
        match payload.len() {
            n if n < 126 => out.push(mask_bit | n as u8),
            n if n <= 0xFFFF => {
                out.push(mask_bit | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.push(mask_bit | 127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        if masked {
            out.extend_from_slice(&[0, 0, 0, 0]);
        }
        out.extend_from_slice(payload);
        out
    }

    fn client() -> Scanner {
        Scanner::new(Sender::Client, 1 << 20, 4 << 20)
    }

    #[test]
    fn whole_frames_are_forwarded_and_counted() {
        let mut s = client();
        let mut data = frame(true, 1, true, b"hello");
        data.extend(frame(true, 2, true, &[7; 300]));
        assert_eq!(s.scan(&data, false, None), Scan::Continue { consumed: data.len() });
        assert_eq!((s.messages, s.bytes), (2, data.len() as u64));
        assert!(s.at_boundary());
    }

    #[test]
    fn a_header_split_across_reads_is_held_back_until_complete() {
        let mut s = client();
        let data = frame(true, 2, true, &[1; 70_000]);
        assert_eq!(s.scan(&data[..5], false, None), Scan::Continue { consumed: 0 });
        assert_eq!(s.scan(&data[..100], false, None), Scan::Continue { consumed: 100 });
        assert!(!s.at_boundary());
        assert_eq!(s.scan(&data[100..], false, None), Scan::Continue { consumed: data.len() - 100 });
        assert_eq!(s.messages, 1);
    }

    #[test]
    fn fragments_with_interleaved_pings_make_one_message() {
        let mut s = client();
        let mut data = frame(false, 1, true, b"a");
        data.extend(frame(true, 9, true, b"ping"));
        data.extend(frame(false, 0, true, b"b"));
        data.extend(frame(true, 0, true, b"c"));
        assert_eq!(s.scan(&data, false, None), Scan::Continue { consumed: data.len() });
        assert_eq!(s.messages, 1);
    }

    #[test]
    fn close_frames_are_whole_and_carry_their_code() {
        let mut s = client();
        let mut close = [0; MAX_CLOSE_FRAME];
        let len = write_close(&mut close, 4000, "bye", Some([1, 2, 3, 4]));
        let mut data = close[..len].to_vec();
        data.extend(b"trailing");
        assert_eq!(s.scan(&data[..len - 1], false, None), Scan::Continue { consumed: 0 });
        assert_eq!(s.scan(&data, false, None), Scan::Close { start: 0, consumed: len, code: Some(4000) });
    }

    #[test]
    fn stop_at_boundary_returns_between_frames() {
        let mut s = client();
        let mut data = frame(true, 1, true, b"one");
        let first = data.len();
        data.extend(frame(true, 1, true, b"two"));
        assert_eq!(s.scan(&data, true, None), Scan::Continue { consumed: first });
    }

    #[test]
    fn rule_breaking_headers_stop_the_scan_before_them() {
        let table: &[(&str, Sender, Vec<u8>, Violation)] = &[
            ("unmasked client frame", Sender::Client, frame(true, 1, false, b"x"), Violation::UnmaskedClientFrame),
            ("masked upstream frame", Sender::Upstream, frame(true, 1, true, b"x"), Violation::MaskedUpstreamFrame),
            ("reserved opcode", Sender::Client, frame(true, 3, true, b""), Violation::ReservedOpcode),
            ("long ping", Sender::Client, frame(true, 9, true, &[0; 126]), Violation::ControlFrameTooLong),
            ("fragmented ping", Sender::Client, frame(false, 9, true, b""), Violation::FragmentedControlFrame),
            ("lone continuation", Sender::Client, frame(true, 0, true, b"x"), Violation::UnexpectedContinuation),
            ("big frame", Sender::Client, frame(true, 2, true, &[0; 2 << 20]), Violation::FrameTooBig),
        ];
        for (name, sender, bad, expected) in table {
            let mut s = Scanner::new(*sender, 1 << 20, 4 << 20);
            let masked = *sender == Sender::Client;
            let mut data = frame(true, 1, masked, b"ok");
            let good = data.len();
            data.extend(bad);
            assert_eq!(s.scan(&data, false, None), Scan::Violation { consumed: good, violation: *expected }, "{name}");
        }
    }

    #[test]
    fn reserved_bits_pass_only_when_an_extension_was_negotiated() {
        let mut deflated = frame(true, 1, true, b"x");
        deflated[0] |= 0x40;
        let mut plain = client();
        assert_eq!(
            plain.scan(&deflated, false, None),
            Scan::Violation { consumed: 0, violation: Violation::ReservedBits }
        );
        let mut negotiated = client().with_extensions(true);
        assert_eq!(negotiated.scan(&deflated, false, None), Scan::Continue { consumed: deflated.len() });
    }

    #[test]
    fn a_new_message_inside_a_fragmented_one_is_refused() {
        let mut s = client();
        let mut data = frame(false, 1, true, b"a");
        let good = data.len();
        data.extend(frame(true, 1, true, b"b"));
        assert_eq!(
            s.scan(&data, false, None),
            Scan::Violation { consumed: good, violation: Violation::UnfinishedMessage }
        );
    }

    #[test]
    fn message_size_counts_all_fragments() {
        let mut s = Scanner::new(Sender::Client, 1000, 1500);
        let mut data = frame(false, 2, true, &[0; 1000]);
        let good = data.len();
        data.extend(frame(true, 0, true, &[0; 600]));
        let scan = s.scan(&data, false, None);
        assert_eq!(scan, Scan::Violation { consumed: good, violation: Violation::MessageTooBig });
        assert_eq!(Violation::MessageTooBig.close_code(), 1009);
    }

    #[test]
    fn gateway_close_frames_parse_back() {
        let mut out = [0; MAX_CLOSE_FRAME];
        let len = write_close(&mut out, 1014, "upstream went away", None);
        let mut s = Scanner::new(Sender::Upstream, 10, 10);
        assert_eq!(s.scan(&out[..len], false, None), Scan::Close { start: 0, consumed: len, code: Some(1014) });
    }
}
