//! The hand-off's two messages, one line each, parsed into types before anything acts on
//! them. Pure. A request: `redis-ha-sync/1 <origin> <reason>`; an answer:
//! `redis-ha-sync/1 <done|retry|give-up> <message>`. Sizes are bounded both ways, and
//! text is kept printable (it ends up in logs).

use crate::exit::HelperExit;

/// The first word of every line: the protocol and its version.
const MAGIC: &str = "redis-ha-sync/1";

/// The longest request line, newline included.
pub(crate) const MAX_REQUEST: usize = 512;
/// The longest answer line, newline included.
pub(crate) const MAX_ANSWER: usize = 2048;

/// Which of Sentinel's scripts asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    Reconfig,
    Notify,
}

impl Origin {
    const ALL: [Origin; 2] = [Origin::Reconfig, Origin::Notify];

    pub(crate) fn word(self) -> &'static str {
        match self {
            Origin::Reconfig => "sentinel-reconfig",
            Origin::Notify => "sentinel-notify",
        }
    }
}

/// "Run a sync for me, and tell me how it went."
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Request {
    pub(crate) origin: Origin,
    /// What Sentinel reported: for a notification script the event's type and
    /// description, as the service's watcher hears them on Sentinel's pub/sub.
    pub(crate) reason: String,
}

/// The outcome of the sync that ran for a request, in Sentinel's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Answer {
    pub(crate) exit: HelperExit,
    /// The sync's summary line, or why it did not run.
    pub(crate) message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum WireError {
    #[error("longer than {0} bytes")]
    TooLong(usize),
    #[error("not one line: a newline is missing or data follows it")]
    NotOneLine,
    #[error("not UTF-8")]
    NotUtf8,
    #[error("a control character in the text")]
    Control,
    #[error("not a {MAGIC} line: {0:?}")]
    Magic(String),
    #[error("unknown {what} {word:?}")]
    Word { what: &'static str, word: String },
}

/// `text` with control characters as spaces, cut (at a character boundary) so that the
/// whole line with `prefix` and its newline fits in `max` bytes.
fn fitted(prefix: &str, text: &str, max: usize) -> String {
    let room = max - prefix.len() - 1;
    let mut out = String::new();
    for c in text.chars().map(|c| if c.is_control() { ' ' } else { c }) {
        if out.len() + c.len_utf8() > room {
            break;
        }
        out.push(c);
    }
    out
}

/// The line without its newline, split into the word after [`MAGIC`] and the rest.
fn split(line: &[u8], max: usize) -> Result<(&str, &str), WireError> {
    if line.len() > max {
        return Err(WireError::TooLong(max));
    }
    let Some(body) = line.strip_suffix(b"\n") else {
        return Err(WireError::NotOneLine);
    };
    if body.contains(&b'\n') {
        return Err(WireError::NotOneLine);
    }
    let body = std::str::from_utf8(body).map_err(|_| WireError::NotUtf8)?;
    if body.chars().any(char::is_control) {
        return Err(WireError::Control);
    }
    let mut words = body.splitn(3, ' ');
    let magic = words.next().unwrap_or_default();
    if magic != MAGIC {
        return Err(WireError::Magic(magic.chars().take(40).collect()));
    }
    Ok((
        words.next().unwrap_or_default(),
        words.next().unwrap_or_default(),
    ))
}

fn outcome_word(exit: HelperExit) -> &'static str {
    match exit {
        HelperExit::Done => "done",
        HelperExit::Retry => "retry",
        HelperExit::GiveUp => "give-up",
    }
}

impl Request {
    /// A request whose reason is made to fit.
    pub(crate) fn new(origin: Origin, reason: &str) -> Self {
        let prefix = format!("{MAGIC} {} ", origin.word());
        Request {
            origin,
            reason: fitted(&prefix, reason, MAX_REQUEST),
        }
    }

    /// The line to send, newline included.
    pub(crate) fn line(&self) -> String {
        format!("{MAGIC} {} {}\n", self.origin.word(), self.reason)
    }

    /// One whole line as received, newline included.
    pub(crate) fn parse(line: &[u8]) -> Result<Self, WireError> {
        let (word, reason) = split(line, MAX_REQUEST)?;
        let origin = Origin::ALL
            .into_iter()
            .find(|o| o.word() == word)
            .ok_or_else(|| WireError::Word {
                what: "origin",
                word: word.chars().take(40).collect(),
            })?;
        Ok(Request {
            origin,
            reason: reason.to_string(),
        })
    }
}

impl Answer {
    /// An answer whose message is made to fit.
    pub(crate) fn new(exit: HelperExit, message: &str) -> Self {
        let prefix = format!("{MAGIC} {} ", outcome_word(exit));
        Answer {
            exit,
            message: fitted(&prefix, message, MAX_ANSWER),
        }
    }

    pub(crate) fn line(&self) -> String {
        format!("{MAGIC} {} {}\n", outcome_word(self.exit), self.message)
    }

    pub(crate) fn parse(line: &[u8]) -> Result<Self, WireError> {
        let (word, message) = split(line, MAX_ANSWER)?;
        let exit = [HelperExit::Done, HelperExit::Retry, HelperExit::GiveUp]
            .into_iter()
            .find(|&e| outcome_word(e) == word)
            .ok_or_else(|| WireError::Word {
                what: "outcome",
                word: word.chars().take(40).collect(),
            })?;
        Ok(Answer {
            exit,
            message: message.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_from_one_bounded_line() {
        let ok = |line: &str| Request::parse(line.as_bytes());
        let table: [(&str, Result<Request, WireError>); 11] = [
            (
                "redis-ha-sync/1 sentinel-notify +switch-master m 1 2 3 4\n",
                Ok(Request {
                    origin: Origin::Notify,
                    reason: "+switch-master m 1 2 3 4".into(),
                }),
            ),
            (
                "redis-ha-sync/1 sentinel-reconfig\n",
                Ok(Request {
                    origin: Origin::Reconfig,
                    reason: String::new(),
                }),
            ),
            (
                "redis-ha-sync/1 sentinel-notify x",
                Err(WireError::NotOneLine),
            ),
            (
                "redis-ha-sync/1 sentinel-notify x\nmore\n",
                Err(WireError::NotOneLine),
            ),
            (
                "redis-ha-sync/1 sentinel-notify a\tb\n",
                Err(WireError::Control),
            ),
            (
                "redis-ha-sync/2 sentinel-notify x\n",
                Err(WireError::Magic("redis-ha-sync/2".into())),
            ),
            ("GET / HTTP/1.0\n", Err(WireError::Magic("GET".into()))),
            ("\n", Err(WireError::Magic(String::new()))),
            (
                "redis-ha-sync/1 redis-ha x\n",
                Err(WireError::Word {
                    what: "origin",
                    word: "redis-ha".into(),
                }),
            ),
            (
                "redis-ha-sync/1 done x\n",
                Err(WireError::Word {
                    what: "origin",
                    word: "done".into(),
                }),
            ),
            (
                "redis-ha-sync/1 sentinel-notify \u{0}\n",
                Err(WireError::Control),
            ),
        ];
        for (line, want) in table {
            assert_eq!(ok(line), want, "{line:?}");
        }
        assert_eq!(
            Request::parse(b"redis-ha-sync/1 sentinel-notify \xff\n"),
            Err(WireError::NotUtf8)
        );
        let long = format!("redis-ha-sync/1 sentinel-notify {}\n", "x".repeat(500));
        assert_eq!(
            Request::parse(long.as_bytes()),
            Err(WireError::TooLong(MAX_REQUEST))
        );
    }

    #[test]
    fn answers_parse_into_sentinels_exit_codes() {
        let table = [
            ("done", HelperExit::Done),
            ("retry", HelperExit::Retry),
            ("give-up", HelperExit::GiveUp),
        ];
        for (word, exit) in table {
            let line = format!("redis-ha-sync/1 {word} epoch 3, no change\n");
            let a = Answer::parse(line.as_bytes()).unwrap();
            assert_eq!((a.exit, a.message.as_str()), (exit, "epoch 3, no change"));
            assert_eq!(Answer::new(exit, "epoch 3, no change").line(), line);
        }
        assert_eq!(
            Answer::parse(b"redis-ha-sync/1 maybe x\n"),
            Err(WireError::Word {
                what: "outcome",
                word: "maybe".into()
            })
        );
        assert_eq!(
            Answer::parse(b"redis-ha-sync/1 sentinel-notify x\n").map(|a| a.exit),
            Err(WireError::Word {
                what: "outcome",
                word: "sentinel-notify".into()
            })
        );
    }

    #[test]
    fn text_is_made_to_fit_and_printable_and_reads_back() {
        // A long reason with multi-byte characters and a newline in it.
        let reason = format!("+sdown\nmaster m é{}", "é".repeat(400));
        let r = Request::new(Origin::Notify, &reason);
        let line = r.line();
        assert!(line.len() <= MAX_REQUEST, "{}", line.len());
        assert!(r.reason.starts_with("+sdown master m é"));
        assert_eq!(Request::parse(line.as_bytes()), Ok(r));
        let a = Answer::new(HelperExit::Retry, &"z".repeat(5000));
        assert_eq!(a.line().len(), MAX_ANSWER);
        assert_eq!(Answer::parse(a.line().as_bytes()), Ok(a));
    }
}
