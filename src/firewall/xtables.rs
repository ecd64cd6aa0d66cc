//! Running iptables/ip6tables and their `-restore`: bounded lock waits, and their exit
//! codes read deliberately (4 is "resource problem", not OCF's 4; `-C`'s 1 means "no such
//! rule", a restore's 1 that its transaction was refused whole).

use std::io::ErrorKind;
use std::process::Command;
use std::time::{Duration, Instant};

use super::block::{Backend, ChainName, Family};
use super::error::FirewallError;
use super::rule::Rule;
use super::save::Listing;
use super::transaction::Script;
use crate::child::{self, End, Finished};

/// Runs one backend's iptables programs until a deadline.
#[derive(Debug, Clone)]
pub(crate) struct Xtables {
    deadline: Instant,
    /// Longest wait for the xtables lock in any one call.
    wait_cap: Duration,
    /// ocf-tester asks us to behave as if no binary were installed.
    pretend_missing: bool,
}

/// How a finished iptables run turned out.
enum Ran {
    Ok(String),
    /// `-C`/`-D`/`-S` found no such rule or chain.
    NoSuchRule,
}

impl Xtables {
    pub(crate) fn new(budget: Duration, wait_cap: Duration, pretend_missing: bool) -> Self {
        Self {
            deadline: Instant::now() + budget,
            wait_cap,
            pretend_missing,
        }
    }

    /// `-C`: is the rule there?
    pub(crate) fn check(
        &self,
        backend: Backend,
        family: Family,
        rule: &Rule,
    ) -> Result<bool, FirewallError> {
        Ok(self.check_all(&[(backend, family, rule)])?[0])
    }

    /// Several `-C` at once, in parallel: a monitor costs one iptables run of wall time,
    /// not one per rule.
    pub(crate) fn check_all(
        &self,
        checks: &[(Backend, Family, &Rule)],
    ) -> Result<Vec<bool>, FirewallError> {
        Ok(self.listings_and_checks(&[], "filter", checks)?.1)
    }

    /// The `-S` listing of `table` in each of `tables` and the `-C` of each of `checks`,
    /// all at once, in parallel: what one monitor needs in one iptables run of wall time.
    pub(crate) fn listings_and_checks(
        &self,
        tables: &[(Backend, Family)],
        table: &str,
        checks: &[(Backend, Family, &Rule)],
    ) -> Result<(Vec<Listing>, Vec<bool>), FirewallError> {
        let list = strings(&["-t", table, "-S"]);
        let jobs: Vec<(Backend, Family, Vec<String>)> = tables
            .iter()
            .map(|&(backend, family)| (backend, family, list.clone()))
            .chain(
                checks
                    .iter()
                    .map(|&(backend, family, rule)| (backend, family, rule_args("-C", rule))),
            )
            .collect();
        let results: Vec<Result<Ran, FirewallError>> = std::thread::scope(|scope| {
            let started: Vec<_> = jobs
                .iter()
                .map(|(backend, family, args)| scope.spawn(|| self.run(*backend, *family, args)))
                .collect();
            started
                .into_iter()
                .map(|job| job.join().expect("running iptables does not panic"))
                .collect()
        });
        let mut listings = Vec::with_capacity(tables.len());
        let mut found = Vec::with_capacity(checks.len());
        let mut first_error = None;
        for (i, result) in results.into_iter().enumerate() {
            let listing = i < tables.len();
            match result {
                // A table that does not exist yet has no chain of ours and no rule.
                Ok(Ran::Ok(out)) if listing => listings.push(Listing::parse(&out)),
                Ok(Ran::NoSuchRule) if listing => listings.push(Listing::default()),
                Ok(Ran::Ok(_)) => found.push(true),
                Ok(Ran::NoSuchRule) => found.push(false),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok((listings, found)),
        }
    }

    /// Runs a changing command; "no such rule/chain" comes back as `Ok(false)`.
    pub(crate) fn change(
        &self,
        backend: Backend,
        family: Family,
        args: &[String],
    ) -> Result<bool, FirewallError> {
        Ok(matches!(self.run(backend, family, args)?, Ran::Ok(_)))
    }

    /// The table's `-S` listing when `chain` exists in it, else `None`. Lists the whole
    /// table: iptables-nft answers `-S CHAIN` for a table it has not created yet with an
    /// "incompatible" error instead of "no such chain".
    pub(crate) fn list(
        &self,
        backend: Backend,
        family: Family,
        table: &str,
        chain: &str,
    ) -> Result<Option<String>, FirewallError> {
        let args = strings(&["-t", table, "-S"]);
        let declared = format!("-N {chain}");
        match self.run(backend, family, &args)? {
            Ran::Ok(out) if out.lines().any(|l| l.trim_end() == declared) => Ok(Some(out)),
            Ran::Ok(_) | Ran::NoSuchRule => Ok(None),
        }
    }

    /// The whole table as `-S` lists it (one run): its chains and every rule.
    pub(crate) fn listing(
        &self,
        backend: Backend,
        family: Family,
        table: &str,
    ) -> Result<Listing, FirewallError> {
        match self.run(backend, family, &strings(&["-t", table, "-S"]))? {
            Ran::Ok(out) => Ok(Listing::parse(&out)),
            // A table that does not exist yet has no chain of ours and no rule.
            Ran::NoSuchRule => Ok(Listing::default()),
        }
    }

    /// Applies `script` with `iptables-restore --noflush`: one ruleset transaction, applied
    /// whole or refused whole (then `Failed`, with the line iptables names in stderr).
    pub(crate) fn restore(
        &self,
        backend: Backend,
        family: Family,
        script: &Script,
    ) -> Result<(), FirewallError> {
        self.restore_in(backend, family, "filter", script)
    }

    /// `restore` of a script for `table`.
    fn restore_in(
        &self,
        backend: Backend,
        family: Family,
        table: &str,
        script: &Script,
    ) -> Result<(), FirewallError> {
        let program = self.restore_program(backend, family);
        let args = strings(&["--noflush"]);
        let text = script.text_in(table);
        // The script on one line, so it fits in an exit reason.
        let shown = format!("<<< '{}'", text.trim_end().replace('\n', "; "));
        let (command, done) = self.exec(program, &args, Some((&text, &shown)))?;
        finish(&command, done, false).map(|_| ())
    }

    /// The `-restore` of the same backend as the `iptables` that lists and checks (for
    /// `auto`, a PATH that puts `iptables-legacy` first as `iptables` must not get the nft
    /// `iptables-restore` next to it).
    fn restore_program(&self, backend: Backend, family: Family) -> &'static str {
        resolve(backend, family).restore_program(family)
    }

    /// Appends `rule` (or inserts it at the top) unless it is already there; true when added.
    pub(crate) fn ensure(
        &self,
        backend: Backend,
        family: Family,
        rule: &Rule,
        at_top: bool,
    ) -> Result<bool, FirewallError> {
        if self.check(backend, family, rule)? {
            return Ok(false);
        }
        let op = if at_top { "-I" } else { "-A" };
        self.change(backend, family, &op_args(op, rule))?;
        Ok(true)
    }

    /// Deletes every copy of `rule` (duplicates left by others included).
    pub(crate) fn delete_all(
        &self,
        backend: Backend,
        family: Family,
        rule: &Rule,
    ) -> Result<(), FirewallError> {
        while self.change(backend, family, &op_args("-D", rule))? {}
        Ok(())
    }

    /// The rules in `chain` as `-S` lists them, each deletable as is; none when the chain
    /// does not exist.
    pub(crate) fn rules(
        &self,
        backend: Backend,
        family: Family,
        table: &'static str,
        chain: &str,
    ) -> Result<Vec<Rule>, FirewallError> {
        let listing = self
            .list(backend, family, table, chain)?
            .unwrap_or_default();
        Ok(super::save::rules_of(&listing, chain)
            .into_iter()
            .map(|spec| Rule {
                table,
                chain: chain.to_string(),
                spec,
            })
            .collect())
    }

    /// `-N CHAIN` with our marker rule in it, in one transaction: a chain of ours is never
    /// seen unmarked (and so never taken for someone else's).
    pub(crate) fn create_marked_chain(
        &self,
        backend: Backend,
        family: Family,
        table: &'static str,
        chain: &str,
    ) -> Result<(), FirewallError> {
        let marker = super::owned::marker(table, chain);
        let script = Script {
            lines: vec![
                format!("-N {chain}"),
                format!("-A {chain} {}", marker.spec.join(" ")),
            ],
            deleted: 0,
        };
        self.restore_in(backend, family, table, &script)
    }

    /// Whether this backend's program for `family` is iptables-nft (whose rules live in
    /// nf_tables); `auto` follows the links of the program on PATH.
    pub(crate) fn is_nft(&self, backend: Backend, family: Family) -> bool {
        !self.pretend_missing && resolve(backend, family) == Backend::Nft
    }

    /// The first program this backend and family needs that cannot be run, if any: the
    /// `iptables` that lists and checks, and the `-restore` that changes.
    pub(crate) fn missing(&self, backend: Backend, family: Family) -> Option<&'static str> {
        [
            backend.program(family),
            self.restore_program(backend, family),
        ]
        .into_iter()
        .find(|program| self.pretend_missing || !on_path(program))
    }

    /// Runs one iptables program, killed if it is still running at the deadline.
    fn run(&self, backend: Backend, family: Family, args: &[String]) -> Result<Ran, FirewallError> {
        let (command, done) = self.exec(backend.program(family), args, None)?;
        finish(&command, done, true)
    }

    /// Starts `program -w SECONDS ARGS` (with `input` on stdin, and how to show it) and
    /// waits for it until the deadline; returns the command as shown in errors.
    fn exec(
        &self,
        program: &str,
        args: &[String],
        input: Option<(&str, &str)>,
    ) -> Result<(String, Finished), FirewallError> {
        let shown_input = input.map_or(String::new(), |(_, shown)| format!(" {shown}"));
        if self.pretend_missing {
            return Err(FirewallError::NotInstalled {
                program: program.to_string(),
            });
        }
        let left = self.deadline.saturating_duration_since(Instant::now());
        // iptables-legacy waits for the lock at most this long; iptables-nft ignores it.
        let wait = self.wait_cap.min(left).as_secs().max(1).to_string();
        let command = format!("{program} -w {wait} {}{shown_input}", args.join(" "));
        if left < Duration::from_millis(200) {
            return Err(FirewallError::OutOfTime { command });
        }
        let mut cmd = Command::new(program);
        cmd.arg("-w").arg(&wait).args(args);
        let done = match input {
            Some((text, _)) => child::run_with_input(&mut cmd, text.as_bytes(), left),
            None => child::run(&mut cmd, left),
        };
        match done {
            Ok(done) => Ok((command, done)),
            Err(e) if e.kind() == ErrorKind::NotFound => Err(FirewallError::NotInstalled {
                program: program.to_string(),
            }),
            Err(source) => Err(FirewallError::Spawn { command, source }),
        }
    }
}

/// Reads iptables' verdict: 0 ok; for a query (`answers_missing`), 1 (or 2 naming a
/// missing jump target) "no such rule"; 4 with a lock or permission message; anything else
/// a failure that carries stderr (for a restore, every refused transaction).
fn finish(command: &str, output: Finished, answers_missing: bool) -> Result<Ran, FirewallError> {
    let stderr = output.stderr_text();
    let code = match output.end {
        End::Code(code) => code,
        End::Signal(_) => -1,
        End::TimedOut(limit) => {
            return Err(FirewallError::TimedOut {
                command: command.to_string(),
                limit,
            });
        }
    };
    let program = command.split(' ').next().unwrap_or("iptables").to_string();
    match code {
        0 => Ok(Ran::Ok(output.stdout_text())),
        1 if answers_missing && is_missing(&stderr) => Ok(Ran::NoSuchRule),
        2 if answers_missing
            && (stderr.contains("does not exist") || is_missing_chain_target(&stderr)) =>
        {
            Ok(Ran::NoSuchRule)
        }
        4 if stderr.contains("xtables lock") => Err(FirewallError::LockBusy { stderr }),
        4 if stderr.contains("ermission denied") => {
            Err(FirewallError::Permission { program, stderr })
        }
        _ => Err(FirewallError::Failed {
            command: command.to_string(),
            code,
            stderr,
        }),
    }
}

/// The messages of exit 1 that mean "no such rule or chain"; other exit-1 failures
/// (a chain that already exists, a chain still referenced) stay errors.
fn is_missing(stderr: &str) -> bool {
    stderr.contains("does a matching rule exist")
        || stderr.contains("No chain/target/match by that name")
        || stderr.contains("does not exist")
}

/// iptables-legacy's way of saying the chain a jump targets does not exist: it then looks
/// for a target extension of that name and cannot load one (iptables-nft says "Chain 'X'
/// does not exist"). Only a name that can be one of our chains counts, so a missing
/// REJECT or REDIRECT extension stays an error.
fn is_missing_chain_target(stderr: &str) -> bool {
    stderr
        .split_once("Couldn't load target `")
        .and_then(|(_, rest)| rest.split_once('\''))
        .is_some_and(|(name, _)| ChainName::parse(name).is_ok())
}

fn rule_args(op: &str, rule: &Rule) -> Vec<String> {
    let mut args = strings(&["-t", rule.table, op, &rule.chain]);
    args.extend(rule.spec.iter().cloned());
    args
}

/// `-A`/`-I 1`/`-D` of a rule, as arguments.
pub(crate) fn op_args(op: &str, rule: &Rule) -> Vec<String> {
    if op == "-I" {
        let mut args = strings(&["-t", rule.table, "-I", &rule.chain, "1"]);
        args.extend(rule.spec.iter().cloned());
        args
    } else {
        rule_args(op, rule)
    }
}

fn strings(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| w.to_string()).collect()
}

/// The backend `auto` stands for: the one whose multi-call binary the `iptables` on PATH
/// is a link to; still `Auto` when it is neither (a wrapper, say).
fn resolve(backend: Backend, family: Family) -> Backend {
    if backend != Backend::Auto {
        return backend;
    }
    let target = find_on_path(backend.program(family)).and_then(|p| std::fs::canonicalize(p).ok());
    match target
        .as_ref()
        .and_then(|p| p.file_name())
        .and_then(|n| n.to_str())
    {
        Some("xtables-nft-multi") => Backend::Nft,
        Some("xtables-legacy-multi") => Backend::Legacy,
        _ => Backend::Auto,
    }
}

fn on_path(program: &str) -> bool {
    find_on_path(program).is_some()
}

/// The file `Command` would run for `program` (the same PATH, read from the process).
fn find_on_path(program: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| std::fs::metadata(candidate).is_ok_and(|m| m.is_file()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_rule_messages_are_recognised_and_others_are_not() {
        let table = [
            (
                "iptables: Bad rule (does a matching rule exist in that chain?).",
                true,
            ),
            ("iptables: No chain/target/match by that name.", true),
            (
                "iptables v1.8.9 (nf_tables): Chain 'FOO' does not exist",
                true,
            ),
            ("iptables: Chain already exists.", false),
            ("iptables: Too many links.", false),
            ("", false),
        ];
        for (stderr, want) in table {
            assert_eq!(is_missing(stderr), want, "{stderr}");
        }
    }

    #[test]
    fn legacy_jump_to_a_missing_chain_is_no_such_rule() {
        let table = [
            (
                "iptables v1.8.9 (legacy): Couldn't load target `REDIS-HA':No such file or directory",
                true,
            ),
            (
                "ip6tables v1.8.9 (legacy): Couldn't load target `MY_CHAIN':No such file or directory",
                true,
            ),
            (
                "iptables v1.8.9 (legacy): Couldn't load target `REJECT':No such file or directory",
                false,
            ),
            (
                "iptables v1.8.9 (legacy): Couldn't load target `REDIRECT':No such file or directory",
                false,
            ),
            (
                "iptables v1.8.9 (legacy): unknown option \"--ctdir\"",
                false,
            ),
        ];
        for (stderr, want) in table {
            assert_eq!(is_missing_chain_target(stderr), want, "{stderr}");
        }
    }

    #[test]
    fn insert_goes_to_the_top() {
        let rule = Rule::new("filter", "INPUT", &["-j", "X"]);
        assert_eq!(op_args("-I", &rule).join(" "), "-t filter -I INPUT 1 -j X");
        assert_eq!(op_args("-D", &rule).join(" "), "-t filter -D INPUT -j X");
    }
}
