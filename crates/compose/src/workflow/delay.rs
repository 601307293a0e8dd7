//! A `delay` job's wait (spec §13.6, `mode: time-interval`): its `duration` rendered, read as
//! the config reads durations (seconds as a number, or `500ms`, `2s`, `1m`); null or zero
//! waits not at all.

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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
