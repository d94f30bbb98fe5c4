//! The relay: both directions of an upgraded connection in one task, frame-aware and
//! payload-blind (see `frame`). It forwards bytes unchanged, counts messages and bytes,
//! enforces frame and message limits, and ends every connection with a close frame on both
//! sides when it can: a close from one side is carried to the other, a protocol violation or a
//! vanished peer becomes a close made by the gateway, placed at a frame boundary. A side that
//! closed first and whose peer then vanished gets the answer it waits for (a close without a
//! code), not a report of the vanishing: its close handshake completes as it would directly.
//!
//! Modules: `frame` (header scanner), `pool` (read buffers), `pump` (one direction), `live`
//! (what the rest of the gateway shares with a live connection: stop, new limits, counts).
//!
//! Metering: both pumps count messages and bytes as they pass; the connection's one timer
//! publishes the totals (every second while traffic flows, see [`METER_TICK`]), resumes a pump
//! that waits for its budget, and checks idleness. A limit update from the registry replaces
//! both budgets at once.
//!
//! The same timer ends the connection at its earliest deadline (token expiry: 4001; maximum
//! lifetime: 1001) and drives keepalive: a side silent for the ping interval gets a ping of the
//! gateway's (see `keepalive`); one still silent a ping timeout later is taken for dead.

pub mod frame;
mod keepalive;
pub mod live;
mod pool;
mod pump;

use std::future::Future;
use std::hash::BuildHasher;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::{Instant, Sleep};
use wsgate_core::session::ClosedBy;
use wsgate_core::upstream::EndpointSettings;
use wsgate_counters::Counters;

use crate::policy::ConnLimits;
use crate::policy::budget::Budget;
use frame::{Scanner, Sender, Violation};
use keepalive::{Keepalive, Side};
use live::{Live, Pending};
use pump::{Pump, PumpEvent};

/// Limits, timeouts and negotiated features of one relayed connection.
#[derive(Debug, Clone, Copy)]
pub struct RelayConfig {
    /// Whether the handshake negotiated an extension; RSV bits are refused otherwise.
    pub extensions: bool,
    pub max_frame: u64,
    pub max_message: u64,
    /// Pings and pongs allowed in each direction per metering tick (a second while traffic
    /// flows; 0: no limit); more closes the connection with 1008.
    pub max_control_frames: u32,
    pub idle_timeout: Duration,
    pub close_timeout: Duration,
    /// The longest the connection may live, counted from the upgrade; then both sides get
    /// 1001. `None`: no limit.
    pub max_lifetime: Option<Duration>,
    /// Keepalive: a side silent this long gets a ping of the gateway's. `None`: no pings.
    pub ping_interval: Option<Duration>,
    /// How long a pinged side may stay silent before it is taken for dead.
    pub ping_timeout: Duration,
}

impl RelayConfig {
    /// These settings with an API's endpoint settings over them: each one the API sets wins.
    /// Read once per connection, at the upgrade.
    pub fn for_api(self, api: &EndpointSettings) -> RelayConfig {
        RelayConfig {
            max_frame: api.max_frame_size.unwrap_or(self.max_frame),
            max_message: api.max_message_size.unwrap_or(self.max_message),
            idle_timeout: api.idle_timeout.unwrap_or(self.idle_timeout),
            close_timeout: api.close_timeout.unwrap_or(self.close_timeout),
            max_lifetime: api.max_lifetime.or(self.max_lifetime),
            ping_interval: api.ping_interval.or(self.ping_interval),
            ping_timeout: api.ping_timeout.unwrap_or(self.ping_timeout),
            ..self
        }
    }
}

impl EndReason {
    /// The reason as a metrics label.
    pub fn label(self) -> &'static str {
        match self {
            EndReason::Closed => "closed",
            EndReason::ClientViolation => "client_violation",
            EndReason::UpstreamViolation => "upstream_violation",
            EndReason::ClientGone => "client_gone",
            EndReason::UpstreamGone => "upstream_gone",
            EndReason::Idle => "idle",
            EndReason::Shutdown => "shutdown",
            EndReason::Revoked => "revoked",
            EndReason::TokenExpired => "token_expired",
            EndReason::CloseTimeout => "close_timeout",
            EndReason::LimitExceeded => "limit_exceeded",
            EndReason::Lifetime => "lifetime",
            EndReason::ClientPingTimeout => "client_ping_timeout",
            EndReason::UpstreamPingTimeout => "upstream_ping_timeout",
        }
    }
}

/// Why the relay ended, for the access log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// Close frames went both ways.
    Closed,
    ClientViolation,
    UpstreamViolation,
    ClientGone,
    UpstreamGone,
    Idle,
    Shutdown,
    /// The registry stopped it: its token, subscription, application or API was revoked.
    Revoked,
    /// Its access token expired.
    TokenExpired,
    /// A close frame was not answered within the close timeout.
    CloseTimeout,
    /// A message or byte limit whose plan says `close` was exceeded (by either side).
    LimitExceeded,
    /// The connection reached its maximum lifetime.
    Lifetime,
    /// The client stayed silent after a keepalive ping for the ping timeout.
    ClientPingTimeout,
    /// The upstream stayed silent after a keepalive ping for the ping timeout.
    UpstreamPingTimeout,
}

/// A moment that ends the connection, with the reason that gives its close.
#[derive(Debug, Clone, Copy)]
struct Deadline {
    at: Instant,
    why: EndReason,
}

impl Deadline {
    /// The close code and reason both sides get.
    fn close(self) -> (u16, &'static str) {
        match self.why {
            // 4001 is the code WSO2 users expect for an expired token.
            EndReason::TokenExpired => (4001, "token expired"),
            _ => (1001, "connection lifetime reached"),
        }
    }

    /// The earlier of two deadlines (either may be absent).
    fn earliest(a: Option<Deadline>, b: Option<Deadline>) -> Option<Deadline> {
        match (a, b) {
            (Some(a), Some(b)) => Some(if b.at < a.at { b } else { a }),
            (a, b) => a.or(b),
        }
    }
}

/// What the relay meters a connection with: the limits it runs under, and the counters their
/// budgets spend.
#[derive(Debug, Clone)]
pub struct Metering {
    pub limits: Arc<ConnLimits>,
    pub counters: Arc<dyn Counters>,
}

impl Metering {
    fn budgets(&self) -> (Option<Box<Budget>>, Option<Box<Budget>>) {
        (
            Budget::new(&self.limits, true, self.counters.as_ref()),
            Budget::new(&self.limits, false, self.counters.as_ref()),
        )
    }
}

/// What the access log reports about an upgraded connection.
#[derive(Debug, Clone, Copy)]
pub struct RelayReport {
    pub client_messages: u64,
    pub client_bytes: u64,
    pub upstream_messages: u64,
    pub upstream_bytes: u64,
    /// Close code sent by the client, if it sent one.
    pub client_close: Option<u16>,
    /// Close code sent by the upstream, if it sent one.
    pub upstream_close: Option<u16>,
    pub end: EndReason,
    /// Who ended the connection: the side whose close (or disappearance) came first, or the
    /// gateway for its own closes (limits, timers, stops, violations it caught).
    pub closed_by: ClosedBy,
}

/// The two sockets of an upgraded connection and the bytes that came with the handshakes.
pub struct Sockets<'a, C, U> {
    pub client: C,
    pub upstream: U,
    /// Frames that arrived together with the handshakes; copied in, so the caller can free
    /// everything the handshake left before awaiting the (long-lived) relay.
    pub client_early: &'a [u8],
    pub upstream_early: &'a [u8],
}

/// Relays until both sides have closed, one side vanished, or a limit ended the connection.
/// `live` carries signals in (stop, new limits) and counts out. `token_expires` (4001) and the
/// config's maximum lifetime (1001) are deadlines of the connection's one timer.
pub fn relay<C, U>(
    sockets: Sockets<'_, C, U>,
    config: RelayConfig,
    live: Arc<Live>,
    metering: Metering,
    token_expires: Option<Instant>,
) -> impl Future<Output = RelayReport> + use<C, U>
where
    C: AsyncRead + AsyncWrite + Unpin,
    U: AsyncRead + AsyncWrite + Unpin,
{
    let mask = std::collections::hash_map::RandomState::new().hash_one(Instant::now()).to_le_bytes();
    let (to_upstream_budget, to_client_budget) = metering.budgets();
    let now = Instant::now();
    let lifetime =
        config.max_lifetime.and_then(|d| now.checked_add(d)).map(|at| Deadline { at, why: EndReason::Lifetime });
    let expiry = token_expires.map(|at| Deadline { at, why: EndReason::TokenExpired });
    let deadline = Deadline::earliest(expiry, lifetime);
    let keepalive = config.ping_interval.map(|interval| Box::new(Keepalive::new(interval, config.ping_timeout, now)));
    let mut timing = Box::new(Timing {
        idle_timeout: config.idle_timeout,
        close_timeout: config.close_timeout,
        max_control_frames: config.max_control_frames,
        next_tick: now,
        deadline,
        keepalive,
    });
    timing.next_tick = now + timing.quiet_tick(false);
    let first = deadline.map_or(timing.next_tick, |d| d.at.min(timing.next_tick));
    Relay {
        client: sockets.client,
        upstream: sockets.upstream,
        to_upstream: Pump::new(
            scanner(Sender::Client, &config),
            Some([mask[0], mask[1], mask[2], mask[3]]),
            sockets.client_early,
            to_upstream_budget,
        ),
        to_client: Pump::new(scanner(Sender::Upstream, &config), None, sockets.upstream_early, to_client_budget),
        timer: Box::pin(tokio::time::sleep_until(first)),
        timing,
        live,
        phase: Phase::Open { seen_bytes: 0, last_active: now, metering: false },
        client_close: None,
        upstream_close: None,
        end: None,
        client_closed_first: false,
    }
}

fn scanner(sender: Sender, config: &RelayConfig) -> Scanner {
    Scanner::new(sender, config.max_frame, config.max_message)
        .with_extensions(config.extensions)
        .with_control_limit(config.max_control_frames)
}

/// How long closes owed after a close timeout get to be written.
const LAST_CALL: Duration = Duration::from_secs(1);

/// How often counts are published while traffic flows (an idle connection ticks only for its
/// idle check).
pub const METER_TICK: Duration = Duration::from_secs(1);

/// What the connection's timer works with, read at its ticks only: boxed, so that an open
/// connection's task stays small, and only what the ticks read (every open connection has one;
/// keepalive's state is allocated only when it is on).
struct Timing {
    idle_timeout: Duration,
    close_timeout: Duration,
    /// Pings and pongs each direction may send per tick (0: no limit).
    max_control_frames: u32,
    /// When the next tick is due while open (idle check, keepalive, publishing counts).
    next_tick: Instant,
    /// The earliest moment that ends the connection (token expiry, maximum lifetime).
    deadline: Option<Deadline>,
    keepalive: Option<Box<Keepalive>>,
}

impl Timing {
    /// The time between ticks while no traffic flows: a quarter of the idle timeout, so an idle
    /// connection is closed between 1 and 1.25 timeouts after its last frame without touching
    /// the timer on every frame; likewise a quarter of the ping interval, and of the ping
    /// timeout while a ping waits for its answer (`pinging`).
    fn quiet_tick(&self, pinging: bool) -> Duration {
        let mut tick = self.idle_timeout / 4;
        if let Some(keepalive) = &self.keepalive {
            tick = tick.min(keepalive.interval / 4);
            if pinging {
                tick = tick.min(keepalive.timeout / 4);
            }
        }
        tick.max(Duration::from_millis(10))
    }
}

enum Phase {
    /// Relaying. `seen_bytes` is the byte total at the last timer tick; `metering` is set while
    /// the next tick is at most [`METER_TICK`] away because traffic flowed since the last one.
    Open { seen_bytes: u64, last_active: Instant, metering: bool },
    /// A close is on its way; the timer is the deadline for the other side's answer.
    Closing,
    /// The answer did not come; owed closes were sent and the timer is the last deadline.
    LastCall,
}

struct Relay<C, U> {
    client: C,
    upstream: U,
    to_upstream: Pump,
    to_client: Pump,
    /// One timer per connection: the earliest of the next tick, a paused pump's resume time
    /// and the connection's deadline while open, the close deadline while closing.
    timer: Pin<Box<Sleep>>,
    timing: Box<Timing>,
    /// Signals from outside (stop, new limits) and published counts.
    live: Arc<Live>,
    phase: Phase,
    client_close: Option<u16>,
    upstream_close: Option<u16>,
    /// The first reason the connection started to end.
    end: Option<EndReason>,
    /// Whether the client's close came before the upstream's (for [`RelayReport::closed_by`]).
    client_closed_first: bool,
}

impl<C, U> Relay<C, U>
where
    C: AsyncRead + AsyncWrite + Unpin,
    U: AsyncRead + AsyncWrite + Unpin,
{
    /// Applies what the client-to-upstream pump reported to the other pump.
    fn on_client_event(&mut self, event: PumpEvent) {
        match event {
            PumpEvent::Close(code) => {
                self.client_close = code;
                self.client_closed_first |= self.end.is_none();
                self.start_closing(EndReason::Closed);
            }
            PumpEvent::Violation(violation) => {
                // The upstream got its close already; the client gets the same once the
                // upstream has answered (replies to the client's earlier frames come first).
                self.to_client.close_dst_after_src(violation.close_code(), &violation.to_string());
                if let Violation::LimitExceeded(exceeded) = violation {
                    self.live.note_exceeded(exceeded);
                }
                self.start_closing(end_of(violation, EndReason::ClientViolation));
            }
            PumpEvent::SrcGone => {
                // The client vanished: tell the upstream, and stop writing to the client.
                self.client_gone();
                self.to_client.stop_forwarding();
            }
            PumpEvent::DstGone => self.upstream_gone(),
            PumpEvent::Paused => {
                self.live.note_pause();
                self.schedule(self.to_upstream.resume_at());
            }
            PumpEvent::Done => {}
        }
    }

    /// Applies what the upstream-to-client pump reported to the other pump.
    fn on_upstream_event(&mut self, event: PumpEvent) {
        match event {
            PumpEvent::Close(code) => {
                self.upstream_close = code;
                self.start_closing(EndReason::Closed);
            }
            PumpEvent::Violation(violation) => {
                self.to_upstream.close_dst_after_src(violation.close_code(), &violation.to_string());
                if let Violation::LimitExceeded(exceeded) = violation {
                    self.live.note_exceeded(exceeded);
                }
                self.start_closing(end_of(violation, EndReason::UpstreamViolation));
            }
            PumpEvent::SrcGone => {
                self.upstream_gone();
                self.to_upstream.stop_forwarding();
            }
            PumpEvent::DstGone => self.client_gone(),
            PumpEvent::Paused => {
                self.live.note_pause();
                self.schedule(self.to_client.resume_at());
            }
            PumpEvent::Done => {}
        }
    }

    /// Brings the timer forward to `at` (a paused pump's resume time) if it is earlier.
    fn schedule(&mut self, at: Option<Instant>) {
        if let Some(at) = at
            && matches!(self.phase, Phase::Open { .. })
            && at < self.timer.deadline()
        {
            self.timer.as_mut().reset(at);
        }
    }

    /// Acts on signals from outside: a stop closes both sides, new limits replace both budgets.
    fn on_pending(&mut self, pending: Pending) {
        if let Some(metering) = pending.limits
            && matches!(self.phase, Phase::Open { .. })
        {
            let (to_upstream, to_client) = metering.budgets();
            self.to_upstream.set_budget(to_upstream);
            self.to_client.set_budget(to_client);
        }
        if let Some((code, reason)) = pending.stop
            && matches!(self.phase, Phase::Open { .. })
        {
            let why = if code == 1001 { EndReason::Shutdown } else { EndReason::Revoked };
            self.close_both(code, reason, why);
        }
    }

    /// While open: counts traffic since the last poll, bringing the next tick within
    /// [`METER_TICK`] when traffic starts to flow, so counts are published while it does.
    fn note_traffic(&mut self) {
        if let Phase::Open { seen_bytes, metering, .. } = &mut self.phase
            && !*metering
            && self.to_upstream.scanner.bytes + self.to_client.scanner.bytes != *seen_bytes
        {
            *metering = true;
            let soon = Instant::now() + METER_TICK;
            if soon < self.timing.next_tick {
                self.timing.next_tick = soon;
                if soon < self.timer.deadline() {
                    self.timer.as_mut().reset(soon);
                }
            }
        }
    }

    /// The upstream vanished. A client that had sent its close gets the answer it waits for;
    /// otherwise it learns that the upstream went away (1014).
    fn upstream_gone(&mut self) {
        if self.to_upstream.src_closed() {
            self.to_client.answer_dst_close();
        } else {
            self.to_client.close_dst(1014, "upstream went away");
        }
        self.start_closing(EndReason::UpstreamGone);
    }

    /// The client vanished. An upstream that had sent its close gets the answer it waits for;
    /// otherwise it learns that the client went away (1001).
    fn client_gone(&mut self) {
        if self.to_client.src_closed() {
            self.to_upstream.answer_dst_close();
        } else {
            self.to_upstream.close_dst(1001, "client went away");
        }
        self.start_closing(EndReason::ClientGone);
    }

    /// `side` did not answer a keepalive ping in time: the other side gets 1001, the silent
    /// side a close it may take or not (the gateway does not wait for it to be written, nor for
    /// its answer: a dead peer gives neither) and then the end of its TCP connection, once the
    /// other side has answered. To the silent side's application, were it alive after all,
    /// this is a close without a handshake: 1006 in browsers' terms.
    fn unresponsive(&mut self, side: Side) {
        let (from_silent, to_silent, why, reason) = match side {
            Side::Client => (
                &mut self.to_upstream,
                &mut self.to_client,
                EndReason::ClientPingTimeout,
                "client did not answer keepalive ping",
            ),
            Side::Upstream => (
                &mut self.to_client,
                &mut self.to_upstream,
                EndReason::UpstreamPingTimeout,
                "upstream did not answer keepalive ping",
            ),
        };
        from_silent.stop_reading();
        from_silent.close_dst(1001, reason);
        to_silent.close_dead_dst(1001, "no answer to keepalive ping");
        self.start_closing(why);
    }

    /// Both sides get a close from the gateway (idle timeout, shutdown, deadlines).
    fn close_both(&mut self, code: u16, reason: &str, why: EndReason) {
        self.to_client.close_dst(code, reason);
        self.to_upstream.close_dst(code, reason);
        self.start_closing(why);
    }

    fn start_closing(&mut self, why: EndReason) {
        self.end.get_or_insert(why);
        if let Phase::Open { .. } = self.phase {
            self.phase = Phase::Closing;
            self.timer.as_mut().reset(Instant::now() + self.timing.close_timeout);
            // Limits no longer hold anything back: the close handshake must get through.
            self.to_upstream.lift_limits();
            self.to_client.lift_limits();
        }
    }

    /// Returns true when the connection must end now.
    fn on_timer(&mut self) -> bool {
        let now = Instant::now();
        match &mut self.phase {
            Phase::Open { seen_bytes, last_active, metering } => {
                if let Some(deadline) = self.timing.deadline
                    && now >= deadline.at
                {
                    self.timing.deadline = None;
                    let (code, reason) = deadline.close();
                    self.close_both(code, reason, deadline.why);
                    return false;
                }
                for pump in [&mut self.to_upstream, &mut self.to_client] {
                    if pump.resume_at().is_some_and(|at| at <= now) {
                        pump.resume();
                    }
                }
                if now >= self.timing.next_tick {
                    // Each tick opens a new window of control frames (a second while traffic
                    // flows), so the budget costs no clock read per frame.
                    for pump in [&mut self.to_upstream, &mut self.to_client] {
                        pump.scanner.refill_control(self.timing.max_control_frames);
                    }
                    if let Some(keepalive) = &mut self.timing.keepalive
                        && let Some(side) = keepalive.check(now, &mut self.to_upstream, &mut self.to_client)
                    {
                        self.unresponsive(side);
                        return false;
                    }
                    let pinging = self.to_upstream.scanner.pong_owed() || self.to_client.scanner.pong_owed();
                    let total = self.to_upstream.scanner.bytes + self.to_client.scanner.bytes;
                    let idle = self.timing.quiet_tick(pinging);
                    if total != *seen_bytes {
                        *seen_bytes = total;
                        *last_active = now;
                        self.timing.next_tick = now + METER_TICK.min(idle);
                        self.live.publish(
                            self.to_upstream.scanner.messages,
                            self.to_upstream.scanner.bytes,
                            self.to_client.scanner.messages,
                            self.to_client.scanner.bytes,
                        );
                    } else if now.duration_since(*last_active) >= self.timing.idle_timeout {
                        self.close_both(1001, "idle timeout", EndReason::Idle);
                        return false;
                    } else {
                        *metering = false;
                        self.timing.next_tick = now + idle;
                    }
                }
                let deadline = self.timing.deadline.map(|d| d.at);
                let resume = [self.to_upstream.resume_at(), self.to_client.resume_at(), deadline];
                let next = resume.into_iter().flatten().fold(self.timing.next_tick, Instant::min);
                self.timer.as_mut().reset(next);
                false
            }
            Phase::Closing => {
                if self.end == Some(EndReason::Closed) {
                    self.end = Some(EndReason::CloseTimeout);
                }
                // Closes held back for an answer that never came go out now, with a short
                // last deadline for them to be written.
                let owed = self.to_client.pay_owed_close() | self.to_upstream.pay_owed_close();
                self.phase = Phase::LastCall;
                self.timer.as_mut().reset(now + LAST_CALL);
                !owed
            }
            // Nobody answered or read in time: drop both sockets.
            Phase::LastCall => true,
        }
    }

    fn report(&self) -> RelayReport {
        let end = self.end.unwrap_or(EndReason::Closed);
        let closed_by = match end {
            EndReason::Closed | EndReason::CloseTimeout if self.client_closed_first => ClosedBy::Client,
            EndReason::Closed | EndReason::CloseTimeout | EndReason::UpstreamGone => ClosedBy::Upstream,
            EndReason::ClientGone => ClosedBy::Client,
            _ => ClosedBy::Gateway,
        };
        RelayReport {
            closed_by,
            client_messages: self.to_upstream.scanner.messages,
            client_bytes: self.to_upstream.scanner.bytes,
            upstream_messages: self.to_client.scanner.messages,
            upstream_bytes: self.to_client.scanner.bytes,
            client_close: self.client_close,
            upstream_close: self.upstream_close,
            end,
        }
    }
}

impl<C, U> Future for Relay<C, U>
where
    C: AsyncRead + AsyncWrite + Unpin,
    U: AsyncRead + AsyncWrite + Unpin,
{
    type Output = RelayReport;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<RelayReport> {
        let this = self.get_mut();
        loop {
            if let Poll::Ready(event) = this.to_upstream.poll(cx, &mut this.client, &mut this.upstream) {
                this.on_client_event(event);
                if event != PumpEvent::Done {
                    continue;
                }
            }
            if let Poll::Ready(event) = this.to_client.poll(cx, &mut this.upstream, &mut this.client) {
                this.on_upstream_event(event);
                if event != PumpEvent::Done {
                    continue;
                }
            }
            if this.to_upstream.is_done() && this.to_client.is_done() {
                return Poll::Ready(this.report());
            }
            if let Some(pending) = this.live.poll_pending(cx.waker()) {
                this.on_pending(pending);
                continue;
            }
            this.note_traffic();
            if this.timer.as_mut().poll(cx).is_ready() {
                if this.on_timer() {
                    return Poll::Ready(this.report());
                }
                continue;
            }
            return Poll::Pending;
        }
    }
}

/// The end reason of a violation: plan limits have their own.
fn end_of(violation: Violation, otherwise: EndReason) -> EndReason {
    match violation {
        Violation::LimitExceeded(_) => EndReason::LimitExceeded,
        _ => otherwise,
    }
}

#[cfg(test)]
mod tests;
