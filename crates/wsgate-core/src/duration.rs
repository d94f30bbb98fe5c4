//! Durations in the config file are written as a whole number and a unit: `"500ms"`, `"10s"`,
//! `"5m"`, `"1h"`, `"7d"`. A bare number is refused, so nobody has to guess its unit.

use std::time::Duration;

/// Parses `"<digits><unit>"` with unit `ms`, `s`, `m`, `h` or `d`.
pub fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("\"{text}\" has no unit (use ms, s, m, h or d)"))?;
    let (digits, unit) = text.split_at(split);
    let value: u64 = digits.parse().map_err(|_| format!("\"{text}\" does not start with a whole number"))?;
    let millis_per_unit = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        // Retention periods read better in days ("7d") than in hours.
        "d" => 86_400_000,
        _ => {
            return Err(format!("\"{text}\" has unknown unit \"{unit}\" (use ms, s, m, h or d)"));
        }
    };
    value.checked_mul(millis_per_unit).map(Duration::from_millis).ok_or_else(|| format!("\"{text}\" is too long"))
}

/// Writes a duration the way [`parse`] reads it, in the largest unit that is exact:
/// `"1500ms"`, `"10s"`, `"5m"`.
pub fn format(duration: Duration) -> String {
    let millis = duration.as_millis();
    let units = [(86_400_000, "d"), (3_600_000, "h"), (60_000, "m"), (1_000, "s")];
    match units.iter().find(|(per, _)| millis > 0 && millis.is_multiple_of(*per)) {
        Some((per, unit)) => format!("{}{unit}", millis / per),
        None => format!("{millis}ms"),
    }
}

/// Serde adapter: `#[serde(with = "crate::duration::serde_text")]`.
pub mod serde_text {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn deserialize<'de, D: Deserializer<'de>>(de: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(de)?;
        super::parse(&text).map_err(serde::de::Error::custom)
    }

    pub fn serialize<S: Serializer>(duration: &Duration, ser: S) -> Result<S::Ok, S::Error> {
        ser.serialize_str(&super::format(*duration))
    }
}

/// Serde adapter for optional durations (absent or `null`: `None`).
pub mod serde_opt_text {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn deserialize<'de, D: Deserializer<'de>>(de: D) -> Result<Option<Duration>, D::Error> {
        match Option::<String>::deserialize(de)? {
            Some(text) => super::parse(&text).map(Some).map_err(serde::de::Error::custom),
            None => Ok(None),
        }
    }

    pub fn serialize<S: Serializer>(duration: &Option<Duration>, ser: S) -> Result<S::Ok, S::Error> {
        match duration {
            Some(duration) => ser.serialize_str(&super::format(*duration)),
            None => ser.serialize_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_are_understood() {
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse("7d"), Ok(Duration::from_secs(7 * 86_400)));
    }

    #[test]
    fn formatting_reads_back() {
        for (millis, text) in [(1500, "1500ms"), (10_000, "10s"), (300_000, "5m"), (0, "0ms"), (86_400_000, "1d")] {
            assert_eq!(format(Duration::from_millis(millis)), text);
            assert_eq!(parse(text), Ok(Duration::from_millis(millis)));
        }
    }

    #[test]
    fn bare_numbers_and_unknown_units_are_refused() {
        assert!(parse("10").is_err());
        assert!(parse("10 parsecs").is_err());
        assert!(parse("s").is_err());
        assert!(parse("99999999999999999999h").is_err());
    }
}
