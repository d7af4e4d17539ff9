//! The egress policy: decides, from plain data, whether the sandboxed component may reach a URL
//! and whether a concrete IP address may be dialled for it.
//!
//! Threat: the component chooses URLs. It must reach only the `host:port` pairs the operator put
//! on the allowlist, and never a private, loopback, link-local or cloud-metadata address, whether
//! it spells that address as a literal (`2130706433`, `0x7f.1`, `[::ffff:7f00:1]`, ...), hides it
//! behind userinfo (`example.com%2f@127.0.0.1`) or gets it from DNS. Hosts are never judged on the
//! raw string: the authority is canonicalised with the WHATWG `url` parser (the same parser the
//! operator's allowlist goes through), and every address is classified with one function,
//! [`non_public_reason`], whether it came from a literal or from a resolver.
//!
//! Not handled here: DNS resolution and dialling (see `client.rs`, which re-runs these checks on
//! the exact socket address it connects to), and redirects (the host never follows them).
//!
//! This module is pure: no tokio, no network, no clock.

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{Ipv4Net, Ipv6Net};
use wasmtime_wasi_http::p2::bindings::http::types::{DnsErrorPayload, ErrorCode};

/// A canonical `host:port` pair.
///
/// `host` is either a lowercase, IDNA-mapped domain name as the WHATWG parser produces it, or the
/// text form of an IP address without brackets. Two authorities are the same destination exactly
/// when they compare equal.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Authority {
    /// Canonical host: lowercase name, or IP text without brackets.
    pub host: String,
    /// TCP port.
    pub port: u16,
}

impl Authority {
    /// Canonicalise `host` (a name, an IPv4 literal in any WHATWG spelling, or an IPv6 literal with
    /// or without brackets) and pair it with `port`. Use this when building the allowlist from
    /// configuration, so that the allowlist and requests go through the same parser.
    pub fn new(host: &str, port: u16) -> Result<Self, Denial> {
        // `url::Host::parse` wants IPv6 literals in brackets; accept the bare form from config too.
        if let Ok(v6) = host.parse::<Ipv6Addr>() {
            return Ok(Self {
                host: v6.to_string(),
                port,
            });
        }
        let parsed = url::Host::parse(host).map_err(|_| Denial::InvalidUri)?;
        Ok(Self {
            host: canonical_host(&parsed).0,
            port,
        })
    }

    /// The authority of an absolute `http`/`https` URL (port defaulted per scheme), or `None`
    /// when the URL has no host or no known port.
    pub fn from_url(url: &url::Url) -> Option<Self> {
        let host = url.host()?;
        let port = url.port_or_known_default()?;
        Some(Self {
            host: canonical_host(&host).0,
            port,
        })
    }

    fn is_ipv6(&self) -> bool {
        self.host.contains(':')
    }

    /// The host in URI form: IPv6 literals in brackets.
    fn uri_host(&self) -> String {
        if self.is_ipv6() {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        }
    }
}

impl fmt::Display for Authority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_ipv6() {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// A destination that passed [`EgressPolicy::check_uri`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `true` for `https`, `false` for `http`.
    pub scheme_https: bool,
    /// The canonical authority that matched the allowlist.
    pub authority: Authority,
    /// The address when the host is an IP literal (already judged by `check_ip`); `None` for names.
    pub ip_literal: Option<IpAddr>,
    /// Whether this authority may resolve to (or be) a non-public address.
    pub private_ok: bool,
}

impl Target {
    /// The authority as it goes on the wire (URI authority and `Host` header): canonical host,
    /// IPv6 in brackets, port only when it is not the scheme's default.
    pub fn request_authority(&self) -> String {
        let default_port = if self.scheme_https { 443 } else { 80 };
        if self.authority.port == default_port {
            self.authority.uri_host()
        } else {
            format!("{}:{}", self.authority.uri_host(), self.authority.port)
        }
    }

    /// `"https"` or `"http"`.
    pub fn scheme_str(&self) -> &'static str {
        if self.scheme_https { "https" } else { "http" }
    }
}

/// Why a destination was refused. [`Denial::reason`] is the stable label used in logs
/// (`error.type`) and in the `egress_refused` counter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Denial {
    /// The scheme is missing or is not `http`/`https`.
    #[error("the URL scheme is not http or https")]
    Scheme,
    /// The URL carries userinfo (`user:pass@`), a classic parser-confusion vector.
    #[error("the URL carries userinfo")]
    UserInfo,
    /// The URL or its authority does not parse.
    #[error("the URL is not a valid absolute http(s) URL")]
    InvalidUri,
    /// The canonical `host:port` is not on the allowlist.
    #[error("{authority} is not on the egress allowlist")]
    NotAllowlisted {
        /// The canonical authority that was asked for.
        authority: Authority,
    },
    /// The destination address is not publicly routable (or is a metadata address).
    #[error("{ip} is a non-public address ({class})")]
    PrivateAddress {
        /// The refused address.
        ip: IpAddr,
        /// Which special-purpose range it falls in (see [`non_public_reason`]).
        class: &'static str,
    },
    /// The name resolved, but to no address at all.
    #[error("{authority} resolved to no address")]
    NoAddress {
        /// The authority whose name was resolved.
        authority: Authority,
    },
    /// The resolver failed for this name.
    #[error("resolving {authority} failed: {kind}")]
    DnsFailed {
        /// The authority whose name was resolved.
        authority: Authority,
        /// The resolver's error kind (`NotFound`, `TimedOut`, ...).
        kind: io::ErrorKind,
    },
}

impl Denial {
    /// Stable snake_case label for logs and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Scheme => "scheme",
            Self::UserInfo => "userinfo",
            Self::InvalidUri => "invalid_uri",
            Self::NotAllowlisted { .. } => "not_allowlisted",
            Self::PrivateAddress { .. } => "private_address",
            Self::NoAddress { .. } => "no_address",
            Self::DnsFailed { .. } => "dns_failed",
        }
    }

    /// The `wasi:http` error code the component sees for this refusal.
    pub fn error_code(&self) -> ErrorCode {
        match self {
            Self::Scheme | Self::UserInfo | Self::InvalidUri | Self::NotAllowlisted { .. } => {
                ErrorCode::HttpRequestDenied
            }
            Self::PrivateAddress { .. } | Self::NoAddress { .. } => {
                ErrorCode::DestinationIpProhibited
            }
            Self::DnsFailed { kind, .. } => ErrorCode::DnsError(DnsErrorPayload {
                rcode: Some(
                    if *kind == io::ErrorKind::TimedOut {
                        "timed out"
                    } else {
                        "address not available"
                    }
                    .to_string(),
                ),
                info_code: None,
            }),
        }
    }

    /// The embedder-side `wasi:http` error for this refusal (same meaning as [`Denial::error_code`]).
    pub fn to_wasi_error(&self) -> wasmtime_wasi_http::Error {
        wasmtime_wasi_http::Error::from(self.error_code())
    }
}

/// The operator's egress allowlist, and the subset of it allowed to be a non-public address.
#[derive(Debug, Clone, Default)]
pub struct EgressPolicy {
    allowed: Vec<Authority>,
    private_ok: Vec<Authority>,
}

impl EgressPolicy {
    /// `allowed`: every `host:port` the component may reach (configuration always puts
    /// BASE_URL's authority here). `private_ok`: the authorities that may resolve to, or be, a
    /// non-public address (a loopback fake upstream, an internal OpenRouter-compatible proxy).
    /// An entry of `private_ok` that is not also in `allowed` grants nothing.
    pub fn new(allowed: Vec<Authority>, private_ok: Vec<Authority>) -> Self {
        Self {
            allowed,
            private_ok,
        }
    }

    /// The allowlist.
    pub fn allowed(&self) -> &[Authority] {
        &self.allowed
    }

    /// Judge an absolute request URI: scheme, userinfo, canonical host and port, allowlist, and
    /// for IP literals the address itself.
    pub fn check_uri(&self, uri: &http::Uri) -> Result<Target, Denial> {
        let scheme_https = scheme_is_https(uri.scheme_str().ok_or(Denial::Scheme)?)?;
        let authority = uri.authority().ok_or(Denial::InvalidUri)?;
        self.check_authority(scheme_https, authority.as_str())
    }

    /// Judge URL text (for example a download URL the component passes as a string). The scheme
    /// is judged first, so `file:///etc/passwd` is refused as a scheme even though it is not an
    /// `http::Uri`.
    pub fn check_url(&self, text: &str) -> Result<Target, Denial> {
        let (scheme, _) = text.split_once(':').ok_or(Denial::InvalidUri)?;
        scheme_is_https(scheme)?;
        let uri: http::Uri = text.parse().map_err(|_| Denial::InvalidUri)?;
        self.check_uri(&uri)
    }

    /// Refuse `ip` for `target` if it is not public, unless the target is `private_ok`.
    /// Cloud-metadata addresses are refused even for `private_ok` targets: nothing legitimate
    /// lives there, and they sit inside ranges (link-local, CGNAT, ULA) an operator might open.
    pub fn check_ip(&self, target: &Target, ip: IpAddr) -> Result<(), Denial> {
        match non_public_reason(ip) {
            None => Ok(()),
            Some(class) if target.private_ok && class != CLASS_METADATA => Ok(()),
            Some(class) => Err(Denial::PrivateAddress { ip, class }),
        }
    }

    fn check_authority(&self, scheme_https: bool, raw: &str) -> Result<Target, Denial> {
        if raw.contains('@') {
            return Err(Denial::UserInfo);
        }
        // `http::Uri` already refuses these, but a `Uri` is not the only way text reaches here,
        // and the WHATWG parser would silently strip tabs/newlines or treat `\` as `/`, which
        // would make it see a different host than a less forgiving client.
        if raw.is_empty()
            || raw
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '\\' | '/' | '?' | '#'))
        {
            return Err(Denial::InvalidUri);
        }
        let scheme = if scheme_https { "https" } else { "http" };
        let url = url::Url::parse(&format!("{scheme}://{raw}/")).map_err(|_| Denial::InvalidUri)?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Denial::UserInfo);
        }
        let host = url.host().ok_or(Denial::InvalidUri)?;
        let port = url.port_or_known_default().ok_or(Denial::InvalidUri)?;
        let (host, ip_literal) = canonical_host(&host);
        let authority = Authority { host, port };
        if !self.allowed.contains(&authority) {
            return Err(Denial::NotAllowlisted { authority });
        }
        let private_ok = self.private_ok.contains(&authority);
        let target = Target {
            scheme_https,
            authority,
            ip_literal,
            private_ok,
        };
        if let Some(ip) = ip_literal {
            self.check_ip(&target, ip)?;
        }
        Ok(target)
    }
}

/// `Ok(true)` for https, `Ok(false)` for http, `Denial::Scheme` otherwise (case-insensitive, as
/// RFC 3986 §3.1 says schemes are).
pub(crate) fn scheme_is_https(scheme: &str) -> Result<bool, Denial> {
    if scheme.eq_ignore_ascii_case("https") {
        Ok(true)
    } else if scheme.eq_ignore_ascii_case("http") {
        Ok(false)
    } else {
        Err(Denial::Scheme)
    }
}

/// Canonical host text and, for literals, the address.
fn canonical_host<S: AsRef<str>>(host: &url::Host<S>) -> (String, Option<IpAddr>) {
    match host {
        url::Host::Domain(name) => (name.as_ref().to_owned(), None),
        url::Host::Ipv4(v4) => (v4.to_string(), Some(IpAddr::V4(*v4))),
        url::Host::Ipv6(v6) => (v6.to_string(), Some(IpAddr::V6(*v6))),
    }
}

// ---------------------------------------------------------------------------------------------
// Address classification.
//
// Source: the IANA IPv4 and IPv6 Special-Purpose Address Registries
// (https://www.iana.org/assignments/iana-ipv4-special-registry/,
//  https://www.iana.org/assignments/iana-ipv6-special-registry/), entries that are not
// "globally reachable", plus the tunnelling prefixes that embed an IPv4 address (NAT64, 6to4,
// Teredo, as egress proxies such as Smokescreen also refuse) and the cloud metadata endpoints named explicitly because they sit
// inside ranges an operator might allow. Anything in IPv6 outside global unicast 2000::/3
// (IANA IPv6 Address Space registry) is refused as well, so an unlisted reserved block cannot
// slip through.
// ---------------------------------------------------------------------------------------------

/// Class label for the cloud metadata endpoints (refused even for `private_ok` targets).
pub const CLASS_METADATA: &str = "metadata";

/// AWS/GCP/Azure/OpenStack instance metadata (link-local).
const METADATA_LINK_LOCAL: Ipv4Addr = Ipv4Addr::new(169, 254, 169, 254);
/// Alibaba Cloud instance metadata (inside CGNAT 100.64/10).
const METADATA_ALIBABA: Ipv4Addr = Ipv4Addr::new(100, 100, 100, 200);
/// Azure WireServer / platform DNS and health probes (in a public range, so named explicitly).
const METADATA_AZURE_WIRESERVER: Ipv4Addr = Ipv4Addr::new(168, 63, 129, 16);
/// AWS instance metadata over IPv6 (inside ULA fc00::/7).
const METADATA_AWS_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254);

const METADATA_V4: [Ipv4Addr; 3] = [
    METADATA_LINK_LOCAL,
    METADATA_ALIBABA,
    METADATA_AZURE_WIRESERVER,
];

const fn v4(a: u8, b: u8, c: u8, d: u8, len: u8) -> Ipv4Net {
    Ipv4Net::new_assert(Ipv4Addr::new(a, b, c, d), len)
}

#[expect(
    clippy::too_many_arguments,
    reason = "mirrors the eight groups of Ipv6Addr::new so the table reads like the registry"
)]
const fn v6(a: u16, b: u16, c: u16, d: u16, e: u16, f: u16, g: u16, h: u16, len: u8) -> Ipv6Net {
    Ipv6Net::new_assert(Ipv6Addr::new(a, b, c, d, e, f, g, h), len)
}

/// IPv4 special-purpose blocks, most specific first where they overlap.
const V4_NON_PUBLIC: [(Ipv4Net, &str); 17] = [
    (v4(0, 0, 0, 0, 32), "unspecified"),
    (v4(255, 255, 255, 255, 32), "broadcast"),
    (v4(0, 0, 0, 0, 8), "this_network"),
    (v4(10, 0, 0, 0, 8), "private"),
    (v4(100, 64, 0, 0, 10), "shared_cgnat"),
    (v4(127, 0, 0, 0, 8), "loopback"),
    (v4(169, 254, 0, 0, 16), "link_local"),
    (v4(172, 16, 0, 0, 12), "private"),
    (v4(192, 0, 0, 0, 24), "ietf_protocol"),
    (v4(192, 0, 2, 0, 24), "documentation"),
    (v4(192, 88, 99, 0, 24), "6to4_relay"),
    (v4(192, 168, 0, 0, 16), "private"),
    (v4(198, 18, 0, 0, 15), "benchmarking"),
    (v4(198, 51, 100, 0, 24), "documentation"),
    (v4(203, 0, 113, 0, 24), "documentation"),
    (v4(224, 0, 0, 0, 4), "multicast"),
    (v4(240, 0, 0, 0, 4), "reserved"),
];

/// IPv4-mapped `::ffff:a.b.c.d`: judged by the embedded IPv4 address.
const V6_MAPPED: Ipv6Net = v6(0, 0, 0, 0, 0, 0xffff, 0, 0, 96);
/// Deprecated IPv4-compatible `::a.b.c.d` (RFC 4291 §2.5.5.1): refused outright.
const V6_COMPATIBLE: Ipv6Net = v6(0, 0, 0, 0, 0, 0, 0, 0, 96);
/// Global unicast: everything outside it is reserved, local or multicast.
const V6_GLOBAL_UNICAST: Ipv6Net = v6(0x2000, 0, 0, 0, 0, 0, 0, 0, 3);

/// IPv6 special-purpose blocks, most specific first where they overlap.
const V6_NON_PUBLIC: [(Ipv6Net, &str); 16] = [
    (v6(0, 0, 0, 0, 0, 0, 0, 0, 128), "unspecified"),
    (v6(0, 0, 0, 0, 0, 0, 0, 1, 128), "loopback"),
    (v6(0x64, 0xff9b, 0, 0, 0, 0, 0, 0, 96), "nat64"),
    (v6(0x64, 0xff9b, 1, 0, 0, 0, 0, 0, 48), "nat64_local"),
    (v6(0x100, 0, 0, 0, 0, 0, 0, 0, 64), "discard"),
    (v6(0x2001, 0, 0, 0, 0, 0, 0, 0, 32), "teredo"),
    (v6(0x2001, 2, 0, 0, 0, 0, 0, 0, 48), "benchmarking"),
    (v6(0x2001, 0, 0, 0, 0, 0, 0, 0, 23), "ietf_protocol"),
    (v6(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0, 32), "documentation"),
    (v6(0x3fff, 0, 0, 0, 0, 0, 0, 0, 20), "documentation"),
    (v6(0x2002, 0, 0, 0, 0, 0, 0, 0, 16), "6to4"),
    (v6(0x5f00, 0, 0, 0, 0, 0, 0, 0, 16), "srv6_sid"),
    (v6(0xfc00, 0, 0, 0, 0, 0, 0, 0, 7), "unique_local"),
    (v6(0xfe80, 0, 0, 0, 0, 0, 0, 0, 10), "link_local"),
    (v6(0xfec0, 0, 0, 0, 0, 0, 0, 0, 10), "site_local"),
    (v6(0xff00, 0, 0, 0, 0, 0, 0, 0, 8), "multicast"),
];

/// `None` when `ip` is publicly routable; otherwise the class of special-purpose range it is in
/// (`"loopback"`, `"private"`, `"metadata"`, `"nat64"`, ...). IPv4-mapped IPv6 addresses are
/// judged by the IPv4 address they embed.
pub fn non_public_reason(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_reason(v4),
        IpAddr::V6(v6) => v6_reason(v6),
    }
}

fn v4_reason(ip: Ipv4Addr) -> Option<&'static str> {
    if METADATA_V4.contains(&ip) {
        return Some(CLASS_METADATA);
    }
    V4_NON_PUBLIC
        .iter()
        .find(|(net, _)| net.contains(&ip))
        .map(|(_, class)| *class)
}

fn v6_reason(ip: Ipv6Addr) -> Option<&'static str> {
    if ip == METADATA_AWS_V6 {
        return Some(CLASS_METADATA);
    }
    if let Some((_, class)) = V6_NON_PUBLIC
        .iter()
        .take(2)
        .find(|(net, _)| net.contains(&ip))
    {
        // `::` and `::1` sit inside the IPv4-compatible block; give them their own names.
        return Some(class);
    }
    if V6_MAPPED.contains(&ip) {
        let [.., a, b, c, d] = ip.octets();
        return v4_reason(Ipv4Addr::new(a, b, c, d));
    }
    if V6_COMPATIBLE.contains(&ip) {
        return Some("ipv4_compatible");
    }
    if let Some((_, class)) = V6_NON_PUBLIC.iter().find(|(net, _)| net.contains(&ip)) {
        return Some(class);
    }
    if !V6_GLOBAL_UNICAST.contains(&ip) {
        return Some("reserved");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALLOWED_HOST: &str = "allowed.host";

    fn auth(host: &str, port: u16) -> Authority {
        Authority::new(host, port).unwrap()
    }

    /// Allowlist with the hostile IP literals on it (but not `private_ok`), so that a row is only
    /// refused as `private_address` if the literal was canonicalised to the right address; an
    /// uncanonicalised spelling would fall out as `not_allowlisted` instead.
    fn permissive() -> EgressPolicy {
        let mut allowed = vec![auth(ALLOWED_HOST, 80), auth(ALLOWED_HOST, 443)];
        for (host, port) in [
            ("127.0.0.1", 80),
            ("0.0.0.0", 8080),
            ("::1", 80),
            ("::ffff:127.0.0.1", 80),
            ("::7f00:1", 80),
            ("64:ff9b::7f00:1", 80),
            ("2002:7f00:1::", 80),
            ("169.254.169.254", 80),
            ("fd00:ec2::254", 80),
            ("100.100.100.200", 80),
            ("10.0.0.1", 80),
            ("192.168.1.1", 80),
            ("fc00::1", 80),
        ] {
            allowed.push(auth(host, port));
        }
        EgressPolicy::new(allowed, vec![])
    }

    fn strict() -> EgressPolicy {
        EgressPolicy::new(
            vec![auth(ALLOWED_HOST, 80), auth(ALLOWED_HOST, 443)],
            vec![],
        )
    }

    /// (url, reason under the permissive allowlist, reason under the strict allowlist)
    const HOSTILE: &[(&str, &str, &str)] = &[
        ("http://127.0.0.1", "private_address", "not_allowlisted"),
        ("http://2130706433", "private_address", "not_allowlisted"),
        ("http://0177.0.0.1", "private_address", "not_allowlisted"),
        ("http://0x7f.1", "private_address", "not_allowlisted"),
        ("http://127.1", "private_address", "not_allowlisted"),
        ("http://0.0.0.0:8080", "private_address", "not_allowlisted"),
        ("http://[::1]", "private_address", "not_allowlisted"),
        (
            "http://[::ffff:127.0.0.1]",
            "private_address",
            "not_allowlisted",
        ),
        (
            "http://[::ffff:7f00:1]",
            "private_address",
            "not_allowlisted",
        ),
        ("http://[::7f00:1]", "private_address", "not_allowlisted"),
        (
            "http://[64:ff9b::7f00:1]",
            "private_address",
            "not_allowlisted",
        ),
        (
            "http://[2002:7f00:1::]",
            "private_address",
            "not_allowlisted",
        ),
        (
            "http://169.254.169.254/latest/meta-data/",
            "private_address",
            "not_allowlisted",
        ),
        (
            "http://[fd00:ec2::254]",
            "private_address",
            "not_allowlisted",
        ),
        (
            "http://100.100.100.200",
            "private_address",
            "not_allowlisted",
        ),
        ("http://10.0.0.1", "private_address", "not_allowlisted"),
        ("http://192.168.1.1", "private_address", "not_allowlisted"),
        ("http://[fc00::1]", "private_address", "not_allowlisted"),
        ("http://[fe80::1%25eth0]/", "invalid_uri", "invalid_uri"),
        ("http://example.com%2f@127.0.0.1/", "userinfo", "userinfo"),
        ("http://user:pass@allowed.host/", "userinfo", "userinfo"),
        ("http://a@b@allowed.host/", "userinfo", "userinfo"),
        ("file:///etc/passwd", "scheme", "scheme"),
        ("gopher://", "scheme", "scheme"),
        ("gopher://allowed.host/", "scheme", "scheme"),
        (
            "http://allowed.host:22/",
            "not_allowlisted",
            "not_allowlisted",
        ),
        (
            "http://allowed.host./",
            "not_allowlisted",
            "not_allowlisted",
        ),
        ("http://exa%6dple.com/", "invalid_uri", "invalid_uri"),
        (
            "http://\u{ff11}\u{ff12}\u{ff17}.0.0.1/",
            "invalid_uri",
            "invalid_uri",
        ),
    ];

    fn verdict(policy: &EgressPolicy, url: &str) -> Result<Target, &'static str> {
        policy.check_url(url).map_err(|d| d.reason())
    }

    #[test]
    fn every_hostile_url_is_refused_with_the_expected_reason() {
        let (permissive, strict) = (permissive(), strict());
        for (url, permissive_reason, strict_reason) in HOSTILE {
            assert_eq!(
                verdict(&permissive, url).err(),
                Some(*permissive_reason),
                "{url} under the permissive allowlist"
            );
            assert_eq!(
                verdict(&strict, url).err(),
                Some(*strict_reason),
                "{url} under the strict allowlist"
            );
        }
    }

    #[test]
    fn alternative_ipv4_spellings_are_judged_as_loopback() {
        let policy = permissive();
        for url in [
            "http://2130706433",
            "http://0177.0.0.1",
            "http://0x7f.1",
            "http://127.1",
            "http://[::ffff:7f00:1]",
        ] {
            match policy.check_url(url) {
                Err(Denial::PrivateAddress { class, .. }) => {
                    assert_eq!(class, "loopback", "{url}")
                }
                other => panic!("{url}: {other:?}"),
            }
        }
    }

    #[test]
    fn the_allowed_control_row_passes_with_a_canonical_authority() {
        let target = strict()
            .check_url("HTTPS://Allowed.HOST/v1/responses?x=1")
            .unwrap();
        assert_eq!(
            target,
            Target {
                scheme_https: true,
                authority: auth(ALLOWED_HOST, 443),
                ip_literal: None,
                private_ok: false,
            }
        );
        assert_eq!(target.request_authority(), "allowed.host");
        assert_eq!(target.authority.to_string(), "allowed.host:443");
    }

    #[test]
    fn a_loopback_authority_on_both_lists_passes() {
        let fake = auth("127.0.0.1", 8089);
        let policy = EgressPolicy::new(vec![fake.clone()], vec![fake.clone()]);
        let target = policy.check_url("http://127.0.0.1:8089/x").unwrap();
        assert!(target.private_ok);
        assert_eq!(target.ip_literal, Some(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        assert_eq!(target.request_authority(), "127.0.0.1:8089");
        // Another spelling of the same address reaches the same canonical entry.
        assert_eq!(
            policy
                .check_url("http://2130706433:8089/")
                .unwrap()
                .authority,
            fake
        );
    }

    #[test]
    fn ipv6_loopback_on_both_lists_passes_and_keeps_brackets_on_the_wire() {
        let fake = auth("[::1]", 9000);
        assert_eq!(fake, auth("::1", 9000));
        let policy = EgressPolicy::new(vec![fake.clone()], vec![fake]);
        let target = policy.check_url("http://[0:0::1]:9000/").unwrap();
        assert_eq!(target.request_authority(), "[::1]:9000");
        assert_eq!(target.authority.to_string(), "[::1]:9000");
    }

    #[test]
    fn private_ok_never_opens_the_metadata_addresses() {
        let meta = auth("169.254.169.254", 80);
        let policy = EgressPolicy::new(vec![meta.clone()], vec![meta]);
        assert_eq!(
            policy.check_url("http://169.254.169.254/").unwrap_err(),
            Denial::PrivateAddress {
                ip: IpAddr::V4(METADATA_LINK_LOCAL),
                class: CLASS_METADATA
            }
        );
    }

    #[test]
    fn a_private_answer_for_a_name_is_refused_unless_private_ok() {
        let name = auth("internal.example", 443);
        let strict = EgressPolicy::new(vec![name.clone()], vec![]);
        let open = EgressPolicy::new(vec![name.clone()], vec![name]);
        let t_strict = strict.check_url("https://internal.example/").unwrap();
        let t_open = open.check_url("https://internal.example/").unwrap();
        let private = IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3));
        let public = IpAddr::V4(Ipv4Addr::new(93, 184, 216, 34));
        assert_eq!(
            strict.check_ip(&t_strict, private).unwrap_err().reason(),
            "private_address"
        );
        assert!(strict.check_ip(&t_strict, public).is_ok());
        assert!(open.check_ip(&t_open, private).is_ok());
    }

    #[test]
    fn check_uri_refuses_relative_uris_and_other_schemes() {
        let policy = strict();
        let relative: http::Uri = "/v1/responses".parse().unwrap();
        assert_eq!(policy.check_uri(&relative).unwrap_err(), Denial::Scheme);
        let ftp: http::Uri = "ftp://allowed.host/".parse().unwrap();
        assert_eq!(policy.check_uri(&ftp).unwrap_err(), Denial::Scheme);
    }

    #[test]
    fn addresses_are_classified_by_their_special_purpose_range() {
        let rows: &[(&str, Option<&str>)] = &[
            ("0.0.0.0", Some("unspecified")),
            ("0.1.2.3", Some("this_network")),
            ("127.255.0.1", Some("loopback")),
            ("10.0.0.1", Some("private")),
            ("172.16.5.4", Some("private")),
            ("172.32.0.1", None),
            ("192.168.1.1", Some("private")),
            ("100.64.0.1", Some("shared_cgnat")),
            ("100.100.100.200", Some("metadata")),
            ("169.254.1.1", Some("link_local")),
            ("169.254.169.254", Some("metadata")),
            ("168.63.129.16", Some("metadata")),
            ("192.0.0.8", Some("ietf_protocol")),
            ("192.0.2.1", Some("documentation")),
            ("198.51.100.1", Some("documentation")),
            ("203.0.113.1", Some("documentation")),
            ("198.18.0.1", Some("benchmarking")),
            ("198.19.255.255", Some("benchmarking")),
            ("224.0.0.1", Some("multicast")),
            ("240.0.0.1", Some("reserved")),
            ("255.255.255.255", Some("broadcast")),
            ("8.8.8.8", None),
            ("93.184.216.34", None),
            ("::", Some("unspecified")),
            ("::1", Some("loopback")),
            ("::ffff:127.0.0.1", Some("loopback")),
            ("::ffff:169.254.169.254", Some("metadata")),
            ("::ffff:8.8.8.8", None),
            ("::8.8.8.8", Some("ipv4_compatible")),
            ("::a9fe:a9fe", Some("ipv4_compatible")),
            ("64:ff9b::808:808", Some("nat64")),
            ("64:ff9b:1::1", Some("nat64_local")),
            ("100::1", Some("discard")),
            ("2001::1", Some("teredo")),
            ("2001:2::1", Some("benchmarking")),
            ("2001:10::1", Some("ietf_protocol")),
            ("2001:db8::1", Some("documentation")),
            ("3fff::1", Some("documentation")),
            ("2002:7f00:1::", Some("6to4")),
            ("5f00::1", Some("srv6_sid")),
            ("fc00::1", Some("unique_local")),
            ("fd12:3456::1", Some("unique_local")),
            ("fd00:ec2::254", Some("metadata")),
            ("fe80::1", Some("link_local")),
            ("fec0::1", Some("site_local")),
            ("ff02::1", Some("multicast")),
            ("4000::1", Some("reserved")),
            ("2606:4700:4700::1111", None),
            ("2a00:1450:4001:80b::200e", None),
        ];
        for (text, expected) in rows {
            let ip: IpAddr = text.parse().unwrap();
            assert_eq!(non_public_reason(ip), *expected, "{text}");
        }
    }

    #[test]
    fn denials_map_to_the_wasi_error_codes() {
        let a = auth("x.example", 443);
        let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let rows = [
            (Denial::Scheme, ErrorCode::HttpRequestDenied),
            (Denial::UserInfo, ErrorCode::HttpRequestDenied),
            (Denial::InvalidUri, ErrorCode::HttpRequestDenied),
            (
                Denial::NotAllowlisted {
                    authority: a.clone(),
                },
                ErrorCode::HttpRequestDenied,
            ),
            (
                Denial::PrivateAddress {
                    ip,
                    class: "loopback",
                },
                ErrorCode::DestinationIpProhibited,
            ),
            (
                Denial::NoAddress {
                    authority: a.clone(),
                },
                ErrorCode::DestinationIpProhibited,
            ),
        ];
        for (denial, code) in rows {
            assert_eq!(
                format!("{:?}", denial.error_code()),
                format!("{code:?}"),
                "{denial}"
            );
        }
        let dns = Denial::DnsFailed {
            authority: a,
            kind: io::ErrorKind::NotFound,
        };
        assert!(matches!(dns.error_code(), ErrorCode::DnsError(_)));
        assert!(matches!(
            dns.to_wasi_error(),
            wasmtime_wasi_http::Error::DnsError { .. }
        ));
        assert_eq!(dns.reason(), "dns_failed");
    }

    #[test]
    fn config_authorities_are_canonicalised_like_requests() {
        assert_eq!(auth("LocalHost", 80).host, "localhost");
        assert_eq!(auth("0x7f.1", 80).host, "127.0.0.1");
        assert_eq!(
            auth("b\u{fc}cher.example", 443).host,
            "xn--bcher-kva.example"
        );
        assert!(Authority::new("a b", 80).is_err());
        let url = url::Url::parse("https://OpenRouter.ai/api/v1").unwrap();
        assert_eq!(Authority::from_url(&url), Some(auth("openrouter.ai", 443)));
    }
}
