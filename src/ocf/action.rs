//! The actions an agent is asked to do, parsed from `argv[1]` and nothing else.

/// What Pacemaker (or a person) asks the agent to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Action {
    Start,
    Stop,
    Monitor,
    ValidateAll,
    MetaData,
    Usage,
    /// Anything else, `promote` and `demote` included: answered with "unimplemented".
    Unknown(String),
}

impl Action {
    pub(crate) fn parse(arg: Option<&str>) -> Self {
        match arg {
            Some("start") => Action::Start,
            Some("stop") => Action::Stop,
            Some("monitor") => Action::Monitor,
            Some("validate-all") => Action::ValidateAll,
            Some("meta-data") => Action::MetaData,
            Some("usage") | Some("help") => Action::Usage,
            Some(other) => Action::Unknown(other.to_string()),
            None => Action::Unknown(String::new()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_parse_exactly() {
        let table = [
            (Some("start"), Action::Start),
            (Some("stop"), Action::Stop),
            (Some("monitor"), Action::Monitor),
            (Some("validate-all"), Action::ValidateAll),
            (Some("meta-data"), Action::MetaData),
            (Some("usage"), Action::Usage),
            (Some("help"), Action::Usage),
            (Some("promote"), Action::Unknown("promote".into())),
            (Some("demote"), Action::Unknown("demote".into())),
            (Some("START"), Action::Unknown("START".into())),
            (Some("status"), Action::Unknown("status".into())),
            (None, Action::Unknown(String::new())),
        ];
        for (arg, want) in table {
            assert_eq!(Action::parse(arg), want, "argv[1] {arg:?}");
        }
    }
}
