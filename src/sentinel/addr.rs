//! Addresses as Sentinel announces them (an IP, v4 or v6, or a host name), in one
//! canonical form; the credentials to reach them (an ACL user and its password, or the
//! default user's password).

use std::fmt;
use std::net::IpAddr;
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

/// A password: the first line of `file`, trailing white space dropped.
pub(crate) fn read_password(file: &Path) -> std::io::Result<String> {
    let text = std::fs::read_to_string(file)?;
    Ok(text.lines().next().unwrap_or("").trim_end().to_string())
}

/// A Redis ACL user name (Redis 6+): non-empty printable ASCII without spaces, so that it
/// is one word in `AUTH`, in an `aclfile` and in a log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AclUser(String);

impl AclUser {
    /// `key` names the setting in the error (`redis_user`, `--user`).
    pub(crate) fn parse(key: &str, value: &str) -> Result<AclUser, String> {
        let ok =
            !value.is_empty() && value.len() <= 128 && value.bytes().all(|b| b.is_ascii_graphic());
        if ok {
            Ok(AclUser(value.to_string()))
        } else {
            Err(format!(
                "{key} {value:?}: expected a Redis ACL user name (printable ASCII, no spaces, \
                 1 to 128 characters)"
            ))
        }
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AclUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whom we authenticate as: an ACL user with its password (`AUTH user password`), or the
/// default user with `requirepass`'s password (`AUTH password`). The password is never
/// shown (`Debug` hides it).
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Credentials {
    pub(crate) user: Option<AclUser>,
    pub(crate) password: String,
}

impl Credentials {
    /// `AUTH`'s arguments, the command name included: 2 or 3 words.
    pub(crate) fn auth_args(&self) -> Vec<&str> {
        let mut args = vec!["AUTH"];
        args.extend(self.user.as_ref().map(AclUser::as_str));
        args.push(&self.password);
        args
    }

    /// `AUTH` as one command for the redis crate.
    pub(crate) fn auth_command(&self) -> redis::Cmd {
        let mut cmd = redis::Cmd::new();
        for arg in self.auth_args() {
            cmd.arg(arg);
        }
        cmd
    }

    /// Who we are, for messages: `user NAME` or `the default user`.
    pub(crate) fn who(&self) -> String {
        match &self.user {
            Some(u) => format!("user {u}"),
            None => "the default user".into(),
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &"<hidden>")
            .finish()
    }
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
    match host_of(host) {
        Some(host) if port != 0 => Ok(Addr { host, port }),
        _ => Err(bad()),
    }
}

/// `host` in canonical form, `None` when nothing is left of it: empty, or only the dots
/// a fully qualified name ends with (`.` names no host).
pub(crate) fn host_of(host: &str) -> Option<String> {
    Some(canonical_host(host)).filter(|h| !h.is_empty())
}

/// IP addresses in canonical form (so `fd00::0012` equals `fd00::12`), names lowercased.
pub(crate) fn canonical_host(host: &str) -> String {
    match host.parse::<IpAddr>() {
        Ok(ip) => ip.to_string(),
        Err(_) => host.trim_end_matches('.').to_ascii_lowercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acl_user_names_are_one_printable_word() {
        for good in ["redis-ha", "a", "Helper_1", "x@y.z", "a|b"] {
            assert_eq!(AclUser::parse("redis_user", good).unwrap().as_str(), good);
        }
        let long = "u".repeat(129);
        for bad in [
            "",
            "two words",
            "tab\there",
            "caf\u{e9}",
            "nl\n",
            long.as_str(),
        ] {
            let e = AclUser::parse("redis_user", bad).unwrap_err();
            assert!(e.starts_with("redis_user "), "{bad:?}: {e}");
            assert!(e.contains("expected a Redis ACL user name"), "{bad:?}: {e}");
        }
    }

    #[test]
    fn auth_has_two_words_for_the_default_user_and_three_for_an_acl_user() {
        let default = Credentials {
            user: None,
            password: "pw".into(),
        };
        assert_eq!(default.auth_args(), ["AUTH", "pw"]);
        let acl = Credentials {
            user: Some(AclUser::parse("u", "redis-ha").unwrap()),
            password: "pw".into(),
        };
        assert_eq!(acl.auth_args(), ["AUTH", "redis-ha", "pw"]);
        assert_eq!(
            acl.auth_command().get_packed_command(),
            b"*3\r\n$4\r\nAUTH\r\n$8\r\nredis-ha\r\n$2\r\npw\r\n"
        );
        assert!(!format!("{acl:?}").contains("pw"), "{acl:?}");
        assert_eq!(acl.who(), "user redis-ha");
    }

    #[test]
    fn hosts_are_canonical() {
        assert_eq!(canonical_host("FD00:0:0::0012"), "fd00::12");
        assert_eq!(canonical_host("10.0.0.1"), "10.0.0.1");
        assert_eq!(canonical_host("Node1.Example."), "node1.example");
    }
}
