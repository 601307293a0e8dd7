//! Durations as the original writes them (a number of seconds, or `500ms`, `30s`, `5m`, `1h`,
//! `1d`), and the time zones a delay until a time reads its time in.

use serde::{Deserialize, Deserializer};

/// A duration from the config.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Duration(pub std::time::Duration);

impl Duration {
    /// Parses `"1.5s"`, `"250ms"`, `"2m"`, `"10"` (seconds).
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let units: [(&str, f64); 5] = [
            ("ms", 0.001),
            ("s", 1.0),
            ("m", 60.0),
            ("h", 3600.0),
            ("d", 86400.0),
        ];
        let (number, scale) = units
            .iter()
            .find_map(|(suffix, scale)| text.strip_suffix(suffix).map(|n| (n, *scale)))
            .unwrap_or((text, 1.0));
        number
            .trim()
            .parse::<f64>()
            .ok()
            .and_then(|n| std::time::Duration::try_from_secs_f64(n * scale).ok())
            .map(Duration)
            .ok_or_else(|| format!("unsupported duration format: {text:?}"))
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Seconds(f64),
            Text(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Seconds(n) => std::time::Duration::try_from_secs_f64(n)
                .map(Duration)
                .map_err(|_| serde::de::Error::custom(format!("invalid duration: {n}"))),
            Raw::Text(text) => Duration::parse(&text).map_err(serde::de::Error::custom),
        }
    }
}

/// The time zone named `name` (`UTC`, `Europe/Paris`, a fixed offset such as `+09:00`).
pub fn time_zone(name: &str) -> Result<jiff::tz::TimeZone, String> {
    if let Some(offset) = fixed_offset(name) {
        return Ok(jiff::tz::TimeZone::fixed(offset));
    }
    jiff::tz::TimeZone::get(name).map_err(|_| {
        format!(
            "unknown time zone '{name}' (an IANA name such as Europe/Paris, UTC, or an offset \
             such as +09:00)"
        )
    })
}

/// `+09:00`, `-05`, `+0530` as an offset from UTC.
fn fixed_offset(text: &str) -> Option<jiff::tz::Offset> {
    let (sign, rest) = match text.as_bytes().first()? {
        b'+' => (1, &text[1..]),
        b'-' => (-1, &text[1..]),
        _ => return None,
    };
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    let (hours, minutes) = digits.split_at(digits.len().min(2));
    let hours: i32 = hours.parse().ok()?;
    let minutes: i32 = if minutes.is_empty() {
        0
    } else {
        minutes.parse().ok()?
    };
    jiff::tz::Offset::from_seconds(sign * (hours * 3600 + minutes * 60)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration as Std;

    #[test]
    fn parses_the_original_spellings() {
        assert_eq!(Duration::parse("250ms").unwrap().0, Std::from_millis(250));
        assert_eq!(Duration::parse("1.5s").unwrap().0, Std::from_millis(1500));
        assert_eq!(Duration::parse("2m").unwrap().0, Std::from_secs(120));
        assert_eq!(Duration::parse("1h").unwrap().0, Std::from_secs(3600));
        assert_eq!(Duration::parse("10").unwrap().0, Std::from_secs(10));
        assert!(Duration::parse("soon").is_err());
        assert!(Duration::parse("-1s").is_err());
    }
}
