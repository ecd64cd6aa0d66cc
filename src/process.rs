//! The process's arguments and environment as one value, so tests can hand the code any of them.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};

/// What the program was started with: its argv and environment.
#[derive(Debug, Clone, Default)]
pub struct Process {
    args: Vec<OsString>,
    env: HashMap<OsString, OsString>,
}

impl Process {
    /// The real process: `std::env`, read once here and nowhere else.
    pub fn from_std() -> Self {
        Self {
            args: std::env::args_os().collect(),
            env: std::env::vars_os().collect(),
        }
    }

    /// A process with the given argv and environment (for tests and for `redis-ha agent`).
    pub fn new<A, K, V>(args: A, env: impl IntoIterator<Item = (K, V)>) -> Self
    where
        A: IntoIterator,
        A::Item: Into<OsString>,
        K: Into<OsString>,
        V: Into<OsString>,
    {
        Self {
            args: args.into_iter().map(Into::into).collect(),
            env: env.into_iter().map(|(k, v)| (k.into(), v.into())).collect(),
        }
    }

    pub fn args(&self) -> &[OsString] {
        &self.args
    }

    /// `argv[0]`, empty when the kernel gave none.
    pub fn argv0(&self) -> &OsStr {
        self.args
            .first()
            .map_or(OsStr::new(""), OsString::as_os_str)
    }

    /// An environment variable as UTF-8; a value that is not UTF-8 reads as absent.
    pub fn var(&self, name: &str) -> Option<&str> {
        self.env.get(OsStr::new(name)).and_then(|v| v.to_str())
    }

    /// The same process with other arguments (the environment is kept).
    pub fn with_args(&self, args: Vec<OsString>) -> Self {
        Self {
            args,
            env: self.env.clone(),
        }
    }
}
