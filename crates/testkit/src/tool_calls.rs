//! The providers' mock models that call tools, for agents, in OpenAI's and Anthropic's wire
//! formats. A prompt line `CALL [{"name": …, "arguments": {…}}, …]` calls those tools (ids
//! `call_<turn>_<k>`, `toolu_<turn>_<k>`) until their results are in (a line `ALWAYS […]`
//! calls them every turn); then the model answers `Done: ` and the results, joined by `; `.
//! Streamed, a call's arguments come in two pieces, as the providers send them.

use serde_json::{json, Value};

/// The calls a prompt asks for this turn, as `(name, arguments)`.
fn wanted(prompt: &str, answered: bool) -> Option<Vec<(Value, Value)>> {
    // The line that asks, wherever it is in the prompt.
    let line = |word: &str| {
        let at = prompt.find(word)? + word.len();
        prompt[at..].lines().next()
    };
    let (always, calls) = match (line("CALL "), line("ALWAYS ")) {
        (Some(calls), _) => (false, calls),
        (_, Some(calls)) => (true, calls),
        _ => return None,
    };
    if answered && !always {
        return None;
    }
    let calls: Vec<Value> = serde_json::from_str(calls).ok()?;
    Some(
        calls
            .into_iter()
            .map(|call| (call["name"].clone(), call["arguments"].clone()))
            .collect(),
    )
}

/// How many times the model has answered so far.
fn turn(body: &Value) -> usize {
    let messages = body["messages"].as_array().cloned().unwrap_or_default();
    messages.iter().filter(|m| m["role"] == "assistant").count()
}

/// Halves of a text, cut at a character boundary.
fn halves(text: &str) -> (&str, &str) {
    let mut at = text.len() / 2;
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    text.split_at(at)
}

/// OpenAI: the assistant message calling the tools the prompt asks for, if any.
pub(crate) fn openai_turn(body: &Value) -> Option<Value> {
    let prompt = super::providers::last_prompt(body);
    let calls = wanted(&prompt, openai_results(body).is_some())?;
    let turn = turn(body);
    let calls: Vec<Value> = calls
        .iter()
        .enumerate()
        .map(|(k, (name, arguments))| {
            json!({"id": format!("call_{turn}_{k}"), "type": "function", "function": {
                "name": name, "arguments": arguments.to_string()}})
        })
        .collect();
    Some(json!({"role": "assistant", "content": null, "tool_calls": calls}))
}

/// OpenAI: tool calls as it streams them: each call's id and name first, its arguments'
/// text in two pieces, then why it stopped.
pub(crate) fn openai_streamed(message: &Value) -> impl Iterator<Item = String> {
    let chunk = |delta: Value, finish: Value| {
        json!({"id": "chatcmpl-mock", "object": "chat.completion.chunk", "model": "gpt-4o",
               "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
        .to_string()
    };
    let mut events = vec![chunk(
        json!({"role": "assistant", "content": null}),
        Value::Null,
    )];
    let calls = message["tool_calls"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for (index, call) in calls.iter().enumerate() {
        let arguments = call["function"]["arguments"].as_str().unwrap_or("{}");
        events.push(chunk(
            json!({"tool_calls": [{"index": index, "id": call["id"], "type": "function",
                                   "function": {"name": call["function"]["name"], "arguments": ""}}]}),
            Value::Null,
        ));
        let (first, rest) = halves(arguments);
        for piece in [first, rest] {
            events.push(chunk(
                json!({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}),
                Value::Null,
            ));
        }
    }
    events.push(chunk(json!({}), json!("tool_calls")));
    events.push("[DONE]".to_string());
    events.into_iter()
}

/// OpenAI: the contents of the `tool` messages that end the conversation, joined by `; `.
pub(crate) fn openai_results(body: &Value) -> Option<String> {
    let messages = body["messages"].as_array()?;
    let results: Vec<String> = messages
        .iter()
        .rev()
        .take_while(|m| m["role"] == "tool")
        .map(|m| m["content"].as_str().unwrap_or_default().to_string())
        .collect();
    (!results.is_empty()).then(|| results.into_iter().rev().collect::<Vec<_>>().join("; "))
}

/// Anthropic: the text of the last user message that says something (not a tool's result).
pub(crate) fn anthropic_prompt(body: &Value) -> String {
    let messages = body["messages"].as_array().cloned().unwrap_or_default();
    let texts = messages.iter().rev().filter(|m| m["role"] == "user");
    for message in texts {
        match &message["content"] {
            Value::String(text) => return text.clone(),
            Value::Array(blocks) => {
                let text = blocks.iter().find(|b| b["type"] == "text");
                if let Some(text) = text.and_then(|b| b["text"].as_str()) {
                    return text.to_string();
                }
            }
            _ => {}
        }
    }
    String::new()
}

/// Anthropic: the results in the `tool_result` blocks of the user messages that end the
/// conversation, joined by `; `.
pub(crate) fn anthropic_results(body: &Value) -> Option<String> {
    let messages = body["messages"].as_array()?;
    let is_result = |b: &Value| b["type"] == "tool_result";
    let mut results: Vec<String> = Vec::new();
    for message in messages.iter().rev() {
        let blocks = message["content"].as_array().filter(|b| !b.is_empty());
        let Some(blocks) = blocks.filter(|b| message["role"] == "user" && b.iter().all(is_result))
        else {
            break;
        };
        for block in blocks.iter().rev() {
            results.push(match &block["content"] {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            });
        }
    }
    results.reverse();
    (!results.is_empty()).then(|| results.join("; "))
}

/// Anthropic: the `tool_use` blocks calling the tools the prompt asks for, if any.
pub(crate) fn anthropic_turn(body: &Value) -> Option<Vec<Value>> {
    let calls = wanted(&anthropic_prompt(body), anthropic_results(body).is_some())?;
    let turn = turn(body);
    Some(
        calls
            .into_iter()
            .enumerate()
            .map(|(k, (name, input))| {
                json!({"type": "tool_use", "id": format!("toolu_{turn}_{k}"), "name": name,
                       "input": input})
            })
            .collect(),
    )
}

/// Anthropic: `tool_use` blocks as it streams them (`event:` lines): each block's start with
/// its id and name, its input's JSON in two `input_json_delta` pieces, its stop.
pub(crate) fn anthropic_streamed(blocks: &[Value]) -> impl Iterator<Item = String> {
    let event = |name: &str, data: Value| format!("event: {name}\ndata: {data}\n\n");
    let mut events = vec![event(
        "message_start",
        json!({"type": "message_start", "message": {"id": "msg_mock", "usage": {"input_tokens": 5, "output_tokens": 1}}}),
    )];
    for (index, block) in blocks.iter().enumerate() {
        let start =
            json!({"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}});
        events.push(event(
            "content_block_start",
            json!({"type": "content_block_start", "index": index, "content_block": start}),
        ));
        let input = block["input"].to_string();
        let (first, rest) = halves(&input);
        for piece in [first, rest] {
            events.push(event(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": index,
                       "delta": {"type": "input_json_delta", "partial_json": piece}}),
            ));
        }
        events.push(event(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": index}),
        ));
    }
    events.push(event(
        "message_delta",
        json!({"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 1}}),
    ));
    events.push(event("message_stop", json!({"type": "message_stop"})));
    events.into_iter()
}
