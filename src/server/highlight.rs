//! Syntax highlighting of code blocks, on the server (syntect's grammars, pure-Rust regexes):
//! spans with `hl-` classes that the stylesheet colours, in light and dark.

use std::sync::LazyLock;

use syntect::html::{ClassStyle, ClassedHTMLGenerator};
use syntect::parsing::SyntaxSet;
use syntect::util::LinesWithEndings;

static SYNTAXES: LazyLock<SyntaxSet> = LazyLock::new(SyntaxSet::load_defaults_newlines);

/// The code as HTML: highlighted when the language is known (by name or file extension),
/// else just escaped. Never fails: a grammar that cannot read the code leaves it plain.
pub fn to_html(language: &str, code: &str) -> String {
    let syntax = (!language.is_empty())
        .then(|| {
            SYNTAXES
                .find_syntax_by_token(language)
                .or_else(|| SYNTAXES.find_syntax_by_name(language))
        })
        .flatten();
    let Some(syntax) = syntax else {
        return plain(code);
    };
    let mut html = ClassedHTMLGenerator::new_with_class_style(
        syntax,
        &SYNTAXES,
        ClassStyle::SpacedPrefixed { prefix: "hl-" },
    );
    for line in LinesWithEndings::from(code) {
        if html
            .parse_html_for_line_which_includes_newline(line)
            .is_err()
        {
            return plain(code);
        }
    }
    html.finalize()
}

fn plain(code: &str) -> String {
    let mut out = String::with_capacity(code.len());
    let _ = pulldown_cmark_escape::escape_html_body_text(&mut out, code);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_languages_get_classes_and_the_rest_is_escaped() {
        let rust = to_html("rust", "fn main() { let x = \"<s>\"; } // done\n");
        assert!(
            rust.contains("hl-keyword") || rust.contains("hl-storage"),
            "{rust}"
        );
        assert!(rust.contains("hl-comment"), "{rust}");
        assert!(
            rust.contains("&lt;s&gt;") && !rust.contains("<s>"),
            "{rust}"
        );
        assert!(to_html("py", "def f(): pass\n").contains("hl-"));
        assert_eq!(to_html("nope", "<b>x</b>"), "&lt;b&gt;x&lt;/b&gt;");
        assert_eq!(to_html("", "a & b"), "a &amp; b");
    }
}
