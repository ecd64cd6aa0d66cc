//! The values that describe one block, each validated when parsed.

use std::fmt;

/// An error in one value: which parameter, what was given, what is accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {param} {value:?}: expected {expected}")]
pub(crate) struct BadValue {
    pub(crate) param: &'static str,
    pub(crate) value: String,
    pub(crate) expected: String,
}

impl BadValue {
    pub(crate) fn new(param: &'static str, value: &str, expected: impl Into<String>) -> Self {
        Self {
            param,
            value: value.to_string(),
            expected: expected.into(),
        }
    }
}

/// Declares an enum of keyword values with its parser and its canonical spelling.
macro_rules! keyword_enum {
    ($(#[$m:meta])* $name:ident, $param:literal { $($variant:ident = $word:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub(crate) enum $name { $($variant),+ }

        impl $name {
            pub(crate) const WORDS: &'static [&'static str] = &[$($word),+];

            pub(crate) fn parse(value: &str) -> Result<Self, BadValue> {
                match value {
                    $($word => Ok(Self::$variant),)+
                    _ => Err(BadValue::new($param, value, format!("one of {}", Self::WORDS.join(", ")))),
                }
            }

            pub(crate) fn word(self) -> &'static str {
                match self { $(Self::$variant => $word),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.word())
            }
        }
    };
}

keyword_enum!(
    /// How the public port is recognised in INPUT, where a REDIRECT has already made it 6379.
    MatchBy, "match" { Conntrack = "conntrack", Mark = "mark", Dport = "dport" }
);
keyword_enum!(
    /// What a refused packet gets back.
    RejectWith, "reject_with" {
        TcpReset = "tcp-reset",
        IcmpPortUnreachable = "icmp-port-unreachable",
        Drop = "drop",
    }
);
keyword_enum!(
    /// Which address families the block covers.
    Families, "family" { Ipv4 = "ipv4", Ipv6 = "ipv6", Both = "both" }
);
keyword_enum!(
    /// Which iptables to run: the one on PATH, or a named backend.
    Backend, "backend" { Auto = "auto", Nft = "nft", Legacy = "legacy" }
);

/// One address family: decides between `iptables` and `ip6tables`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Family {
    V4,
    V6,
}

impl Families {
    pub(crate) fn list(self) -> &'static [Family] {
        match self {
            Families::Ipv4 => &[Family::V4],
            Families::Ipv6 => &[Family::V6],
            Families::Both => &[Family::V4, Family::V6],
        }
    }
}

impl Backend {
    /// The program for one family; `auto` takes whatever `iptables` on PATH is.
    pub(crate) fn program(self, family: Family) -> &'static str {
        match (self, family) {
            (Backend::Auto, Family::V4) => "iptables",
            (Backend::Auto, Family::V6) => "ip6tables",
            (Backend::Nft, Family::V4) => "iptables-nft",
            (Backend::Nft, Family::V6) => "ip6tables-nft",
            (Backend::Legacy, Family::V4) => "iptables-legacy",
            (Backend::Legacy, Family::V6) => "ip6tables-legacy",
        }
    }

    /// The program that applies a whole script in one transaction (`iptables-restore`);
    /// `auto` takes the one on PATH, unless [`Xtables`](super::Xtables) can tell which
    /// backend the `iptables` on PATH is.
    pub(crate) fn restore_program(self, family: Family) -> &'static str {
        match (self, family) {
            (Backend::Auto, Family::V4) => "iptables-restore",
            (Backend::Auto, Family::V6) => "ip6tables-restore",
            (Backend::Nft, Family::V4) => "iptables-nft-restore",
            (Backend::Nft, Family::V6) => "ip6tables-nft-restore",
            (Backend::Legacy, Family::V4) => "iptables-legacy-restore",
            (Backend::Legacy, Family::V6) => "ip6tables-legacy-restore",
        }
    }
}

/// A TCP port, 1 to 65535.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Port(u16);

impl Port {
    pub(crate) fn parse(param: &'static str, value: &str) -> Result<Self, BadValue> {
        match value.parse::<u16>() {
            Ok(n) if n > 0 && !value.starts_with('+') && !value.starts_with('0') => Ok(Port(n)),
            _ => Err(BadValue::new(
                param,
                value,
                "a TCP port number from 1 to 65535",
            )),
        }
    }

    pub(crate) const fn new(n: u16) -> Self {
        Port(n)
    }

    pub(crate) fn get(self) -> u16 {
        self.0
    }
}

impl fmt::Display for Port {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A user-defined filter chain that we own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ChainName(String);

/// Names iptables reserves: the built-in chains, the standard verdicts, and every target
/// extension xtables ships (a chain named like a target is taken for the target: `-j
/// TRACE` jumps to no chain of ours). From iptables 1.8.9's `libxt_*`, `libipt_*` and
/// `libip6t_*` target modules.
const RESERVED: &[&str] = &[
    "INPUT",
    "OUTPUT",
    "FORWARD",
    "PREROUTING",
    "POSTROUTING",
    "ACCEPT",
    "DROP",
    "RETURN",
    "QUEUE",
    "AUDIT",
    "CHECKSUM",
    "CLASSIFY",
    "CLUSTERIP",
    "CONNMARK",
    "CONNSECMARK",
    "CT",
    "DNAT",
    "DNPT",
    "DSCP",
    "ECN",
    "HL",
    "HMARK",
    "IDLETIMER",
    "LED",
    "LOG",
    "MARK",
    "MASQUERADE",
    "NAT",
    "NETMAP",
    "NFLOG",
    "NFQUEUE",
    "NOTRACK",
    "RATEEST",
    "REDIRECT",
    "REJECT",
    "SECMARK",
    "SET",
    "SNAT",
    "SNPT",
    "SYNPROXY",
    "TCPMSS",
    "TCPOPTSTRIP",
    "TEE",
    "TOS",
    "TPROXY",
    "TRACE",
    "TTL",
    "ULOG",
];

/// iptables' limit (`XT_EXTENSION_MAXNAMELEN` less the terminating NUL).
const CHAIN_MAX: usize = 28;

impl ChainName {
    pub(crate) fn parse(value: &str) -> Result<Self, BadValue> {
        let expected = "1 to 28 characters of A-Z a-z 0-9 _ -, starting with a letter or digit, \
                        not a built-in chain or target name";
        let first_ok = value
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric());
        let chars_ok = value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        let reserved = RESERVED.iter().any(|r| r.eq_ignore_ascii_case(value));
        if value.len() <= CHAIN_MAX && first_ok && chars_ok && !reserved {
            Ok(ChainName(value.to_string()))
        } else {
            Err(BadValue::new("chain", value, expected))
        }
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ChainName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Which packets of the port a block refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Scope {
    /// Every packet: new connections, and those already open (a reset ends them).
    #[default]
    Every,
    /// New connections only (`--ctstate NEW`): those already open carry on. The guard's
    /// first step when it starts refusing reads, so that a read already under way is
    /// answered before the rest are cut (`guard::enforce`).
    New,
}

/// Everything that decides which rules refuse one port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Block {
    /// Names the owner in the rule's comment tag (the agent's name).
    pub(crate) owner: &'static str,
    pub(crate) port: Port,
    pub(crate) match_by: MatchBy,
    pub(crate) reject_with: RejectWith,
    pub(crate) scope: Scope,
    pub(crate) families: Families,
    pub(crate) chain: ChainName,
    pub(crate) backend: Backend,
}

impl Block {
    /// The `-m comment` tag that marks this rule as ours: owner and port.
    pub(crate) fn tag(&self) -> String {
        format!("{}{}", Self::tag_prefix(self.owner), self.port)
    }

    /// What every rule of one owner's tag starts with.
    pub(crate) fn tag_prefix(owner: &str) -> String {
        format!("redis-ha:{owner}:")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_accept_only_plain_numbers_in_range() {
        let table = [
            ("6381", Some(6381)),
            ("1", Some(1)),
            ("65535", Some(65535)),
            ("0", None),
            ("65536", None),
            ("-1", None),
            ("+80", None),
            ("080", None),
            (" 80", None),
            ("", None),
            ("http", None),
        ];
        for (value, want) in table {
            assert_eq!(
                Port::parse("port", value).ok().map(Port::get),
                want,
                "{value:?}"
            );
        }
    }

    #[test]
    fn chain_names_follow_iptables_rules() {
        let table = [
            ("REDIS-HA", true),
            ("redis_ha2", true),
            ("A", true),
            ("ABCDEFGHIJKLMNOPQRSTUVWXYZ12", true),
            ("ABCDEFGHIJKLMNOPQRSTUVWXYZ123", false),
            ("", false),
            ("-X", false),
            ("!X", false),
            ("RED IS", false),
            ("INPUT", false),
            ("input", false),
            ("DROP", false),
            ("TRACE", false),
            ("ct", false),
            ("SNAT", false),
            ("MASQUERADE", false),
            ("NFLOG", false),
            ("TEE", false),
            ("AUDIT", false),
            ("a.b", false),
            ("ä", false),
        ];
        for (value, ok) in table {
            assert_eq!(ChainName::parse(value).is_ok(), ok, "{value:?}");
        }
    }

    /// Every target module the installed iptables ships is a name we refuse.
    #[test]
    fn every_installed_target_extension_is_reserved() {
        let dir = std::path::Path::new("/usr/lib/x86_64-linux-gnu/xtables");
        let names: Vec<String> = std::fs::read_dir(dir)
            .expect("iptables' extensions (the tests need iptables)")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter_map(|f| {
                let stem = f.strip_suffix(".so")?;
                let name = ["libxt_", "libipt_", "libip6t_"]
                    .iter()
                    .find_map(|p| stem.strip_prefix(p))?;
                // Targets are upper case; matches are lower case.
                name.chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
                    .then(|| name.to_string())
            })
            .collect();
        assert!(names.len() > 20, "{names:?}");
        for name in names {
            assert!(ChainName::parse(&name).is_err(), "{name} is accepted");
        }
    }

    #[test]
    fn keyword_errors_list_the_accepted_values() {
        let err = RejectWith::parse("reset").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid reject_with \"reset\": expected one of tcp-reset, icmp-port-unreachable, drop"
        );
        assert_eq!(MatchBy::parse("mark"), Ok(MatchBy::Mark));
        assert_eq!(Families::parse("both"), Ok(Families::Both));
        assert!(Families::parse("inet").is_err());
        assert_eq!(Backend::parse("legacy"), Ok(Backend::Legacy));
    }

    #[test]
    fn tags_name_owner_and_port() {
        let block = Block {
            owner: "RedisLBWriteBlock",
            port: Port::new(6381),
            match_by: MatchBy::Conntrack,
            reject_with: RejectWith::TcpReset,
            scope: Scope::Every,
            families: Families::Ipv4,
            chain: ChainName::parse("REDIS-HA").unwrap(),
            backend: Backend::Auto,
        };
        assert_eq!(block.tag(), "redis-ha:RedisLBWriteBlock:6381");
        assert!(
            block
                .tag()
                .starts_with(&Block::tag_prefix("RedisLBWriteBlock"))
        );
    }
}
