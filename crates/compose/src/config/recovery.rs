//! What a job does when it fails (spec §13.1): `retry` it, then fall back to `on_error`.
//!
//! `retry: 3` or `retry: {max_attempt_count, delay, backoff, max_delay}`; `on_error: ignore`
//! or `on_error: {output, to}`. Each form is read where it is written, so that an error in it
//! keeps its line and column.

use std::fmt;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use super::duration::Duration;

/// `retry`: how many times a failed job runs in all, and how long it waits between.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retry {
    /// Attempts in all, the first included (at least 1).
    #[serde(deserialize_with = "at_least_one")]
    pub max_attempt_count: u32,
    #[serde(default = "no_delay")]
    pub delay: Duration,
    #[serde(default)]
    pub backoff: Backoff,
    pub max_delay: Option<Duration>,
}

/// How the wait between attempts grows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backoff {
    /// `delay` every time.
    #[default]
    Fixed,
    /// `delay × 2^(attempt − 1)`.
    Exponential,
}

impl Retry {
    /// The wait after failed attempt `attempt` (1 for the first), within `max_delay`.
    pub fn delay_after(&self, attempt: u32) -> std::time::Duration {
        let delay = match self.backoff {
            Backoff::Fixed => self.delay.0,
            Backoff::Exponential => self
                .delay
                .0
                .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1))),
        };
        match &self.max_delay {
            Some(max) => delay.min(max.0),
            None => delay,
        }
    }
}

fn no_delay() -> Duration {
    Duration(std::time::Duration::ZERO)
}

fn at_least_one<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u32, D::Error> {
    match u32::deserialize(deserializer)? {
        0 => Err(de::Error::custom("'max_attempt_count' must be at least 1")),
        count => Ok(count),
    }
}

/// `retry: N` (the count alone) or the whole mapping.
pub(super) fn retry<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Retry>, D::Error> {
    struct Form;
    impl<'de> Visitor<'de> for Form {
        type Value = Retry;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a number of attempts or {max_attempt_count, delay, backoff, max_delay}")
        }

        fn visit_u64<E: de::Error>(self, count: u64) -> Result<Retry, E> {
            let count = u32::try_from(count)
                .ok()
                .filter(|count| *count >= 1)
                .ok_or_else(|| E::custom("'retry' must be at least 1"))?;
            Ok(Retry {
                max_attempt_count: count,
                delay: no_delay(),
                backoff: Backoff::Fixed,
                max_delay: None,
            })
        }

        fn visit_i64<E: de::Error>(self, count: i64) -> Result<Retry, E> {
            self.visit_u64(
                u64::try_from(count).map_err(|_| E::custom("'retry' must be at least 1"))?,
            )
        }

        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Retry, A::Error> {
            Retry::deserialize(de::value::MapAccessDeserializer::new(map))
        }
    }
    deserializer.deserialize_any(Form).map(Some)
}

/// `on_error`: what a job that failed every attempt gives instead of failing the run.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OnError {
    /// Its output instead, rendered with `${error.message}`; none: null.
    pub output: Option<Value>,
    /// A job to route to instead (routing: spec §13.2).
    pub to: Option<String>,
}

/// `on_error: ignore` (null as the output) or the mapping.
pub(super) fn on_error<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<OnError>, D::Error> {
    struct Form;
    impl<'de> Visitor<'de> for Form {
        type Value = OnError;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("'ignore' or {output, to}")
        }

        fn visit_str<E: de::Error>(self, text: &str) -> Result<OnError, E> {
            if text.eq_ignore_ascii_case("ignore") {
                Ok(OnError::default())
            } else {
                Err(E::custom(format!(
                    "on_error as a word must be 'ignore', got '{text}'"
                )))
            }
        }

        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<OnError, A::Error> {
            OnError::deserialize(de::value::MapAccessDeserializer::new(map))
        }
    }
    deserializer.deserialize_any(Form).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration as Std;

    #[derive(Debug, Deserialize)]
    struct Job {
        #[serde(default, deserialize_with = "retry")]
        retry: Option<Retry>,
        #[serde(default, deserialize_with = "on_error")]
        on_error: Option<OnError>,
    }

    fn job(yaml: &str) -> Result<Job, String> {
        serde_yaml::from_str(yaml).map_err(|err| err.to_string())
    }

    #[test]
    fn retry_is_a_count_or_a_mapping_and_its_waits_grow_as_it_says() {
        let count = job("retry: 3").unwrap().retry.unwrap();
        assert_eq!(
            (count.max_attempt_count, count.delay_after(2)),
            (3, Std::ZERO)
        );
        let grows = job(
            "retry: {max_attempt_count: 5, delay: 100ms, backoff: exponential, max_delay: 300ms}",
        )
        .unwrap()
        .retry
        .unwrap();
        let waits: Vec<Std> = (1..=4).map(|attempt| grows.delay_after(attempt)).collect();
        assert_eq!(
            waits,
            [100, 200, 300, 300].map(Std::from_millis),
            "doubled, then held at max_delay"
        );
        let fixed = job("retry: {max_attempt_count: 2, delay: 0.2}")
            .unwrap()
            .retry
            .unwrap();
        assert_eq!(fixed.delay_after(1), Std::from_millis(200));
        assert!(job("retry: 0").unwrap_err().contains("at least 1"));
        assert!(job("retry: {max_attempt_count: 0}")
            .unwrap_err()
            .contains("at least 1"));
        assert!(job("retry: {max_attempts: 2}")
            .unwrap_err()
            .contains("unknown field"));
        assert!(job("retry: often")
            .unwrap_err()
            .contains("a number of attempts"));
    }

    #[test]
    fn on_error_is_ignore_or_a_mapping() {
        assert_eq!(
            job("on_error: ignore").unwrap().on_error,
            Some(OnError::default())
        );
        let output = job("on_error: {output: {err: '${error.message}'}}").unwrap();
        assert_eq!(
            output.on_error.unwrap().output,
            Some(serde_json::json!({"err": "${error.message}"}))
        );
        assert!(job("on_error: skip")
            .unwrap_err()
            .contains("must be 'ignore'"));
        assert_eq!(job("{}").unwrap().on_error, None);
    }
}
