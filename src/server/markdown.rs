//! Answers as Markdown, rendered on the server (the browser gets HTML, so the WASM carries no
//! Markdown parser or highlighter), made safe, and split into blocks as they stream: a
//! finished block (a paragraph, a list, a fenced code block, a table) is rendered once and
//! never again, so that the page does not re-parse the whole answer at every token and what
//! the reader selected in an earlier block stays selected.
//!
//! Safe: raw HTML in the text is shown as text, never interpreted; links and images may only
//! point to http(s), mailto or relative URLs; links open in a new tab without giving it access
//! to this one; an image from another host is a placeholder naming the host, loaded (through
//! the server) only when the reader asks, so that an answer cannot send data anywhere by
//! being shown. Code blocks get a language label, a Copy button and syntax highlighting.

use pulldown_cmark::{html, CodeBlockKind, CowStr, Event, Options, Parser, Tag, TagEnd};

use super::highlight;

/// Renders `text` to HTML that is safe to insert into the page.
pub fn render(text: &str) -> String {
    let options =
        Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS;
    let mut code: Option<(String, String)> = None;
    // A remote image being read: its link and its text so far.
    let mut remote: Option<(String, String)> = None;
    let mut events = Vec::new();
    for event in Parser::new_ext(text, options) {
        if let Some((_, alt)) = remote.as_mut() {
            match event {
                Event::End(TagEnd::Image) => {
                    let (link, alt) = remote.take().unwrap_or_default();
                    events.push(Event::Html(remote_image(&link, &alt).into()));
                }
                Event::Text(text)
                | Event::Code(text)
                | Event::InlineHtml(text)
                | Event::Html(text) => alt.push_str(&text),
                _ => {}
            }
            continue;
        }
        if let Some((_, body)) = code.as_mut() {
            match event {
                Event::Text(text) => body.push_str(&text),
                Event::End(TagEnd::CodeBlock) => {
                    let (language, body) = code.take().unwrap_or_default();
                    events.push(Event::Html(code_block(&language, &body).into()));
                }
                _ => {}
            }
            continue;
        }
        events.push(match event {
            Event::Html(raw) | Event::InlineHtml(raw) => Event::Text(raw),
            Event::Start(Tag::CodeBlock(kind)) => {
                let language = match kind {
                    CodeBlockKind::Fenced(info) => {
                        info.split_whitespace().next().unwrap_or("").to_string()
                    }
                    CodeBlockKind::Indented => String::new(),
                };
                code = Some((language, String::new()));
                continue;
            }
            Event::Start(Tag::Link { dest_url, .. }) => {
                let href = safe_url(dest_url);
                let mut tag = String::from("<a href=\"");
                // Writing to a String cannot fail.
                let _ = pulldown_cmark_escape::escape_href(&mut tag, &href);
                tag.push_str("\" target=\"_blank\" rel=\"noopener noreferrer\">");
                Event::Html(tag.into())
            }
            Event::End(TagEnd::Link) => Event::Html("</a>".into()),
            Event::Start(Tag::Image { dest_url, .. }) if host_of(&dest_url).is_some() => {
                remote = Some((dest_url.to_string(), String::new()));
                continue;
            }
            Event::Start(Tag::Image {
                link_type,
                dest_url,
                title,
                id,
            }) => Event::Start(Tag::Image {
                link_type,
                dest_url: safe_url(dest_url),
                title,
                id,
            }),
            other => other,
        });
    }
    let mut out = String::with_capacity(text.len() * 3 / 2);
    html::push_html(&mut out, events.into_iter());
    out
}

/// The host of a link to another site (`http://host/…`, `//host/…`); `None` for this site's
/// own links (relative ones) and data.
fn host_of(link: &str) -> Option<&str> {
    let link = link.trim();
    let lower = link.to_ascii_lowercase();
    let rest = ["http://", "https://", "//"]
        .iter()
        .find(|scheme| lower.starts_with(*scheme))
        .map(|scheme| &link[scheme.len()..])?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit('@').next().unwrap_or_default();
    (!host.is_empty()).then_some(host)
}

/// A placeholder for an image from another host: its description, the host, and a button that
/// loads it (through the server, see `remote`); the page's script does that on click.
fn remote_image(link: &str, alt: &str) -> String {
    let attribute = |text: &str| {
        let mut out = String::new();
        let _ = pulldown_cmark_escape::escape_html(&mut out, text);
        out
    };
    let host = attribute(host_of(link).unwrap_or_default());
    let description = if alt.trim().is_empty() {
        String::new()
    } else {
        format!(
            "<span class=\"remote-image-alt\">{}</span> ",
            attribute(alt.trim())
        )
    };
    format!(
        "<span class=\"remote-image\" data-src=\"{}\" data-alt=\"{}\">{description}\
         <span class=\"remote-image-host\">Image from {host}</span> \
         <button type=\"button\" class=\"load-image\">Load image</button></span>",
        attribute(&super::remote::through_server(link)),
        attribute(alt.trim()),
    )
}

/// A code block: a header with its language and a Copy button, then the highlighted code.
fn code_block(language: &str, body: &str) -> String {
    let mut label = String::new();
    let _ = pulldown_cmark_escape::escape_html(&mut label, language);
    format!(
        "<div class=\"code-block\"><div class=\"code-head\"><span class=\"code-lang\">{}</span>\
         <button type=\"button\" class=\"code-copy\">Copy</button></div>\
         <pre><code class=\"language-{label}\">{}</code></pre></div>",
        if label.is_empty() { "text" } else { &label },
        highlight::to_html(language, body)
    )
}

fn safe_url(url: CowStr<'_>) -> CowStr<'_> {
    let lower = url.trim().to_ascii_lowercase();
    let has_scheme = lower
        .split(['/', '?', '#'])
        .next()
        .is_some_and(|head| head.contains(':'));
    let allowed = ["http:", "https:", "mailto:"]
        .iter()
        .any(|s| lower.starts_with(s));
    if has_scheme && !allowed {
        CowStr::Borrowed("#")
    } else {
        url
    }
}

/// An answer split into blocks as it streams in.
#[derive(Debug, Default)]
pub struct Blocks {
    /// The text not yet in a finished block.
    pending: String,
    /// How far into `pending` the lines have been looked at (always at a line's start).
    scanned: usize,
    /// The fence of an open code block: its character and length.
    fence: Option<(char, usize)>,
    /// Whether the block has had a line that is not blank.
    has_content: bool,
    /// Whether the last line looked at was blank.
    after_blank: bool,
}

/// A finished block: its HTML, and how many bytes of the streamed text it used up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub html: String,
    pub consumed: usize,
}

impl Blocks {
    /// Adds a piece of the answer; returns the blocks it finished.
    pub fn push(&mut self, piece: &str) -> Vec<Block> {
        self.pending.push_str(piece);
        let mut done = Vec::new();
        while let Some(newline) = self.pending[self.scanned..].find('\n') {
            let start = self.scanned;
            let end = start + newline + 1;
            let line = &self.pending[start..end - 1];
            if let Some((mark, length)) = self.fence {
                self.scanned = end;
                if closes(line, mark, length) {
                    self.fence = None;
                    done.push(self.take(end));
                }
                continue;
            }
            let blank = line.trim().is_empty();
            let fence = opens(line);
            let starts_block =
                !blank && (fence.is_some() || (self.after_blank && !line.starts_with([' ', '\t'])));
            if starts_block && self.has_content {
                done.push(self.take(start));
            }
            let start = self.scanned;
            self.scanned = start + newline + 1;
            self.fence = fence;
            self.has_content |= !blank;
            self.after_blank = blank;
        }
        // Text after a blank line that is not indented starts a block: the one before is
        // finished without waiting for the whole line.
        let partial = &self.pending[self.scanned..];
        let starts = partial.starts_with(|c: char| !c.is_whitespace());
        if self.fence.is_none() && self.after_blank && self.has_content && starts {
            done.push(self.take(self.scanned));
        }
        done
    }

    /// The answer ended: its last line is looked at as if it ended too, and the rest is
    /// a block.
    pub fn finish(&mut self) -> Vec<Block> {
        let mut done = self.push("\n");
        let rest = self.pending.len();
        self.scanned = rest;
        self.fence = None;
        if !self.pending.trim().is_empty() {
            done.push(self.take(rest));
        }
        // The newline added above was not part of the answer.
        if self.pending.is_empty() {
            if let Some(last) = done.last_mut() {
                last.consumed -= 1;
            }
        } else {
            self.pending.pop();
            self.scanned -= 1;
        }
        done
    }

    /// Makes the first `end` bytes a block.
    fn take(&mut self, end: usize) -> Block {
        let text: String = self.pending.drain(..end).collect();
        self.scanned -= end;
        self.has_content = !self.pending[..self.scanned].trim().is_empty();
        self.after_blank = false;
        Block {
            html: render(&text),
            consumed: end,
        }
    }
}

/// A whole answer as its blocks' HTML, as they were when it streamed.
pub fn render_blocks(text: &str) -> Vec<String> {
    let mut blocks = Blocks::default();
    let mut done: Vec<String> = blocks.push(text).into_iter().map(|b| b.html).collect();
    done.extend(blocks.finish().into_iter().map(|b| b.html));
    done
}

/// A fence opening a code block: three or more backticks or tildes, indented at most three.
fn opens(line: &str) -> Option<(char, usize)> {
    let trimmed = line.trim_start_matches(' ');
    if line.len() - trimmed.len() > 3 {
        return None;
    }
    let mark = trimmed.chars().next().filter(|c| *c == '`' || *c == '~')?;
    let length = trimmed.chars().take_while(|c| *c == mark).count();
    (length >= 3).then_some((mark, length))
}

/// Whether `line` closes a fence of `length` `mark`s.
fn closes(line: &str, mark: char, length: usize) -> bool {
    let trimmed = line.trim_start_matches(' ');
    line.len() - trimmed.len() <= 3
        && trimmed.chars().take_while(|c| *c == mark).count() >= length
        && trimmed.trim_start_matches(mark).trim().is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_html_is_text() {
        let html = render("<img src=x onerror=alert(1)> and <script>alert(2)</script>");
        assert!(!html.contains("<img"), "{html}");
        assert!(!html.contains("<script"), "{html}");
        assert!(
            html.contains("&lt;img src=x onerror=alert(1)&gt;"),
            "{html}"
        );
    }

    #[test]
    fn markdown_and_code_blocks_render() {
        let html = render("# Title\n\n**bold** `code`\n\n```rust\nfn main() {}\n```\n");
        assert!(html.contains("<h1>Title</h1>"), "{html}");
        assert!(html.contains("<strong>bold</strong>"), "{html}");
        assert!(
            html.contains("<span class=\"code-lang\">rust</span>"),
            "{html}"
        );
        assert!(html.contains("class=\"code-copy\""), "{html}");
        assert!(html.contains("<code class=\"language-rust\">"), "{html}");
        assert!(html.contains("hl-"), "highlighted: {html}");
        assert!(!html.contains("<script"), "{html}");
    }

    #[test]
    fn an_image_from_another_host_waits_to_be_asked_for() {
        let html = render(
            "See ![the chart](http://any.host:8080/x.png?d=SECRET \"t\") and ![local](/pkg/x.png).",
        );
        assert!(!html.contains("<img src=\"http://any.host"), "{html}");
        assert!(
            html.contains(
                "<span class=\"remote-image\" data-src=\"/_media?url=http%3A%2F%2Fany.host%3A8080%2Fx.png%3Fd%3DSECRET\" \
                 data-alt=\"the chart\"><span class=\"remote-image-alt\">the chart</span> \
                 <span class=\"remote-image-host\">Image from any.host:8080</span> \
                 <button type=\"button\" class=\"load-image\">Load image</button></span>"
            ),
            "{html}"
        );
        assert!(
            html.contains("<img src=\"/pkg/x.png\" alt=\"local\""),
            "{html}"
        );
        for link in [
            "https://user:pw@evil.example/a.png",
            "//evil.example/a.png",
            "HTTP://EVIL.example/",
        ] {
            let html = render(&format!("![x]({link})"));
            assert!(html.contains("remote-image"), "{link}: {html}");
            assert!(!html.contains("<img"), "{link}: {html}");
        }
        assert!(
            render("![x](https://user:pw@evil.example/a.png)").contains("Image from evil.example<")
        );
        // A description that is markup stays text.
        let html = render("![<b>x</b> \"q\"](http://h/a.png)");
        assert!(
            html.contains("data-alt=\"&lt;b&gt;x&lt;/b&gt; &quot;q&quot;\""),
            "{html}"
        );
    }

    #[test]
    fn only_safe_links_and_in_a_new_tab() {
        assert!(render("[x](javascript:alert(1))").contains("href=\"#\""));
        assert!(render("[x](JavaScript:alert(1))").contains("href=\"#\""));
        let link = render("[x](https://example.com/a?b=c&d=\"e\")");
        assert!(
            link.contains("href=\"https://example.com/a?b=c&amp;d=%22e%22\""),
            "{link}"
        );
        assert!(
            link.contains("target=\"_blank\" rel=\"noopener noreferrer\""),
            "{link}"
        );
        assert!(render("[x](/relative/path)").contains("href=\"/relative/path\""));
        assert!(render("![x](data:text/html;base64,AAAA)").contains("src=\"#\""));
    }

    /// The blocks of `text` streamed in pieces of `size` bytes.
    fn streamed(text: &str, size: usize) -> Vec<Block> {
        let mut blocks = Blocks::default();
        let mut done = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            let mut at = size.min(rest.len());
            while !rest.is_char_boundary(at) {
                at += 1;
            }
            done.extend(blocks.push(&rest[..at]));
            rest = &rest[at..];
        }
        done.extend(blocks.finish());
        done
    }

    #[test]
    fn finished_blocks_do_not_depend_on_how_the_text_arrives() {
        let text = "# Heading\nFirst paragraph,\nstill first.\n\n- one\n- two\n\n  indented, same list\n\n\
                    ```python\nprint(1)\n\nprint(2)\n```\nAfter the code.\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\né";
        let whole = streamed(text, text.len());
        let htmls: Vec<&str> = whole.iter().map(|b| b.html.as_str()).collect();
        assert_eq!(htmls.len(), 6, "{htmls:#?}");
        assert!(htmls[0].contains("<h1>Heading</h1>") && htmls[0].contains("still first"));
        assert!(htmls[1].contains("<li>") && htmls[1].contains("indented, same list"));
        assert!(htmls[2].contains("print") && htmls[2].contains("code-block"));
        assert!(htmls[3].contains("After the code."));
        assert!(htmls[4].contains("<table>"));
        assert!(htmls[5].contains("é"));
        assert_eq!(whole.iter().map(|b| b.consumed).sum::<usize>(), text.len());
        for size in [1, 2, 3, 7, 64] {
            assert_eq!(streamed(text, size), whole, "pieces of {size}");
        }
        assert_eq!(render_blocks(text), htmls);
    }

    #[test]
    fn an_answer_ending_in_a_fence_uses_up_every_byte() {
        let text = "Code:\n\n```\nx\n```";
        let whole = streamed(text, text.len());
        assert_eq!(whole.len(), 2, "{whole:#?}");
        assert_eq!(whole.iter().map(|b| b.consumed).sum::<usize>(), text.len());
        assert_eq!(streamed(text, 1), whole);
    }

    /// An answer is the model's (and so, through a prompt, anyone's): nesting as deep as a
    /// long answer can make renders, on a thread's ordinary stack.
    #[test]
    fn deep_nesting_renders_without_overflowing_the_stack() {
        const DEEP: usize = 50_000;
        for text in [
            ">".repeat(DEEP),
            "[".repeat(DEEP),
            "*".repeat(DEEP),
            "_a".repeat(DEEP),
            "- ".repeat(DEEP),
            "1. ".repeat(DEEP),
            "![".repeat(DEEP),
            "`".repeat(DEEP),
            "| a ".repeat(DEEP) + "\n" + &"|-".repeat(DEEP),
            "<div>".repeat(DEEP),
            (0..DEEP).map(|i| " ".repeat(i % 64) + "- x\n").collect(),
        ] {
            let html = std::thread::Builder::new()
                .stack_size(2 * 1024 * 1024)
                .spawn(move || (render(&text), render_blocks(&text)))
                .unwrap()
                .join()
                .expect("rendered");
            assert!(!html.0.is_empty());
        }
    }
}
