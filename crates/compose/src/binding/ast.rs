//! The parsed form of `${...}` templates.

/// A string with zero or more `${...}` expressions in it.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    pub parts: Vec<Part>,
}

/// A piece of a template: literal text or one expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    Text(String),
    Expr(Box<Expr>),
}

/// One `${source[index].path as type | default @(annotation text)}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    /// The source name, with its `[]` suffix when written (`response[]`).
    pub source: String,
    /// An index or slice right after the source name.
    pub index: Option<Step>,
    /// The path as written, without its leading dot: names input variables in the schema.
    pub path_text: Option<String>,
    /// The path's steps, in order.
    pub path: Vec<Step>,
    pub conversion: Option<Conversion>,
    /// Used when the value is null; itself a template.
    pub default: Option<Template>,
    /// The default as written, for schema inference.
    pub default_text: Option<String>,
    pub annotations: Vec<Annotation>,
}

/// One step of a path.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// A mapping key (`.name`, also `.0`: keys are never list indexes).
    Key(String),
    /// `[n]` or `[-n]`: a list element, negative from the end.
    Index(i64),
    /// `[a:b]`, either side optional, Python-style.
    Slice(Option<i64>, Option<i64>),
    /// `[*]`: apply the rest of the path to every element.
    Wildcard,
}

/// `as TYPE[[]][/SUBTYPE[[ATTRS]]][;FORMAT]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Conversion {
    pub kind: String,
    /// The `[]` marker: convert every element of a list.
    pub list: bool,
    pub subtype: Option<String>,
    pub attrs: Option<String>,
    pub format: Option<String>,
}

/// `@(name text)`: metadata for the schema (the web UI shows `description`).
#[derive(Debug, Clone, PartialEq)]
pub struct Annotation {
    pub name: String,
    pub text: String,
}

impl Expr {
    /// Whether this expression, or one in its default, reads one of `sources` (`response[]`
    /// counts as `response`).
    pub fn reads(&self, sources: &[&str]) -> bool {
        sources.contains(&self.source.trim_end_matches("[]"))
            || self
                .default
                .as_ref()
                .is_some_and(|default| default.exprs().any(|expr| expr.reads(sources)))
    }
}

impl Template {
    /// The single expression when it spans the whole string: its value keeps its type.
    pub fn whole_expr(&self) -> Option<&Expr> {
        match self.parts.as_slice() {
            [Part::Expr(expr)] => Some(expr),
            _ => None,
        }
    }

    /// Every expression, in order.
    pub fn exprs(&self) -> impl Iterator<Item = &Expr> {
        self.parts.iter().filter_map(|part| match part {
            Part::Expr(expr) => Some(expr.as_ref()),
            Part::Text(_) => None,
        })
    }

    /// True when the string holds no expression at all.
    pub fn is_literal(&self) -> bool {
        self.exprs().next().is_none()
    }
}
