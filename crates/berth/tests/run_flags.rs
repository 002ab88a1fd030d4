//! `run`/`create` flags added for docker parity, checked from inside real busybox containers,
//! the flags berth refuses (never accepted and ignored), and restart policies kept by the
//! supervisor (`RestartCount` in inspect; a stop by the user is not restarted).

mod common;

use common::*;

#[test]
fn resource_security_and_namespace_flags_take_effect() {
    let img = fixture("library/busybox:latest");
    let b = Berth::new();
    b.pull(&img);
    let dir = tempdir("run-flags");
    let labels = dir.path().join("labels");
    std::fs::write(&labels, "# team\nteam=blue\ntier=web\n").expect("write");
    let cid = dir.path().join("cid");
    let r = b.ok_args([
        "run",
        "--name",
        "flags",
        "--tmpfs",
        "/scratch:size=1m",
        "--ulimit",
        "nofile=512:1024",
        "--shm-size",
        "8m",
        "--cpus",
        "0.5",
        "--cpu-shares",
        "512",
        "--memory",
        "64m",
        "--memory-swap",
        "128m",
        "--security-opt",
        "no-new-privileges",
        "--security-opt",
        "label=disable",
        "--sysctl",
        "kernel.msgmax=4096",
        "--group-add",
        "123",
        "--label",
        "tier=db",
        "--label-file",
        &labels.display().to_string(),
        "--cidfile",
        &cid.display().to_string(),
        "--ipc",
        "private",
        "--log-driver",
        "json-file",
        &img,
        "sh",
        "-c",
        "df -k /scratch | tail -1 | awk '{print $2}'; ulimit -n; df -k /dev/shm | tail -1 | awk '{print $2}'; \
         id -G; grep NoNewPrivs /proc/self/status | awk '{print $2}'; cat /proc/sys/kernel/msgmax",
    ]);
    assert_eq!(r.lines(), vec!["1024", "512", "8192", "0 123", "1", "4096"], "{}", r.stdout);
    let id = b.ok("inspect -f {{.Id}} flags").stdout.trim().to_string();
    assert_eq!(std::fs::read_to_string(&cid).unwrap_or_default(), id);
    let v = b.ok("inspect flags").json();
    assert_eq!(v[0]["HostConfig"]["CpuShares"], 512);
    assert_eq!(v[0]["HostConfig"]["NanoCpus"], 500_000_000i64);
    assert_eq!(v[0]["HostConfig"]["MemorySwap"], 128i64 << 20);
    assert_eq!(v[0]["Config"]["Labels"]["team"], "blue");
    // --label wins over the file.
    assert_eq!(v[0]["Config"]["Labels"]["tier"], "db");
    // An existing cidfile is refused.
    b.run_args(["create", "--cidfile", &cid.display().to_string(), &img, "true"])
        .code(125)
        .stderr_has("Container ID file found");

    // --volumes-from: the other container's volumes, read-only on request.
    b.ok_args(["create", "--name", "src", "-v", "vol1:/shared", &img, "true"]);
    b.ok_args(["run", "--rm", "--volumes-from", "src", &img, "sh", "-c", "echo hi > /shared/f"]);
    let r =
        b.run_args(["run", "--rm", "--volumes-from", "src:ro", &img, "sh", "-c", "cat /shared/f; echo x > /shared/g"]);
    assert_eq!(r.stdout.trim(), "hi");
    assert!(!r.success(), "a read-only volume was writable");

    // --health-*: the values reach the config.
    b.ok_args([
        "create",
        "--name",
        "hc",
        "--health-cmd",
        "true",
        "--health-interval",
        "5s",
        "--health-retries",
        "7",
        &img,
        "true",
    ]);
    let v = b.ok("inspect hc").json();
    let hc = &v[0]["Config"]["Healthcheck"];
    assert_eq!(hc["Interval"], 5_000_000_000u64, "{hc}");
    assert_eq!(hc["Retries"], 7, "{hc}");
}

#[test]
fn unsupported_flags_are_refused_not_ignored() {
    let img = fixture("library/busybox:latest");
    let b = Berth::new();
    b.pull(&img);
    for (args, says) in [
        (vec!["--gpus", "all"], "--gpus"),
        (vec!["--device", "/dev/fuse"], "--device"),
        (vec!["--pid", "host"], "--pid=host"),
        (vec!["--userns", "keep-id"], "--userns"),
        (vec!["--log-driver", "syslog"], "--log-driver"),
        (vec!["--log-opt", "max-size=1m"], "--log-opt"),
        (vec!["--security-opt", "apparmor=x"], "--security-opt"),
        (vec!["--restart", "sometimes"], "invalid restart policy"),
        (vec!["--restart", "always", "--rm"], "Conflicting options"),
        (vec!["--memory-swap", "1g"], "Memory limit"),
        (vec!["--sig-proxy=false"], "--sig-proxy"),
        (vec!["--detach-keys", "ctrl-x"], "--detach-keys"),
    ] {
        let mut all = vec!["run"];
        all.extend(args.iter().copied());
        all.extend([img.as_str(), "true"]);
        b.run_args(&all).code(125).stderr_has(says);
    }
    assert!(b.ok("ps -aq").stdout.trim().is_empty(), "a refused run left a container");
}

#[test]
fn restart_policies_are_kept_by_the_supervisor() {
    let img = fixture("library/busybox:latest");
    let b = Berth::new();
    b.pull(&img);
    b.ok_args(["run", "-d", "--name", "flaky", "--restart", "on-failure:2", &img, "sh", "-c", "sleep 0.2; exit 3"]);
    b.ok_args(["run", "-d", "--name", "always", "--restart", "always", &img, "sh", "-c", "sleep 0.2"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let v = b.ok("inspect -f {{.RestartCount}}/{{.State.Status}}/{{.State.ExitCode}} flaky").stdout;
        if v.trim() == "2/exited/3" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "on-failure:2 ended as {v}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert_eq!(
        b.ok("inspect -f {{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}} flaky")
            .stdout
            .trim(),
        "on-failure:2"
    );
    let n: u32 = b.ok("inspect -f {{.RestartCount}} always").stdout.trim().parse().unwrap_or(0);
    assert!(n >= 1, "always restarted {n} times");
    // A stop by the user ends it for good.
    b.ok("stop -t 1 always");
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert_eq!(b.ok("inspect -f {{.State.Status}} always").stdout.trim(), "exited");
    // start clears the manual stop: the policy applies again.
    b.ok("start always");
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let m: u32 = b.ok("inspect -f {{.RestartCount}} always").stdout.trim().parse().unwrap_or(0);
    assert!(m > n, "no restart after start ({n} -> {m})");
    b.ok("rm -f flaky always");
}
