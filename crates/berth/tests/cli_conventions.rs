//! docker CLI conventions that make `alias docker=berth` safe: `version --format json`,
//! `info`/`system info --format`, `-l` validated, and the container verbs added for parity
//! (`restart`, `rename`, `exec -d`/`--env-file`, `stop --timeout`), as sequences on real
//! busybox containers.

mod common;

use common::*;

#[test]
fn version_and_info_formats() {
    let b = Berth::new();
    let v = b.ok("version --format json").json();
    assert!(v["Client"]["Version"].is_string(), "{v}");
    assert_eq!(b.ok("version --format {{.Client.Os}}").stdout.trim(), "linux");
    let i = b.ok("info --format json").json();
    assert_eq!(i["Containers"], 0, "{i}");
    assert!(i["ClientInfo"]["Version"].is_string(), "{i}");
    assert_eq!(b.ok("system info --format {{.Images}}").stdout.trim(), "0");
    let text = b.ok("info").stdout;
    assert!(text.contains(" Containers: 0") && text.contains(" Images: 0"), "{text}");
}

#[test]
fn help_is_grouped_as_docker_groups_it() {
    let b = Berth::new();
    let h = b.ok("--help").stdout;
    let at = |s: &str| h.find(s).unwrap_or_else(|| panic!("help lacks {s:?}:\n{h}"));
    assert!(at("Common Commands:") < at("Management Commands:"));
    assert!(at("Management Commands:") < at("\nCommands:"));
    assert!(at("  run ") < at("Management Commands:"));
    assert!(at("  container* ") > at("Management Commands:"));
    assert!(at("  cp ") > at("\nCommands:"));
    assert!(!h.contains("__man") && !h.contains("__supervise"));
}

#[test]
fn log_level_is_validated() {
    let b = Berth::new();
    let r = b.run("-l bogus images").code(125);
    r.stderr_has("bogus");
    // The hint names the command, not the value of a global flag.
    assert!(!r.stderr.contains(&format!("berth {} --help", b.root.display())), "{}", r.stderr);
    for l in ["debug", "info", "warn", "error", "fatal"] {
        b.ok(&format!("-l {l} images -q"));
    }
}

#[test]
fn restart_rename_exec_detached_and_stop_timeout() {
    let img = fixture("library/busybox:latest");
    let b = Berth::new();
    b.pull(&img);
    // sh ignores SIGTERM as pid 1: stop has to wait for its timeout, then kill.
    b.ok_args(["run", "-d", "--name", "web", &img, "sh", "-c", "echo started >> /tmp/starts; exec sleep 300"]);

    // exec -d returns at once; the command runs on in the container.
    let t = std::time::Instant::now();
    b.ok_args(["exec", "-d", "web", "sh", "-c", "sleep 1; echo done > /tmp/det"]);
    assert!(t.elapsed() < std::time::Duration::from_secs(1), "exec -d blocked");
    let mut seen = false;
    for _ in 0..50 {
        if b.run("exec web cat /tmp/det").stdout.trim() == "done" {
            seen = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(seen, "the detached exec did not run");
    // --env-file, with -e on top.
    let dir = tempdir("cli-env");
    let envf = dir.path().join("env");
    std::fs::write(&envf, "# comment\nA=from-file\nB=file\n").expect("write");
    let r =
        b.ok_args(["exec", "--env-file", &envf.display().to_string(), "-e", "B=flag", "web", "sh", "-c", "echo $A $B"]);
    assert_eq!(r.stdout.trim(), "from-file flag");
    b.run_args(["exec", "--detach-keys", "ctrl-x", "web", "true"]).code(125).stderr_has("--detach-keys");

    // rename: the new name finds it, the old one does not; conflicts are refused.
    b.ok("rename web web2");
    b.run("inspect --type container web").fails();
    assert_eq!(b.ok("ps --format {{.Names}}").stdout.trim(), "web2");
    b.ok_args(["create", "--name", "other", &img, "true"]);
    b.run("rename web2 other").code(1).stderr_has("is already in use");
    b.run("rename web2 -bad").fails();

    // restart: a new process (the command ran twice), still running.
    let pid1 = b.ok("inspect -f {{.State.Pid}} web2").stdout;
    b.ok("restart -t 1 web2").stdout_has("web2");
    let pid2 = b.ok("inspect -f {{.State.Pid}} web2").stdout;
    assert_ne!(pid1, pid2);
    assert_eq!(b.ok("exec web2 cat /tmp/starts").stdout, "started\nstarted\n");

    // stop --timeout (docker 28's name) and -t both bound the wait.
    let t = std::time::Instant::now();
    b.ok("stop --timeout 1 web2").stdout_has("web2");
    assert!(t.elapsed() < std::time::Duration::from_secs(5), "stop --timeout 1 took {:?}", t.elapsed());
    assert_eq!(b.ok("inspect -f {{.State.Status}} web2").stdout.trim(), "exited");
    // restart of a stopped container starts it.
    b.ok("restart web2");
    assert_eq!(b.ok("inspect -f {{.State.Status}} web2").stdout.trim(), "running");
    b.ok("rm -f web2 other");
}

#[test]
fn pause_top_diff_stats() {
    let img = fixture("library/busybox:latest");
    let b = Berth::new();
    b.pull(&img);
    b.ok_args([
        "run",
        "-d",
        "--name",
        "ops",
        &img,
        "sh",
        "-c",
        "echo x > /newfile; rm /bin/ls; echo y >> /etc/passwd; touch /ready; exec sleep 300",
    ]);
    for _ in 0..50 {
        if b.run("exec ops test -e /ready").success() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }

    // pause freezes the cgroup: ps and inspect say so; unpause thaws it.
    b.ok("pause ops").stdout_has("ops");
    assert_eq!(b.ok("inspect -f {{.State.Status}}/{{.State.Paused}} ops").stdout.trim(), "paused/true");
    assert!(b.ok("ps --format {{.Status}}").stdout.contains("(Paused)"));
    b.run("pause ops").code(1).stderr_has("already paused");
    b.ok("unpause ops");
    assert_eq!(b.ok("inspect -f {{.State.Status}} ops").stdout.trim(), "running");
    b.run("unpause ops").code(1).stderr_has("is not paused");

    // top: the container's processes only, with ps options.
    let r = b.ok("top ops");
    assert!(r.stdout.starts_with("UID"), "{}", r.stdout);
    assert_eq!(r.lines().len(), 2, "{}", r.stdout);
    assert!(r.stdout.contains("sleep 300"), "{}", r.stdout);
    let r = b.ok("top ops -o pid,comm");
    assert_eq!(r.lines().get(1).map(|l| l.split_whitespace().nth(1)), Some(Some("sleep")), "{}", r.stdout);

    // diff against the image.
    let d = b.ok("diff ops").lines();
    for want in ["A /newfile", "D /bin/ls", "C /etc/passwd", "C /etc"] {
        assert!(d.iter().any(|l| l == want), "diff lacks {want}: {d:?}");
    }
    assert!(!d.iter().any(|l| l.ends_with("/etc/hosts")), "{d:?}");

    // stats --no-stream: one row per running container; --format.
    let r = b.ok("stats --no-stream");
    assert!(r.stdout.starts_with("CONTAINER ID"), "{}", r.stdout);
    assert_eq!(r.lines().len(), 2, "{}", r.stdout);
    let r = b.ok_args(["stats", "--no-stream", "--format", "{{.Name}} {{.PIDs}}", "ops"]);
    assert_eq!(r.stdout.trim(), "ops 1");

    // A paused container still stops.
    b.ok("pause ops");
    b.ok("stop -t 1 ops");
    assert_eq!(b.ok("inspect -f {{.State.Status}} ops").stdout.trim(), "exited");
    b.ok("rm ops");
}

#[test]
fn volumes_rm_v_and_system_prune() {
    let img = fixture("library/busybox:latest");
    let b = Berth::new();
    b.pull(&img);
    assert_eq!(b.ok("volume create data").stdout.trim(), "data");
    b.ok("volume create --label team=a labelled");
    let v = b.ok("volume inspect data").json();
    assert_eq!(v[0]["Name"], "data");
    assert_eq!(v[0]["Driver"], "local");
    let mp = v[0]["Mountpoint"].as_str().unwrap_or_default().to_string();
    assert!(std::path::Path::new(&mp).is_dir(), "{mp}");
    assert_eq!(b.ok("volume ls --filter label=team=a -q").stdout.trim(), "labelled");
    b.run("volume inspect nosuch").code(1).stderr_has("no such volume");
    b.run("volume create -d other x").code(1).stderr_has("not supported");

    // A container writes to a named and an anonymous volume; the named one is in use.
    b.ok_args([
        "run",
        "--name",
        "w",
        "-v",
        "data:/data",
        "-v",
        "/anon",
        &img,
        "sh",
        "-c",
        "echo hi > /data/f; echo a > /anon/f",
    ]);
    assert_eq!(std::fs::read_to_string(format!("{mp}/f")).unwrap_or_default(), "hi\n");
    let all = b.ok("volume ls -q").lines();
    assert_eq!(all.len(), 3, "{all:?}");
    let anon: Vec<&String> = all.iter().filter(|n| n.len() == 64).collect();
    assert_eq!(anon.len(), 1, "{all:?}");
    b.run("volume rm data").code(1).stderr_has("volume is in use");
    assert_eq!(b.ok("volume ls -q --filter dangling=true").lines(), vec!["labelled".to_string()]);
    // rm -v takes the anonymous volume with the container, never a named one.
    b.ok("rm -v w");
    assert_eq!(b.ok("volume ls -q").lines(), vec!["data".to_string(), "labelled".to_string()]);

    // system prune -af --volumes: stopped containers, unused images, anonymous volumes, cache.
    b.ok_args(["create", "--name", "dead", "-v", "/anon2", &img, "true"]);
    let r = b.ok("system prune -af --volumes");
    r.stdout_has("Deleted Containers:");
    r.stdout_has("Deleted Images:");
    r.stdout_has("Deleted Volumes:");
    assert_eq!(r.stdout.matches("Total reclaimed space:").count(), 1, "{}", r.stdout);
    assert!(b.ok("ps -aq").stdout.trim().is_empty());
    assert!(b.ok("images -q").stdout.trim().is_empty());
    // Named volumes stay (docker prunes anonymous ones unless volume prune -a).
    assert_eq!(b.ok("volume ls -q").lines(), vec!["data".to_string(), "labelled".to_string()]);
    b.ok("volume prune -af").stdout_has("Deleted Volumes:");
    assert!(b.ok("volume ls -q").stdout.trim().is_empty());
    b.check_store();
    // Without -f and no "y" on stdin, nothing goes.
    b.ok_args(["create", "--name", "kept", &img, "true"]);
    b.ok("system prune").stdout_has("WARNING! This will remove:");
    assert!(!b.ok("ps -aq").stdout.trim().is_empty());
}

#[test]
fn completion_and_man_pages() {
    let b = Berth::new();
    for sh in ["bash", "zsh", "fish"] {
        let r = b.ok(&format!("completion {sh}"));
        assert!(r.stdout.contains("berth"), "{sh}");
        assert!(r.stdout.contains("restart"), "{sh}: {}", &r.stdout[..200.min(r.stdout.len())]);
    }
    b.run("completion tcsh").code(125);
    let dir = tempdir("man");
    b.ok(&format!("__man -o {}", dir.path().display()));
    for p in ["berth.1", "berth-cp.1", "berth-image-copy.1", "berth-volume-ls.1"] {
        let text = std::fs::read_to_string(dir.path().join(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
        assert!(text.starts_with(".ie") || text.contains(".TH"), "{p}");
    }
}

#[test]
fn events_journal_and_wait_conditions() {
    let img = fixture("library/busybox:latest");
    let b = Berth::new();
    b.pull(&img);
    // A follower started before the events sees them as they happen.
    let mut follow = b.cmd(["events", "--format", "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}"]);
    follow.stdout(std::process::Stdio::piped());
    let mut child = follow.spawn().expect("events");
    std::thread::sleep(std::time::Duration::from_millis(500));
    b.ok_args(["run", "-d", "--name", "ev", &img, "sleep", "100"]);
    b.ok("pause ev");
    b.ok("unpause ev");
    b.ok("rename ev ev2");
    b.ok("rm -f ev2");
    std::thread::sleep(std::time::Duration::from_millis(700));
    let _ = child.kill();
    let out = child.wait_with_output().expect("events output");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let want = [
        "container create ev",
        "container start ev",
        "container pause ev",
        "container unpause ev",
        "container rename ev2",
        "container destroy ev2",
    ];
    let got: Vec<&str> = text.lines().collect();
    assert_eq!(got, want, "{text}");

    // The journal, read back with --since/--until and filters.
    let r =
        b.ok_args(["events", "--since", "5m", "--until", "0s", "--filter", "event=pause", "--format", "{{.Action}}"]);
    assert_eq!(r.stdout.trim(), "pause");
    let r = b.ok_args(["events", "--since", "5m", "--until", "0s", "--format", "json"]);
    let first: serde_json::Value = serde_json::from_str(r.stdout.lines().next().unwrap_or("{}")).unwrap_or_default();
    assert_eq!(first["Type"], "container");
    assert_eq!(first["Action"], "create");
    let r = b.ok_args(["events", "--since", "5m", "--until", "0s", "--filter", "container=nomatch"]);
    assert!(r.stdout.trim().is_empty(), "{}", r.stdout);

    // wait --condition removed returns when the container is gone; next-exit on a stopped
    // container waits for it to run and exit again.
    b.ok_args(["run", "-d", "--name", "w", &img, "sh", "-c", "exit 4"]);
    b.ok("wait w");
    let mut waiter = b.cmd(["wait", "--condition", "next-exit", "w"]);
    waiter.stdout(std::process::Stdio::piped());
    let waiter = waiter.spawn().expect("wait");
    std::thread::sleep(std::time::Duration::from_millis(500));
    b.ok("start w");
    let out = waiter.wait_with_output().expect("wait output");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "4");
    let mut waiter = b.cmd(["wait", "--condition", "removed", "w"]);
    waiter.stdout(std::process::Stdio::piped());
    let waiter = waiter.spawn().expect("wait");
    std::thread::sleep(std::time::Duration::from_millis(300));
    b.ok("rm w");
    let out = waiter.wait_with_output().expect("wait output");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "4");
    b.run("wait --condition sometime x").code(125);
}

#[test]
fn ps_size_and_filters() {
    let img = fixture("library/busybox:latest");
    let b = Berth::new();
    b.pull(&img);
    b.ok_args(["create", "--name", "p1", "-v", "pv:/data", &img, "true"]);
    // Creation times are compared as RFC 3339 text: keep them apart.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    b.ok_args(["run", "--name", "p2", &img, "sh", "-c", "echo hello > /f"]);
    let names = |f: &str| b.ok_args(["ps", "-a", "--filter", f, "--format", "{{.Names}}"]).lines();
    assert_eq!(names("before=p2"), vec!["p1"]);
    assert_eq!(names("since=p1"), vec!["p2"]);
    assert_eq!(names("volume=pv"), vec!["p1"]);
    assert_eq!(names("volume=/data"), vec!["p1"]);
    assert!(names("publish=80").is_empty());
    b.run("ps --filter bogus=1").fails();
    let r = b.ok("ps -a -s");
    assert!(r.lines()[0].ends_with("SIZE"), "{}", r.stdout);
    let sizes = b.ok_args(["ps", "-a", "-s", "--format", "{{.Names}} {{.Size}}"]).lines();
    assert!(sizes.iter().any(|l| l.starts_with("p2 6B (virtual ")), "{sizes:?}");
    b.ok("rm p1 p2");
}
