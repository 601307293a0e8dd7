//! Clicks inside an answer's server-rendered HTML, handled where they land: a code block's
//! Copy button copies its code; an image from another host is loaded, through the server,
//! when its placeholder's button is pressed (see `server::markdown`).

/// Handles a click on an answer: the Copy button of a code block, or the Load image button of
/// a remote image's placeholder.
pub fn on_click(ev: leptos::ev::MouseEvent) {
    #[cfg(feature = "hydrate")]
    {
        use wasm_bindgen::JsCast;
        let Some(target) = ev
            .target()
            .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
        else {
            return;
        };
        if let Some(button) = target.closest(".code-copy").ok().flatten() {
            copy_code(button);
        } else if let Some(button) = target.closest(".load-image").ok().flatten() {
            load_image(button);
        }
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = ev;
}

/// Copies the code of the block `button` heads, and says so for a moment.
#[cfg(feature = "hydrate")]
fn copy_code(button: web_sys::Element) {
    use leptos::prelude::set_timeout;
    let code = button
        .closest(".code-block")
        .ok()
        .flatten()
        .and_then(|block| block.query_selector("code").ok().flatten())
        .and_then(|code| code.text_content());
    if let Some(code) = code {
        copy_to_clipboard(code);
        button.set_text_content(Some("Copied"));
        set_timeout(
            move || button.set_text_content(Some("Copy")),
            std::time::Duration::from_millis(1500),
        );
    }
}

/// Replaces the placeholder `button` is in by the image it stands for, loaded through the
/// server (the address is the server's own, made when the answer was rendered).
#[cfg(feature = "hydrate")]
fn load_image(button: web_sys::Element) {
    let Some(placeholder) = button.closest(".remote-image").ok().flatten() else {
        return;
    };
    let (Some(src), alt) = (
        placeholder.get_attribute("data-src"),
        placeholder.get_attribute("data-alt").unwrap_or_default(),
    ) else {
        return;
    };
    // Only the server's own route: the attribute came with the page, but never trust markup.
    if !src.starts_with("/_media?") {
        return;
    }
    let Ok(image) = leptos::prelude::document().create_element("img") else {
        return;
    };
    let _ = image.set_attribute("src", &src);
    let _ = image.set_attribute("alt", &alt);
    let _ = image.set_attribute("class", "remote-image-loaded");
    let _ = placeholder.replace_with_with_node_1(&image);
}

/// Puts text on the clipboard (in the browser only).
pub fn copy_to_clipboard(text: String) {
    #[cfg(feature = "hydrate")]
    {
        let _ = leptos::prelude::window()
            .navigator()
            .clipboard()
            .write_text(&text);
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = text;
}
