//! Config values with templates in them, compiled once and rendered many times.

use serde_json::{Map, Value};

use super::ast::{Expr, Part, Template};
use super::eval::Scope;
use super::parser::parse;
use super::BindingError;

/// A YAML value whose strings may hold `${...}` expressions. Keys are never rendered.
#[derive(Debug, Clone, PartialEq)]
pub enum Binding {
    Literal(Value),
    Template(Template),
    Map(Vec<(String, Binding)>),
    List(Vec<Binding>),
}

impl Binding {
    /// Parses every string of `value` once.
    pub fn compile(value: &Value) -> Self {
        match value {
            Value::String(text) => {
                let template = parse(text);
                if template.is_literal() {
                    Binding::Literal(value.clone())
                } else {
                    Binding::Template(template)
                }
            }
            Value::Object(map) => Binding::Map(
                map.iter()
                    .map(|(key, value)| (key.clone(), Binding::compile(value)))
                    .collect(),
            ),
            Value::Array(items) => Binding::List(items.iter().map(Binding::compile).collect()),
            other => Binding::Literal(other.clone()),
        }
    }

    /// The value with every template rendered against `scope`.
    pub fn render(&self, scope: &Scope) -> Result<Value, BindingError> {
        Ok(match self {
            Binding::Literal(value) => value.clone(),
            Binding::Template(template) => template.render(scope)?,
            Binding::Map(entries) => {
                let mut map = Map::with_capacity(entries.len());
                for (key, value) in entries {
                    map.insert(key.clone(), value.render(scope)?);
                }
                Value::Object(map)
            }
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
                                    crate::binding::interpolate_text(&other)
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
        let Binding::Template(template) = self else {
            return None;
        };
        template.whole_expr().filter(|e| {
            e.source == source && e.index.is_none() && e.path.is_empty() && e.default.is_none()
        })
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

    fn collect<'a>(&'a self, out: &mut Vec<&'a Expr>) {
        match self {
            Binding::Literal(_) => {}
            Binding::Template(template) => out.extend(template.exprs()),
            Binding::Map(entries) => entries.iter().for_each(|(_, value)| value.collect(out)),
            Binding::List(items) => items.iter().for_each(|item| item.collect(out)),
        }
    }
}
