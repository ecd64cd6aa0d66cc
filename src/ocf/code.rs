//! OCF exit codes: a closed set, turned into a number in one place.

/// The exit codes of OCF RA API 1.1 that our agents use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OcfCode {
    Success,
    /// Generic error: transient, Pacemaker may retry here.
    ErrGeneric,
    /// Unknown or unsupported action.
    ErrUnimplemented,
    /// Not enough privileges.
    ErrPerm,
    /// A tool the agent needs is not installed on this host.
    ErrInstalled,
    /// The configuration is invalid everywhere: Pacemaker stops the resource cluster-wide.
    ErrConfigured,
    /// Cleanly stopped (monitor only).
    NotRunning,
}

impl OcfCode {
    pub(crate) fn exit_code(self) -> i32 {
        match self {
            OcfCode::Success => 0,
            OcfCode::ErrGeneric => 1,
            OcfCode::ErrUnimplemented => 3,
            OcfCode::ErrPerm => 4,
            OcfCode::ErrInstalled => 5,
            OcfCode::ErrConfigured => 6,
            OcfCode::NotRunning => 7,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_the_ones_the_spec_numbers() {
        let table = [
            (OcfCode::Success, 0),
            (OcfCode::ErrGeneric, 1),
            (OcfCode::ErrUnimplemented, 3),
            (OcfCode::ErrPerm, 4),
            (OcfCode::ErrInstalled, 5),
            (OcfCode::ErrConfigured, 6),
            (OcfCode::NotRunning, 7),
        ];
        for (code, n) in table {
            assert_eq!(code.exit_code(), n, "{code:?}");
        }
    }
}
