//! Config values with templates in them, compiled once and rendered many times.

use std::borrow::Cow;

use serde_json::{Map, Value};

use super::ast::{Expr, Part, Template};
use super::convert::{interpolate_text, StreamEncoding};
use super::eval::Scope;
use super::operators::{self, Choice, Operator};
use super::parser::parse;
use super::BindingError;

/// A YAML value whose strings may hold `${...}` expressions, and whose mappings may be
/// operators (spec §2.9). Keys are never rendered.
#[derive(Debug, Clone, PartialEq)]
pub enum Binding {
    Literal(Value),
    Template(Template),
    Map(Vec<Entry>),
    List(Vec<Binding>),
    Operator(Box<Operator>),
}

/// An entry of a mapping: a field, or an operator that adds fields to the mapping.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry {
    Field(String, Binding),
    /// `"...": x`: the mapping x (or nothing, for null) is merged in; later keys win.
    Merge(Binding),
    /// `"?": conditions`: the mapping the conditional gives (or nothing, for null) is merged in.
    Choose(Choice),
}

impl Entry {
    pub(super) fn compile(key: &str, value: &Value) -> Result<Self, BindingError> {
        Ok(match key {
            "..." => Entry::Merge(Binding::compile(value)?),
            "?" => Entry::Choose(Choice::compile(value)?),
            _ => Entry::Field(key.to_string(), Binding::compile(value)?),
        })
    }

    /// The mapping the entries make.
    pub(super) fn render_all(entries: &[Entry], scope: &Scope) -> Result<Value, BindingError> {
        let mut map = Map::with_capacity(entries.len());
        for entry in entries {
            let (merged, what) = match entry {
                Entry::Field(key, value) => {
                    map.insert(key.clone(), value.render(scope)?);
                    continue;
                }
                Entry::Merge(value) => (value.render(scope)?, "`...`"),
                Entry::Choose(choice) => (choice.render(scope)?, "`?` beside other keys"),
            };
            match merged {
                Value::Object(entries) => map.extend(entries),
                Value::Null => {}
                other => {
                    return Err(BindingError::new(format!(
                        "{what} merges a mapping, got {}",
                        interpolate_text(&other)
                    )))
                }
            }
        }
        Ok(Value::Object(map))
    }

    pub(super) fn collect<'a>(&'a self, out: &mut Vec<&'a Expr>) {
        match self {
            Entry::Field(_, value) | Entry::Merge(value) => value.collect(out),
            Entry::Choose(choice) => choice.collect(out),
        }
    }
}

impl Binding {
    /// Parses every string of `value` once, and compiles its operators; a malformed operator
    /// is an error.
    pub fn compile(value: &Value) -> Result<Self, BindingError> {
        Ok(match value {
            Value::String(text) => {
                let template = parse(text);
                if template.is_literal() {
                    Binding::Literal(value.clone())
                } else {
                    Binding::Template(template)
                }
            }
            Value::Object(map) => match operators::compile(map)? {
                Some(operator) => Binding::Operator(Box::new(operator)),
                None => Binding::Map(
                    map.iter()
                        .map(|(key, value)| Entry::compile(key, value))
                        .collect::<Result<_, _>>()?,
                ),
            },
            Value::Array(items) => Binding::List(
                items
                    .iter()
                    .map(Binding::compile)
                    .collect::<Result<_, _>>()?,
            ),
            other => Binding::Literal(other.clone()),
        })
    }

    /// The value [`Binding::render`] gives, borrowed where it is written in the config or
    /// read as it is from `scope` (see [`Expr::peek`]): what a condition compares.
    pub fn peek<'v>(&'v self, scope: &Scope<'v>) -> Result<Cow<'v, Value>, BindingError> {
        match self {
            Binding::Literal(value) => Ok(Cow::Borrowed(value)),
            Binding::Template(template) => match template.whole_expr() {
                Some(expr) => expr.peek(scope),
                None => template.render(scope).map(Cow::Owned),
            },
            other => other.render(scope).map(Cow::Owned),
        }
    }

    /// The value with every template rendered against `scope`.
    pub fn render(&self, scope: &Scope) -> Result<Value, BindingError> {
        Ok(match self {
            Binding::Literal(value) => value.clone(),
            Binding::Template(template) => template.render(scope)?,
            Binding::Map(entries) => Entry::render_all(entries, scope)?,
            Binding::Operator(operator) => operator.render(scope)?,
            Binding::List(items) => {
                let mut list = Vec::with_capacity(items.len());
                for item in items {
                    match item.spliced() {
                        Some(expr) => match expr.eval(scope)? {
                            Value::Array(spliced) => list.extend(spliced),
                            Value::Null => {}
                            other => {
                                return Err(BindingError::new(format!(
                                    "`...${{}}` in a list needs a list, got {}",
                                    interpolate_text(&other)
                                )))
                            }
                        },
                        None => list.push(item.render(scope)?),
                    }
                }
                Value::Array(list)
            }
        })
    }

    /// The expression of a list element written exactly `"...${x}"`: its list is spliced in
    /// place (spec §2.9).
    fn spliced(&self) -> Option<&Expr> {
        let Binding::Template(template) = self else {
            return None;
        };
        match template.parts.as_slice() {
            [Part::Text(dots), Part::Expr(expr)] if dots == "..." => Some(expr),
            _ => None,
        }
    }

    /// The expression when the whole value is `${source}` or `${source as TYPE}`: no index,
    /// path or default, so that it hands its source on as it is (or only converted).
    pub fn bare(&self, source: &str) -> Option<&Expr> {
        self.bare_path(source).filter(|e| e.path.is_empty())
    }

    /// The stream encoding when the whole value is one expression converted `as stream...`:
    /// its value is a stream (a plain value, a stream of one chunk).
    pub fn stream_encoding(&self) -> Option<StreamEncoding> {
        let Binding::Template(template) = self else {
            return None;
        };
        template
            .whole_expr()?
            .conversion
            .as_ref()?
            .stream_encoding()
    }

    /// Whether the whole value is one expression converted to a single media value (`as image`,
    /// `as audio/mpeg;base64`, not `as image[]`): its value is bytes.
    pub fn is_media(&self) -> bool {
        let Binding::Template(template) = self else {
            return false;
        };
        template
            .whole_expr()
            .and_then(|expr| expr.conversion.as_ref())
            .is_some_and(|c| super::is_media(&c.kind) && !c.list)
    }

    /// The operator this value is, if it is one.
    pub fn operator(&self) -> Option<&Operator> {
        match self {
            Binding::Operator(operator) => Some(operator),
            _ => None,
        }
    }

    /// The expression when the whole value is `${source.PATH}` (a conversion allowed), with no
    /// index or default: a path into one source.
    pub fn bare_path(&self, source: &str) -> Option<&Expr> {
        let Binding::Template(template) = self else {
            return None;
        };
        template
            .whole_expr()
            .filter(|e| e.source == source && e.index.is_none() && e.default.is_none())
    }

    /// Whether the whole value is exactly `${source}`, with no conversion either.
    pub fn is_exactly(&self, source: &str) -> bool {
        self.bare(source).is_some_and(|e| e.conversion.is_none())
    }

    /// Every expression in document order (mapping values in order, then list items).
    pub fn exprs(&self) -> Vec<&Expr> {
        let mut out = Vec::new();
        self.collect(&mut out);
        out
    }

    /// Whether any expression, defaults included, reads one of `sources`.
    pub fn reads(&self, sources: &[&str]) -> bool {
        self.exprs().into_iter().any(|expr| expr.reads(sources))
    }

    /// For a mapping whose merged parts (`...`, `?`) do not read `source`: the keys whose
    /// values do not read it either. `None` for anything else.
    pub fn fields_not_reading(&self, source: &str) -> Option<Vec<String>> {
        let Binding::Map(entries) = self else {
            return None;
        };
        let mut keys = Vec::new();
        for entry in entries {
            let mut exprs = Vec::new();
            entry.collect(&mut exprs);
            let reads = exprs.iter().any(|expr| expr.reads(&[source]));
            match entry {
                Entry::Field(key, _) if !reads => keys.push(key.clone()),
                Entry::Field(..) => {}
                Entry::Merge(_) | Entry::Choose(_) if reads => return None,
                Entry::Merge(_) | Entry::Choose(_) => {}
            }
        }
        Some(keys)
    }

    pub(super) fn collect<'a>(&'a self, out: &mut Vec<&'a Expr>) {
        match self {
            Binding::Literal(_) => {}
            Binding::Template(template) => out.extend(template.exprs()),
            Binding::Map(entries) => entries.iter().for_each(|entry| entry.collect(out)),
            Binding::List(items) => items.iter().for_each(|item| item.collect(out)),
            Binding::Operator(operator) => operator.collect(out),
        }
    }
}
