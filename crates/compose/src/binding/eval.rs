//! Evaluating templates against the values in scope (spec §2.3–§2.6).

use std::borrow::Cow;

use serde_json::Value;

use super::ast::{Expr, Part, Step, Template};
use super::convert::{convert, interpolate_text};
use super::fetched::Fetched;
use super::BindingError;

/// The sources an expression can read (`input`, `response[]`, `jobs`, ...), by name, whose
/// values they are, and how `;FORMAT`s are read where it renders.
#[derive(Debug, Default, Clone)]
pub struct Scope<'a> {
    sources: Vec<(&'a str, &'a Value, Owner<'a>)>,
    /// What `;url` has fetched for this render; `None` where nothing can be fetched.
    pub(super) fetched: Option<&'a Fetched<'a>>,
    /// A source known only at some paths, with the value at each (see [`Scope::with_known`]).
    known: Option<Known<'a>>,
}

/// A source's name, paths, and the value at each path.
type Known<'a> = (&'a str, &'a [&'a [Step]], &'a [Value]);

/// Whose values a source holds, for what `;url` and `;path` may read of them (D32).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum Owner<'a> {
    /// The config's, the server's, or an upstream's the config chose: read as written.
    #[default]
    Server,
    /// A caller's (a run's input): links and paths only as the fetch policy allows.
    Caller,
    /// A mapping whose keys but these are a caller's (a job's input, whose listed keys the
    /// config wrote as they are).
    CallerBut(&'a [String]),
}

impl Owner<'_> {
    /// Whether the value at `path` in the source is a caller's.
    fn is_callers(self, path: &[Step]) -> bool {
        match self {
            Owner::Server => false,
            Owner::Caller => true,
            Owner::CallerBut(keys) => !matches!(path.first(),
                Some(Step::Key(key)) if keys.contains(key)),
        }
    }
}

impl<'a> Scope<'a> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or shadows) a source of the server's own.
    pub fn with(self, name: &'a str, value: &'a Value) -> Self {
        self.with_owned(name, value, Owner::Server)
    }

    /// Adds (or shadows) a source whose values are `owner`'s.
    pub fn with_owned(mut self, name: &'a str, value: &'a Value, owner: Owner<'a>) -> Self {
        self.sources.push((name, value, owner));
        self
    }

    /// The scope with `;url` reading its bodies from `fetched` (and noting there what it lacks).
    pub fn fetching(mut self, fetched: &'a Fetched<'a>) -> Self {
        self.fetched = Some(fetched);
        self
    }

    /// Adds a source of the server's own known only at `paths`, `values` the value at each:
    /// a template that reads a streamed chunk at those paths only renders without the chunk
    /// being built (see [`ChunkPaths`](super::extract::ChunkPaths)). Named sources come first.
    pub fn with_known(
        mut self,
        name: &'a str,
        paths: &'a [&'a [Step]],
        values: &'a [Value],
    ) -> Self {
        self.known = Some((name, paths, values));
        self
    }

    /// The value of source `name` at `path`, when that source is known at some paths only.
    fn known_at(&self, name: &str, path: &[Step]) -> Option<&'a Value> {
        let (source, paths, values) = self.known?;
        if source != name {
            return None;
        }
        // The template's own path (see `ChunkPaths`), else an equal one: a path repeated in the
        // template is kept once.
        let at = paths
            .iter()
            .position(|known| std::ptr::eq(*known, path))
            .or_else(|| paths.iter().position(|known| *known == path))?;
        values.get(at)
    }

    fn get(&self, name: &str) -> Option<(&'a Value, Owner<'a>)> {
        self.sources
            .iter()
            .rev()
            .find(|(n, ..)| *n == name)
            .map(|(_, value, owner)| (*value, *owner))
    }
}

impl Template {
    /// Renders the template: a whole-string expression keeps its value's type; anything
    /// else becomes a string with each expression spelled as text.
    pub fn render(&self, scope: &Scope) -> Result<Value, BindingError> {
        if let Some(expr) = self.whole_expr() {
            return expr.eval(scope);
        }
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Expr(expr) => out.push_str(&interpolate_text(&expr.eval(scope)?)),
            }
        }
        Ok(Value::String(out))
    }
}

impl Expr {
    /// The expression's value: the source, indexed and walked; the default if that is null;
    /// then the conversion. A missing value is null, never an error. A refused `;path` or
    /// `;url` of a caller's value names the expression (`input.doc: …`).
    pub fn eval(&self, scope: &Scope) -> Result<Value, BindingError> {
        let (mut value, mut caller) = self.lookup(scope);
        if value.is_null() {
            if let Some(default) = &self.default {
                // The default is the config's text.
                (value, caller) = (unquote(default.render(scope)?), false);
            }
        }
        self.convert_owned(value, scope, caller)
    }

    /// The value found (of the server's own), through the expression's `as TYPE` (nulls
    /// stay null).
    pub fn converted(&self, value: Value, scope: &Scope) -> Result<Value, BindingError> {
        self.convert_owned(value, scope, false)
    }

    fn convert_owned(
        &self,
        value: Value,
        scope: &Scope,
        caller: bool,
    ) -> Result<Value, BindingError> {
        match (&self.conversion, value) {
            (Some(conversion), value) if !value.is_null() => {
                convert(value, conversion, scope, caller).map_err(|err| err.naming(self))
            }
            (_, value) => Ok(value),
        }
    }

    /// `input.doc`, as a message names the value this expression reads.
    pub fn name(&self) -> String {
        match &self.path_text {
            Some(path) => format!("{}.{path}", self.source),
            None => self.source.clone(),
        }
    }

    /// The value as [`Expr::eval`] gives it, borrowed from `scope` when the expression
    /// only reads it (no index, no default needed, no conversion): a condition compares it
    /// in place.
    pub fn peek<'a>(&self, scope: &Scope<'a>) -> Result<Cow<'a, Value>, BindingError> {
        if self.conversion.is_some() || self.default.is_some() || self.index.is_some() {
            return self.eval(scope).map(Cow::Owned);
        }
        Ok(match scope.get(&self.source) {
            Some((root, _)) => walk(root, &self.path),
            None => match scope.known_at(&self.source, &self.path) {
                Some(value) => Cow::Borrowed(value),
                None => Cow::Owned(Value::Null),
            },
        })
    }

    /// The value, and whether it is a caller's.
    fn lookup(&self, scope: &Scope) -> (Value, bool) {
        let Some((root, owner)) = scope.get(&self.source) else {
            let known = self
                .index
                .is_none()
                .then(|| scope.known_at(&self.source, &self.path));
            return (known.flatten().cloned().unwrap_or_default(), false);
        };
        let caller = owner.is_callers(&self.path);
        // `input` and `context` ignore an index, as the original does.
        let indexed = match (&self.index, self.source.as_str()) {
            (Some(step), source) if source != "input" && source != "context" => {
                walk(root, std::slice::from_ref(step))
            }
            _ => Cow::Borrowed(root),
        };
        (walk(&indexed, &self.path).into_owned(), caller)
    }
}

/// D9: a default written in quotes (`| "gpt-4o"`) means the text inside them.
fn unquote(value: Value) -> Value {
    match &value {
        Value::String(text) => {
            let trimmed = text.trim();
            let quoted = trimmed.len() >= 2
                && ((trimmed.starts_with('"') && trimmed.ends_with('"'))
                    || (trimmed.starts_with('\'') && trimmed.ends_with('\'')));
            if quoted {
                Value::String(trimmed[1..trimmed.len() - 1].to_string())
            } else {
                value
            }
        }
        _ => value,
    }
}

/// Follows `steps` from `value`; anything that does not fit gives null.
pub fn walk<'v>(value: &'v Value, steps: &[Step]) -> Cow<'v, Value> {
    let Some((step, rest)) = steps.split_first() else {
        return Cow::Borrowed(value);
    };
    match (step, value) {
        (Step::Key(key), Value::Object(map)) => match map.get(key) {
            Some(next) => walk(next, rest),
            None => Cow::Owned(Value::Null),
        },
        (Step::Index(i), Value::Array(items)) => {
            let len = items.len() as i64;
            let at = if *i < 0 { len + i } else { *i };
            match usize::try_from(at).ok().and_then(|at| items.get(at)) {
                Some(next) => walk(next, rest),
                None => Cow::Owned(Value::Null),
            }
        }
        (Step::Slice(from, to), Value::Array(items)) => {
            let (from, to) = slice_bounds(items.len(), *from, *to);
            let slice = Value::Array(items[from..to.max(from)].to_vec());
            Cow::Owned(walk(&slice, rest).into_owned())
        }
        (Step::Wildcard, Value::Array(items)) => Cow::Owned(Value::Array(
            items
                .iter()
                .map(|item| walk(item, rest).into_owned())
                .collect(),
        )),
        _ => Cow::Owned(Value::Null),
    }
}

/// Python slice bounds, clamped to the list.
fn slice_bounds(len: usize, from: Option<i64>, to: Option<i64>) -> (usize, usize) {
    let len = len as i64;
    let clamp = |i: i64| {
        let i = if i < 0 { len + i } else { i };
        i.clamp(0, len) as usize
    };
    (from.map_or(0, clamp), to.map_or(len as usize, clamp))
}
