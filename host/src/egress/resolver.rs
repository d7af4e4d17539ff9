//! Name resolution for the egress gate, behind a trait so tests can inject answers.
//!
//! Threat: DNS rebinding. The connector resolves a name exactly once through a [`Resolver`],
//! judges every answer, and dials only the answers it judged; nothing else resolves the name
//! again. Injecting a [`StaticResolver`] lets tests make a public-looking name point at loopback
//! without touching the network. The system resolver is bounded by a timeout so a slow DNS server
//! cannot hold a request (and its component instance) open.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use futures::future::BoxFuture;

/// Upper bound on one system lookup. Smokescreen (Stripe's egress proxy) uses the
/// same 5 s DNS timeout.
pub const SYSTEM_RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// Resolves a host name to socket addresses.
pub trait Resolver: Send + Sync + 'static {
    /// All addresses for `host` (a canonical name, never an IP literal), paired with `port`.
    fn resolve(&self, host: &str, port: u16) -> BoxFuture<'static, io::Result<Vec<SocketAddr>>>;
}

/// The operating system's resolver (`getaddrinfo` through `tokio::net::lookup_host`), bounded by
/// [`SYSTEM_RESOLVE_TIMEOUT`].
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

impl Resolver for SystemResolver {
    fn resolve(&self, host: &str, port: u16) -> BoxFuture<'static, io::Result<Vec<SocketAddr>>> {
        let host = host.to_owned();
        Box::pin(async move {
            match tokio::time::timeout(
                SYSTEM_RESOLVE_TIMEOUT,
                tokio::net::lookup_host((host.as_str(), port)),
            )
            .await
            {
                Ok(addrs) => Ok(addrs?.collect()),
                Err(_) => Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "name resolution timed out",
                )),
            }
        })
    }
}

/// Fixed answers, for tests: `name -> addresses`. Unknown names fail with `NotFound`.
#[derive(Debug, Clone, Default)]
pub struct StaticResolver {
    entries: HashMap<String, Vec<IpAddr>>,
}

impl StaticResolver {
    /// A resolver answering each name with its listed addresses, in order.
    pub fn new(entries: impl IntoIterator<Item = (String, Vec<IpAddr>)>) -> Self {
        Self {
            entries: entries.into_iter().collect(),
        }
    }
}

impl Resolver for StaticResolver {
    fn resolve(&self, host: &str, port: u16) -> BoxFuture<'static, io::Result<Vec<SocketAddr>>> {
        let answer = match self.entries.get(host) {
            Some(ips) => Ok(ips.iter().map(|ip| SocketAddr::new(*ip, port)).collect()),
            None => Err(io::Error::new(
                io::ErrorKind::NotFound,
                "name not in the static resolver",
            )),
        };
        Box::pin(async move { answer })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[tokio::test]
    async fn static_resolver_answers_known_names_in_order_and_refuses_unknown_ones() {
        let a = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));
        let b = IpAddr::V4(Ipv4Addr::new(93, 184, 216, 34));
        let r = StaticResolver::new([("public.test".to_string(), vec![a, b])]);
        assert_eq!(
            r.resolve("public.test", 8080).await.unwrap(),
            vec![SocketAddr::new(a, 8080), SocketAddr::new(b, 8080)]
        );
        assert_eq!(
            r.resolve("other.test", 80).await.unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
    }

    #[tokio::test]
    async fn system_resolver_resolves_localhost_to_loopback() {
        let addrs = SystemResolver.resolve("localhost", 80).await.unwrap();
        assert!(!addrs.is_empty());
        assert!(addrs.iter().all(|a| a.ip().is_loopback() && a.port() == 80));
    }
}
