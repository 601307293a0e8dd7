//! Paths read straight out of JSON text, for the chunks of a stream: one path (or, with
//! [`Sparse`], the few a template reads), the value at
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
    let mut deserializer = serde_json::Deserializer::from_str(text);
    match Path(steps).deserialize(&mut deserializer) {
        Ok(value) if deserializer.end().is_ok() => value,
        _ => Value::Null,
    }
}

/// The rest of the path, as a seed that deserializes only what it leads to.
#[derive(Clone, Copy)]
struct Path<'s>(&'s [Step]);

impl<'de> DeserializeSeed<'de> for Path<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        match self.0 {
            [] => serde::Deserialize::deserialize(deserializer),
            _ => deserializer.deserialize_any(self),
        }
    }
}

impl<'de> Visitor<'de> for Path<'_> {
    type Value = Value;

    fn expecting(&self, out: &mut fmt::Formatter) -> fmt::Result {
        out.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let (Some(Step::Key(wanted)), rest) = (self.0.first(), &self.0[1..]) else {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            return Ok(Value::Null);
        };
        // As a parsed mapping, the last of repeated keys counts.
        let mut found = Value::Null;
        while let Some(is_wanted) = map.next_key_seed(KeyIs(wanted))? {
            if is_wanted {
                found = map.next_value_seed(Path(rest))?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let (Some(Step::Index(at)), rest) = (self.0.first(), &self.0[1..]) else {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            return Ok(Value::Null);
        };
        let mut found = Value::Null;
        let mut index = 0;
        loop {
            if index == *at {
                match seq.next_element_seed(Path(rest))? {
                    Some(value) => found = value,
                    None => break,
                }
            } else if seq.next_element::<IgnoredAny>()?.is_none() {
                break;
            }
            index += 1;
        }
        Ok(found)
    }

    // A scalar where the path goes on: nothing there.
    fn visit_bool<E>(self, _: bool) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_str<E>(self, _: &str) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
}

/// The parts of JSON texts that some paths read, for a template that reads a chunk in several
/// places (an agent's model mapping each event to deltas): each chunk is parsed into a value
/// with only the keys and items on those paths (and each path's value whole), so that a
/// token costs no ordered map for every mapping of its chunk. Every path [read](Sparse::read)
/// gives what it gives on the whole parsed value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sparse {
    root: Node,
}

/// What is kept of one value of the text.
#[derive(Debug, Clone, PartialEq)]
enum Node {
    /// All of it: a path ends here.
    Whole,
    /// Of a mapping, these keys; of a list, these items (the others are null).
    Some {
        keys: Vec<(String, Node)>,
        items: Vec<(usize, Node)>,
    },
}

impl Default for Node {
    fn default() -> Self {
        Node::Some {
            keys: Vec::new(),
            items: Vec::new(),
        }
    }
}

impl Sparse {
    /// What `template` reads of each streamed chunk (`${response[]…}`), when every expression
    /// that reads it follows a path [`extract`] can follow.
    pub fn of_chunks(template: &Binding) -> Option<Self> {
        let mut sparse = Sparse::default();
        for expr in template.exprs() {
            let default_reads = |default: &super::ast::Template| {
                default.exprs().any(|inner| inner.reads(&["response"]))
            };
            if expr.default.as_ref().is_some_and(default_reads) || expr.index.is_some() {
                return None;
            }
            if expr.source == "response[]" {
                sparse.read(&expr.path)?;
            }
        }
        Some(sparse)
    }

    /// Keeps what `steps` lead to; `None` when [`extract`] could not follow them.
    pub fn read(&mut self, steps: &[Step]) -> Option<()> {
        covers(steps).then_some(())?;
        let mut node = &mut self.root;
        for step in steps {
            let Node::Some { keys, items } = node else {
                return Some(());
            };
            node = match step {
                Step::Key(key) => match keys.iter().position(|(k, _)| k == key) {
                    Some(at) => &mut keys[at].1,
                    None => {
                        keys.push((key.clone(), Node::default()));
                        &mut keys.last_mut()?.1
                    }
                },
                Step::Index(at) => {
                    let at = usize::try_from(*at).ok()?;
                    match items.iter().position(|(i, _)| *i == at) {
                        Some(found) => &mut items[found].1,
                        None => {
                            items.push((at, Node::default()));
                            &mut items.last_mut()?.1
                        }
                    }
                }
                Step::Slice(..) | Step::Wildcard => return None,
            };
        }
        *node = Node::Whole;
        Some(())
    }

    /// What the paths read of the JSON `text` (null when it is not JSON).
    pub fn parse(&self, text: &str) -> Value {
        let mut deserializer = serde_json::Deserializer::from_str(text);
        match (&self.root).deserialize(&mut deserializer) {
            Ok(value) if deserializer.end().is_ok() => value,
            _ => Value::Null,
        }
    }
}

impl<'de> DeserializeSeed<'de> for &Node {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        match self {
            Node::Whole => serde::Deserialize::deserialize(deserializer),
            Node::Some { .. } => deserializer.deserialize_any(self),
        }
    }
}

impl<'de> Visitor<'de> for &Node {
    type Value = Value;

    fn expecting(&self, out: &mut fmt::Formatter) -> fmt::Result {
        out.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let Node::Some { keys, .. } = self else {
            unreachable!("a whole value is deserialized, not visited")
        };
        let mut kept = serde_json::Map::new();
        while let Some(at) = map.next_key_seed(KeyAmong(keys))? {
            match at {
                Some(at) => {
                    let (key, node) = &keys[at];
                    kept.insert(key.clone(), map.next_value_seed(node)?);
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Value::Object(kept))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let Node::Some { items, .. } = self else {
            unreachable!("a whole value is deserialized, not visited")
        };
        let last = items.iter().map(|(at, _)| *at).max();
        let mut kept = Vec::new();
        loop {
            let index = kept.len();
            let wanted = items.iter().find(|(at, _)| *at == index);
            let next = match wanted {
                Some((_, node)) => seq.next_element_seed(node)?,
                None if last.is_some_and(|last| index < last) => {
                    seq.next_element::<IgnoredAny>()?.map(|_| Value::Null)
                }
                None => {
                    while seq.next_element::<IgnoredAny>()?.is_some() {}
                    break;
                }
            };
            match next {
                Some(value) => kept.push(value),
                None => break,
            }
        }
        Ok(Value::Array(kept))
    }

    // A scalar where the paths go on: nothing there.
    fn visit_bool<E>(self, _: bool) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_str<E>(self, _: &str) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
}

/// Which of the wanted keys a mapping's key is, if any (compared where the parser holds it).
struct KeyAmong<'w>(&'w [(String, Node)]);

impl<'de> DeserializeSeed<'de> for KeyAmong<'_> {
    type Value = Option<usize>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Option<usize>, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyAmong<'_> {
    type Value = Option<usize>;

    fn expecting(&self, out: &mut fmt::Formatter) -> fmt::Result {
        out.write_str("a key")
    }

    fn visit_str<E>(self, key: &str) -> Result<Option<usize>, E> {
        Ok(self.0.iter().position(|(wanted, _)| wanted == key))
    }
}

/// Whether a mapping's key is the wanted one, compared where the parser holds it: a key is
/// never copied (a chunk has several, and this runs for every token).
struct KeyIs<'w>(&'w str);

impl<'de> DeserializeSeed<'de> for KeyIs<'_> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyIs<'_> {
    type Value = bool;

    fn expecting(&self, out: &mut fmt::Formatter) -> fmt::Result {
        out.write_str("a key")
    }

    fn visit_str<E>(self, key: &str) -> Result<bool, E> {
        Ok(key == self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::super::eval::walk;
    use super::super::parser::path_steps;
    use super::*;
    use proptest::prelude::*;

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
        fn each_path_reads_of_the_sparse_value_what_it_reads_of_the_whole(
            value in json(),
            paths in prop::collection::vec(steps(), 1..4),
        ) {
            let mut sparse = Sparse::default();
            for steps in &paths {
                prop_assert!(sparse.read(steps).is_some());
            }
            let kept = sparse.parse(&value.to_string());
            for steps in &paths {
                prop_assert_eq!(walk(&kept, steps), walk(&value, steps));
            }
        }
    }

    #[test]
    fn an_openai_chunk_keeps_only_what_is_read() {
        let mut sparse = Sparse::default();
        sparse
            .read(&path_steps("choices[0].delta.content"))
            .unwrap();
        sparse
            .read(&path_steps("choices[0].delta.tool_calls"))
            .unwrap();
        assert!(sparse.read(&path_steps("data[*].url")).is_none());
        let chunk = r#"{"id":"c","object":"chunk","choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"},"finish_reason":null}]}"#;
        assert_eq!(
            sparse.parse(chunk),
            serde_json::json!({"choices": [{"delta": {"content": "Hi"}}]})
        );
        assert_eq!(sparse.parse("[DONE]"), Value::Null);
    }
}
