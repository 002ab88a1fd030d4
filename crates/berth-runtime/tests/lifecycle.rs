//! Detached containers, records, stop/kill/rm, logs, exec, health checks (needs root).

mod common;

use std::time::{Duration, Instant};

use berth_runtime::*;
use common::*;

fn store() -> Containers {
    Containers::new(tmp_base().join("store"))
}

fn cleanup(s: &Containers, o: &RuntimeOptions, id: &str) {
    s.remove(id, true).unwrap();
    assert_no_leaks(o, id);
}

#[test]
fn detached_outlives_creator_and_records_exit() {
    let _serial = serial();
    let o = opts();
    let s = store();
    let id = unique_id("det");
    let c = config(&id, &["sh", "-c", "echo out; echo err >&2; sleep 0.3; exit 7"]);
    s.create(&id, Some("det"), &c, &o).unwrap();
    assert_eq!(s.inspect(&id).unwrap().state.status, Status::Created);
    let pid = s.start_detached(&id).unwrap();
    assert!(pid > 0);
    let st = s.inspect(&id).unwrap().state;
    assert_eq!(st.status, Status::Running);
    assert!(st.supervisor_pid > 0 && st.supervisor_pid != std::process::id() as i32);
    // The supervisor is not our child: it was started in its own session.
    let sid = std::fs::read_to_string(format!("/proc/{}/stat", st.supervisor_pid)).unwrap();
    assert!(!sid.is_empty());
    assert_eq!(s.wait(&id).unwrap(), 7);
    let st = s.inspect(&id).unwrap().state;
    assert_eq!(st.status, Status::Exited);
    assert!(st.finished_at > st.started_at, "{st:?}");
    let mut entries = vec![];
    s.logs(&id, &LogOptions::default(), &mut |e| entries.push(e.clone())).unwrap();
    let mut got: Vec<(String, String)> = entries.iter().map(|e| (e.stream.clone(), e.log.clone())).collect();
    got.sort();
    assert_eq!(got, vec![("stderr".into(), "err\n".into()), ("stdout".into(), "out\n".into())]);
    assert!(entries[0].time.ends_with('Z'));
    cleanup(&s, &o, &id);
    assert!(s.inspect(&id).is_err());
}

#[test]
fn start_errors_are_reported() {
    let _serial = serial();
    let o = opts();
    let s = store();
    let id = unique_id("det127");
    s.create(&id, None, &config(&id, &["nosuch"]), &o).unwrap();
    let e = s.start_detached(&id).unwrap_err();
    assert_eq!(e.exit_code(), 127, "{e}");
    let st = s.inspect(&id).unwrap().state;
    assert_eq!((st.status, st.exit_code), (Status::Exited, 127));
    cleanup(&s, &o, &id);
}

#[test]
fn stop_with_timeout_kill_rm_and_follow_logs() {
    let _serial = serial();
    let o = opts();
    let s = store();
    let id = unique_id("stop");
    // PID 1 without a handler ignores SIGTERM: stop must escalate to SIGKILL.
    s.create(&id, None, &config(&id, &["sleep", "60"]), &o).unwrap();
    s.start_detached(&id).unwrap();
    let e = s.remove(&id, false).unwrap_err();
    assert!(matches!(e, Error::WrongState { .. }), "{e}");
    let t0 = Instant::now();
    s.stop(&id, Some(Duration::from_millis(300))).unwrap();
    assert!(t0.elapsed() < Duration::from_secs(5));
    assert_eq!(s.inspect(&id).unwrap().state.exit_code, 137);
    cleanup(&s, &o, &id);

    // A trapping shell exits on SIGTERM in time; logs --follow ends when it stops.
    let id = unique_id("stop2");
    s.create(
        &id,
        None,
        &config(&id, &["sh", "-c", "trap 'echo bye; exit 0' TERM; echo hi; while true; do sleep 0.05; done"]),
        &o,
    )
    .unwrap();
    s.start_detached(&id).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let s2 = s.clone();
    let id2 = id.clone();
    let h = std::thread::spawn(move || {
        let mut lines = vec![];
        s2.logs(&id2, &LogOptions { follow: true, tail: None }, &mut |e| lines.push(e.log.clone())).unwrap();
        lines
    });
    std::thread::sleep(Duration::from_millis(100));
    s.stop(&id, Some(Duration::from_secs(5))).unwrap();
    assert_eq!(s.inspect(&id).unwrap().state.exit_code, 0);
    assert_eq!(h.join().unwrap(), vec!["hi\n".to_string(), "bye\n".to_string()]);
    cleanup(&s, &o, &id);

    // kill with a signal name.
    let id = unique_id("kill");
    s.create(&id, None, &config(&id, &["sleep", "60"]), &o).unwrap();
    s.start_detached(&id).unwrap();
    s.kill(&id, "KILL").unwrap();
    assert_eq!(s.wait(&id).unwrap(), 137);
    cleanup(&s, &o, &id);
}

#[test]
fn died_unobserved_is_marked_exited() {
    let _serial = serial();
    let o = opts();
    let s = store();
    let id = unique_id("died");
    s.create(&id, None, &config(&id, &["sleep", "60"]), &o).unwrap();
    s.start_detached(&id).unwrap();
    let st = s.inspect(&id).unwrap().state;
    // Kill the supervisor first, then the container: nobody records the exit.
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(st.supervisor_pid), nix::sys::signal::Signal::SIGKILL).unwrap();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(st.pid), nix::sys::signal::Signal::SIGKILL).unwrap();
    let t0 = Instant::now();
    loop {
        let st = s.inspect(&id).unwrap().state;
        if st.status == Status::Exited {
            assert_eq!(st.exit_code, 255);
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(5));
        std::thread::sleep(Duration::from_millis(20));
    }
    cleanup(&s, &o, &id);
}

#[test]
fn exec_into_running_container() {
    let _serial = serial();
    let o = opts();
    let s = store();
    let id = unique_id("exec");
    let mut c = config(&id, &["sleep", "60"]);
    c.env = vec!["BASE=1".into()];
    s.create(&id, None, &c, &o).unwrap();
    let pid = s.start_detached(&id).unwrap();
    let mut out = String::new();
    let ex = ExecConfig {
        args: vec![
            "sh".into(),
            "-c".into(),
            "echo $BASE $X; id -u; pwd; cat /proc/1/cmdline | tr '\\0' ' '; exit 5".into(),
        ],
        env: vec!["X=2".into()],
        user: Some("alice".into()),
        working_dir: Some("/tmp".into()),
        ..Default::default()
    };
    let r = s.exec(&id, &ex, Stdio::Capture(&mut |_, l| out.push_str(&String::from_utf8_lossy(l)))).unwrap();
    assert_eq!(r.exit_code, 5);
    assert_eq!(out, "1 2\n1000\n/tmp\nsleep 60 ");
    let e = s
        .exec(&id, &ExecConfig { args: vec!["nosuch".into()], ..Default::default() }, Stdio::Capture(&mut |_, _| {}))
        .unwrap_err();
    assert_eq!(e.exit_code(), 127);
    assert!(pid > 0);
    cleanup(&s, &o, &id);
}

#[test]
fn health_check_transitions() {
    let _serial = serial();
    let o = opts();
    let s = store();
    let id = unique_id("health");
    // The probe reads a file the test controls through a bind mount, so the
    // transitions do not depend on timing.
    let ctl = tmp_base().join(format!("ctl-{id}"));
    std::fs::create_dir_all(&ctl).unwrap();
    let mut c = config(&id, &["sleep", "60"]);
    c.mounts = vec![MountSpec::Bind { source: ctl.clone(), target: "/ctl".into(), readonly: true }];
    c.healthcheck = Some(HealthConfig {
        test: vec!["CMD-SHELL".into(), "cat /ctl/ready".into()],
        interval: 100_000_000,
        timeout: 5_000_000_000,
        // Failures while starting, inside the start period, do not count.
        start_period: 60_000_000_000,
        start_interval: 50_000_000,
        retries: 2,
    });
    s.create(&id, None, &c, &o).unwrap();
    s.start_detached(&id).unwrap();
    let health = || s.inspect(&id).unwrap().state.health.unwrap();
    let wait_for = |pred: &dyn Fn(&Health) -> bool| {
        let t0 = Instant::now();
        loop {
            let h = health();
            if pred(&h) {
                return h;
            }
            assert!(t0.elapsed() < Duration::from_secs(20), "stuck at {h:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    // A few failing probes while starting: still starting, no streak.
    let h = wait_for(&|h| h.log.len() >= 3);
    assert_eq!((h.status.as_str(), h.failing_streak), ("starting", 0), "{h:?}");
    std::fs::write(ctl.join("ready"), "ok\n").unwrap();
    let h = wait_for(&|h| h.status == "healthy");
    assert_eq!(h.failing_streak, 0);
    assert_eq!(h.log.last().unwrap().output, "ok\n");
    std::fs::remove_file(ctl.join("ready")).unwrap();
    let h = wait_for(&|h| h.status == "unhealthy");
    assert!(h.failing_streak >= 2 && h.log.len() <= 5, "{h:?}");
    assert!(h.log.last().unwrap().exit_code != 0);
    // One-off check from the CLI path.
    let e = s.health_check(&id).unwrap();
    assert_ne!(e.exit_code, 0);
    assert!(e.output.contains("No such file"), "{e:?}");
    cleanup(&s, &o, &id);
}

#[test]
fn concurrent_starts_start_once() {
    let _serial = serial();
    let o = opts();
    let s = store();
    let id = unique_id("conc");
    s.create(&id, None, &config(&id, &["sleep", "60"]), &o).unwrap();
    let hs: Vec<_> = (0..3)
        .map(|_| {
            let s = s.clone();
            let id = id.clone();
            std::thread::spawn(move || s.start_detached(&id).unwrap())
        })
        .collect();
    let pids: Vec<i32> = hs.into_iter().map(|h| h.join().unwrap()).collect();
    assert!(pids.iter().all(|p| *p == pids[0]), "{pids:?}");
    cleanup(&s, &o, &id);
}

#[test]
fn attached_start_logs_and_detached_auto_remove() {
    let _serial = serial();
    let o = opts();
    let s = store();
    let id = unique_id("att");
    s.create(&id, None, &config(&id, &["sh", "-c", "echo one; echo two >&2; exit 6"]), &o).unwrap();
    let mut seen = vec![];
    let r =
        s.start_attached(&id, Stdio::Capture(&mut |_, l| seen.push(String::from_utf8_lossy(l).into_owned()))).unwrap();
    assert_eq!(r.exit_code, 6);
    assert_eq!(seen.len(), 2);
    let st = s.inspect(&id).unwrap().state;
    assert_eq!((st.status, st.exit_code), (Status::Exited, 6));
    let mut logged = vec![];
    s.logs(&id, &LogOptions { follow: false, tail: Some(1) }, &mut |e| logged.push(e.log.clone())).unwrap();
    assert_eq!(logged.len(), 1);
    // Restart of an exited container works and appends to the log.
    s.start_attached(&id, Stdio::Capture(&mut |_, _| {})).unwrap();
    let mut n = 0;
    s.logs(&id, &LogOptions::default(), &mut |_| n += 1).unwrap();
    assert_eq!(n, 4);
    cleanup(&s, &o, &id);

    let id = unique_id("autorm");
    let mut c = config(&id, &["true"]);
    c.auto_remove = true;
    s.create(&id, None, &c, &o).unwrap();
    s.start_detached(&id).unwrap();
    let t0 = Instant::now();
    while s.inspect(&id).is_ok() {
        assert!(t0.elapsed() < Duration::from_secs(10), "not removed");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_no_leaks(&o, &id);
}

#[test]
fn attached_inherit_output_reaches_terminal_and_log() {
    let _serial = serial();
    let o = opts();
    let s = store();
    let id = unique_id("tee");
    s.create(&id, None, &config(&id, &["sh", "-c", "printf 'a\\nb'; echo c >&2"]), &o).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_berth-runtime-helper"))
        .arg("start")
        .arg(s.root())
        .arg(&id)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "a\nb");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "c\n");
    let mut logged = vec![];
    s.logs(&id, &LogOptions::default(), &mut |e| logged.push((e.stream.clone(), e.log.clone()))).unwrap();
    logged.sort();
    assert_eq!(
        logged,
        vec![("stderr".into(), "c\n".into()), ("stdout".into(), "a\n".into()), ("stdout".into(), "b".into())]
    );
    cleanup(&s, &o, &id);
}

#[test]
fn detached_and_exec_with_external_runc() {
    let _serial = serial();
    let mut o = opts();
    o.backend = Backend::External("/usr/sbin/runc".into());
    let s = store();
    let id = unique_id("rdet");
    s.create(&id, None, &config(&id, &["sh", "-c", "echo started; sleep 60"]), &o).unwrap();
    s.start_detached(&id).unwrap();
    let mut out = String::new();
    let r = s
        .exec(
            &id,
            &ExecConfig { args: vec!["sh".into(), "-c".into(), "hostname; exit 3".into()], ..Default::default() },
            Stdio::Capture(&mut |_, l| out.push_str(&String::from_utf8_lossy(l))),
        )
        .unwrap();
    assert_eq!(r.exit_code, 3, "{out}");
    assert_eq!(out.trim(), &id[..12]);
    s.stop(&id, Some(Duration::from_millis(500))).unwrap();
    assert_eq!(s.inspect(&id).unwrap().state.exit_code, 137);
    let mut logs = vec![];
    s.logs(&id, &LogOptions::default(), &mut |e| logs.push(e.log.clone())).unwrap();
    assert_eq!(logs, vec!["started\n".to_string()]);
    cleanup(&s, &o, &id);
}
