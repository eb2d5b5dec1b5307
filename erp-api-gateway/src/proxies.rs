//! The client's address behind trusted proxies. Behind an ingress or load balancer every
//! connection comes from the proxy; the client is the rightmost `X-Forwarded-For` entry
//! that is not itself a trusted proxy. From anyone else the header is ignored: a client
//! cannot choose the address its rate limit is counted against.

use std::net::IpAddr;

use http::HeaderMap;

/// The client's address: what trusted proxies say, and what the gateway tells the
/// services (always set by the gateway, never passed on from the client).
pub const FORWARDED_FOR: &str = "x-forwarded-for";

/// One trusted network: an address and a prefix length (`10.0.0.0/8`, `192.0.2.7`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrustedNetwork {
    network: IpAddr,
    prefix: u8,
}

/// Why a trusted proxy entry does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an IP address or network (e.g. 10.0.0.0/8 or 192.0.2.7)")]
pub struct NotANetwork(pub String);

impl TrustedNetwork {
    /// Parses `address` or `address/prefix`.
    pub fn parse(text: &str) -> Result<Self, NotANetwork> {
        let refuse = || NotANetwork(text.to_owned());
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let network: IpAddr = address.trim().parse().map_err(|_| refuse())?;
        let bits = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(prefix) => prefix.trim().parse::<u8>().map_err(|_| refuse())?,
            None => bits,
        };
        if prefix > bits {
            return Err(refuse());
        }
        Ok(Self { network, prefix })
    }

    /// Parses a comma-separated list (empty: none).
    pub fn parse_list(text: &str) -> Result<Vec<Self>, NotANetwork> {
        text.split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .map(Self::parse)
            .collect()
    }

    /// Whether `address` lies in this network.
    pub fn contains(&self, address: IpAddr) -> bool {
        match (self.network, address) {
            (IpAddr::V4(network), IpAddr::V4(address)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(network) & mask == u32::from(address) & mask
            }
            (IpAddr::V6(network), IpAddr::V6(address)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(network) & mask == u128::from(address) & mask
            }
            _ => false,
        }
    }
}

/// The client's address: the peer's, unless the peer is a trusted proxy; then the
/// rightmost `X-Forwarded-For` entry that is not a trusted proxy (or the last proxy's
/// own address when the header has no usable entry).
pub fn client_address(peer: IpAddr, headers: &HeaderMap, trusted: &[TrustedNetwork]) -> IpAddr {
    let is_trusted = |address: IpAddr| trusted.iter().any(|network| network.contains(address));
    if !is_trusted(peer) {
        return peer;
    }
    let mut hops: Vec<&str> = headers
        .get_all(FORWARDED_FOR)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .collect();
    let mut nearest = peer;
    while let Some(hop) = hops.pop() {
        match hop.parse::<IpAddr>() {
            Ok(address) if is_trusted(address) => nearest = address,
            Ok(address) => return address,
            // Whatever a proxy wrote that is not an address ends what can be believed.
            Err(_) => return nearest,
        }
    }
    nearest
}

#[cfg(test)]
mod tests {
    use super::*;

    fn networks(text: &str) -> Vec<TrustedNetwork> {
        TrustedNetwork::parse_list(text).expect("parses")
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("address")
    }

    fn forwarded(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(FORWARDED_FOR, value.parse().expect("header"));
        headers
    }

    #[test]
    fn networks_contain_their_addresses_only() {
        let trusted = networks("10.0.0.0/8, 192.0.2.7, fd00::/8");
        assert!(trusted[0].contains(ip("10.42.1.9")));
        assert!(!trusted[0].contains(ip("11.0.0.1")));
        assert!(trusted[1].contains(ip("192.0.2.7")));
        assert!(!trusted[1].contains(ip("192.0.2.8")));
        assert!(trusted[2].contains(ip("fd12::1")));
        assert!(!trusted[2].contains(ip("10.0.0.1")), "families do not mix");
        assert!(
            TrustedNetwork::parse("0.0.0.0/0")
                .expect("all")
                .contains(ip("8.8.8.8"))
        );
        for bad in ["10.0.0.0/33", "ingress", "10.0.0/8", "::1/129"] {
            assert!(TrustedNetwork::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(networks(""), []);
    }

    #[test]
    fn the_client_is_the_rightmost_untrusted_hop() {
        let trusted = networks("10.0.0.0/8");
        let headers = forwarded("198.51.100.1, 203.0.113.5, 10.0.0.3");
        assert_eq!(
            client_address(ip("10.0.0.2"), &headers, &trusted),
            ip("203.0.113.5"),
            "what the client wrote itself (198.51.100.1) is not believed"
        );
        assert_eq!(
            client_address(ip("203.0.113.9"), &headers, &trusted),
            ip("203.0.113.9"),
            "from an untrusted peer the header is ignored"
        );
        assert_eq!(
            client_address(ip("10.0.0.2"), &HeaderMap::new(), &trusted),
            ip("10.0.0.2")
        );
        assert_eq!(
            client_address(ip("10.0.0.2"), &forwarded("junk, 10.0.0.3"), &trusted),
            ip("10.0.0.3")
        );
    }
}
