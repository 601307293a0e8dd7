//! The `${...}` binding language: a parser producing an AST ([`ast`]), one evaluator, and the
//! type conversions. Config values that hold templates are compiled once into [`Binding`]
//! trees and rendered against a [`Scope`] each time they are needed.

pub mod ast;
mod convert;
mod eval;
pub mod extract;
mod fetched;
pub mod operators;
mod parser;
mod tree;

#[cfg(test)]
mod tests;

pub use ast::{Annotation, Conversion, Expr, Part, Step, Template};
pub use convert::{
    a_type, convert, interpolate_text, is_media, python_json, read_bool, to_text, with_article,
    BoolWords, StreamEncoding,
};
pub use eval::{Owner, Scope};
pub use fetched::{Fetched, Wanted};
pub use parser::{check, parse};
pub use tree::{Binding, Entry};

/// Why an expression could not be evaluated (a conversion that does not apply), or was not
/// let read what a caller's value names (`refused`, D32).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct BindingError {
    message: String,
    /// What a refused value was (`input.doc`), once known.
    refused: Option<String>,
}

impl BindingError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            refused: None,
        }
    }

    /// A caller's value that names what callers may not reach: why.
    pub(crate) fn refused(reason: impl Into<String>) -> Self {
        Self {
            message: reason.into(),
            refused: Some(String::new()),
        }
    }

    /// A refusal about the value `expr` reads.
    pub(super) fn naming(mut self, expr: &Expr) -> Self {
        if matches!(&self.refused, Some(what) if what.is_empty()) {
            self.refused = Some(expr.name());
        }
        self
    }

    /// What was refused, and why, when a caller's value named what callers may not reach.
    pub fn refusal(&self) -> Option<(&str, &str)> {
        self.refused
            .as_deref()
            .map(|what| (what, self.message.as_str()))
    }
}
