//! Images the model produced: `image_generation_call` / `openrouter:image_generation` output items
//! of a Responses stream and `delta.images` of a Chat Completions stream, turned into one URL each
//! (`data:` with a sniffed media type for bare base64, or the https URL OpenRouter gave). The host
//! relays them as OpenRouter's own `delta.images` shape, which Open WebUI saves as message files.

use serde_json::Value;

/// Media type of base64 image data, from its first characters (the encoded magic bytes).
fn sniff(b64: &str) -> &'static str {
    if b64.starts_with("/9j/") {
        "image/jpeg"
    } else if b64.starts_with("R0lGOD") {
        "image/gif"
    } else if b64.starts_with("UklGR") {
        "image/webp"
    } else {
        "image/png"
    }
}

/// One image value as a URL the caller can use; `None` for values that are neither a `data:`
/// URL, an https URL, nor plausible base64.
pub fn as_url(value: &str) -> Option<String> {
    let v = value.trim();
    if v.is_empty() {
        return None;
    }
    if v.starts_with("data:image/") || v.starts_with("https://") {
        return Some(v.to_string());
    }
    let base64ish = v
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'\n' | b'\r'));
    base64ish.then(|| format!("data:{};base64,{}", sniff(v), v))
}

/// The image of a finished Responses output item, when it is an image-generation item.
pub fn from_output_item(item: &Value) -> Option<String> {
    let kind = item.get("type").and_then(Value::as_str)?;
    if kind != "image_generation_call" && kind != "openrouter:image_generation" {
        return None;
    }
    ["result", "imageB64", "imageUrl"]
        .iter()
        .filter_map(|k| item.get(*k).and_then(Value::as_str))
        .find_map(as_url)
}

/// The images of a Chat Completions `delta.images` (or `message.images`) list.
pub fn from_chat_images(images: Option<&Value>) -> Vec<String> {
    images
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|i| {
            i.pointer("/image_url/url")
                .or_else(|| i.get("url"))
                .and_then(Value::as_str)
        })
        .filter_map(as_url)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn base64_results_become_data_urls_with_a_sniffed_type() {
        let png = json!({"type": "image_generation_call", "id": "ig", "status": "completed", "result": "iVBORw0KGgo="});
        assert_eq!(
            from_output_item(&png).as_deref(),
            Some("data:image/png;base64,iVBORw0KGgo=")
        );
        let jpeg = json!({"type": "openrouter:image_generation", "status": "completed", "imageB64": "/9j/4AAQ"});
        assert_eq!(
            from_output_item(&jpeg).as_deref(),
            Some("data:image/jpeg;base64,/9j/4AAQ")
        );
        let url = json!({"type": "openrouter:image_generation", "status": "completed", "result": "https://img.example/a.png"});
        assert_eq!(
            from_output_item(&url).as_deref(),
            Some("https://img.example/a.png")
        );
    }

    #[test]
    fn other_items_and_unusable_values_give_nothing() {
        assert_eq!(from_output_item(&json!({"type": "message"})), None);
        let pending = json!({"type": "image_generation_call", "id": "ig", "status": "generating", "result": null});
        assert_eq!(from_output_item(&pending), None);
        assert_eq!(as_url("javascript:alert(1)"), None);
        assert_eq!(as_url("http://plain.example/a.png"), None);
    }

    #[test]
    fn chat_images_are_read_from_either_shape() {
        let images = json!([
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
            {"url": "https://img.example/b.png"},
            {"image_url": {"url": ""}}
        ]);
        assert_eq!(
            from_chat_images(Some(&images)),
            vec![
                "data:image/png;base64,AAAA".to_string(),
                "https://img.example/b.png".to_string()
            ]
        );
    }
}
