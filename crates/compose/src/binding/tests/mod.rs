//! Table-driven tests of the binding language: every conformance vector of the spec's §2.11
//! (with D9 and D10 applied), the grammar's corner cases, paths, defaults and conversions.

use serde_json::{json, Value};

use super::*;
use crate::media::Blob;

/// The values of the spec's §2.11, plus a few more.
fn sources() -> (Value, Value, Value, Value, Value) {
    let input = json!({
        "prompt": "hi", "n": "3", "f": "2.5", "flag": "yes", "t": true,
        "obj": {"a": 1, "b": {"c": "x"}}, "js": "{\"k\": [1,2]}",
        "items": [{"name": "a"}, {"name": "b"}, {"name": "c"}],
        "none": null, "zero": 0, "empty": "", "fl": 0.1, "big": 10.0, "neg": -3,
        "한글": "값", "text": "line1\nline2",
        "b64": "aGVsbG8gd29ybGQ=", "b64json": "eyJrIjogMn0=",
        "uri": "data:text/plain;base64,aGk=", "pct": "data:,a%20b%7B",
        "audio": "data:audio/mpeg;name=a.mp3;base64,//uQ"
    });
    let response = json!({"choices": [{"delta": {"content": "tok"}}]});
    let jobs = json!({"j1": {"output": {"text": "J1"}}, "job-quote": {"output": {"quote": "Q"}}});
    let context = json!({"task_id": "t1"});
    let chunk = json!({"choices": [{"delta": {"content": "Hel"}}]});
    (input, response, jobs, context, chunk)
}

enum Want {
    Value(Value),
    /// An error whose message contains this text.
    Error(&'static str),
}

fn v(value: Value) -> Want {
    Want::Value(value)
}

fn s(text: &str) -> Want {
    Want::Value(Value::String(text.to_string()))
}

fn err(text: &'static str) -> Want {
    Want::Error(text)
}

fn cases() -> Vec<(&'static str, Want)> {
    vec![
        // §2.11 conformance vectors
        ("${input.prompt}", s("hi")),
        ("x ${input.prompt} y", s("x hi y")),
        ("${input.prompt}${input.n}", s("hi3")),
        ("${input.missing}", v(Value::Null)),
        ("a ${input.missing} b", s("a  b")),
        ("${input.missing | hello}", s("hello")),
        ("${input.missing | \"hello\"}", s("hello")), // D9: quotes stripped
        ("${input.missing | 0.7}", s("0.7")),
        ("${input.missing as number | 0.7}", v(json!(0.7))),
        ("${input.missing as integer | 5}", v(json!(5))),
        ("${input.missing as boolean | true}", v(json!(true))),
        ("${input.missing as json | {\"a\": 1}}", v(json!({"a": 1}))),
        ("${input.missing as list | [1,2]}", v(json!([1, 2]))),
        ("${input.none | d}", s("d")),
        ("${input.empty | d}", s("")),
        ("${input.zero | d}", v(json!(0))),
        ("${input.n as integer}", v(json!(3))),
        (
            "${input.f as integer}",
            err("cannot convert \"2.5\" to an integer"),
        ),
        ("${input.flag as boolean}", v(json!(false))),
        ("${input.t as boolean}", v(json!(true))),
        ("${input.n as boolean}", v(json!(false))),
        (
            "${input.obj as text}",
            s("{\"a\": 1, \"b\": {\"c\": \"x\"}}"),
        ),
        ("v=${input.obj}", s("v={\"a\":1,\"b\":{\"c\":\"x\"}}")), // D10: JSON spelling
        ("v=${input.t}", s("v=true")),                            // D10
        ("v=${input.big}", s("v=10.0")),
        ("${input.js as json}", v(json!({"k": [1, 2]}))),
        ("${input.obj as object/a,b.c}", v(json!({"a": 1, "c": "x"}))),
        ("${input.items[0].name}", s("a")),
        ("${input.items[-1].name}", s("c")),
        ("${input.items[5].name}", v(Value::Null)),
        ("${input.items[*].name}", v(json!(["a", "b", "c"]))),
        (
            "${input.items[1:3]}",
            v(json!([{"name": "b"}, {"name": "c"}])),
        ),
        ("${input.items[1:].name}", v(Value::Null)),
        ("${input.items.0}", v(Value::Null)),
        ("${input.prompt as base64}", s("aGk=")),
        (
            "${input.items as text[]}",
            v(json!([
                "{\"name\": \"a\"}",
                "{\"name\": \"b\"}",
                "{\"name\": \"c\"}"
            ])),
        ),
        (
            "${input.prompt as text[]}",
            err("`text[]` requires a list, got string"),
        ),
        ("${response.choices[0].delta.content}", s("tok")),
        ("${jobs.j1.output.text}", s("J1")),
        ("${env.HOME}", v(Value::Null)),
        ("${input.prompt as foo}", s("hi")),
        ("${input.prompt | x @(description Hello)}", s("hi")),
        // what does not fit the grammar stays verbatim
        ("${}", s("${}")),
        ("${1abc}", s("${1abc}")),
        ("${input.prompt b}", s("${input.prompt b}")),
        ("${input.prompt as}", s("${input.prompt as}")),
        (
            "${input.prompt as text extra}",
            s("${input.prompt as text extra}"),
        ),
        ("${input.prompt", s("${input.prompt")),
        ("${input.}", s("${input.}")),
        ("plain text", s("plain text")),
        ("", s("")),
        ("$${input.prompt}", s("$hi")),
        ("\\${input.prompt}", s("\\hi")),
        // whitespace
        ("${ input.prompt }", s("hi")),
        ("${\n  input.prompt\n}", s("hi")),
        ("${input.x|d}", s("d")),
        ("${input.x  |  d  }", s("d  ")),
        ("${ input.prompt as text | d }", s("hi")),
        // defaults
        ("${input.m | hello world }", s("hello world ")),
        ("${input.m | }", s(" ")),
        ("${input.m | a | b}", s("a | b")),
        ("${input.m | pre-${input.prompt}}", s("pre-hi")),
        ("${input.m | pre ${input.prompt}}", s("${input.m | pre hi}")),
        ("${input.x | ${input.y | deep}}", s("deep")),
        ("${x | 5 as number}", s("5 as number")),
        (
            "${input.x as number | 0.7 @(description Temp)}",
            v(json!(0.7)),
        ),
        ("${input.m | ${input.n}}", s("3")),
        ("${input.m | ${input.zero}}", v(json!(0))),
        ("${input.missing | \"gpt-4o\"}", s("gpt-4o")),
        ("${input.missing | 'single'}", s("single")),
        ("${input.missing | \"}", s("\"")),
        ("${input.missing as select/a,b,c | b}", s("b")),
        (
            "${input.missing as integer | abc}",
            err("cannot convert \"abc\" to an integer"),
        ),
        (
            "${input.missing as json | ${input.js}}",
            v(json!({"k": [1, 2]})),
        ),
        ("${input.prompt | x} and more}", s("hi")),
        ("${input.missing|d} ${input.prompt}", s("d hi")),
        ("${input.none as number | 1}", v(json!(1.0))),
        ("${input.items[1].name | z}", s("b")),
        ("${input.missing | a\\}b}", s("a\\}b")),
        // sources and indexes
        ("${input[0].prompt}", s("hi")),
        ("${context.task_id}", s("t1")),
        ("${context[0].task_id}", s("t1")),
        ("${jobs.j1.output}", v(json!({"text": "J1"}))),
        ("${jobs.job-quote.output.quote}", s("Q")),
        ("${response[].choices[0].delta.content}", s("Hel")),
        ("${response[0]}", v(Value::Null)),
        ("${unknown.x}", v(Value::Null)),
        // paths
        ("${input.items[-4]}", v(Value::Null)),
        ("${input.items[-3].name}", s("a")),
        ("${input.items[:1]}", v(json!([{"name": "a"}]))),
        (
            "${input.items[-2:]}",
            v(json!([{"name": "b"}, {"name": "c"}])),
        ),
        ("${input.items[5:]}", v(json!([]))),
        ("${input.items[2:1]}", v(json!([]))),
        ("${input.obj.b.c}", s("x")),
        ("${input.obj..b..c}", s("x")),
        ("${input.obj.a:b}", v(Value::Null)),
        ("${input.prompt.x}", v(Value::Null)),
        ("${input.obj.b[0]}", v(Value::Null)),
        (
            "${input.items[*]}",
            v(json!([{"name": "a"}, {"name": "b"}, {"name": "c"}])),
        ),
        ("${input.obj[*]}", v(Value::Null)),
        ("${input.한글}", s("값")),
        // whole-string values keep their type
        ("${input.zero}", v(json!(0))),
        ("${input.t}", v(json!(true))),
        ("${input.fl}", v(json!(0.1))),
        ("${input.obj}", v(json!({"a": 1, "b": {"c": "x"}}))),
        (" ${input.zero}", s(" 0")),
        // interpolation (D10)
        ("a${input.none}b", s("ab")),
        ("n=${input.fl}", s("n=0.1")),
        ("n=${input.neg}", s("n=-3")),
        ("b=${input.obj.b}", s("b={\"c\":\"x\"}")),
        ("l=${input.items[*].name}", s("l=[\"a\",\"b\",\"c\"]")),
        ("${input.text}!", s("line1\nline2!")),
        ("${input.prompt}\n${input.n}", s("hi\n3")),
        ("${input.prompt}${input.prompt}", s("hihi")),
        // conversions
        ("${input.neg as number}", v(json!(-3.0))),
        ("${input.neg as integer}", v(json!(-3))),
        ("${input.f as number}", v(json!(2.5))),
        ("${input.n as number}", v(json!(3.0))),
        ("${input.big as integer}", v(json!(10))),
        ("${input.fl as integer}", v(json!(0))),
        ("${input.t as integer}", v(json!(1))),
        ("${input.t as number}", v(json!(1.0))),
        (
            "${input.prompt as number}",
            err("cannot convert \"hi\" to a number"),
        ),
        ("${input.obj as number}", err("to a number")),
        (
            "${input.obj as list}",
            err("`list` requires a list, got mapping"),
        ),
        (
            "${input.items as object}",
            err("`object` requires a mapping, got list"),
        ),
        ("${input.js as object}", v(json!({"k": [1, 2]}))),
        (
            "${input.js as list}",
            err("`list` requires a list, got mapping"),
        ),
        ("${input.prompt as json}", err("invalid JSON")),
        ("${input.zero as boolean}", v(json!(false))),
        ("${input.n as string}", s("3")),
        ("${input.big as text}", s("10.0")),
        ("${input.t as text}", s("true")),
        (
            "${input.items as list}",
            v(json!([{"name": "a"}, {"name": "b"}, {"name": "c"}])),
        ),
        ("${input.none as number}", v(Value::Null)),
        ("${input.prompt as markdown}", s("hi")),
        (
            "${input.items[*].name as text[]}",
            v(json!(["a", "b", "c"])),
        ),
        (
            "${input.n as integer[]}",
            err("`integer[]` requires a list"),
        ),
        ("${input.obj as object/b.c}", v(json!({"c": "x"}))),
        (
            "${input.obj as object/a,missing}",
            v(json!({"a": 1, "missing": null})),
        ),
        (
            "${input.obj as object/a, missing}",
            s("${input.obj as object/a, missing}"),
        ),
        // Formats (§2.7): text is first turned into the bytes it names, then read as the type.
        ("${input.prompt as text;base64}", err("invalid base64")),
        ("${input.b64 as text;base64}", s("hello world")),
        ("${input.b64json as json;base64}", v(json!({"k": 2}))),
        ("${input.b64json as object;base64}", v(json!({"k": 2}))),
        ("${input.uri as text;data-uri}", s("hi")),
        ("${input.pct as text;data-uri}", s("a b{")),
        ("${input.prompt as text;data-uri}", err("not a data URI")),
        (
            "${input.zero as text;base64}",
            err("requires a string value, got integer"),
        ),
        (
            "${input.prompt as text;gzip}",
            err("unknown format `;gzip`"),
        ),
        // `;url` fetches: a render that can fetch is tested below; here nothing can.
        (
            "${input.prompt as text;url}",
            err("the `;url` format cannot fetch here"),
        ),
        ("${input.nothere as text;path}", v(Value::Null)),
        ("${input.prompt as text;path}", err("cannot read hi")),
        // A media value's base64 text is its bytes, typed by the subtype (kept as text only in
        // a terminal job's output: see below).
        ("${input.prompt as image;url}", err("cannot fetch here")),
        (
            "${input.b64 as audio/mp3;base64}",
            s("data:audio/mp3;base64,aGVsbG8gd29ybGQ="),
        ),
        (
            "${input.b64 as file;base64}",
            s("data:application/octet-stream;base64,aGVsbG8gd29ybGQ="),
        ),
        (
            "${input.uri as image/png;data-uri}",
            s("data:image/png;base64,aGk="),
        ),
        (
            "${input.b64 as image[];base64}",
            err("`image[]` requires a list"),
        ),
        // Bytes (a data URI) are read as text, base64 or JSON by their content.
        ("${input.uri as text}", s("hi")),
        ("${input.uri as base64}", s("aGk=")),
        ("${input.audio as base64}", s("//uQ")),
        (
            "${input.audio as audio}",
            s("data:audio/mpeg;name=a.mp3;base64,//uQ"),
        ),
        (
            "${input.audio}",
            s("data:audio/mpeg;name=a.mp3;base64,//uQ"),
        ),
        ("${input.pct as text}", s("data:,a%20b%7B")),
        ("${input.prompt as text @(description The prompt)}", s("hi")),
        ("x=${input.n as integer}", s("x=3")),
        ("${input.prompt as stream}", s("hi")),
        ("${input.prompt as stream/text}", s("hi")),
    ]
}

#[test]
fn conformance_table() {
    let (input, response, jobs, context, chunk) = sources();
    let scope = Scope::new()
        .with("input", &input)
        .with("response", &response)
        .with("response[]", &chunk)
        .with("jobs", &jobs)
        .with("context", &context);
    let cases = cases();
    assert!(cases.len() >= 100, "the table has {} cases", cases.len());
    assert_table(cases, &scope);
}

/// Renders every case against `scope`; all that do not give what they want, in one message.
fn assert_table(cases: Vec<(&str, Want)>, scope: &Scope) {
    let mut failures = Vec::new();
    for (text, want) in cases {
        let got = parse(text).render(scope);
        let ok = match (&want, &got) {
            (Want::Value(want), Ok(got)) => want == got,
            (Want::Error(part), Err(err)) => err.to_string().contains(part),
            _ => false,
        };
        if !ok {
            let want = match want {
                Want::Value(value) => format!("{value}"),
                Want::Error(part) => format!("error containing {part:?}"),
            };
            failures.push(format!("{text:?}: want {want}, got {got:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failing:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// `;base64` and `;data-uri` read as the type says, wherever the template renders (a terminal
/// job's output too): each result as the original 0.4.120's renderer gives it.
#[test]
fn formats_are_decoded_then_read_as_the_type_says() {
    let input = json!({
        "v": "MTIz", "t": "dHJ1ZQ==", "f": "ZmFsc2U=", "n": "NDIuNQ==", "txt": "aGVsbG8=",
        "j": "data:application/json;base64,eyJhIjogWzEsIG51bGxdfQ==",
        "jp": "data:,%7B%22b%22%3A2%7D", "l": ["aGk=", "dGhlcmU="],
        "obj": "eyJrIjogInYifQ==", "lst": "WzEsIDJd",
    });
    let scope = Scope::new().with("input", &input);
    assert_table(
        vec![
            ("${input.v as integer;base64}", v(json!(123))),
            ("${input.t as boolean;base64}", v(json!(true))),
            ("${input.f as boolean;base64}", v(json!(false))),
            ("${input.j as json;data-uri}", v(json!({"a": [1, null]}))),
            ("${input.jp as json;data-uri}", v(json!({"b": 2}))),
            ("${input.l as string[];base64}", v(json!(["hi", "there"]))),
            ("${input.n as number;base64}", v(json!(42.5))),
            ("${input.txt as text;base64}", s("hello")),
            ("${input.obj as object;base64}", v(json!({"k": "v"}))),
            ("${input.lst as list;base64}", v(json!([1, 2]))),
            ("${input.txt as base64;base64}", s("aGVsbG8=")),
            ("${input.txt as markdown;base64}", s("hello")),
            ("x ${input.v as integer;base64} y", s("x 123 y")),
            ("${input.jp as text;data-uri}", s("{\"b\":2}")),
        ],
        &scope,
    );
    let mapping = Binding::compile(&json!({"r": "${input.v as integer;base64}"})).unwrap();
    assert_eq!(mapping.render(&scope).unwrap(), json!({"r": 123}));
}

#[test]
fn url_bodies_are_wanted_then_read_once_fetched() {
    let input = json!({"page": "http://h/notes.txt", "pic": "http://h/cat", "js": "http://h/j"});
    let policy = Default::default();
    let fetched = Fetched::new(&policy);
    let scope = Scope::new().with("input", &input).fetching(&fetched);
    let template = parse("${input.page as text;url} / ${input.pic as image/png;url}");
    // First the URLs are noted, each once, and the value is left empty.
    assert_eq!(template.render(&scope).unwrap(), json!(" / "));
    assert_eq!(
        fetched.take_wanted(),
        [
            ("http://h/notes.txt".to_string(), false),
            ("http://h/cat".to_string(), false)
        ]
    );
    let blob = |media_type: &str, name: &str, bytes: &[u8]| Blob {
        media_type: media_type.into(),
        name: Some(name.into()),
        bytes: bytes.to_vec(),
    };
    fetched.insert(
        ("http://h/notes.txt".into(), false),
        blob("text/plain", "notes.txt", b"hello"),
    );
    fetched.insert(
        ("http://h/cat".into(), false),
        blob("application/octet-stream", "cat", b"\x89P"),
    );
    fetched.insert(
        ("http://h/j".into(), false),
        blob("application/json", "j", b"{\"k\": 1}"),
    );
    assert_table(
        vec![
            ("${input.page as text;url}", s("hello")),
            ("${input.page as base64;url}", s("aGVsbG8=")),
            ("${input.js as object;url}", v(json!({"k": 1}))),
            (
                "${input.page as image/png;url}",
                s("data:image/png;name=notes.txt;base64,aGVsbG8="),
            ),
            (
                "${input.page as file;url}",
                s("data:text/plain;name=notes.txt;base64,aGVsbG8="),
            ),
            (
                "${input.pic as image;url}",
                s("data:application/octet-stream;name=cat;base64,iVA="),
            ),
            (
                "${input.page as integer;url}",
                err("cannot convert \"hello\" to an integer"),
            ),
        ],
        &scope,
    );
    assert!(fetched.take_wanted().is_empty());
}

#[test]
fn a_callers_links_and_paths_are_marked_and_refused_as_the_policy_says() {
    let input = json!({"page": "http://h/notes.txt", "doc": "/etc/hostname"});
    let policy = Default::default();
    let fetched = Fetched::new(&policy);
    let config = ["page".to_string()];
    for (owner, caller) in [
        (Owner::Caller, true),
        (Owner::CallerBut(&[]), true),
        (Owner::CallerBut(&config), false),
        (Owner::Server, false),
    ] {
        let scope = Scope::new()
            .with_owned("input", &input, owner)
            .fetching(&fetched);
        parse("${input.page as text;url}").render(&scope).unwrap();
        assert_eq!(
            fetched.take_wanted(),
            [("http://h/notes.txt".to_string(), caller)],
            "{owner:?}"
        );
        let read = parse("${input.doc as text;path}").render(&scope);
        if caller {
            let err = read.unwrap_err();
            assert_eq!(
                err.refusal(),
                Some((
                    "input.doc",
                    "callers may not name files (controller.files.roots lists the \
                     directories they may)"
                ))
            );
        }
        // A default is the config's own text.
        parse("${input.nothere as text;url | http://h/default}")
            .render(&scope)
            .unwrap();
        assert_eq!(
            fetched.take_wanted(),
            [("http://h/default".to_string(), false)]
        );
    }
    // Without a policy at hand (a chunk of a stream), a caller's path is refused too.
    let scope = Scope::new().with_owned("input", &input, Owner::Caller);
    let err = parse("${input.doc as text;path}")
        .render(&scope)
        .unwrap_err();
    assert_eq!(err.refusal().map(|(what, _)| what), Some("input.doc"));
}

#[test]
fn two_adjacent_expressions_are_two_expressions() {
    // D8 of the reference HEAD: `${input}${input}` was one expression named `input}${input`.
    let template = parse("${input}${input}");
    assert_eq!(template.exprs().count(), 2);
    assert!(template.exprs().all(|e| e.source == "input"));
}

#[test]
fn expression_parts_are_kept_for_the_schema() {
    let template = parse("${input.temperature as number | 0.7 @(description How random)}");
    let expr = template.whole_expr().unwrap();
    assert_eq!(expr.source, "input");
    assert_eq!(expr.path_text.as_deref(), Some("temperature"));
    assert_eq!(expr.conversion.as_ref().unwrap().kind, "number");
    assert_eq!(expr.default_text.as_deref(), Some("0.7"));
    assert_eq!(
        expr.annotations,
        vec![Annotation {
            name: "description".into(),
            text: "How random".into()
        }]
    );
}

#[test]
fn conversion_parts() {
    let template = parse("${input.clip as audio[]/pcm[sample_rate=${input.sr},channels=1];base64}");
    let conversion = template.whole_expr().unwrap().conversion.clone().unwrap();
    assert_eq!(
        conversion,
        Conversion {
            kind: "audio".into(),
            list: true,
            subtype: Some("pcm".into()),
            attrs: Some("sample_rate=${input.sr},channels=1".into()),
            format: Some("base64".into()),
        }
    );
}

#[test]
fn stream_paths_and_sources() {
    let expr = parse("${response[].choices[0].delta.content}");
    let expr = expr.whole_expr().unwrap();
    assert_eq!(expr.source, "response[]");
    assert_eq!(
        expr.path,
        vec![
            Step::Key("choices".into()),
            Step::Index(0),
            Step::Key("delta".into()),
            Step::Key("content".into())
        ]
    );
}

#[test]
fn stream_encodings() {
    let text = |t: &str| parse(t).whole_expr().unwrap().conversion.clone().unwrap();
    assert_eq!(
        text("${output as stream}").stream_encoding(),
        Some(StreamEncoding::Text)
    );
    assert_eq!(
        text("${output as stream/text}").stream_encoding(),
        Some(StreamEncoding::Text)
    );
    assert_eq!(
        text("${output as sse-text}").stream_encoding(),
        Some(StreamEncoding::Text)
    );
    assert_eq!(
        text("${output as stream/json}").stream_encoding(),
        Some(StreamEncoding::Json)
    );
    assert_eq!(
        text("${output as sse-json}").stream_encoding(),
        Some(StreamEncoding::Json)
    );
    assert_eq!(text("${output as text}").stream_encoding(), None);

    use StreamEncoding::{Json, Text};
    assert_eq!(Text.encode(json!("Hello")), Some("Hello".into()));
    assert_eq!(
        Text.encode(json!(" world\nline2")),
        Some(" world\nline2".into())
    );
    assert_eq!(Text.encode(json!("")), None);
    assert_eq!(Text.encode(Value::Null), None);
    assert_eq!(Text.encode(json!(42)), Some("42".into()));
    assert_eq!(Json.encode(json!("one")), Some("\"one\"".into()));
    assert_eq!(
        Json.encode(json!({"a": 1, "b": [1, 2]})),
        Some("{\"a\": 1, \"b\": [1, 2]}".into())
    );
    assert_eq!(Json.encode(json!("")), Some("\"\"".into()));
}

#[test]
fn json_is_written_as_pythons_json_dumps_writes_it() {
    // What `json.dumps(value, ensure_ascii=False)` prints for the same value (Python 3.11).
    let value = json!({
        "a": [], "b": {}, "c": "é\n\"\u{1}\u{7f}\\ \u{2028}",
        "d": [1.5, -0.0, 10, null, true], "e": {"x": {"y": [{}]}}
    });
    assert_eq!(
        python_json(&value),
        "{\"a\": [], \"b\": {}, \"c\": \"é\\n\\\"\\u0001\u{7f}\\\\ \u{2028}\", \
         \"d\": [1.5, -0.0, 10, null, true], \"e\": {\"x\": {\"y\": [{}]}}}"
    );
}

#[test]
fn bindings_render_nested_values_and_keep_key_order() {
    let config = json!({
        "model": "gpt-4o",
        "messages": [{"role": "user", "content": "${input.prompt as text}"}],
        "temperature": "${input.temperature as number | 0.7}",
        "stream": true
    });
    let binding = Binding::compile(&config).unwrap();
    let input = json!({"prompt": "Hi"});
    let body = binding.render(&Scope::new().with("input", &input)).unwrap();
    assert_eq!(
        python_json(&body),
        r#"{"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}], "temperature": 0.7, "stream": true}"#
    );
    let names: Vec<_> = binding
        .exprs()
        .iter()
        .map(|e| e.path_text.clone().unwrap())
        .collect();
    assert_eq!(names, ["prompt", "temperature"]);
}

#[test]
fn a_list_element_written_dots_and_an_expression_splices_its_list() {
    let config = json!([
        {"role": "system", "content": "${input.system | Be brief.}"},
        "...${input.messages as list}",
        "...${input.none}",
        "last"
    ]);
    let binding = Binding::compile(&config).unwrap();
    let input = json!({"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]});
    let rendered = binding.render(&Scope::new().with("input", &input)).unwrap();
    assert_eq!(
        rendered,
        json!([
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello"},
            "last"
        ])
    );
    let not_a_list = json!({"system": "Hi"});
    let err = Binding::compile(&json!(["...${input.system}"]))
        .unwrap()
        .render(&Scope::new().with("input", &not_a_list))
        .unwrap_err();
    assert!(err.to_string().contains("needs a list"), "{err}");
    // Anything else with dots stays text.
    let text = Binding::compile(&json!(["... ${input.system}", "...x"])).unwrap();
    assert_eq!(
        text.render(&Scope::new().with("input", &json!({"system": "s"})))
            .unwrap(),
        json!(["... s", "...x"])
    );
}

/// The values the operator tests read.
mod operators;
mod properties;
