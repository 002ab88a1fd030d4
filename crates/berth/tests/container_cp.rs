//! `berth cp` as docker's: files and directories between a container (running or stopped)
//! and the host, docker's path rules (`/.`, existing directories, trailing `/`), `-L`, `-a`,
//! tar streams with `-`, and symlinks that point outside the container resolved inside it.

mod common;

use std::path::Path;

use common::*;

/// A running busybox container with a small tree in /data (symlinks included); removed on drop.
struct Ctr<'a> {
    b: &'a Berth,
    name: String,
}

impl Drop for Ctr<'_> {
    fn drop(&mut self) {
        let _ = self.b.run(&format!("rm -f {}", self.name));
    }
}

fn start<'a>(b: &'a Berth, name: &str) -> Ctr<'a> {
    let img = fixture("library/busybox:latest");
    b.pull(&img);
    b.ok_args([
        "run",
        "-d",
        "--name",
        name,
        &img,
        "sh",
        "-c",
        // Idempotent: a restarted container runs this again.
        "[ -e /ready ] || { mkdir -p /data/sub && echo hello > /data/a.txt && echo deep > /data/sub/b && \
         chown 1234:2345 /data/a.txt && ln -s / /data/escape && ln -s /data/a.txt /data/link && \
         ln -s ../../../../../etc /data/up && touch /ready; }; exec sleep 300",
    ]);
    for _ in 0..100 {
        if b.run(&format!("exec {name} test -e /ready")).success() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    Ctr { b, name: name.to_string() }
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn cp_out_of_a_running_container_follows_docker_rules() {
    let b = Berth::new();
    let c = start(&b, "cp-out");
    let n = &c.name;
    let host = tempdir("cp-out");
    let h = host.path();
    let hs = h.display().to_string();

    // A file into an existing directory keeps its name; to a new path takes that name.
    b.ok(&format!("cp {n}:/data/a.txt {hs}"));
    assert_eq!(read(&h.join("a.txt")), "hello\n");
    b.ok(&format!("cp {n}:/data/a.txt {hs}/renamed"));
    assert_eq!(read(&h.join("renamed")), "hello\n");
    // Without -a, the files belong to the user who copies.
    use std::os::unix::fs::MetadataExt;
    let md = std::fs::metadata(h.join("a.txt")).expect("stat");
    assert_eq!(md.uid(), unsafe { libc::geteuid() });
    // A directory to a new path is created with its contents; into an existing one nests.
    b.ok(&format!("cp {n}:/data {hs}/d1"));
    assert_eq!(read(&h.join("d1/sub/b")), "deep\n");
    std::fs::create_dir(h.join("d2")).expect("mkdir");
    b.ok(&format!("cp {n}:/data {hs}/d2"));
    assert_eq!(read(&h.join("d2/data/a.txt")), "hello\n");
    // `/.`: the contents only.
    std::fs::create_dir(h.join("d3")).expect("mkdir");
    b.ok(&format!("cp {n}:/data/. {hs}/d3"));
    assert_eq!(read(&h.join("d3/a.txt")), "hello\n");
    // A symlink is copied as a link; -L copies its target.
    b.ok(&format!("cp {n}:/data/link {hs}/l"));
    assert_eq!(std::fs::read_link(h.join("l")).expect("readlink").display().to_string(), "/data/a.txt");
    b.ok(&format!("cp -L {n}:/data/link {hs}/l2"));
    assert_eq!(read(&h.join("l2")), "hello\n");
    // Links that point at / or climb out resolve inside the container, never on the host.
    let hostname = b.ok(&format!("exec {n} cat /etc/hostname")).stdout;
    b.ok(&format!("cp {n}:/data/escape/etc/hostname {hs}/h1"));
    b.ok(&format!("cp -L {n}:/data/up/hostname {hs}/h2"));
    assert_eq!(read(&h.join("h1")), hostname);
    assert_eq!(read(&h.join("h2")), hostname);
    // -a keeps the container's owner.
    b.ok(&format!("cp -a {n}:/data/a.txt {hs}/owned"));
    let md = std::fs::metadata(h.join("owned")).expect("stat");
    assert_eq!((md.uid(), md.gid()), (1234, 2345));
    // `-`: a tar of the resource on stdout.
    let r = b.ok(&format!("cp {n}:/data/sub -"));
    let tar = h.join("out.tar");
    std::fs::write(&tar, r.stdout.as_bytes()).expect("write");
    let list = std::process::Command::new("tar").arg("-tf").arg(&tar).output().expect("tar");
    let list = String::from_utf8_lossy(&list.stdout).to_string();
    assert!(list.lines().any(|l| l == "sub/b"), "{list}");

    // Errors: docker's wording and exit code 1.
    b.run(&format!("cp {n}:/nonexistent {hs}")).code(1).stderr_has("Could not find the file /nonexistent in container");
    b.run(&format!("cp {n}:/data/a.txt {hs}/missing/")).code(1).stderr_has("does not exist");
    b.run(&format!("cp {n}:/data {hs}/a.txt")).code(1).stderr_has("cannot copy a directory to a file");
    b.run(&format!("cp {hs}/a.txt {hs}/b")).code(1).stderr_has("must specify at least one container source");
    b.run(&format!("cp {n}:/a {n}:/b")).code(1).stderr_has("copying between containers is not supported");
    b.run(&format!("cp nosuch:/a {hs}")).code(1).stderr_has("No such container: nosuch");
}

#[test]
fn cp_into_running_and_stopped_containers() {
    let b = Berth::new();
    let c = start(&b, "cp-in");
    let n = &c.name;
    let host = tempdir("cp-in");
    let h = host.path();
    std::fs::write(h.join("f.txt"), "from host\n").expect("write");
    std::fs::create_dir_all(h.join("dir/x")).expect("mkdir");
    std::fs::write(h.join("dir/x/y"), "y\n").expect("write");
    let f = h.join("f.txt").display().to_string();
    let d = h.join("dir").display().to_string();

    b.ok(&format!("cp {f} {n}:/data/"));
    b.ok(&format!("cp {f} {n}:/data/renamed.txt"));
    b.ok(&format!("cp {d} {n}:/data/newdir"));
    b.ok(&format!("cp {d} {n}:/data"));
    b.ok(&format!("cp {d}/. {n}:/data/sub"));
    let cat = |p: &str| b.ok(&format!("exec {n} cat {p}")).stdout;
    assert_eq!(cat("/data/f.txt"), "from host\n");
    assert_eq!(cat("/data/renamed.txt"), "from host\n");
    assert_eq!(cat("/data/newdir/x/y"), "y\n");
    assert_eq!(cat("/data/dir/x/y"), "y\n");
    assert_eq!(cat("/data/sub/x/y"), "y\n");
    // Owned by the container's root without -a.
    assert_eq!(b.ok(&format!("exec {n} stat -c %u:%g /data/f.txt")).stdout.trim(), "0:0");
    // Through a symlink to /: lands in the container's /tmp, not the host's.
    let marker = format!("berth-cp-escape-{}", std::process::id());
    b.ok(&format!("cp {f} {n}:/data/escape/tmp/{marker}"));
    assert_eq!(cat(&format!("/tmp/{marker}")), "from host\n");
    assert!(!Path::new("/tmp").join(&marker).exists(), "cp wrote on the host");
    // A tar on stdin into a directory.
    let tar = std::process::Command::new("tar").arg("-C").arg(h).arg("-c").arg("f.txt").output().expect("tar");
    run_with_stdin(b.cmd(["cp", "-", &format!("{n}:/tmp")]), &tar.stdout).ok();
    assert_eq!(cat("/tmp/f.txt"), "from host\n");
    run_with_stdin(b.cmd(["cp", "-", &format!("{n}:/data/a.txt")]), &tar.stdout)
        .code(1)
        .stderr_has("must be a directory");

    // Stopped: copy in and out through its overlay; the change is there when it runs again.
    b.ok(&format!("kill {n}"));
    b.ok(&format!("wait {n}"));
    b.ok(&format!("cp {f} {n}:/stopped.txt"));
    let out = h.join("back");
    b.ok(&format!("cp {n}:/stopped.txt {}", out.display()));
    assert_eq!(read(&out), "from host\n");
    b.ok(&format!("start {n}"));
    assert_eq!(cat("/stopped.txt"), "from host\n");
    assert_eq!(cat("/data/f.txt"), "from host\n");
    // Nothing stays mounted.
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    assert!(!mounts.contains("berth-cp-"), "{mounts}");
}
