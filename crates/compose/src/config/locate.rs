//! Where things are in a YAML text. serde_yaml reports positions for its own errors only; the
//! checks made after reading (a missing component, a bad `${...}`) point at the key they are
//! about through this index, read in one pass with yaml-rust2's event parser.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// A place in a text: 1-based line and column (in characters); earlier places order first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Place {
    pub line: usize,
    pub column: usize,
}

impl Place {
    fn of(mark: Marker) -> Self {
        Self {
            line: mark.line(),
            column: mark.col() + 1,
        }
    }

    /// The place of a byte offset in `text`.
    pub fn at(text: &str, offset: usize) -> Self {
        let before = &text[..offset.min(text.len())];
        Self {
            line: before.matches('\n').count() + 1,
            column: before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1,
        }
    }

    /// The byte offset of this place in `text`.
    pub fn offset_in(self, text: &str) -> usize {
        let line_start: usize = text
            .split_inclusive('\n')
            .take(self.line.saturating_sub(1))
            .map(str::len)
            .sum();
        let line = &text[line_start.min(text.len())..];
        line_start
            + line
                .char_indices()
                .nth(self.column.saturating_sub(1))
                .map_or(line.len(), |(at, _)| at)
    }
}

impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, ":{}:{}", self.line, self.column)
    }
}

/// The place of every mapping key and sequence item of a YAML text, by path
/// (`workflows[0].jobs[1].component`). A text that does not parse gives what was read before
/// the problem.
#[derive(Debug, Default)]
pub struct Positions {
    places: HashMap<String, Place>,
    /// Where each document after the first starts.
    later_documents: Vec<Place>,
    /// Where the text stopped being YAML, if it did.
    broken_at: Option<Place>,
    /// Where the first document's root node ended.
    root_end: Option<Place>,
}

impl Positions {
    pub fn of(text: &str) -> Self {
        let mut reader = Reader::default();
        if let Err(err) = Parser::new_from_str(text).load(&mut reader, true) {
            reader.positions.broken_at = Some(Place::of(*err.marker()));
        }
        reader.positions
    }

    /// The place of the first of `paths` that the text has (`workflows[0]`, else `workflow`).
    pub fn find<S: AsRef<str>>(&self, paths: &[S]) -> Option<Place> {
        paths
            .iter()
            .find_map(|p| self.places.get(p.as_ref()).copied())
    }

    /// Where a second YAML document starts in `text` (the text these positions are of), if
    /// it holds several: where the parser saw one begin, or, when text goes on after the
    /// first document's root without a `---`, the first thing after that root.
    pub fn second_document(&self, text: &str) -> Option<Place> {
        if let Some(place) = self.later_documents.first() {
            return Some(*place);
        }
        let broken = self.broken_at?;
        let Some(end) = self.root_end else {
            return Some(broken);
        };
        let mut offset = end.offset_in(text);
        if text[offset..].starts_with(['}', ']']) {
            offset += 1;
        }
        loop {
            let rest = &text[offset..];
            let trimmed = rest.trim_start();
            offset += rest.len() - trimmed.len();
            if !trimmed.starts_with('#') {
                break;
            }
            offset += trimmed.find('\n').unwrap_or(trimmed.len());
        }
        let next = Place::at(text, offset);
        Some(if next.offset_in(text) <= broken.offset_in(text) {
            next
        } else {
            broken
        })
    }
}

/// A mapping or sequence being read.
enum Frame {
    Mapping { path: String, key: Option<String> },
    Sequence { path: String, next: usize },
}

#[derive(Default)]
struct Reader {
    positions: Positions,
    stack: Vec<Frame>,
    documents: usize,
}

impl Reader {
    /// A node starts at `mark`: records it, and returns its path.
    fn node(&mut self, mark: Marker) -> Option<String> {
        let place = Place::of(mark);
        match self.stack.last_mut()? {
            Frame::Mapping { path, key } => {
                let key = key.take()?;
                Some(join(path, &key))
            }
            Frame::Sequence { path, next } => {
                let item = format!("{path}[{next}]");
                *next += 1;
                self.positions.places.insert(item.clone(), place);
                Some(item)
            }
        }
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

impl MarkedEventReceiver for Reader {
    fn on_event(&mut self, event: Event, mark: Marker) {
        match event {
            Event::DocumentStart => {
                self.documents += 1;
                if self.documents > 1 {
                    self.positions.later_documents.push(Place::of(mark));
                }
            }
            Event::Scalar(value, ..) => {
                if let Some(Frame::Mapping {
                    path,
                    key: key @ None,
                }) = self.stack.last_mut()
                {
                    self.positions
                        .places
                        .insert(join(path, &value), Place::of(mark));
                    *key = Some(value);
                } else {
                    self.node(mark);
                }
            }
            Event::Alias(_) => {
                self.node(mark);
            }
            Event::MappingStart(..) => {
                let path = self.node(mark).unwrap_or_default();
                self.stack.push(Frame::Mapping { path, key: None });
            }
            Event::SequenceStart(..) => {
                let path = self.node(mark).unwrap_or_default();
                self.stack.push(Frame::Sequence { path, next: 0 });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
                if self.stack.is_empty() && self.documents == 1 {
                    self.positions.root_end = Some(Place::of(mark));
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const YAML: &str = "controller:\n  port: 8080\nworkflows:\n  - id: a\n    jobs:\n      - id: j\n        component: c\n  - {id: b, job: {component: d}}\n";

    #[test]
    fn keys_and_items_by_path() {
        let positions = Positions::of(YAML);
        let at = |path: &str| positions.find(&[path]).map(|p| (p.line, p.column));
        assert_eq!(at("controller"), Some((1, 1)));
        assert_eq!(at("controller.port"), Some((2, 3)));
        assert_eq!(at("workflows[0]").map(|(line, _)| line), Some(4));
        assert_eq!(at("workflows[0].jobs[0].component"), Some((7, 9)));
        assert_eq!(at("workflows[1].job.component"), Some((8, 19)));
        assert_eq!(at("workflows[2]"), None);
        assert_eq!(
            positions
                .find(&["workflows[1].jobs[0]", "workflows[1].job"])
                .map(|p| p.line),
            Some(8)
        );
    }

    #[test]
    fn later_documents_and_places() {
        let positions = Positions::of("a: 1\n---\nb: 2\n");
        assert_eq!(
            positions.second_document("a: 1\n---\nb: 2\n"),
            Some(Place { line: 2, column: 1 })
        );
        for (text, line, column) in [
            ("  controller:\ncontroller:", 2, 1),
            ("{}[", 1, 3),
            ("[1]\n# note\n  x: 1", 3, 3),
        ] {
            assert_eq!(
                Positions::of(text).second_document(text),
                Some(Place { line, column }),
                "{text:?}"
            );
        }
        let text = "héllo\nwörld: x\n";
        let place = Place::at(text, text.find("x").unwrap());
        assert_eq!(place, Place { line: 2, column: 8 });
        assert_eq!(place.offset_in(text), text.find("x").unwrap());
    }

    #[test]
    fn a_broken_text_gives_what_came_before() {
        let positions = Positions::of("a: 1\nb: [\n");
        assert!(positions.find(&["a"]).is_some());
    }
}
