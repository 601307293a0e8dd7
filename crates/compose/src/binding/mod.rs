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
    convert, interpolate_text, is_media, python_json, read_bool, BoolWords, StreamEncoding,
};
pub use eval::Scope;
pub use fetched::Fetched;
pub use parser::{check, parse};
pub use tree::{Binding, Entry};

/// Why an expression could not be evaluated (a conversion that does not apply).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct BindingError {
    message: String,
}

impl BindingError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}
