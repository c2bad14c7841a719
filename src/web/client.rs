//! Who is at the other end of a login: the peer's address, or, when the peer is one of
//! `[http] trusted_proxies`, the client it names in `X-Forwarded-For`.

use std::net::IpAddr;

use axum::http::HeaderMap;

/// An address block (`10.0.0.0/8`, `::1/128`; a bare address is the block of one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    bits: u8,
}

impl Cidr {
    pub fn parse(text: &str) -> Option<Cidr> {
        let text = text.trim();
        let (addr, bits) = match text.split_once('/') {
            Some((a, b)) => (a, Some(b.parse::<u8>().ok()?)),
            None => (text, None),
        };
        let net: IpAddr = addr.parse().ok()?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let bits = bits.unwrap_or(max);
        (bits <= max).then_some(Cidr { net, bits })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.net, ip.to_canonical()) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.bits)).unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.bits))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// The client of a request that came from `peer`: the peer itself unless it is a trusted
/// proxy; then the nearest address in `X-Forwarded-For` that is not a trusted proxy (walking
/// from the right, the hops our proxies added). An entry that is not an address stops the walk
/// at the last trusted hop: what lies beyond it was written by the client.
pub fn client_addr(peer: Option<IpAddr>, headers: &HeaderMap, trusted: &[Cidr]) -> Option<IpAddr> {
    let peer = peer?.to_canonical();
    let is_trusted = |ip: IpAddr| trusted.iter().any(|c| c.contains(ip));
    if !is_trusted(peer) {
        return Some(peer);
    }
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        let Ok(ip) = hop.trim_matches(['[', ']']).parse::<IpAddr>() else {
            break;
        };
        client = ip.to_canonical();
        if !is_trusted(client) {
            break;
        }
    }
    Some(client)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in xff {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    #[test]
    fn blocks_parse_and_contain() {
        let c = Cidr::parse("10.0.0.0/8").unwrap();
        assert!(c.contains("10.1.2.3".parse().unwrap()));
        assert!(c.contains("::ffff:10.1.2.3".parse().unwrap()));
        assert!(!c.contains("11.0.0.1".parse().unwrap()));
        assert!(Cidr::parse("::1").unwrap().contains("::1".parse().unwrap()));
        assert!(Cidr::parse("0.0.0.0/0")
            .unwrap()
            .contains("8.8.8.8".parse().unwrap()));
        assert_eq!(Cidr::parse("10.0.0.0/33"), None);
        assert_eq!(Cidr::parse("proxy.example"), None);
    }

    #[test]
    fn the_forwarded_client_counts_only_behind_a_trusted_proxy() {
        let trusted = [
            Cidr::parse("127.0.0.1").unwrap(),
            Cidr::parse("10.0.0.0/8").unwrap(),
        ];
        let proxy = Some("127.0.0.1".parse().unwrap());
        let stranger = Some("192.0.2.7".parse().unwrap());
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        // A client that is not a proxy cannot choose its address.
        assert_eq!(
            client_addr(stranger, &headers(&["203.0.113.9"]), &trusted),
            stranger
        );
        assert_eq!(
            client_addr(proxy, &headers(&["203.0.113.9"]), &trusted),
            ip("203.0.113.9")
        );
        // What the client wrote itself (left) is passed over for what our proxies added.
        assert_eq!(
            client_addr(
                proxy,
                &headers(&["1.1.1.1, 203.0.113.9", "10.0.0.2"]),
                &trusted
            ),
            ip("203.0.113.9")
        );
        assert_eq!(
            client_addr(proxy, &headers(&["junk, 10.0.0.2"]), &trusted),
            ip("10.0.0.2")
        );
        assert_eq!(client_addr(proxy, &headers(&[]), &trusted), proxy);
        assert_eq!(client_addr(None, &headers(&["1.1.1.1"]), &trusted), None);
    }
}
