//! Frame-header scanner: reads only the 2–14 header bytes of each frame and steps over the
//! payload by count, so the relay can forward bytes as they arrive without buffering messages.
//!
//! The scanner never changes a byte. It tells the pump how many bytes of a chunk are known to
//! be valid to forward, and stops at the first header that breaks RFC 6455, a size limit or the
//! control-frame budget, so that the offending frame is never forwarded and the gateway can
//! close cleanly at a frame boundary. While a keepalive ping of the gateway's waits for its
//! answer, it also picks out that answer (a whole pong frame echoing the ping's payload) so the
//! pump can drop it: the one frame the relay removes, since it was meant for the gateway.

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
    #[error("too many control frames")]
    ControlFrameFlood,
    /// A message or byte limit whose plan says `close` is spent.
    #[error("{0}")]
    LimitExceeded(Exceeded),
}

impl Violation {
    /// The close code that both sides receive: 1009 for size limits, 1008 (policy) for plan
    /// limits and a flood of control frames, 1002 for the rest.
    pub fn close_code(self) -> u16 {
        match self {
            Violation::FrameTooBig | Violation::MessageTooBig => 1009,
            Violation::LimitExceeded(_) | Violation::ControlFrameFlood => 1008,
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
    /// A whole pong answering the gateway's keepalive ping spans `start..consumed`: the bytes
    /// before it may be forwarded, the pong itself is the gateway's and must be dropped, and
    /// the scan goes on after it.
    OwnPong { start: usize, consumed: usize },
}

const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;
const PONG: u8 = 0xA;
/// Longest header: 2 bytes, 8 bytes of extended length, 4 bytes of mask.
pub const MAX_HEADER: usize = 14;
/// A whole close frame: the scanner holds it back until complete to read its code.
pub const MAX_CLOSE_FRAME: usize = MAX_HEADER + 125;

/// What starts the payload of every keepalive ping the gateway sends; a counter follows, so
/// the answer to one ping is told from the answer to another, and from a peer's own pongs.
pub const PING_PREFIX: &[u8; 17] = b"wsgate-keepalive-";
/// The payload of a keepalive ping: the prefix and the counter in 8 hex digits.
pub const PING_PAYLOAD: usize = PING_PREFIX.len() + 8;
/// A whole keepalive ping as written: 2 header bytes, a mask key towards the upstream, the
/// payload.
pub const MAX_PING_FRAME: usize = 2 + 4 + PING_PAYLOAD;

/// The payload of keepalive ping number `counter`.
pub fn ping_payload(counter: u32) -> [u8; PING_PAYLOAD] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0; PING_PAYLOAD];
    out[..PING_PREFIX.len()].copy_from_slice(PING_PREFIX);
    for (i, byte) in out[PING_PREFIX.len()..].iter_mut().enumerate() {
        *byte = HEX[(counter >> (28 - 4 * i) & 0xF) as usize];
    }
    out
}

/// Writes keepalive ping number `counter` into `out`, masked when it goes to the upstream.
/// Returns the frame length.
pub fn write_ping(out: &mut [u8; MAX_PING_FRAME], counter: u32, mask: Option<[u8; 4]>) -> usize {
    out[0] = 0x80 | PING;
    out[1] = PING_PAYLOAD as u8;
    let mut pos = 2;
    if let Some(key) = mask {
        out[1] |= 0x80;
        out[2..6].copy_from_slice(&key);
        pos = 6;
    }
    out[pos..pos + PING_PAYLOAD].copy_from_slice(&ping_payload(counter));
    if let Some(key) = mask {
        for (i, byte) in out[pos..pos + PING_PAYLOAD].iter_mut().enumerate() {
            *byte ^= key[i % 4];
        }
    }
    pos + PING_PAYLOAD
}

/// Per-direction framing state. Counters are read by the access log when the connection ends.
/// Small on purpose: two of these live in every open connection's task.
#[derive(Debug)]
pub struct Scanner {
    sender: Sender,
    /// Limits above 4 GiB count as 4 GiB, so that they take 4 bytes each.
    max_frame: u32,
    max_message: u32,
    /// Whether RSV bits may be set: only when the handshake negotiated an extension
    /// (permessage-deflate uses RSV1), which then owns their meaning.
    extensions: bool,
    /// Payload bytes of the current frame not seen yet; 0 means "at a frame boundary".
    payload_left: u64,
    /// The current frame's mask key, turned as its payload passes so that its first byte
    /// applies to the next payload byte: what padding a cut frame needs to unmask to zeros.
    frame_mask: [u8; 4],
    /// The current frame is the final frame of a data message: the message counts once this
    /// frame's payload has all been seen, not when its header was, so a message cut short by
    /// a vanished peer is never reported as relayed.
    completes_message: bool,
    /// A fragmented data message is open (its first frame had FIN = 0).
    in_message: bool,
    message_len: u64,
    /// Pings and pongs this direction may still send in the current window; the relay refills
    /// it at each tick of its timer (every second while traffic flows). Each one costs the
    /// gateway and the peer a write (and a ping, a pong back), so a peer sending them in a loop
    /// is refused like any other rule breaker, without touching other connections.
    control_left: u32,
    /// The keepalive ping of the gateway's whose pong this sender owes, if one is outstanding.
    /// At most one is: the relay sends the next only once this one is answered.
    pong_owed: Option<u32>,
    /// Whole data messages seen (counted at the end of their final frame).
    pub messages: u64,
    /// Bytes accepted for forwarding, headers included.
    pub bytes: u64,
}

impl Scanner {
    pub fn new(sender: Sender, max_frame: u64, max_message: u64) -> Scanner {
        let narrow = |limit: u64| u32::try_from(limit).unwrap_or(u32::MAX);
        Scanner {
            sender,
            max_frame: narrow(max_frame),
            max_message: narrow(max_message),
            extensions: false,
            payload_left: 0,
            frame_mask: [0; 4],
            completes_message: false,
            in_message: false,
            message_len: 0,
            control_left: u32::MAX,
            pong_owed: None,
            messages: 0,
            bytes: 0,
        }
    }

    /// Lets RSV bits through, for connections whose handshake negotiated an extension.
    pub fn with_extensions(self, negotiated: bool) -> Scanner {
        Scanner { extensions: negotiated, ..self }
    }

    /// Refuses pings and pongs beyond `per_window` (0: no limit) with
    /// [`Violation::ControlFrameFlood`], until [`Scanner::refill_control`] opens a new window.
    pub fn with_control_limit(mut self, per_window: u32) -> Scanner {
        self.refill_control(per_window);
        self
    }

    /// Starts a new window of `per_window` control frames (0: no limit).
    pub fn refill_control(&mut self, per_window: u32) {
        self.control_left = if per_window == 0 { u32::MAX } else { per_window };
    }

    /// The gateway sent this sender keepalive ping number `counter`: its answer is to be picked
    /// out (see [`Scan::OwnPong`]) until it comes.
    pub fn expect_pong(&mut self, counter: u32) {
        self.pong_owed = Some(counter);
    }

    /// Whether a keepalive ping of the gateway's still waits for its answer.
    pub fn pong_owed(&self) -> bool {
        self.pong_owed.is_some()
    }

    /// Whether the bytes accepted so far end exactly at a frame boundary, where the gateway may
    /// insert a frame of its own.
    pub fn at_boundary(&self) -> bool {
        self.payload_left == 0
    }

    /// Fills the start of `out` with padding for the current frame, whose sender vanished before
    /// its end: bytes that unmask to zeros, as many as fit and the frame still lacks. Returns
    /// how many. The gateway can only place its close after a whole frame, so a cut frame is
    /// completed this way; [`Scanner::padded`] then accounts for what was written.
    pub fn fill_padding(&self, out: &mut [u8]) -> usize {
        let len = usize::try_from(self.payload_left).unwrap_or(usize::MAX).min(out.len());
        for (i, byte) in out[..len].iter_mut().enumerate() {
            *byte = self.frame_mask[i % 4];
        }
        len
    }

    /// `n` bytes of padding were written. Padding is not the sender's: it is not counted in
    /// `bytes`, and the message it completes is not counted in `messages`.
    pub fn padded(&mut self, n: usize) {
        self.payload_left = self.payload_left.saturating_sub(n as u64);
        self.frame_mask.rotate_left(n % 4);
        if self.payload_left == 0 {
            self.completes_message = false;
        }
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
                self.frame_mask.rotate_left((take % 4) as usize);
                if self.payload_left > 0 {
                    return self.accept(pos);
                }
                self.end_frame();
                if stop_at_boundary {
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
            if let Some(counter) = self.pong_owed
                && header.opcode == PONG
                && header.payload == PING_PAYLOAD as u64
            {
                // Held back until whole (as a close is): only the payload tells whether it
                // answers the gateway. A peer's other pongs go on as usual.
                let end = pos + header.len + PING_PAYLOAD;
                if data.len() < end {
                    return self.accept(pos);
                }
                if header.unmasked_equals(&data[pos + header.len..end], &ping_payload(counter)) {
                    self.pong_owed = None;
                    self.bytes += pos as u64;
                    return Scan::OwnPong { start: pos, consumed: end };
                }
            }
            if let Err(violation) = self.spend_control(&header) {
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
            self.frame_mask = header.mask;
            if self.payload_left == 0 {
                self.end_frame();
                if stop_at_boundary {
                    return self.accept(pos);
                }
            }
        }
    }

    /// The current frame's payload has all been seen.
    fn end_frame(&mut self) {
        if self.completes_message {
            self.completes_message = false;
            self.messages += 1;
        }
    }

    fn spend_control(&mut self, header: &Header) -> Result<(), Violation> {
        if matches!(header.opcode, 0x9 | 0xA) {
            self.control_left = self.control_left.checked_sub(1).ok_or(Violation::ControlFrameFlood)?;
        }
        Ok(())
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
                if header.payload > u64::from(self.max_frame) {
                    return Err(Violation::FrameTooBig);
                }
                if self.message_len + header.payload > u64::from(self.max_message) {
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
            self.completes_message = true;
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

    /// Whether `payload` (this frame's, as sent) reads `expected` once unmasked. Unmasked into a
    /// stack copy: the bytes stay as sent.
    fn unmasked_equals(&self, payload: &[u8], expected: &[u8]) -> bool {
        let mut clear = [0u8; 125];
        let clear = &mut clear[..payload.len().min(125)];
        for (i, (out, byte)) in clear.iter_mut().zip(payload).enumerate() {
            *out = if self.masked { byte ^ self.mask[i % 4] } else { *byte };
        }
        clear == expected
    }

    /// The status code of a close frame, unmasked for reading only; the bytes stay as sent.
    fn close_code(&self, payload: &[u8]) -> Option<u16> {
        let [a, b, ..] = *payload else { return None };
        let (a, b) = if self.masked { (a ^ self.mask[0], b ^ self.mask[1]) } else { (a, b) };
        Some(u16::from_be_bytes([a, b]))
    }
}

/// Writes a close frame without a body (no status code) into `out`, masked when it goes to the
/// upstream: the answer to a close whose peer vanished before answering it, valid whatever
/// the close said (RFC 6455 section 5.5.1). Returns the frame length.
pub fn write_empty_close(out: &mut [u8; MAX_CLOSE_FRAME], mask: Option<[u8; 4]>) -> usize {
    out[0] = 0x80 | CLOSE;
    out[1] = 0;
    match mask {
        Some(key) => {
            out[1] |= 0x80;
            out[2..6].copy_from_slice(&key);
            6
        }
        None => 2,
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
    fn a_message_counts_once_its_last_frame_is_whole() {
        let mut s = client();
        let data = frame(true, 1, true, b"0123456789");
        assert_eq!(s.scan(&data[..8], false, None), Scan::Continue { consumed: 8 });
        assert_eq!(s.messages, 0, "the header alone is not a message");
        assert_eq!(s.scan(&data[8..], false, None), Scan::Continue { consumed: data.len() - 8 });
        assert_eq!(s.messages, 1);
        let empty = frame(true, 2, true, b"");
        assert_eq!(s.scan(&empty, false, None), Scan::Continue { consumed: empty.len() });
        assert_eq!(s.messages, 2, "an empty message counts at its header");
    }

    #[test]
    fn a_padded_frame_is_whole_but_its_message_does_not_count() {
        let mut s = client();
        let mut data = frame(true, 1, true, b"0123456789");
        data[2..6].copy_from_slice(&[1, 2, 3, 4]);
        assert_eq!(s.scan(&data[..9], false, None), Scan::Continue { consumed: 9 });
        let mut padding = [0xFF; 16];
        assert_eq!(s.fill_padding(&mut padding[..5]), 5);
        // Payload offset 3 of a frame masked with [1, 2, 3, 4]: unmasks to zeros.
        assert_eq!(padding[..5], [4, 1, 2, 3, 4]);
        s.padded(5);
        assert_eq!(s.fill_padding(&mut padding), 2);
        assert_eq!(padding[..2], [1, 2]);
        s.padded(2);
        assert!(s.at_boundary());
        assert_eq!((s.messages, s.bytes), (0, 9));
    }

    #[test]
    fn control_frames_beyond_the_budget_are_refused_with_1008() {
        let mut s = client().with_control_limit(2);
        let mut data = frame(true, 9, true, b"");
        data.extend(frame(true, 10, true, b""));
        let good = data.len();
        data.extend(frame(true, 9, true, b""));
        assert_eq!(
            s.scan(&data, false, None),
            Scan::Violation { consumed: good, violation: Violation::ControlFrameFlood }
        );
        assert_eq!(Violation::ControlFrameFlood.close_code(), 1008);
        let mut unlimited = client();
        let many: Vec<u8> = (0..1000).flat_map(|_| frame(true, 9, true, b"")).collect();
        assert_eq!(unlimited.scan(&many, false, None), Scan::Continue { consumed: many.len() });
    }

    #[test]
    fn empty_close_frames_parse_back_without_a_code() {
        let mut out = [0; MAX_CLOSE_FRAME];
        let len = write_empty_close(&mut out, None);
        let mut s = Scanner::new(Sender::Upstream, 10, 10);
        assert_eq!(s.scan(&out[..len], false, None), Scan::Close { start: 0, consumed: len, code: None });
        let len = write_empty_close(&mut out, Some([1, 2, 3, 4]));
        assert_eq!(client().scan(&out[..len], false, None), Scan::Close { start: 0, consumed: len, code: None });
    }

    /// A pong as a peer answers keepalive ping `counter`, masked with `key` (a client's) or not.
    fn pong_to(counter: u32, key: Option<[u8; 4]>) -> Vec<u8> {
        let payload = ping_payload(counter);
        let mut out = vec![0x80 | PONG, PING_PAYLOAD as u8];
        match key {
            Some(key) => {
                out[1] |= 0x80;
                out.extend_from_slice(&key);
                out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
            }
            None => out.extend_from_slice(&payload),
        }
        out
    }

    #[test]
    fn ping_frames_carry_the_prefix_and_counter_masked_towards_the_upstream() {
        assert_eq!(&ping_payload(0x1a2b_3c4d), b"wsgate-keepalive-1a2b3c4d");
        let mut out = [0; MAX_PING_FRAME];
        let len = write_ping(&mut out, 7, None);
        assert_eq!(out[..2], [0x89, PING_PAYLOAD as u8]);
        assert_eq!(&out[2..len], b"wsgate-keepalive-00000007");
        let key = [0xA5, 1, 2, 3];
        let len = write_ping(&mut out, 7, Some(key));
        assert_eq!((out[1], &out[2..6], len), (0x80 | PING_PAYLOAD as u8, &key[..], MAX_PING_FRAME));
        let clear: Vec<u8> = out[6..len].iter().enumerate().map(|(i, b)| b ^ key[i % 4]).collect();
        assert_eq!(clear, b"wsgate-keepalive-00000007");
    }

    #[test]
    fn the_pong_to_the_gateways_ping_is_picked_out_masked_or_not() {
        for (sender, key) in [(Sender::Client, Some([0x11, 0x22, 0x33, 0x44])), (Sender::Upstream, None)] {
            let masked = key.is_some();
            let mut s = Scanner::new(sender, 1 << 20, 4 << 20).with_control_limit(1);
            s.expect_pong(3);
            let mut data = frame(true, 1, masked, b"before");
            let start = data.len();
            data.extend(pong_to(3, key));
            let end = data.len();
            data.extend(frame(true, 1, masked, b"after"));
            assert_eq!(s.scan(&data, false, None), Scan::OwnPong { start, consumed: end }, "{sender:?}");
            assert!(!s.pong_owed());
            assert_eq!(s.bytes, start as u64, "the gateway's pong is not the peer's traffic");
            // The rest scans on as usual; a pong owed no more, and the control budget of one
            // frame was not spent on the gateway's pong.
            assert_eq!(s.scan(&data[end..], false, None), Scan::Continue { consumed: data.len() - end });
            let again = pong_to(3, key);
            assert_eq!(s.scan(&again, false, None), Scan::Continue { consumed: again.len() }, "{sender:?}");
        }
    }

    #[test]
    fn a_pong_split_across_reads_is_held_back_until_whole() {
        let key = Some([9, 8, 7, 6]);
        let pong = pong_to(0xFFFF_FFFF, key);
        for cut in 1..pong.len() {
            let mut s = client();
            s.expect_pong(0xFFFF_FFFF);
            assert_eq!(s.scan(&pong[..cut], false, None), Scan::Continue { consumed: 0 }, "cut at {cut}");
            assert!(s.pong_owed());
            assert_eq!(s.scan(&pong, false, None), Scan::OwnPong { start: 0, consumed: pong.len() }, "cut at {cut}");
        }
    }

    #[test]
    fn other_pongs_pass_through() {
        let key = Some([1, 2, 3, 4]);
        let table: &[(&str, Option<u32>, Vec<u8>)] = &[
            ("no ping outstanding", None, pong_to(3, key)),
            ("another counter", Some(4), pong_to(3, key)),
            ("the peer's own pong", Some(3), frame(true, 10, true, b"wsgate-keepalive-0000000x")),
            ("a shorter payload", Some(3), frame(true, 10, true, b"wsgate-keepalive-")),
            ("a ping with the payload", Some(3), {
                let mut ping = pong_to(3, key);
                ping[0] = 0x80 | PING;
                ping
            }),
        ];
        for (name, owed, data) in table {
            let mut s = client();
            if let Some(counter) = owed {
                s.expect_pong(*counter);
            }
            assert_eq!(s.scan(data, false, None), Scan::Continue { consumed: data.len() }, "{name}");
            assert_eq!(s.pong_owed(), owed.is_some(), "{name}");
        }
        // Masked by the peer and unmasked to compare, the bytes it sent are left as they were.
        let mut s = client();
        s.expect_pong(3);
        let pong = pong_to(3, key);
        let copy = pong.clone();
        assert_eq!(s.scan(&pong, false, None), Scan::OwnPong { start: 0, consumed: pong.len() });
        assert_eq!(pong, copy);
    }

    #[test]
    fn a_broken_pong_is_refused_even_when_one_is_owed() {
        let mut s = Scanner::new(Sender::Upstream, 10, 10);
        s.expect_pong(1);
        let masked = pong_to(1, Some([1, 2, 3, 4]));
        assert_eq!(
            s.scan(&masked, false, None),
            Scan::Violation { consumed: 0, violation: Violation::MaskedUpstreamFrame }
        );
    }

    #[test]
    fn gateway_close_frames_parse_back() {
        let mut out = [0; MAX_CLOSE_FRAME];
        let len = write_close(&mut out, 1014, "upstream went away", None);
        let mut s = Scanner::new(Sender::Upstream, 10, 10);
        assert_eq!(s.scan(&out[..len], false, None), Scan::Close { start: 0, consumed: len, code: Some(1014) });
    }
}
