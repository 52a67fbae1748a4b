//! Where webhooks may go. A target that resolves to a loopback, private, link-local or otherwise special address
//! is refused — at subscription and at every delivery. The HTTP client resolves names only through
//! [`GuardedResolver`], which drops such addresses, so the address connected to is exactly one that was checked (a
//! DNS answer that changes between the check and the connection — rebinding — cannot slip through); IP literals
//! are checked before the request; redirects are never followed. An allow-list in the settings names the
//! exceptions (on-premise receivers, tests).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

/// Hosts and networks exempt from the check: `name.example`, `10.1.2.3`, `10.0.0.0/8`, `::1`, `fd00::/8`.
#[derive(Debug, Clone, Default)]
pub struct AllowList {
    hosts: Vec<String>,
    networks: Vec<(IpAddr, u8)>,
}

impl AllowList {
    /// Reads the entries; answers the first one that is neither a host name nor an address or network.
    pub fn parse(entries: &[String]) -> Result<AllowList, String> {
        let mut list = AllowList::default();
        for entry in entries {
            let entry = entry.trim();
            if let Some((address, bits)) = entry.split_once('/') {
                let address: IpAddr = address.parse().map_err(|_| format!("{entry:?} is no network"))?;
                let max = if address.is_ipv4() { 32 } else { 128 };
                let bits: u8 = bits
                    .parse()
                    .ok()
                    .filter(|b| *b <= max)
                    .ok_or_else(|| format!("{entry:?} has an invalid prefix length"))?;
                list.networks.push((address, bits));
            } else if let Ok(address) = entry.parse::<IpAddr>() {
                list.networks
                    .push((address, if address.is_ipv4() { 32 } else { 128 }));
            } else if !entry.is_empty()
                && entry
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
            {
                list.hosts.push(entry.to_ascii_lowercase());
            } else {
                return Err(format!("{entry:?} is neither a host name nor an address"));
            }
        }
        Ok(list)
    }

    fn allows_host(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.hosts.contains(&host)
    }

    fn allows_address(&self, address: IpAddr) -> bool {
        self.networks
            .iter()
            .any(|(network, bits)| contains(*network, *bits, address))
    }
}

fn contains(network: IpAddr, bits: u8, address: IpAddr) -> bool {
    match (network, address) {
        (IpAddr::V4(n), IpAddr::V4(a)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(n) & mask == u32::from(a) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(a)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(n) & mask == u128::from(a) & mask
        }
        _ => false,
    }
}

/// Whether an address is anything but a public unicast address.
pub fn is_special(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => special_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return special_v4(v4);
            }
            let first = v6.segments()[0];
            v6.is_unspecified()
                || v6.is_loopback()
                || (first & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (first & 0xffc0) == 0xfe80 // link-local fe80::/10
                || (first & 0xff00) == 0xff00 // multicast
                || (first == 0x2001 && v6.segments()[1] == 0x0db8) // documentation
                || (first == 0x0064 && v6.segments()[1] == 0xff9b) // NAT64, reaches IPv4 inside
                || first == 0x2002 // 6to4, reaches IPv4 inside
                || v6.segments()[..6] == [0; 6] // IPv4-compatible ::a.b.c.d
        }
    }
}

fn special_v4(v4: Ipv4Addr) -> bool {
    let [a, b, c, _] = v4.octets();
    v4.is_unspecified()
        || a == 0
        || v4.is_loopback()
        || v4.is_private()
        || v4.is_link_local()
        || v4.is_broadcast()
        || v4.is_multicast()
        || a >= 240
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 192 && b == 0 && c == 2) // documentation
        || (a == 198 && b == 51 && c == 100)
        || (a == 203 && b == 0 && c == 113)
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
}

/// Why a target is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("the URL is not an absolute http(s) URL with a host")]
    Malformed,
    #[error("plain http is allowed only for targets on the allow-list")]
    PlainHttp,
    #[error("the URL carries credentials")]
    Credentials,
    #[error("{0} resolves to a loopback, private, link-local or otherwise special address")]
    Special(String),
    #[error("{0} cannot be resolved")]
    Unresolvable(String),
}

/// The checks of a target URL.
#[derive(Debug, Clone, Default)]
pub struct TargetPolicy {
    pub allow: AllowList,
}

impl TargetPolicy {
    /// Checks the URL's form and, for an IP literal, its address. Names are checked when resolved.
    pub fn check_url(&self, url: &Url) -> Result<(), Refused> {
        let host = url.host().ok_or(Refused::Malformed)?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Refused::Credentials);
        }
        let allowed = match &host {
            Host::Domain(name) => self.allow.allows_host(name),
            Host::Ipv4(v4) => self.allow.allows_address(IpAddr::V4(*v4)),
            Host::Ipv6(v6) => self.allow.allows_address(IpAddr::V6(*v6)),
        };
        match url.scheme() {
            "https" => {}
            "http" if allowed => {}
            "http" => return Err(Refused::PlainHttp),
            _ => return Err(Refused::Malformed),
        }
        let literal = match host {
            Host::Domain(_) => None,
            Host::Ipv4(v4) => Some(IpAddr::V4(v4)),
            Host::Ipv6(v6) => Some(IpAddr::V6(v6)),
        };
        match literal {
            Some(address) if is_special(address) && !allowed => Err(Refused::Special(address.to_string())),
            _ => Ok(()),
        }
    }

    /// The addresses of `name` a delivery may connect to; refuses the name when any of its addresses is special
    /// (a name that mixes public and private answers is not trusted with either).
    pub async fn resolve(&self, name: &str, port: u16) -> Result<Vec<SocketAddr>, Refused> {
        let addresses: Vec<SocketAddr> = tokio::net::lookup_host((name, port))
            .await
            .map_err(|_| Refused::Unresolvable(name.to_owned()))?
            .collect();
        if addresses.is_empty() {
            return Err(Refused::Unresolvable(name.to_owned()));
        }
        if self.allow.allows_host(name) {
            return Ok(addresses);
        }
        if addresses
            .iter()
            .any(|a| is_special(a.ip()) && !self.allow.allows_address(a.ip()))
        {
            return Err(Refused::Special(name.to_owned()));
        }
        Ok(addresses)
    }

    /// Checks a target completely: form, then the addresses its name resolves to now.
    pub async fn check(&self, url: &Url) -> Result<(), Refused> {
        self.check_url(url)?;
        if let Some(Host::Domain(name)) = url.host() {
            self.resolve(name, url.port_or_known_default().unwrap_or(443))
                .await?;
        }
        Ok(())
    }
}

/// The delivery client's only resolver: it answers nothing but checked addresses.
pub struct GuardedResolver {
    pub policy: Arc<TargetPolicy>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        Box::pin(async move {
            let addresses = policy.resolve(name.as_str(), 0).await?;
            let addrs: Addrs = Box::new(addresses.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(policy: &TargetPolicy, url: &str) -> bool {
        policy.check_url(&Url::parse(url).unwrap()).is_err()
    }

    #[test]
    fn special_addresses_are_refused_unless_allowed() {
        let policy = TargetPolicy::default();
        for url in [
            "https://127.0.0.1/hook",
            "https://[::1]/hook",
            "https://10.1.2.3/",
            "https://169.254.169.254/latest/meta-data",
            "https://192.168.0.1/",
            "https://172.16.5.4/",
            "https://100.64.0.1/",
            "https://0.0.0.0/",
            "https://[::ffff:127.0.0.1]/",
            "https://[fd00::1]/",
            "https://[fe80::1]/",
            "http://203.0.114.1/",
            "ftp://example.org/",
            "https://user:pw@example.org/",
        ] {
            assert!(refused(&policy, url), "{url}");
        }
        assert!(!refused(&policy, "https://203.0.114.1/hook"));
        assert!(!refused(&policy, "https://receiver.example.org/hook"));
        let allowing = TargetPolicy {
            allow: AllowList::parse(&["127.0.0.0/8".into(), "intranet.local".into()]).unwrap(),
        };
        assert!(!refused(&allowing, "http://127.0.0.1:8080/hook"));
        assert!(!refused(&allowing, "http://intranet.local/hook"));
        assert!(refused(&allowing, "https://10.0.0.1/hook"));
        assert!(AllowList::parse(&["10.0.0.0/33".into()]).is_err());
    }
}
