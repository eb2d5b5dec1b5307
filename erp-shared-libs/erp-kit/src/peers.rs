//! The connections behind a [`MeshChannel`](crate::client::MeshChannel): one per address
//! its host name resolves to, re-resolved every `resolve_interval` and used in turn, so
//! calls spread over every replica behind a name (a Kubernetes headless Service lists its
//! ready pods) and reach new ones within an interval after the DNS answer changes. When a
//! name resolves to IPv4 addresses, only those are used (a dual-stack answer for a server
//! listening on IPv4 would fail every other call). A URL with an IP address, an `https`
//! URL, or a zero interval keeps one connection; so does a name that has not resolved yet
//! (its calls use the URL as given).

use std::{
    collections::BTreeMap,
    net::{IpAddr, SocketAddr},
    sync::{
        Arc, PoisonError, RwLock, Weak,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use futures::future::BoxFuture;
use http::Uri;
use tonic::transport::{Channel, Endpoint};

/// Turns a host name and port into addresses: DNS ([`dns_resolver`]) unless a service
/// registry (or a test) supplies its own.
pub type Resolver =
    Arc<dyn Fn(String, u16) -> BoxFuture<'static, std::io::Result<Vec<SocketAddr>>> + Send + Sync>;

/// Resolves with the system's resolver (`getaddrinfo`, so `/etc/hosts` and cluster DNS).
pub fn dns_resolver() -> Resolver {
    Arc::new(|host, port| {
        Box::pin(async move {
            Ok(tokio::net::lookup_host((host.as_str(), port))
                .await?
                .collect())
        })
    })
}

/// The connections of one channel.
#[derive(Clone)]
pub(crate) struct Peers {
    /// The connection to the URL as given: used while no address is known.
    by_url: Channel,
    resolved: Option<Arc<Resolved>>,
}

/// The connection to each resolved address, and whose turn is next.
#[derive(Default)]
struct Resolved {
    connections: RwLock<BTreeMap<SocketAddr, Channel>>,
    next: AtomicUsize,
}

impl Peers {
    /// Connections to `endpoint`, balanced over what its host resolves to when it is a
    /// name and `resolve_interval` is not zero.
    pub(crate) fn connect_lazy(
        endpoint: &Endpoint,
        connect_timeout: Duration,
        resolve_interval: Duration,
        resolver: Resolver,
    ) -> Self {
        let by_url = endpoint.clone().connect_lazy();
        let uri = endpoint.uri();
        let host = uri.host().unwrap_or_default();
        let is_address = host.trim_matches(['[', ']']).parse::<IpAddr>().is_ok();
        // TLS would need the name, not the address, to check the certificate.
        let is_plain_http = uri.scheme_str() == Some("http");
        if is_address || !is_plain_http || resolve_interval.is_zero() {
            return Self {
                by_url,
                resolved: None,
            };
        }
        let port = uri.port_u16().unwrap_or(80);
        let resolved = Arc::new(Resolved::default());
        tokio::spawn(keep_resolved(
            Arc::downgrade(&resolved),
            (host.to_owned(), port),
            uri.clone(),
            connect_timeout,
            resolve_interval,
            resolver,
        ));
        Self {
            by_url,
            resolved: Some(resolved),
        }
    }

    /// The connection for the next call: the resolved addresses in turn.
    pub(crate) fn pick(&self) -> Channel {
        if let Some(resolved) = &self.resolved {
            let connections = resolved
                .connections
                .read()
                .unwrap_or_else(PoisonError::into_inner);
            if !connections.is_empty() {
                let turn = resolved.next.fetch_add(1, Ordering::Relaxed) % connections.len();
                if let Some(channel) = connections.values().nth(turn) {
                    return channel.clone();
                }
            }
        }
        self.by_url.clone()
    }
}

/// Resolves `host` every `interval` and keeps one connection per address, until the
/// channel is dropped. A failed resolution keeps the addresses known before.
async fn keep_resolved(
    resolved: Weak<Resolved>,
    (host, port): (String, u16),
    uri: Uri,
    connect_timeout: Duration,
    interval: Duration,
    resolver: Resolver,
) {
    loop {
        let answer = resolver(host.clone(), port).await;
        let Some(resolved) = resolved.upgrade() else {
            return;
        };
        match answer {
            Ok(addresses) if !addresses.is_empty() => {
                let addresses = one_family(addresses);
                let mut connections = resolved
                    .connections
                    .write()
                    .unwrap_or_else(PoisonError::into_inner);
                connections.retain(|address, _| addresses.contains(address));
                for address in addresses {
                    if connections.contains_key(&address) {
                        continue;
                    }
                    if let Some(channel) = connect_to(&uri, connect_timeout, address) {
                        connections.insert(address, channel);
                    }
                }
            }
            Ok(_) => tracing::debug!(%host, "the name resolved to no address; keeping the last"),
            Err(error) => {
                tracing::debug!(%host, %error, "resolving failed; keeping the last addresses");
            }
        }
        drop(resolved);
        tokio::time::sleep(interval).await;
    }
}

/// The IPv4 addresses of an answer when it has any, else all of it.
fn one_family(addresses: Vec<SocketAddr>) -> Vec<SocketAddr> {
    if addresses.iter().any(SocketAddr::is_ipv4) {
        addresses.into_iter().filter(SocketAddr::is_ipv4).collect()
    } else {
        addresses
    }
}

/// A connection to one address that still speaks to the URL's authority.
fn connect_to(uri: &Uri, connect_timeout: Duration, address: SocketAddr) -> Option<Channel> {
    let endpoint = Endpoint::from_shared(format!("http://{address}")).ok()?;
    Some(
        endpoint
            .origin(uri.clone())
            .connect_timeout(connect_timeout)
            .tcp_nodelay(true)
            .connect_lazy(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dual_stack_answer_keeps_its_ipv4_addresses() {
        let v4: SocketAddr = "10.0.0.7:50051".parse().expect("address");
        let v6: SocketAddr = "[fd00::7]:50051".parse().expect("address");
        assert_eq!(one_family(vec![v6, v4]), vec![v4]);
        assert_eq!(one_family(vec![v6]), vec![v6], "IPv6 alone is kept");
    }
}
