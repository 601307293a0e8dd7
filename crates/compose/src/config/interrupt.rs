//! A job's pauses for a person (spec §14.1): `interrupt: {before, after}`, each `true` or
//! `{condition, message, metadata}`. Each form is read where it is written, so that an error
//! in it keeps its line and column.

use std::fmt;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// Where a job pauses: before its work, after it, or both.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Interrupts {
    #[serde(default, deserialize_with = "pause")]
    pub before: Option<Pause>,
    #[serde(default, deserialize_with = "pause")]
    pub after: Option<Pause>,
}

/// One pause: what the person is told (templates), and when it is skipped.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pause {
    /// Pause only when this holds (always when absent).
    pub condition: Option<PauseCondition>,
    pub message: Option<String>,
    /// A mapping (of templates) shown beside the message.
    pub metadata: Option<Value>,
}

/// `input` compared with `value` by `operator` (`eq` when absent), both templates.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PauseCondition {
    pub operator: Option<String>,
    #[serde(default)]
    pub input: Value,
    #[serde(default)]
    pub value: Value,
}

/// `true` (a pause with nothing to say), `false` or null (none), or the mapping.
fn pause<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Pause>, D::Error> {
    struct Form;
    impl<'de> Visitor<'de> for Form {
        type Value = Option<Pause>;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("true, false or {condition, message, metadata}")
        }

        fn visit_bool<E: de::Error>(self, pause: bool) -> Result<Self::Value, E> {
            Ok(pause.then(Pause::default))
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            Pause::deserialize(de::value::MapAccessDeserializer::new(map)).map(Some)
        }
    }
    deserializer.deserialize_any(Form)
}
