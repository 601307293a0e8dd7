//! Keys no part of the configuration reads. The original ignores them without a word, so a
//! typo (`read_timout`) or a block this implementation does not have changes nothing and
//! nobody is told; here each is named with its file, line and column and the nearest key the
//! configuration knows. They stay warnings, so that the original's files keep loading;
//! `validate --strict` makes them errors.
//!
//! Found while the file is read (`serde_ignored` reports every key a mapping's type skipped).
//! Not seen: keys inside a value read in more than one form (`mcp: true` or a mapping), whose
//! reader takes the mapping whole.

use std::path::PathBuf;
use std::sync::OnceLock;

use serde::de::{self, Deserialize, Visitor};

use super::locate::Place;

/// A key nothing reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unread {
    pub file: PathBuf,
    pub place: Option<Place>,
    /// Where it is in the configuration: `components[0].typo_field`.
    pub path: String,
    /// The known key it is nearest to, when one is near.
    pub nearest: Option<&'static str>,
}

impl Unread {
    /// The key found at `path` (as [`path_of`] writes it), placed by `place`.
    pub(super) fn new(path: String, (file, place): (PathBuf, Option<Place>)) -> Self {
        let key = path.rsplit('.').next().unwrap_or(&path);
        let nearest = nearest(key.split('[').next().unwrap_or(key));
        Self {
            file,
            place,
            path,
            nearest,
        }
    }
}

impl std::fmt::Display for Unread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let place = self.place.map(|p| p.to_string()).unwrap_or_default();
        write!(
            f,
            "{}{place}: unknown key `{}`, ignored",
            self.file.display(),
            self.path
        )?;
        match self.nearest {
            Some(known) => write!(f, " (did you mean `{known}`?)"),
            None => Ok(()),
        }
    }
}

/// A path as serde_ignored reports it, written as the config's paths are everywhere
/// (`workflows[0].jobs[1].component`).
pub(super) fn path_of(path: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path;
    match path {
        Path::Root => String::new(),
        Path::Seq { parent, index } => format!("{}[{index}]", path_of(parent)),
        Path::Map { parent, key } => match path_of(parent) {
            parent if parent.is_empty() => key.clone(),
            parent => format!("{parent}.{key}"),
        },
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => path_of(parent),
    }
}

/// The known key most like `key` (spelled with `-` or `_`, in any case), if one is like it
/// enough; none when `key` is known (then it is in the wrong place, which its path shows).
fn nearest(key: &str) -> Option<&'static str> {
    let known = known_keys();
    if known.contains(&key) {
        return None;
    }
    let key = key.to_ascii_lowercase().replace('-', "_");
    known
        .iter()
        .map(|known| (strsim::normalized_damerau_levenshtein(&key, known), *known))
        .filter(|(likeness, _)| *likeness >= 0.7)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, known)| known)
}

/// Every key a mapping of the configuration reads, as its types declare them.
fn known_keys() -> &'static [&'static str] {
    static KEYS: OnceLock<Vec<&'static str>> = OnceLock::new();
    KEYS.get_or_init(|| {
        use super::*;
        let mut keys: Vec<&'static str> = [
            keys_of::<RawConfig>(),
            keys_of::<Controller>(),
            keys_of::<Limits>(),
            keys_of::<KeepAlive>(),
            keys_of::<History>(),
            keys_of::<Retention>(),
            keys_of::<Adapter>(),
            keys_of::<WebSocket>(),
            keys_of::<WebUi>(),
            keys_of::<FetchSettings>(),
            keys_of::<FileSettings>(),
            keys_of::<SessionSettings>(),
            keys_of::<Interrupts>(),
            keys_of::<Pause>(),
            keys_of::<PauseCondition>(),
            keys_of::<Component>(),
            keys_of::<Action>(),
            keys_of::<Workflow>(),
            keys_of::<Job>(),
            keys_of::<Retry>(),
            keys_of::<OnError>(),
            keys_of::<Condition>(),
            keys_of::<Case>(),
            keys_of::<Route>(),
            keys_of::<Tracer>(),
            keys_of::<Capture>(),
        ]
        .concat();
        keys.sort_unstable();
        keys.dedup();
        keys
    })
}

/// The keys `T` reads: what its derived `Deserialize` names when it asks for a mapping (its
/// own, or that of the type it is read through); none for a type read in other forms.
fn keys_of<T: for<'de> Deserialize<'de>>() -> &'static [&'static str] {
    match T::deserialize(Probe) {
        Err(Probed(keys)) => keys,
        Ok(_) => &[],
    }
}

/// A deserializer that reads nothing: it only learns the keys of the mapping it is asked for.
struct Probe;

/// What a [`Probe`] learned.
#[derive(Debug)]
struct Probed(&'static [&'static str]);

impl std::fmt::Display for Probed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "keys {:?}", self.0)
    }
}

impl std::error::Error for Probed {}

impl de::Error for Probed {
    fn custom<T: std::fmt::Display>(_: T) -> Self {
        Probed(&[])
    }
}

impl<'de> de::Deserializer<'de> for Probe {
    type Error = Probed;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Probed> {
        Err(Probed(&[]))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        keys: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Probed> {
        Err(Probed(keys))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{load, Sources};
    use testkit::Workdir;

    /// What loading `files` (name, text) in a fresh directory leaves unread, as told.
    fn unread(files: &[(&str, &str)]) -> Vec<String> {
        let dir = Workdir::empty();
        let paths: Vec<PathBuf> = files
            .iter()
            .map(|(name, text)| dir.write(name, text))
            .collect();
        let config = load(
            &paths,
            &Sources::isolated(&dir.path, &[("KEY", "sk-secret")]),
        )
        .unwrap();
        config
            .unread
            .iter()
            .map(|unread| {
                let file = unread
                    .file
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                unread
                    .to_string()
                    .replacen(&unread.file.display().to_string(), &file, 1)
            })
            .collect()
    }

    #[test]
    fn every_unread_key_is_told_with_its_place_and_the_nearest_known_key() {
        let told = unread(&[(
            "model-compose.yml",
            "foo: 1\n\
             gateway:\n  type: http-tunnel\n\
             controller:\n  adapter: {type: http-server, port: 8080, bogus: 2}\n\
             components:\n  - id: chat\n    type: http-client\n    base_url: http://x\n    headerz: {}\n\
             \x20   typo_field: 3\n\
             \x20   action: {path: /a, method: POST, stream_fromat: json}\n\
             workflow:\n  jobs:\n    - {id: a, component: chat, inputt: 1}\n",
        )]);
        assert_eq!(
            told,
            [
                "model-compose.yml:1:1: unknown key `foo`, ignored",
                "model-compose.yml:2:1: unknown key `gateway`, ignored",
                "model-compose.yml:5:44: unknown key `controller.adapter.bogus`, ignored",
                "model-compose.yml:10:5: unknown key `components[0].headerz`, ignored \
                 (did you mean `headers`?)",
                "model-compose.yml:11:5: unknown key `components[0].typo_field`, ignored",
                "model-compose.yml:12:38: unknown key `components[0].action.stream_fromat`, \
                 ignored (did you mean `stream_format`?)",
                "model-compose.yml:15:32: unknown key `workflow.jobs[0].inputt`, ignored \
                 (did you mean `input`?)",
            ]
        );
    }

    #[test]
    fn merged_files_place_a_key_in_the_file_that_has_it() {
        let told = unread(&[
            ("a.yml", "workflow:\n  job: {component: c}\n"),
            (
                "b.yml",
                "components:\n  - {id: c, type: shell, action: {command: [echo]}, colour: red}\n",
            ),
        ]);
        assert_eq!(
            told,
            ["b.yml:2:53: unknown key `components[0].colour`, ignored"]
        );
    }

    #[test]
    fn the_keys_of_every_part_are_known() {
        let known = known_keys();
        for key in [
            "controller",
            "components",
            "base_url",
            "stream_format",
            "max_iteration_count",
            "webui",
            "jobs",
            "input",
        ] {
            assert!(known.contains(&key), "{key} not in {known:?}");
        }
    }

    #[test]
    fn a_near_key_is_suggested_and_a_known_one_is_not() {
        assert_eq!(nearest("base_ulr"), Some("base_url"));
        assert_eq!(nearest("stream-format"), Some("stream_format"));
        assert_eq!(nearest("Componets"), Some("components"));
        assert_eq!(nearest("gateway"), None);
        assert_eq!(nearest("port"), None);
    }
}
