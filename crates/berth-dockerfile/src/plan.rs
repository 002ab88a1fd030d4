//! Stages, ARG scoping and the resolved build plan (BuildKit
//! `dockerfile2llb`, minus the LLB): global ARGs, predefined platform and
//! proxy ARGs, stage references by name and index, dependency graph,
//! cycles, `--target` pruning, and every instruction with its words
//! expanded where BuildKit expands them plus the environment RUN sees.
//!
//! Planning is pure: it reads no files and pulls no images. Base image
//! configuration that affects expansion (its `Env`) and its ONBUILD
//! triggers are given by the caller in [`PlanOptions`]; a builder can plan
//! once, resolve [`Plan::external_images`], and plan again with them.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use serde::Serialize;

use crate::error::{Error, LineRange, Result};
use crate::instructions::{Command, Instruction, parse_instruction};
use crate::parser::{Dockerfile, parse, parse_trigger};
use crate::shell::{Env, Lexer};
use crate::util::{go_lower, go_quote, with_suggestion};

/// `os/arch[/variant]`: the one platform type of berth (containerd's normalization, so
/// `linux/arm64` has no variant as in BuildKit's `TARGETVARIANT`).
pub use berth_types::Platform;

/// Options that change the plan.
#[derive(Debug, Clone, Default)]
pub struct PlanOptions {
    /// `--build-arg` values.
    pub build_args: BTreeMap<String, String>,
    /// `--target` stage name (case-insensitive); default: the last stage.
    pub target: Option<String>,
    /// Defaults to [`Platform::host`].
    pub target_platform: Option<Platform>,
    /// Defaults to [`Platform::host`].
    pub build_platform: Option<Platform>,
    /// `Env` of external base images, keyed by the expanded image reference
    /// as written in FROM.
    pub base_image_env: HashMap<String, Vec<(String, String)>>,
    /// ONBUILD triggers of external base images, keyed like `base_image_env`.
    pub base_image_onbuild: HashMap<String, Vec<String>>,
    /// Plan every stage, not only those the target needs (used by lint).
    pub all_stages: bool,
}

/// Proxy build args usable without `ARG` (kept out of cache keys).
pub const PROXY_ARGS: &[&str] = &[
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// Default `PATH` for Linux images that have none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What a stage starts from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "lowercase")]
pub enum Base {
    Scratch,
    /// An external image reference (expanded).
    Image(String),
    /// Another stage, by index.
    Stage(usize),
}

/// Where COPY `--from` or a mount's `from=` reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "lowercase")]
pub enum Source {
    Stage(usize),
    Image(String),
}

/// Where a variable in the environment comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum VarKind {
    /// ENV (or the base image's Env).
    Env,
    /// A declared ARG.
    Arg,
    /// A proxy build arg not declared with ARG: goes into the RUN
    /// environment but not into cache keys or history.
    Proxy,
}

/// One variable. Strings are shared (`Arc<str>`) because every step
/// carries a snapshot of the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvVar {
    pub name: Arc<str>,
    pub value: Arc<str>,
    pub kind: VarKind,
}

impl Serialize for EnvVar {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("EnvVar", 3)?;
        st.serialize_field("name", &*self.name)?;
        st.serialize_field("value", &*self.value)?;
        st.serialize_field("kind", &self.kind)?;
        st.end()
    }
}

/// A shared environment snapshot.
pub type EnvList = Arc<Vec<EnvVar>>;

/// A shared, sorted list of names.
pub type NameList = Arc<Vec<Arc<str>>>;

fn ser_names<S: serde::Serializer>(e: &NameList, s: S) -> std::result::Result<S::Ok, S::Error> {
    use serde::ser::SerializeSeq;
    let mut seq = s.serialize_seq(Some(e.len()))?;
    for n in e.iter() {
        seq.serialize_element(&**n)?;
    }
    seq.end()
}

fn ser_env<S: serde::Serializer>(e: &EnvList, s: S) -> std::result::Result<S::Ok, S::Error> {
    e.as_slice().serialize(s)
}

/// One instruction of a stage, resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    /// The instruction with words expanded where BuildKit expands them.
    pub command: Command,
    /// The environment a RUN at this point sees (ENV and ARGs in scope,
    /// plus proxy args and the default PATH for RUN).
    #[serde(serialize_with = "ser_env")]
    pub env: EnvList,
    /// ARG names this step depends on (cache keys): the ARGs referenced by
    /// its expansions, and for RUN every ARG in scope. Sorted.
    #[serde(serialize_with = "ser_names")]
    pub used_args: NameList,
    /// COPY `--from` source.
    pub copy_from: Option<Source>,
    /// `RUN --mount ... from=` sources, per mount (None: build context).
    pub mount_from: Vec<Option<Source>>,
    /// The SHELL in effect (for shell-form RUN/CMD/ENTRYPOINT).
    pub shell: Vec<String>,
    /// A SHELL instruction (in this stage or a parent stage) set the shell.
    pub custom_shell: bool,
    /// Injected from a base's ONBUILD triggers.
    pub from_trigger: bool,
    /// Variables referenced but neither set nor declared (lint
    /// `UndefinedVar`), sorted.
    pub undefined_vars: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedStage {
    /// 0-based position in the Dockerfile.
    pub index: usize,
    /// Lower-case stage name.
    pub name: Option<String>,
    pub base: Base,
    /// Expanded `FROM --platform`.
    pub platform: Option<String>,
    /// Lines of the FROM instruction.
    pub range: LineRange,
    pub description: String,
    pub steps: Vec<Step>,
    /// Stages this one needs (base and `--from` sources), ascending.
    pub deps: Vec<usize>,
    /// Variables used in FROM that are not global ARGs (lint
    /// `UndefinedArgInFrom`).
    pub undefined_from_args: Vec<String>,
    /// Whether the whole environment is known (scratch or a stage chain
    /// ending in scratch or in an image whose Env was given).
    pub env_known: bool,
}

/// A global ARG (declared before the first FROM).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MetaArg {
    pub name: String,
    pub value: Option<String>,
    pub default: Option<String>,
    pub description: String,
    pub range: LineRange,
}

/// The resolved plan for one target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// Only the stages the target needs, ascending by index; each stage's
    /// `deps` come before it, so stages whose deps are done can run in
    /// parallel.
    pub stages: Vec<PlannedStage>,
    /// Index (in the Dockerfile) of the target stage.
    pub target: usize,
    pub meta_args: Vec<MetaArg>,
    pub escape: char,
    pub syntax: Option<String>,
    pub target_platform: Platform,
    pub build_platform: Platform,
}

impl Plan {
    /// The planned stage with Dockerfile index `i`.
    pub fn stage(&self, i: usize) -> Option<&PlannedStage> {
        self.stages.iter().find(|s| s.index == i)
    }

    /// External images the plan references (bases and `--from` sources),
    /// deduplicated, in first-use order.
    pub fn external_images(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let mut push = |s: &str| {
            if !out.iter().any(|x| x == s) {
                out.push(s.to_string());
            }
        };
        for st in &self.stages {
            if let Base::Image(i) = &st.base {
                push(i);
            }
            for step in &st.steps {
                if let Some(Source::Image(i)) = &step.copy_from {
                    push(i);
                }
                for m in step.mount_from.iter().flatten() {
                    if let Source::Image(i) = m {
                        push(i);
                    }
                }
            }
        }
        out
    }
}

/// A stage as written, before planning.
#[derive(Debug, Clone)]
pub struct RawStage {
    pub from: Command,
    pub commands: Vec<Command>,
}

/// Parsed instructions split into global ARGs and stages.
#[derive(Debug, Clone)]
pub struct Parsed {
    pub dockerfile: Dockerfile,
    pub meta_args: Vec<Command>,
    pub stages: Vec<RawStage>,
}

/// Parses a Dockerfile and types every instruction.
pub fn parse_dockerfile(source: &[u8]) -> Result<Parsed> {
    if source.is_empty() {
        return Err(Error::Parse { message: "the Dockerfile cannot be empty".to_string(), range: None });
    }
    let df = parse(source)?;
    let mut meta_args = Vec::new();
    let mut stages: Vec<RawStage> = Vec::new();
    for n in &df.nodes {
        let c = parse_instruction(n)?;
        match (&c.instruction, stages.last_mut()) {
            (Instruction::From(_), _) => stages.push(RawStage { from: c, commands: Vec::new() }),
            (Instruction::Arg { .. }, None) => meta_args.push(c),
            (_, Some(s)) => s.commands.push(c),
            (_, None) => {
                return Err(Error::Stage {
                    message: "no build stage in current context".to_string(),
                    range: Some(c.range),
                });
            }
        }
    }
    Ok(Parsed { dockerfile: df, meta_args, stages })
}

/// Ordered environment with BuildKit's override rules.
/// Copy-on-write: a step's snapshot is a reference-count increment of
/// `vars`; the list is copied only when changed while a snapshot holds it.
#[derive(Debug, Clone, Default)]
struct Vars {
    vars: EnvList,
    index: HashMap<Arc<str>, usize>,
}

impl Vars {
    fn get(&self, k: &str) -> Option<&EnvVar> {
        self.index.get(k).and_then(|i| self.vars.get(*i))
    }
    /// Sets a variable like LLB's `AddEnv`: the last definition wins (ENV
    /// or ARG, in instruction order) and a redefined name moves to the end.
    fn set(&mut self, name: &str, value: &str, kind: VarKind) {
        if let Some(&i) = self.index.get(name) {
            let vars = Arc::make_mut(&mut self.vars);
            if i + 1 == vars.len() {
                if let Some(v) = vars.get_mut(i) {
                    v.value = Arc::from(value);
                    v.kind = kind;
                }
                return;
            }
            let old = vars.remove(i);
            for v in &vars[i..] {
                if let Some(p) = self.index.get_mut(&v.name) {
                    *p -= 1;
                }
            }
            self.index.insert(old.name.clone(), vars.len());
            vars.push(EnvVar { name: old.name, value: Arc::from(value), kind });
        } else {
            let name: Arc<str> = Arc::from(name);
            let vars = Arc::make_mut(&mut self.vars);
            self.index.insert(name.clone(), vars.len());
            vars.push(EnvVar { name, value: Arc::from(value), kind });
        }
    }
}

impl Env for Vars {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.get(name).map(|v| &*v.value)
    }
}

#[derive(Debug, Clone)]
struct StageState {
    vars: Vars,
    /// Declared ARG names in scope.
    args: Vec<String>,
    shell: Vec<String>,
    onbuild: Vec<String>,
    custom_shell: bool,
    /// The last RUN environment, the variable list it was built from, and
    /// the ARGs in scope then.
    run_env: Option<(EnvList, EnvList, NameList)>,
}

fn platform_args(target: &Platform, build: &Platform) -> Vec<(String, String)> {
    vec![
        ("BUILDPLATFORM".into(), build.to_string()),
        ("BUILDOS".into(), build.os.clone()),
        ("BUILDOSVERSION".into(), String::new()),
        ("BUILDARCH".into(), build.architecture.clone()),
        ("BUILDVARIANT".into(), build.variant.clone().unwrap_or_default()),
        ("TARGETPLATFORM".into(), target.to_string()),
        ("TARGETOS".into(), target.os.clone()),
        ("TARGETOSVERSION".into(), String::new()),
        ("TARGETARCH".into(), target.architecture.clone()),
        ("TARGETVARIANT".into(), target.variant.clone().unwrap_or_default()),
    ]
}

fn stage_label(i: usize, name: &str) -> String {
    if name.is_empty() { i.to_string() } else { name.to_string() }
}

/// Resolves a `--from` / `from=` value: a stage name (case-insensitive),
/// a stage index, or an image.
fn resolve_source(v: &str, names: &[String]) -> Source {
    // With duplicate names, `--from` binds the last definition.
    let l = go_lower(v);
    if let Some(i) = names.iter().rposition(|n| !n.is_empty() && *n == l) {
        return Source::Stage(i);
    }
    if let Ok(i) = v.parse::<usize>()
        && i < names.len()
    {
        return Source::Stage(i);
    }
    Source::Image(v.to_string())
}

/// `RUN --mount from=` takes a stage name or an image (no index).
fn resolve_mount_source(v: &str, names: &[String]) -> Source {
    let l = go_lower(v);
    match names.iter().rposition(|n| !n.is_empty() && *n == l) {
        Some(i) => Source::Stage(i),
        None => Source::Image(v.to_string()),
    }
}

fn mount_from_raw(spec: &str) -> Option<String> {
    spec.split(',').find_map(|f| {
        let (k, v) = f.split_once('=')?;
        (go_lower(k.trim_matches('"')) == "from").then(|| v.trim_matches('"').to_string())
    })
}

/// Names the stages reachable from `target`, for `--target` suggestions.
pub fn stage_names(parsed: &Parsed) -> Vec<String> {
    parsed
        .stages
        .iter()
        .map(|s| match &s.from.instruction {
            Instruction::From(f) => f.name.clone(),
            _ => String::new(),
        })
        .collect()
}

/// Parses and plans a Dockerfile.
pub fn plan(source: &[u8], opts: &PlanOptions) -> Result<Plan> {
    let parsed = parse_dockerfile(source)?;
    plan_parsed(&parsed, opts)
}

/// Plans an already parsed Dockerfile.
pub fn plan_parsed(parsed: &Parsed, opts: &PlanOptions) -> Result<Plan> {
    let df = &parsed.dockerfile;
    let lex = Lexer::new(df.escape);
    let target_platform = opts.target_platform.clone().unwrap_or_else(Platform::host);
    let build_platform = opts.build_platform.clone().unwrap_or_else(Platform::host);

    // Global scope: platform args, overridable by build args, then meta ARGs.
    let mut global = Vars::default();
    for (k, v) in platform_args(&target_platform, &build_platform) {
        let v = opts.build_args.get(&k).cloned().unwrap_or(v);
        global.set(&k, &v, VarKind::Arg);
    }
    let mut meta_args = Vec::new();
    for c in &parsed.meta_args {
        let Instruction::Arg { args } = &c.instruction else {
            continue;
        };
        for a in args {
            let value = if let Some(v) = opts.build_args.get(&a.name) {
                Some(v.clone())
            } else if let Some(d) = &a.default {
                Some(lex.process_word(d, &global).map_err(|e| Error::Expand { message: e.message, range: c.range })?)
            } else {
                None
            };
            if let Some(v) = &value {
                global.set(&a.name, v, VarKind::Arg);
            }
            meta_args.push(MetaArg {
                name: a.name.clone(),
                value,
                default: a.default.clone(),
                description: a.description.clone(),
                range: c.range,
            });
        }
    }

    if parsed.stages.is_empty() {
        return Err(Error::Stage { message: "dockerfile contains no stages to build".to_string(), range: None });
    }
    let names = stage_names(parsed);

    // FROM lines: expand with the global scope, resolve bases.
    struct Pre {
        base: Base,
        platform: Option<String>,
        triggers: Vec<Command>,
        deps: BTreeSet<usize>,
        undefined: Vec<String>,
    }
    let mut pre: Vec<Pre> = Vec::new();
    for (i, st) in parsed.stages.iter().enumerate() {
        let Instruction::From(f) = &st.from.instruction else {
            continue;
        };
        let mut from_unmatched = BTreeSet::new();
        let mut exp = |w: &str| {
            lex.process(w, &global)
                .map(|p| {
                    from_unmatched.extend(p.unmatched);
                    p.result
                })
                .map_err(|e| Error::Expand { message: e.message, range: st.from.range })
        };
        let image = exp(&f.image)?;
        if image.is_empty() {
            return Err(Error::Stage {
                message: format!("base name ({}) should not be blank", f.image),
                range: Some(st.from.range),
            });
        }
        let platform = f.platform.as_deref().map(&mut exp).transpose()?;
        let l = go_lower(&image);
        let base = if image == "scratch" {
            Base::Scratch
        } else if let Some(j) = names[..i].iter().rposition(|n| !n.is_empty() && *n == l) {
            Base::Stage(j)
        } else {
            Base::Image(image.clone())
        };
        let mut deps = BTreeSet::new();
        let mut triggers = Vec::new();
        match &base {
            Base::Stage(j) => {
                deps.insert(*j);
                for c in &parsed.stages[*j].commands {
                    if let Instruction::Onbuild { expression } = &c.instruction {
                        triggers.push(trigger_command(expression, st.from.range)?);
                    }
                }
            }
            Base::Image(img) => {
                for t in opts.base_image_onbuild.get(img).into_iter().flatten() {
                    triggers.push(trigger_command(t, st.from.range)?);
                }
            }
            Base::Scratch => {}
        }
        for c in triggers.iter().chain(&st.commands) {
            let froms: Vec<Source> = match &c.instruction {
                Instruction::Copy(cp) => cp.from.iter().map(|f| resolve_source(f, &names)).collect(),
                Instruction::Run(r) => r
                    .mount_specs
                    .iter()
                    .filter_map(|m| mount_from_raw(m))
                    .map(|f| resolve_mount_source(&f, &names))
                    .collect(),
                _ => Vec::new(),
            };
            for fr in froms {
                if let Source::Stage(j) = fr {
                    deps.insert(j);
                }
            }
        }
        pre.push(Pre { base, platform, triggers, deps, undefined: from_unmatched.into_iter().collect() });
    }

    // Target.
    let target = match opts.target.as_deref().filter(|t| !t.is_empty()) {
        None => parsed.stages.len() - 1,
        Some(t) => {
            let l = go_lower(t);
            match names.iter().rposition(|n| !n.is_empty() && *n == l) {
                Some(i) => i,
                None => {
                    let opts: Vec<&str> = names.iter().filter(|n| !n.is_empty()).map(String::as_str).collect();
                    return Err(Error::Stage {
                        message: with_suggestion(
                            format!("target stage {} could not be found", go_quote(t)),
                            t,
                            &opts,
                            true,
                        ),
                        range: None,
                    });
                }
            }
        }
    };

    // Reachability and cycles (iterative DFS with colours).
    let mut colour = vec![0u8; pre.len()];
    let mut stack: Vec<(usize, Vec<usize>)> = vec![(target, pre[target].deps.iter().copied().collect())];
    colour[target] = 1;
    while let Some((node, rest)) = stack.last_mut() {
        let node = *node;
        match rest.pop() {
            Some(d) => match colour.get(d).copied() {
                Some(0) => {
                    colour[d] = 1;
                    let ds = pre[d].deps.iter().copied().collect();
                    stack.push((d, ds));
                }
                Some(1) => {
                    return Err(Error::Stage {
                        message: format!("circular dependency detected on stage: {}", stage_label(d, &names[d])),
                        range: Some(parsed.stages[d].from.range),
                    });
                }
                _ => {}
            },
            None => {
                colour[node] = 2;
                stack.pop();
            }
        }
    }
    // TARGETSTAGE: the stage being built ("default" when unnamed); like the
    // platform args it needs `ARG TARGETSTAGE` inside a stage.
    let stage_name = if names[target].is_empty() { "default".to_string() } else { names[target].clone() };
    let stage_name = opts.build_args.get("TARGETSTAGE").cloned().unwrap_or(stage_name);
    global.set("TARGETSTAGE", &stage_name, VarKind::Arg);
    let reachable: Vec<usize> = (0..pre.len()).filter(|i| colour[*i] == 2 || opts.all_stages).collect();

    // Dispatch reachable stages in order.
    let mut states: Vec<Option<StageState>> = vec![None; pre.len()];
    let mut known = vec![false; pre.len()];
    let mut out = Vec::new();
    for &i in &reachable {
        let st = &parsed.stages[i];
        let p = &pre[i];
        let mut state = match &p.base {
            Base::Stage(j) => states[*j].clone().unwrap_or_else(new_state),
            Base::Image(img) => {
                let mut s = new_state();
                if let Some(env) = opts.base_image_env.get(img) {
                    for (k, v) in env {
                        s.vars.set(k, v, VarKind::Env);
                    }
                    // BuildKit gives a Linux stage the default PATH when its
                    // base has none; it is then visible to expansions.
                    if s.vars.get("PATH").is_none() {
                        s.vars.set("PATH", DEFAULT_PATH, VarKind::Env);
                    }
                }
                s
            }
            Base::Scratch => {
                let mut s = new_state();
                s.vars.set("PATH", DEFAULT_PATH, VarKind::Env);
                s
            }
        };
        state.onbuild.clear();
        known[i] = match &p.base {
            Base::Scratch => true,
            Base::Stage(j) => known[*j],
            Base::Image(img) => opts.base_image_env.contains_key(img),
        };
        let mut steps = Vec::new();
        let cmds = p.triggers.iter().map(|c| (c, true)).chain(st.commands.iter().map(|c| (c, false)));
        for (c, from_trigger) in cmds {
            let step = dispatch(c, from_trigger, i, &names, &mut state, &global, opts, &lex)?;
            steps.push(step);
        }
        let (name, description) = match &st.from.instruction {
            Instruction::From(f) => ((!f.name.is_empty()).then(|| f.name.clone()), f.description.clone()),
            _ => (None, String::new()),
        };
        out.push(PlannedStage {
            index: i,
            name,
            base: p.base.clone(),
            platform: p.platform.clone(),
            range: st.from.range,
            description,
            steps,
            deps: p.deps.iter().copied().collect(),
            undefined_from_args: p.undefined.clone(),
            env_known: known[i],
        });
        states[i] = Some(state);
    }

    Ok(Plan {
        stages: out,
        target,
        meta_args,
        escape: df.escape,
        syntax: df.directive("syntax").map(|s| s.split(' ').next().unwrap_or("").to_string()),
        target_platform,
        build_platform,
    })
}

fn new_state() -> StageState {
    StageState {
        vars: Vars::default(),
        args: Vec::new(),
        shell: vec!["/bin/sh".to_string(), "-c".to_string()],
        onbuild: Vec::new(),
        custom_shell: false,
        run_env: None,
    }
}

fn trigger_command(expr: &str, range: LineRange) -> Result<Command> {
    let node = parse_trigger(expr).map_err(|e| Error::Parse {
        message: format!("failed to parse ONBUILD trigger: {}", e.message()),
        range: Some(range),
    })?;
    let mut c = parse_instruction(&node).map_err(|e| Error::Instruction {
        instruction: "ONBUILD".to_string(),
        message: e.message().to_string(),
        range,
    })?;
    c.range = range;
    Ok(c)
}

#[allow(clippy::too_many_arguments)]
fn dispatch(
    c: &Command,
    from_trigger: bool,
    stage: usize,
    names: &[String],
    state: &mut StageState,
    global: &Vars,
    opts: &PlanOptions,
    lex: &Lexer,
) -> Result<Step> {
    let range = c.range;
    let eerr = |m: String| Error::Expand { message: m, range };
    let mut command = c.clone();
    let mut matched: BTreeSet<String> = BTreeSet::new();
    let mut unmatched: BTreeSet<String> = BTreeSet::new();
    let mut copy_from = None;
    let mut mount_from = Vec::new();

    let check_order = |src: &Source, what: &str| -> Result<()> {
        if let Source::Stage(j) = src
            && *j >= stage
        {
            return Err(Error::Stage {
                message: format!(
                    "cannot copy from stage {}, it needs to be defined before current stage {}",
                    go_quote(what),
                    go_quote(&stage_label(stage, &names[stage]))
                ),
                range: Some(range),
            });
        }
        Ok(())
    };

    match &mut command.instruction {
        Instruction::Arg { args } => {
            for a in args.iter_mut() {
                let has_value = opts.build_args.contains_key(&a.name);
                let mut value = a.default.clone();
                let mut inherited = false;
                if value.is_none()
                    && !has_value
                    && let Some(v) = global.get(&a.name)
                {
                    value = Some(v.value.to_string());
                    inherited = true;
                }
                if has_value {
                    value = opts.build_args.get(&a.name).cloned();
                } else if !inherited && let Some(d) = &value {
                    let p = lex.process(d, &state.vars).map_err(|e| eerr(e.message))?;
                    matched.extend(p.matched);
                    unmatched.extend(p.unmatched);
                    value = Some(p.result);
                }
                a.default = value.clone();
                if let Some(v) = value {
                    state.vars.set(&a.name, &v, VarKind::Arg);
                }
                if !state.args.contains(&a.name) {
                    state.args.push(a.name.clone());
                }
            }
        }
        Instruction::Env { vars } => {
            // The whole instruction is expanded against the environment
            // before it: `ENV a=1 b=$a` sees the old `a`.
            for kv in vars.iter_mut() {
                let k = lex.process(&kv.key, &state.vars).map_err(|e| eerr(e.message))?;
                let v = lex.process(&kv.value, &state.vars).map_err(|e| eerr(e.message))?;
                matched.extend(k.matched);
                matched.extend(v.matched);
                unmatched.extend(k.unmatched);
                unmatched.extend(v.unmatched);
                kv.key = k.result;
                kv.value = v.result;
            }
            for kv in vars.iter() {
                state.vars.set(&kv.key, &kv.value, VarKind::Env);
            }
        }
        other => {
            let vars = &state.vars;
            let mut m2: BTreeSet<String> = BTreeSet::new();
            let mut u2: BTreeSet<String> = BTreeSet::new();
            {
                let mut word = |w: &str| -> std::result::Result<String, String> {
                    let p = lex.process(w, vars).map_err(|e| e.message)?;
                    m2.extend(p.matched.iter().cloned());
                    u2.extend(p.unmatched.iter().cloned());
                    Ok(p.result)
                };
                let mut words_m: BTreeSet<String> = BTreeSet::new();
                let mut words_u: BTreeSet<String> = BTreeSet::new();
                let mut words = |w: &str| -> std::result::Result<Vec<String>, String> {
                    let p = lex.process(w, vars).map_err(|e| e.message)?;
                    words_m.extend(p.matched.iter().cloned());
                    words_u.extend(p.unmatched.iter().cloned());
                    Ok(p.words)
                };
                let mut hlex = Lexer::new('\\');
                hlex.skip_process_quotes = true;
                let mut hm: BTreeSet<String> = BTreeSet::new();
                let mut heredoc = |w: &str| -> std::result::Result<String, String> {
                    let p = hlex.process(w, vars).map_err(|e| e.message)?;
                    hm.extend(p.matched.iter().cloned());
                    Ok(p.result)
                };
                other.expand(&mut word, &mut words, &mut heredoc).map_err(|m| {
                    if m.starts_with("failed to process") || m.contains("mount") {
                        Error::Expand { message: m, range }
                    } else {
                        Error::Instruction { instruction: c.instruction.name().to_string(), message: m, range }
                    }
                })?;
                m2.extend(words_m);
                m2.extend(hm);
                u2.extend(words_u);
            }
            matched.extend(m2);
            unmatched.extend(u2);
            match other {
                Instruction::Copy(cp) => {
                    if let Some(f) = &cp.from {
                        let p = lex.process(f, &state.vars).map_err(|e| eerr(e.message))?;
                        if !p.matched.is_empty() || !p.unmatched.is_empty() {
                            return Err(Error::Stage {
                                message: "variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround".to_string(),
                                range: Some(range),
                            });
                        }
                        let src = resolve_source(f, names);
                        check_order(&src, f)?;
                        copy_from = Some(src);
                    }
                }
                Instruction::Run(r) => {
                    for m in &r.mounts {
                        let src = m.from().map(|f| resolve_mount_source(f, names));
                        if let (Some(s), Some(f)) = (&src, m.from()) {
                            check_order(s, f)?;
                        }
                        mount_from.push(src);
                    }
                }
                Instruction::Shell { shell } => {
                    state.shell = shell.clone();
                    state.custom_shell = true;
                }
                Instruction::Onbuild { expression } => state.onbuild.push(expression.clone()),
                _ => {}
            }
        }
    }

    // Environment as RUN sees it at this step.
    let is_run = matches!(command.instruction, Instruction::Run(_));
    let mut env = state.vars.vars.clone();
    let mut run_args = None;
    if is_run {
        match &state.run_env {
            // Consecutive RUNs with an unchanged environment share one list.
            Some((base, cached, args)) if Arc::ptr_eq(base, &env) => {
                env = cached.clone();
                run_args = Some(args.clone());
            }
            _ => {
                let base = env.clone();
                let mut extra = Vec::new();
                for p in PROXY_ARGS {
                    if state.vars.get(p).is_none()
                        && let Some(v) = opts.build_args.get(*p)
                    {
                        extra.push(EnvVar { name: Arc::from(*p), value: Arc::from(v.as_str()), kind: VarKind::Proxy });
                    }
                }
                if state.vars.get("PATH").is_none() {
                    extra.push(EnvVar { name: Arc::from("PATH"), value: Arc::from(DEFAULT_PATH), kind: VarKind::Env });
                }
                if !extra.is_empty() {
                    Arc::make_mut(&mut env).extend(extra);
                }
                let mut args: Vec<Arc<str>> =
                    base.iter().filter(|v| v.kind == VarKind::Arg).map(|v| v.name.clone()).collect();
                args.sort();
                let args = Arc::new(args);
                state.run_env = Some((base, env.clone(), args.clone()));
                run_args = Some(args);
            }
        }
    }
    let used: NameList = match run_args {
        // Expansions in RUN (mount options) only see variables in scope, so
        // the ARGs in scope cover them.
        Some(a) => a,
        None => {
            let is_arg = |n: &str| state.vars.get(n).is_some_and(|v| v.kind == VarKind::Arg);
            Arc::new(matched.into_iter().filter(|n| is_arg(n)).map(|n| Arc::from(n.as_str())).collect())
        }
    };
    Ok(Step {
        command,
        env,
        used_args: used,
        copy_from,
        mount_from,
        shell: state.shell.clone(),
        custom_shell: state.custom_shell,
        from_trigger,
        undefined_vars: unmatched
            .into_iter()
            .filter(|n| !state.args.contains(n) && state.vars.get(n).is_none())
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> PlanOptions {
        PlanOptions {
            target_platform: Some(Platform::parse("linux/arm64").unwrap()),
            build_platform: Some(Platform::parse("linux/amd64").unwrap()),
            ..Default::default()
        }
    }
    fn names(step: &Step) -> Vec<&str> {
        step.used_args.iter().map(|n| &**n).collect()
    }
    fn run_env(step: &Step, k: &str) -> Option<String> {
        step.env.iter().find(|v| &*v.name == k).map(|v| v.value.to_string())
    }

    #[test]
    fn global_args_only_in_from() {
        let p =
            plan(b"ARG TAG=3.18\nARG IMG=alp\nFROM ${IMG}ine:$TAG\nRUN echo $TAG\nARG TAG\nRUN echo $TAG\n", &opts())
                .unwrap();
        let s = &p.stages[0];
        assert_eq!(s.base, Base::Image("alpine:3.18".into()));
        assert_eq!(run_env(&s.steps[0], "TAG"), None);
        assert_eq!(run_env(&s.steps[2], "TAG").as_deref(), Some("3.18"));
        assert_eq!(names(&s.steps[2]), vec!["TAG"]);
    }

    #[test]
    fn arg_takes_effect_from_its_line_and_build_args_override() {
        let src = b"FROM scratch\nENV A=x$V\nARG V=def\nENV B=y$V\nWORKDIR /w/$V\n";
        let p = plan(src, &opts()).unwrap();
        let s = &p.stages[0];
        let Instruction::Env { vars } = &s.steps[0].command.instruction else { panic!() };
        assert_eq!(vars[0].value, "x");
        let Instruction::Env { vars } = &s.steps[2].command.instruction else { panic!() };
        assert_eq!(vars[0].value, "ydef");
        assert_eq!(names(&s.steps[3]), vec!["V"]);
        let mut o = opts();
        o.build_args.insert("V".into(), "cli".into());
        let p = plan(src, &o).unwrap();
        let Instruction::Workdir { path } = &p.stages[0].steps[3].command.instruction else { panic!() };
        assert_eq!(path, "/w/cli");
    }

    #[test]
    fn platform_args_need_declaration_in_stage() {
        let p = plan(
            b"FROM --platform=$BUILDPLATFORM golang AS b\nRUN echo $TARGETARCH\nARG TARGETARCH\nRUN x\nFROM b-${TARGETOS}\n",
            &PlanOptions { target: Some("B".into()), ..opts() },
        )
        .unwrap();
        let s = &p.stages[0];
        assert_eq!(s.platform.as_deref(), Some("linux/amd64"));
        assert_eq!(run_env(&s.steps[0], "TARGETARCH"), None);
        assert_eq!(run_env(&s.steps[2], "TARGETARCH").as_deref(), Some("arm64"));
        let p = plan(b"FROM b-${TARGETOS}\n", &opts()).unwrap();
        assert_eq!(p.stages[0].base, Base::Image("b-linux".into()));
    }

    #[test]
    fn env_overrides_arg_and_proxy_args() {
        let mut o = opts();
        o.build_args.insert("HTTP_PROXY".into(), "http://p".into());
        o.build_args.insert("X".into(), "fromcli".into());
        let p = plan(b"FROM scratch\nARG X\nENV X=env\nRUN echo\n", &o).unwrap();
        let st = &p.stages[0].steps[2];
        assert_eq!(run_env(st, "X").as_deref(), Some("env"));
        // In instruction order, like LLB's AddEnv: a later ARG wins too.
        let p = plan(b"FROM scratch\nENV X=env\nARG X\nRUN echo\n", &o).unwrap();
        assert_eq!(run_env(&p.stages[0].steps[2], "X").as_deref(), Some("fromcli"));
        let p = plan(b"FROM scratch\nENV a=1\nENV a=2 b=$a\n", &o).unwrap();
        let Instruction::Env { vars } = &p.stages[0].steps[1].command.instruction else { panic!() };
        assert_eq!(vars[1].value, "1");
        let e = plan(b"FROM scratch\nARG S=x\nCOPY --from=$S a b\n", &o).unwrap_err();
        assert!(e.message().starts_with("variable expansion is not supported for --from"));
        let proxy = st.env.iter().find(|v| &*v.name == "HTTP_PROXY").unwrap();
        assert_eq!(proxy.kind, VarKind::Proxy);
        assert!(!names(st).contains(&"HTTP_PROXY"));
        assert_eq!(run_env(st, "PATH").as_deref(), Some(DEFAULT_PATH));
    }

    #[test]
    fn stages_by_name_index_and_target_pruning() {
        let src = b"FROM alpine AS Base\nRUN a\nFROM base AS unused\nRUN b\nFROM scratch AS tools\nFROM base\nCOPY --from=TOOLS /x /x\nCOPY --from=0 /y /y\nCOPY --from=busybox /z /z\nRUN --mount=type=bind,from=tools,target=/t true\n";
        let p = plan(src, &opts()).unwrap();
        let idx: Vec<usize> = p.stages.iter().map(|s| s.index).collect();
        assert_eq!(idx, vec![0, 2, 3]);
        assert_eq!(p.target, 3);
        let last = p.stage(3).unwrap();
        assert_eq!(last.base, Base::Stage(0));
        assert_eq!(last.deps, vec![0, 2]);
        assert_eq!(last.steps[0].copy_from, Some(Source::Stage(2)));
        assert_eq!(last.steps[1].copy_from, Some(Source::Stage(0)));
        assert_eq!(last.steps[2].copy_from, Some(Source::Image("busybox".into())));
        assert_eq!(last.steps[3].mount_from, vec![Some(Source::Stage(2))]);
        assert_eq!(p.external_images(), vec!["alpine", "busybox"]);
        let p = plan(src, &PlanOptions { target: Some("unused".into()), ..opts() }).unwrap();
        assert_eq!(p.stages.iter().map(|s| s.index).collect::<Vec<_>>(), vec![0, 1]);
        let e = plan(src, &PlanOptions { target: Some("tols".into()), ..opts() }).unwrap_err();
        assert_eq!(e.message(), "target stage \"tols\" could not be found (did you mean tools?)");
    }

    #[test]
    fn targetstage() {
        let src = b"FROM a AS one\nARG TARGETSTAGE\nRUN x\nFROM b\nARG TARGETSTAGE\nRUN y\n";
        let p = plan(src, &PlanOptions { target: Some("one".into()), ..opts() }).unwrap();
        assert_eq!(run_env(&p.stages[0].steps[1], "TARGETSTAGE").as_deref(), Some("one"));
        let p = plan(src, &opts()).unwrap();
        assert_eq!(run_env(&p.stage(1).unwrap().steps[1], "TARGETSTAGE").as_deref(), Some("default"));
    }

    #[test]
    fn duplicate_names_bind_like_buildkit() {
        let src = b"FROM a AS x\nFROM b AS x\nFROM x AS y\nCOPY --from=x / /\nFROM c\nCOPY --from=y / /\n";
        let p = plan(src, &opts()).unwrap();
        // FROM binds the latest earlier definition, --from the last one.
        assert_eq!(p.stage(2).unwrap().base, Base::Stage(1));
        assert_eq!(p.stage(2).unwrap().steps[0].copy_from, Some(Source::Stage(1)));
        let p = plan(src, &PlanOptions { target: Some("x".into()), ..opts() }).unwrap();
        assert_eq!(p.target, 1);
    }

    #[test]
    fn alias_of_image_name_is_an_image() {
        let p = plan(b"FROM alpine AS alpine\nFROM alpine\n", &opts()).unwrap();
        assert_eq!(p.stages[0].base, Base::Image("alpine".into()));
        assert_eq!(p.stage(1).unwrap().base, Base::Stage(0));
    }

    #[test]
    fn cycles_and_order() {
        let e = plan(b"FROM busybox AS stage0\nCOPY --from=stage0 f1 /f2\n", &opts()).unwrap_err();
        assert_eq!(e.message(), "circular dependency detected on stage: stage0");
        let e = plan(
            b"FROM busybox AS stage0\nCOPY --from=stage1 f2 /f1\nFROM busybox AS stage1\nCOPY --from=stage0 f1 /f2\n",
            &opts(),
        )
        .unwrap_err();
        assert!(e.message().starts_with("circular dependency detected on stage"));
        let e = plan(b"FROM busybox AS a\nCOPY --from=b x y\nFROM busybox AS b\nFROM a\n", &opts()).unwrap_err();
        assert_eq!(e.message(), "cannot copy from stage \"b\", it needs to be defined before current stage \"a\"");
    }

    #[test]
    fn errors_in_unneeded_stages_are_not_reported() {
        let src = b"FROM a AS broken\nENV X=${Y:?must}\nFROM b\n";
        plan(src, &opts()).unwrap();
        let e = plan(src, &PlanOptions { target: Some("broken".into()), ..opts() }).unwrap_err();
        assert!(e.message().contains("Y: must"), "{}", e.message());
        assert_eq!(e.range(), Some(LineRange::line(2)));
    }

    #[test]
    fn no_stages_and_instructions_before_from() {
        assert_eq!(plan(b"ARG A=1\n", &opts()).unwrap_err().message(), "dockerfile contains no stages to build");
        assert_eq!(plan(b"RUN x\nFROM a\n", &opts()).unwrap_err().message(), "no build stage in current context");
    }

    #[test]
    fn expansion_per_instruction() {
        let src = b"FROM scratch\nARG P=\"80 443/udp\" U=me D=/d\nEXPOSE $P\nUSER $U\nVOLUME $D\nCOPY --chown=$U --chmod=0755 src* $D/\nRUN echo $U\nCMD echo $U\nLABEL \"k\"=\"$U\"\nSTOPSIGNAL SIG$U\n";
        let p = plan(src, &opts()).unwrap();
        let s = &p.stages[0].steps;
        assert_eq!(s[1].command.instruction, Instruction::Expose { ports: vec!["80".into(), "443/udp".into()] });
        assert_eq!(s[2].command.instruction, Instruction::User { user: "me".into() });
        let Instruction::Copy(c) = &s[4].command.instruction else { panic!() };
        assert_eq!(c.dest, "/d/");
        assert_eq!(c.chown.as_deref(), Some("me"));
        assert_eq!(c.chmod, Some(crate::instructions::Chmod::Octal(0o755)));
        let Instruction::Run(r) = &s[5].command.instruction else { panic!() };
        assert_eq!(r.cmd.args, vec!["echo $U"]);
        let Instruction::Label { labels } = &s[7].command.instruction else { panic!() };
        assert_eq!((labels[0].key.as_str(), labels[0].value.as_str()), ("k", "me"));
    }

    #[test]
    fn mounts_expanded_and_typed() {
        let p = plan(b"FROM scratch\nARG T=cache\nRUN --mount=type=$T,target=/c,id=x-$T true\n", &opts()).unwrap();
        let Instruction::Run(r) = &p.stages[0].steps[1].command.instruction else { panic!() };
        assert!(matches!(&r.mounts[0], crate::instructions::Mount::Cache { id, .. } if id == "x-cache"));
    }

    #[test]
    fn onbuild_triggers() {
        let p = plan(b"FROM a AS p\nONBUILD RUN echo hi\nFROM p\nRUN x\n", &opts()).unwrap();
        let s = p.stage(1).unwrap();
        assert!(s.steps[0].from_trigger);
        assert!(matches!(s.steps[0].command.instruction, Instruction::Run(_)));
        let mut o = opts();
        o.base_image_onbuild.insert("img".into(), vec!["COPY --from=p / /".into()]);
        let p = plan(b"FROM a AS p\nFROM img\n", &o).unwrap();
        assert_eq!(p.stage(1).unwrap().deps, vec![0]);
    }

    #[test]
    fn scratch_has_default_path() {
        let p = plan(b"FROM scratch\nENV PATH=$PATH:/x\n", &opts()).unwrap();
        let Instruction::Env { vars } = &p.stages[0].steps[0].command.instruction else { panic!() };
        assert_eq!(vars[0].value, format!("{DEFAULT_PATH}:/x"));
    }

    #[test]
    fn base_image_env_used_for_expansion() {
        let mut o = opts();
        o.base_image_env.insert("img".into(), vec![("PATH".into(), "/bin".into())]);
        let p = plan(b"FROM img\nENV PATH=$PATH:/x\n", &o).unwrap();
        let Instruction::Env { vars } = &p.stages[0].steps[0].command.instruction else { panic!() };
        assert_eq!(vars[0].value, "/bin:/x");
    }
}
