//! Turning one raw value (a TOML value from the config file, or a string from the environment)
//! into a checked value for its `ValveKind`, plus the small parsers the typed phase needs
//! (`host:port` lists) and the edit distance behind "did you mean" hints. Pure functions on plain
//! data: no I/O, no process environment.

use secrecy::SecretString;
use serde_json::Value;

use super::valves::ValveKind;

/// A raw value as it arrived.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Input<'a> {
    /// A TOML value (config file, or a table default).
    Toml(&'a toml::Value),
    /// An environment variable's text.
    Text(&'a str),
}

/// A checked value.
#[derive(Debug)]
pub(crate) enum Parsed {
    /// A non-secret value in its typed JSON form.
    Value(Value),
    /// A secret; `None` when empty (an empty secret is no secret).
    Secret(Option<SecretString>),
}

/// Why a raw value was refused; the kind's own description says what was expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Refused;

/// A raw value with TOML strings and environment text folded together, so each kind has one
/// text path whatever the source.
#[derive(Debug, Clone, Copy)]
enum Raw<'a> {
    Text(&'a str),
    Bool(bool),
    Int(i64),
    Float(f64),
    Array(&'a [toml::Value]),
    /// Tables and datetimes: never a valid setting value.
    Other,
}

impl<'a> From<Input<'a>> for Raw<'a> {
    fn from(input: Input<'a>) -> Self {
        match input {
            Input::Text(s) => Raw::Text(s),
            Input::Toml(toml::Value::String(s)) => Raw::Text(s),
            Input::Toml(toml::Value::Boolean(b)) => Raw::Bool(*b),
            Input::Toml(toml::Value::Integer(i)) => Raw::Int(*i),
            Input::Toml(toml::Value::Float(f)) => Raw::Float(*f),
            Input::Toml(toml::Value::Array(a)) => Raw::Array(a),
            Input::Toml(toml::Value::Table(_) | toml::Value::Datetime(_)) => Raw::Other,
        }
    }
}

/// Check `input` against `kind`.
pub(crate) fn parse(kind: ValveKind, input: Input<'_>) -> Result<Parsed, Refused> {
    let raw = Raw::from(input);
    let value = match (kind, raw) {
        (ValveKind::Secret, Raw::Text(s)) => {
            let trimmed = s.trim();
            let secret = (!trimmed.is_empty()).then(|| SecretString::from(trimmed.to_owned()));
            return Ok(Parsed::Secret(secret));
        }
        (ValveKind::Bool, Raw::Bool(b)) => Value::Bool(b),
        (ValveKind::Bool, Raw::Text(s)) => Value::Bool(parse_bool(s).ok_or(Refused)?),
        (ValveKind::Int { min, max }, raw) => Value::from(int(raw, min, max)?.ok_or(Refused)?),
        (ValveKind::OptInt { min, max }, raw) => {
            int(raw, min, max)?.map_or(Value::Null, Value::from)
        }
        (ValveKind::Float { min, max }, raw) => number(float(raw, min, max)?.ok_or(Refused)?)?,
        (ValveKind::OptFloat { min, max }, raw) => match float(raw, min, max)? {
            Some(f) => number(f)?,
            None => Value::Null,
        },
        (ValveKind::Str | ValveKind::Csv, Raw::Text(s)) => Value::String(s.to_owned()),
        (ValveKind::Csv, Raw::Array(items)) => {
            let parts = items
                .iter()
                .map(|item| item.as_str().ok_or(Refused))
                .collect::<Result<Vec<_>, _>>()?;
            Value::String(parts.join(","))
        }
        (ValveKind::Enum { values, synonyms }, Raw::Text(s)) => {
            let wanted = s.trim();
            let canonical = values
                .iter()
                .copied()
                .find(|v| v.eq_ignore_ascii_case(wanted))
                .or_else(|| {
                    synonyms
                        .iter()
                        .find(|(alias, _)| alias.eq_ignore_ascii_case(wanted))
                        .map(|(_, canonical)| *canonical)
                })
                .ok_or(Refused)?;
            Value::String(canonical.to_owned())
        }
        (ValveKind::Url { allow_empty }, Raw::Text(s)) => {
            let trimmed = s.trim();
            if trimmed.is_empty() {
                if !allow_empty {
                    return Err(Refused);
                }
            } else {
                http_url(trimmed).ok_or(Refused)?;
            }
            Value::String(trimmed.to_owned())
        }
        (
            ValveKind::Secret
            | ValveKind::Bool
            | ValveKind::Str
            | ValveKind::Csv
            | ValveKind::Enum { .. }
            | ValveKind::Url { .. },
            _,
        ) => return Err(Refused),
    };
    Ok(Parsed::Value(value))
}

/// The flag spellings the reference's users are used to (pydantic's bool parsing, shells).
pub(crate) fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// Strings meaning "no value" for the optional kinds. The reference's JSON valve editor writes
/// `null`; an empty TOML string is the only null TOML can spell.
fn is_null_text(s: &str) -> bool {
    let t = s.trim();
    t.is_empty() || t.eq_ignore_ascii_case("null") || t.eq_ignore_ascii_case("none")
}

/// An integer in range, or `None` for a null spelling. Floats are refused even when whole: a
/// setting documented as an integer that arrives as `30.0` is more likely a mistake than intent.
fn int(raw: Raw<'_>, min: i64, max: i64) -> Result<Option<i64>, Refused> {
    let n = match raw {
        Raw::Int(i) => i,
        Raw::Text(s) if is_null_text(s) => return Ok(None),
        Raw::Text(s) => s.trim().parse::<i64>().map_err(|_| Refused)?,
        Raw::Bool(_) | Raw::Float(_) | Raw::Array(_) | Raw::Other => return Err(Refused),
    };
    if (min..=max).contains(&n) {
        Ok(Some(n))
    } else {
        Err(Refused)
    }
}

/// A finite number in range, or `None` for a null spelling.
fn float(raw: Raw<'_>, min: f64, max: f64) -> Result<Option<f64>, Refused> {
    let n = match raw {
        Raw::Float(f) => f,
        // A float setting written as a whole number (`ARTIFACT_CLEANUP_INTERVAL_HOURS = 2`); any
        // integer a human writes there converts exactly.
        Raw::Int(i) => i as f64,
        Raw::Text(s) if is_null_text(s) => return Ok(None),
        Raw::Text(s) => s.trim().parse::<f64>().map_err(|_| Refused)?,
        Raw::Bool(_) | Raw::Array(_) | Raw::Other => return Err(Refused),
    };
    if n.is_finite() && n >= min && n <= max {
        Ok(Some(n))
    } else {
        Err(Refused)
    }
}

fn number(f: f64) -> Result<Value, Refused> {
    serde_json::Number::from_f64(f)
        .map(Value::Number)
        .ok_or(Refused)
}

/// An absolute http(s) URL with a host and no credentials. Credentials in a URL setting would
/// put a secret in the config file (and in the settings the guest sees), so they are refused.
pub(crate) fn http_url(s: &str) -> Option<url::Url> {
    let url = url::Url::parse(s).ok()?;
    let ok = matches!(url.scheme(), "http" | "https")
        && url.host().is_some()
        && url.username().is_empty()
        && url.password().is_none();
    ok.then_some(url)
}

/// Why one `host:port` entry was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostPortProblem {
    MissingPort,
    BadPort,
    BadHost,
    Wildcard,
}

impl std::fmt::Display for HostPortProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::MissingPort => "needs an explicit port (host:port)",
            Self::BadPort => "has a port that is not a number from 1 to 65535",
            Self::BadHost => {
                "has a host that is not a valid domain name or IP address (IPv6 goes in brackets)"
            }
            Self::Wildcard => {
                "uses a wildcard or percent-encoding, which is not supported (list each host)"
            }
        })
    }
}

/// Parse a comma-separated list of `host:port` entries into canonical `(host, port)` pairs:
/// domains lower-cased and IDNA-encoded, IPv4 in dotted form, IPv6 in brackets (the same form
/// `url::Url::host_str` gives, so a request's authority compares equal). Empty entries are
/// skipped; the first bad entry is returned with its problem.
pub(crate) fn host_ports(list: &str) -> Result<Vec<(String, u16)>, (String, HostPortProblem)> {
    let mut out = Vec::new();
    for raw in list.split(',') {
        let entry = raw.trim();
        if entry.is_empty() {
            continue;
        }
        let bad = |p| (entry.to_owned(), p);
        // Percent-decoding inside the host parser would let `%6cocalhost` name `localhost`;
        // an allowlist should say what it means in plain text.
        if entry.contains(['*', '%']) {
            return Err(bad(HostPortProblem::Wildcard));
        }
        let (host, port) = entry
            .rsplit_once(':')
            .ok_or_else(|| bad(HostPortProblem::MissingPort))?;
        // `::1` without brackets splits inside the address; the host check below refuses it.
        let port: u16 = port.parse().map_err(|_| bad(HostPortProblem::BadPort))?;
        if port == 0 {
            return Err(bad(HostPortProblem::BadPort));
        }
        let host = canonical_host(host).ok_or_else(|| bad(HostPortProblem::BadHost))?;
        out.push((host, port));
    }
    Ok(out)
}

/// The canonical spelling of a host, or `None` if it is not a domain or IP literal.
fn canonical_host(host: &str) -> Option<String> {
    if host.is_empty() || (host.contains(':') && !host.starts_with('[')) {
        return None;
    }
    let parsed = url::Host::parse(host).ok()?;
    if let url::Host::Domain(d) = &parsed {
        // The URL host parser accepts a few characters a DNS name never has.
        if !d
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        {
            return None;
        }
    }
    Some(parsed.to_string())
}

/// Levenshtein distance over characters; used only on short setting names.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = substitute.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// A browser origin in the form a browser sends it in `Origin` (`scheme://host[:port]`, lower
/// case, IDN hosts in punycode, default port left out), or `None` when `text` has a path, query,
/// fragment or credentials (an origin is only scheme, host and port).
pub(crate) fn browser_origin(text: &str) -> Option<String> {
    let url = http_url(text)?;
    let only_origin = url.path() == "/" && url.query().is_none() && url.fragment().is_none();
    only_origin.then(|| url.origin().ascii_serialization())
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn value(kind: ValveKind, input: Input<'_>) -> Result<Value, Refused> {
        match parse(kind, input)? {
            Parsed::Value(v) => Ok(v),
            Parsed::Secret(_) => panic!("unexpected secret"),
        }
    }

    const RANGE: ValveKind = ValveKind::Int { min: 60, max: 100 };

    #[test]
    fn booleans_accept_the_usual_spellings_in_any_case() {
        for (text, want) in [
            ("1", true),
            ("TRUE", true),
            ("yes", true),
            ("On", true),
            ("0", false),
            ("false", false),
            ("NO", false),
            ("off", false),
        ] {
            assert_eq!(
                value(ValveKind::Bool, Input::Text(text)),
                Ok(Value::Bool(want)),
                "{text}"
            );
        }
        assert_eq!(
            value(ValveKind::Bool, Input::Toml(&toml::Value::Boolean(true))),
            Ok(Value::Bool(true))
        );
        assert_eq!(value(ValveKind::Bool, Input::Text("maybe")), Err(Refused));
        assert_eq!(
            value(ValveKind::Bool, Input::Toml(&toml::Value::Integer(1))),
            Err(Refused)
        );
    }

    #[test]
    fn integers_are_range_checked_from_text_and_toml() {
        assert_eq!(value(RANGE, Input::Text(" 70 ")), Ok(Value::from(70)));
        assert_eq!(
            value(RANGE, Input::Toml(&toml::Value::Integer(60))),
            Ok(Value::from(60))
        );
        assert_eq!(
            value(RANGE, Input::Toml(&toml::Value::String("100".into()))),
            Ok(Value::from(100))
        );
        assert_eq!(value(RANGE, Input::Text("59")), Err(Refused));
        assert_eq!(value(RANGE, Input::Text("101")), Err(Refused));
        assert_eq!(value(RANGE, Input::Text("sixty")), Err(Refused));
        assert_eq!(
            value(RANGE, Input::Toml(&toml::Value::Float(70.0))),
            Err(Refused)
        );
        assert_eq!(value(RANGE, Input::Text("null")), Err(Refused));
    }

    #[test]
    fn optional_integers_take_null_spellings() {
        let kind = ValveKind::OptInt { min: 0, max: 9 };
        assert_eq!(value(kind, Input::Text("null")), Ok(Value::Null));
        assert_eq!(value(kind, Input::Text("None")), Ok(Value::Null));
        assert_eq!(
            value(kind, Input::Toml(&toml::Value::String(String::new()))),
            Ok(Value::Null)
        );
        assert_eq!(value(kind, Input::Text("9")), Ok(Value::from(9)));
        assert_eq!(value(kind, Input::Text("10")), Err(Refused));
    }

    #[test]
    fn floats_accept_whole_numbers_and_refuse_non_finite_or_out_of_range() {
        let kind = ValveKind::Float {
            min: 0.5,
            max: 24.0,
        };
        assert_eq!(
            value(kind, Input::Toml(&toml::Value::Integer(2))),
            Ok(Value::from(2.0))
        );
        assert_eq!(value(kind, Input::Text("0.5")), Ok(Value::from(0.5)));
        assert_eq!(value(kind, Input::Text("NaN")), Err(Refused));
        assert_eq!(value(kind, Input::Text("inf")), Err(Refused));
        assert_eq!(value(kind, Input::Text("0.4")), Err(Refused));
        let opt = ValveKind::OptFloat { min: 0.0, max: 1.0 };
        assert_eq!(value(opt, Input::Text("null")), Ok(Value::Null));
        assert_eq!(value(opt, Input::Text("0.25")), Ok(Value::from(0.25)));
        assert_eq!(value(opt, Input::Text("2")), Err(Refused));
    }

    #[test]
    fn enums_match_case_insensitively_and_keep_the_canonical_spelling() {
        let kind = ValveKind::Enum {
            values: &["Pipeline", "Open-WebUI"],
            synonyms: &[("owui", "Open-WebUI")],
        };
        assert_eq!(
            value(kind, Input::Text("open-webui")),
            Ok(Value::from("Open-WebUI"))
        );
        assert_eq!(
            value(kind, Input::Text("PIPELINE")),
            Ok(Value::from("Pipeline"))
        );
        assert_eq!(
            value(kind, Input::Text("OWUI")),
            Ok(Value::from("Open-WebUI"))
        );
        assert_eq!(value(kind, Input::Text("other")), Err(Refused));
    }

    #[test]
    fn csv_keeps_text_as_given_and_joins_toml_arrays() {
        assert_eq!(
            value(ValveKind::Csv, Input::Text("a/b, c/d")),
            Ok(Value::from("a/b, c/d"))
        );
        let array = toml::Value::Array(vec!["a/b".into(), "c/d".into()]);
        assert_eq!(
            value(ValveKind::Csv, Input::Toml(&array)),
            Ok(Value::from("a/b,c/d"))
        );
        let mixed = toml::Value::Array(vec!["a/b".into(), toml::Value::Integer(3)]);
        assert_eq!(value(ValveKind::Csv, Input::Toml(&mixed)), Err(Refused));
    }

    #[test]
    fn strings_refuse_other_toml_types() {
        assert_eq!(
            value(ValveKind::Str, Input::Toml(&toml::Value::Integer(3))),
            Err(Refused)
        );
        assert_eq!(
            value(ValveKind::Str, Input::Text(" kept as is ")),
            Ok(Value::from(" kept as is "))
        );
    }

    #[test]
    fn urls_must_be_http_or_https_with_a_host_and_no_credentials() {
        let kind = ValveKind::Url { allow_empty: false };
        assert!(value(kind, Input::Text("https://openrouter.ai/api/v1")).is_ok());
        assert!(value(kind, Input::Text("http://127.0.0.1:8080/v1")).is_ok());
        for bad in [
            "ftp://x/",
            "openrouter.ai/api",
            "https://user:pw@x/",
            "file:///etc/passwd",
            "",
        ] {
            assert_eq!(value(kind, Input::Text(bad)), Err(Refused), "{bad}");
        }
        assert_eq!(
            value(ValveKind::Url { allow_empty: true }, Input::Text("")),
            Ok(Value::from(""))
        );
    }

    #[test]
    fn secrets_are_trimmed_and_empty_means_unset() {
        match parse(ValveKind::Secret, Input::Text("  sk-or-1 \n")) {
            Ok(Parsed::Secret(Some(s))) => assert_eq!(s.expose_secret(), "sk-or-1"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse(ValveKind::Secret, Input::Text("  ")),
            Ok(Parsed::Secret(None))
        ));
    }

    #[test]
    fn host_port_lists_are_canonicalised() {
        let got = host_ports("API.Example.com:443, 10.0.0.1:8080,,[::1]:9000 , 0x7f.1:80").unwrap();
        assert_eq!(
            got,
            vec![
                ("api.example.com".to_owned(), 443),
                ("10.0.0.1".to_owned(), 8080),
                ("[::1]".to_owned(), 9000),
                ("127.0.0.1".to_owned(), 80),
            ]
        );
        assert_eq!(host_ports("").unwrap(), vec![]);
    }

    #[test]
    fn host_port_lists_refuse_bad_entries_with_the_reason() {
        let cases = [
            ("example.com", HostPortProblem::MissingPort),
            ("example.com:0", HostPortProblem::BadPort),
            ("example.com:70000", HostPortProblem::BadPort),
            ("example.com:http", HostPortProblem::BadPort),
            ("*.example.com:443", HostPortProblem::Wildcard),
            ("%6cocalhost:80", HostPortProblem::Wildcard),
            ("::1:80", HostPortProblem::BadHost),
            (":443", HostPortProblem::BadHost),
            ("exa mple.com:443", HostPortProblem::BadHost),
            ("a/b:443", HostPortProblem::BadHost),
        ];
        for (entry, problem) in cases {
            assert_eq!(
                host_ports(entry),
                Err((entry.to_owned(), problem)),
                "{entry}"
            );
        }
    }

    #[test]
    fn edit_distance_counts_single_character_edits() {
        assert_eq!(edit_distance("MODEL_ID", "MODEL_ID"), 0);
        assert_eq!(edit_distance("MODEL_IDS", "MODEL_ID"), 1);
        assert_eq!(edit_distance("MDOEL_ID", "MODEL_ID"), 2);
        assert_eq!(edit_distance("", "ABC"), 3);
    }

    #[test]
    fn browser_origins_are_scheme_host_and_port_only() {
        assert_eq!(
            browser_origin("https://Chat.Example.com").as_deref(),
            Some("https://chat.example.com")
        );
        assert_eq!(
            browser_origin("https://chat.example.com:443/").as_deref(),
            Some("https://chat.example.com")
        );
        assert_eq!(
            browser_origin("http://localhost:3000").as_deref(),
            Some("http://localhost:3000")
        );
        for bad in [
            "chat.example.com",
            "https://chat.example.com/app",
            "https://chat.example.com?x=1",
            "https://user@chat.example.com",
            "ftp://chat.example.com",
            "*",
            "null",
        ] {
            assert_eq!(browser_origin(bad), None, "{bad}");
        }
    }
}
