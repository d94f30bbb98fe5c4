//! One direction of a relayed connection: read from `src`, check frame headers, write the same
//! bytes to `dst`. The pump never looks inside a payload and never copies a byte twice.
//!
//! Buffer layout while bytes are in flight: `[..sent]` written to `dst`, `[sent..ready]`
//! checked and waiting to be written, `[ready..filled]` read but not yet accepted (a header or
//! close frame cut by the read boundary). Only `ready` bytes ever reach `dst`.
//!
//! The one exception to "the same bytes": when `src` vanishes in the middle of a frame and the
//! gateway owes `dst` a close, the cut frame is completed with padding (bytes that unmask to
//! zeros) so that the close can follow it at once; see ARCHITECTURE.md's invariants. Besides,
//! whole frames of the gateway's own go in at frame boundaries (its closes and keepalive pings
//! towards `dst`), and a whole pong answering the gateway's ping to `src` is taken out.

use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use tokio::time::Instant;

use super::frame::{
    MAX_CLOSE_FRAME, MAX_PING_FRAME, Scan, Scanner, Violation, write_close, write_empty_close, write_ping,
};
use super::pool::{self, Buffer};
use crate::policy::budget::Budget;

/// What a pump tells the relay; each is reported once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PumpEvent {
    /// `src` sent a close frame (forwarded unless the pump was discarding).
    Close(Option<u16>),
    /// `src` broke the protocol; the pump has queued its own close towards `dst`.
    Violation(Violation),
    /// `src` ended the TCP stream or failed without a close frame.
    SrcGone,
    /// Writing to `dst` failed: that peer is gone.
    DstGone,
    /// The budget is spent: the pump waits until [`Pump::resume_at`].
    Paused,
    /// Nothing more to read and everything written: poll this pump no more.
    Done,
}

/// A close frame made by the gateway, written once the direction reaches a frame boundary.
#[derive(Debug)]
struct Injected {
    frame: [u8; MAX_CLOSE_FRAME],
    len: usize,
    written: usize,
}

/// A keepalive ping the gateway owes `dst`, written at the next frame boundary. Only its
/// number is kept; the frame is rebuilt on the stack when written (rarely: once per interval).
#[derive(Debug, Clone, Copy)]
struct PingOut {
    counter: u32,
    /// Bytes of the frame written so far (a write may take part of it).
    written: u8,
}

#[derive(Debug)]
pub struct Pump {
    pub scanner: Scanner,
    buf: Option<Buffer>,
    sent: usize,
    ready: usize,
    filled: usize,
    /// Boxed because it exists only while closing; idle connections stay small.
    inject: Option<Box<Injected>>,
    /// A keepalive ping for `dst`, written at the next frame boundary.
    ping: Option<PingOut>,
    /// A close the gateway owes `dst`, sent in place of `src`'s own close frame when that
    /// arrives, so that whatever `src` sent before it (replies to earlier frames) still
    /// reaches `dst` first.
    owed_close: Option<Box<(u16, String)>>,
    /// Mask for frames the gateway writes to `dst`: `Some` when `dst` is the upstream.
    mask: Option<[u8; 4]>,
    /// What this direction may still send under the connection's limits; `None`: unmetered.
    budget: Option<Box<Budget>>,
    /// Waiting for the budget: `src` is not read (TCP backpressure reaches the sender) until
    /// the relay resumes the pump at `budget.resume_at`. Unlike `reading = false`, this ends.
    paused: bool,
    /// False once `src` sent its close, broke the rules or vanished.
    reading: bool,
    /// `src` sent its close frame: it expects `dst`'s answer.
    src_closed: bool,
    /// False once the gateway has sent its own close to `dst` (or `dst` is gone): from then on
    /// `src` is read only to see its close frame, and nothing more is written.
    forwarding: bool,
    /// `[ready..filled]` may contain whole frames not scanned yet (after a stop at a boundary).
    rescan: bool,
    /// Bytes came from `src` since the relay last asked ([`Pump::take_heard`]): keepalive's
    /// sign of life, set once per read, never per frame.
    heard: bool,
    /// `dst` is presumed dead (it did not answer a keepalive ping): whatever it does not take
    /// at once is given up instead of waited for.
    abandon: bool,
    done: bool,
}

impl Pump {
    /// `initial` holds bytes that arrived with the handshake (frames pipelined after it).
    pub fn new(scanner: Scanner, mask: Option<[u8; 4]>, initial: &[u8], budget: Option<Box<Budget>>) -> Pump {
        let mut pump = Pump {
            scanner,
            buf: None,
            sent: 0,
            ready: 0,
            filled: 0,
            inject: None,
            ping: None,
            owed_close: None,
            mask,
            budget,
            paused: false,
            reading: true,
            src_closed: false,
            forwarding: true,
            rescan: false,
            heard: false,
            abandon: false,
            done: false,
        };
        if !initial.is_empty() {
            let mut buf = pool::take();
            let len = initial.len().min(buf.len());
            buf[..len].copy_from_slice(&initial[..len]);
            pump.buf = Some(buf);
            pump.filled = len;
            pump.rescan = true;
        }
        pump
    }

    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Whether `src` has sent its close frame (and so waits for `dst`'s answer).
    pub fn src_closed(&self) -> bool {
        self.src_closed
    }

    /// When a paused pump wants to try its budget again.
    pub fn resume_at(&self) -> Option<Instant> {
        if self.paused { self.budget.as_ref().and_then(|b| b.resume_at) } else { None }
    }

    /// Tries the budget again (the relay's timer reached `resume_at`).
    pub fn resume(&mut self) {
        if self.paused {
            self.paused = false;
            self.rescan = true;
        }
    }

    /// Follows new limits from the next frame on; the old budget gives back what it held.
    pub fn set_budget(&mut self, budget: Option<Box<Budget>>) {
        self.budget = budget;
        self.resume();
    }

    /// Queues a gateway close frame for `dst`, sent at the next frame boundary. After it, the
    /// pump only reads `src` to see its reply. Ignored when a close already went that way.
    pub fn close_dst(&mut self, code: u16, reason: &str) {
        self.inject_close(|frame, mask| write_close(frame, code, reason, mask));
    }

    /// Queues a close without a status code for `dst`: the answer `dst` is owed for its own
    /// close when `src`, which should have answered it, vanished instead. An empty close is a
    /// valid answer to any close, so `dst` sees its close handshake completed.
    pub fn answer_dst_close(&mut self) {
        self.inject_close(write_empty_close);
    }

    fn inject_close(&mut self, write: impl FnOnce(&mut [u8; MAX_CLOSE_FRAME], Option<[u8; 4]>) -> usize) {
        if self.forwarding && self.inject.is_none() && !self.done {
            let mut injected = Box::new(Injected { frame: [0; MAX_CLOSE_FRAME], len: 0, written: 0 });
            injected.len = write(&mut injected.frame, self.mask);
            self.inject = Some(injected);
        }
    }

    /// Queues keepalive ping number `counter` for `dst`, written at the next frame boundary.
    /// Returns false (and queues nothing) when the direction is closing or a ping still waits.
    pub fn queue_ping(&mut self, counter: u32) -> bool {
        if !self.forwarding || self.inject.is_some() || self.ping.is_some() || self.done {
            return false;
        }
        self.ping = Some(PingOut { counter, written: 0 });
        true
    }

    /// Whether a queued ping still waits for `src` to finish a frame in flight: everything
    /// accepted so far reached `dst`, so the wait is not `dst`'s doing.
    pub fn ping_waits_for_src(&self) -> bool {
        self.ping.is_some_and(|ping| ping.written == 0) && self.sent >= self.ready
    }

    /// Whether bytes came from `src` since the last call, or `src` is held back by this pump
    /// (its budget, or `dst` not taking what was read): either way `src` is not silent.
    pub fn take_heard(&mut self) -> bool {
        std::mem::take(&mut self.heard) || self.paused || self.sent < self.ready
    }

    /// Queues a close for `dst`, which is presumed dead: it gets what it takes at once, and
    /// nothing is waited for (the dead peer would never take it, nor answer).
    pub fn close_dead_dst(&mut self, code: u16, reason: &str) {
        self.close_dst(code, reason);
        self.abandon = true;
    }

    /// Owes `dst` a close, sent when `src` closes (see `owed_close`) or when
    /// [`Pump::pay_owed_close`] is called.
    pub fn close_dst_after_src(&mut self, code: u16, reason: &str) {
        if self.forwarding && self.inject.is_none() && !self.done {
            self.owed_close = Some(Box::new((code, reason.to_string())));
        }
    }

    /// Sends an owed close now (at the next frame boundary): `src` took too long.
    pub fn pay_owed_close(&mut self) -> bool {
        match self.owed_close.take().map(|owed| *owed) {
            Some((code, reason)) => {
                self.close_dst(code, &reason);
                true
            }
            None => false,
        }
    }

    /// Limits no longer apply (the connection is closing): let what is held back through.
    pub fn lift_limits(&mut self) {
        self.set_budget(None);
    }

    /// `dst` is gone: keep reading `src` only to see its close, write nothing.
    pub fn stop_forwarding(&mut self) {
        self.forwarding = false;
        self.inject = None;
        self.ping = None;
        self.sent = self.ready;
    }

    /// `src` is gone or out of time: stop reading it.
    pub fn stop_reading(&mut self) {
        self.reading = false;
        self.filled = self.ready;
    }

    /// Moves bytes along until something the relay must know happens, or until both sockets
    /// would block.
    pub fn poll<S, D>(&mut self, cx: &mut Context<'_>, src: &mut S, dst: &mut D) -> Poll<PumpEvent>
    where
        S: AsyncRead + Unpin,
        D: AsyncWrite + Unpin,
    {
        if self.done {
            return Poll::Ready(PumpEvent::Done);
        }
        loop {
            if let Some(event) = std::task::ready!(self.poll_write_out(cx, dst)) {
                return Poll::Ready(event);
            }
            if self.paused {
                // Woken by the relay's timer, which resumes the pump.
                return Poll::Pending;
            }
            if self.rescan {
                self.rescan = false;
                if let Some(event) = self.scan() {
                    return Poll::Ready(event);
                }
                continue;
            }
            if !self.reading {
                self.finish();
                return Poll::Ready(PumpEvent::Done);
            }
            match std::task::ready!(self.poll_read_in(cx, src)) {
                Some(event) => return Poll::Ready(event),
                None => continue,
            }
        }
    }

    /// Writes accepted bytes, then a pending gateway frame if at a boundary. `Ready(None)` once
    /// all is written.
    fn poll_write_out<D: AsyncWrite + Unpin>(&mut self, cx: &mut Context<'_>, dst: &mut D) -> Poll<Option<PumpEvent>> {
        match self.poll_write_all(cx, dst) {
            Poll::Pending if self.abandon => {
                // A dead peer's full socket: give up on what it did not take.
                self.stop_forwarding();
                Poll::Ready(None)
            }
            other => other,
        }
    }

    fn poll_write_all<D: AsyncWrite + Unpin>(&mut self, cx: &mut Context<'_>, dst: &mut D) -> Poll<Option<PumpEvent>> {
        while self.sent < self.ready {
            let Some(buf) = &self.buf else { break };
            match Pin::new(&mut *dst).poll_write(cx, &buf[self.sent..self.ready]) {
                Poll::Ready(Ok(n)) if n > 0 => self.sent += n,
                Poll::Ready(_) => return Poll::Ready(Some(self.dst_gone())),
                Poll::Pending => return Poll::Pending,
            }
        }
        if self.inject.is_some() && !self.scanner.at_boundary() && !self.reading {
            // `src` vanished in the middle of a frame, which can never be completed now; a
            // close can only follow a whole frame, so the gateway completes it with padding.
            if let Some(event) = std::task::ready!(self.poll_write_padding(cx, dst)) {
                return Poll::Ready(Some(event));
            }
        }
        if self.ping.is_some()
            && self.scanner.at_boundary()
            && let Some(event) = std::task::ready!(self.poll_write_ping(cx, dst))
        {
            return Poll::Ready(Some(event));
        }
        if let Some(injected) = &mut self.inject
            && self.scanner.at_boundary()
        {
            while injected.written < injected.len {
                match Pin::new(&mut *dst).poll_write(cx, &injected.frame[injected.written..injected.len]) {
                    Poll::Ready(Ok(n)) if n > 0 => injected.written += n,
                    Poll::Ready(_) => return Poll::Ready(Some(self.dst_gone())),
                    Poll::Pending => return Poll::Pending,
                }
            }
            self.inject = None;
            self.forwarding = false;
        }
        if Pin::new(&mut *dst).poll_flush(cx).is_ready() {
            return Poll::Ready(None);
        }
        Poll::Pending
    }

    /// Writes the queued keepalive ping, whole. `Ready(Some(_))` if `dst` failed.
    fn poll_write_ping<D: AsyncWrite + Unpin>(&mut self, cx: &mut Context<'_>, dst: &mut D) -> Poll<Option<PumpEvent>> {
        let Some(ping) = &mut self.ping else { return Poll::Ready(None) };
        let mut frame = [0; MAX_PING_FRAME];
        let len = write_ping(&mut frame, ping.counter, self.mask);
        while usize::from(ping.written) < len {
            match Pin::new(&mut *dst).poll_write(cx, &frame[usize::from(ping.written)..len]) {
                // `written` never exceeds the frame (at most MAX_PING_FRAME bytes).
                Poll::Ready(Ok(n)) if n > 0 => ping.written += n as u8,
                Poll::Ready(_) => return Poll::Ready(Some(self.dst_gone())),
                Poll::Pending => return Poll::Pending,
            }
        }
        self.ping = None;
        Poll::Ready(None)
    }

    /// Writes padding until the cut frame is complete. `Ready(Some(_))` if `dst` failed.
    fn poll_write_padding<D: AsyncWrite + Unpin>(
        &mut self,
        cx: &mut Context<'_>,
        dst: &mut D,
    ) -> Poll<Option<PumpEvent>> {
        let buf = self.buf.get_or_insert_with(pool::take);
        while !self.scanner.at_boundary() {
            let len = self.scanner.fill_padding(buf);
            match Pin::new(&mut *dst).poll_write(cx, &buf[..len]) {
                Poll::Ready(Ok(n)) if n > 0 => self.scanner.padded(n),
                Poll::Ready(_) => return Poll::Ready(Some(self.dst_gone())),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(None)
    }

    /// Reads into a pooled buffer and scans what came. `Ready(None)`: read something, carry on.
    fn poll_read_in<S: AsyncRead + Unpin>(&mut self, cx: &mut Context<'_>, src: &mut S) -> Poll<Option<PumpEvent>> {
        // Everything accepted is written: move the unaccepted tail to the front.
        if self.ready > 0 {
            if let Some(buf) = &mut self.buf {
                buf.copy_within(self.ready..self.filled, 0);
            }
            self.filled -= self.ready;
            self.sent = 0;
            self.ready = 0;
        }
        let buf = self.buf.get_or_insert_with(pool::take);
        let mut read_buf = ReadBuf::new(&mut buf[self.filled..]);
        match Pin::new(&mut *src).poll_read(cx, &mut read_buf) {
            Poll::Pending => {
                if self.filled == 0 {
                    self.release();
                }
                Poll::Pending
            }
            Poll::Ready(Ok(())) if !read_buf.filled().is_empty() => {
                self.heard = true;
                self.filled += read_buf.filled().len();
                Poll::Ready(self.scan())
            }
            Poll::Ready(_) => Poll::Ready(Some(self.src_gone())),
        }
    }

    /// Accepts what the scanner allows from `[ready..filled]`.
    fn scan(&mut self) -> Option<PumpEvent> {
        let buf = self.buf.as_mut()?;
        // A frame of the gateway's waits for a boundary: stop at the first one.
        let stop_at_boundary = self.inject.is_some() || self.ping.is_some();
        let scan = self.scanner.scan(&buf[self.ready..self.filled], stop_at_boundary, self.budget.as_deref_mut());
        let event = match scan {
            Scan::Continue { consumed } => {
                self.ready += consumed;
                if stop_at_boundary && self.ready < self.filled && self.scanner.at_boundary() {
                    self.rescan = true;
                }
                None
            }
            Scan::Close { start, consumed, code } => {
                self.src_closed = true;
                if self.owed_close.is_some() {
                    // Their close is dropped; the gateway's goes in its place, after the frames
                    // that came before it.
                    self.ready += start;
                    self.stop_reading();
                    self.pay_owed_close();
                } else {
                    self.ready += consumed;
                    self.stop_reading();
                }
                Some(PumpEvent::Close(code))
            }
            Scan::Violation { consumed, violation } => {
                self.ready += consumed;
                self.stop_reading();
                self.close_dst(violation.close_code(), &violation.to_string());
                Some(PumpEvent::Violation(violation))
            }
            Scan::Paused { consumed } => {
                self.ready += consumed;
                self.paused = true;
                Some(PumpEvent::Paused)
            }
            Scan::OwnPong { start, consumed } => {
                // The answer to the gateway's ping: cut it out of the buffer (a move of the
                // rest of one read, once per keepalive interval) and scan on after it.
                self.ready += start;
                let len = consumed - start;
                buf.copy_within(self.ready + len..self.filled, self.ready);
                self.filled -= len;
                self.rescan = true;
                None
            }
        };
        if !self.forwarding {
            self.sent = self.ready;
        }
        event
    }

    fn src_gone(&mut self) -> PumpEvent {
        self.stop_reading();
        self.pay_owed_close();
        PumpEvent::SrcGone
    }

    fn dst_gone(&mut self) -> PumpEvent {
        self.stop_forwarding();
        PumpEvent::DstGone
    }

    fn finish(&mut self) {
        self.done = true;
        self.release();
    }

    fn release(&mut self) {
        if let Some(buf) = self.buf.take() {
            pool::give(buf);
        }
        self.sent = 0;
        self.ready = 0;
        self.filled = 0;
    }
}

impl Drop for Pump {
    fn drop(&mut self) {
        self.release();
    }
}
