//! The solver: runs the stages of a plan, in parallel where the stage graph allows, step by
//! step, consulting the content-addressed cache before doing any work.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use berth_dockerfile::instructions::{CopyAdd, Run};
use berth_dockerfile::{Base, Command, Instruction, LineRange, Plan, PlannedStage, Source, Step, VarKind};
use berth_output::progress::{BuildProgress, LogStream};
use berth_runtime::{LayerStack, MountSpec, MountedRootfs, NetworkMode, RootfsMode, RootfsSource};
use berth_store::Store;
use berth_types::{ContainerConfig, Descriptor, Digest, HealthConfig, History, ImageConfig, media};

use crate::cache::{Cache, KeyBuilder, LayerRef, Record, State, now};
use crate::context::Context;
use crate::error::{BuildError, Result};
use crate::fsops::{self, Attrs, Chmod, SymbolicMode};
use crate::layer;
use crate::{BuildOptions, Network, Provider, SecretSource};

/// Shared, read-only view of a build for the stage workers.
pub(crate) struct Solver<'a> {
    pub store: Store,
    pub cache: Cache,
    pub opts: &'a BuildOptions,
    pub plan: &'a Plan,
    pub provider: &'a dyn Provider,
    pub progress: BuildProgress,
    /// External images resolved before planning, by reference as written.
    pub images: HashMap<String, State>,
    /// Named build contexts that are directories.
    pub named_dirs: BTreeMap<String, Arc<Context>>,
    pub vertex: std::sync::atomic::AtomicUsize,
    /// Cache keys of every step of this build (for `--cache-to mode=max`).
    pub used_keys: Mutex<Vec<String>>,
}

/// Set by [`cancel`]: steps not yet started fail with [`BuildError::Canceled`].
static CANCELED: AtomicBool = AtomicBool::new(false);

/// Steps being computed in this process, by cache key. The builds of a multi-platform build
/// run side by side; a step whose key another build is computing (a `$BUILDPLATFORM` stage
/// shared by every target) waits for it and then takes its result, so it runs once, as in
/// BuildKit's single solve. Keys computed in this process are taken even under --no-cache
/// (BuildKit's --no-cache also shares identical vertices within one solve).
static IN_FLIGHT: Mutex<Option<HashMap<String, Arc<Mutex<()>>>>> = Mutex::new(None);
static FRESH: Mutex<Option<std::collections::HashSet<String>>> = Mutex::new(None);

fn key_lock(key: &str) -> Arc<Mutex<()>> {
    let mut g = IN_FLIGHT.lock().unwrap_or_else(|p| p.into_inner());
    g.get_or_insert_with(HashMap::new).entry(key.to_string()).or_default().clone()
}

fn fresh(key: &str) -> bool {
    FRESH.lock().unwrap_or_else(|p| p.into_inner()).as_ref().is_some_and(|s| s.contains(key))
}

fn mark_fresh(key: &str) {
    FRESH.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert_with(Default::default).insert(key.to_string());
}
/// Pids of the RUN helpers running now (see [`cancel`]).
static RUNNING: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// Cancels the build running in this process (Ctrl-C): no further step starts, and every
/// running RUN container is killed. The helper forwards SIGINT/SIGTERM to the container's
/// init, which a shell as PID 1 ignores, so its processes are killed with SIGKILL (as
/// BuildKit kills the container on cancellation); the helper then cleans up normally.
/// Async-signal-unsafe: call it from a thread, not a signal handler.
pub fn cancel() {
    CANCELED.store(true, Ordering::SeqCst);
    let pids = RUNNING.lock().map(|r| r.clone()).unwrap_or_default();
    for pid in pids {
        kill_descendants(pid);
    }
}

fn canceled() -> bool {
    CANCELED.load(Ordering::SeqCst)
}

/// SIGKILLs every descendant of `pid` (not `pid` itself), found through /proc.
fn kill_descendants(pid: u32) {
    let mut parent_of: Vec<(u32, u32)> = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            let Some(p) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
            let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else { continue };
            // The ppid is the second field after the parenthesized command name.
            let Some(rest) = stat.rfind(')').and_then(|i| stat.get(i + 1..)) else { continue };
            if let Some(ppid) = rest.split_whitespace().nth(1).and_then(|x| x.parse::<u32>().ok()) {
                parent_of.push((p, ppid));
            }
        }
    }
    let mut victims = vec![pid];
    let mut i = 0;
    while let Some(&v) = victims.get(i) {
        for (p, pp) in &parent_of {
            if *pp == v && !victims.contains(p) {
                victims.push(*p);
            }
        }
        i += 1;
    }
    for v in victims.into_iter().skip(1) {
        // SAFETY: kill(2) has no memory-safety preconditions.
        unsafe { libc::kill(v as libc::pid_t, libc::SIGKILL) };
    }
}

/// Results of finished stages, and a condition to wait on.
#[derive(Default)]
struct Board {
    done: Mutex<HashMap<usize, std::result::Result<State, String>>>,
    cv: Condvar,
}

impl Solver<'_> {
    /// Runs every stage the plan needs and returns the target stage's final state.
    pub fn run(&self) -> Result<State> {
        let board = Board::default();
        let parallel = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2).max(1);
        let slots = Arc::new((Mutex::new(parallel), Condvar::new()));
        let stages: Vec<&PlannedStage> = self.plan.stages.iter().collect();
        let first_error: Mutex<Option<BuildError>> = Mutex::new(None);
        std::thread::scope(|s| {
            for st in &stages {
                let board = &board;
                let slots = slots.clone();
                let first_error = &first_error;
                s.spawn(move || {
                    // Wait for dependencies.
                    let mut failed_dep = None;
                    for d in &st.deps {
                        let mut g = board.done.lock().unwrap_or_else(|e| e.into_inner());
                        while !g.contains_key(d) {
                            g = board.cv.wait(g).unwrap_or_else(|e| e.into_inner());
                        }
                        if let Some(Err(e)) = g.get(d) {
                            failed_dep = Some(e.clone());
                        }
                    }
                    let result = match failed_dep {
                        Some(e) => Err(e),
                        None => {
                            // Bound the number of stages working at once.
                            {
                                let (m, cv) = &*slots;
                                let mut n = m.lock().unwrap_or_else(|e| e.into_inner());
                                while *n == 0 {
                                    n = cv.wait(n).unwrap_or_else(|e| e.into_inner());
                                }
                                *n -= 1;
                            }
                            let r = self.run_stage(st, board);
                            {
                                let (m, cv) = &*slots;
                                *m.lock().unwrap_or_else(|e| e.into_inner()) += 1;
                                cv.notify_all();
                            }
                            match r {
                                Ok(s) => Ok(s),
                                Err(e) => {
                                    let msg = e.to_string();
                                    let mut fe = first_error.lock().unwrap_or_else(|e| e.into_inner());
                                    if fe.is_none() {
                                        *fe = Some(e);
                                    }
                                    Err(msg)
                                }
                            }
                        }
                    };
                    board.done.lock().unwrap_or_else(|e| e.into_inner()).insert(st.index, result);
                    board.cv.notify_all();
                });
            }
        });
        if let Some(e) = first_error.into_inner().unwrap_or_else(|e| e.into_inner()) {
            return Err(e);
        }
        let mut done = board.done.into_inner().unwrap_or_else(|e| e.into_inner());
        match done.remove(&self.plan.target) {
            Some(Ok(s)) => Ok(s),
            Some(Err(e)) => Err(BuildError::Other(e)),
            None => Err(BuildError::Other("target stage was not built".into())),
        }
    }

    fn stage_state(&self, board: &Board, idx: usize) -> Result<State> {
        let g = board.done.lock().unwrap_or_else(|e| e.into_inner());
        match g.get(&idx) {
            Some(Ok(s)) => Ok(s.clone()),
            Some(Err(e)) => Err(BuildError::Other(e.clone())),
            None => Err(BuildError::Other(format!("stage {idx} has not been built"))),
        }
    }

    fn next_vertex(&self) -> String {
        let n = self.vertex.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if self.opts.show_platform { format!("{}-v{n}", self.opts.platform) } else { format!("v{n}") }
    }

    fn stage_label(&self, st: &PlannedStage) -> Option<String> {
        if self.plan.stages.len() <= 1 && st.name.is_none() {
            return None;
        }
        Some(st.name.clone().unwrap_or_else(|| format!("stage-{}", st.index)))
    }

    fn run_stage(&self, st: &PlannedStage, board: &Board) -> Result<State> {
        let visible = 1 + st.steps.iter().filter(|s| is_visible(&s.command.instruction)).count();
        let mut label = self.stage_label(st);
        if self.opts.show_platform {
            let p = crate::stage_platform(st, self.opts)?;
            label = Some(match label {
                Some(l) => format!("{p} {l}"),
                None => p.to_string(),
            });
        }
        let name = |i: usize, text: &str| match &label {
            Some(l) => format!("[{l} {i}/{visible}] {text}"),
            None => format!("[{i}/{visible}] {text}"),
        };
        // FROM
        let mut state = match &st.base {
            Base::Scratch => self.scratch_state(),
            Base::Image(r) => {
                let key = crate::image_key(r, &crate::stage_platform(st, self.opts)?, self.opts);
                let s = self
                    .images
                    .get(&key)
                    .cloned()
                    .ok_or_else(|| BuildError::Other(format!("image {r} was not resolved")))?;
                let v = self.next_vertex();
                self.progress.start(&v, &name(1, &format!("FROM {}", display_ref(r, &s))));
                self.progress.done(&v);
                s
            }
            Base::Stage(i) => self.stage_state(board, *i)?,
        };
        // The base's ONBUILD triggers run as this stage's first steps (the plan inserted them)
        // and are not inherited further (BuildKit clears them).
        if let Some(c) = state.config.config.as_mut()
            && c.on_build.is_some()
        {
            c.on_build = None;
        }
        // A stage's own CMD status: ENTRYPOINT resets an inherited CMD only.
        let mut cmd_set = false;
        let no_cache = self.opts.no_cache || self.stage_filtered_out(st);
        let mut n = 1;
        for step in &st.steps {
            let visible_step = is_visible(&step.command.instruction);
            if visible_step {
                n += 1;
            }
            let vname = name(n, &step_text(&step.command));
            state = self.step(st, step, state, &vname, visible_step, no_cache, &mut cmd_set, board)?;
        }
        Ok(state)
    }

    fn stage_filtered_out(&self, st: &PlannedStage) -> bool {
        let Some(n) = &st.name else { return false };
        self.opts.no_cache_filter.iter().any(|f| f.eq_ignore_ascii_case(n))
    }

    fn scratch_state(&self) -> State {
        let p = &self.opts.platform;
        let config = ImageConfig {
            architecture: p.architecture.clone(),
            os: p.os.clone(),
            variant: p.variant.clone(),
            // BuildKit's emptyImage: WorkingDir "/" and the default PATH.
            config: Some(ContainerConfig {
                env: Some(vec![format!("PATH={}", berth_dockerfile::plan::DEFAULT_PATH)]),
                working_dir: Some("/".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        State { key: KeyBuilder::new("scratch").part(&p.to_string()).finish(), layers: vec![], config }
    }

    #[allow(clippy::too_many_arguments)]
    fn step(
        &self,
        _st: &PlannedStage,
        step: &Step,
        parent: State,
        vname: &str,
        visible: bool,
        no_cache: bool,
        cmd_set: &mut bool,
        board: &Board,
    ) -> Result<State> {
        if canceled() {
            return Err(BuildError::Canceled);
        }
        let cmd = &step.command;
        let range = cmd.range;
        // Keys: the instruction as resolved, the args it uses, plus content for COPY/ADD.
        let instr_json = serde_json::to_string(&cmd.instruction).unwrap_or_default();
        let mut kb = KeyBuilder::new(cmd.instruction.name()).part(&parent.key).part(&instr_json);
        for a in step.used_args.iter() {
            if let Some(v) = step.env.iter().find(|e| *e.name == **a && e.kind != VarKind::Proxy) {
                kb = kb.part(&format!("{}={}", v.name, v.value));
            }
        }
        if let Some(e) = self.opts.source_date_epoch {
            kb = kb.part(&format!("epoch={e}"));
        }
        match &cmd.instruction {
            Instruction::Run(run) => {
                for v in step.env.iter().filter(|e| e.kind != VarKind::Proxy) {
                    kb = kb.part(&format!("env:{}={}", v.name, v.value));
                }
                kb = kb.part(&format!("net:{:?}", self.network_for(run)));
                kb = kb.part(&step.shell.join("\u{1}"));
                for (i, m) in run.mounts.iter().enumerate() {
                    kb = kb.part(&self.mount_key(m, step.mount_from.get(i).cloned().flatten(), board)?);
                }
            }
            Instruction::Copy(c) | Instruction::Add(c) => {
                kb = kb.part(&self.copy_sources_key(c, step, &parent, board, &range)?);
                kb = kb.part(&parent.config.config.as_ref().and_then(|c| c.working_dir.clone()).unwrap_or_default());
            }
            Instruction::Workdir { .. } => {
                kb = kb.part(&parent.config.config.as_ref().and_then(|c| c.user.clone()).unwrap_or_default());
            }
            _ => {}
        }
        let key = kb.finish();
        if let Ok(mut k) = self.used_keys.lock() {
            k.push(key.clone());
        }
        let lock = key_lock(&key);
        let _computing = lock.lock().unwrap_or_else(|p| p.into_inner());
        if (!no_cache || fresh(&key))
            && let Some(rec) = self.cache.get(&self.store, &key)
        {
            if visible {
                let v = self.next_vertex();
                self.progress.cached(&v, vname);
            }
            track_cmd(&cmd.instruction, cmd_set);
            return Ok(rec.state);
        }
        let created = self.created_time();
        let (state, size) = match &cmd.instruction {
            Instruction::Run(run) => {
                let v = self.next_vertex();
                self.progress.start(&v, vname);
                let r = self.run_step(step, run, &parent, &v, &created, board);
                match r {
                    Ok(x) => {
                        self.progress.done(&v);
                        x
                    }
                    Err(e) => {
                        self.progress.error(&v, &e.to_string());
                        return Err(attach_range(e, range, &v));
                    }
                }
            }
            Instruction::Copy(c) | Instruction::Add(c) => {
                let v = self.next_vertex();
                self.progress.start(&v, vname);
                match self.copy_step(step, c, &parent, &created, board) {
                    Ok(x) => {
                        self.progress.done(&v);
                        x
                    }
                    Err(e) => {
                        self.progress.error(&v, &e.to_string());
                        return Err(attach_range(e, range, &v));
                    }
                }
            }
            Instruction::Workdir { path } => {
                let v = self.next_vertex();
                self.progress.start(&v, vname);
                match self.workdir_step(path, &parent, &created) {
                    Ok(x) => {
                        self.progress.done(&v);
                        x
                    }
                    Err(e) => {
                        self.progress.error(&v, &e.to_string());
                        return Err(attach_range(e, range, &v));
                    }
                }
            }
            other => {
                let mut config = parent.config.clone();
                apply_metadata(&mut config, other, &step.shell, cmd_set)?;
                // BuildKit's dispatchOnbuild records no history entry.
                if !matches!(other, Instruction::Onbuild { .. }) {
                    let hist = history_text(cmd, step);
                    config.history.push(History {
                        created: Some(created.clone()),
                        created_by: Some(hist),
                        comment: Some("buildkit.dockerfile.v0".into()),
                        empty_layer: true,
                        ..Default::default()
                    });
                }
                config.created = Some(created.clone());
                (State { key: String::new(), layers: parent.layers.clone(), config }, 0)
            }
        };
        track_cmd(&cmd.instruction, cmd_set);
        let state = State { key: key.clone(), ..state };
        self.cache.put(
            &key,
            &Record { state: state.clone(), description: step_text(cmd), created: now(), last_used: now(), size },
        )?;
        mark_fresh(&key);
        Ok(state)
    }

    fn created_time(&self) -> String {
        match self.opts.source_date_epoch {
            Some(e) => chrono::DateTime::from_timestamp(e, 0)
                .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                .unwrap_or_else(|| "1970-01-01T00:00:00Z".into()),
            None => berth_store::now_rfc3339(),
        }
    }

    fn network_for(&self, run: &Run) -> Network {
        use berth_dockerfile::instructions::Network as N;
        match run.network {
            Some(N::None) => Network::None,
            Some(N::Host) => Network::Host,
            Some(N::Default) | None => self.opts.network,
        }
    }

    /// The cache-key contribution of a RUN mount: secrets by id only (never their content),
    /// cache mounts by id, bind mounts by the content they expose.
    fn mount_key(&self, m: &berth_dockerfile::Mount, from: Option<Source>, board: &Board) -> Result<String> {
        use berth_dockerfile::Mount as M;
        Ok(match m {
            M::Secret { id, target, env, .. } => format!("secret:{id}:{target:?}:{env:?}"),
            M::Ssh { id, target, .. } => format!("ssh:{id}:{target}"),
            M::Tmpfs { target, size } => format!("tmpfs:{target}:{size:?}"),
            M::Cache { target, id, sharing, readonly, mode, uid, gid, .. } => {
                format!("cache:{target}:{id}:{sharing:?}:{readonly}:{mode:?}:{uid:?}:{gid:?}")
            }
            M::Bind { target, source, readwrite, .. } => {
                let src = source.clone().unwrap_or_default();
                let content = match from {
                    None => {
                        self.opts.context.hash_tree(&berth_dockerfile::clean_path(src.trim_start_matches('/')), None)?
                    }
                    Some(s) => self.source_state(&s, board)?.key,
                };
                format!("bind:{target}:{src}:{readwrite}:{content}")
            }
        })
    }

    fn source_state(&self, s: &Source, board: &Board) -> Result<State> {
        match s {
            Source::Stage(i) => self.stage_state(board, *i),
            Source::Image(r) => {
                if let Some(ctx) = self.named_dirs.get(r) {
                    // A named build context that is a directory has no image state; callers
                    // handle it as a context.
                    return Ok(State {
                        key: format!("context:{}", ctx.hash_tree("", None)?),
                        layers: vec![],
                        config: ImageConfig::default(),
                    });
                }
                self.images.get(r).cloned().ok_or_else(|| BuildError::Other(format!("image {r} was not resolved")))
            }
        }
    }

    // ---------------------------------------------------------------------------------------
    // RUN

    fn run_step(
        &self,
        step: &Step,
        run: &Run,
        parent: &State,
        vertex: &str,
        created: &str,
        board: &Board,
    ) -> Result<(State, u64)> {
        let cfg_in = parent.config.config.clone().unwrap_or_default();
        let args = run_args(step, run)?;
        let mut env: Vec<String> = step.env.iter().map(|v| format!("{}={}", v.name, v.value)).collect();
        if !env.iter().any(|e| e.starts_with("PATH=")) {
            env.push(format!("PATH={}", berth_dockerfile::plan::DEFAULT_PATH));
        }
        let snap = self.store.temp_snapshot()?;
        let upper = snap.fs();
        let work = upper.parent().map(|p| p.join("work")).unwrap_or_else(|| upper.join("../work"));
        let mut guards = MountGuards::default();
        let mut mounts = Vec::new();
        for (i, m) in run.mounts.iter().enumerate() {
            let from = step.mount_from.get(i).cloned().flatten();
            self.prepare_mount(m, from, &mut mounts, &mut env, &mut guards, board)?;
        }
        if let Some((name, data)) = shebang_heredoc(run) {
            // The script, executable, on a read-only mount at /dev/pipes (never in the layer).
            let dir = tempfile::Builder::new()
                .prefix(&format!("{}heredoc-", berth_store::owner_prefix()))
                .tempdir_in(self.store.root().join("tmp"))
                .map_err(|e| BuildError::io(self.store.root(), e))?;
            fsops::write_file(&dir.path().join(&name), data.as_bytes(), 0o755, 0, 0, None)?;
            mounts.push(MountSpec::Bind {
                source: dir.path().to_path_buf(),
                target: "/dev/pipes".into(),
                readonly: true,
            });
            guards.dirs.push(dir);
        }
        let lower: Vec<PathBuf> = parent.layers.iter().map(|l| self.store.snapshot_fs(&l.diff_id)).collect();
        let container = berth_runtime::ContainerConfig {
            rootfs: RootfsSource::Layers(LayerStack {
                lower,
                upper: Some(upper.clone()),
                work: Some(work.clone()),
                mode: RootfsMode::Auto,
                volatile: true,
            }),
            args: args.clone(),
            env,
            working_dir: cfg_in.working_dir.clone().filter(|w| !w.is_empty()),
            user: cfg_in.user.clone().filter(|u| !u.is_empty()),
            hostname: Some("buildkitsandbox".into()),
            mounts,
            network: match self.network_for(run) {
                Network::None => NetworkMode::None,
                Network::Host => NetworkMode::Host,
                // A private network with outbound access through the berth netns, as
                // BuildKit's default (never the host's loopback services).
                Network::Default => NetworkMode::Bridge(berth_runtime::net::NetworkSpec::default_bridge()),
            },
            extra_hosts: self.opts.add_hosts.clone(),
            ..Default::default()
        };
        let id = format!("berth-build-{}", berth_runtime::util::random_id().get(..16).unwrap_or("x"));
        let progress = self.progress.clone();
        let v = vertex.to_string();
        let mut helper = None;
        let outcome = berth_runtime::run_in_helper(
            &self.opts.runtime,
            &id,
            &container,
            &mut |pid| {
                helper = Some(pid);
                if let Ok(mut r) = RUNNING.lock() {
                    r.push(pid);
                }
                // A cancel that came before the registration.
                if canceled() {
                    kill_descendants(pid);
                }
            },
            &mut |stream, data| {
                let s = match stream {
                    berth_runtime::Stream::Stdout => LogStream::Stdout,
                    berth_runtime::Stream::Stderr => LogStream::Stderr,
                };
                progress.log(&v, s, data);
            },
        );
        if let (Some(pid), Ok(mut r)) = (helper, RUNNING.lock()) {
            r.retain(|p| *p != pid);
        }
        drop(guards);
        if canceled() {
            return Err(BuildError::Canceled);
        }
        let outcome = outcome?;
        if outcome.exit_code != 0 {
            let shown = shell_display(&args);
            return Err(BuildError::Other(format!(
                "process \"{shown}\" did not complete successfully: exit code: {}",
                outcome.exit_code
            )));
        }
        let _ = std::fs::remove_dir_all(&work);
        let history = History {
            created: Some(created.to_string()),
            created_by: Some(history_text(&step.command, step)),
            comment: Some("buildkit.dockerfile.v0".into()),
            ..Default::default()
        };
        self.commit(parent, snap, history, created)
    }

    /// Turns an upper directory into a layer (or an empty-layer history entry when nothing
    /// changed) on top of `parent`.
    fn commit(
        &self,
        parent: &State,
        snap: berth_store::TempSnapshot,
        mut history: History,
        created: &str,
    ) -> Result<(State, u64)> {
        let mut config = parent.config.clone();
        config.created = Some(created.to_string());
        let mut layers = parent.layers.clone();
        let (added, size) = layer::commit_upper(&self.store, snap, self.opts.source_date_epoch)?;
        match added {
            Some((blob, diff_id)) => {
                config.rootfs.diff_ids.push(diff_id.clone());
                layers.push(LayerRef { blob, diff_id });
            }
            None => history.empty_layer = true,
        }
        config.history.push(history);
        Ok((State { key: String::new(), layers, config }, size))
    }

    fn prepare_mount(
        &self,
        m: &berth_dockerfile::Mount,
        from: Option<Source>,
        mounts: &mut Vec<MountSpec>,
        env: &mut Vec<String>,
        guards: &mut MountGuards,
        board: &Board,
    ) -> Result<()> {
        use berth_dockerfile::Mount as M;
        match m {
            M::Secret { id, target, env: env_name, required, mode, uid, gid } => {
                let Some(src) = self.opts.secrets.get(id) else {
                    if *required {
                        return Err(BuildError::Other(format!(
                            "secret {id} not found: pass it with --secret id={id},src=FILE"
                        )));
                    }
                    return Ok(());
                };
                let data = match src {
                    SecretSource::File(p) => std::fs::read(p).map_err(|e| BuildError::io(p, e))?,
                    SecretSource::Env(v) => std::env::var(v).unwrap_or_default().into_bytes(),
                };
                if let Some(name) = env_name {
                    env.push(format!("{name}={}", String::from_utf8_lossy(&data)));
                    if target.is_none() {
                        return Ok(());
                    }
                }
                // Secrets live on a tmpfs on the host and are bind-mounted read-only, so they
                // never touch the layer.
                let dir = tempfile::Builder::new()
                    .prefix("berth-secret-")
                    .tempdir_in(secret_tmpfs())
                    .map_err(|e| BuildError::io(secret_tmpfs(), e))?;
                let file = dir.path().join("secret");
                fsops::write_file(&file, &data, *mode, uid.unwrap_or(0), gid.unwrap_or(0), None)?;
                let target = target.clone().unwrap_or_else(|| format!("/run/secrets/{id}"));
                mounts.push(MountSpec::Bind { source: file, target, readonly: true });
                guards.dirs.push(dir);
            }
            M::Ssh { id, target, required, mode, uid, gid } => {
                let Some(upstream) = self.opts.ssh.get(id) else {
                    if *required {
                        // BuildKit's words.
                        return Err(BuildError::Other(format!("no SSH key {id:?} forwarded from the client")));
                    }
                    return Ok(());
                };
                let proxy =
                    crate::ssh::Proxy::start(upstream, secret_tmpfs(), *mode, uid.unwrap_or(0), gid.unwrap_or(0))?;
                mounts.push(MountSpec::Bind {
                    source: proxy.path().to_path_buf(),
                    target: target.clone(),
                    readonly: false,
                });
                env.push(format!("SSH_AUTH_SOCK={target}"));
                guards.ssh.push(proxy);
            }
            M::Tmpfs { target, size } => {
                mounts.push(MountSpec::Tmpfs { target: target.clone(), size: *size, mode: None })
            }
            M::Cache { target, id, readonly, mode, uid, gid, sharing, .. } => {
                let dir = self.cache.mount_dir(id);
                if !dir.exists() {
                    std::fs::create_dir_all(&dir).map_err(|e| BuildError::io(&dir, e))?;
                    use std::os::unix::fs::PermissionsExt;
                    let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode.unwrap_or(0o755)));
                    let _ = std::os::unix::fs::chown(&dir, Some(uid.unwrap_or(0)), Some(gid.unwrap_or(0)));
                }
                if matches!(
                    sharing,
                    berth_dockerfile::instructions::Sharing::Locked | berth_dockerfile::instructions::Sharing::Private
                ) {
                    let lock = std::fs::OpenOptions::new()
                        .create(true)
                        .truncate(false)
                        .write(true)
                        .open(dir.with_extension("lock"))
                        .map_err(|e| BuildError::io(&dir, e))?;
                    lock.lock().map_err(|e| BuildError::io(&dir, e))?;
                    guards.locks.push(lock);
                }
                mounts.push(MountSpec::Bind { source: dir, target: target.clone(), readonly: *readonly });
            }
            M::Bind { target, source, readwrite, .. } => {
                let src = berth_dockerfile::clean_path(source.as_deref().unwrap_or("/").trim_start_matches('/'));
                // A named build context that is a directory is bound like the main context.
                let named_dir = match &from {
                    Some(Source::Image(name)) => self.named_dirs.get(name).cloned(),
                    _ => None,
                };
                let stage_or_image = if named_dir.is_some() { None } else { from };
                let host = match stage_or_image {
                    None => {
                        let ctx = named_dir.as_ref().unwrap_or(&self.opts.context);
                        let tmp = tempfile::Builder::new()
                            .prefix(&format!("{}bind-", berth_store::owner_prefix()))
                            .tempdir_in(self.store.root().join("tmp"))
                            .map_err(|e| BuildError::io(self.store.root(), e))?;
                        let dst = tmp.path().join("b");
                        materialize_context(ctx, &src, &dst, *readwrite)?;
                        guards.dirs.push(tmp);
                        dst
                    }
                    Some(s) => {
                        let st = self.source_state(&s, board)?;
                        let mounted = self.mount_ro(&st)?;
                        let p = fsops::secure_join(mounted.path(), &src);
                        let p = if *readwrite {
                            let tmp = tempfile::Builder::new()
                                .prefix(&format!("{}bind-", berth_store::owner_prefix()))
                                .tempdir_in(self.store.root().join("tmp"))
                                .map_err(|e| BuildError::io(self.store.root(), e))?;
                            let dst = tmp.path().join("b");
                            fsops::copy_entry(&p, &dst, &Attrs::default(), &|_| true)?;
                            guards.dirs.push(tmp);
                            dst
                        } else {
                            p
                        };
                        guards.mounts.push(mounted);
                        p
                    }
                };
                mounts.push(MountSpec::Bind { source: host, target: target.clone(), readonly: !readwrite });
            }
        }
        Ok(())
    }

    /// Mounts a state's layers read-only at a temp directory.
    fn mount_ro(&self, st: &State) -> Result<MountedRootfs> {
        let target = self.store.root().join("tmp").join(format!(
            "{}ro-{}",
            berth_store::owner_prefix(),
            berth_runtime::util::random_id().get(..12).unwrap_or("x")
        ));
        std::fs::create_dir_all(&target).map_err(|e| BuildError::io(&target, e))?;
        if st.layers.is_empty() {
            return Ok(MountedRootfs::unmanaged(target));
        }
        let lower: Vec<PathBuf> = st.layers.iter().map(|l| self.store.snapshot_fs(&l.diff_id)).collect();
        Ok(berth_runtime::mount_rootfs(
            &RootfsSource::Layers(LayerStack {
                lower,
                upper: None,
                work: None,
                mode: RootfsMode::Auto,
                volatile: false,
            }),
            &target,
        )?)
    }

    /// Mounts `parent` with `upper` writable (for COPY/WORKDIR), or nothing to mount when
    /// `link` (the layer is independent of what lies below).
    fn mount_rw(&self, parent: &State, upper: &Path, link: bool) -> Result<MountedRootfs> {
        if link || parent.layers.is_empty() {
            return Ok(MountedRootfs::unmanaged(upper.to_path_buf()));
        }
        let target = self.store.root().join("tmp").join(format!(
            "{}rw-{}",
            berth_store::owner_prefix(),
            berth_runtime::util::random_id().get(..12).unwrap_or("x")
        ));
        std::fs::create_dir_all(&target).map_err(|e| BuildError::io(&target, e))?;
        let lower: Vec<PathBuf> = parent.layers.iter().map(|l| self.store.snapshot_fs(&l.diff_id)).collect();
        let work = upper.parent().map(|p| p.join("work")).unwrap_or_else(|| upper.join("../work"));
        Ok(berth_runtime::mount_rootfs(
            &RootfsSource::Layers(LayerStack {
                lower,
                upper: Some(upper.to_path_buf()),
                work: Some(work),
                mode: RootfsMode::Overlay,
                volatile: true,
            }),
            &target,
        )?)
    }

    // ---------------------------------------------------------------------------------------
    // COPY / ADD

    fn copy_sources_key(
        &self,
        c: &CopyAdd,
        step: &Step,
        parent: &State,
        board: &Board,
        range: &LineRange,
    ) -> Result<String> {
        let mut kb = KeyBuilder::new("sources");
        let exclude = excludes(c)?;
        match &step.copy_from {
            Some(s) => {
                if let Source::Image(name) = s
                    && let Some(ctx) = self.named_dirs.get(name)
                {
                    for src in &c.sources {
                        for m in ctx.glob(src) {
                            kb = kb.part(&m).part(&hash_source(ctx, &m, exclude.as_ref())?);
                        }
                    }
                } else {
                    kb = kb.part(&self.source_state(s, board)?.key);
                    for src in &c.sources {
                        kb = kb.part(src);
                    }
                }
            }
            None => {
                for src in &c.sources {
                    if is_url(src) {
                        kb = kb.part(&format!("url:{src}:{:?}", c.checksum));
                        continue;
                    }
                    let matches = self.opts.context.glob(src);
                    if matches.is_empty() && !crate::context::has_wildcards(src) {
                        return Err(BuildError::step(not_found_message(src), range));
                    }
                    for m in matches {
                        kb = kb.part(&m).part(&hash_source(&self.opts.context, &m, exclude.as_ref())?);
                    }
                }
            }
        }
        for h in &c.contents {
            kb = kb.part(&format!("heredoc:{}:{}", h.path, h.data));
        }
        let _ = parent;
        Ok(kb.finish())
    }

    /// Runs `f` on `parent` mounted with a new writable upper (or on the bare upper for
    /// `--link`), unmounts, and returns the upper as a snapshot ready to commit.
    fn in_new_layer(
        &self,
        parent: &State,
        link: bool,
        f: impl FnOnce(&Path) -> Result<()>,
    ) -> Result<berth_store::TempSnapshot> {
        let snap = self.store.temp_snapshot()?;
        let upper = snap.fs();
        let root = self.mount_rw(parent, &upper, link)?;
        let res = f(root.path());
        root.unmount()?;
        res?;
        if let Some(work) = upper.parent().map(|p| p.join("work")) {
            let _ = std::fs::remove_dir_all(work);
        }
        Ok(snap)
    }

    fn copy_step(
        &self,
        step: &Step,
        c: &CopyAdd,
        parent: &State,
        created: &str,
        board: &Board,
    ) -> Result<(State, u64)> {
        let workdir = working_dir(parent);
        let dest_abs = if c.dest.starts_with('/') {
            c.dest.clone()
        } else {
            format!("{}/{}", workdir.trim_end_matches('/'), c.dest)
        };
        let dest_is_dir_syntax = c.dest.ends_with('/') || c.dest == "." || c.dest.ends_with("/.");
        let snap = self
            .in_new_layer(parent, c.link, |root| self.copy_into(step, c, root, &dest_abs, dest_is_dir_syntax, board))?;
        let history = History {
            created: Some(created.to_string()),
            created_by: Some(history_text(&step.command, step)),
            comment: Some("buildkit.dockerfile.v0".into()),
            ..Default::default()
        };
        self.commit(parent, snap, history, created)
    }

    fn copy_into(
        &self,
        step: &Step,
        c: &CopyAdd,
        root: &Path,
        dest_abs: &str,
        dest_dir_syntax: bool,
        board: &Board,
    ) -> Result<()> {
        // Ownership: names are resolved in the destination image (BuildKit semantics: a user
        // name alone means its primary group, a numeric uid alone the same number as gid).
        // Without --chown, context files become root-owned while files from another stage or
        // image keep their owner.
        let chown = match &c.chown {
            Some(spec) => Some(resolve_chown(root, spec)?),
            None => None,
        };
        let (uid, gid) = chown.unwrap_or((0, 0));
        let from_context = match &step.copy_from {
            None => true,
            Some(Source::Image(name)) => self.named_dirs.contains_key(name),
            Some(Source::Stage(_)) => false,
        };
        let chmod = match &c.chmod {
            None => None,
            Some(berth_dockerfile::instructions::Chmod::Octal(m)) => Some(Chmod::Octal(*m)),
            Some(berth_dockerfile::instructions::Chmod::Symbolic(s)) => Some(Chmod::Symbolic(
                SymbolicMode::parse(s).ok_or_else(|| BuildError::Other(format!("invalid chmod {s:?}")))?,
            )),
        };
        let attrs = Attrs { owner: if from_context { Some((uid, gid)) } else { chown }, chmod };
        let exclude = excludes(c)?;
        // Gather sources: (host path, name relative to the source root, is context).
        enum Src {
            // `keep`: the part of `rel` that --parents reproduces below the destination (after
            // a `/./` pivot in the source, else all of it).
            Path { host: PathBuf, rel: String, keep: String, ctx: Option<Arc<Context>> },
            Inline { name: String, data: Vec<u8> },
            Url { url: String },
        }
        let mut srcs: Vec<Src> = Vec::new();
        let mut _mounted: Option<MountedRootfs> = None;
        let mut any_wildcard = false;
        match &step.copy_from {
            Some(Source::Image(name)) if self.named_dirs.contains_key(name) => {
                let ctx = self.named_dirs.get(name).cloned().ok_or_else(|| BuildError::Other(name.clone()))?;
                let root_dir = ctx.root().map(Path::to_path_buf).unwrap_or_default();
                for s in &c.sources {
                    any_wildcard |= crate::context::has_wildcards(s);
                    let m = ctx.glob(s);
                    if m.is_empty() && !crate::context::has_wildcards(s) {
                        return Err(BuildError::Other(not_found_message(s)));
                    }
                    for rel in m {
                        // A symlink named (or matched) as a source is followed inside the
                        // context, and only through what `.dockerignore` lets in.
                        let resolved = ctx.resolve(&rel).ok_or_else(|| BuildError::Other(not_found_message(&rel)))?;
                        let host = root_dir.join(&resolved);
                        let keep = parents_keep(c.parents, s, &rel);
                        srcs.push(Src::Path { host, rel, keep, ctx: Some(ctx.clone()) });
                    }
                }
            }
            Some(s) => {
                let st = self.source_state(s, board)?;
                let m = self.mount_ro(&st)?;
                for src in &c.sources {
                    any_wildcard |= crate::context::has_wildcards(src);
                    let cleaned = berth_dockerfile::clean_path(src.trim_start_matches('/'));
                    let matches = glob_fs(m.path(), &cleaned);
                    if matches.is_empty() && !crate::context::has_wildcards(src) {
                        return Err(BuildError::Other(not_found_message(src)));
                    }
                    for rel in matches {
                        let keep = parents_keep(c.parents, src, &rel);
                        srcs.push(Src::Path { host: fsops::secure_join(m.path(), &rel), rel, keep, ctx: None });
                    }
                }
                _mounted = Some(m);
            }
            None => {
                let ctx = self.opts.context.clone();
                let root_dir = ctx.root().map(Path::to_path_buf).unwrap_or_default();
                for s in &c.sources {
                    if c.is_add && is_url(s) {
                        srcs.push(Src::Url { url: s.clone() });
                        continue;
                    }
                    if c.checksum.is_some() {
                        return Err(BuildError::Other(format!(
                            "checksum can't be specified for a local source {s:?}: checksum requires HTTP(S) or Git sources"
                        )));
                    }
                    any_wildcard |= crate::context::has_wildcards(s);
                    let m = ctx.glob(s);
                    if m.is_empty() && !crate::context::has_wildcards(s) {
                        return Err(BuildError::Other(not_found_message(s)));
                    }
                    for rel in m {
                        // A symlink named (or matched) as a source is followed inside the
                        // context, and only through what `.dockerignore` lets in.
                        let resolved = ctx.resolve(&rel).ok_or_else(|| BuildError::Other(not_found_message(&rel)))?;
                        let host = root_dir.join(&resolved);
                        let keep = parents_keep(c.parents, s, &rel);
                        srcs.push(Src::Path { host, rel, keep, ctx: Some(ctx.clone()) });
                    }
                }
            }
        }
        for h in &c.contents {
            srcs.push(Src::Inline { name: h.path.clone(), data: h.data.clone().into_bytes() });
        }
        let multiple = srcs.len() > 1 || any_wildcard;
        let dest_host = fsops::secure_join(root, dest_abs);
        let dest_is_dir = dest_dir_syntax || multiple || dest_host.is_dir();
        if dest_is_dir {
            fsops::mkdir_all(&dest_host, uid, gid)?;
        } else if let Some(p) = dest_host.parent() {
            fsops::mkdir_all(p, uid, gid)?;
        }
        for s in srcs {
            match s {
                Src::Inline { name, data } => {
                    let target = if dest_is_dir { dest_host.join(&name) } else { dest_host.clone() };
                    let mode = match attrs.chmod {
                        Some(Chmod::Octal(m)) => m,
                        Some(Chmod::Symbolic(s)) => s.apply(0o644, false),
                        None => 0o644,
                    };
                    fsops::write_file(&target, &data, mode, uid, gid, None)?;
                }
                Src::Url { url } => {
                    let name = url_file_name(&url)?;
                    let target = if dest_is_dir { dest_host.join(&name) } else { dest_host.clone() };
                    let mut tmp = tempfile::Builder::new()
                        .prefix(&berth_store::owner_prefix())
                        .tempfile_in(self.store.root().join("tmp"))
                        .map_err(|e| BuildError::io(self.store.root(), e))?;
                    let fetched =
                        self.provider.fetch(&url, tmp.as_file_mut(), download_limit()).map_err(BuildError::Other)?;
                    if let Some(sum) = &c.checksum {
                        verify_checksum(&url, tmp.path(), sum)?;
                    }
                    let mode = match attrs.chmod {
                        Some(Chmod::Octal(m)) => m,
                        _ => 0o600,
                    };
                    fsops::install_file(tmp.path(), &target, mode, uid, gid, fetched.last_modified)?;
                }
                Src::Path { host, rel, keep, ctx } => {
                    let md = std::fs::symlink_metadata(&host).map_err(|e| BuildError::io(&host, e))?;
                    // What goes into dest: a directory's *contents*; a file itself. Context
                    // filters apply to the path the source resolved to (a followed symlink).
                    let base_rel = match ctx.as_ref().and_then(|c| c.root()) {
                        Some(r) => host.strip_prefix(r).map(|p| p.to_string_lossy().to_string()).unwrap_or(rel.clone()),
                        None => rel.clone(),
                    };
                    let filter = |child: &str| -> bool {
                        let full = if base_rel.is_empty() { child.to_string() } else { format!("{base_rel}/{child}") };
                        if let Some(ctx) = &ctx
                            && !ctx.contains(&full)
                        {
                            return false;
                        }
                        // --exclude patterns are relative to each source (fsutil matches
                        // them against the path below the copied source).
                        if let Some(ex) = &exclude
                            && ex.matches(child).unwrap_or(false)
                        {
                            return false;
                        }
                        true
                    };
                    if c.is_add && md.is_file() && c.unpack != Some(false) && is_archive(&host) {
                        fsops::mkdir_all(&dest_host, uid, gid)?;
                        // The archive's own `.` entry does not change the destination (docker's
                        // Untar skips it).
                        let dest_md =
                            std::fs::symlink_metadata(&dest_host).map_err(|e| BuildError::io(&dest_host, e))?;
                        match chown {
                            None => {
                                extract_archive(&host, &dest_host)?;
                                fsops::restore_dir_meta(&dest_host, &dest_md)?;
                            }
                            Some(owner) => {
                                // --chown applies to the extracted entries (not to the existing
                                // destination): extract aside, then merge with the owner.
                                let tmp = tempfile::Builder::new()
                                    .prefix(&format!("{}add-", berth_store::owner_prefix()))
                                    .tempdir_in(self.store.root().join("tmp"))
                                    .map_err(|e| BuildError::io(self.store.root(), e))?;
                                extract_archive(&host, tmp.path())?;
                                let a = Attrs { owner: Some(owner), chmod: None };
                                let rd = std::fs::read_dir(tmp.path()).map_err(|e| BuildError::io(tmp.path(), e))?;
                                for e in rd {
                                    let e = e.map_err(|e| BuildError::io(tmp.path(), e))?;
                                    fsops::copy_entry(&e.path(), &dest_host.join(e.file_name()), &a, &|_| true)?;
                                }
                            }
                        }
                        continue;
                    }
                    let dst = if md.is_dir() {
                        if c.parents && !keep.is_empty() {
                            let d = dest_host.join(&keep);
                            fsops::mkdir_all(&d, uid, gid)?;
                            d
                        } else {
                            dest_host.clone()
                        }
                    } else if dest_is_dir {
                        if c.parents && keep.contains('/') {
                            let d = dest_host.join(&keep);
                            if let Some(p) = d.parent() {
                                fsops::mkdir_all(p, uid, gid)?;
                            }
                            d
                        } else {
                            // The source's own name, also when it was a followed symlink.
                            let name = Path::new(&rel).file_name().or(host.file_name()).unwrap_or_default();
                            dest_host.join(name)
                        }
                    } else {
                        dest_host.clone()
                    };
                    if md.is_dir() {
                        fsops::mkdir_all(&dst, uid, gid)?;
                        fsops::copy_dir_contents(&host, &dst, &attrs, &filter)?;
                    } else {
                        fsops::copy_entry(&host, &dst, &attrs, &filter)?;
                    }
                }
            }
        }
        Ok(())
    }

    // ---------------------------------------------------------------------------------------
    // WORKDIR

    fn workdir_step(&self, path: &str, parent: &State, created: &str) -> Result<(State, u64)> {
        let cur = working_dir(parent);
        let new = if path.starts_with('/') {
            berth_dockerfile::clean_path(path)
        } else {
            berth_dockerfile::clean_path(&format!("{}/{}", cur.trim_end_matches('/'), path))
        };
        let new = if new.starts_with('/') { new } else { format!("/{new}") };
        let user = parent.config.config.as_ref().and_then(|c| c.user.clone()).filter(|u| !u.is_empty());
        let snap = self.in_new_layer(parent, false, |root| {
            let target = fsops::secure_join(root, &new);
            if !target.is_dir() {
                // BuildKit creates WORKDIR owned by the current USER.
                let (uid, gid) = match &user {
                    Some(u) => berth_runtime::resolve_user(root, u, &[]).map(|e| (e.uid, e.gid)).unwrap_or((0, 0)),
                    None => (0, 0),
                };
                fsops::mkdir_all(&target, uid, gid)?;
            }
            Ok(())
        })?;
        let mut p2 = parent.clone();
        p2.config.config_mut().working_dir = Some(new.clone());
        let history = History {
            created: Some(created.to_string()),
            created_by: Some(format!("WORKDIR {new}")),
            comment: Some("buildkit.dockerfile.v0".into()),
            ..Default::default()
        };
        self.commit(&p2, snap, history, created)
    }
}

/// The image's working directory, `/` when unset.
fn working_dir(st: &State) -> String {
    st.config
        .config
        .as_ref()
        .and_then(|c| c.working_dir.clone())
        .filter(|w| !w.is_empty())
        .unwrap_or_else(|| "/".into())
}

/// Cleanup of per-RUN resources (secret files, temp dirs, read-only mounts, cache locks).
#[derive(Default)]
struct MountGuards {
    dirs: Vec<tempfile::TempDir>,
    mounts: Vec<MountedRootfs>,
    locks: Vec<std::fs::File>,
    ssh: Vec<crate::ssh::Proxy>,
}

fn secret_tmpfs() -> &'static Path {
    if Path::new("/dev/shm").is_dir() { Path::new("/dev/shm") } else { Path::new("/tmp") }
}

/// Copies (or hard-links, for read-only mounts) the filtered context under `src` to `dst`.
fn materialize_context(ctx: &Context, src: &str, dst: &Path, writable: bool) -> Result<()> {
    let Some(root) = ctx.root() else {
        std::fs::create_dir_all(dst).map_err(|e| BuildError::io(dst, e))?;
        return Ok(());
    };
    let src_host = root.join(src);
    if !ctx.contains(src) {
        return Err(BuildError::Other(not_found_message(src)));
    }
    let base_len = if src.is_empty() || src == "." { 0 } else { src.len() + 1 };
    for (p, kind) in ctx.under(if src == "." { "" } else { src }) {
        let rel = p.get(base_len..).unwrap_or("");
        let out = if rel.is_empty() { dst.to_path_buf() } else { dst.join(rel) };
        let from = root.join(p);
        match kind {
            berth_dockerfile::EntryKind::Dir => std::fs::create_dir_all(&out).map_err(|e| BuildError::io(&out, e))?,
            berth_dockerfile::EntryKind::File if !writable => {
                if let Some(parent) = out.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| BuildError::io(parent, e))?;
                }
                if std::fs::hard_link(&from, &out).is_err() {
                    std::fs::copy(&from, &out).map_err(|e| BuildError::io(&out, e))?;
                }
            }
            _ => {
                if let Some(parent) = out.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| BuildError::io(parent, e))?;
                }
                fsops::copy_entry(&from, &out, &Attrs::default(), &|_| false)?;
            }
        }
    }
    if !dst.exists() {
        std::fs::create_dir_all(dst).map_err(|e| BuildError::io(dst, e))?;
    }
    let _ = src_host;
    Ok(())
}

fn is_visible(i: &Instruction) -> bool {
    matches!(i, Instruction::Run(_) | Instruction::Copy(_) | Instruction::Add(_) | Instruction::Workdir { .. })
}

fn track_cmd(i: &Instruction, cmd_set: &mut bool) {
    if matches!(i, Instruction::Cmd(_)) {
        *cmd_set = true;
    }
}

fn attach_range(e: BuildError, range: LineRange, vertex: &str) -> BuildError {
    match e {
        BuildError::Step { message, range: None, .. } | BuildError::Other(message) => {
            BuildError::Step { message, range: Some(range), vertex: Some(vertex.to_string()) }
        }
        BuildError::Step { message, range, .. } => {
            BuildError::Step { message, range, vertex: Some(vertex.to_string()) }
        }
        other => BuildError::Step { message: other.to_string(), range: Some(range), vertex: Some(vertex.to_string()) },
    }
}

/// For `COPY --parents`, the part of a matched path kept below the destination: everything
/// after the source's `/./` pivot (BuildKit's dispatchCopy), or the whole path.
fn parents_keep(parents: bool, source: &str, rel: &str) -> String {
    if !parents {
        return rel.to_string();
    }
    let Some((pivot, _)) = source.split_once("/./") else { return rel.to_string() };
    let pivot = berth_dockerfile::clean_path(pivot.trim_start_matches('/'));
    if pivot.is_empty() || pivot == "." {
        return rel.to_string();
    }
    rel.strip_prefix(&format!("{pivot}/")).unwrap_or(rel).to_string()
}

/// The cache-key part of a context source: the content of what the copy reads, i.e. of the
/// path the source resolves to through symlinks (a link whose target changed must miss), with
/// the resolved path itself.
fn hash_source(ctx: &Context, rel: &str, exclude: Option<&berth_dockerfile::PatternMatcher>) -> Result<String> {
    let resolved = ctx.resolve(rel).ok_or_else(|| BuildError::Other(not_found_message(rel)))?;
    Ok(format!("{resolved}:{}", ctx.hash_tree(&resolved, exclude)?))
}

/// The file name of an `ADD <URL>` source, as BuildKit's Dockerfile frontend picks it: the last
/// segment of the URL's (percent-decoded) path, `__unnamed__` when the path has none. `.` and
/// `..` are refused: they would name the destination directory or its parent.
fn url_file_name(url: &str) -> Result<String> {
    url::Url::parse(url).map_err(|e| BuildError::Other(format!("invalid URL {url:?}: {e}")))?;
    // The path as written (the url crate would fold `/x/..` away, and Go's parser, which
    // BuildKit uses, does not), decoded as Go decodes it.
    let after = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let raw = after.find('/').and_then(|i| after.get(i..)).unwrap_or("");
    let raw = raw.split(['?', '#']).next().unwrap_or("");
    let decoded: String = percent_decode(raw);
    let base = decoded.trim_end_matches('/').rsplit('/').next().unwrap_or("");
    match base {
        "" => Ok("__unnamed__".to_string()),
        "." | ".." => Err(BuildError::Other(format!(
            "ADD {url}: the URL's last path segment {base:?} cannot name a file; give the file name in the destination"
        ))),
        b if b.contains('\0') => Err(BuildError::Other(format!("ADD {url}: invalid file name {b:?}"))),
        b => Ok(b.to_string()),
    }
}

/// Percent-decodes a URL path (invalid sequences are kept as they are; invalid UTF-8 is
/// replaced).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (b.get(i), b.get(i + 1).copied().and_then(hex), b.get(i + 2).copied().and_then(hex)) {
            (Some(b'%'), Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (Some(c), _, _) => {
                out.push(*c);
                i += 1;
            }
            (None, _, _) => break,
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The largest `ADD <URL>` download accepted: `BERTH_ADD_MAX_BYTES`, else 32 GiB.
fn download_limit() -> u64 {
    std::env::var("BERTH_ADD_MAX_BYTES").ok().and_then(|v| v.trim().parse().ok()).unwrap_or(32 << 30)
}

/// Checks `ADD --checksum=sha256:<hex>` against the downloaded file, reading it in pieces.
fn verify_checksum(url: &str, file: &Path, want: &str) -> Result<()> {
    use sha2::Digest as _;
    use std::io::Read as _;
    let Some(hex_want) = want.strip_prefix("sha256:") else {
        return Err(BuildError::Other(format!(
            "invalid checksum {want:?} for {url}: only sha256:<hex> digests are supported"
        )));
    };
    let mut f = std::fs::File::open(file).map_err(|e| BuildError::io(file, e))?;
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = f.read(&mut buf).map_err(|e| BuildError::io(file, e))?;
        if n == 0 {
            break;
        }
        h.update(buf.get(..n).unwrap_or_default());
    }
    let actual = hex::encode(h.finalize());
    if !actual.eq_ignore_ascii_case(hex_want) {
        return Err(BuildError::Other(format!("digest mismatch for {url}: expected {want}, got sha256:{actual}")));
    }
    Ok(())
}

#[cfg(test)]
mod input_tests {
    use super::*;

    #[test]
    fn url_file_names_follow_buildkit_and_refuse_dot_segments() {
        let ok = |u: &str| url_file_name(u).unwrap();
        assert_eq!(ok("http://h/a/b.tar.gz"), "b.tar.gz");
        assert_eq!(ok("http://h/a/b.txt?x=1#frag"), "b.txt");
        assert_eq!(ok("http://h/dir/"), "dir");
        assert_eq!(ok("http://h/"), "__unnamed__");
        assert_eq!(ok("http://h"), "__unnamed__");
        assert_eq!(ok("http://h/a%20b"), "a b");
        assert_eq!(ok("http://h/x/a%2Fb"), "b");
        for bad in ["http://h/x/..", "http://h/x/../", "http://h/x/.", "http://h/%2e%2e", "http://h/x/%2E%2E?q"] {
            assert!(url_file_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn checksum_is_verified_from_the_file() {
        let t = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(t.path(), b"hello\n").unwrap();
        let good = "sha256:5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03";
        verify_checksum("u", t.path(), good).unwrap();
        assert!(verify_checksum("u", t.path(), &good.replace("58", "59")).is_err());
        assert!(verify_checksum("u", t.path(), "sha512:00").is_err());
    }
}

fn not_found_message(src: &str) -> String {
    let p = berth_dockerfile::clean_path(src.trim_start_matches('/'));
    format!("failed to calculate checksum of ref: \"/{p}\": not found")
}

fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

fn excludes(c: &CopyAdd) -> Result<Option<berth_dockerfile::PatternMatcher>> {
    if c.excludes.is_empty() {
        return Ok(None);
    }
    berth_dockerfile::PatternMatcher::new(&c.excludes)
        .map(Some)
        .map_err(|e| BuildError::Other(format!("invalid --exclude pattern: {e}")))
}

/// Matches a cleaned, relative pattern against an on-disk tree (sources from another stage).
fn glob_fs(root: &Path, pattern: &str) -> Vec<String> {
    if pattern == "." || pattern.is_empty() {
        return vec![String::new()];
    }
    if !crate::context::has_wildcards(pattern) {
        let p = fsops::secure_join(root, pattern);
        return if std::fs::symlink_metadata(&p).is_ok() { vec![pattern.to_string()] } else { vec![] };
    }
    let parts: Vec<&str> = pattern.split('/').collect();
    let mut cur: Vec<String> = vec![String::new()];
    for part in parts {
        let mut next = Vec::new();
        for base in &cur {
            let dir = if base.is_empty() { root.to_path_buf() } else { fsops::secure_join(root, base) };
            let Ok(rd) = std::fs::read_dir(&dir) else { continue };
            let mut names: Vec<String> = rd.flatten().map(|e| e.file_name().to_string_lossy().to_string()).collect();
            names.sort();
            for n in names {
                if crate::context::go_match(part, &n) {
                    next.push(if base.is_empty() { n } else { format!("{base}/{n}") });
                }
            }
        }
        cur = next;
    }
    cur
}

fn resolve_chown(root: &Path, spec: &str) -> Result<(u32, u32)> {
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    // A numeric uid alone is also the gid; a user name alone means the user's primary group
    // (BuildKit's readUser).
    let (uid, primary_gid) = match u.parse::<u32>() {
        Ok(n) => (n, n),
        Err(_) => berth_runtime::resolve_user(root, u, &[]).map(|e| (e.uid, e.gid)).map_err(|_| {
            BuildError::Other(format!(
                "unable to convert uid/gid chown string to host mapping: can't find uid for user {u}: no such user: {u}"
            ))
        })?,
    };
    let gid = match g {
        None => primary_gid,
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => lookup_group(root, g).ok_or_else(|| {
                BuildError::Other(format!("unable to convert uid/gid chown string to host mapping: can't find gid for group {g}: no such group: {g}"))
            })?,
        },
    };
    Ok((uid, gid))
}

fn lookup_group(root: &Path, name: &str) -> Option<u32> {
    let text = std::fs::read_to_string(fsops::secure_join(root, "/etc/group")).ok()?;
    text.lines().find_map(|l| {
        let mut f = l.split(':');
        let n = f.next()?;
        f.next();
        let gid = f.next()?.parse().ok()?;
        (n == name).then_some(gid)
    })
}

/// Whether ADD extracts `p`: as BuildKit's isArchivePath, the (decompressed) content must start
/// with a valid tar header; a file that merely looks compressed is copied as it is.
fn is_archive(p: &Path) -> bool {
    use std::io::Read;
    let Ok(f) = std::fs::File::open(p) else { return false };
    let Ok((_, dec)) = berth_archive::decode_any(f) else { return false };
    let mut block = Vec::with_capacity(512);
    let _ = dec.take(512).read_to_end(&mut block);
    tar_header_valid(&block)
}

/// A 512-byte tar header block that is not the end marker and whose checksum matches.
fn tar_header_valid(block: &[u8]) -> bool {
    if block.len() < 512 || block.iter().all(|b| *b == 0) {
        return false;
    }
    let Some(field) = block.get(148..156) else { return false };
    let text: String = field.iter().map(|b| *b as char).filter(|c| c.is_ascii_digit()).collect();
    let Ok(want) = u64::from_str_radix(&text, 8) else { return false };
    let sum: u64 = block
        .iter()
        .take(512)
        .enumerate()
        .map(|(i, b)| if (148..156).contains(&i) { u64::from(b' ') } else { u64::from(*b) })
        .sum();
    sum == want
}

/// ADD's archive extraction: the archive's entries land under `dest` (never outside it), with
/// whiteout names taken literally (flatten mode applies them to `dest`). Every compression is
/// decoded in-process; a corrupt stream fails the step.
fn extract_archive(src: &Path, dest: &Path) -> Result<()> {
    let f = std::fs::File::open(src).map_err(|e| BuildError::io(src, e))?;
    let (_, dec) = berth_archive::decode_any(f).map_err(|e| BuildError::io(src, e))?;
    berth_archive::apply_tar(dest, std::io::BufReader::new(dec), &berth_archive::ApplyOptions::default())?;
    Ok(())
}

/// The argv a RUN executes (shell form through the stage's SHELL; heredocs inlined as the
/// shell sees them).
fn run_args(step: &Step, run: &Run) -> Result<Vec<String>> {
    let cl = &run.cmd;
    if !cl.prepend_shell {
        return Ok(cl.args.clone());
    }
    let mut script = cl.args.join(" ");
    if !cl.files.is_empty() {
        let only_heredoc = cl.files.len() == 1 && script.trim_start().starts_with("<<");
        if only_heredoc {
            let mut argv = step.shell.clone();
            match shebang_heredoc(run) {
                // BuildKit writes a heredoc with a shebang to /dev/pipes/NAME and runs that
                // path through the shell, so its interpreter runs it (dispatchRun).
                Some((name, _)) => argv.push(format!("/dev/pipes/{name}")),
                None => {
                    let f = &cl.files[0];
                    argv.push(if f.chomp {
                        berth_dockerfile::parser::chomp_heredoc_content(&f.data)
                    } else {
                        f.data.clone()
                    });
                }
            }
            return Ok(argv);
        }
        for f in &cl.files {
            script.push('\n');
            script.push_str(&f.data);
            if !f.data.ends_with('\n') {
                script.push('\n');
            }
            script.push_str(&f.name);
        }
    }
    let mut argv = step.shell.clone();
    argv.push(script);
    Ok(argv)
}

/// A RUN whose only command is one heredoc starting with `#!`: its file name and content.
fn shebang_heredoc(run: &Run) -> Option<(String, String)> {
    let cl = &run.cmd;
    if !cl.prepend_shell || cl.files.len() != 1 || !cl.args.join(" ").trim_start().starts_with("<<") {
        return None;
    }
    let f = cl.files.first()?;
    if !f.data.starts_with("#!") {
        return None;
    }
    let data = if f.chomp { berth_dockerfile::parser::chomp_heredoc_content(&f.data) } else { f.data.clone() };
    Some((f.name.clone(), data))
}

fn shell_display(args: &[String]) -> String {
    args.join(" ")
}

fn display_ref(r: &str, s: &State) -> String {
    let _ = s;
    berth_types::Reference::parse_normalized(r)
        .map(|x| x.with_default_tag().to_string())
        .unwrap_or_else(|_| r.to_string())
}

/// The text of a step as BuildKit shows it in progress output.
pub(crate) fn step_text(cmd: &Command) -> String {
    let mut words: Vec<&str> = cmd.original.split_whitespace().collect();
    if words.first().is_some_and(|w| w.eq_ignore_ascii_case(&cmd.keyword)) {
        words.remove(0);
    }
    format!("{} {}", cmd.instruction.name(), words.join(" "))
}

/// Docker/BuildKit `created_by` text of a history entry, as BuildKit's dockerfile2llb writes
/// it (`commitToHistory` calls of its dispatchers): RUN without its `--mount`/`--network`
/// flags; COPY/ADD with only `--parents`, `--chown` and `--chmod`; ENV/LABEL as `k=v` pairs;
/// VOLUME/SHELL as Go `%v` of the list; HEALTHCHECK as Go `%q` of the config.
fn history_text(cmd: &Command, step: &Step) -> String {
    match &cmd.instruction {
        Instruction::Run(run) => {
            let args: Vec<String> = run_args(step, run).unwrap_or_else(|_| run.cmd.args.clone());
            let build_args: Vec<String> =
                step.env.iter().filter(|e| e.kind == VarKind::Arg).map(|e| format!("{}={}", e.name, e.value)).collect();
            let prefix = if build_args.is_empty() {
                String::new()
            } else {
                format!("|{} {} ", build_args.len(), build_args.join(" "))
            };
            format!("RUN {prefix}{} # buildkit", args.join(" "))
        }
        Instruction::Copy(c) | Instruction::Add(c) => {
            let mut m = String::from(if c.is_add { "ADD" } else { "COPY" });
            if c.parents {
                m.push_str(" --parents");
            }
            if let Some(o) = &c.chown {
                m.push_str(&format!(" --chown={o}"));
            }
            if let Some(x) = &c.chmod_raw {
                m.push_str(&format!(" --chmod={x}"));
            }
            for src in &c.sources {
                m.push(' ');
                m.push_str(src);
            }
            for h in &c.contents {
                m.push_str(&format!(" <<{}", h.path));
            }
            format!("{m} {} # buildkit", c.dest)
        }
        Instruction::Expose { ports } => {
            // Go prints the port map with sorted keys.
            let mut set: Vec<String> = ports.iter().flat_map(|p| expand_port(p)).map(|p| format!("{p}:{{}}")).collect();
            set.sort();
            set.dedup();
            format!("EXPOSE map[{}]", set.join(" "))
        }
        Instruction::Cmd(c) | Instruction::Entrypoint(c) => {
            let argv = if c.prepend_shell {
                let mut a = step.shell.clone();
                a.push(c.args.join(" "));
                a
            } else {
                c.args.clone()
            };
            let q: Vec<String> = argv.iter().map(|a| berth_dockerfile::go_quote(a)).collect();
            format!("{} [{}]", cmd.instruction.name(), q.join(" "))
        }
        Instruction::Env { vars } => {
            let kv: Vec<String> = vars.iter().map(|v| format!(" {}={}", v.key, v.value)).collect();
            format!("ENV{}", kv.concat())
        }
        Instruction::Label { labels } => {
            let kv: Vec<String> = labels.iter().map(|v| format!(" {}={}", v.key, v.value)).collect();
            format!("LABEL{}", kv.concat())
        }
        Instruction::Volume { paths, .. } => format!("VOLUME [{}]", paths.join(" ")),
        Instruction::Shell { shell } => format!("SHELL [{}]", shell.join(" ")),
        Instruction::User { user } => format!("USER {user}"),
        Instruction::Stopsignal { signal } => format!("STOPSIGNAL {signal}"),
        Instruction::Maintainer { name } => format!("MAINTAINER {name}"),
        Instruction::Healthcheck(h) => {
            let test: Vec<String> = h.test.iter().map(|a| berth_dockerfile::go_quote(a)).collect();
            format!(
                "HEALTHCHECK &{{[{}] {} {} {} {} {}}}",
                test.join(" "),
                berth_dockerfile::go_quote(&go_duration(h.interval_ns)),
                berth_dockerfile::go_quote(&go_duration(h.timeout_ns)),
                berth_dockerfile::go_quote(&go_duration(h.start_period_ns)),
                berth_dockerfile::go_quote(&go_duration(h.start_interval_ns)),
                go_quote_rune(h.retries),
            )
        }
        _ => step_text(cmd),
    }
}

/// Go's `time.Duration.String()`: `0s`, `1.5s`, `2m30s`, `1h0m0s`, `500ms`, `1.5µs`, `7ns`.
fn go_duration(ns: i64) -> String {
    if ns == 0 {
        return "0s".into();
    }
    let neg = ns < 0;
    let u = ns.unsigned_abs();
    // Fractional digits of `v / 10^prec` without trailing zeros.
    fn frac(v: u64, prec: u32) -> String {
        let div = 10u64.pow(prec);
        let (whole, rest) = (v / div, v % div);
        if rest == 0 {
            return whole.to_string();
        }
        let digits = format!("{rest:0width$}", width = prec as usize);
        format!("{whole}.{}", digits.trim_end_matches('0'))
    }
    let body = if u < 1_000 {
        format!("{u}ns")
    } else if u < 1_000_000 {
        format!("{}\u{b5}s", frac(u, 3))
    } else if u < 1_000_000_000 {
        format!("{}ms", frac(u, 6))
    } else {
        let secs_ns = u % 60_000_000_000;
        let mins = u / 60_000_000_000;
        let s = format!("{}s", frac(secs_ns, 9));
        if mins == 0 {
            s
        } else if mins < 60 {
            format!("{mins}m{s}")
        } else {
            format!("{}h{}m{s}", mins / 60, mins % 60)
        }
    };
    if neg { format!("-{body}") } else { body }
}

/// Go's `%q` of an int (a rune literal): `'\x04'`, `'A'`.
fn go_quote_rune(n: i32) -> String {
    let esc = match n {
        7 => "\\a".to_string(),
        8 => "\\b".to_string(),
        9 => "\\t".to_string(),
        10 => "\\n".to_string(),
        11 => "\\v".to_string(),
        12 => "\\f".to_string(),
        13 => "\\r".to_string(),
        39 => "\\'".to_string(),
        92 => "\\\\".to_string(),
        32..=126 => char::from_u32(n as u32).map(String::from).unwrap_or_default(),
        0..=127 => format!("\\x{n:02x}"),
        _ => match char::from_u32(n as u32) {
            Some(c) if !c.is_control() => c.to_string(),
            _ if (0..=0xffff).contains(&n) => format!("\\u{n:04x}"),
            _ => format!("\\U{n:08x}"),
        },
    };
    format!("'{esc}'")
}

/// `80` → `80/tcp`; `8000-8002/udp` → three entries.
fn expand_port(p: &str) -> Vec<String> {
    let (ports, proto) = match p.split_once('/') {
        Some((a, b)) => (a, b.to_lowercase()),
        None => (p, "tcp".to_string()),
    };
    if let Some((a, b)) = ports.split_once('-')
        && let (Ok(a), Ok(b)) = (a.parse::<u32>(), b.parse::<u32>())
        && a <= b
        && b - a < 65536
    {
        return (a..=b).map(|n| format!("{n}/{proto}")).collect();
    }
    vec![format!("{ports}/{proto}")]
}

/// Applies a metadata-only instruction to the image config.
pub(crate) fn apply_metadata(
    config: &mut ImageConfig,
    i: &Instruction,
    shell: &[String],
    cmd_set: &mut bool,
) -> Result<()> {
    let c = config.config_mut();
    match i {
        Instruction::Env { vars } => {
            for kv in vars {
                c.set_env(&kv.key, &kv.value);
            }
        }
        Instruction::Label { labels } => {
            let l = c.labels.get_or_insert_with(BTreeMap::new);
            for kv in labels {
                l.insert(kv.key.clone(), kv.value.clone());
            }
        }
        Instruction::Maintainer { name } => config.author = Some(name.clone()),
        Instruction::Expose { ports } => {
            let e = c.exposed_ports.get_or_insert_with(BTreeMap::new);
            for p in ports {
                for x in expand_port(p) {
                    e.insert(x, Default::default());
                }
            }
        }
        Instruction::Cmd(cl) => {
            c.cmd = Some(argv_of(cl, shell));
            *cmd_set = true;
        }
        Instruction::Entrypoint(cl) => {
            c.entrypoint = Some(argv_of(cl, shell));
            if !*cmd_set {
                c.cmd = None;
            }
        }
        Instruction::Volume { paths, .. } => {
            let v = c.volumes.get_or_insert_with(BTreeMap::new);
            for p in paths {
                v.insert(p.clone(), Default::default());
            }
        }
        Instruction::User { user } => c.user = Some(user.clone()),
        Instruction::Stopsignal { signal } => c.stop_signal = Some(signal.clone()),
        Instruction::Shell { shell } => c.shell = Some(shell.clone()),
        Instruction::Onbuild { expression } => c.on_build.get_or_insert_with(Vec::new).push(expression.clone()),
        Instruction::Healthcheck(h) => {
            c.healthcheck = Some(HealthConfig {
                test: Some(h.test.clone()),
                interval: h.interval_ns,
                timeout: h.timeout_ns,
                start_period: h.start_period_ns,
                start_interval: h.start_interval_ns,
                retries: h.retries,
            });
        }
        Instruction::Arg { .. } | Instruction::From(_) => {}
        Instruction::Run(_) | Instruction::Copy(_) | Instruction::Add(_) | Instruction::Workdir { .. } => {}
    }
    Ok(())
}

fn argv_of(cl: &berth_dockerfile::instructions::CommandLine, shell: &[String]) -> Vec<String> {
    if cl.prepend_shell {
        let mut a = shell.to_vec();
        a.push(cl.args.join(" "));
        a
    } else {
        cl.args.clone()
    }
}

/// Builds a [`State`] for an image from the store (a FROM base or a COPY --from source).
pub(crate) fn image_state(store: &Store, img: &berth_store::LocalImage) -> Result<State> {
    let layers = img
        .manifest
        .layers
        .iter()
        .zip(img.config.rootfs.diff_ids.iter())
        .map(|(l, d)| LayerRef { blob: Descriptor::new(&l.media_type, l.digest.clone(), l.size), diff_id: d.clone() })
        .collect();
    let _ = store;
    let _ = media::OCI_LAYER;
    let _: Option<Digest> = None;
    Ok(State { key: KeyBuilder::new("image").part(&img.id.to_string()).finish(), layers, config: img.config.clone() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_duration_formats_like_go() {
        assert_eq!(go_duration(0), "0s");
        assert_eq!(go_duration(30_000_000_000), "30s");
        assert_eq!(go_duration(1_500_000_000), "1.5s");
        assert_eq!(go_duration(90_000_000_000), "1m30s");
        assert_eq!(go_duration(3_600_000_000_000), "1h0m0s");
        assert_eq!(go_duration(500_000_000), "500ms");
        assert_eq!(go_duration(1_500), "1.5\u{b5}s");
        assert_eq!(go_duration(7), "7ns");
    }

    #[test]
    fn go_quote_rune_formats_like_go() {
        assert_eq!(go_quote_rune(0), "'\\x00'");
        assert_eq!(go_quote_rune(4), "'\\x04'");
        assert_eq!(go_quote_rune(10), "'\\n'");
        assert_eq!(go_quote_rune(65), "'A'");
        assert_eq!(go_quote_rune(39), "'\\''");
    }

    #[test]
    fn parents_pivot() {
        assert_eq!(parents_keep(true, "./files/./sub/two.txt", "files/sub/two.txt"), "sub/two.txt");
        assert_eq!(parents_keep(true, "files/sub/two.txt", "files/sub/two.txt"), "files/sub/two.txt");
        assert_eq!(parents_keep(false, "a/./b", "a/b"), "a/b");
    }
}
