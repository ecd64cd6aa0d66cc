//! Writes the man pages of the Debian package: `redis-ha.8` from the clap definition of
//! the admin CLI, and one section-7 page per agent from its meta-data (`ocf/*.xml`, the
//! bytes the agent prints), named as resource-agents names theirs. `make deb` runs it:
//! `cargo run --release --example manpages -- OUTDIR`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

const VERSION: &str = env!("CARGO_PKG_VERSION");
const PROVIDER: &str = "redis-ha";
const AGENTS: [&str; 2] = ["RedisLBReadBlock", "RedisLBWriteBlock"];

fn main() {
    let Some(out) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: manpages OUTDIR");
        std::process::exit(2);
    };
    if let Err(e) = write_all(&out) {
        eprintln!("manpages: {e}");
        std::process::exit(1);
    }
}

fn write_all(out: &Path) -> Result<(), String> {
    std::fs::create_dir_all(out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let mut pages = vec![(
        "redis-ha.8".to_string(),
        cli_page(redis_ha_ocf::cli_command()),
    )];
    for agent in AGENTS {
        let xml_path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("ocf/{agent}.xml"));
        let xml = std::fs::read_to_string(&xml_path)
            .map_err(|e| format!("cannot read {}: {e}", xml_path.display()))?;
        let meta = MetaData::parse(&xml).map_err(|e| format!("{}: {e}", xml_path.display()))?;
        pages.push((format!("ocf_{PROVIDER}_{agent}.7"), agent_page(&meta)));
    }
    for (name, text) in pages {
        let path = out.join(&name);
        std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// roff

/// Text for a roff text line: backslashes and minus signs escaped (so options copy and
/// paste as ASCII hyphens), and a leading `.` or `'` kept from becoming a request.
fn esc(text: &str) -> String {
    let escaped = text.replace('\\', "\\e").replace('-', "\\-");
    escaped
        .lines()
        .map(|line| {
            let start = line.trim_start();
            if start.starts_with('.') || start.starts_with('\'') {
                format!("\\&{line}")
            } else {
                line.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Paragraphs of free text (blank lines separate them; line breaks within one are
/// only wrapping), each as roff text lines.
fn paragraphs(text: &str) -> Vec<String> {
    text.split("\n\n")
        .map(|p| p.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|p| !p.is_empty())
        .map(|p| esc(&p))
        .collect()
}

/// `.TH` with the package version as the source; no date, so the pages are reproducible.
fn title(name: &str, section: &str, manual: &str) -> String {
    // No hyphenation, ragged right: names and paths stay whole and searchable.
    format!(
        ".TH {} {section} \"\" \"redis\\-ha\\-ocf {VERSION}\" \"{manual}\"\n.nh\n.ad l\n",
        esc(&name.to_uppercase())
    )
}

fn bold(text: &str) -> String {
    format!("\\fB{}\\fR", esc(text))
}

fn italic(text: &str) -> String {
    format!("\\fI{}\\fR", esc(text))
}

/// A literal block (commands, config lines).
fn example(lines: &[String]) -> String {
    let mut s = String::from(".PP\n.RS 4\n.nf\n");
    for line in lines {
        s.push_str(&esc(line));
        s.push('\n');
    }
    s.push_str(".fi\n.RE\n");
    s
}

// ---------------------------------------------------------------------------------------
// redis-ha.8

fn cli_page(mut cmd: clap::Command) -> String {
    cmd.build();
    let mut s = title("redis-ha", "8", "System Administration");
    let about = cmd.get_about().map(|a| a.to_string()).unwrap_or_default();
    let _ = write!(s, ".SH NAME\nredis\\-ha \\- {}\n", esc(&about));

    // clap's own `help` subcommand is described once under OPTIONS.
    let commands: Vec<&clap::Command> = cmd
        .get_subcommands()
        .filter(|c| !c.is_hide_set() && c.get_name() != "help")
        .collect();
    s.push_str(".SH SYNOPSIS\n");
    for sub in &commands {
        let _ = write!(
            s,
            ".B redis\\-ha {}\n{}\n.br\n",
            esc(sub.get_name()),
            usage(sub)
        );
    }
    s.push_str(".B /usr/lib/ocf/resource.d/redis\\-ha/RedisLBReadBlock\n\\fIACTION\\fR\n.br\n");
    s.push_str(".B /usr/lib/ocf/resource.d/redis\\-ha/RedisLBWriteBlock\n\\fIACTION\\fR\n.br\n");
    s.push_str(".B /usr/lib/redis\\-ha/sentinel\\-reconfig\n\\fIMASTER ROLE STATE FROM\\-IP FROM\\-PORT TO\\-IP TO\\-PORT\\fR\n.br\n");
    s.push_str(".B /usr/lib/redis\\-ha/sentinel\\-notify\n\\fIEVENT DESCRIPTION\\fR\n");

    s.push_str(".SH DESCRIPTION\n");
    for p in paragraphs(DESCRIPTION) {
        let _ = write!(s, ".PP\n{p}\n");
    }

    s.push_str(".SH COMMANDS\n");
    for sub in &commands {
        let _ = writeln!(s, ".SS \"redis\\-ha {}\"", esc(sub.get_name()));
        let about = sub
            .get_long_about()
            .or(sub.get_about())
            .map(|a| a.to_string())
            .unwrap_or_default();
        for p in paragraphs(&about) {
            let _ = write!(s, ".PP\n{p}\n");
        }
        for arg in sub
            .get_arguments()
            .filter(|a| !a.is_hide_set() && !is_builtin(a))
        {
            s.push_str(&arg_entry(arg));
        }
    }
    s.push_str(".SH OPTIONS\n");
    s.push_str(".TP\n\\fB\\-h\\fR, \\fB\\-\\-help\\fR\nPrint help (also after a command: \\fBredis\\-ha sync \\-\\-help\\fR).\n");
    s.push_str(".TP\n\\fB\\-V\\fR, \\fB\\-\\-version\\fR\nPrint the version.\n");
    s.push_str(MORE_SECTIONS);
    s
}

/// clap's own `--help`/`--version`, described once under OPTIONS.
fn is_builtin(arg: &clap::Arg) -> bool {
    matches!(arg.get_id().as_str(), "help" | "version")
}

fn value_names(arg: &clap::Arg) -> String {
    match arg.get_value_names() {
        Some(names) => names
            .iter()
            .map(|n| n.to_string())
            .collect::<Vec<_>>()
            .join(" "),
        None => arg.get_id().as_str().to_uppercase(),
    }
}

/// `[--dry-run] [--every PERIOD] ...` for the synopsis.
fn usage(cmd: &clap::Command) -> String {
    let mut parts = Vec::new();
    for arg in cmd
        .get_arguments()
        .filter(|a| !a.is_hide_set() && !is_builtin(a))
    {
        let part = if arg.is_positional() {
            italic(&value_names(arg))
        } else {
            let flag = bold(&format!("--{}", arg.get_long().unwrap_or_default()));
            if arg.get_action().takes_values() {
                format!("{flag} {}", italic(&value_names(arg)))
            } else {
                flag
            }
        };
        parts.push(if arg.is_required_set() || arg.is_positional() {
            part
        } else {
            format!("[{part}]")
        });
    }
    parts.join(" ")
}

fn arg_entry(arg: &clap::Arg) -> String {
    let head = if arg.is_positional() {
        italic(&value_names(arg))
    } else {
        let mut flags = Vec::new();
        if let Some(short) = arg.get_short() {
            flags.push(bold(&format!("-{short}")));
        }
        if let Some(long) = arg.get_long() {
            flags.push(bold(&format!("--{long}")));
        }
        let flags = flags.join(", ");
        if arg.get_action().takes_values() {
            format!("{flags} {}", italic(&value_names(arg)))
        } else {
            flags
        }
    };
    let help = arg
        .get_long_help()
        .or(arg.get_help())
        .map(|h| h.to_string())
        .unwrap_or_default();
    let mut s = format!(".TP\n{head}\n");
    if !help.trim().is_empty() {
        let _ = writeln!(s, "{}", paragraphs(&help).join("\n.IP\n"));
    }
    let possible: Vec<_> = arg
        .get_possible_values()
        .into_iter()
        .filter(|v| !v.is_hide_set())
        .collect();
    if possible.iter().any(|v| v.get_help().is_some()) {
        for v in &possible {
            let help = v.get_help().map(|h| h.to_string()).unwrap_or_default();
            let _ = write!(s, ".RS\n.TP\n{}\n{}\n.RE\n", bold(v.get_name()), esc(&help));
        }
    } else if !possible.is_empty() {
        let names: Vec<_> = possible.iter().map(|v| bold(v.get_name())).collect();
        let _ = write!(s, ".IP\nOne of: {}.\n", names.join(", "));
    }
    let defaults: Vec<_> = arg
        .get_default_values()
        .iter()
        .map(|v| v.to_string_lossy().into_owned())
        .collect();
    // A flag's implicit `false` says nothing.
    if !defaults.is_empty() && arg.get_action().takes_values() {
        let _ = write!(s, ".IP\nDefault: {}.\n", bold(&defaults.join(" ")));
    }
    s
}

const DESCRIPTION: &str = "\
One multi-call program: the Pacemaker resource agents RedisLBReadBlock and RedisLBWriteBlock \
(OCF provider redis-ha) when called through their links in /usr/lib/ocf/resource.d/redis-ha/, \
Redis Sentinel's client-reconfig-script and notification-script when called as \
/usr/lib/redis-ha/sentinel-reconfig and /usr/lib/redis-ha/sentinel-notify, and the admin \
command line redis-ha otherwise. The program picks its part from the name it is called by.

The agents block a node's public Redis read port (6380) or write port (6381) with a TCP \
reset while they run; Pacemaker places them from the node attribute redis_role. The \
Sentinel scripts and redis-ha sync keep redis_role in step with what the Sentinels say: \
primary, replica or fail. The Sentinel scripts hand each event to the redis-ha sync \
--every service over its socket and exit as its sync did; where no service answers, they \
sync themselves, which needs rights on the CIB.";

const MORE_SECTIONS: &str = r#".SH EXIT STATUS
.PP
\fBsync\fR and the Sentinel scripts follow Sentinel's contract: 0 done or nothing to do,
1 try again (Sentinel retries), 2 give up.
\fBstatus\fR exits 0 when everything agrees, 1 when anything disagrees or cannot be
known, 2 when the configuration is unusable.
\fBports check\fR exits 1 and names what is missing.
The agents exit with OCF codes; see \fBocf_redis\-ha_RedisLBWriteBlock\fR(7).
.SH ENVIRONMENT
.TP
.B REDIS_HA_CONFIG
The helper's configuration file, when \fB\-\-config\fR is not given.
.TP
.B CIB_file
Passed on to Pacemaker's tools: work on a CIB file instead of the live cluster.
.SH FILES
.TP
.I /etc/redis\-ha/redis\-ha.conf
The Sentinel helper's configuration: master name, Sentinels, node mapping.
.TP
.I /usr/lib/systemd/system/redis\-sentinel.service.d/redis\-ha.conf
Says why Debian's sandbox for Sentinel needs nothing more; it widens nothing.
.TP
.I /usr/lib/systemd/system/redis\-ha\-sync.service
\fBsync \-\-every 5s\fR as root: the syncs, the isolation guard, and the socket
Sentinel's scripts hand their events to.
.TP
.I /usr/lib/systemd/system/redis\-ha\-ports.service
\fBports install\fR at boot, \fBports remove\fR at stop.
.TP
.I /run/redis\-ha/sync.sock
The sync service's socket (mode 0660, group redis; only root and user redis may ask),
in \fI/run/redis\-ha\fR (0750, group redis).
.TP
.I /run/redis\-ha/host.lock\fR, \fI/run/redis\-ha/sync.lock
Host\-wide locks of the agents (mode 0600) and of the sync (0640, group redis).
They are opened without following links and only once the directory and the file
are root's; root makes them when missing.
.TP
.I /usr/share/doc/redis\-ha\-ocf/
The README and the configuration snippets (Pacemaker, Sentinel, HAProxy, ACL).
.SH SEE ALSO
.BR ocf_redis\-ha_RedisLBReadBlock (7),
.BR ocf_redis\-ha_RedisLBWriteBlock (7),
.BR redis\-ha\-backup (8),
.BR crm_attribute (8),
.BR redis\-sentinel (1)
"#;

// ---------------------------------------------------------------------------------------
// ocf_redis-ha_<agent>.7

#[derive(Debug, Default)]
struct MetaData {
    name: String,
    shortdesc: String,
    longdesc: String,
    parameters: Vec<Parameter>,
    actions: Vec<Action>,
}

#[derive(Debug, Default)]
struct Parameter {
    name: String,
    required: bool,
    unique: bool,
    shortdesc: String,
    longdesc: String,
    kind: String,
    default: Option<String>,
}

#[derive(Debug, Default)]
struct Action {
    name: String,
    /// `timeout 20s, interval 10s, depth 0`: the attributes in document order.
    attributes: Vec<(String, String)>,
}

fn attr(e: &BytesStart<'_>, name: &str) -> Option<String> {
    e.try_get_attribute(name).ok().flatten().and_then(|a| {
        a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
            .ok()
            .map(|v| v.into_owned())
    })
}

impl MetaData {
    /// Records what an opening tag says; returns its name.
    fn open(&mut self, e: &BytesStart<'_>) -> String {
        let name = e.name().as_ref().to_string();
        match name.as_str() {
            "resource-agent" => self.name = attr(e, "name").unwrap_or_default(),
            "parameter" => self.parameters.push(Parameter {
                name: attr(e, "name").unwrap_or_default(),
                required: attr(e, "required").as_deref() == Some("1"),
                unique: attr(e, "unique").as_deref() == Some("1"),
                ..Parameter::default()
            }),
            "content" => {
                if let Some(p) = self.parameters.last_mut() {
                    p.kind = attr(e, "type").unwrap_or_default();
                    p.default = attr(e, "default");
                }
            }
            "action" => {
                let attributes = e
                    .attributes()
                    .filter_map(Result::ok)
                    .filter(|a| a.key.as_ref() != "name")
                    .filter_map(|a| {
                        let key = a.key.as_ref().to_string();
                        let value = a
                            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                            .ok()?;
                        Some((key, value.into_owned()))
                    })
                    .collect();
                self.actions.push(Action {
                    name: attr(e, "name").unwrap_or_default(),
                    attributes,
                });
            }
            _ => {}
        }
        name
    }

    /// The parts of OCF meta-data a reader needs (English descriptions only).
    fn parse(xml: &str) -> Result<Self, String> {
        let mut reader = Reader::from_str(xml);
        let mut meta = MetaData::default();
        let mut path: Vec<String> = Vec::new();
        let mut text = String::new();
        loop {
            let event = reader
                .read_event()
                .map_err(|e| format!("bad XML at {}: {e}", reader.buffer_position()))?;
            match event {
                Event::Start(e) => {
                    path.push(meta.open(&e));
                    text.clear();
                }
                Event::Empty(e) => {
                    meta.open(&e);
                }
                Event::Text(t) => text.push_str(&t.xml10_content()),
                Event::GeneralRef(r) => match r.resolve_char_ref() {
                    Ok(Some(c)) => text.push(c),
                    _ => text.push_str(match &*r {
                        "lt" => "<",
                        "gt" => ">",
                        "amp" => "&",
                        "quot" => "\"",
                        "apos" => "'",
                        other => return Err(format!("unknown entity &{other};")),
                    }),
                },
                Event::End(_) => {
                    let name = path.pop().unwrap_or_default();
                    let in_parameter = path.iter().any(|p| p == "parameter");
                    let body = text.trim().to_string();
                    match (name.as_str(), in_parameter) {
                        ("longdesc", false) => meta.longdesc = body,
                        ("shortdesc", false) => meta.shortdesc = body,
                        ("longdesc", true) => {
                            if let Some(p) = meta.parameters.last_mut() {
                                p.longdesc = body;
                            }
                        }
                        ("shortdesc", true) => {
                            if let Some(p) = meta.parameters.last_mut() {
                                p.shortdesc = body;
                            }
                        }
                        _ => {}
                    }
                    text.clear();
                }
                Event::Eof => break,
                _ => {}
            }
        }
        if meta.name.is_empty() || meta.shortdesc.is_empty() {
            return Err("no <resource-agent name> or <shortdesc>".into());
        }
        Ok(meta)
    }
}

fn agent_page(meta: &MetaData) -> String {
    let agent = &meta.name;
    let page = format!("ocf_{PROVIDER}_{agent}");
    let mut s = title(&page, "7", "OCF resource agents");
    let _ = write!(s, ".SH NAME\n{} \\- {}\n", esc(&page), esc(&meta.shortdesc));

    let actions: Vec<_> = meta.actions.iter().map(|a| esc(&a.name)).collect();
    let _ = write!(
        s,
        ".SH SYNOPSIS\n\\fB{}\\fR [{}]\n",
        esc(agent),
        actions.join(" | ")
    );

    s.push_str(".SH DESCRIPTION\n");
    for p in paragraphs(&meta.longdesc) {
        let _ = write!(s, ".PP\n{p}\n");
    }

    s.push_str(".SH SUPPORTED PARAMETERS\n");
    for p in &meta.parameters {
        let mut facts = vec![
            esc(&p.kind),
            (if p.required { "required" } else { "optional" }).to_string(),
        ];
        if p.unique {
            facts.push("unique".into());
        }
        facts.push(match &p.default {
            Some(d) => format!("default {}", bold(d)),
            None => "no default".into(),
        });
        let _ = write!(
            s,
            ".TP\n{} ({})\n{}.\n",
            bold(&p.name),
            facts.join(", "),
            esc(&p.shortdesc)
        );
        for para in paragraphs(&p.longdesc) {
            let _ = write!(s, ".IP\n{para}\n");
        }
    }

    s.push_str(".SH SUPPORTED ACTIONS\n");
    s.push_str(".PP\nThe agent supports the following actions, with Pacemaker's advised values:\n");
    for a in &meta.actions {
        let values: Vec<_> = a
            .attributes
            .iter()
            .map(|(k, v)| format!("{} {}", esc(k), esc(v)))
            .collect();
        let _ = write!(s, ".TP\n{}\n{}\n", bold(&a.name), values.join(", "));
    }

    s.push_str(".SH EXIT STATUS\n.PP\n");
    s.push_str(
        "OCF codes: 0 success, 1 generic error, 2 invalid argument, 3 unimplemented action, \
         4 insufficient privileges, 5 not installed (iptables missing), 6 not configured \
         (a bad parameter), 7 not running (monitor only).\n\
         The reason of a failure is the last \\fBocf\\-exit\\-reason:\\fR line on standard error.\n",
    );

    let monitor = meta.actions.iter().find(|a| a.name == "monitor");
    let get = |a: Option<&Action>, k: &str, d: &str| {
        a.and_then(|a| {
            a.attributes
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.clone())
        })
        .unwrap_or_else(|| d.to_string())
    };
    let (interval, timeout) = (
        get(monitor, "interval", "10s"),
        get(monitor, "timeout", "20s"),
    );
    let start_timeout = get(
        meta.actions.iter().find(|a| a.name == "start"),
        "timeout",
        "20s",
    );
    let stop_timeout = get(
        meta.actions.iter().find(|a| a.name == "stop"),
        "timeout",
        "20s",
    );

    s.push_str(
        ".SH EXAMPLE CRM SHELL\n.PP\nThe following is an example configuration for a \
                ",
    );
    let _ = writeln!(s, "{} resource using the \\fBcrm\\fR(8) shell:", esc(agent));
    s.push_str(&example(&[
        format!("primitive {agent} ocf:{PROVIDER}:{agent} \\"),
        format!("  op start timeout={start_timeout} op stop timeout={stop_timeout} \\"),
        format!("  op monitor interval={interval} timeout={timeout}"),
        format!("clone {agent}-clone {agent}"),
    ]));
    let _ = writeln!(
        s,
        ".SH EXAMPLE PCS\n.PP\nThe following is an example configuration for a {} resource using \\fBpcs\\fR(8):",
        esc(agent)
    );
    s.push_str(&example(&[
        format!("pcs resource create {agent} ocf:{PROVIDER}:{agent} \\"),
        format!("  op monitor interval={interval} timeout={timeout} clone"),
    ]));
    s.push_str(
        ".PP\nAlone, the clone starts on every node and refuses the port everywhere: create it \
         in one CIB update together with the location rules that place it from the node \
         attribute \\fBredis_role\\fR, as the snippets in \
         \\fI/usr/share/doc/redis\\-ha\\-ocf/crm\\-snippets/\\fR do.\n",
    );

    let other: Vec<_> = AGENTS
        .iter()
        .filter(|a| **a != agent.as_str())
        .map(|a| format!(".BR {} (7),", esc(&format!("ocf_{PROVIDER}_{a}"))))
        .collect();
    let _ = write!(
        s,
        ".SH SEE ALSO\n{}\n.BR redis\\-ha (8),\n.BR crm_resource (8),\n.BR iptables (8)\n",
        other.join("\n")
    );
    s
}
