//! A `delay` job's wait (spec §13.6). `mode: time-interval`: its `duration` rendered, read as
//! the config reads durations (seconds as a number, or `500ms`, `2s`, `1m`); null or zero
//! waits not at all. `mode: specific-time`: until its `time`, an ISO 8601 date and time, with
//! an offset (`2026-12-24T18:00:00+01:00`, `…Z`), a zone (`…[Europe/Paris]`), or neither, read
//! in its `timezone` (`Europe/Paris`, `UTC`; the server's own when absent); a time past waits
//! not at all.

use std::time::Duration;

use serde_json::Value;

use crate::config;
use crate::error::RunError;

/// How long `job` waits for its rendered `duration`.
pub(super) fn wait(job: &str, duration: &Value) -> Result<Duration, RunError> {
    let refused = || {
        RunError::Unsupported(format!(
            "job '{job}': duration {duration} is not a duration (seconds, or 500ms, 2s, 1m, 1h)"
        ))
    };
    match duration {
        Value::Null => Ok(Duration::ZERO),
        Value::Number(seconds) => seconds
            .as_f64()
            .and_then(|seconds| Duration::try_from_secs_f64(seconds).ok())
            .ok_or_else(refused),
        Value::String(text) if text.trim().is_empty() => Ok(Duration::ZERO),
        Value::String(text) => config::Duration::parse(text.trim())
            .map(|duration| duration.0)
            .map_err(|_| refused()),
        _ => Err(refused()),
    }
}

/// How long `job` waits until its rendered `time`, read in `timezone` when it says none.
pub(super) fn until(job: &str, time: &Value, timezone: Option<&str>) -> Result<Duration, RunError> {
    let target = instant(job, time, timezone)?;
    let left = target.duration_since(jiff::Timestamp::now());
    Ok(Duration::try_from(left).unwrap_or(Duration::ZERO))
}

/// The instant `time` names.
fn instant(job: &str, time: &Value, timezone: Option<&str>) -> Result<jiff::Timestamp, RunError> {
    let refused = |why: String| RunError::Unsupported(format!("job '{job}': {why}"));
    let Value::String(text) = time else {
        return Err(refused(format!(
            "time {time} is not a date and time (2026-12-24T18:00:00, with an offset or not)"
        )));
    };
    let text = text.trim();
    if let Ok(timestamp) = text.parse::<jiff::Timestamp>() {
        return Ok(timestamp);
    }
    if let Ok(zoned) = text.parse::<jiff::Zoned>() {
        return Ok(zoned.timestamp());
    }
    let civil = text.parse::<jiff::civil::DateTime>().map_err(|_| {
        refused(format!(
            "time \"{text}\" is not a date and time (2026-12-24T18:00:00, with an offset or not)"
        ))
    })?;
    let zone = match timezone.map(str::trim).filter(|t| !t.is_empty()) {
        Some(name) => config::time_zone(name).map_err(refused)?,
        None => jiff::tz::TimeZone::system(),
    };
    civil
        .to_zoned(zone)
        .map(|zoned| zoned.timestamp())
        .map_err(|err| refused(format!("time \"{text}\": {err}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_time_is_read_with_its_offset_its_zone_or_the_timezone_given() {
        let at = |time: &str, zone: Option<&str>| {
            instant("d", &json!(time), zone).map(|t| t.as_second())
        };
        // 2026-12-24T17:00:00Z
        let utc = 1_798_131_600;
        assert_eq!(at("2026-12-24T17:00:00Z", None), Ok(utc));
        assert_eq!(at("2026-12-24T18:00:00+01:00", None), Ok(utc));
        assert_eq!(at("2026-12-24T18:00:00[Europe/Paris]", None), Ok(utc));
        assert_eq!(at("2026-12-24T18:00:00", Some("Europe/Paris")), Ok(utc));
        assert_eq!(at("2026-12-24T17:00:00", Some("UTC")), Ok(utc));
        assert_eq!(at("2026-12-25T02:00:00", Some("+09:00")), Ok(utc));
        let err = at("2026-12-24T18:00:00", Some("Mars/Olympus"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown time zone 'Mars/Olympus'"), "{err}");
        let err = at("tomorrow", None).unwrap_err().to_string();
        assert!(err.contains("\"tomorrow\" is not a date and time"), "{err}");
        // A time past waits not at all.
        assert_eq!(
            until("d", &json!("2000-01-01T00:00:00Z"), None).unwrap(),
            Duration::ZERO
        );
        let soon = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(30);
        let wait = until("d", &json!(soon.to_string()), None).unwrap();
        assert!(
            wait > Duration::from_secs(28) && wait <= Duration::from_secs(30),
            "{wait:?}"
        );
    }

    #[test]
    fn a_duration_is_seconds_or_a_duration_text() {
        let ms = Duration::from_millis;
        assert_eq!(wait("d", &json!(1.5)).unwrap(), ms(1500));
        assert_eq!(wait("d", &json!("250ms")).unwrap(), ms(250));
        assert_eq!(wait("d", &json!("2s")).unwrap(), ms(2000));
        assert_eq!(wait("d", &json!(0)).unwrap(), Duration::ZERO);
        assert_eq!(wait("d", &json!(null)).unwrap(), Duration::ZERO);
        assert_eq!(wait("d", &json!("")).unwrap(), Duration::ZERO);
        let err = wait("d", &json!("soon")).unwrap_err().to_string();
        assert_eq!(
            err,
            "job 'd': duration \"soon\" is not a duration (seconds, or 500ms, 2s, 1m, 1h)"
        );
        assert!(wait("d", &json!(-1)).is_err());
        assert!(wait("d", &json!([1])).is_err());
    }
}
