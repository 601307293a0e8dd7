//! Properties of the parser and the evaluator over made-up templates.

use proptest::prelude::*;
use serde_json::json;

use super::super::*;

/// Text made mostly of the grammar's own characters, so that near-expressions are common.
fn template_text() -> impl Strategy<Value = String> {
    let pieces = prop::sample::select(vec![
        "${",
        "}",
        "input",
        ".",
        "prompt",
        "[",
        "]",
        "0",
        "-1",
        ":",
        "*",
        " as ",
        "text",
        "number",
        "json",
        "[]",
        "/",
        ";",
        "|",
        " ",
        "\"",
        "@(",
        "description ",
        ")",
        "\\",
        "\n",
        "é",
        "$",
        "{",
        "response[]",
        "x",
    ]);
    prop::collection::vec(pieces, 0..40).prop_map(|parts| parts.concat())
}

proptest! {
    #[test]
    fn parsing_and_rendering_never_panic(text in template_text(), noise in ".{0,40}") {
        let input = json!({"prompt": "hi", "n": 3, "items": [1, 2], "obj": {"a": null}});
        let scope = Scope::new().with("input", &input);
        for text in [text, noise] {
            let template = parse(&text);
            let _ = template.render(&scope);
            // Literal parts and expressions always account for the whole text.
            if template.is_literal() {
                prop_assert_eq!(template.render(&scope).unwrap(), serde_json::Value::String(text.clone()));
            }
        }
    }

    #[test]
    fn whole_expressions_keep_their_value(key in "[a-z][a-z0-9_]{0,8}", value in any::<i64>()) {
        let input = json!({ key.clone(): value });
        let scope = Scope::new().with("input", &input);
        let rendered = parse(&format!("${{input.{key}}}")).render(&scope).unwrap();
        prop_assert_eq!(rendered, json!(value));
    }
}
