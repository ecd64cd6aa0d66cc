//! The two block agents: the same code, told apart only by this data.

use crate::firewall::Port;

/// Which port an agent refuses by default, and under which name it is installed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentKind {
    /// `RedisLBReadBlock`: refuses reads (6380) where a node must serve nothing.
    Read,
    /// `RedisLBWriteBlock`: refuses writes (6381) wherever the node is not the primary.
    Write,
}

impl AgentKind {
    pub(crate) const ALL: [AgentKind; 2] = [AgentKind::Read, AgentKind::Write];

    pub(crate) fn name(self) -> &'static str {
        match self {
            AgentKind::Read => "RedisLBReadBlock",
            AgentKind::Write => "RedisLBWriteBlock",
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    pub(crate) fn default_port(self) -> Port {
        match self {
            AgentKind::Read => Port::new(6380),
            AgentKind::Write => Port::new(6381),
        }
    }

    /// The meta-data exactly as shipped in `ocf/`.
    pub(crate) fn metadata(self) -> &'static str {
        match self {
            AgentKind::Read => include_str!("../../ocf/RedisLBReadBlock.xml"),
            AgentKind::Write => include_str!("../../ocf/RedisLBWriteBlock.xml"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::params::parameter_defaults;
    use quick_xml::Reader;
    use quick_xml::events::Event;

    /// (parameter name, default attribute) in the order the meta-data lists them.
    fn metadata_parameters(xml: &str) -> Vec<(String, Option<String>)> {
        let mut reader = Reader::from_str(xml);
        let mut params = Vec::new();
        loop {
            match reader.read_event().expect("meta-data is well-formed XML") {
                Event::Start(e) | Event::Empty(e) => {
                    let attr = |name: &str| {
                        e.try_get_attribute(name).unwrap().map(|a| {
                            a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                                .unwrap()
                                .into_owned()
                        })
                    };
                    match e.name().as_ref() {
                        "parameter" => params.push((attr("name").unwrap(), None)),
                        "content" => params.last_mut().unwrap().1 = attr("default"),
                        _ => {}
                    }
                }
                Event::Eof => break,
                _ => {}
            }
        }
        params
    }

    #[test]
    fn metadata_documents_every_parameter_with_the_code_default() {
        for kind in AgentKind::ALL {
            let documented = metadata_parameters(kind.metadata());
            let coded: Vec<(String, Option<String>)> = parameter_defaults(kind)
                .into_iter()
                .map(|(n, d)| (n.to_string(), d))
                .collect();
            assert_eq!(documented, coded, "{}", kind.name());
            let header = format!(
                "<resource-agent name=\"{}\" version=\"{}\">",
                kind.name(),
                env!("CARGO_PKG_VERSION")
            );
            assert!(
                kind.metadata().contains(&header),
                "{} lacks {header}",
                kind.name()
            );
        }
    }

    #[test]
    fn agents_differ_only_by_name_port_and_prose() {
        let read = AgentKind::Read.metadata().lines().count();
        let write = AgentKind::Write.metadata().lines().count();
        assert_eq!(read, write);
        assert_ne!(
            AgentKind::Read.default_port(),
            AgentKind::Write.default_port()
        );
        assert_eq!(
            AgentKind::from_name("RedisLBReadBlock"),
            Some(AgentKind::Read)
        );
        assert_eq!(
            AgentKind::from_name("RedisLBWriteBlock"),
            Some(AgentKind::Write)
        );
        assert_eq!(AgentKind::from_name("RedisLBBlock"), None);
    }
}
