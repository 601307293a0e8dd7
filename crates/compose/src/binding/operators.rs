//! The structural operators of config values (spec §2.9): mappings whose keys are operators
//! build values instead of being data. `{"*": list, k: tmpl}` maps (with `where`), `{"?": …}`
//! chooses, `{"+": [..]}` joins, `{"|": list, k: tmpl}` splits, and `"...": x` merges a mapping
//! into the one around it. They are compiled with the rest of the value, so that a malformed
//! operator is an error when the config loads, never data passed through.

use serde_json::{Map, Value};

use super::convert::a_type;
use super::eval::Scope;
use super::tree::{Binding, Entry};
use super::BindingError;

/// An operator, compiled.
#[derive(Debug, Clone, PartialEq)]
pub enum Operator {
    /// `{"*": SOURCE, key: template, …}`: each element of the source list, as `${item}` (and
    /// `${index}`), kept if it passes the filter and rendered through the template (or kept as
    /// it is, without one).
    Each {
        source: Binding,
        filter: Option<Filter>,
        template: Vec<Entry>,
    },
    /// `{"?": condition | [condition, …]}`.
    Choose(Choice),
    /// `{"+": [a, b, …]}`: texts, lists or mappings joined (nulls left out).
    Join(Binding),
    /// `{"|": SOURCE, key: template, …}`: a mapping of lists, one per template key, each the
    /// key's template rendered for every element.
    Split {
        source: Binding,
        template: Vec<(String, Binding)>,
    },
}

/// How an operator takes a stream (see [`Operator::over_stream`]).
pub enum OverStream<'a> {
    /// Each chunk through [`Operator::each`].
    Map,
    /// The parts before the stream, its chunks, then the parts after it: one stream, nulls
    /// left out.
    Join {
        before: &'a [Binding],
        after: &'a [Binding],
    },
}

/// Conditions tried in order: the first true one gives its `if_true`; a false one with an
/// `if_false` gives that; none gives null.
#[derive(Debug, Clone, PartialEq)]
pub struct Choice(Vec<Branch>);

#[derive(Debug, Clone, PartialEq)]
struct Branch {
    test: Test,
    if_true: Binding,
    if_false: Option<Binding>,
}

/// `{input, operator, value}`: the operator defaults to `eq`.
#[derive(Debug, Clone, PartialEq)]
pub struct Test {
    input: Binding,
    comparison: Comparison,
    value: Binding,
}

/// A map's `where` (and a `filter` job's): a test, or `all`, `any` and `not` of others.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    All(Vec<Filter>),
    Any(Vec<Filter>),
    Not(Box<Filter>),
    Test(Test),
}

/// How a condition compares its input with its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    Eq,
    Neq,
    Gt,
    Gte,
    Lt,
    Lte,
    In,
    NotIn,
    Match,
    StartsWith,
    EndsWith,
}

/// The comparisons' names, for messages.
pub const COMPARISONS: &str =
    "eq, neq, gt, gte, lt, lte, in, not-in, match, starts-with, ends-with";

impl Comparison {
    /// The comparison a name (`eq`, `not-in`, …) stands for.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "eq" => Self::Eq,
            "neq" => Self::Neq,
            "gt" => Self::Gt,
            "gte" => Self::Gte,
            "lt" => Self::Lt,
            "lte" => Self::Lte,
            "in" => Self::In,
            "not-in" => Self::NotIn,
            "match" => Self::Match,
            "starts-with" => Self::StartsWith,
            "ends-with" => Self::EndsWith,
            _ => return None,
        })
    }
}

fn error(message: String) -> BindingError {
    BindingError::new(message)
}

/// The operator a mapping is, if it is one (the original's order: a lone `?`, a lone `+`, then
/// any mapping with a `*` key, then any with a `|` key).
pub fn compile(map: &Map<String, Value>) -> Result<Option<Operator>, BindingError> {
    if map.len() == 1 {
        if let Some(conditions) = map.get("?") {
            return Ok(Some(Operator::Choose(Choice::compile(conditions)?)));
        }
        if let Some(parts) = map.get("+") {
            return Ok(Some(Operator::Join(Binding::compile(parts)?)));
        }
    }
    fn rest<'m>(
        map: &'m Map<String, Value>,
        operator: &'static str,
    ) -> impl Iterator<Item = (&'m String, &'m Value)> {
        map.iter().filter(move |(key, _)| key.as_str() != operator)
    }
    if let Some(source) = map.get("*") {
        let (source, filter) = match source {
            Value::Object(spec) => {
                if let Some(key) = spec.keys().find(|k| *k != "input" && *k != "where") {
                    return Err(error(format!(
                        "`*`: a mapping as the source takes `input` and `where`, not `{key}`"
                    )));
                }
                let input = spec.get("input").ok_or_else(|| {
                    error("`*`: a mapping as the source needs `input` (the list)".into())
                })?;
                let filter = spec.get("where").map(Filter::compile).transpose()?;
                (Binding::compile(input)?, filter)
            }
            other => (Binding::compile(other)?, None),
        };
        let template = rest(map, "*")
            .map(|(key, value)| Entry::compile(key, value))
            .collect::<Result<_, _>>()?;
        return Ok(Some(Operator::Each {
            source,
            filter,
            template,
        }));
    }
    if let Some(source) = map.get("|") {
        let template: Vec<(String, Binding)> = rest(map, "|")
            .map(|(key, value)| Ok((key.clone(), Binding::compile(value)?)))
            .collect::<Result<_, BindingError>>()?;
        if template.is_empty() {
            return Err(error(
                "`|` (split) needs at least one output field beside it".into(),
            ));
        }
        return Ok(Some(Operator::Split {
            source: Binding::compile(source)?,
            template,
        }));
    }
    Ok(None)
}

impl Choice {
    pub fn compile(conditions: &Value) -> Result<Self, BindingError> {
        let list = match conditions {
            Value::Array(list) => list.as_slice(),
            single => std::slice::from_ref(single),
        };
        list.iter()
            .map(|condition| {
                let Value::Object(spec) = condition else {
                    return Err(error(format!(
                        "`?`: a condition is a mapping (input, operator, value, if_true, if_false), got {}",
                        a_type(condition)
                    )));
                };
                let known = ["input", "operator", "value", "if_true", "if_false"];
                if let Some(key) = spec.keys().find(|k| !known.contains(&k.as_str())) {
                    return Err(error(format!(
                        "`?`: a condition takes {}, not `{key}`",
                        known.join(", ")
                    )));
                }
                Ok(Branch {
                    test: Test::compile(spec, "?")?,
                    if_true: Binding::compile(spec.get("if_true").unwrap_or(&Value::Null))?,
                    if_false: spec.get("if_false").map(Binding::compile).transpose()?,
                })
            })
            .collect::<Result<_, _>>()
            .map(Choice)
    }

    pub fn render(&self, scope: &Scope) -> Result<Value, BindingError> {
        for branch in &self.0 {
            if branch.test.holds(scope)? {
                return branch.if_true.render(scope);
            }
            if let Some(if_false) = &branch.if_false {
                return if_false.render(scope);
            }
        }
        Ok(Value::Null)
    }

    pub fn collect<'a>(&'a self, out: &mut Vec<&'a super::ast::Expr>) {
        for branch in &self.0 {
            branch.test.collect(out);
            branch.if_true.collect(out);
            if let Some(if_false) = &branch.if_false {
                if_false.collect(out);
            }
        }
    }
}

impl Test {
    fn compile(spec: &Map<String, Value>, operator: &str) -> Result<Self, BindingError> {
        let comparison = match spec.get("operator") {
            None => Comparison::Eq,
            Some(Value::String(name)) => Comparison::parse(name).ok_or_else(|| {
                error(format!(
                    "`{operator}`: unknown operator `{name}` (one of {COMPARISONS})"
                ))
            })?,
            Some(other) => {
                return Err(error(format!(
                    "`{operator}`: the operator is a name ({COMPARISONS}), got {}",
                    a_type(other)
                )))
            }
        };
        let part = |key: &str| Binding::compile(spec.get(key).unwrap_or(&Value::Null));
        Ok(Test {
            input: part("input")?,
            comparison,
            value: part("value")?,
        })
    }

    fn holds(&self, scope: &Scope) -> Result<bool, BindingError> {
        compare(
            self.comparison,
            &*self.input.peek(scope)?,
            &*self.value.peek(scope)?,
        )
    }

    fn collect<'a>(&'a self, out: &mut Vec<&'a super::ast::Expr>) {
        self.input.collect(out);
        self.value.collect(out);
    }
}

impl Filter {
    /// Reads a `where`: a condition `{input, operator, value}`, or `all` / `any` of a list of
    /// them, or `not` of one.
    pub fn compile(spec: &Value) -> Result<Self, BindingError> {
        let Value::Object(map) = spec else {
            return Err(error(format!(
                "`where` is a mapping (a condition, or all / any / not), got {}",
                a_type(spec)
            )));
        };
        let list = |key: &str, items: &Value| match items {
            Value::Array(items) => items.iter().map(Filter::compile).collect(),
            other => Err(error(format!(
                "`where`: `{key}` takes a list of conditions, got {}",
                a_type(other)
            ))),
        };
        if let Some(items) = map.get("all") {
            return list("all", items).map(Filter::All);
        }
        if let Some(items) = map.get("any") {
            return list("any", items).map(Filter::Any);
        }
        if let Some(inner) = map.get("not") {
            return Ok(Filter::Not(Box::new(Filter::compile(inner)?)));
        }
        let known = ["input", "operator", "value"];
        if let Some(key) = map.keys().find(|k| !known.contains(&k.as_str())) {
            return Err(error(format!(
                "`where`: a condition takes input, operator and value, not `{key}`"
            )));
        }
        Ok(Filter::Test(Test::compile(map, "where")?))
    }

    /// Whether the item in `scope` (as `${item}`, `${index}`) passes.
    pub fn holds(&self, scope: &Scope) -> Result<bool, BindingError> {
        Ok(match self {
            Filter::All(all) => {
                for filter in all {
                    if !filter.holds(scope)? {
                        return Ok(false);
                    }
                }
                true
            }
            Filter::Any(any) => {
                for filter in any {
                    if filter.holds(scope)? {
                        return Ok(true);
                    }
                }
                false
            }
            Filter::Not(inner) => !inner.holds(scope)?,
            Filter::Test(test) => test.holds(scope)?,
        })
    }

    /// Its expressions, in order.
    pub fn collect<'a>(&'a self, out: &mut Vec<&'a super::ast::Expr>) {
        match self {
            Filter::All(all) | Filter::Any(all) => all.iter().for_each(|f| f.collect(out)),
            Filter::Not(inner) => inner.collect(out),
            Filter::Test(test) => test.collect(out),
        }
    }
}

impl Operator {
    pub fn render(&self, scope: &Scope) -> Result<Value, BindingError> {
        match self {
            Operator::Each {
                source,
                filter,
                template,
            } => {
                let items = match source.render(scope)? {
                    Value::Null => return Ok(Value::Array(Vec::new())),
                    Value::Array(items) => items,
                    other => {
                        return Err(error(format!(
                            "`*` maps over a list, got {}",
                            a_type(&other)
                        )))
                    }
                };
                if filter.is_none() && template.is_empty() {
                    return Ok(Value::Array(items));
                }
                let mut out = Vec::with_capacity(items.len());
                for (index, item) in items.into_iter().enumerate() {
                    if let Some(value) = self.each(item, index, scope)? {
                        out.push(value);
                    }
                }
                Ok(Value::Array(out))
            }
            Operator::Choose(choice) => choice.render(scope),
            Operator::Join(parts) => join(parts.render(scope)?),
            Operator::Split { source, template } => {
                let items = match source.render(scope)? {
                    Value::Null => Vec::new(),
                    Value::Array(items) => items,
                    other => {
                        return Err(error(format!("`|` splits a list, got {}", a_type(&other))))
                    }
                };
                let mut columns: Vec<Vec<Value>> =
                    vec![Vec::with_capacity(items.len()); template.len()];
                for (index, item) in items.iter().enumerate() {
                    let index = Value::from(index);
                    let inner = scope.clone().with("item", item).with("index", &index);
                    for ((_, field), column) in template.iter().zip(&mut columns) {
                        column.push(field.render(&inner)?);
                    }
                }
                Ok(Value::Object(
                    template
                        .iter()
                        .zip(columns)
                        .map(|((key, _), column)| (key.clone(), Value::Array(column)))
                        .collect(),
                ))
            }
        }
    }

    /// One element of a map (`*`): `None` when the filter leaves it out, else the template
    /// rendered with it as `${item}` (or the element itself, without a template). A map over
    /// a stream calls this for each chunk as it arrives.
    pub fn each(
        &self,
        item: Value,
        index: usize,
        scope: &Scope,
    ) -> Result<Option<Value>, BindingError> {
        let Operator::Each {
            filter, template, ..
        } = self
        else {
            return Ok(Some(item));
        };
        let index = Value::from(index);
        let inner = scope.clone().with("item", &item).with("index", &index);
        if let Some(filter) = filter {
            if !filter.holds(&inner)? {
                return Ok(None);
            }
        }
        if template.is_empty() {
            return Ok(Some(item));
        }
        Entry::render_all(template, &inner).map(Some)
    }

    /// How this operator takes `${source}` when that is a stream: a map over it, or a join
    /// with it among its parts (the parts before and after it).
    pub fn over_stream(&self, source: &str) -> Option<OverStream<'_>> {
        match self {
            Operator::Each { source: from, .. } if from.bare(source).is_some() => {
                Some(OverStream::Map)
            }
            Operator::Join(Binding::List(parts)) => {
                let at = parts.iter().position(|p| p.bare(source).is_some())?;
                Some(OverStream::Join {
                    before: &parts[..at],
                    after: &parts[at + 1..],
                })
            }
            _ => None,
        }
    }

    pub fn collect<'a>(&'a self, out: &mut Vec<&'a super::ast::Expr>) {
        match self {
            Operator::Each {
                source,
                filter,
                template,
            } => {
                source.collect(out);
                if let Some(filter) = filter {
                    filter.collect(out);
                }
                template.iter().for_each(|entry| entry.collect(out));
            }
            Operator::Choose(choice) => choice.collect(out),
            Operator::Join(parts) => parts.collect(out),
            Operator::Split { source, template } => {
                source.collect(out);
                template.iter().for_each(|(_, field)| field.collect(out));
            }
        }
    }
}

/// `+`: the parts without nulls, joined by the first one's kind; null when none is left.
fn join(parts: Value) -> Result<Value, BindingError> {
    let parts = match parts {
        Value::Null => return Ok(Value::Null),
        Value::Array(parts) => parts,
        other => {
            return Err(error(format!(
                "`+` joins a list of parts, got {}",
                a_type(&other)
            )))
        }
    };
    let mut parts = parts.into_iter().filter(|part| !part.is_null()).peekable();
    let Some(first) = parts.peek() else {
        return Ok(Value::Null);
    };
    let (mut joined, kind) = match first {
        Value::String(_) => (Value::String(String::new()), "text"),
        Value::Array(_) => (Value::Array(Vec::new()), "list"),
        Value::Object(_) => (Value::Object(Map::new()), "mapping"),
        other => {
            return Err(error(format!(
                "`+` joins texts, lists or mappings, not {}",
                a_type(other)
            )))
        }
    };
    for part in parts {
        match (&mut joined, part) {
            (Value::String(text), Value::String(piece)) => text.push_str(&piece),
            (Value::Array(list), Value::Array(items)) => list.extend(items),
            (Value::Object(map), Value::Object(entries)) => map.extend(entries),
            (_, other) => {
                return Err(error(format!(
                    "`+` cannot join {} to {kind}s",
                    a_type(&other)
                )))
            }
        }
    }
    Ok(joined)
}

impl Comparison {
    /// Whether `input <self> value` holds (see [`compare`]).
    pub fn holds(self, input: &Value, value: &Value) -> Result<bool, BindingError> {
        compare(self, input, value)
    }
}

/// Whether `input OPERATOR value` holds. Numbers compare as numbers (`1` equals `1.0`); order
/// is defined between two numbers or two texts only.
fn compare(comparison: Comparison, input: &Value, value: &Value) -> Result<bool, BindingError> {
    use std::cmp::Ordering;
    let order = || -> Result<Ordering, BindingError> {
        match (input, value) {
            (Value::Number(a), Value::Number(b)) => a
                .as_f64()
                .zip(b.as_f64())
                .and_then(|(a, b)| a.partial_cmp(&b))
                .ok_or_else(|| error("cannot order these numbers".into())),
            (Value::String(a), Value::String(b)) => Ok(a.cmp(b)),
            (a, b) => Err(error(format!(
                "cannot order {} and {}",
                a_type(a),
                a_type(b)
            ))),
        }
    };
    let contains = || -> Result<bool, BindingError> {
        match value {
            Value::Array(items) => Ok(items.iter().any(|item| equal(input, item))),
            Value::String(text) => match input {
                Value::String(part) => Ok(text.contains(part.as_str())),
                other => Err(error(format!(
                    "`in` a text needs a text, got {}",
                    a_type(other)
                ))),
            },
            Value::Object(map) => match input {
                Value::String(key) => Ok(map.contains_key(key)),
                other => Err(error(format!(
                    "`in` a mapping needs a key (a text), got {}",
                    a_type(other)
                ))),
            },
            other => Err(error(format!(
                "`in` needs a list, a text or a mapping, got {}",
                a_type(other)
            ))),
        }
    };
    let texts = |name: &str| match (input, value) {
        (Value::String(a), Value::String(b)) => Ok((a.as_str(), b.as_str())),
        _ => Err(error(format!(
            "`{name}` compares texts, got {} and {}",
            a_type(input),
            a_type(value)
        ))),
    };
    Ok(match comparison {
        Comparison::Eq => equal(input, value),
        Comparison::Neq => !equal(input, value),
        Comparison::Gt => order()? == Ordering::Greater,
        Comparison::Gte => order()? != Ordering::Less,
        Comparison::Lt => order()? == Ordering::Less,
        Comparison::Lte => order()? != Ordering::Greater,
        Comparison::In => contains()?,
        Comparison::NotIn => !contains()?,
        Comparison::Match => {
            let (text, pattern) = texts("match")?;
            // Anchored at the start, as Python's `re.match`.
            let regex = regex::Regex::new(&format!("^(?:{pattern})"))
                .map_err(|err| error(format!("`match`: invalid pattern: {err}")))?;
            regex.is_match(text)
        }
        Comparison::StartsWith => {
            let (text, prefix) = texts("starts-with")?;
            text.starts_with(prefix)
        }
        Comparison::EndsWith => {
            let (text, suffix) = texts("ends-with")?;
            text.ends_with(suffix)
        }
    })
}

/// Equality as the original's `==` sees it: numbers by value (`1 == 1.0`), `"1" != 1`.
pub fn equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => x == y,
            _ => x.as_f64() == y.as_f64(),
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| equal(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(key, value)| y.get(key).is_some_and(|other| equal(value, other)))
        }
        _ => a == b,
    }
}
