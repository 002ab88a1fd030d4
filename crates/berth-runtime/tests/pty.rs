//! `-t` / `-it` through a real pty driven by the test (needs root).

mod common;

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

struct Pty {
    master: std::fs::File,
    slave: OwnedFd,
}

fn pty(rows: u16, cols: u16) -> Pty {
    let ws = nix::pty::Winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 };
    let p = nix::pty::openpty(Some(&ws), None).unwrap();
    Pty { master: std::fs::File::from(p.master), slave: p.slave }
}

/// Spawn the helper as the session leader of the pty, like a terminal would.
fn spawn(p: &Pty, args: &[&str]) -> std::process::Child {
    spawn_mode(p, "run", args)
}

fn spawn_mode(p: &Pty, mode: &str, args: &[&str]) -> std::process::Child {
    let s = || Stdio::from(p.slave.try_clone().unwrap());
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_berth-runtime-helper"));
    cmd.arg(mode).args(args).stdin(s()).stdout(s()).stderr(s());
    // SAFETY: setsid and TIOCSCTTY are async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            nix::unistd::setsid().map_err(std::io::Error::from)?;
            if libc::ioctl(0, libc::TIOCSCTTY, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.spawn().unwrap()
}

/// Read from the master until `pred` holds or the child exits; returns all output.
fn read_until(p: &mut Pty, child: &mut std::process::Child, pred: impl Fn(&str) -> bool) -> String {
    let fd = p.master.as_raw_fd();
    // SAFETY: F_SETFL on our own fd.
    unsafe { libc::fcntl(fd, libc::F_SETFL, libc::O_NONBLOCK) };
    let mut out = String::new();
    let t0 = Instant::now();
    let mut buf = [0u8; 4096];
    while t0.elapsed() < Duration::from_secs(10) {
        match p.master.read(&mut buf) {
            Ok(n) if n > 0 => out.push_str(&String::from_utf8_lossy(&buf[..n])),
            _ => std::thread::sleep(Duration::from_millis(10)),
        }
        if pred(&out) {
            break;
        }
        if let Ok(Some(_)) = child.try_wait() {
            // drain
            while let Ok(n) = p.master.read(&mut buf) {
                if n == 0 {
                    break;
                }
                out.push_str(&String::from_utf8_lossy(&buf[..n]));
            }
            break;
        }
    }
    out
}

#[test]
fn tty_and_window_size() {
    let _serial = serial();
    require_root();
    let layer = busybox_layer();
    let mut p = pty(33, 77);
    let mut child = spawn(&p, &["-t", "--overlay", layer.to_str().unwrap(), "sh", "-c", "tty; stty size; echo done"]);
    let out = read_until(&mut p, &mut child, |o| o.contains("done"));
    let st = child.wait().unwrap();
    assert!(st.success(), "{out}");
    assert!(out.contains("/dev/pts/0"), "{out}");
    assert!(out.contains("33 77"), "{out}");
}

#[test]
fn interactive_tty_stdin_ctrl_c_and_exit_code() {
    let _serial = serial();
    require_root();
    let layer = busybox_layer();
    let mut p = pty(24, 80);
    let mut child = spawn(&p, &["-t", "-i", "--overlay", layer.to_str().unwrap(), "sh"]);
    let _ = read_until(&mut p, &mut child, |o| o.contains('#'));
    // Ctrl-C goes to the container (its shell survives it), then a command and exit 3.
    p.master.write_all(b"sleep 5\r").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    p.master.write_all(&[3]).unwrap();
    let t0 = Instant::now();
    p.master.write_all(b"echo alive-$((40+2))\r").unwrap();
    let out = read_until(&mut p, &mut child, |o| o.contains("alive-42"));
    assert!(out.contains("alive-42"), "{out}");
    assert!(t0.elapsed() < Duration::from_secs(4), "Ctrl-C did not interrupt sleep");
    p.master.write_all(b"exit 3\r").unwrap();
    let _ = read_until(&mut p, &mut child, |_| false);
    assert_eq!(child.wait().unwrap().code(), Some(3));
}

#[test]
fn exec_with_tty_into_detached_container() {
    let _serial = serial();
    require_root();
    let o = opts();
    let store = tmp_base().join("store");
    let s = berth_runtime::Containers::new(&store);
    let id = unique_id("exectty");
    s.create(&id, None, &config(&id, &["sleep", "60"]), &o).unwrap();
    s.start_detached(&id).unwrap();
    let mut p = pty(20, 60);
    let mut child = spawn_mode(
        &p,
        "exec",
        &["-t", "-i", store.to_str().unwrap(), &id, "sh", "-c", "tty; stty size; echo done; exit 4"],
    );
    let out = read_until(&mut p, &mut child, |o| o.contains("done"));
    assert_eq!(child.wait().unwrap().code(), Some(4), "{out}");
    assert!(out.contains("/dev/pts/"), "{out}");
    assert!(out.contains("20 60"), "{out}");
    s.remove(&id, true).unwrap();
    assert_no_leaks(&o, &id);
}
