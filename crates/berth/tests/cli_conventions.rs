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
