//! Throttling limits as a publisher writes them: `50/s` messages, `1048576/min` bytes, `2`
//! concurrent connections, `10/min` new connections, counting traffic from the client, to it or
//! both, and what happens when a message or byte limit is reached (`throttle` or `close`).
//!
//! The same [`Limits`] value describes a business plan (per subscription), an application's
//! limit (all its connections together), an API-wide limit (all subscribers together) and a
//! per-client-address limit (keyless APIs). Absent limits are unlimited.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The window a rate is counted over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Period {
    Second,
    Minute,
    Hour,
    Day,
}

impl Period {
    pub fn as_duration(self) -> Duration {
        Duration::from_secs(match self {
            Period::Second => 1,
            Period::Minute => 60,
            Period::Hour => 3_600,
            Period::Day => 86_400,
        })
    }

    /// The short name used in `N/PERIOD`.
    pub fn as_str(self) -> &'static str {
        match self {
            Period::Second => "s",
            Period::Minute => "min",
            Period::Hour => "h",
            Period::Day => "day",
        }
    }

    fn parse(text: &str) -> Option<Period> {
        match text {
            "s" | "sec" | "second" => Some(Period::Second),
            "min" | "minute" => Some(Period::Minute),
            "h" | "hour" => Some(Period::Hour),
            "day" | "d" => Some(Period::Day),
            _ => None,
        }
    }
}

/// `amount` per `period`, written `50/s`. Counted as a token bucket that holds at most `amount`
/// and refills evenly over `period`: a burst of `amount` passes at once, then the rate holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rate {
    pub amount: u64,
    pub period: Period,
}

impl Rate {
    pub const fn new(amount: u64, period: Period) -> Rate {
        Rate { amount, period }
    }

    /// Tokens added per second.
    pub fn per_second(self) -> f64 {
        self.amount as f64 / self.period.as_duration().as_secs_f64()
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.amount, self.period.as_str())
    }
}

impl FromStr for Rate {
    type Err = String;

    fn from_str(text: &str) -> Result<Rate, String> {
        let bad = || format!("\"{text}\" is not N/PERIOD (e.g. 50/s; PERIOD is s, min, h or day)");
        let (amount, period) = text.trim().split_once('/').ok_or_else(bad)?;
        let amount: u64 = amount.trim().parse().map_err(|_| bad())?;
        let period = Period::parse(period.trim()).ok_or_else(bad)?;
        if amount == 0 {
            return Err(format!("\"{text}\": the amount must be at least 1 (leave the limit out for unlimited)"));
        }
        // Far beyond any real limit; keeps every computation on it in range.
        if amount > 1 << 50 {
            return Err(format!("\"{text}\": the amount is too large"));
        }
        Ok(Rate { amount, period })
    }
}

impl Serialize for Rate {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Rate, D::Error> {
        String::deserialize(deserializer)?.parse().map_err(serde::de::Error::custom)
    }
}

/// Which messages a message or byte limit counts: those the client sends (`in`), those it
/// receives (`out`) or both (WSO2 counts every event either way, hence the default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    In,
    Out,
    #[default]
    Both,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::In => "in",
            Direction::Out => "out",
            Direction::Both => "both",
        }
    }

    pub fn parse(text: &str) -> Option<Direction> {
        [Direction::In, Direction::Out, Direction::Both].into_iter().find(|d| d.as_str() == text)
    }

    /// Whether traffic from the client (`from_client`) or to it is counted.
    pub fn counts(self, from_client: bool) -> bool {
        match self {
            Direction::In => from_client,
            Direction::Out => !from_client,
            Direction::Both => true,
        }
    }
}

/// What happens when a message or byte limit is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnExceed {
    /// Stop reading that side until the window allows more: nothing is lost, TCP backpressure
    /// reaches the sender.
    #[default]
    Throttle,
    /// Close both sides with 1008 and a reason naming the limit.
    Close,
}

impl OnExceed {
    pub fn as_str(self) -> &'static str {
        match self {
            OnExceed::Throttle => "throttle",
            OnExceed::Close => "close",
        }
    }

    pub fn parse(text: &str) -> Option<OnExceed> {
        [OnExceed::Throttle, OnExceed::Close].into_iter().find(|o| o.as_str() == text)
    }
}

/// A set of limits; every one is optional and an absent one is unlimited.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Messages per period (a fragmented message counts once; pings, pongs and closes never).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messages: Option<Rate>,
    /// Payload bytes per period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<Rate>,
    /// Which direction `messages` and `bytes` count.
    #[serde(default)]
    pub count: Direction,
    /// Connections open at the same time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connections: Option<u32>,
    /// New connections per period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_rate: Option<Rate>,
    /// What a message or byte limit does when reached.
    #[serde(default)]
    pub on_exceed: OnExceed,
}

impl Limits {
    /// Rules serde cannot express: `Err((field, problem))`.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        if self.connections == Some(0) {
            return Err(("connections", "must be at least 1 (leave it out for unlimited)".into()));
        }
        Ok(())
    }

    /// Whether nothing is limited.
    pub fn is_unlimited(&self) -> bool {
        self.messages.is_none() && self.bytes.is_none() && self.connections.is_none() && self.connection_rate.is_none()
    }

    /// Whether message or byte traffic is limited (the relay then meters the connection).
    pub fn meters_traffic(&self) -> bool {
        self.messages.is_some() || self.bytes.is_some()
    }

    /// One line for people: `50/s messages (both ways, throttle), 2 connections`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        let traffic = format!("{}, {}", self.count_words(), self.on_exceed.as_str());
        if let Some(rate) = self.messages {
            parts.push(format!("{rate} messages ({traffic})"));
        }
        if let Some(rate) = self.bytes {
            parts.push(format!("{rate} bytes ({traffic})"));
        }
        if let Some(n) = self.connections {
            parts.push(format!("{n} connections at once"));
        }
        if let Some(rate) = self.connection_rate {
            parts.push(format!("{rate} new connections"));
        }
        if parts.is_empty() { "unlimited".to_string() } else { parts.join(", ") }
    }

    fn count_words(&self) -> &'static str {
        match self.count {
            Direction::In => "from the client",
            Direction::Out => "to the client",
            Direction::Both => "both ways",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_read_and_write_as_n_per_period() {
        for (text, rate) in [
            ("50/s", Rate::new(50, Period::Second)),
            ("20000/min", Rate::new(20_000, Period::Minute)),
            ("7/h", Rate::new(7, Period::Hour)),
            ("1/day", Rate::new(1, Period::Day)),
        ] {
            assert_eq!(text.parse::<Rate>(), Ok(rate));
            assert_eq!(rate.to_string(), text);
        }
        assert_eq!(" 3 / minute ".parse::<Rate>(), Ok(Rate::new(3, Period::Minute)));
        for bad in ["50", "50/week", "x/s", "0/s", "-1/s", "/s", "99999999999999999/s"] {
            assert!(bad.parse::<Rate>().is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn limits_are_json_with_defaults() {
        let limits: Limits = serde_json::from_str(r#"{"messages":"50/s","connections":2}"#).expect("valid");
        assert_eq!(limits.messages, Some(Rate::new(50, Period::Second)));
        assert_eq!((limits.count, limits.on_exceed), (Direction::Both, OnExceed::Throttle));
        assert_eq!(limits.describe(), "50/s messages (both ways, throttle), 2 connections at once");
        assert!(serde_json::from_str::<Limits>(r#"{"messages":"fast"}"#).is_err());
        assert!(serde_json::from_str::<Limits>(r#"{"mesages":"5/s"}"#).is_err());
        assert!(Limits::default().is_unlimited());
    }

    #[test]
    fn directions_count_what_they_say() {
        assert!(Direction::In.counts(true) && !Direction::In.counts(false));
        assert!(!Direction::Out.counts(true) && Direction::Out.counts(false));
        assert!(Direction::Both.counts(true) && Direction::Both.counts(false));
    }
}
