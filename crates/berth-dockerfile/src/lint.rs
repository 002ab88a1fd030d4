//! `--check`: BuildKit's statically checkable lint rules, the `check`
//! directive (`skip=…;error=true;experimental=…`), per-instruction
//! suppression (`# check=skip=Rule` directly above), and output formatted
//! like `docker build --check`.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::dockerignore::PatternMatcher;
use crate::error::{Error, LineRange};
use crate::instructions::{Command, Instruction};
use crate::plan::{Parsed, PlanOptions, Platform, Step, parse_dockerfile, plan_parsed};
use crate::render::render_source;
use crate::shell::Lexer;
use crate::util::{clean_path, go_lower, go_quote, go_upper, suggest};

/// A lint rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Rule {
    pub name: &'static str,
    pub description: &'static str,
    pub url: &'static str,
    pub experimental: bool,
}

macro_rules! rules {
    ($($id:ident = $name:literal, $slug:literal, $exp:literal, $desc:literal;)*) => {
        $(pub const $id: Rule = Rule {
            name: $name,
            description: $desc,
            url: concat!("https://docs.docker.com/go/dockerfile/rule/", $slug, "/"),
            experimental: $exp,
        };)*
        /// Every implemented rule.
        pub const ALL_RULES: &[Rule] = &[$($id),*];
    };
}

rules! {
    STAGE_NAME_CASING = "StageNameCasing", "stage-name-casing", false, "Stage names should be lowercase";
    FROM_AS_CASING = "FromAsCasing", "from-as-casing", false, "The 'as' keyword should match the case of the 'from' keyword";
    NO_EMPTY_CONTINUATION = "NoEmptyContinuation", "no-empty-continuation", false, "Empty continuation lines will become errors in a future release";
    CONSISTENT_INSTRUCTION_CASING = "ConsistentInstructionCasing", "consistent-instruction-casing", false, "All commands within the Dockerfile should use the same casing (either upper or lower)";
    DUPLICATE_STAGE_NAME = "DuplicateStageName", "duplicate-stage-name", false, "Stage names should be unique";
    RESERVED_STAGE_NAME = "ReservedStageName", "reserved-stage-name", false, "Reserved words should not be used as stage names";
    JSON_ARGS_RECOMMENDED = "JSONArgsRecommended", "json-args-recommended", false, "JSON arguments recommended for ENTRYPOINT/CMD to prevent unintended behavior related to OS signals";
    MAINTAINER_DEPRECATED = "MaintainerDeprecated", "maintainer-deprecated", false, "The MAINTAINER instruction is deprecated, use a label instead to define an image author";
    UNDEFINED_ARG_IN_FROM = "UndefinedArgInFrom", "undefined-arg-in-from", false, "FROM command must use declared ARGs";
    WORKDIR_RELATIVE_PATH = "WorkdirRelativePath", "workdir-relative-path", false, "Relative workdir without an absolute workdir declared within the build can have unexpected results if the base image changes";
    UNDEFINED_VAR = "UndefinedVar", "undefined-var", false, "Variables should be defined before their use";
    MULTIPLE_INSTRUCTIONS_DISALLOWED = "MultipleInstructionsDisallowed", "multiple-instructions-disallowed", false, "Multiple instructions of the same type should not be used in the same stage";
    LEGACY_KEY_VALUE_FORMAT = "LegacyKeyValueFormat", "legacy-key-value-format", false, "Legacy key/value format with whitespace separator should not be used";
    REDUNDANT_TARGET_PLATFORM = "RedundantTargetPlatform", "redundant-target-platform", false, "Setting platform to predefined $TARGETPLATFORM in FROM is redundant as this is the default behavior";
    SECRETS_USED_IN_ARG_OR_ENV = "SecretsUsedInArgOrEnv", "secrets-used-in-arg-or-env", false, "Sensitive data should not be used in the ARG or ENV commands";
    INVALID_DEFAULT_ARG_IN_FROM = "InvalidDefaultArgInFrom", "invalid-default-arg-in-from", false, "Default value for global ARG results in an empty or invalid base image name";
    FROM_PLATFORM_FLAG_CONST_DISALLOWED = "FromPlatformFlagConstDisallowed", "from-platform-flag-const-disallowed", false, "FROM --platform flag should not use a constant value";
    COPY_IGNORED_FILE = "CopyIgnoredFile", "copy-ignored-file", true, "Attempting to Copy file that is excluded by .dockerignore";
    INVALID_DEFINITION_DESCRIPTION = "InvalidDefinitionDescription", "invalid-definition-description", true, "Comment for build stage or argument should follow the format: `# <arg/stage name> <description>`. If this is not intended to be a description comment, add an empty line or comment between the instruction and the comment.";
    EXPOSE_PROTO_CASING = "ExposeProtoCasing", "expose-proto-casing", false, "Protocol in EXPOSE instruction should be lowercase";
    EXPOSE_INVALID_FORMAT = "ExposeInvalidFormat", "expose-invalid-format", false, "IP address and host-port mapping should not be used in EXPOSE instruction. This will become an error in a future release";
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LintWarning {
    pub rule: &'static str,
    pub url: &'static str,
    pub description: &'static str,
    /// The message as BuildKit prints it.
    pub message: String,
    pub range: Option<LineRange>,
}

/// The `check` directive / `BUILDKIT_DOCKERFILE_CHECK` value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckConfig {
    pub skip: Vec<String>,
    pub skip_all: bool,
    pub error: bool,
    pub experimental: Vec<String>,
    pub experimental_all: bool,
}

impl CheckConfig {
    /// Parses `skip=A,B|all;error=true;experimental=C|all`.
    pub fn parse(s: &str) -> Result<CheckConfig, String> {
        let mut c = CheckConfig::default();
        for part in s.split(';') {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            let Some((k, v)) = part.split_once('=') else {
                return Err(format!("invalid check option {}", go_quote(part)));
            };
            let list =
                || -> Vec<String> { v.split(',').map(|x| x.trim().to_string()).filter(|x| !x.is_empty()).collect() };
            match go_lower(k.trim()).as_str() {
                "skip" => {
                    let l = list();
                    c.skip_all = l.iter().any(|x| x == "all");
                    c.skip = l;
                }
                "error" => {
                    c.error = match go_lower(v.trim()).as_str() {
                        "1" | "t" | "true" => true,
                        "0" | "f" | "false" => false,
                        _ => return Err(format!("failed to parse check option error: {}", go_quote(v))),
                    }
                }
                "experimental" => {
                    let l = list();
                    c.experimental_all = l.iter().any(|x| x == "all");
                    c.experimental = l;
                }
                _ => return Err(format!("invalid check option {}", go_quote(k))),
            }
        }
        Ok(c)
    }

    fn enabled(&self, r: &Rule) -> bool {
        if self.skip_all || self.skip.iter().any(|s| s == r.name) {
            return false;
        }
        !r.experimental || self.experimental_all || self.experimental.iter().any(|s| s == r.name)
    }
}

/// Inputs for lint that are not in the Dockerfile.
#[derive(Debug, Clone, Default)]
pub struct LintOptions {
    pub build_args: BTreeMap<String, String>,
    /// `.dockerignore` patterns, for `CopyIgnoredFile`.
    pub ignore_patterns: Option<Vec<String>>,
    /// Base image `Env`, for `UndefinedVar` on image-based stages.
    pub base_image_env: HashMap<String, Vec<(String, String)>>,
    pub target_platform: Option<Platform>,
}

/// The outcome of `--check`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LintReport {
    pub warnings: Vec<LintWarning>,
    /// `check=error=true` with warnings: `lint violation found for rules: …`.
    pub error: Option<String>,
    /// A parse or planning error that stopped the check (warnings found
    /// before it are still listed).
    #[serde(serialize_with = "ser_err")]
    pub fatal: Option<Error>,
}

fn ser_err<S: serde::Serializer>(e: &Option<Error>, s: S) -> Result<S::Ok, S::Error> {
    match e {
        Some(e) => s.serialize_some(&e.to_string()),
        None => s.serialize_none(),
    }
}

struct Collector<'a> {
    cfg: &'a CheckConfig,
    out: Vec<LintWarning>,
}

impl Collector<'_> {
    fn add(&mut self, rule: Rule, message: String, range: Option<LineRange>, suppressed: &[String]) {
        if !self.cfg.enabled(&rule) || suppressed.iter().any(|s| s == rule.name || s == "all") {
            return;
        }
        self.out.push(LintWarning { rule: rule.name, url: rule.url, description: rule.description, message, range });
    }
}

/// Rules skipped by `# check=skip=…` comments directly above an instruction
/// (text after `//` is a remark).
fn suppressed(comments: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for c in comments {
        let c = c.split("//").next().unwrap_or("").trim();
        if let Some(rest) = c.strip_prefix("check=")
            && let Ok(cfg) = CheckConfig::parse(rest)
        {
            out.extend(cfg.skip);
        }
    }
    out
}

fn is_secret_key(key: &str) -> bool {
    let toks: Vec<String> = key.split('_').map(go_lower).collect();
    let secret =
        ["apikey", "auth", "credential", "credentials", "key", "password", "pword", "passwd", "secret", "token"];
    if toks.iter().any(|t| t == "public") {
        return false;
    }
    toks.iter().any(|t| secret.contains(&t.as_str()))
}

fn self_consistent(s: &str) -> bool {
    s == go_lower(s) || s == go_upper(s)
}

const PLATFORM_ARGS: &[&str] = &[
    "BUILDPLATFORM",
    "BUILDOS",
    "BUILDOSVERSION",
    "TARGETOSVERSION",
    "BUILDARCH",
    "BUILDVARIANT",
    "TARGETPLATFORM",
    "TARGETOS",
    "TARGETARCH",
    "TARGETVARIANT",
    "TARGETSTAGE",
];

/// Global ARG values from defaults only (no build args) plus the platform
/// args, in order; what BuildKit uses for `InvalidDefaultArgInFrom`.
fn global_defaults(parsed: &Parsed, opts: &LintOptions) -> Vec<(String, String)> {
    let p = opts.target_platform.clone().unwrap_or_else(Platform::host);
    let mut env: Vec<(String, String)> = vec![
        ("BUILDPLATFORM".into(), p.to_string()),
        ("BUILDOS".into(), p.os.clone()),
        ("BUILDARCH".into(), p.architecture.clone()),
        ("BUILDVARIANT".into(), p.variant.clone().unwrap_or_default()),
        ("TARGETPLATFORM".into(), p.to_string()),
        ("TARGETOS".into(), p.os.clone()),
        ("TARGETARCH".into(), p.architecture.clone()),
        ("TARGETVARIANT".into(), p.variant.clone().unwrap_or_default()),
    ];
    let lex = Lexer::new(parsed.dockerfile.escape);
    for c in &parsed.meta_args {
        if let Instruction::Arg { args } = &c.instruction {
            for a in args {
                if let Some(d) = &a.default
                    && let Ok(v) = lex.process_word(d, &env)
                {
                    env.retain(|(k, _)| *k != a.name);
                    env.push((a.name.clone(), v));
                }
            }
        }
    }
    env
}

/// `reference.ParseNormalizedNamed` (distribution/reference): whether `r`
/// is a valid image reference (name, optional tag, optional digest).
pub fn valid_reference(r: &str) -> bool {
    let (rest, digest) = match r.split_once('@') {
        Some((a, d)) => (a, Some(d)),
        None => (r, None),
    };
    if let Some(d) = digest {
        let Some((alg, hex)) = d.split_once(':') else { return false };
        let alg_ok = alg.split(['-', '_', '+', '.']).all(|c| {
            let mut ch = c.chars();
            ch.next().is_some_and(|f| f.is_ascii_alphabetic()) && ch.all(|x| x.is_ascii_alphanumeric())
        });
        if !alg_ok || hex.len() < 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return false;
        }
    }
    // A tag follows the last ':' after the last '/'.
    let (name, tag) = match rest.rfind(':') {
        Some(i) if !rest[i..].contains('/') => (&rest[..i], Some(&rest[i + 1..])),
        _ => (rest, None),
    };
    if let Some(t) = tag {
        let mut ch = t.chars();
        let first_ok = ch.next().is_some_and(|f| f.is_ascii_alphanumeric() || f == '_');
        if !first_ok || t.len() > 128 || !ch.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')) {
            return false;
        }
    }
    if name.is_empty() || name.len() > 255 {
        return false;
    }
    if name.len() == 64 && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return false;
    }
    let (domain, path) = match name.split_once('/') {
        Some((d, p)) if d.contains(['.', ':']) || d == "localhost" || d.to_lowercase() != d => (Some(d), p),
        _ => (None, name),
    };
    if let Some(d) = domain {
        let (host, port) = match d.rsplit_once(':') {
            Some((h, p)) if !p.contains(']') => (h, Some(p)),
            _ => (d, None),
        };
        if let Some(p) = port
            && (p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
        {
            return false;
        }
        let host_ok = if host.starts_with('[') {
            host.ends_with(']') && host.len() > 2
        } else {
            !host.is_empty()
                && host.split('.').all(|c| {
                    !c.is_empty()
                        && c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                        && !c.starts_with('-')
                        && !c.ends_with('-')
                })
        };
        if !host_ok {
            return false;
        }
    }
    path.split('/').all(|comp| {
        // [a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*
        let b = comp.as_bytes();
        let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
        if b.first().is_none_or(|c| !alnum(*c)) || b.last().is_none_or(|c| !alnum(*c)) {
            return false;
        }
        let mut i = 0;
        while i < b.len() {
            if alnum(b[i]) {
                i += 1;
                continue;
            }
            let start = i;
            while i < b.len() && !alnum(b[i]) {
                i += 1;
            }
            let sep = &comp[start..i];
            if !(sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|c| c == b'-')) {
                return false;
            }
        }
        true
    })
}

/// Runs the lint rules over a Dockerfile.
pub fn lint(source: &[u8], opts: &LintOptions) -> LintReport {
    let parsed = match parse_dockerfile(source) {
        Ok(p) => p,
        Err(e) => return LintReport { warnings: Vec::new(), error: None, fatal: Some(e) },
    };
    let check_src = opts
        .build_args
        .get("BUILDKIT_DOCKERFILE_CHECK")
        .cloned()
        .or_else(|| parsed.dockerfile.directive("check").map(str::to_string));
    let cfg = match check_src.as_deref().map(CheckConfig::parse).transpose() {
        Ok(c) => c.unwrap_or_default(),
        Err(m) => {
            return LintReport {
                warnings: Vec::new(),
                error: None,
                fatal: Some(Error::Parse { message: m, range: None }),
            };
        }
    };
    let mut col = Collector { cfg: &cfg, out: Vec::new() };
    static_rules(&parsed, opts, &mut col);
    let popts = PlanOptions {
        build_args: opts.build_args.clone(),
        base_image_env: opts.base_image_env.clone(),
        target_platform: opts.target_platform.clone(),
        all_stages: true,
        ..Default::default()
    };
    let fatal = match plan_parsed(&parsed, &popts) {
        Ok(plan) => {
            for st in &plan.stages {
                let raw = &parsed.stages[st.index];
                plan_rules(st.env_known, &st.steps, &raw.commands, opts, &mut col);
                let meta: Vec<&str> =
                    plan.meta_args.iter().map(|m| m.name.as_str()).chain(PLATFORM_ARGS.iter().copied()).collect();
                for u in &st.undefined_from_args {
                    if meta.contains(&u.as_str()) {
                        continue;
                    }
                    let mut m = format!("FROM argument '{u}' is not declared");
                    if let Some(s) = suggest(u, &meta, true) {
                        m.push_str(&format!(" (did you mean {s}?)"));
                    }
                    col.add(UNDEFINED_ARG_IN_FROM, m, Some(raw.from.range), &suppressed(&raw.from.comments));
                }
            }
            None
        }
        Err(e) => Some(e),
    };
    let mut warnings = col.out;
    warnings.sort_by_key(|w| w.range.map(|r| r.start).unwrap_or(0));
    let error = (cfg.error && !warnings.is_empty()).then(|| {
        let mut names: Vec<&str> = Vec::new();
        for w in &warnings {
            if !names.contains(&w.rule) {
                names.push(w.rule);
            }
        }
        format!("lint violation found for rules: {}", names.join(", "))
    });
    LintReport { warnings, error, fatal }
}

fn static_rules(parsed: &Parsed, opts: &LintOptions, col: &mut Collector) {
    for w in &parsed.dockerfile.warnings {
        col.add(NO_EMPTY_CONTINUATION, "Empty continuation line".to_string(), Some(w.range), &[]);
    }
    // Instruction casing: majority over all stage instructions.
    let (mut lower, mut upper) = (0, 0);
    for st in &parsed.stages {
        for c in std::iter::once(&st.from).chain(&st.commands) {
            if self_consistent(&c.keyword) {
                if go_lower(&c.keyword) == c.keyword {
                    lower += 1;
                } else {
                    upper += 1;
                }
            }
        }
    }
    let majority_lower = lower > upper;
    // Global ARGs: secrets and descriptions.
    for c in &parsed.meta_args {
        arg_env_rules(c, col);
    }
    let mut seen_names: Vec<String> = Vec::new();
    for st in &parsed.stages {
        for c in std::iter::once(&st.from).chain(&st.commands) {
            let sup = suppressed(&c.comments);
            let fix = if majority_lower && go_lower(&c.keyword) != c.keyword {
                Some("lowercase")
            } else if !majority_lower && go_upper(&c.keyword) != c.keyword {
                Some("uppercase")
            } else {
                None
            };
            if let Some(fix) = fix {
                col.add(
                    CONSISTENT_INSTRUCTION_CASING,
                    format!("Command '{}' should match the case of the command majority ({fix})", c.keyword),
                    Some(c.range),
                    &sup,
                );
            }
        }
        let Instruction::From(f) = &st.from.instruction else { continue };
        let sup = suppressed(&st.from.comments);
        let r = Some(st.from.range);
        if !f.name.is_empty() {
            if f.name_as_written != f.name {
                col.add(STAGE_NAME_CASING, format!("Stage name '{}' should be lowercase", f.name_as_written), r, &sup);
            }
            let kw = &st.from.keyword;
            let asw = &f.as_keyword;
            if (go_upper(kw) == *kw && go_upper(asw) != *asw) || (go_lower(kw) == *kw && go_lower(asw) != *asw) {
                col.add(FROM_AS_CASING, format!("'{asw}' and '{kw}' keywords' casing do not match"), r, &sup);
            }
            if seen_names.contains(&f.name) {
                col.add(
                    DUPLICATE_STAGE_NAME,
                    format!("Duplicate stage name {}, stage names should be unique", go_quote(&f.name)),
                    r,
                    &sup,
                );
            }
            seen_names.push(f.name.clone());
            if f.name == "scratch" || f.name == "context" {
                col.add(
                    RESERVED_STAGE_NAME,
                    format!("Stage name should not use the same name as reserved stage {}", go_quote(&f.name)),
                    r,
                    &sup,
                );
            }
            if st.from.comments.iter().any(|c| !c.starts_with("check=")) && f.description.is_empty() {
                col.add(
                    INVALID_DEFINITION_DESCRIPTION,
                    format!("Comment for build stage should follow the format: `# {} <description>`", f.name),
                    r,
                    &sup,
                );
            }
        }
        if let Some(p) = &f.platform {
            let lex = Lexer::new(parsed.dockerfile.escape);
            let env = global_defaults(parsed, opts);
            if let Ok(m) = lex.process(p, &env) {
                let tp = env.iter().find(|(k, _)| k == "TARGETPLATFORM").map(|(_, v)| v.as_str());
                if m.matched.len() == 1 && m.unmatched.is_empty() && m.matched.contains("TARGETPLATFORM") {
                    if Some(m.result.as_str()) == tp {
                        col.add(
                            REDUNDANT_TARGET_PLATFORM,
                            format!("Setting platform to predefined {p} in FROM is redundant as this is the default behavior"),
                            r,
                            &sup,
                        );
                    }
                } else if m.matched.is_empty()
                    && m.unmatched.is_empty()
                    && let Ok(pl) = Platform::parse(&m.result)
                    && !f.name.contains(&pl.os)
                    && !f.name.contains(&pl.architecture)
                {
                    col.add(
                        FROM_PLATFORM_FLAG_CONST_DISALLOWED,
                        format!("FROM --platform flag should not use constant value {}", go_quote(&m.result)),
                        r,
                        &sup,
                    );
                }
            }
        }
        {
            let lex = Lexer::new(parsed.dockerfile.escape);
            let env = global_defaults(parsed, opts);
            if let Ok(v) = lex.process_word(&f.image, &env)
                && !valid_reference(&v)
            {
                col.add(
                    INVALID_DEFAULT_ARG_IN_FROM,
                    format!("Default value for ARG {} results in empty or invalid base image name", f.image),
                    r,
                    &sup,
                );
            }
        }
        let mut multiple: BTreeMap<&str, Vec<&Command>> = BTreeMap::new();
        for c in &st.commands {
            let sup = suppressed(&c.comments);
            match &c.instruction {
                Instruction::Maintainer { .. } => col.add(
                    MAINTAINER_DEPRECATED,
                    "Maintainer instruction is deprecated in favor of using label".to_string(),
                    Some(c.range),
                    &sup,
                ),
                Instruction::Env { vars } | Instruction::Label { labels: vars } => {
                    if vars.iter().any(|v| v.legacy) {
                        let n = &c.keyword;
                        col.add(
                            LEGACY_KEY_VALUE_FORMAT,
                            format!("\"{n} key=value\" should be used instead of legacy \"{n} key value\" format"),
                            Some(c.range),
                            &sup,
                        );
                    }
                    if matches!(c.instruction, Instruction::Env { .. }) {
                        arg_env_rules(c, col);
                    }
                }
                Instruction::Arg { .. } => arg_env_rules(c, col),
                Instruction::Cmd(_) | Instruction::Entrypoint(_) | Instruction::Healthcheck(_) => {
                    multiple.entry(c.instruction.name()).or_default().push(c);
                }
                _ => {}
            }
        }
        for (_, cs) in multiple {
            // BuildKit reports the earlier instruction, named like the later one.
            for w in cs.windows(2) {
                let (c, next) = (w[0], w[1]);
                col.add(
                    MULTIPLE_INSTRUCTIONS_DISALLOWED,
                    format!(
                        "Multiple {} instructions should not be used in the same stage because only the last one will be used",
                        next.keyword
                    ),
                    Some(c.range),
                    &suppressed(&c.comments),
                );
            }
        }
    }
}

fn arg_env_rules(c: &Command, col: &mut Collector) {
    let sup = suppressed(&c.comments);
    match &c.instruction {
        Instruction::Arg { args } => {
            for a in args {
                if is_secret_key(&a.name) {
                    col.add(
                        SECRETS_USED_IN_ARG_OR_ENV,
                        format!("Do not use ARG or ENV instructions for sensitive data (ARG {})", go_quote(&a.name)),
                        Some(c.range),
                        &sup,
                    );
                }
            }
            let non_check = c.comments.iter().any(|x| !x.starts_with("check="));
            if non_check && args.len() == 1 && args[0].description.is_empty() {
                col.add(
                    INVALID_DEFINITION_DESCRIPTION,
                    format!("Comment for build argument should follow the format: `# {} <description>`", args[0].name),
                    Some(c.range),
                    &sup,
                );
            }
        }
        Instruction::Env { vars } => {
            for v in vars {
                if is_secret_key(&v.key) {
                    col.add(
                        SECRETS_USED_IN_ARG_OR_ENV,
                        format!("Do not use ARG or ENV instructions for sensitive data (ENV {})", go_quote(&v.key)),
                        Some(c.range),
                        &sup,
                    );
                }
            }
        }
        _ => {}
    }
}

fn plan_rules(env_known: bool, steps: &[Step], raw: &[Command], opts: &LintOptions, col: &mut Collector) {
    let ignore = opts.ignore_patterns.as_ref().and_then(|p| PatternMatcher::new(p).ok());
    let mut abs_workdir = false;
    for step in steps {
        let c = &step.command;
        // Suppression comments live on the raw command with the same range.
        let sup = raw.iter().find(|r| r.range == c.range).map(|r| suppressed(&r.comments)).unwrap_or_default();
        if env_known {
            let keys: Vec<&str> = step.env.iter().map(|v| &*v.name).collect();
            for u in &step.undefined_vars {
                let mut m = format!("Usage of undefined variable '${u}'");
                if let Some(s) = suggest(u, &keys, true) {
                    m.push_str(&format!(" (did you mean ${s}?)"));
                }
                col.add(UNDEFINED_VAR, m, Some(c.range), &sup);
            }
        }
        match &c.instruction {
            Instruction::Cmd(cl) | Instruction::Entrypoint(cl) if cl.prepend_shell && !step.custom_shell => {
                col.add(
                    JSON_ARGS_RECOMMENDED,
                    format!(
                        "JSON arguments recommended for {} to prevent unintended behavior related to OS signals",
                        c.keyword
                    ),
                    Some(c.range),
                    &sup,
                );
            }
            Instruction::Expose { ports } => {
                for p in ports {
                    if p.contains(':') {
                        col.add(
                            EXPOSE_INVALID_FORMAT,
                            format!(
                                "EXPOSE instruction should not define an IP address or host-port mapping, found '{p}'"
                            ),
                            Some(c.range),
                            &sup,
                        );
                    }
                    if let Some((_, proto)) = p.split_once('/')
                        && go_lower(proto) != proto
                    {
                        col.add(
                            EXPOSE_PROTO_CASING,
                            format!("Defined protocol '{p}' in EXPOSE instruction should be lowercase"),
                            Some(c.range),
                            &sup,
                        );
                    }
                }
            }
            Instruction::Workdir { path } => {
                if path.starts_with('/') {
                    abs_workdir = true;
                } else if !abs_workdir {
                    col.add(
                        WORKDIR_RELATIVE_PATH,
                        format!(
                            "Relative workdir {} can have unexpected results if the base image changes",
                            go_quote(path)
                        ),
                        Some(c.range),
                        &sup,
                    );
                }
            }
            Instruction::Copy(cp) | Instruction::Add(cp) if cp.from.is_none() => {
                if let Some(m) = &ignore {
                    let verb = if cp.is_add { "Add" } else { "Copy" };
                    for s in &cp.sources {
                        if s.contains("://") {
                            continue;
                        }
                        let p = clean_path(&format!("/{s}"));
                        let p = p.trim_start_matches('/');
                        if !p.is_empty() && m.matches(p).unwrap_or(false) {
                            col.add(
                                COPY_IGNORED_FILE,
                                format!("Attempting to {verb} file {} that is excluded by .dockerignore", go_quote(s)),
                                Some(c.range),
                                &sup,
                            );
                        }
                    }
                }
            }
            _ => {}
        }
    }
}

/// Formats a report like `docker build --check`.
pub fn format_lint(report: &LintReport, source: &str, filename: &str) -> String {
    let mut out = String::new();
    let n = report.warnings.len();
    if n == 0 && report.fatal.is_none() {
        out.push_str("Check complete, no warnings found.\n");
    } else if n > 0 {
        let msg =
            if n == 1 { "1 warning has been found!".to_string() } else { format!("{n} warnings have been found!") };
        out.push_str(&format!("Check complete, {msg}\n"));
    }
    for w in &report.warnings {
        out.push_str(&format!("\nWARNING: {} - {}\n{}\n", w.rule, w.url, w.message));
        if let Some(r) = w.range {
            out.push_str(&render_source(source, filename, r));
        }
    }
    if let Some(e) = &report.fatal {
        out.push('\n');
        out.push_str(&crate::render::render_error(e, source, filename));
    } else if let Some(e) = &report.error {
        out.push_str(&format!("ERROR: {e}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules_of(src: &str) -> Vec<(String, String, usize)> {
        let r = lint(src.as_bytes(), &LintOptions::default());
        assert!(r.fatal.is_none(), "{:?}", r.fatal);
        r.warnings.into_iter().map(|w| (w.rule.to_string(), w.message, w.range.map_or(0, |r| r.start))).collect()
    }

    #[test]
    fn stage_casing_and_output_format() {
        let src = "FROM alpine AS Builder\nRUN true\n";
        let r = lint(src.as_bytes(), &LintOptions::default());
        let out = format_lint(&r, src, "Dockerfile");
        assert_eq!(
            out,
            "Check complete, 1 warning has been found!\n\nWARNING: StageNameCasing - https://docs.docker.com/go/dockerfile/rule/stage-name-casing/\nStage name 'Builder' should be lowercase\nDockerfile:1\n--------------------\n   1 | >>> FROM alpine AS Builder\n   2 |     RUN true\n   3 |     \n--------------------\n"
        );
    }

    #[test]
    fn many_rules() {
        let src = "ARG API_KEY\nFROM alpine as Base\nMAINTAINER me\nENV a b\nCMD echo hi\nCMD [\"x\"]\nEXPOSE 80:80 53/UDP\nWORKDIR rel\nrun true\nFROM --platform=linux/amd64 base AS scratch\nFROM alpine:$NOPE\n";
        let got = rules_of(src);
        let names: Vec<&str> = got.iter().map(|g| g.0.as_str()).collect();
        for want in [
            "SecretsUsedInArgOrEnv",
            "FromAsCasing",
            "StageNameCasing",
            "MaintainerDeprecated",
            "LegacyKeyValueFormat",
            "JSONArgsRecommended",
            "MultipleInstructionsDisallowed",
            "ExposeInvalidFormat",
            "ExposeProtoCasing",
            "WorkdirRelativePath",
            "ConsistentInstructionCasing",
            "ReservedStageName",
            "FromPlatformFlagConstDisallowed",
            "UndefinedArgInFrom",
            "InvalidDefaultArgInFrom",
        ] {
            assert!(names.contains(&want), "{want} missing from {got:?}");
        }
        assert!(got.iter().any(|g| g.1 == "'as' and 'FROM' keywords' casing do not match"));
        assert!(got.iter().any(|g| g.1 == "Stage name should not use the same name as reserved stage \"scratch\""));
        assert!(got.iter().any(|g| g.1 == "Command 'run' should match the case of the command majority (uppercase)"));
        assert!(got.iter().any(|g| g.1 == "Do not use ARG or ENV instructions for sensitive data (ARG \"API_KEY\")"));
    }

    #[test]
    fn undefined_var_with_suggestion_and_suppression() {
        let got =
            rules_of("FROM scratch\nENV FOO=1\nRUN echo\nCOPY $FOOO /x\n# check=skip=UndefinedVar\nCOPY $BAR /y\n");
        assert_eq!(
            got,
            vec![("UndefinedVar".into(), "Usage of undefined variable '$FOOO' (did you mean $FOO?)".into(), 4)]
        );
    }

    #[test]
    fn check_directive_skip_and_error() {
        let r = lint(b"# check=skip=StageNameCasing;error=true\nFROM a AS B\nFROM a as c\n", &LintOptions::default());
        assert_eq!(r.warnings.len(), 1);
        assert_eq!(r.error.as_deref(), Some("lint violation found for rules: FromAsCasing"));
        let r = lint(b"# check=skip=all\nFROM a AS B\n", &LintOptions::default());
        assert!(r.warnings.is_empty());
    }

    #[test]
    fn copy_ignored_file_and_empty_continuation() {
        let opts = LintOptions { ignore_patterns: Some(vec!["secret*".into()]), ..Default::default() };
        let r = lint(b"FROM scratch\nCOPY secret.txt ./ok /\nRUN a \\\n\n b\n", &opts);
        assert_eq!(r.warnings.len(), 1, "CopyIgnoredFile is experimental");
        let r = lint(
            b"# check=experimental=CopyIgnoredFile\nFROM scratch\nCOPY secret.txt ./ok /\nRUN a \\\n\n b\n",
            &opts,
        );
        let names: Vec<&str> = r.warnings.iter().map(|w| w.rule).collect();
        assert_eq!(names, vec!["CopyIgnoredFile", "NoEmptyContinuation"]);
        assert_eq!(r.warnings[0].message, "Attempting to Copy file \"secret.txt\" that is excluded by .dockerignore");
    }

    #[test]
    fn references() {
        for ok in [
            "alpine",
            "alpine:3.20",
            "localhost:5000/a/b:c",
            "Registry.io/x",
            "a/b@sha256:0123456789abcdef0123456789abcdef",
            "a__b",
            "a--b",
        ] {
            assert!(valid_reference(ok), "{ok}");
        }
        for bad in ["", "Alpine", "alpine:", "a:b:c", "-a", "a b", "a/", "alpine@sha256:xyz"] {
            assert!(!valid_reference(bad), "{bad}");
        }
    }

    #[test]
    fn platform_rules_and_repeated_instructions() {
        let got = rules_of(
            "FROM --platform=$TARGETPLATFORM a AS x\nFROM --platform=linux/arm64 b AS build-arm64\nFROM --platform=linux/arm64 b AS y\ncmd [\"a\"]\nCMD [\"b\"]\n",
        );
        let msgs: Vec<&str> = got.iter().map(|g| g.1.as_str()).collect();
        assert!(msgs.contains(
            &"Setting platform to predefined $TARGETPLATFORM in FROM is redundant as this is the default behavior"
        ));
        assert!(msgs.contains(&"FROM --platform flag should not use constant value \"linux/arm64\""));
        assert_eq!(got.iter().filter(|g| g.0 == "FromPlatformFlagConstDisallowed").count(), 1);
        assert!(msgs.contains(
            &"Multiple CMD instructions should not be used in the same stage because only the last one will be used"
        ));
    }

    #[test]
    fn clean_file_has_no_warnings() {
        let src = "FROM alpine AS build\nRUN true\nFROM scratch\nCOPY --from=build /x /x\nCMD [\"/x\"]\n";
        let r = lint(src.as_bytes(), &LintOptions::default());
        assert_eq!(format_lint(&r, src, "Dockerfile"), "Check complete, no warnings found.\n");
    }
}
