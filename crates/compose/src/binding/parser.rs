//! The `${...}` grammar (spec §2.2), as a hand-written recursive-descent parser.
//!
//! Matching follows the original's regular expression: leftmost-first, non-overlapping,
//! and an expression that does not fit the grammar stays in the string verbatim. Two
//! deliberate differences: a source name cannot contain `}` (as in 0.4.120, fixing
//! `${a}${b}`), and a type name cannot contain `|`, so `${x as number|0.7}` has a default.

use super::ast::{Annotation, Conversion, Expr, Part, Step, Template};

/// Parses a string into literal text and expressions. Never fails: what does not parse is text.
pub fn parse(text: &str) -> Template {
    let mut parts = Vec::new();
    let mut literal_start = 0;
    let mut search_from = 0;
    while let Some(offset) = text[search_from..].find("${") {
        let start = search_from + offset;
        match Cursor::new(text, start + 2).expr() {
            Some((expr, end)) => {
                if start > literal_start {
                    parts.push(Part::Text(text[literal_start..start].to_string()));
                }
                parts.push(Part::Expr(Box::new(expr)));
                literal_start = end;
                search_from = end;
            }
            None => search_from = start + 1,
        }
    }
    if literal_start < text.len() || parts.is_empty() {
        parts.push(Part::Text(text[literal_start..].to_string()));
    }
    Template { parts }
}

/// Checks every `${...}` of a string: each must be a whole expression (where [`parse`] would
/// keep it as text), with a known type, and its default must check too.
pub fn check(text: &str) -> Result<(), String> {
    let mut search_from = 0;
    while let Some(offset) = text[search_from..].find("${") {
        let start = search_from + offset;
        let Some((expr, end)) = Cursor::new(text, start + 2).expr() else {
            let snippet: String = text[start..].chars().take(40).collect();
            return Err(format!(
                "`{snippet}` is not a valid ${{...}} expression (${{source.path as type | default}})"
            ));
        };
        if let Some(conversion) = &expr.conversion {
            if !super::convert::is_known_type(&conversion.kind) {
                return Err(format!(
                    "`{}`: unknown type `{}` (known: {})",
                    &text[start..end],
                    conversion.kind,
                    super::convert::KNOWN_TYPES.join(", ")
                ));
            }
        }
        if let Some(default) = &expr.default_text {
            check(default)?;
        }
        search_from = end;
    }
    Ok(())
}

/// Tokens of a path (spec §2.4): identifiers, `[n]`, `[a:b]`, `[*]`; anything else is a separator.
pub fn path_steps(path: &str) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut chars = path.char_indices().peekable();
    let mut ident = String::new();
    while let Some((at, c)) = chars.next() {
        if is_ident_char(c) {
            ident.push(c);
            continue;
        }
        if !ident.is_empty() {
            steps.push(Step::Key(std::mem::take(&mut ident)));
        }
        if c == '[' {
            if let Some(close) = path[at..].find(']') {
                if let Some(step) = bracket(&path[at + 1..at + close]) {
                    steps.push(step);
                    while chars.peek().is_some_and(|(i, _)| *i <= at + close) {
                        chars.next();
                    }
                }
            }
        }
    }
    if !ident.is_empty() {
        steps.push(Step::Key(ident));
    }
    steps
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '-'
}

/// The inside of `[...]`: an integer, a slice or `*`.
fn bracket(inner: &str) -> Option<Step> {
    if inner == "*" {
        return Some(Step::Wildcard);
    }
    if let Some((from, to)) = inner.split_once(':') {
        return Some(Step::Slice(bound(from)?, bound(to)?));
    }
    int(inner).map(Step::Index)
}

fn bound(text: &str) -> Option<Option<i64>> {
    if text.is_empty() {
        Some(None)
    } else {
        int(text).map(Some)
    }
}

fn int(text: &str) -> Option<i64> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// A position in the text being parsed.
#[derive(Clone, Copy)]
struct Cursor<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(text: &'a str, pos: usize) -> Self {
        Self { text, pos }
    }

    fn rest(&self) -> &'a str {
        &self.text[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn eat(&mut self, prefix: &str) -> bool {
        let found = self.rest().starts_with(prefix);
        if found {
            self.pos += prefix.len();
        }
        found
    }

    fn skip_ws(&mut self) -> usize {
        let start = self.pos;
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += self.peek().map_or(0, char::len_utf8);
        }
        self.pos - start
    }

    /// Consumes characters while `keep` holds; returns them.
    fn take_while(&mut self, keep: impl Fn(char) -> bool) -> &'a str {
        let start = self.pos;
        while let Some(c) = self.peek().filter(|c| keep(*c)) {
            self.pos += c.len_utf8();
        }
        &self.text[start..self.pos]
    }

    /// Whether the text here starts, after optional whitespace, with `prefix`.
    fn ahead_after_ws(&self, prefix: &str) -> bool {
        let mut probe = *self;
        probe.skip_ws();
        probe.rest().starts_with(prefix)
    }

    /// `expr` without its leading `${`; returns the expression and the end of its `}`.
    fn expr(mut self) -> Option<(Expr, usize)> {
        self.skip_ws();
        let source = self.source()?;
        let index = if self.peek() == Some('[') {
            Some(self.index()?)
        } else {
            None
        };
        let path_text = if self.eat(".") {
            let path = self.take_while(|c| !c.is_whitespace() && c != '|' && c != '}');
            if path.is_empty() {
                return None;
            }
            Some(path.to_string())
        } else {
            None
        };
        let conversion = self.conversion()?;
        let mut expr = Expr {
            source,
            index,
            path: path_text.as_deref().map(path_steps).unwrap_or_default(),
            path_text,
            conversion,
            default: None,
            default_text: None,
            annotations: Vec::new(),
        };
        let mut probe = self;
        probe.skip_ws();
        let (annotations, end) = if probe.eat("|") {
            let (default, annotations, end) = probe.default()?;
            expr.default = Some(parse(default));
            expr.default_text = Some(default.to_string());
            (annotations, end)
        } else {
            self.tail()?
        };
        expr.annotations = annotations;
        Some((expr, end))
    }

    /// `SOURCE`: a letter or `_`, then anything but `.`, `[`, `}` and whitespace; then `[]`.
    fn source(&mut self) -> Option<String> {
        let first = self.peek().filter(|c| c.is_alphabetic() || *c == '_')?;
        self.pos += first.len_utf8();
        let rest = self.take_while(|c| !matches!(c, '.' | '[' | '}') && !c.is_whitespace());
        let mut name = format!("{first}{rest}");
        if self.eat("[]") {
            name.push_str("[]");
        }
        Some(name)
    }

    /// `INDEX`: `[n]` or `[a:b]` right after the source name.
    fn index(&mut self) -> Option<Step> {
        let close = self.rest().find(']')?;
        let step = bracket(&self.rest()[1..close]).filter(|s| *s != Step::Wildcard)?;
        self.pos += close + 1;
        Some(step)
    }

    /// `CONV`: absent is `Some(None)`; a malformed one fails the whole expression.
    fn conversion(&mut self) -> Option<Option<Conversion>> {
        let mut probe = *self;
        if probe.skip_ws() == 0 || !probe.eat("as") || probe.skip_ws() == 0 {
            return Some(None);
        }
        let kind =
            probe.take_while(|c| !c.is_whitespace() && !matches!(c, '/' | ';' | '[' | '}' | '|'));
        if kind.is_empty() {
            return None;
        }
        let list = probe.eat("[]");
        let mut subtype = None;
        let mut attrs = None;
        if probe.eat("/") {
            let sub =
                probe.take_while(|c| !c.is_whitespace() && !matches!(c, ';' | '[' | '}' | '|'));
            if sub.is_empty() {
                return None;
            }
            subtype = Some(sub.to_string());
            if probe.peek() == Some('[') {
                attrs = Some(probe.attrs()?);
            }
        }
        let format = if probe.eat(";") {
            let format = probe.take_while(|c| !c.is_whitespace() && !matches!(c, '}' | '|'));
            if format.is_empty() {
                return None;
            }
            Some(format.to_string())
        } else {
            None
        };
        *self = probe;
        Some(Some(Conversion {
            kind: kind.to_string(),
            list,
            subtype,
            attrs,
            format,
        }))
    }

    /// `[ATTRS]`: anything up to `]`, where nested `${...}` may hold a `]`.
    fn attrs(&mut self) -> Option<String> {
        self.eat("[");
        let start = self.pos;
        loop {
            if self.rest().starts_with("${") {
                self.pos += self.rest().find('}')? + 1;
            } else if self.eat("]") {
                return Some(self.text[start..self.pos - 1].to_string());
            } else {
                self.pos += self.peek()?.len_utf8();
            }
        }
    }

    /// `DEFAULT` after its `|`, then the tail. The default is greedy and backtracks to the
    /// longest text that still lets the expression close, as the original's regex does.
    fn default(self) -> Option<(&'a str, Vec<Annotation>, usize)> {
        let after_bar = self.pos;
        let mut start = self;
        start.skip_ws();
        // Whitespace after `|` is skipped unless the default would otherwise be empty.
        let mut first = start.pos;
        loop {
            let mut cursor = Cursor::new(self.text, first);
            let ends = cursor.default_token_ends();
            for &end in ends.iter().rev() {
                if let Some((annotations, close)) = Cursor::new(self.text, end).tail() {
                    return Some((&self.text[first..end], annotations, close));
                }
            }
            if first == after_bar {
                return None;
            }
            first = self.text[..first].char_indices().next_back()?.0;
        }
    }

    /// The end of every token of a greedy run of default characters.
    fn default_token_ends(&mut self) -> Vec<usize> {
        let mut ends = Vec::new();
        loop {
            let rest = self.rest();
            if let Some(inner) = rest.strip_prefix("${") {
                match inner.find('}') {
                    Some(close) if close > 0 => self.pos += close + 3,
                    _ => break,
                }
            } else if rest.starts_with('\\') && rest[1..].starts_with(['$', '@', '{', '}']) {
                self.pos += 2;
            } else {
                match self.peek() {
                    None | Some('\n') => break,
                    Some(_) if self.ahead_after_ws("@(") || self.ahead_after_ws("${") => break,
                    Some(c) => self.pos += c.len_utf8(),
                }
            }
            ends.push(self.pos);
        }
        ends
    }

    /// `ANNOT* ws* }`: returns the annotations and the position after `}`.
    fn tail(mut self) -> Option<(Vec<Annotation>, usize)> {
        let mut annotations = Vec::new();
        loop {
            self.skip_ws();
            if !self.eat("@(") {
                break;
            }
            self.skip_ws();
            let name = self.take_while(|c| c.is_alphanumeric() || c == '_');
            if name.is_empty() || self.skip_ws() == 0 {
                return None;
            }
            let text = self.annotation_text()?;
            annotations.push(Annotation {
                name: name.to_string(),
                text,
            });
        }
        self.eat("}").then_some((annotations, self.pos))
    }

    /// An annotation's text: up to the first `)` that is followed by another annotation or `}`.
    fn annotation_text(&mut self) -> Option<String> {
        let start = self.pos;
        loop {
            if self.rest().starts_with('\\') {
                self.pos += 1;
            } else if self.rest().starts_with(')') && self.pos > start {
                let mut after = *self;
                after.pos += 1;
                if after.ahead_after_ws("@(") || after.ahead_after_ws("}") {
                    let text = self.text[start..self.pos].to_string();
                    self.pos += 1;
                    return Some(text);
                }
            } else if self.ahead_after_ws("${") {
                return None;
            }
            self.pos += self.peek()?.len_utf8();
        }
    }
}
