//! Addresses as Sentinel announces them (an IP, v4 or v6, or a host name), in one
//! canonical form; the passwords to reach them; node names resolved to addresses.

use std::fmt;
use std::net::{IpAddr, ToSocketAddrs};
use std::path::Path;

/// Sentinel's port when an address names none.
pub(crate) const SENTINEL_PORT: u16 = 26379;

/// A Redis or Sentinel address as Sentinel announces it: an IP (v4 or v6) or a host name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Addr {
    pub(crate) host: String,
    pub(crate) port: u16,
}

impl Addr {
    /// The same address with its host in canonical form (see [`canonical_host`]).
    pub(crate) fn canonical(&self) -> Addr {
        Addr {
            host: canonical_host(&self.host),
            port: self.port,
        }
    }
}

impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// The Sentinel password: the first line of `file`, trailing white space dropped.
pub(crate) fn read_password(file: &Path) -> std::io::Result<String> {
    let text = std::fs::read_to_string(file)?;
    Ok(text.lines().next().unwrap_or("").trim_end().to_string())
}

/// `host:port`, `[v6]:port`, or a bare host (then `default_port`).
pub(crate) fn parse_addr(value: &str, default_port: u16) -> Result<Addr, String> {
    let bad = || format!("expected HOST:PORT or [IPV6]:PORT, got {value:?}");
    let (host, port) = if let Some(rest) = value.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or_else(bad)?;
        match after.strip_prefix(':') {
            Some(p) => (host, p.parse::<u16>().map_err(|_| bad())?),
            None if after.is_empty() => (host, default_port),
            None => return Err(bad()),
        }
    } else if value.matches(':').count() == 1 {
        let (host, p) = value.split_once(':').ok_or_else(bad)?;
        (host, p.parse::<u16>().map_err(|_| bad())?)
    } else {
        (value, default_port)
    };
    if host.is_empty() || port == 0 {
        return Err(bad());
    }
    Ok(Addr {
        host: canonical_host(host),
        port,
    })
}

/// IP addresses in canonical form (so `fd00::0012` equals `fd00::12`), names lowercased.
pub(crate) fn canonical_host(host: &str) -> String {
    match host.parse::<IpAddr>() {
        Ok(ip) => ip.to_string(),
        Err(_) => host.trim_end_matches('.').to_ascii_lowercase(),
    }
}

/// The addresses a cluster node name resolves to (`/etc/hosts`, DNS).
pub(crate) fn resolve(name: &str) -> Vec<IpAddr> {
    (name, 0)
        .to_socket_addrs()
        .map(|addrs| addrs.map(|a| a.ip()).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_canonical() {
        assert_eq!(canonical_host("FD00:0:0::0012"), "fd00::12");
        assert_eq!(canonical_host("10.0.0.1"), "10.0.0.1");
        assert_eq!(canonical_host("Node1.Example."), "node1.example");
    }
}
