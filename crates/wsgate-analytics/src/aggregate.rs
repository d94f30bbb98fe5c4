//! Session records into per-minute buckets, in memory, between two flushes.
//!
//! A record carries counts since the previous record of its connection, so adding records is
//! enough for traffic. Two counts need to know a connection across records, kept in `live`
//! (connections that sent an interim record and have not ended): whether a record is the
//! connection's first (it is then counted as opened, in the minute it started), and from which
//! minute on it has not yet been counted as open. A connection with no record yet is unknown
//! here, so the current minutes' open connections grow as records arrive.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use wsgate_core::session::{ClosedBy, SessionRecord};
use wsgate_store::analytics::{CodeKind, Counts, MINUTE, MinuteBucket};

/// Close code of a connection that ended without a close frame (RFC 6455's 1006).
const NO_CLOSE_FRAME: u16 = 1006;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    minute: i64,
    api: String,
    application: String,
}

#[derive(Debug, Default)]
struct Bucket {
    counts: Counts,
    codes: HashMap<(CodeKind, u16), u64>,
}

/// Why a record was not (wholly) counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overflow {
    /// The buckets in memory reached their bound (the store is down or slow).
    Buckets,
}

#[derive(Debug)]
pub struct Aggregator {
    buckets: HashMap<Key, Bucket>,
    /// Connection id → Unix ms of its previous record.
    live: HashMap<u64, i64>,
    max_buckets: usize,
    max_live: usize,
    /// How far back (seconds) open connections are counted: the retention, since older
    /// minutes are deleted anyway.
    horizon: i64,
    records: usize,
}

/// The minute (Unix seconds at its start) of a Unix-millisecond time.
pub fn minute_of(ms: i64) -> i64 {
    ms.div_euclid(1000 * MINUTE) * MINUTE
}

/// The API's key in the store: its id, or its name and version for an API of the config file.
pub fn api_key(record: &SessionRecord) -> String {
    match &record.api_id {
        Some(id) => id.clone(),
        None => format!("config:{}:{}", record.api_name, record.api_version),
    }
}

impl Aggregator {
    pub fn new(max_buckets: usize, max_live: usize, horizon_seconds: i64) -> Aggregator {
        Aggregator {
            buckets: HashMap::new(),
            live: HashMap::new(),
            max_buckets,
            max_live,
            horizon: horizon_seconds.max(MINUTE),
            records: 0,
        }
    }

    /// Records added since the last [`Aggregator::take`].
    pub fn records(&self) -> usize {
        self.records
    }

    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }

    /// The bucket for `minute`, unless memory is full and it is not there yet.
    fn bucket(&mut self, minute: i64, api: &str, application: &str) -> Result<&mut Bucket, Overflow> {
        let key = Key { minute, api: api.to_owned(), application: application.to_owned() };
        let full = self.buckets.len() >= self.max_buckets;
        match self.buckets.entry(key) {
            Entry::Occupied(entry) => Ok(entry.into_mut()),
            Entry::Vacant(_) if full => Err(Overflow::Buckets),
            Entry::Vacant(entry) => Ok(entry.insert(Bucket::default())),
        }
    }

    pub fn add(&mut self, record: &SessionRecord) -> Result<(), Overflow> {
        self.records += 1;
        let api = api_key(record);
        let application = record.application_id.as_deref().unwrap_or("");
        let at = minute_of(record.at);
        if record.status != 101 {
            let bucket = self.bucket(at, &api, application)?;
            bucket.counts.refused += 1;
            *bucket.codes.entry((CodeKind::Refused, CodeKind::Refused.bounded(record.status))).or_default() += 1;
            return Ok(());
        }
        let previous = self.live.remove(&record.connection);
        if previous.is_none() {
            self.bucket(minute_of(record.started_at), &api, application)?.counts.opened += 1;
        }
        // Open in every minute from its start (or the minute after its previous record's, which
        // that record counted) to this record's, bounded by the horizon.
        let first = match previous {
            Some(previous_at) => minute_of(previous_at) + MINUTE,
            None => minute_of(record.started_at),
        };
        let mut minute = first.max(at - self.horizon);
        while minute <= at {
            self.bucket(minute, &api, application)?.counts.open_connections += 1;
            minute += MINUTE;
        }
        let bucket = self.bucket(at, &api, application)?;
        let counts = &mut bucket.counts;
        counts.messages_in = counts.messages_in.saturating_add(record.messages_in);
        counts.bytes_in = counts.bytes_in.saturating_add(record.bytes_in);
        counts.messages_out = counts.messages_out.saturating_add(record.messages_out);
        counts.bytes_out = counts.bytes_out.saturating_add(record.bytes_out);
        if record.last {
            counts.closed += 1;
            let (kind, code) = close_code(record);
            *bucket.codes.entry((kind, kind.bounded(code))).or_default() += 1;
        } else if self.live.len() < self.max_live {
            // Beyond the bound the connection's next record counts it as opened again: a
            // count a little high rather than memory without bound.
            self.live.insert(record.connection, record.at);
        }
        Ok(())
    }

    /// Everything aggregated since the last call, as buckets to store; `live` stays.
    pub fn take(&mut self) -> Vec<MinuteBucket> {
        self.records = 0;
        self.buckets
            .drain()
            .map(|(key, bucket)| {
                let mut codes: Vec<_> = bucket.codes.into_iter().map(|((kind, code), n)| (kind, code, n)).collect();
                codes.sort_unstable();
                MinuteBucket {
                    minute: key.minute,
                    api: key.api,
                    application: key.application,
                    counts: bucket.counts,
                    codes,
                }
            })
            .collect()
    }

    /// Puts back buckets a failed flush did not store, as far as memory allows; returns how
    /// many were dropped.
    pub fn restore(&mut self, buckets: Vec<MinuteBucket>) -> usize {
        let mut dropped = 0;
        for stored in buckets {
            match self.bucket(stored.minute, &stored.api, &stored.application) {
                Ok(bucket) => {
                    bucket.counts.add(&stored.counts);
                    for (kind, code, n) in stored.codes {
                        *bucket.codes.entry((kind, code)).or_default() += n;
                    }
                }
                Err(Overflow::Buckets) => dropped += 1,
            }
        }
        dropped
    }
}

/// The close code a chart shows for a connection, and who closed: the code of the side that
/// closed first (for the gateway, the code it sent the client, which the client echoes).
fn close_code(record: &SessionRecord) -> (CodeKind, u16) {
    let code = match record.closed_by {
        Some(ClosedBy::Client) => (CodeKind::CloseClient, record.client_close),
        Some(ClosedBy::Upstream) => (CodeKind::CloseUpstream, record.upstream_close),
        Some(ClosedBy::Gateway) => (CodeKind::CloseGateway, record.client_close.or(record.upstream_close)),
        None => (CodeKind::CloseGateway, None),
    };
    (code.0, code.1.unwrap_or(NO_CLOSE_FRAME))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(connection: u64, started_at: i64, at: i64, last: bool) -> SessionRecord {
        SessionRecord {
            connection,
            api_id: Some("api".into()),
            api_name: "Echo".into(),
            api_version: "1.0".into(),
            application_id: Some("app".into()),
            plan: None,
            client_ip: None,
            started_at,
            at,
            last,
            status: 101,
            refusal: None,
            messages_in: 2,
            bytes_in: 20,
            messages_out: 3,
            bytes_out: 30,
            client_close: Some(1000),
            upstream_close: None,
            closed_by: Some(ClosedBy::Client),
        }
    }

    fn by_minute(buckets: &[MinuteBucket]) -> Vec<(i64, Counts)> {
        let mut list: Vec<_> = buckets.iter().map(|b| (b.minute, b.counts)).collect();
        list.sort_by_key(|(minute, _)| *minute);
        list
    }

    #[test]
    fn a_long_connection_is_opened_once_and_open_in_every_minute() {
        let mut aggregator = Aggregator::new(1000, 1000, 86_400);
        let start = 600_000; // minute 600 s
        aggregator.add(&record(7, start, start + 61_000, false)).expect("room");
        aggregator.add(&record(7, start, start + 125_000, false)).expect("room");
        aggregator.add(&record(7, start, start + 130_000, true)).expect("room");
        let minutes = by_minute(&aggregator.take());
        let open: Vec<_> = minutes.iter().map(|(m, c)| (*m, c.open_connections, c.opened, c.closed)).collect();
        assert_eq!(open, vec![(600, 1, 1, 0), (660, 1, 0, 0), (720, 1, 0, 1)]);
        let messages: u64 = minutes.iter().map(|(_, c)| c.messages_in).sum();
        assert_eq!(messages, 6, "each record's delta once");
    }

    #[test]
    fn refusals_count_by_status_and_memory_is_bounded() {
        let mut aggregator = Aggregator::new(1, 1000, 86_400);
        let refused = SessionRecord { status: 429, application_id: None, ..record(1, 0, 0, true) };
        aggregator.add(&refused).expect("room");
        assert_eq!(aggregator.add(&SessionRecord { at: 120_000, ..refused.clone() }), Err(Overflow::Buckets));
        let buckets = aggregator.take();
        assert_eq!(buckets.len(), 1);
        assert_eq!(buckets[0].counts.refused, 1);
        assert_eq!(buckets[0].codes, vec![(CodeKind::Refused, 429, 1)]);
        assert_eq!(buckets[0].application, "");
        assert_eq!(aggregator.restore(buckets.clone()), 0);
        assert_eq!(aggregator.restore(vec![MinuteBucket { minute: 60, ..buckets[0].clone() }]), 1, "no room");
    }

    #[test]
    fn the_closing_side_gives_the_code() {
        let upstream =
            SessionRecord { closed_by: Some(ClosedBy::Upstream), upstream_close: Some(1011), ..record(1, 0, 0, true) };
        assert_eq!(close_code(&upstream), (CodeKind::CloseUpstream, 1011));
        let vanished = SessionRecord { closed_by: Some(ClosedBy::Client), client_close: None, ..record(1, 0, 0, true) };
        assert_eq!(close_code(&vanished), (CodeKind::CloseClient, 1006));
        let config = SessionRecord { api_id: None, ..record(1, 0, 0, true) };
        assert_eq!(api_key(&config), "config:Echo:1.0");
    }
}
