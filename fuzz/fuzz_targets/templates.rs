//! Template rendering: the input is a template, then NUL-separated variable names and values;
//! also read as an upstream error body. Never a panic; a value never adds a line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use responses_pipe_guest::templates::{self, TemplateKind, TemplateSettings, Vars};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.split('\0');
    let template = parts.next().unwrap_or_default();
    let mut vars = Vars::new();
    while let (Some(name), Some(value)) = (parts.next(), parts.next()) {
        vars.set(name, value);
    }
    if let Ok(out) = templates::render(template, &vars) {
        assert!(out.split('\n').count() <= template.split('\n').count());
    }
    let _ = templates::render_or_fallback(template, &vars, "0123456789abcdef");
    let status = 400 + (data.len() % 200) as u16;
    let parsed = templates::vars_from_openrouter_error(data, status, &[], 0);
    for kind in TemplateKind::ALL {
        let out = TemplateSettings::built_in().render(kind, &parsed);
        assert!(!out.contains("could not be displayed"));
    }
});
