//! Model output as Markdown, made safe: raw HTML in the text is shown as text, never
//! interpreted, and links or images may only point to http(s), mailto or relative URLs.

use pulldown_cmark::{html, CowStr, Event, Options, Parser, Tag};

/// Renders `text` to HTML that is safe to insert into the page.
pub fn render(text: &str) -> String {
    let options =
        Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS;
    let events = Parser::new_ext(text, options).map(|event| match event {
        Event::Html(raw) | Event::InlineHtml(raw) => Event::Text(raw),
        Event::Start(Tag::Link {
            link_type,
            dest_url,
            title,
            id,
        }) => Event::Start(Tag::Link {
            link_type,
            dest_url: safe_url(dest_url),
            title,
            id,
        }),
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
    let mut out = String::with_capacity(text.len() * 3 / 2);
    html::push_html(&mut out, events);
    out
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

#[cfg(test)]
mod tests {
    use super::render;

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
            html.contains("<pre><code class=\"language-rust\">fn main() {}\n</code></pre>"),
            "{html}"
        );
    }

    #[test]
    fn only_safe_links() {
        assert!(render("[x](javascript:alert(1))").contains("href=\"#\""));
        assert!(render("[x](JavaScript:alert(1))").contains("href=\"#\""));
        assert!(
            render("[x](https://example.com/a?b=c)").contains("href=\"https://example.com/a?b=c\"")
        );
        assert!(render("[x](/relative/path)").contains("href=\"/relative/path\""));
        assert!(render("![x](data:text/html;base64,AAAA)").contains("src=\"#\""));
    }
}
