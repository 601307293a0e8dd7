//! Paths read straight out of JSON text, for the chunks of a stream: one path (or, with
//! [`ChunkPaths`], the few a template reads), the value at
//! `choices[0].delta.content` without building the rest of the chunk as a [`Value`] (each
//! mapping would be an ordered map with hashed keys, made and dropped for every token). The
//! result is the one `eval::walk` gives on the parsed value, which a property
//! test checks; paths it does not cover (negative indexes, slices, `[*]`) are not taken here.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::ast::Step;
use super::tree::Binding;

/// Whether [`extract`] can follow these steps: keys and non-negative indexes only.
pub fn covers(steps: &[Step]) -> bool {
    steps.iter().all(|step| match step {
        Step::Key(_) => true,
        Step::Index(i) => *i >= 0,
        Step::Slice(..) | Step::Wildcard => false,
    })
}

/// The value at `steps` in the JSON `text` (null when the path is not there, or the text is
/// not JSON). `steps` must be [covered](covers).
pub fn extract(text: &str, steps: &[Step]) -> Value {
    extract_all(text, &[steps]).pop().unwrap_or_default()
}

/// The paths a template reads of each streamed JSON chunk (`${response[].choices[0].delta}`
/// and the like), when it reads it only through paths [`extract`] can follow: each chunk is
/// then read for those paths only, and the template renders with their values known (see
/// [`Scope::with_known`](super::Scope::with_known)), without the chunk being built as a value
/// (an agent's model mapping each event to deltas reads it in several places). The paths are
/// the template's own: an expression finds its value by its path's address, without comparing
/// steps.
#[derive(Debug)]
pub struct ChunkPaths<'t> {
    paths: Vec<&'t [Step]>,
}

impl<'t> ChunkPaths<'t> {
    /// What `template` reads of `source` (the streamed chunk), if it can be told.
    pub fn of(template: &'t Binding, source: &str) -> Option<Self> {
        let mut paths: Vec<&[Step]> = Vec::new();
        for expr in template.exprs() {
            let default_reads = |default: &super::ast::Template| {
                default.exprs().any(|inner| inner.source == source)
            };
            if expr.default.as_ref().is_some_and(default_reads) {
                return None;
            }
            if expr.source != source {
                continue;
            }
            if expr.index.is_some() || !covers(&expr.path) {
                return None;
            }
            if !paths.contains(&expr.path.as_slice()) {
                paths.push(&expr.path);
            }
        }
        (paths.len() <= MOST_PATHS).then_some(Self { paths })
    }

    pub fn paths(&self) -> &[&'t [Step]] {
        &self.paths
    }

    /// The value at each path in the JSON `text`, in order, read in one pass.
    pub fn read(&self, text: &str) -> Vec<Value> {
        extract_all(text, &self.paths)
    }
}

/// The most paths [`extract_all`] reads in one pass (one bit each).
const MOST_PATHS: usize = 64;

/// The value at each of `paths` in the JSON `text`, read in one pass over it (null where a
/// path is not there; all null when the text is not JSON). Each path must be
/// [covered](covers), and there are at most 64 of them.
pub fn extract_all(text: &str, paths: &[impl AsRef<[Step]>]) -> Vec<Value> {
    debug_assert!(paths.len() <= MOST_PATHS);
    let mut out = vec![Value::Null; paths.len()];
    if paths.is_empty() {
        return out;
    }
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let every = u64::MAX >> (MOST_PATHS - paths.len());
    let read = Many {
        paths,
        wanted: every,
        depth: 0,
        out: &mut out,
    }
    .deserialize(&mut deserializer);
    if read.is_err() || deserializer.end().is_err() {
        out.fill(Value::Null);
    }
    out
}

/// The paths (bits of `wanted`) that have come `depth` steps down to the value being read, and
/// where their values go. A mapping's repeated key reads its value again: the last one counts,
/// as in a parsed mapping.
struct Many<'p, 'o, P> {
    paths: &'p [P],
    wanted: u64,
    depth: usize,
    out: &'o mut [Value],
}

impl<P: AsRef<[Step]>> Many<'_, '_, P> {
    /// The bits of `wanted` whose next step is `is`.
    fn next_is(&self, is: impl Fn(&Step) -> bool) -> u64 {
        bits(self.wanted)
            .filter(|&i| self.paths[i].as_ref().get(self.depth).is_some_and(&is))
            .fold(0, |mask, i| mask | 1 << i)
    }

    /// Reading the value found by following the paths of `wanted` one more step.
    fn down(&mut self, wanted: u64) -> Many<'_, '_, P> {
        Many {
            paths: self.paths,
            wanted,
            depth: self.depth + 1,
            out: self.out,
        }
    }
}

/// The indexes of the bits set in `mask`.
fn bits(mut mask: u64) -> impl Iterator<Item = usize> {
    std::iter::from_fn(move || {
        let i = mask.trailing_zeros() as usize;
        mask &= mask.checked_sub(1)?;
        Some(i)
    })
}

impl<'de, P: AsRef<[Step]>> DeserializeSeed<'de> for Many<'_, '_, P> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        for i in bits(self.wanted) {
            self.out[i] = Value::Null;
        }
        let ends_here = bits(self.wanted).any(|i| self.paths[i].as_ref().len() == self.depth);
        if !ends_here {
            return deserializer.deserialize_any(self);
        }
        // A path ends at this value: it is built, and the others still wanted walk it.
        let value: Value = serde::Deserialize::deserialize(deserializer)?;
        for i in bits(self.wanted) {
            self.out[i] =
                super::eval::walk(&value, &self.paths[i].as_ref()[self.depth..]).into_owned();
        }
        Ok(())
    }
}

impl<'de, P: AsRef<[Step]>> Visitor<'de> for Many<'_, '_, P> {
    type Value = ();

    fn expecting(&self, out: &mut fmt::Formatter) -> fmt::Result {
        out.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        while let Some(wanted) = map.next_key_seed(NextKey(&self))? {
            match wanted {
                0 => map.next_value::<IgnoredAny>().map(drop)?,
                wanted => map.next_value_seed(self.down(wanted))?,
            }
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0_i64;
        loop {
            let wanted = self.next_is(|step| *step == Step::Index(index));
            let more = match wanted {
                0 => seq.next_element::<IgnoredAny>()?.is_some(),
                wanted => seq.next_element_seed(self.down(wanted))?.is_some(),
            };
            if !more {
                return Ok(());
            }
            index += 1;
        }
    }

    // A scalar where the paths go on: nothing there (they were set to null).
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
}

/// The paths of a [`Many`] whose next step is a mapping's key, read where the parser holds it.
struct NextKey<'m, 'p, 'o, P>(&'m Many<'p, 'o, P>);

impl<'de, P: AsRef<[Step]>> DeserializeSeed<'de> for NextKey<'_, '_, '_, P> {
    type Value = u64;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<u64, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de, P: AsRef<[Step]>> Visitor<'de> for NextKey<'_, '_, '_, P> {
    type Value = u64;

    fn expecting(&self, out: &mut fmt::Formatter) -> fmt::Result {
        out.write_str("a key")
    }

    fn visit_str<E>(self, key: &str) -> Result<u64, E> {
        Ok(self
            .0
            .next_is(|step| matches!(step, Step::Key(k) if k == key)))
    }
}

#[cfg(test)]
mod tests {
    use super::super::eval::walk;
    use super::super::parser::path_steps;
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn the_bound_path_of_an_openai_chunk() {
        let chunk = r#"{"id":"c","choices":[{"index":0,"delta":{"content":"Hel\"lo"},"finish_reason":null}]}"#;
        let steps = path_steps("choices[0].delta.content");
        assert!(covers(&steps));
        assert_eq!(extract(chunk, &steps), Value::from("Hel\"lo"));
        assert_eq!(extract(r#"{"choices":[]}"#, &steps), Value::Null);
        assert_eq!(extract("[DONE]", &steps), Value::Null);
        assert_eq!(
            extract(r#"{"a":1,"a":2}"#, &path_steps("a")),
            Value::from(2)
        );
        assert!(!covers(&path_steps("choices[-1]")));
        assert!(!covers(&path_steps("data[*].url")));
    }

    fn json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            (-5i64..5).prop_map(Value::from),
            "[a-c]{0,2}".prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec(("[a-c]", inner), 0..4)
                    .prop_map(|pairs| Value::Object(pairs.into_iter().collect())),
            ]
        })
    }

    fn steps() -> impl Strategy<Value = Vec<Step>> {
        let step = prop_oneof!["[a-c]".prop_map(Step::Key), (0i64..4).prop_map(Step::Index),];
        prop::collection::vec(step, 0..4)
    }

    proptest! {
        #[test]
        fn extracting_is_walking_the_parsed_value(value in json(), steps in steps()) {
            let text = value.to_string();
            prop_assert_eq!(extract(&text, &steps), walk(&value, &steps).into_owned());
        }

        #[test]
        fn extracting_several_paths_at_once_is_walking_each(
            value in json(),
            paths in prop::collection::vec(steps(), 0..5),
        ) {
            let text = value.to_string();
            let walked: Vec<Value> =
                paths.iter().map(|steps| walk(&value, steps).into_owned()).collect();
            prop_assert_eq!(extract_all(&text, &paths), walked);
        }
    }

    #[test]
    fn several_paths_in_one_pass_the_last_repeated_key_counting() {
        let paths = [
            path_steps("a.b"),
            path_steps("a"),
            path_steps("c[1]"),
            path_steps("d.e"),
        ];
        assert_eq!(
            extract_all(
                r#"{"a":{"b":1},"c":[0,[2]],"a":{"b":3,"x":4},"d":5}"#,
                &paths
            ),
            [json!(3), json!({"b": 3, "x": 4}), json!([2]), Value::Null]
        );
        assert_eq!(
            extract_all(r#"{"a":{"b":1},"a":7}"#, &paths[..1]),
            [Value::Null]
        );
        assert_eq!(extract_all("[DONE]", &paths), vec![Value::Null; 4]);
        assert_eq!(extract_all(r#"{"a":1} x"#, &paths[1..2]), [Value::Null]);
    }

    #[test]
    fn a_template_renders_the_same_with_the_paths_it_reads_known() {
        let template: Binding = Binding::compile(&serde_json::json!({
            "?": {"input": "${response[].choices[0].delta.content}", "operator": "neq",
                  "value": null, "if_true": {"type": "text_delta",
                  "text": "${response[].choices[0].delta.content}"}},
        }))
        .unwrap();
        let paths = ChunkPaths::of(&template, "response[]").unwrap();
        assert_eq!(paths.paths(), [path_steps("choices[0].delta.content")]);
        for chunk in [
            r#"{"id":"c","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}"#,
            r#"{"choices":[{"delta":{}}]}"#,
            "[DONE]",
        ] {
            let whole: Value = serde_json::from_str(chunk).unwrap_or_default();
            let scope = super::super::Scope::new().with("response[]", &whole);
            let values = paths.read(chunk);
            let known = super::super::Scope::new().with_known("response[]", paths.paths(), &values);
            assert_eq!(
                template.render(&known).unwrap(),
                template.render(&scope).unwrap()
            );
        }
        let wildcard = Binding::compile(&serde_json::json!("${response[].data[*].url}")).unwrap();
        assert!(ChunkPaths::of(&wildcard, "response[]").is_none());
    }
}
