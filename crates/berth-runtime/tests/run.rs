//! Foreground runs through the embedded runtime (real containers; needs root).

mod common;

use std::path::PathBuf;

use berth_runtime::*;
use common::*;

#[test]
fn exit_codes() {
    let _serial = serial();
    let o = opts();
    for (args, code) in [(vec!["true"], 0), (vec!["sh", "-c", "exit 3"], 3)] {
        let id = unique_id("exit");
        let (c, _, _) = run_capture(&o, &id, &config(&id, &args)).unwrap();
        assert_eq!(c, code, "{args:?}");
    }
    let id = unique_id("e127");
    let e = run_capture(&o, &id, &config(&id, &["nosuchcmd"])).unwrap_err();
    assert_eq!(e.exit_code(), 127, "{e}");
    assert_eq!(e.to_string(), "exec: \"nosuchcmd\": executable file not found in $PATH");
    assert_no_leaks(&o, &id);
    let id = unique_id("e126");
    let e = run_capture(&o, &id, &config(&id, &["/etc/noexec.sh"])).unwrap_err();
    assert_eq!(e.exit_code(), 126, "{e}");
    assert_no_leaks(&o, &id);
}

#[test]
fn env_cwd_user_hostname() {
    let _serial = serial();
    let o = opts();
    let id = unique_id("env");
    let mut c = config(&id, &["sh", "-c", "echo $FOO; pwd; id; hostname; echo $HOME"]);
    c.env = vec!["FOO=bar".into()];
    c.working_dir = Some("/work/dir".into());
    c.user = Some("alice".into());
    c.hostname = Some("box".into());
    let (code, out, err) = run_capture(&o, &id, &c).unwrap();
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "bar");
    assert_eq!(lines[1], "/work/dir");
    assert!(lines[2].starts_with("uid=1000(alice) gid=1000(alice)"), "{}", lines[2]);
    assert!(lines[2].contains("10(wheel)"), "{}", lines[2]);
    assert_eq!(lines[3], "box");
    assert_eq!(lines[4], "/home/alice");
}

struct KillOnStart(nix::sys::signal::Signal);
impl RunObserver for KillOnStart {
    fn started(&mut self, pid: i32) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), self.0);
    }
}

#[test]
fn killed_by_signal_is_128_plus_n() {
    let _serial = serial();
    let o = opts();
    let id = unique_id("sig");
    let c = config(&id, &["sleep", "30"]);
    let r =
        run(&o, &id, &c, Stdio::Capture(&mut |_, _| {}), &mut KillOnStart(nix::sys::signal::Signal::SIGKILL)).unwrap();
    assert_eq!((r.exit_code, r.signal), (137, Some(9)));
    assert_no_leaks(&o, &id);
}

#[test]
fn init_reaps_and_maps_signals() {
    let _serial = serial();
    let o = opts();
    // PID 1 ignores its own SIGKILL; under --init the command is not PID 1.
    let id = unique_id("init");
    let mut c = config(&id, &["sh", "-c", "kill -9 $$"]);
    c.init = true;
    assert_eq!(run_capture(&o, &id, &c).unwrap().0, 137);
    // Orphans are reaped: a zombie-producing command still exits cleanly, and PID 1 is
    // the init, not the command.
    let id = unique_id("init2");
    let mut c = config(&id, &["sh", "-c", "(sleep 0.1 &) ; sleep 0.3; ps -o pid,stat,comm; echo pid=$$"]);
    c.init = true;
    let (code, out, err) = run_capture(&o, &id, &c).unwrap();
    assert_eq!(code, 0, "{err}");
    assert!(!out.lines().any(|l| l.contains(" Z ")), "zombie left: {out}");
    assert!(out.contains("pid=") && !out.contains("pid=1\n"), "{out}");
    // Signals to PID 1 reach the command.
    let id = unique_id("init3");
    let mut c = config(&id, &["sleep", "30"]);
    c.init = true;
    let r =
        run(&o, &id, &c, Stdio::Capture(&mut |_, _| {}), &mut KillOnStart(nix::sys::signal::Signal::SIGTERM)).unwrap();
    assert_eq!(r.exit_code, 143);
    assert_no_leaks(&o, &id);
}

#[test]
fn stderr_is_captured_separately() {
    let _serial = serial();
    let o = opts();
    let id = unique_id("cap");
    let (code, out, err) =
        run_capture(&o, &id, &config(&id, &["sh", "-c", "echo out; echo err >&2; printf partial"])).unwrap();
    assert_eq!(code, 0);
    assert_eq!(out, "out\npartial");
    assert_eq!(err, "err\n");
}

#[test]
fn mounts_bind_tmpfs() {
    let _serial = serial();
    let o = opts();
    let host = tmp_base().join(format!("bind-{}", unique_id("b")));
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("in.txt"), "hello").unwrap();
    let id = unique_id("mnt");
    let mut c = config(
        &id,
        &[
            "sh",
            "-c",
            "cat /rw/in.txt; echo new > /rw/out.txt; echo x > /ro/f 2>/dev/null && echo ro-writable; grep ' /t ' /proc/mounts",
        ],
    );
    c.mounts = vec![
        MountSpec::Bind { source: host.clone(), target: "/rw".into(), readonly: false },
        MountSpec::Bind { source: host.clone(), target: "/ro".into(), readonly: true },
        MountSpec::Tmpfs { target: "/t".into(), size: Some(1 << 20), mode: Some(0o700) },
    ];
    let (code, out, err) = run_capture(&o, &id, &c).unwrap();
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("hello"), "{out}");
    assert!(!out.contains("ro-writable"), "{out}");
    assert!(out.contains("tmpfs /t tmpfs") && out.contains("size=1024k") && out.contains("mode=700"), "{out}");
    assert_eq!(std::fs::read_to_string(host.join("out.txt")).unwrap(), "new\n");
}

#[test]
fn network_none_vs_host() {
    let _serial = serial();
    let o = opts();
    let id = unique_id("netn");
    let mut c = config(&id, &["sh", "-c", "ls /sys/class/net; ip link show lo"]);
    c.network = NetworkMode::None;
    let (code, out, err) = run_capture(&o, &id, &c).unwrap();
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().next(), Some("lo"), "{out}");
    assert!(out.contains("UP"), "loopback must be up: {out}");
    let id = unique_id("neth");
    let c = config(&id, &["ls", "/sys/class/net"]);
    let (_, out, _) = run_capture(&o, &id, &c).unwrap();
    let host: Vec<String> = std::fs::read_dir("/sys/class/net")
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    for h in host {
        assert!(out.contains(&h), "host interface {h} missing: {out}");
    }
}

#[test]
fn read_only_rootfs_and_cap_drop() {
    let _serial = serial();
    let o = opts();
    let id = unique_id("ro");
    let mut c = config(&id, &["sh", "-c", "touch /x && echo wrote; touch /tmp/y && echo wrote-tmp; true"]);
    c.read_only = true;
    let (_, out, _) = run_capture(&o, &id, &c).unwrap();
    assert!(!out.contains("wrote"), "{out}");
    let id = unique_id("cap");
    let c = config(&id, &["chown", "1000", "/etc/passwd"]);
    assert_eq!(run_capture(&o, &id, &c).unwrap().0, 0);
    let id = unique_id("cap2");
    let mut c = config(&id, &["chown", "1000", "/etc/passwd"]);
    c.cap_drop = vec!["CHOWN".into()];
    let (code, _, err) = run_capture(&o, &id, &c).unwrap();
    assert_ne!(code, 0);
    assert!(err.contains("Operation not permitted"), "{err}");
}

#[test]
fn cgroup_limits_visible() {
    let _serial = serial();
    let o = opts();
    let id = unique_id("cg");
    let mut c = config(
        &id,
        &[
            "sh",
            "-c",
            "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max; cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max",
        ],
    );
    c.memory = Some(64 << 20);
    c.pids_limit = Some(42);
    let (code, out, err) = run_capture(&o, &id, &c).unwrap();
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, format!("{}\n42\n", 64u64 << 20));
}

#[test]
fn overlay_upper_gets_changes_but_not_etc_mountpoints() {
    let _serial = serial();
    let o = opts();
    // A layer without /etc/hosts etc.: the mount points must be created and removed again.
    let bare = tmp_base().join(format!("bare-{}", unique_id("l")));
    std::fs::create_dir_all(&bare).unwrap();
    let id = unique_id("ovl");
    let dir = tmp_base().join("c").join(&id);
    let upper = dir.join("upper");
    let c = ContainerConfig {
        rootfs: RootfsSource::Layers(LayerStack {
            lower: vec![busybox_layer(), bare],
            upper: Some(upper.clone()),
            work: Some(dir.join("work")),
            mode: RootfsMode::Overlay,
            volatile: false,
        }),
        args: ["sh", "-c", "echo data > /root/file; rm /etc/group; cat /etc/hostname"]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        ..Default::default()
    };
    let (code, _, err) = run_capture(&o, &id, &c).unwrap();
    assert_eq!(code, 0, "{err}");
    assert_eq!(std::fs::read_to_string(upper.join("root/file")).unwrap(), "data\n");
    assert!(exists(&upper.join("etc/group")), "whiteout expected");
    for f in ["etc/hosts", "etc/hostname", "etc/resolv.conf", "dev/shm", "dev/pts"] {
        assert!(!exists(&upper.join(f)), "{f} left in upper");
    }
    // /etc existed in the lower (busybox layer), so it stays as a copied-up dir at most.
    let _ = PathBuf::new();
}

#[test]
fn external_runc_backend() {
    let _serial = serial();
    let runc = std::path::Path::new("/usr/sbin/runc");
    assert!(runc.exists(), "runc is required for the external-runtime test (apt-get install runc)");
    let mut o = opts();
    o.backend = Backend::External(runc.to_path_buf());
    let id = unique_id("runc");
    let mut c = config(&id, &["sh", "-c", "echo hi; echo $HOSTNAME; ip link show lo | grep -c UP; exit 4"]);
    c.network = NetworkMode::None;
    c.hostname = Some("rh".into());
    let (code, out, err) = run_capture(&o, &id, &c).unwrap();
    assert_eq!(code, 4, "{err}");
    assert_eq!(out, "hi\nrh\n1\n");
    let id = unique_id("runc127");
    let e = run_capture(&o, &id, &config(&id, &["nosuch"])).unwrap_err();
    assert_eq!(e.exit_code(), 127);
}

#[test]
fn run_in_helper_streams_lines() {
    let _serial = serial();
    let o = opts();
    let id = unique_id("helper");
    let mut lines = vec![];
    let mut pid = 0;
    let r = run_in_helper(
        &o,
        &id,
        &config(&id, &["sh", "-c", "echo a; echo b >&2; exit 2"]),
        &mut |p| pid = p,
        &mut |s, l| lines.push((s, String::from_utf8_lossy(l).into_owned())),
    )
    .unwrap();
    assert!(pid > 0);
    assert_eq!(r.exit_code, 2);
    lines.sort_by_key(|(s, _)| *s == Stream::Stderr);
    assert_eq!(lines, vec![(Stream::Stdout, "a\n".into()), (Stream::Stderr, "b\n".into())]);
    let id = unique_id("helper127");
    let e = run_in_helper(&o, &id, &config(&id, &["nosuch"]), &mut |_| {}, &mut |_, _| {}).unwrap_err();
    assert_eq!(e.exit_code(), 127);
    assert_no_leaks(&o, &id);
}

#[test]
fn many_layers_and_copy_fallback() {
    let _serial = serial();
    // 180 layers with long paths: ~40 KiB of lowerdir, far past the 4 KiB option limit.
    let base = tmp_base().join(format!("many-{}", unique_id("m")));
    let mut lower = vec![busybox_layer()];
    for i in 0..180 {
        let l = base.join(format!("{}-layer-{i:03}", "x".repeat(180)));
        std::fs::create_dir_all(&l).unwrap();
        std::fs::write(l.join(format!("f{i}")), format!("{i}")).unwrap();
        std::fs::write(l.join("top"), format!("{i}")).unwrap();
        lower.push(l);
    }
    let o = opts();
    for mode in [RootfsMode::Overlay, RootfsMode::Copy] {
        let id = unique_id("many");
        let dir = tmp_base().join("c").join(&id);
        let c = ContainerConfig {
            rootfs: RootfsSource::Layers(LayerStack {
                lower: lower.clone(),
                upper: Some(dir.join("upper")),
                work: Some(dir.join("work")),
                mode,
                volatile: false,
            }),
            args: ["sh", "-c", "cat /top; cat /f0 /f179; ls / | grep -c '^f'"].iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        let (code, out, err) = run_capture(&o, &id, &c).unwrap();
        assert_eq!(code, 0, "{mode:?}: {err}");
        assert_eq!(out, "1790179180\n", "{mode:?}");
    }
    // The short-symlink fallback of the old mount API, exercised directly.
    let target = base.join("mnt");
    let m = berth_runtime::rootfs::mount_overlay_legacy_for_test(&lower, &base.join("up"), &base.join("wk"), &target)
        .unwrap();
    assert_eq!(std::fs::read_to_string(target.join("top")).unwrap(), "179");
    m.unmount().unwrap();
    std::fs::remove_dir_all(&base).unwrap();
}

#[test]
fn privileged_and_ulimits() {
    let _serial = serial();
    let o = opts();
    let id = unique_id("priv");
    let mut c =
        config(&id, &["sh", "-c", "mkdir -p /m && mount -t tmpfs none /m && echo mounted; ls /dev | grep -c . "]);
    c.privileged = true;
    let (code, out, err) = run_capture(&o, &id, &c).unwrap();
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("mounted\n"), "{out}");
    let id = unique_id("unpriv");
    let c = config(&id, &["sh", "-c", "mkdir -p /m; mount -t tmpfs none /m && echo mounted; true"]);
    let (_, out, _) = run_capture(&o, &id, &c).unwrap();
    assert!(!out.contains("mounted"), "{out}");
    let id = unique_id("ulim");
    let mut c = config(&id, &["sh", "-c", "ulimit -n; ulimit -Hn; ulimit -c"]);
    c.ulimits = vec![
        Ulimit { name: "nofile".into(), soft: 1 << 30, hard: 1 << 30 },
        Ulimit { name: "core".into(), soft: 0, hard: 0 },
    ];
    let (code, out, err) = run_capture(&o, &id, &c).unwrap();
    assert_eq!(code, 0, "{err}");
    let hard = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).unwrap().1;
    assert_eq!(out, format!("{hard}\n{hard}\n0\n"));
}

#[test]
fn oom_kill_is_reported() {
    let _serial = serial();
    let o = opts();
    let id = unique_id("oom");
    let mut c = config(&id, &["sh", "-c", "x=$(head -c 100000000 /dev/zero | tr '\\0' a); echo ${#x}"]);
    c.memory = Some(16 << 20);
    let mut out = String::new();
    let r = run(&o, &id, &c, Stdio::Capture(&mut |_, l| out.push_str(&String::from_utf8_lossy(l))), &mut ()).unwrap();
    assert!(r.oom_killed, "{r:?} {out}");
    assert_eq!(r.exit_code, 137, "{r:?}");
    assert_no_leaks(&o, &id);
}

#[test]
fn signals_to_berth_are_forwarded() {
    let _serial = serial();
    use std::io::{BufRead, BufReader};
    let layer = busybox_layer();
    for (sig, name) in [
        (nix::sys::signal::Signal::SIGTERM, "TERM"),
        (nix::sys::signal::Signal::SIGINT, "INT"),
        (nix::sys::signal::Signal::SIGUSR1, "USR1"),
    ] {
        let script = format!("trap 'echo got-{name}; exit 7' {name}; echo ready; while :; do sleep 0.05; done");
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_berth-runtime-helper"))
            .args(["run", "--overlay"])
            .arg(&layer)
            .args(["sh", "-c", &script])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        assert_eq!(line, "ready\n");
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), sig).unwrap();
        line.clear();
        out.read_line(&mut line).unwrap();
        assert_eq!(line, format!("got-{name}\n"));
        assert_eq!(child.wait().unwrap().code(), Some(7));
    }
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains("/run/berth-helper/"), "helper rootfs left mounted");
}
