//! The structural operators (`...`, `*`, `?`, `+`, `|`): what they build, how they compare,
//! what a malformed one is, and what the schema sees in them.

use serde_json::{json, Value};

use super::super::*;

fn operator_input() -> Value {
    json!({
        "items": [{"name": "a", "n": 1}, {"name": "b", "n": 2}, {"name": "c", "n": 3}],
        "extra": {"x": 1, "y": 1},
        "none": null,
        "flag": "on",
        "words": ["hi", "there"],
        "one": 1.0
    })
}

fn rendered(config: Value) -> Result<Value, String> {
    let binding = Binding::compile(&config).map_err(|e| format!("compile: {e}"))?;
    let input = operator_input();
    binding
        .render(&Scope::new().with("input", &input))
        .map_err(|e| e.to_string())
}

#[test]
fn structural_operators_build_values() {
    let cases: Vec<(&str, Value, Value)> = vec![
        // `...`: merge a mapping in place; later keys win; null adds nothing.
        (
            "merge",
            json!({"a": 0, "...": "${input.extra}", "y": 2}),
            json!({"a": 0, "x": 1, "y": 2}),
        ),
        (
            "merge null",
            json!({"...": "${input.none}", "k": 1}),
            json!({"k": 1}),
        ),
        (
            "merge, then a key wins",
            json!({"x": 5, "...": {"x": 6}}),
            json!({"x": 6}),
        ),
        // `*`: map over a list, with ${item} and ${index}.
        (
            "map",
            json!({"*": "${input.items}", "label": "${item.name}-${index}"}),
            json!([{"label": "a-0"}, {"label": "b-1"}, {"label": "c-2"}]),
        ),
        (
            "map without a template",
            json!({"*": "${input.words}"}),
            json!(["hi", "there"]),
        ),
        (
            "map over null",
            json!({"*": "${input.none}", "k": "${item}"}),
            json!([]),
        ),
        (
            "map with where",
            json!({"*": {"input": "${input.items}", "where": {"input": "${item.n}", "operator": "gt", "value": 1}}, "name": "${item.name}"}),
            json!([{"name": "b"}, {"name": "c"}]),
        ),
        (
            "where without a template keeps the items",
            json!({"*": {"input": "${input.items}", "where": {"input": "${item.name}", "value": "b"}}}),
            json!([{"name": "b", "n": 2}]),
        ),
        (
            "where all / any / not",
            json!({"*": {"input": "${input.items}", "where": {"all": [
                {"not": {"input": "${item.name}", "value": "a"}},
                {"any": [{"input": "${item.n}", "operator": "lte", "value": 2}, {"input": "${item.name}", "operator": "eq", "value": "zzz"}]}
            ]}}, "n": "${item.n}"}),
            json!([{"n": 2}]),
        ),
        (
            "a map's template merges and chooses too",
            json!({"*": "${input.items}", "...": {"fixed": true}, "?": {"input": "${index}", "value": 0, "if_true": {"first": true}}}),
            json!([{"fixed": true, "first": true}, {"fixed": true}, {"fixed": true}]),
        ),
        (
            "maps nest: the inner item is the inner element",
            json!({"*": [[1, 2], [3]], "sum": {"*": "${item}", "v": "${item}"}}),
            json!([{"sum": [{"v": 1}, {"v": 2}]}, {"sum": [{"v": 3}]}]),
        ),
        // `?`: the first true condition, else a false one's if_false, else null.
        (
            "conditional",
            json!({"?": {"input": "${input.flag}", "value": "on", "if_true": "yes", "if_false": "no"}}),
            json!("yes"),
        ),
        (
            "conditional, false",
            json!({"?": {"input": "${input.flag}", "value": "off", "if_true": "yes", "if_false": "no"}}),
            json!("no"),
        ),
        (
            "conditional, a list: the first that decides",
            json!({"?": [
                {"input": "${input.flag}", "value": "off", "if_true": "first"},
                {"input": "${input.flag}", "operator": "neq", "value": "off", "if_true": "second"},
                {"input": true, "if_true": "third"}
            ]}),
            json!("second"),
        ),
        (
            "conditional, none holds",
            json!({"?": {"input": 1, "value": 2, "if_true": "x"}}),
            Value::Null,
        ),
        (
            "conditional beside other keys merges its mapping",
            json!({"a": 1, "?": {"input": "${input.flag}", "value": "on", "if_true": {"b": 2}}}),
            json!({"a": 1, "b": 2}),
        ),
        (
            "conditional beside other keys, null adds nothing",
            json!({"a": 1, "?": {"input": "${input.flag}", "value": "off", "if_true": {"b": 2}}}),
            json!({"a": 1}),
        ),
        (
            "numbers compare by value",
            json!({"?": {"input": "${input.one}", "value": 1, "if_true": "equal"}}),
            json!("equal"),
        ),
        // `+`: join texts, lists, mappings; nulls left out.
        (
            "join texts",
            json!({"+": ["a", "${input.none}", "${input.flag}"]}),
            json!("aon"),
        ),
        (
            "join lists",
            json!({"+": ["${input.words}", ["!"]]}),
            json!(["hi", "there", "!"]),
        ),
        (
            "join mappings, the right wins",
            json!({"+": ["${input.extra}", {"y": 2}]}),
            json!({"x": 1, "y": 2}),
        ),
        ("join nothing", json!({"+": ["${input.none}"]}), Value::Null),
        // `|`: split a list into a mapping of lists.
        (
            "split",
            json!({"|": "${input.items}", "names": "${item.name}", "ns": "${item.n}"}),
            json!({"names": ["a", "b", "c"], "ns": [1, 2, 3]}),
        ),
        (
            "split null",
            json!({"|": "${input.none}", "names": "${item}"}),
            json!({"names": []}),
        ),
        // A mapping with `+` or `?` beside other keys is data (or a merge, for `?`).
        (
            "a plus beside other keys is data",
            json!({"+": 1, "b": 2}),
            json!({"+": 1, "b": 2}),
        ),
    ];
    let mut wrong = Vec::new();
    for (what, config, expected) in cases {
        match rendered(config) {
            Ok(value) if value == expected => {}
            other => wrong.push(format!("{what}: {other:?}, expected {expected}")),
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn every_comparison_has_its_meaning() {
    let holds = |input: Value, operator: &str, value: Value| {
        rendered(
            json!({"?": {"input": input, "operator": operator, "value": value, "if_true": true, "if_false": false}}),
        )
    };
    let cases = [
        (json!(2), "gt", json!(1), true),
        (json!(2), "gte", json!(2.0), true),
        (json!(1), "lt", json!(1.5), true),
        (json!("b"), "lte", json!("a"), false),
        (json!("b"), "in", json!(["a", "b"]), true),
        (json!(1), "in", json!([1.0]), true),
        (json!("ell"), "in", json!("hello"), true),
        (json!("k"), "in", json!({"k": 0}), true),
        (json!("z"), "not-in", json!(["a"]), true),
        (json!("abc-123"), "match", json!("[a-z]+-\\d+"), true),
        (json!("x abc"), "match", json!("abc"), false),
        (json!("hello"), "starts-with", json!("he"), true),
        (json!("hello"), "ends-with", json!("lo"), true),
        (json!({"a": [1]}), "eq", json!({"a": [1.0]}), true),
    ];
    for (input, operator, value, expected) in cases {
        let what = format!("{input} {operator} {value}");
        assert_eq!(holds(input, operator, value), Ok(json!(expected)), "{what}");
    }
    for (input, operator, value, message) in [
        (
            json!("a"),
            "gt",
            json!(1),
            "cannot order a string and an integer",
        ),
        (
            json!(1),
            "in",
            json!(5),
            "`in` needs a list, a text or a mapping",
        ),
        (json!("a"), "match", json!("("), "`match`: invalid pattern"),
        (
            json!(1),
            "starts-with",
            json!("1"),
            "`starts-with` compares texts",
        ),
    ] {
        let err = holds(input, operator, value).unwrap_err();
        assert!(err.contains(message), "{err}");
    }
}

#[test]
fn malformed_operators_are_errors_never_data() {
    let compile_errors = [
        (json!({"?": 3}), "`?`: a condition is a mapping"),
        (
            json!({"?": {"input": 1, "then": 2}}),
            "`?`: a condition takes input, operator, value, if_true, if_false, not `then`",
        ),
        (
            json!({"?": {"input": 1, "operator": "like"}}),
            "unknown operator `like`",
        ),
        (
            json!({"?": {"input": 1, "operator": 3}}),
            "the operator is a name",
        ),
        (json!({"*": {"where": {}}}), "needs `input`"),
        (
            json!({"*": {"input": [], "filter": {}}}),
            "takes `input` and `where`, not `filter`",
        ),
        (
            json!({"*": {"input": [], "where": {"all": 1}}}),
            "`all` takes a list of conditions",
        ),
        (
            json!({"*": {"input": [], "where": {"input": 1, "if_true": 2}}}),
            "not `if_true`",
        ),
        (json!({"|": []}), "needs at least one output field"),
        (
            json!({"outer": [{"?": "x"}]}),
            "`?`: a condition is a mapping",
        ),
    ];
    for (config, message) in compile_errors {
        let err = Binding::compile(&config).unwrap_err().to_string();
        assert!(err.contains(message), "{config}: {err}");
    }
    let render_errors = [
        (json!({"...": "${input.words}"}), "`...` merges a mapping"),
        (
            json!({"a": 1, "?": {"input": 1, "value": 1, "if_true": "x"}}),
            "`?` beside other keys merges a mapping",
        ),
        (
            json!({"*": "${input.flag}", "k": 1}),
            "`*` maps over a list, got a string",
        ),
        (
            json!({"|": "${input.extra}", "k": 1}),
            "`|` splits a list, got a mapping",
        ),
        (
            json!({"+": "${input.flag}"}),
            "`+` joins a list of parts, got a string",
        ),
        (
            json!({"+": ["a", ["b"]]}),
            "`+` cannot join a list to texts",
        ),
        (
            json!({"+": [1, 2]}),
            "`+` joins texts, lists or mappings, not an integer",
        ),
    ];
    for (config, message) in render_errors {
        let err = rendered(config.clone()).unwrap_err();
        assert!(err.contains(message), "{config}: {err}");
    }
}

#[test]
fn expressions_inside_operators_are_seen_by_the_schema() {
    let binding = Binding::compile(&json!({
        "*": {"input": "${input.items as list}", "where": {"input": "${item.n}", "value": "${input.n as integer}"}},
        "...": "${input.extra as object}",
        "?": {"input": "${input.flag}", "if_true": {"k": "${input.k}"}}
    }))
    .unwrap();
    let names: Vec<String> = binding
        .exprs()
        .iter()
        .filter(|e| e.source == "input")
        .map(|e| e.path_text.clone().unwrap())
        .collect();
    assert_eq!(names, ["items", "n", "extra", "flag", "k"]);
}

#[test]
fn what_a_binding_reads_includes_defaults_and_operators() {
    let reads = |config: Value| {
        Binding::compile(&config)
            .unwrap()
            .reads(&["input", "context"])
    };
    assert!(!reads(json!("${response[].choices[0].delta.content}")));
    assert!(!reads(json!({"text": "${response.text as text}", "n": 3})));
    assert!(reads(json!("${response[].x | ${input.fallback}}")));
    assert!(reads(json!(
        "${response[].x | ${response[].y | ${context.run_id}}}"
    )));
    assert!(reads(
        json!({"answer": "${response.text}", "asked": "${input.prompt}"})
    ));
    assert!(reads(json!({
        "*": {"input": "${response[]}", "where": {"input": "${item.n}", "value": "${input.n}"}}
    })));
}
