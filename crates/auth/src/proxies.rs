//! Reverse proxies (load balancers) whose `X-Forwarded-For` header names the client: behind one, every request
//! comes from the proxy's address, and per-address limits (login throttling, registration) would count the whole
//! city as one caller. Only the configured proxies are believed; anyone else can write the header.

use std::net::IpAddr;

/// Addresses or CIDR ranges (`10.0.0.0/8`, `2001:db8::/32`, `192.0.2.10`).
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies {
    ranges: Vec<(IpAddr, u8)>,
}

impl TrustedProxies {
    /// Parses the setting; an entry that is neither an address nor a range is refused with its text.
    pub fn parse(entries: &[String]) -> Result<TrustedProxies, String> {
        let ranges = entries
            .iter()
            .map(|entry| {
                let (address, prefix) = match entry.split_once('/') {
                    Some((address, prefix)) => (address, Some(prefix)),
                    None => (entry.as_str(), None),
                };
                let address: IpAddr = address
                    .trim()
                    .parse()
                    .map_err(|_| format!("`{entry}` is not an IP address or CIDR range"))?;
                let bits = if address.is_ipv4() { 32 } else { 128 };
                let prefix = match prefix {
                    None => bits,
                    Some(prefix) => prefix
                        .trim()
                        .parse::<u8>()
                        .ok()
                        .filter(|prefix| *prefix <= bits)
                        .ok_or_else(|| format!("`{entry}` has no valid prefix length"))?,
                };
                Ok((address, prefix))
            })
            .collect::<Result<_, String>>()?;
        Ok(TrustedProxies { ranges })
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.ranges
            .iter()
            .any(|(range, prefix)| within(ip, *range, *prefix))
    }

    /// The client behind a trusted proxy: walking `X-Forwarded-For` from the right (the hop nearest to us), the
    /// first address that is not itself a trusted proxy. `None` when the header is missing or malformed.
    pub fn client<'a>(&self, forwarded_for: impl Iterator<Item = &'a str>) -> Option<IpAddr> {
        let hops: Vec<IpAddr> = forwarded_for
            .flat_map(|value| value.split(','))
            .map(|hop| hop.trim().parse::<IpAddr>())
            .collect::<Result<_, _>>()
            .ok()?;
        hops.iter()
            .rev()
            .find(|hop| !self.contains(**hop))
            .or_else(|| hops.first())
            .copied()
    }
}

fn within(ip: IpAddr, range: IpAddr, prefix: u8) -> bool {
    match (ip, range) {
        (IpAddr::V4(ip), IpAddr::V4(range)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            u32::from(ip) & mask == u32::from(range) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(range)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            u128::from(ip) & mask == u128::from(range) & mask
        }
        (IpAddr::V6(ip), IpAddr::V4(_)) => ip
            .to_ipv4_mapped()
            .is_some_and(|v4| within(IpAddr::V4(v4), range, prefix)),
        (IpAddr::V4(_), IpAddr::V6(_)) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxies(entries: &[&str]) -> TrustedProxies {
        TrustedProxies::parse(&entries.iter().map(|e| (*e).to_owned()).collect::<Vec<_>>())
            .unwrap_or_default()
    }

    #[test]
    fn ranges_and_addresses() {
        let trusted = proxies(&["10.0.0.0/8", "192.0.2.10", "2001:db8::/32"]);
        assert!(trusted.contains("10.1.2.3".parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))));
        assert!(trusted.contains(IpAddr::from([192, 0, 2, 10])));
        assert!(!trusted.contains(IpAddr::from([192, 0, 2, 11])));
        assert!(!trusted.contains(IpAddr::from([11, 0, 0, 1])));
        assert!(trusted.contains("2001:db8::1".parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))));
        assert!(trusted.contains("::ffff:10.0.0.1".parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))));
        assert!(proxies(&["0.0.0.0/0"]).contains(IpAddr::from([8, 8, 8, 8])));
        assert!(TrustedProxies::parse(&["10.0.0.0/33".to_owned()]).is_err());
        assert!(TrustedProxies::parse(&["proxy.local".to_owned()]).is_err());
    }

    #[test]
    fn the_client_is_the_nearest_hop_that_is_no_proxy_of_ours() {
        let trusted = proxies(&["10.0.0.0/8"]);
        let client = |header: &str| trusted.client(std::iter::once(header)).map(|ip| ip.to_string());
        assert_eq!(client("203.0.113.7").as_deref(), Some("203.0.113.7"));
        // A forged first entry is ignored: the proxy appended what it saw.
        assert_eq!(
            client("198.51.100.1, 203.0.113.7").as_deref(),
            Some("203.0.113.7")
        );
        assert_eq!(client("203.0.113.7, 10.0.0.5").as_deref(), Some("203.0.113.7"));
        assert_eq!(client("10.0.0.9, 10.0.0.5").as_deref(), Some("10.0.0.9"));
        assert_eq!(client("kein-ip"), None);
    }
}
