//! Typed instructions and flags (BuildKit `frontend/dockerfile/instructions`),
//! with BuildKit's validation and messages.
//!
//! [`parse_instruction`] turns a parser [`Node`] into an [`Instruction`]
//! holding the words as written. [`Instruction::expand`] applies variable
//! expansion to exactly the fields BuildKit expands.

use serde::Serialize;

use crate::error::{Error, LineRange};
use crate::parser::{Heredoc, Node, chomp_heredoc_content, parse_heredoc};
use crate::util::{go_lower, go_quote, go_upper, with_suggestion};

/// All instruction keywords, for "did you mean" suggestions.
pub const INSTRUCTIONS: &[&str] = &[
    "add",
    "arg",
    "cmd",
    "copy",
    "entrypoint",
    "env",
    "expose",
    "from",
    "healthcheck",
    "label",
    "maintainer",
    "onbuild",
    "run",
    "shell",
    "stopsignal",
    "user",
    "volume",
    "workdir",
];

/// `KEY=value` from ENV or LABEL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyValue {
    pub key: String,
    pub value: String,
    /// Legacy `KEY value` form (no `=`).
    pub legacy: bool,
}

/// One name of an ARG instruction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArgDef {
    pub name: String,
    pub default: Option<String>,
    /// Description from a `# NAME text` comment above the ARG.
    pub description: String,
}

/// `FROM [--platform=p] image [AS name]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct From {
    pub image: String,
    /// Stage name in lower case (empty when unnamed).
    pub name: String,
    /// Stage name as written.
    pub name_as_written: String,
    /// The `AS` keyword as written (empty when unnamed).
    pub as_keyword: String,
    pub platform: Option<String>,
    /// Description from a `# name text` comment above FROM.
    pub description: String,
}

/// The command part of RUN / CMD / ENTRYPOINT.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommandLine {
    /// Exec form: the argv. Shell form: one element, the command text.
    pub args: Vec<String>,
    /// Shell form: prepend the current SHELL.
    pub prepend_shell: bool,
    /// Heredoc bodies (RUN only).
    pub files: Vec<InlineFile>,
}

/// A heredoc given to RUN.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InlineFile {
    pub name: String,
    pub data: String,
    pub chomp: bool,
}

/// `sharing=` of a cache mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Sharing {
    Shared,
    Private,
    Locked,
}

/// A `RUN --mount` with BuildKit's defaults applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Mount {
    Bind {
        target: String,
        source: Option<String>,
        from: Option<String>,
        readwrite: bool,
    },
    Cache {
        target: String,
        /// Defaults to the cleaned target path.
        id: String,
        sharing: Sharing,
        from: Option<String>,
        source: Option<String>,
        readonly: bool,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
    },
    Tmpfs {
        target: String,
        size: Option<u64>,
    },
    Secret {
        id: String,
        /// `None` when the secret is only exposed through `env`.
        target: Option<String>,
        env: Option<String>,
        required: bool,
        mode: u32,
        uid: Option<u32>,
        gid: Option<u32>,
    },
    Ssh {
        id: String,
        target: String,
        required: bool,
        mode: u32,
        uid: Option<u32>,
        gid: Option<u32>,
    },
}

impl Mount {
    /// The `from=` stage or image, if any.
    pub fn from(&self) -> Option<&str> {
        match self {
            Mount::Bind { from, .. } | Mount::Cache { from, .. } => from.as_deref(),
            _ => None,
        }
    }
}

/// `RUN --network`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Network {
    Default,
    None,
    Host,
}

/// `RUN --security`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Security {
    Sandbox,
    Insecure,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Run {
    pub cmd: CommandLine,
    /// The `--mount` values as written (expanded by the plan).
    pub mount_specs: Vec<String>,
    /// Parsed mounts; filled by [`Instruction::expand`] (the plan), since
    /// BuildKit validates mounts only after expansion.
    pub mounts: Vec<Mount>,
    pub network: Option<Network>,
    pub security: Option<Security>,
    /// Names of the flags that were used.
    pub flags_used: Vec<String>,
}

/// `--chmod` value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Chmod {
    Octal(u32),
    /// chmod(1) symbolic mode such as `u=rw,g=r` or `a+X`.
    Symbolic(String),
}

/// A heredoc source of COPY/ADD.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceContent {
    /// File name (the heredoc word).
    pub path: String,
    pub data: String,
    /// Expand variables in `data` (unquoted delimiter).
    pub expand: bool,
}

/// COPY and ADD.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CopyAdd {
    pub is_add: bool,
    pub sources: Vec<String>,
    pub contents: Vec<SourceContent>,
    pub dest: String,
    /// COPY `--from` (never expanded).
    pub from: Option<String>,
    pub chown: Option<String>,
    /// Raw `--chmod` (expanded by the plan, then parsed into `chmod`).
    pub chmod_raw: Option<String>,
    pub chmod: Option<Chmod>,
    pub link: bool,
    pub parents: bool,
    pub excludes: Vec<String>,
    /// ADD only.
    pub checksum: Option<String>,
    pub keep_git_dir: bool,
    pub unpack: Option<bool>,
    /// JSON form.
    pub json: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Healthcheck {
    /// `["NONE"]`, `["CMD", ...]` or `["CMD-SHELL", "..."]`.
    pub test: Vec<String>,
    /// Durations in nanoseconds (0 = not set).
    pub interval_ns: i64,
    pub timeout_ns: i64,
    pub start_period_ns: i64,
    pub start_interval_ns: i64,
    pub retries: i32,
}

/// A typed instruction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Instruction {
    From(From),
    Run(Run),
    Cmd(CommandLine),
    Entrypoint(CommandLine),
    Label { labels: Vec<KeyValue> },
    Maintainer { name: String },
    Expose { ports: Vec<String> },
    Env { vars: Vec<KeyValue> },
    Add(CopyAdd),
    Copy(CopyAdd),
    Volume { paths: Vec<String>, json: bool },
    User { user: String },
    Workdir { path: String },
    Arg { args: Vec<ArgDef> },
    Onbuild { expression: String },
    Stopsignal { signal: String },
    Healthcheck(Healthcheck),
    Shell { shell: Vec<String> },
}

impl Instruction {
    /// The upper-case keyword (`RUN`, `COPY`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            Instruction::From(_) => "FROM",
            Instruction::Run(_) => "RUN",
            Instruction::Cmd(_) => "CMD",
            Instruction::Entrypoint(_) => "ENTRYPOINT",
            Instruction::Label { .. } => "LABEL",
            Instruction::Maintainer { .. } => "MAINTAINER",
            Instruction::Expose { .. } => "EXPOSE",
            Instruction::Env { .. } => "ENV",
            Instruction::Add(_) => "ADD",
            Instruction::Copy(_) => "COPY",
            Instruction::Volume { .. } => "VOLUME",
            Instruction::User { .. } => "USER",
            Instruction::Workdir { .. } => "WORKDIR",
            Instruction::Arg { .. } => "ARG",
            Instruction::Onbuild { .. } => "ONBUILD",
            Instruction::Stopsignal { .. } => "STOPSIGNAL",
            Instruction::Healthcheck(_) => "HEALTHCHECK",
            Instruction::Shell { .. } => "SHELL",
        }
    }
}

/// An instruction with its source location.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Command {
    pub instruction: Instruction,
    pub range: LineRange,
    /// The keyword as written (for casing lints).
    pub keyword: String,
    /// The logical source line.
    pub original: String,
    /// `--flag` words as written.
    pub flags: Vec<String>,
    /// Comment lines directly above the instruction.
    pub comments: Vec<String>,
}

/// BuildKit's `BFlags`.
struct Flags<'a> {
    args: &'a [String],
    defs: Vec<(&'static str, FlagType)>,
    values: Vec<Vec<String>>,
    used: Vec<bool>,
}

#[derive(Clone, Copy, PartialEq)]
enum FlagType {
    Bool,
    Str,
    Strs,
}

impl<'a> Flags<'a> {
    fn new(args: &'a [String]) -> Self {
        Flags { args, defs: Vec::new(), values: Vec::new(), used: Vec::new() }
    }
    fn add(&mut self, name: &'static str, t: FlagType) -> usize {
        self.defs.push((name, t));
        self.values.push(Vec::new());
        self.used.push(false);
        self.defs.len() - 1
    }
    fn parse(&mut self) -> Result<(), String> {
        for arg in self.args {
            let Some(a) = arg.strip_prefix("--") else {
                return Err(format!("arg should start with -- : {arg}"));
            };
            if a.is_empty() {
                return Ok(());
            }
            let (name, value, has_eq) = match a.split_once('=') {
                Some((n, v)) => (n, v, true),
                None => (a, "", false),
            };
            let Some(i) = self.defs.iter().position(|(n, _)| *n == name) else {
                let names: Vec<&str> = self.defs.iter().map(|(n, _)| *n).collect();
                return Err(with_suggestion(format!("unknown flag: {name}"), name, &names, true));
            };
            let t = self.defs[i].1;
            if self.used[i] && t != FlagType::Strs {
                return Err(format!("duplicate flag specified: {name}"));
            }
            self.used[i] = true;
            match t {
                FlagType::Bool => {
                    if has_eq && value.is_empty() {
                        return Err(format!("missing a value on flag: {name}"));
                    }
                    let l = go_lower(value);
                    let v = match l.as_str() {
                        "" => "true".to_string(),
                        "true" | "false" => l,
                        _ => {
                            return Err(format!("expecting boolean value for flag {name}, not: {value}"));
                        }
                    };
                    self.values[i] = vec![v];
                }
                FlagType::Str => {
                    if !has_eq {
                        return Err(format!("missing a value on flag: {name}"));
                    }
                    self.values[i] = vec![value.to_string()];
                }
                FlagType::Strs => {
                    if !has_eq {
                        return Err(format!("missing a value on flag: {name}"));
                    }
                    self.values[i].push(value.to_string());
                }
            }
        }
        Ok(())
    }
    fn string(&self, i: usize) -> Option<String> {
        self.values[i].first().cloned()
    }
    fn boolean(&self, i: usize) -> bool {
        self.values[i].first().is_some_and(|v| v == "true")
    }
    fn strings(&self, i: usize) -> Vec<String> {
        self.values[i].clone()
    }
    fn used_names(&self) -> Vec<String> {
        self.defs.iter().zip(&self.used).filter(|(_, u)| **u).map(|((n, _), _)| n.to_string()).collect()
    }
}

fn get_comment(comments: &[String], name: &str) -> String {
    if name.is_empty() {
        return String::new();
    }
    let prefix = format!("{name} ");
    comments.iter().find_map(|l| l.strip_prefix(&prefix).map(str::to_string)).unwrap_or_default()
}

fn exactly_one(cmd: &str) -> String {
    format!("{cmd} requires exactly one argument")
}
fn at_least_one(cmd: &str) -> String {
    format!("{cmd} requires at least one argument")
}
fn no_dest(cmd: &str) -> String {
    format!("{cmd} requires at least two arguments, but only one was provided. Destination could not be determined")
}

fn parse_kvps(args: &[String], cmd: &str) -> Result<Vec<KeyValue>, String> {
    if args.is_empty() {
        return Err(at_least_one(cmd));
    }
    if !args.len().is_multiple_of(3) {
        return Err(format!("Bad input to {cmd}, too many arguments"));
    }
    let mut out = Vec::new();
    for c in args.chunks(3) {
        if c[0].is_empty() {
            return Err(format!("{cmd} names can not be blank"));
        }
        out.push(KeyValue { key: c[0].clone(), value: c[1].clone(), legacy: c[2].is_empty() });
    }
    Ok(out)
}

fn command_line(node: &Node, args: &[String], empty_as_none: bool) -> CommandLine {
    let _ = empty_as_none;
    CommandLine {
        args: args.to_vec(),
        prepend_shell: !node.json,
        files: node
            .heredocs
            .iter()
            .map(|h| InlineFile { name: h.name.clone(), data: h.content.clone(), chomp: h.chomp })
            .collect(),
    }
}

/// `^[a-z][a-z0-9-_.]*$`
fn valid_stage_name(s: &str) -> bool {
    let mut c = s.chars();
    c.next().is_some_and(|f| f.is_ascii_lowercase())
        && c.all(|x| x.is_ascii_lowercase() || x.is_ascii_digit() || matches!(x, '-' | '_' | '.'))
}

/// Parses a node into a typed command. `node.args` are used as written; no
/// variable is expanded here.
pub fn parse_instruction(node: &Node) -> Result<Command, Error> {
    let cmd = node.cmd();
    let range = node.range;
    let upper = go_upper(&cmd);
    let ierr = |m: String| Error::Instruction { instruction: upper.clone(), message: m, range };
    let ferr = |m: String| Error::Flag { instruction: upper.clone(), message: m, range };
    let args = node.all_args();
    let mut fl = Flags::new(&node.flags);
    let instruction = match cmd.as_str() {
        "env" => {
            fl.parse().map_err(ferr)?;
            Instruction::Env { vars: parse_kvps(&args, "ENV").map_err(ierr)? }
        }
        "maintainer" => {
            if args.len() != 1 {
                return Err(ierr(exactly_one("MAINTAINER")));
            }
            fl.parse().map_err(ferr)?;
            Instruction::Maintainer { name: args[0].clone() }
        }
        "label" => {
            fl.parse().map_err(ferr)?;
            Instruction::Label { labels: parse_kvps(&args, "LABEL").map_err(ierr)? }
        }
        "add" | "copy" => {
            let is_add = cmd == "add";
            let name = if is_add { "ADD" } else { "COPY" };
            if args.len() < 2 {
                return Err(ierr(no_dest(name)));
            }
            let f_chown = fl.add("chown", FlagType::Str);
            let f_chmod = fl.add("chmod", FlagType::Str);
            let f_link = fl.add("link", FlagType::Bool);
            let f_exclude = fl.add("exclude", FlagType::Strs);
            let (f_from, f_checksum, f_keep, f_unpack) = if is_add {
                (
                    None,
                    Some(fl.add("checksum", FlagType::Str)),
                    Some(fl.add("keep-git-dir", FlagType::Bool)),
                    Some(fl.add("unpack", FlagType::Bool)),
                )
            } else {
                (Some(fl.add("from", FlagType::Str)), None, None, None)
            };
            let f_parents = (!is_add).then(|| fl.add("parents", FlagType::Bool));
            fl.parse().map_err(ferr)?;
            let (sources, contents, dest) = sources_and_dest(&args, &node.heredocs, name).map_err(ierr)?;
            let from = f_from.and_then(|i| fl.string(i)).filter(|s| !s.is_empty());
            let c = CopyAdd {
                is_add,
                sources,
                contents,
                dest,
                from,
                chown: fl.string(f_chown).filter(|s| !s.is_empty()),
                chmod_raw: fl.string(f_chmod).filter(|s| !s.is_empty()),
                chmod: None,
                link: fl.boolean(f_link),
                parents: f_parents.is_some_and(|i| fl.boolean(i)),
                excludes: fl.strings(f_exclude),
                checksum: f_checksum.and_then(|i| fl.string(i)).filter(|s| !s.is_empty()),
                keep_git_dir: f_keep.is_some_and(|i| fl.boolean(i)),
                unpack: f_unpack.and_then(|i| fl.used[i].then(|| fl.boolean(i))),
                json: node.json,
            };
            if is_add { Instruction::Add(c) } else { Instruction::Copy(c) }
        }
        "from" => {
            let (name, written, as_kw) = match args.len() {
                3 if args[1].eq_ignore_ascii_case("as") => {
                    let n = go_lower(&args[2]);
                    if !valid_stage_name(&n) {
                        return Err(ierr(format!(
                            "invalid name for build stage: {}, name can't start with a number or contain symbols",
                            go_quote(&args[2])
                        )));
                    }
                    (n, args[2].clone(), args[1].clone())
                }
                1 => (String::new(), String::new(), String::new()),
                _ => return Err(ierr("FROM requires either one or three arguments".to_string())),
            };
            let f_platform = fl.add("platform", FlagType::Str);
            fl.parse().map_err(ferr)?;
            Instruction::From(From {
                image: args[0].clone(),
                description: get_comment(&node.comments, &name),
                name,
                name_as_written: written,
                as_keyword: as_kw,
                platform: fl.string(f_platform).filter(|s| !s.is_empty()),
            })
        }
        "onbuild" => {
            if args.is_empty() {
                return Err(ierr(at_least_one("ONBUILD")));
            }
            fl.parse().map_err(ferr)?;
            let trigger = go_upper(args[0].trim());
            match trigger.as_str() {
                "ONBUILD" => {
                    return Err(ierr("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed".to_string()));
                }
                "MAINTAINER" | "FROM" => {
                    return Err(ierr(format!("{trigger} isn't allowed as an ONBUILD trigger")));
                }
                _ => {}
            }
            let mut expression = strip_onbuild(&node.original);
            for h in &node.heredocs {
                expression.push('\n');
                expression.push_str(&h.content);
                expression.push_str(&h.name);
            }
            Instruction::Onbuild { expression }
        }
        "workdir" => {
            if args.len() != 1 {
                return Err(ierr(exactly_one("WORKDIR")));
            }
            fl.parse().map_err(ferr)?;
            Instruction::Workdir { path: args[0].clone() }
        }
        "run" => {
            let f_mount = fl.add("mount", FlagType::Strs);
            let f_network = fl.add("network", FlagType::Str);
            let f_security = fl.add("security", FlagType::Str);
            fl.parse().map_err(ferr)?;
            let mount_specs = fl.strings(f_mount);
            for m in &mount_specs {
                check_mount_from_unexpanded(m).map_err(&ferr)?;
            }
            let network = match fl.string(f_network).as_deref() {
                None => None,
                Some("default") => Some(Network::Default),
                Some("none") => Some(Network::None),
                Some("host") => Some(Network::Host),
                Some(o) => {
                    return Err(ferr(format!("unsupported network mode {}", go_quote(o))));
                }
            };
            let security = match fl.string(f_security).as_deref() {
                None => None,
                Some("sandbox") => Some(Security::Sandbox),
                Some("insecure") => Some(Security::Insecure),
                Some(o) => {
                    return Err(ferr(format!("unsupported security mode {}", go_quote(o))));
                }
            };
            Instruction::Run(Run {
                cmd: command_line(node, &args, false),
                mount_specs,
                mounts: Vec::new(),
                network,
                security,
                flags_used: fl.used_names(),
            })
        }
        "cmd" => {
            fl.parse().map_err(ferr)?;
            Instruction::Cmd(command_line(node, &args, false))
        }
        "entrypoint" => {
            fl.parse().map_err(ferr)?;
            Instruction::Entrypoint(command_line(node, &args, true))
        }
        "healthcheck" => {
            if args.is_empty() {
                return Err(ierr(at_least_one("HEALTHCHECK")));
            }
            let typ = go_upper(&args[0]);
            let rest = &args[1..];
            if typ == "NONE" {
                if !rest.is_empty() {
                    return Err(ierr("HEALTHCHECK NONE takes no arguments".to_string()));
                }
                Instruction::Healthcheck(Healthcheck {
                    test: vec![typ],
                    interval_ns: 0,
                    timeout_ns: 0,
                    start_period_ns: 0,
                    start_interval_ns: 0,
                    retries: 0,
                })
            } else {
                let fi = fl.add("interval", FlagType::Str);
                let ft = fl.add("timeout", FlagType::Str);
                let fs = fl.add("start-period", FlagType::Str);
                let fsi = fl.add("start-interval", FlagType::Str);
                let fr = fl.add("retries", FlagType::Str);
                fl.parse().map_err(ferr)?;
                let test = match typ.as_str() {
                    "CMD" => {
                        if rest.is_empty() {
                            return Err(ierr("Missing command after HEALTHCHECK CMD".to_string()));
                        }
                        let t = if node.json { "CMD" } else { "CMD-SHELL" };
                        let mut v = vec![t.to_string()];
                        v.extend(rest.iter().cloned());
                        v
                    }
                    _ => {
                        return Err(ierr(format!("Unknown type {} in HEALTHCHECK (try CMD)", go_quote(&typ))));
                    }
                };
                let iv = |i: usize, n: &str| opt_interval(fl.string(i).as_deref(), n);
                let retries = match fl.string(fr) {
                    Some(r) if !r.is_empty() => {
                        let v: i64 = r
                            .parse()
                            .map_err(|_| ierr(format!("strconv.ParseInt: parsing {}: invalid syntax", go_quote(&r))))?;
                        if v > i64::from(i32::MAX) || v < i64::from(i32::MIN) {
                            return Err(ierr(format!(
                                "strconv.ParseInt: parsing {}: value out of range",
                                go_quote(&r)
                            )));
                        }
                        if v < 0 {
                            return Err(ierr(format!("--retries cannot be negative ({v})")));
                        }
                        v as i32
                    }
                    _ => 0,
                };
                Instruction::Healthcheck(Healthcheck {
                    test,
                    interval_ns: iv(fi, "interval").map_err(&ierr)?,
                    timeout_ns: iv(ft, "timeout").map_err(&ierr)?,
                    start_period_ns: iv(fs, "start-period").map_err(&ierr)?,
                    start_interval_ns: iv(fsi, "start-interval").map_err(&ierr)?,
                    retries,
                })
            }
        }
        "expose" => {
            if args.is_empty() {
                return Err(ierr(at_least_one("EXPOSE")));
            }
            fl.parse().map_err(ferr)?;
            Instruction::Expose { ports: args }
        }
        "user" => {
            if args.len() != 1 {
                return Err(ierr(exactly_one("USER")));
            }
            fl.parse().map_err(ferr)?;
            Instruction::User { user: args[0].clone() }
        }
        "volume" => {
            if args.is_empty() {
                return Err(ierr(at_least_one("VOLUME")));
            }
            fl.parse().map_err(ferr)?;
            let mut paths = Vec::new();
            for v in &args {
                let v = v.trim();
                if v.is_empty() {
                    return Err(ierr("VOLUME specified can not be an empty string".to_string()));
                }
                paths.push(v.to_string());
            }
            Instruction::Volume { paths, json: node.json }
        }
        "stopsignal" => {
            if args.len() != 1 {
                return Err(ierr(exactly_one("STOPSIGNAL")));
            }
            fl.parse().map_err(ferr)?;
            Instruction::Stopsignal { signal: args[0].clone() }
        }
        "arg" => {
            if args.is_empty() {
                return Err(ierr(at_least_one("ARG")));
            }
            fl.parse().map_err(ferr)?;
            let mut defs = Vec::new();
            for a in &args {
                let (name, default) = match a.split_once('=') {
                    Some((k, v)) => {
                        if k.is_empty() {
                            return Err(ierr("ARG names can not be blank".to_string()));
                        }
                        (k.to_string(), Some(v.to_string()))
                    }
                    None => (a.clone(), None),
                };
                defs.push(ArgDef { description: get_comment(&node.comments, &name), name, default });
            }
            Instruction::Arg { args: defs }
        }
        "shell" => {
            fl.parse().map_err(ferr)?;
            if args.is_empty() {
                return Err(ierr(at_least_one("SHELL")));
            }
            if !node.json {
                return Err(ierr("SHELL requires the arguments to be in JSON form".to_string()));
            }
            Instruction::Shell { shell: args }
        }
        _ => {
            let message =
                with_suggestion(format!("unknown instruction: {}", node.keyword), &node.keyword, INSTRUCTIONS, false);
            return Err(Error::UnknownInstruction { instruction: node.keyword.clone(), message, range });
        }
    };
    Ok(Command {
        instruction,
        range,
        keyword: node.keyword.clone(),
        original: node.original.clone(),
        flags: node.flags.clone(),
        comments: node.comments.clone(),
    })
}

/// `(?i)^\s*ONBUILD\s*` removed.
fn strip_onbuild(original: &str) -> String {
    let s = original.trim_start_matches(['\t', '\n', '\u{c}', '\r', ' ']);
    if s.len() >= 7 && s.is_char_boundary(7) && s[..7].eq_ignore_ascii_case("onbuild") {
        s[7..].trim_start_matches(['\t', '\n', '\u{c}', '\r', ' ']).to_string()
    } else {
        original.to_string()
    }
}

/// Go's `regexp.MatchString("\\$.", v)`.
fn has_var(v: &str) -> bool {
    v.find('$').is_some_and(|i| v[i + 1..].chars().next().is_some_and(|c| c != '\n'))
}

fn sources_and_dest(
    args: &[String],
    heredocs: &[Heredoc],
    cmd: &str,
) -> Result<(Vec<String>, Vec<SourceContent>, String), String> {
    let (srcs, dest) = args.split_at(args.len() - 1);
    let dest = dest[0].clone();
    if matches!(parse_heredoc(&dest), Ok(Some(_))) {
        return Err(format!("{cmd} cannot accept a heredoc as a destination"));
    }
    let mut paths = Vec::new();
    let mut contents = Vec::new();
    for s in srcs {
        match parse_heredoc(s) {
            Ok(Some(h)) => {
                let mut data =
                    heredocs.iter().rev().find(|x| x.name == h.name).map(|x| x.content.clone()).unwrap_or_default();
                if h.chomp {
                    data = chomp_heredoc_content(&data);
                }
                contents.push(SourceContent { path: h.name, data, expand: h.expand });
            }
            _ => paths.push(s.clone()),
        }
    }
    Ok((paths, contents, dest))
}

/// Go's `time.ParseDuration`, in nanoseconds.
pub fn parse_go_duration(s: &str) -> Result<i64, String> {
    let orig = s;
    let invalid = || format!("time: invalid duration {}", go_quote(orig));
    let mut s = s;
    let mut neg = false;
    if let Some(r) = s.strip_prefix('-') {
        neg = true;
        s = r;
    } else if let Some(r) = s.strip_prefix('+') {
        s = r;
    }
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(invalid());
    }
    let mut total: u128 = 0;
    while !s.is_empty() {
        let b = s.as_bytes();
        if !(b[0] == b'.' || b[0].is_ascii_digit()) {
            return Err(invalid());
        }
        let int_len = b.iter().take_while(|c| c.is_ascii_digit()).count();
        let int_part = &s[..int_len];
        s = &s[int_len..];
        let mut frac_part = "";
        if let Some(r) = s.strip_prefix('.') {
            let fl = r.bytes().take_while(u8::is_ascii_digit).count();
            frac_part = &r[..fl];
            s = &r[fl..];
        }
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(invalid());
        }
        let ul = s.char_indices().find(|(_, c)| *c == '.' || c.is_ascii_digit()).map_or(s.len(), |(i, _)| i);
        let unit = &s[..ul];
        s = &s[ul..];
        if unit.is_empty() {
            return Err(format!("time: missing unit in duration {}", go_quote(orig)));
        }
        let mult: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => {
                return Err(format!("time: unknown unit {} in duration {}", go_quote(unit), go_quote(orig)));
            }
        };
        let iv: u128 = if int_part.is_empty() { 0 } else { int_part.parse().map_err(|_| invalid())? };
        let mut v = iv.checked_mul(mult).ok_or_else(invalid)?;
        if !frac_part.is_empty() {
            let mut scale: u128 = 1;
            let mut f: u128 = 0;
            for d in frac_part.bytes().take(30) {
                f = f * 10 + u128::from(d - b'0');
                scale *= 10;
            }
            v += f * mult / scale;
        }
        total = total.checked_add(v).ok_or_else(invalid)?;
        if total > i64::MAX as u128 {
            return Err(invalid());
        }
    }
    let t = total as i64;
    Ok(if neg { -t } else { t })
}

fn opt_interval(v: Option<&str>, name: &str) -> Result<i64, String> {
    let Some(s) = v.filter(|s| !s.is_empty()) else {
        return Ok(0);
    };
    let d = parse_go_duration(s)?;
    if d == 0 {
        return Ok(0);
    }
    if d < 1_000_000 {
        return Err(format!("Interval {} cannot be less than 1ms", go_quote(name)));
    }
    Ok(d)
}

/// Parses a `--chmod` value: octal up to 07777 or a chmod(1) symbolic mode.
pub fn parse_chmod(s: &str) -> Result<Chmod, String> {
    let bad = || format!("invalid chmod parameter: '{s}'. it should be octal string and between 0 and 07777");
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        let v = u32::from_str_radix(s, 8).map_err(|_| bad())?;
        if v > 0o7777 {
            return Err(bad());
        }
        return Ok(Chmod::Octal(v));
    }
    // [ugoa]*([-+=]([rwxXst]*|[ugo]))+ , comma separated
    for clause in s.split(',') {
        let b = clause.as_bytes();
        let mut i = b.iter().take_while(|c| b"ugoa".contains(c)).count();
        if i >= b.len() {
            return Err(bad());
        }
        while i < b.len() {
            if !b"-+=".contains(&b[i]) {
                return Err(bad());
            }
            i += 1;
            if i < b.len() && b"ugo".contains(&b[i]) {
                i += 1;
            } else {
                i += b[i..].iter().take_while(|c| b"rwxXst".contains(c)).count();
            }
        }
    }
    Ok(Chmod::Symbolic(s.to_string()))
}

/// Go's `encoding/csv` reading one record (the first line).
fn csv_record(s: &str) -> Result<Vec<String>, String> {
    let line = s.split('\n').next().unwrap_or("");
    let line = line.strip_suffix('\r').unwrap_or(line);
    let c: Vec<char> = line.chars().collect();
    let mut fields = Vec::new();
    let mut i = 0;
    loop {
        let mut f = String::new();
        if c.get(i) == Some(&'"') {
            let start_col = i;
            i += 1;
            loop {
                match c.get(i) {
                    None => {
                        return Err(format!(
                            "failed to parse csv mounts: parse error on line 1, column {}: extraneous or missing \" in quoted-field",
                            start_col + 1
                        ));
                    }
                    Some('"') if c.get(i + 1) == Some(&'"') => {
                        f.push('"');
                        i += 2;
                    }
                    Some('"') => {
                        i += 1;
                        match c.get(i) {
                            None | Some(',') => break,
                            Some(_) => {
                                return Err(format!(
                                    "failed to parse csv mounts: parse error on line 1, column {}: extraneous or missing \" in quoted-field",
                                    i + 1
                                ));
                            }
                        }
                    }
                    Some(&ch) => {
                        f.push(ch);
                        i += 1;
                    }
                }
            }
        } else {
            while let Some(&ch) = c.get(i) {
                if ch == ',' {
                    break;
                }
                if ch == '"' {
                    return Err(format!(
                        "failed to parse csv mounts: parse error on line 1, column {}: bare \" in non-quoted-field",
                        i + 1
                    ));
                }
                f.push(ch);
                i += 1;
            }
        }
        fields.push(f);
        if c.get(i) == Some(&',') {
            i += 1;
            continue;
        }
        break;
    }
    Ok(fields)
}

fn check_mount_from_unexpanded(spec: &str) -> Result<(), String> {
    let fields = csv_record(spec)?;
    for f in fields {
        if let Some((k, v)) = f.split_once('=')
            && go_lower(k) == "from"
            && has_var(v)
        {
            return Err("'from' doesn't support variable expansion, define alias stage instead".to_string());
        }
    }
    Ok(())
}

/// docker/go-units `RAMInBytes`.
fn ram_in_bytes(s: &str) -> Option<u64> {
    let t = s;
    let num_len = t.bytes().take_while(|b| b.is_ascii_digit() || *b == b'.').count();
    let num = &t[..num_len];
    if num.is_empty() || num.starts_with('.') {
        return None;
    }
    let v: f64 = num.parse().ok()?;
    let rest = t[num_len..].trim_start_matches(' ');
    let r = rest.to_ascii_lowercase();
    let r = r.strip_suffix('b').unwrap_or(&r);
    let r = r.strip_suffix('i').unwrap_or(r);
    let mult: f64 = match r {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024f64.powi(2),
        "g" => 1024f64.powi(3),
        "t" => 1024f64.powi(4),
        "p" => 1024f64.powi(5),
        _ => return None,
    };
    Some((v * mult) as u64)
}

/// Parses one `--mount` value after expansion (BuildKit `parseMount`),
/// applying the defaults BuildKit applies when converting mounts.
/// `ssh_index` numbers SSH mounts for their default socket path.
pub fn parse_mount(value: &str, ssh_index: usize) -> Result<Mount, String> {
    let fields = csv_record(value)?;
    let mut typ = "bind".to_string();
    let mut from = None;
    let mut source = None;
    let mut target = None;
    let mut readonly = false;
    let mut ro_auto = true;
    let mut id = None;
    let mut sharing = None;
    let mut required = false;
    let mut mode = None;
    let mut uid = None;
    let mut gid = None;
    let mut size = None;
    let mut env = None;
    let pbool = |k: &str, v: &str| -> Result<bool, String> {
        match v {
            "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
            "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
            _ => Err(format!("invalid value for {k}: {v}")),
        }
    };
    for field in &fields {
        let (k, v) = match field.split_once('=') {
            Some((k, v)) => (go_lower(k), Some(v.to_string())),
            None => (go_lower(field), None),
        };
        let Some(v) = v else {
            match k.as_str() {
                "readonly" | "ro" => {
                    readonly = true;
                    ro_auto = false;
                    continue;
                }
                "readwrite" | "rw" => {
                    readonly = false;
                    ro_auto = false;
                    continue;
                }
                "required" => {
                    if typ == "secret" || typ == "ssh" {
                        required = true;
                        continue;
                    }
                    return Err(format!("unexpected key '{k}' for mount type '{typ}'"));
                }
                _ => return Err(format!("invalid field '{field}' must be a key=value pair")),
            }
        };
        match k.as_str() {
            "type" => {
                let l = go_lower(&v);
                if !matches!(l.as_str(), "bind" | "cache" | "tmpfs" | "secret" | "ssh") {
                    return Err(with_suggestion(
                        format!("unsupported mount type {}", go_quote(&v)),
                        &v,
                        &["bind", "cache", "tmpfs", "secret", "ssh"],
                        true,
                    ));
                }
                typ = l;
            }
            "from" => from = Some(v),
            "source" | "src" => source = Some(v),
            "target" | "dst" | "destination" => target = Some(v),
            "readonly" | "ro" => {
                readonly = pbool(&k, &v)?;
                ro_auto = false;
            }
            "readwrite" | "rw" => {
                readonly = !pbool(&k, &v)?;
                ro_auto = false;
            }
            "required" => {
                if typ == "secret" || typ == "ssh" {
                    required = pbool(&k, &v)?;
                } else {
                    return Err(format!("unexpected key '{k}' for mount type '{typ}'"));
                }
            }
            "id" => id = Some(v),
            "sharing" => {
                sharing = Some(match go_lower(&v).as_str() {
                    "shared" => Sharing::Shared,
                    "private" => Sharing::Private,
                    "locked" => Sharing::Locked,
                    _ => return Err(format!("unsupported sharing value {}", go_quote(&v))),
                })
            }
            "mode" => mode = Some(u32::from_str_radix(&v, 8).map_err(|_| format!("invalid value {v} for mode"))?),
            "uid" => uid = Some(v.parse::<u32>().map_err(|_| format!("invalid value {v} for uid"))?),
            "gid" => gid = Some(v.parse::<u32>().map_err(|_| format!("invalid value {v} for gid"))?),
            "size" => {
                if typ != "tmpfs" {
                    return Err(format!("unexpected key '{k}' for mount type '{typ}'"));
                }
                size = Some(ram_in_bytes(&v).ok_or_else(|| format!("invalid value for {k}: {v}"))?);
            }
            "env" => {
                if typ != "secret" {
                    return Err(format!("unexpected key '{k}' for mount type '{typ}'"));
                }
                env = Some(v);
            }
            _ => {
                return Err(with_suggestion(
                    format!("unexpected key '{k}' in '{field}'"),
                    &k,
                    &[
                        "type",
                        "from",
                        "source",
                        "target",
                        "readonly",
                        "id",
                        "sharing",
                        "required",
                        "size",
                        "mode",
                        "uid",
                        "gid",
                        "src",
                        "dst",
                        "destination",
                        "ro",
                        "rw",
                        "readwrite",
                        "env",
                    ],
                    true,
                ));
            }
        }
    }
    let file_info_allowed = matches!(typ.as_str(), "secret" | "ssh" | "cache");
    for (set, n) in [(mode.is_some(), "mode"), (uid.is_some(), "uid"), (gid.is_some(), "gid")] {
        if set && !file_info_allowed {
            return Err(format!("{n} not allowed for {} type mounts", go_quote(&typ)));
        }
    }
    if ro_auto {
        readonly = !(typ == "cache" || typ == "tmpfs");
    }
    if sharing.is_some() && typ != "cache" {
        return Err(format!("invalid cache sharing set for {typ} mount"));
    }
    let base = |p: &str| p.trim_end_matches('/').rsplit('/').next().unwrap_or("").to_string();
    Ok(match typ.as_str() {
        "bind" => Mount::Bind {
            target: target.ok_or("mount type \"bind\" requires a target")?,
            source,
            from,
            readwrite: !readonly,
        },
        "cache" => {
            let target = target.ok_or("mount type \"cache\" requires a target")?;
            Mount::Cache {
                id: id.unwrap_or_else(|| crate::util::clean_path(&target)),
                target,
                sharing: sharing.unwrap_or(Sharing::Shared),
                from,
                source,
                readonly,
                mode,
                uid,
                gid,
            }
        }
        "tmpfs" => Mount::Tmpfs { target: target.ok_or("mount type \"tmpfs\" requires a target")?, size },
        "secret" => {
            if from.is_some() {
                return Err("secret mount should not have a from".to_string());
            }
            if source.is_none() && target.is_none() && id.is_none() && env.is_none() {
                return Err("invalid secret mount. one of source, target required".to_string());
            }
            if source.is_some() && id.is_some() {
                return Err("both source and id can't be set".to_string());
            }
            let id = id.or(source).or_else(|| target.as_deref().map(base)).or_else(|| env.clone()).unwrap_or_default();
            let target = match (&target, &env) {
                (Some(t), _) => Some(t.clone()),
                (None, Some(_)) => None,
                (None, None) => Some(format!("/run/secrets/{id}")),
            };
            Mount::Secret { id, target, env, required, mode: mode.unwrap_or(0o400), uid, gid }
        }
        _ => Mount::Ssh {
            id: id.unwrap_or_else(|| "default".to_string()),
            target: target.unwrap_or_else(|| format!("/run/buildkit/ssh_agent.{ssh_index}")),
            required,
            mode: mode.unwrap_or(0o600),
            uid,
            gid,
        },
    })
}

/// What an expander returns: the expanded text or an error message.
pub type ExpandResult = Result<String, String>;

impl Instruction {
    /// Applies variable expansion to the fields BuildKit expands: ENV and
    /// LABEL keys and values, ADD/COPY sources,
    /// destination, `--chown`, `--chmod`, `--checksum` and unquoted heredoc
    /// bodies (never `--exclude`), EXPOSE (with word splitting), FROM image and
    /// platform, STOPSIGNAL, USER, VOLUME, WORKDIR and RUN `--mount`
    /// options (except `from`). RUN/CMD/ENTRYPOINT/SHELL/HEALTHCHECK/
    /// ONBUILD/MAINTAINER are left alone.
    ///
    /// `word` expands one word; `words` expands with word splitting;
    /// `heredoc` expands a heredoc body (quotes kept).
    pub fn expand(
        &mut self,
        word: &mut dyn FnMut(&str) -> ExpandResult,
        words: &mut dyn FnMut(&str) -> Result<Vec<String>, String>,
        heredoc: &mut dyn FnMut(&str) -> ExpandResult,
    ) -> Result<(), String> {
        match self {
            Instruction::Env { vars } | Instruction::Label { labels: vars } => {
                for kv in vars {
                    kv.key = word(&kv.key)?;
                    kv.value = word(&kv.value)?;
                }
            }
            Instruction::Add(c) | Instruction::Copy(c) => {
                for s in &mut c.sources {
                    *s = word(s)?;
                }
                c.dest = word(&c.dest)?;
                for sc in &mut c.contents {
                    if sc.expand {
                        sc.data = heredoc(&sc.data)?;
                    }
                }
                if let Some(v) = &c.chown {
                    c.chown = Some(word(v)?);
                }
                if let Some(v) = &c.chmod_raw {
                    let e = word(v)?;
                    c.chmod = Some(parse_chmod(&e)?);
                    c.chmod_raw = Some(e);
                }
                if let Some(v) = &c.checksum {
                    c.checksum = Some(word(v)?);
                }
            }
            Instruction::Expose { ports } => {
                let mut out = Vec::new();
                for p in ports.iter() {
                    out.extend(words(p)?);
                }
                *ports = out;
            }
            Instruction::From(f) => {
                f.image = word(&f.image)?;
                if let Some(p) = &f.platform {
                    f.platform = Some(word(p)?);
                }
            }
            Instruction::Stopsignal { signal: s }
            | Instruction::User { user: s }
            | Instruction::Workdir { path: s } => *s = word(s)?,
            Instruction::Volume { paths, .. } => {
                for p in paths.iter_mut() {
                    *p = word(p)?;
                    if p.is_empty() {
                        return Err("VOLUME specified can not be an empty string".to_string());
                    }
                }
            }
            Instruction::Run(r) => {
                let mut mounts = Vec::new();
                let mut ssh = 0;
                for spec in &r.mount_specs {
                    let fields = csv_record(spec)?;
                    let mut expanded = Vec::new();
                    for f in fields {
                        match f.split_once('=') {
                            Some((k, v)) if go_lower(k) != "from" => {
                                expanded.push(format!("{k}={}", word(v)?));
                            }
                            _ => expanded.push(f),
                        }
                    }
                    // Re-quote for the CSV reader.
                    let line: Vec<String> = expanded
                        .iter()
                        .map(|f| {
                            if f.contains([',', '"', '\n']) {
                                format!("\"{}\"", f.replace('"', "\"\""))
                            } else {
                                f.clone()
                            }
                        })
                        .collect();
                    let m = parse_mount(&line.join(","), ssh)?;
                    if matches!(m, Mount::Ssh { .. }) {
                        ssh += 1;
                    }
                    mounts.push(m);
                }
                r.mounts = mounts;
            }
            Instruction::Cmd(_)
            | Instruction::Entrypoint(_)
            | Instruction::Maintainer { .. }
            | Instruction::Onbuild { .. }
            | Instruction::Healthcheck(_)
            | Instruction::Shell { .. }
            // ARG defaults are expanded one by one by the plan, each with
            // the environment at that point (see `plan`).
            | Instruction::Arg { .. } => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::parse;

    fn cmd(src: &str) -> Result<Command, Error> {
        let df = parse(src.as_bytes()).unwrap();
        parse_instruction(&df.nodes[0])
    }
    fn msg(src: &str) -> String {
        cmd(src).unwrap_err().message().to_string()
    }

    #[test]
    fn argument_counts() {
        assert_eq!(msg("WORKDIR"), "WORKDIR requires exactly one argument");
        assert_eq!(msg("USER"), "USER requires exactly one argument");
        assert_eq!(msg("STOPSIGNAL"), "STOPSIGNAL requires exactly one argument");
        assert_eq!(msg("MAINTAINER"), "MAINTAINER requires exactly one argument");
        assert_eq!(msg("EXPOSE"), "EXPOSE requires at least one argument");
        assert_eq!(msg("VOLUME"), "VOLUME requires at least one argument");
        assert_eq!(msg("LABEL"), "LABEL requires at least one argument");
        assert_eq!(msg("ONBUILD"), "ONBUILD requires at least one argument");
        assert_eq!(msg("HEALTHCHECK"), "HEALTHCHECK requires at least one argument");
        assert!(msg("COPY a").starts_with("COPY requires at least two arguments"));
        assert_eq!(msg("FROM a b"), "FROM requires either one or three arguments");
        assert!(msg("FROM a AS 1x").starts_with("invalid name for build stage: \"1x\""));
        assert_eq!(msg("SHELL sh -c"), "SHELL requires the arguments to be in JSON form");
    }

    #[test]
    fn unknown_instruction_suggests() {
        assert_eq!(msg("RUNN foo"), "unknown instruction: RUNN (did you mean RUN?)");
        assert_eq!(msg("xyzzy foo"), "unknown instruction: xyzzy");
        assert!(matches!(cmd("fro a"), Err(Error::UnknownInstruction { .. })));
    }

    #[test]
    fn flag_errors() {
        assert_eq!(msg("RUN --mont=type=bind x"), "unknown flag: mont (did you mean mount?)");
        assert_eq!(msg("COPY --chown=a --chown=b x y"), "duplicate flag specified: chown");
        assert_eq!(msg("COPY --chown x y"), "missing a value on flag: chown");
        assert_eq!(msg("COPY --link=maybe x y"), "expecting boolean value for flag link, not: maybe");
        assert_eq!(msg("WORKDIR --x=1 /a"), "unknown flag: x");
        assert!(msg("RUN --mount=from=${X},target=/a x").contains("doesn't support variable expansion"));
        assert_eq!(msg("RUN --network=bridge x"), "unsupported network mode \"bridge\"");
    }

    #[test]
    fn copy_flags() {
        let c = cmd("COPY --from=build --chown=1:2 --chmod=0644 --link --exclude=*.md --exclude=x --parents a b /d/")
            .unwrap();
        let Instruction::Copy(c) = c.instruction else { panic!() };
        assert_eq!(c.from.as_deref(), Some("build"));
        assert_eq!(c.excludes, vec!["*.md", "x"]);
        assert!(c.link && c.parents);
        assert_eq!(c.sources, vec!["a", "b"]);
        let c = cmd("ADD --checksum=sha256:abc --keep-git-dir=true https://x /d").unwrap();
        let Instruction::Add(a) = c.instruction else { panic!() };
        assert!(a.keep_git_dir);
        assert!(msg("ADD --from=x a b").starts_with("unknown flag: from"));
        assert!(msg("ADD --parents a b").starts_with("unknown flag: parents"));
        assert_eq!(
            parse_chmod("64a").unwrap_err(),
            "invalid chmod parameter: '64a'. it should be octal string and between 0 and 07777"
        );
    }

    #[test]
    fn healthcheck() {
        let c = cmd("HEALTHCHECK --interval=5s --retries=3 CMD curl x").unwrap();
        let Instruction::Healthcheck(h) = c.instruction else { panic!() };
        assert_eq!(h.test, vec!["CMD-SHELL", "curl x"]);
        assert_eq!(h.interval_ns, 5_000_000_000);
        assert_eq!(msg("HEALTHCHECK --interval=1us CMD x"), "Interval \"interval\" cannot be less than 1ms");
        assert_eq!(msg("HEALTHCHECK --timeout=5 CMD x"), "time: missing unit in duration \"5\"");
        assert_eq!(msg("HEALTHCHECK --retries=-1 CMD x"), "--retries cannot be negative (-1)");
        assert_eq!(msg("HEALTHCHECK NONE x"), "HEALTHCHECK NONE takes no arguments");
        assert_eq!(msg("HEALTHCHECK FOO x"), "Unknown type \"FOO\" in HEALTHCHECK (try CMD)");
        assert_eq!(parse_go_duration("1h2m3.5s").unwrap(), 3_723_500_000_000);
    }

    #[test]
    fn onbuild_rules() {
        assert_eq!(msg("ONBUILD ONBUILD RUN x"), "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed");
        assert_eq!(msg("ONBUILD FROM x"), "FROM isn't allowed as an ONBUILD trigger");
        let c = cmd("onbuild   RUN echo hi").unwrap();
        assert_eq!(c.instruction, Instruction::Onbuild { expression: "RUN echo hi".into() });
    }

    #[test]
    fn mounts() {
        let m = parse_mount("type=cache,target=/root/.cache,sharing=locked,mode=0700,uid=1", 0).unwrap();
        assert!(
            matches!(m, Mount::Cache { ref id, sharing: Sharing::Locked, mode: Some(0o700), .. } if id == "/root/.cache")
        );
        let m = parse_mount("type=secret,id=tok,env=TOKEN", 0).unwrap();
        assert!(matches!(m, Mount::Secret { target: None, ref env, .. } if env.as_deref() == Some("TOKEN")));
        let m = parse_mount("type=secret,id=tok", 0).unwrap();
        assert!(matches!(m, Mount::Secret { target: Some(ref t), mode: 0o400, .. } if t == "/run/secrets/tok"));
        let m = parse_mount("type=tmpfs,target=/t,size=128m", 0).unwrap();
        assert_eq!(m, Mount::Tmpfs { target: "/t".into(), size: Some(128 << 20) });
        let m = parse_mount("target=/src,rw", 0).unwrap();
        assert!(matches!(m, Mount::Bind { readwrite: true, .. }));
        assert_eq!(
            parse_mount("type=bnd,target=/x", 0).unwrap_err(),
            "unsupported mount type \"bnd\" (did you mean bind?)"
        );
        assert_eq!(parse_mount("target=/x,mode=0700", 0).unwrap_err(), "mode not allowed for \"bind\" type mounts");
        assert_eq!(
            parse_mount("type=cache,target=/x,sharing=all", 0).unwrap_err(),
            "unsupported sharing value \"all\""
        );
        assert_eq!(parse_mount("target=/x,sharing=locked", 0).unwrap_err(), "invalid cache sharing set for bind mount");
        assert_eq!(
            parse_mount("target=/x,required", 0).unwrap_err(),
            "unexpected key 'required' for mount type 'bind'"
        );
        assert_eq!(
            parse_mount("target=/x,trget=/y", 0).unwrap_err(),
            "unexpected key 'trget' in 'trget=/y' (did you mean target?)"
        );
        assert_eq!(
            parse_mount("type=ssh", 1).unwrap(),
            Mount::Ssh {
                id: "default".into(),
                target: "/run/buildkit/ssh_agent.1".into(),
                required: false,
                mode: 0o600,
                uid: None,
                gid: None
            }
        );
        assert!(parse_mount("type=secret", 0).is_err());
    }

    #[test]
    fn chmod() {
        assert_eq!(parse_chmod("0644").unwrap(), Chmod::Octal(0o644));
        assert_eq!(parse_chmod("777").unwrap(), Chmod::Octal(0o777));
        assert!(parse_chmod("10000").is_err());
        assert!(parse_chmod("64a").is_err());
        for ok in ["go-w", "u=rw,g=r,o=r", "a+X", "u+rw,g+r,o-x,o+w", "g=u"] {
            assert!(matches!(parse_chmod(ok), Ok(Chmod::Symbolic(_))), "{ok}");
        }
        assert!(parse_chmod("u").is_err());
    }

    #[test]
    fn env_and_arg() {
        let c = cmd("ENV a=1 b=\"2 3\"").unwrap();
        let Instruction::Env { vars } = c.instruction else { panic!() };
        assert_eq!(vars[1].value, "\"2 3\"");
        let c = cmd("ENV a 1 2").unwrap();
        let Instruction::Env { vars } = c.instruction else { panic!() };
        assert!(vars[0].legacy && vars[0].value == "1 2");
        assert_eq!(msg("ARG =x"), "ARG names can not be blank");
        assert!(parse(b"ENV PATH").is_err());
        let c = cmd("# foo the foo arg\nARG foo=1 bar").unwrap();
        let Instruction::Arg { args } = c.instruction else { panic!() };
        assert_eq!(args[0].description, "the foo arg");
        assert_eq!(args[1].default, None);
    }

    #[test]
    fn copy_heredoc_sources() {
        let c = cmd("COPY <<A <<-B /dest/\nhello\nA\n\tworld\n\tB\n").unwrap();
        let Instruction::Copy(c) = c.instruction else { panic!() };
        assert_eq!(c.contents.len(), 2);
        assert_eq!(c.contents[1].data, "world\n");
        assert!(c.sources.is_empty());
        assert_eq!(msg("COPY a <<EOF\nx\nEOF\n"), "COPY cannot accept a heredoc as a destination");
    }
}
