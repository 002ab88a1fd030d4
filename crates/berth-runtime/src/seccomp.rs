//! Docker's default seccomp profile, generated as OCI `linux.seccomp` JSON.
//!
//! Shape (as moby's `profiles/seccomp/default.json`): default action `ERRNO(EPERM)`; an
//! allow-list of ~350 syscalls; `personality` only with the harmless personas;
//! `arch_prctl`/`modify_ldt` on x86; syscalls gated by capabilities (allowed only when the
//! container holds CAP_SYS_ADMIN, CAP_SYS_PTRACE, …); `clone` without namespace flags
//! unless CAP_SYS_ADMIN; `clone3` answers ENOSYS (so libc falls back to `clone`) unless
//! CAP_SYS_ADMIN. Names unknown to the running kernel are skipped by libcontainer.
//! Architectures: native, plus the 32-bit compat ABI only when the rootfs needs it.
//! Gaps vs moby: no minimum-kernel conditions, no s390/ppc/mips specials.

use serde_json::{Value, json};

/// Allowed for every container.
const BASE_ALLOW: &[&str] = &[
    "_llseek",
    "_newselect",
    "accept",
    "accept4",
    "access",
    "adjtimex",
    "alarm",
    "bind",
    "brk",
    "capget",
    "capset",
    "chdir",
    "chmod",
    "chown",
    "chown32",
    "clock_adjtime",
    "clock_adjtime64",
    "clock_getres",
    "clock_getres_time64",
    "clock_gettime",
    "clock_gettime64",
    "clock_nanosleep",
    "clock_nanosleep_time64",
    "close",
    "close_range",
    "connect",
    "copy_file_range",
    "creat",
    "dup",
    "dup2",
    "dup3",
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_ctl_old",
    "epoll_pwait",
    "epoll_pwait2",
    "epoll_wait",
    "epoll_wait_old",
    "eventfd",
    "eventfd2",
    "execve",
    "execveat",
    "exit",
    "exit_group",
    "faccessat",
    "faccessat2",
    "fadvise64",
    "fadvise64_64",
    "fallocate",
    "fanotify_mark",
    "fchdir",
    "fchmod",
    "fchmodat",
    "fchown",
    "fchown32",
    "fchownat",
    "fcntl",
    "fcntl64",
    "fdatasync",
    "fgetxattr",
    "flistxattr",
    "flock",
    "fork",
    "fremovexattr",
    "fsetxattr",
    "fstat",
    "fstat64",
    "fstatat64",
    "fstatfs",
    "fstatfs64",
    "fsync",
    "ftruncate",
    "ftruncate64",
    "futex",
    "futex_time64",
    "futimesat",
    "get_mempolicy",
    "get_robust_list",
    "get_thread_area",
    "getcpu",
    "getcwd",
    "getdents",
    "getdents64",
    "getegid",
    "getegid32",
    "geteuid",
    "geteuid32",
    "getgid",
    "getgid32",
    "getgroups",
    "getgroups32",
    "getitimer",
    "getpeername",
    "getpgid",
    "getpgrp",
    "getpid",
    "getppid",
    "getpriority",
    "getrandom",
    "getresgid",
    "getresgid32",
    "getresuid",
    "getresuid32",
    "getrlimit",
    "getrusage",
    "getsid",
    "getsockname",
    "getsockopt",
    "gettid",
    "gettimeofday",
    "getuid",
    "getuid32",
    "getxattr",
    "inotify_add_watch",
    "inotify_init",
    "inotify_init1",
    "inotify_rm_watch",
    "io_cancel",
    "io_destroy",
    "io_getevents",
    "io_setup",
    "io_submit",
    "ioctl",
    "ioprio_get",
    "ioprio_set",
    "ipc",
    "kill",
    "landlock_add_rule",
    "landlock_create_ruleset",
    "landlock_restrict_self",
    "lchown",
    "lchown32",
    "lgetxattr",
    "link",
    "linkat",
    "listen",
    "listxattr",
    "llistxattr",
    "lremovexattr",
    "lseek",
    "lsetxattr",
    "lstat",
    "lstat64",
    "madvise",
    "mbind",
    "membarrier",
    "memfd_create",
    "memfd_secret",
    "mincore",
    "mkdir",
    "mkdirat",
    "mknod",
    "mknodat",
    "mlock",
    "mlock2",
    "mlockall",
    "mmap",
    "mmap2",
    "mprotect",
    "mq_getsetattr",
    "mq_notify",
    "mq_open",
    "mq_timedreceive",
    "mq_timedreceive_time64",
    "mq_timedsend",
    "mq_timedsend_time64",
    "mq_unlink",
    "mremap",
    "msgctl",
    "msgget",
    "msgrcv",
    "msgsnd",
    "msync",
    "munlock",
    "munlockall",
    "munmap",
    "nanosleep",
    "newfstatat",
    "open",
    "openat",
    "openat2",
    "pause",
    "pidfd_getfd",
    "pidfd_open",
    "pidfd_send_signal",
    "pipe",
    "pipe2",
    "pkey_alloc",
    "pkey_free",
    "pkey_mprotect",
    "poll",
    "ppoll",
    "ppoll_time64",
    "prctl",
    "pread64",
    "preadv",
    "preadv2",
    "prlimit64",
    "process_mrelease",
    "process_vm_readv",
    "process_vm_writev",
    "pselect6",
    "pselect6_time64",
    "ptrace",
    "pwrite64",
    "pwritev",
    "pwritev2",
    "read",
    "readahead",
    "readdir",
    "readlink",
    "readlinkat",
    "readv",
    "recv",
    "recvfrom",
    "recvmmsg",
    "recvmmsg_time64",
    "recvmsg",
    "remap_file_pages",
    "removexattr",
    "rename",
    "renameat",
    "renameat2",
    "restart_syscall",
    "rmdir",
    "rseq",
    "rt_sigaction",
    "rt_sigpending",
    "rt_sigprocmask",
    "rt_sigqueueinfo",
    "rt_sigreturn",
    "rt_sigsuspend",
    "rt_sigtimedwait",
    "rt_sigtimedwait_time64",
    "rt_tgsigqueueinfo",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_getaffinity",
    "sched_getattr",
    "sched_getparam",
    "sched_getscheduler",
    "sched_rr_get_interval",
    "sched_rr_get_interval_time64",
    "sched_setaffinity",
    "sched_setattr",
    "sched_setparam",
    "sched_setscheduler",
    "sched_yield",
    "seccomp",
    "select",
    "semctl",
    "semget",
    "semop",
    "semtimedop",
    "semtimedop_time64",
    "send",
    "sendfile",
    "sendfile64",
    "sendmmsg",
    "sendmsg",
    "sendto",
    "set_mempolicy",
    "set_robust_list",
    "set_thread_area",
    "set_tid_address",
    "setfsgid",
    "setfsgid32",
    "setfsuid",
    "setfsuid32",
    "setgid",
    "setgid32",
    "setgroups",
    "setgroups32",
    "setitimer",
    "setpgid",
    "setpriority",
    "setregid",
    "setregid32",
    "setresgid",
    "setresgid32",
    "setresuid",
    "setresuid32",
    "setreuid",
    "setreuid32",
    "setrlimit",
    "setsid",
    "setsockopt",
    "setuid",
    "setuid32",
    "setxattr",
    "shmat",
    "shmctl",
    "shmdt",
    "shmget",
    "shutdown",
    "sigaction",
    "sigaltstack",
    "signal",
    "signalfd",
    "signalfd4",
    "sigpending",
    "sigprocmask",
    "sigreturn",
    "sigsuspend",
    "socketcall",
    "socketpair",
    "splice",
    "stat",
    "stat64",
    "statfs",
    "statfs64",
    "statx",
    "symlink",
    "symlinkat",
    "sync",
    "sync_file_range",
    "syncfs",
    "syscall",
    "sysinfo",
    "tee",
    "tgkill",
    "time",
    "timer_create",
    "timer_delete",
    "timer_getoverrun",
    "timer_gettime",
    "timer_gettime64",
    "timer_settime",
    "timer_settime64",
    "timerfd",
    "timerfd_create",
    "timerfd_gettime",
    "timerfd_gettime64",
    "timerfd_settime",
    "timerfd_settime64",
    "times",
    "tkill",
    "truncate",
    "truncate64",
    "ugetrlimit",
    "umask",
    "uname",
    "unlink",
    "unlinkat",
    "utime",
    "utimensat",
    "utimensat_time64",
    "utimes",
    "vfork",
    "wait4",
    "waitid",
    "waitpid",
    "write",
    "writev",
];

/// (capability, syscalls it unlocks).
const CAP_GATED: &[(&str, &[&str])] = &[
    (
        "CAP_SYS_ADMIN",
        &[
            "bpf",
            "clone",
            "clone3",
            "fanotify_init",
            "fsconfig",
            "fsmount",
            "fsopen",
            "fspick",
            "lookup_dcookie",
            "mount",
            "mount_setattr",
            "move_mount",
            "open_tree",
            "perf_event_open",
            "quotactl",
            "quotactl_fd",
            "setdomainname",
            "sethostname",
            "setns",
            "syslog",
            "umount",
            "umount2",
            "unshare",
            "pivot_root",
            "keyctl",
            "add_key",
            "request_key",
        ],
    ),
    ("CAP_SYS_BOOT", &["reboot"]),
    ("CAP_SYS_CHROOT", &["chroot"]),
    ("CAP_SYS_MODULE", &["delete_module", "init_module", "finit_module", "query_module"]),
    ("CAP_SYS_PACCT", &["acct"]),
    ("CAP_SYS_PTRACE", &["kcmp", "pidfd_getfd", "process_madvise"]),
    ("CAP_SYS_RAWIO", &["iopl", "ioperm"]),
    ("CAP_SYS_TIME", &["settimeofday", "stime", "clock_settime", "clock_settime64"]),
    ("CAP_SYS_TTY_CONFIG", &["vhangup"]),
    ("CAP_SYS_NICE", &["get_mempolicy", "mbind", "set_mempolicy"]),
    ("CAP_SYSLOG", &["syslog"]),
    ("CAP_BPF", &["bpf"]),
    ("CAP_PERFMON", &["perf_event_open"]),
    ("CAP_DAC_READ_SEARCH", &["open_by_handle_at", "name_to_handle_at"]),
    // moby's default.json gates name_to_handle_at on CAP_SYS_ADMIN and CAP_DAC_READ_SEARCH
    // (file handles let a process reach files outside its mount namespace's view).
    ("CAP_SYS_ADMIN", &["name_to_handle_at"]),
];

/// AF_VSOCK: moby's default.json allows `socket` for every family but this one (vsock
/// reaches the hypervisor or other VMs, outside the container's network namespace).
const AF_VSOCK: u64 = 40;

/// CLONE_NEWNS | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET | NEWCGROUP.
const CLONE_NS_FLAGS: u64 =
    0x0002_0000 | 0x0400_0000 | 0x0800_0000 | 0x1000_0000 | 0x2000_0000 | 0x4000_0000 | 0x0200_0000;

/// Architectures in the filter. Each extra architecture costs libseccomp ~4 ms of CPU
/// per container start, so the 32-bit x86 ABI is only included when the rootfs looks
/// like it runs 32-bit code (see [`needs_compat32`]); x32 is never included.
fn architectures(compat32: bool) -> Vec<&'static str> {
    if cfg!(target_arch = "x86_64") {
        if compat32 { vec!["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"] } else { vec!["SCMP_ARCH_X86_64"] }
    } else if cfg!(target_arch = "aarch64") {
        if compat32 { vec!["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"] } else { vec!["SCMP_ARCH_AARCH64"] }
    } else {
        vec![]
    }
}

/// Whether a rootfs may run 32-bit code: it has a 32-bit loader or multilib dirs, or
/// its entry binary is ELF32. Binaries of an architecture missing from the filter are
/// killed by the kernel (SIGSYS), so when in doubt this says yes.
pub fn needs_compat32(rootfs: &std::path::Path, entry: Option<&std::path::Path>) -> bool {
    let markers = [
        "lib/ld-linux.so.2",
        "lib/ld-linux-armhf.so.3",
        "lib32",
        "usr/lib32",
        "lib/i386-linux-gnu",
        "usr/lib/i386-linux-gnu",
        "lib/arm-linux-gnueabihf",
    ];
    if markers.iter().any(|m| std::fs::symlink_metadata(rootfs.join(m)).is_ok()) {
        return true;
    }
    if let Some(e) = entry {
        let mut hdr = [0u8; 5];
        if let Ok(mut f) = std::fs::File::open(e)
            && std::io::Read::read_exact(&mut f, &mut hdr).is_ok()
        {
            return hdr.starts_with(b"\x7fELF") && hdr.get(4) == Some(&1);
        }
    }
    false
}

/// The default profile for a container holding `caps` (names like `CAP_CHOWN`).
pub fn default_profile(caps: &[String], compat32: bool) -> Value {
    let has = |c: &str| caps.iter().any(|x| x == c);
    let mut rules = vec![json!({"names": BASE_ALLOW, "action": "SCMP_ACT_ALLOW"})];
    for p in [0u64, 8, 0x20000, 0x20008, 0xffff_ffff] {
        rules.push(json!({"names": ["personality"], "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 0, "value": p, "op": "SCMP_CMP_EQ"}]}));
    }
    rules.push(json!({"names": ["socket"], "action": "SCMP_ACT_ALLOW",
        "args": [{"index": 0, "value": AF_VSOCK, "op": "SCMP_CMP_NE"}]}));
    if cfg!(target_arch = "x86_64") {
        rules.push(json!({"names": ["arch_prctl", "modify_ldt"], "action": "SCMP_ACT_ALLOW"}));
    }
    for (cap, names) in CAP_GATED {
        if has(cap) {
            rules.push(json!({"names": names, "action": "SCMP_ACT_ALLOW"}));
        }
    }
    if !has("CAP_SYS_ADMIN") {
        rules.push(json!({"names": ["clone"], "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 0, "value": CLONE_NS_FLAGS, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]}));
        rules.push(json!({"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}));
    }
    json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1,
        "architectures": architectures(compat32),
        "syscalls": rules,
    })
}

/// Convert a Docker-format profile file (`names` or legacy `name`, `includes`/`excludes`
/// by capability and arch) to OCI seccomp JSON.
pub fn from_docker_profile(profile: &Value, caps: &[String]) -> Value {
    let has = |c: &str| caps.iter().any(|x| x == c);
    let arch_ok = |v: &Value| {
        let me = if cfg!(target_arch = "x86_64") { "amd64" } else { "arm64" };
        v.as_array().is_none_or(|a| a.is_empty() || a.iter().any(|x| x.as_str() == Some(me)))
    };
    let mut rules = Vec::new();
    for s in profile["syscalls"].as_array().into_iter().flatten() {
        let inc = &s["includes"];
        let exc = &s["excludes"];
        if !arch_ok(&inc["arches"]) {
            continue;
        }
        if let Some(c) = inc["caps"].as_array()
            && !c.iter().all(|c| c.as_str().is_some_and(has))
        {
            continue;
        }
        if let Some(c) = exc["caps"].as_array()
            && c.iter().any(|c| c.as_str().is_some_and(has))
        {
            continue;
        }
        let names = match (&s["names"], &s["name"]) {
            (Value::Array(a), _) => Value::Array(a.clone()),
            (_, Value::String(n)) => json!([n]),
            _ => continue,
        };
        let mut r = json!({"names": names, "action": s["action"]});
        if let Some(e) = s.get("errnoRet") {
            r["errnoRet"] = e.clone();
        }
        if let Some(a) = s.get("args").filter(|a| a.as_array().is_some_and(|a| !a.is_empty())) {
            r["args"] = a.clone();
        }
        rules.push(r);
    }
    let mut out = json!({
        "defaultAction": profile["defaultAction"],
        "architectures": architectures(true),
        "syscalls": rules,
    });
    if let Some(e) = profile.get("defaultErrnoRet") {
        out["defaultErrnoRet"] = e.clone();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_parses_as_oci() {
        let v = default_profile(&["CAP_CHOWN".into()], true);
        let s: oci_spec::runtime::LinuxSeccomp = serde_json::from_value(v).unwrap();
        assert!(s.syscalls().as_ref().unwrap().len() > 5);
        let admin = default_profile(&["CAP_SYS_ADMIN".into()], false);
        assert!(admin.to_string().contains("\"mount\""));
        assert!(!default_profile(&[], false).to_string().contains("\"mount\""));
    }

    /// The unconditional allow rules (no `args`) of a profile.
    fn allowed(v: &Value) -> Vec<String> {
        v["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["action"] == "SCMP_ACT_ALLOW" && r.get("args").is_none())
            .flat_map(|r| r["names"].as_array().unwrap().iter().map(|n| n.as_str().unwrap().to_string()))
            .collect()
    }

    #[test]
    fn aligned_with_moby_default_json() {
        let plain = default_profile(&["CAP_CHOWN".into()], false);
        assert!(!allowed(&plain).contains(&"name_to_handle_at".to_string()), "needs CAP_SYS_ADMIN");
        assert!(allowed(&default_profile(&["CAP_SYS_ADMIN".into()], false)).contains(&"name_to_handle_at".into()));
        assert!(!allowed(&plain).contains(&"socket".to_string()), "socket only with a family rule");
        let sock: Vec<&Value> = plain["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["names"].as_array().unwrap().iter().any(|n| n == "socket"))
            .collect();
        assert_eq!(sock.len(), 1);
        assert_eq!(sock[0]["args"][0]["value"], AF_VSOCK);
        assert_eq!(sock[0]["args"][0]["op"], "SCMP_CMP_NE");
    }
}
