//! Container networking: private namespaces by default (the host's loopback out of
//! reach), `--network host|none|container:`, published ports, user-defined networks with
//! name resolution, and the same isolation for build RUN steps. Needs root, slirp4netns,
//! iproute2 and iptables. Ports used: 17320-17399 (this suite's range).

mod common;

use std::io::Write;
use std::net::TcpListener;
use std::time::Duration;

use common::*;

/// A host service on 127.0.0.1:`port` answering every connection with `hello`.
fn host_service(port: u16) -> TcpListener {
    let l = TcpListener::bind(("127.0.0.1", port)).expect("bind host service");
    let l2 = l.try_clone().unwrap();
    std::thread::spawn(move || {
        for c in l2.incoming().flatten() {
            let mut c = c;
            let _ = c.write_all(b"hello\n");
        }
    });
    l
}

fn setup() -> (Berth, String) {
    let b = Berth::new();
    let img = fixture("library/busybox:latest");
    b.pull(&img);
    (b, img)
}

/// `nc` to the host's loopback service from a container with `net`; prints OUT or IN.
fn probe(b: &Berth, img: &str, net: &[&str], target: &str) -> String {
    let mut args = vec!["run", "--rm"];
    args.extend_from_slice(net);
    let script = format!("if nc -w 2 {target} </dev/null | grep -q hello; then echo IN; else echo OUT; fi");
    args.extend_from_slice(&[img, "sh", "-c", &script]);
    b.ok_args(&args).lines().join("")
}

#[test]
fn host_loopback_is_out_of_reach_by_default() {
    let (b, img) = setup();
    let _svc = host_service(17320);
    assert_eq!(probe(&b, &img, &[], "127.0.0.1 17320"), "OUT");
    assert_eq!(probe(&b, &img, &[], "10.0.2.2 17320"), "OUT", "slirp4netns's host-loopback mapping is off");
    assert_eq!(probe(&b, &img, &["--network", "bridge"], "127.0.0.1 17320"), "OUT");
    assert_eq!(probe(&b, &img, &["--network", "none"], "127.0.0.1 17320"), "OUT");
    assert_eq!(probe(&b, &img, &["--network", "host"], "127.0.0.1 17320"), "IN");
    // The default network: an address of its own, a default route, the host's resolvers.
    let out = b.ok_args(["run", "--rm", &img, "sh", "-c", "ip -4 -o addr show eth0; ip route; cat /etc/resolv.conf"]);
    let text = out.all();
    assert!(text.contains("inet 10.88."), "{text}");
    assert!(text.contains("default via 10.88.0.1"), "{text}");
    assert!(text.contains("nameserver"), "{text}");
    // none: loopback only.
    let out = b.ok_args(["run", "--rm", "--network", "none", &img, "sh", "-c", "ip -o link | wc -l"]);
    assert_eq!(out.lines().join(""), "1");
}

#[test]
fn published_ports_two_containers_same_port_and_cleanup() {
    let (b, img) = setup();
    for (name, port) in [("web1", 17330), ("web2", 17331)] {
        b.ok_args([
            "run",
            "-d",
            "--name",
            name,
            "-p",
            &format!("127.0.0.1:{port}:80"),
            &img,
            "sh",
            "-c",
            &format!("echo {name} > /tmp/index.html; exec httpd -f -p 80 -h /tmp"),
        ]);
    }
    let get = |port: u16| -> Option<String> {
        for _ in 0..50 {
            if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
                let _ = s.set_read_timeout(Some(Duration::from_secs(3)));
                let _ = s.write_all(b"GET /index.html HTTP/1.0\r\n\r\n");
                let mut body = String::new();
                let _ = std::io::Read::read_to_string(&mut s, &mut body);
                if !body.is_empty() {
                    return Some(body);
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    };
    assert!(get(17330).is_some_and(|b| b.contains("web1")));
    assert!(get(17331).is_some_and(|b| b.contains("web2")));
    b.ok("port web1").stdout_has("80/tcp -> 127.0.0.1:17330");
    assert_eq!(b.ok("port web2 80").lines(), vec!["127.0.0.1:17331"]);
    b.ok("ps").stdout_has("127.0.0.1:17330->80/tcp");
    let v = b.ok("inspect web1").json();
    let ns = &v[0]["NetworkSettings"];
    assert_eq!(ns["Ports"]["80/tcp"][0]["HostPort"], "17330", "{ns}");
    assert!(ns["IPAddress"].as_str().unwrap_or("").starts_with("10.88."), "{ns}");
    assert_eq!(ns["Gateway"], "10.88.0.1");
    assert!(ns["Networks"]["bridge"]["IPAddress"].as_str().is_some_and(|s| !s.is_empty()));
    // The same port again is refused while web1 holds it.
    b.run_args(["run", "--rm", "-p", "127.0.0.1:17330:80", &img, "true"])
        .fails()
        .stderr_has("port is already allocated");
    // container: shares web1's namespace (its address, its port 80).
    let out = b.ok_args(["run", "--rm", "--network", "container:web1", &img, "sh", "-c", "ip -4 -o addr show eth0"]);
    assert!(out.all().contains(ns["IPAddress"].as_str().unwrap_or("?")), "{}", out.all());
    // -P: EXPOSEd/--expose ports on random host ports.
    b.ok_args(["run", "-d", "--name", "rnd", "--expose", "8080", "-P", &img, "sleep", "30"]);
    let p = b.ok("port rnd 8080").lines().join("");
    assert!(p.starts_with("0.0.0.0:"), "{p}");
    // stop/rm free the ports, and nothing is left in the berth netns.
    b.ok("stop -t 1 web1");
    assert!(std::net::TcpStream::connect(("127.0.0.1", 17330)).is_err(), "port 17330 still open after stop");
    b.ok("rm -f web1 web2 rnd");
    assert!(std::net::TcpStream::connect(("127.0.0.1", 17331)).is_err(), "port 17331 still open after rm");
    // Nothing of web1 is left: its namespace file, its address lease (a lease names its
    // owner; another test may take the address again at once).
    let id = v[0]["Id"].as_str().unwrap_or("?").to_string();
    assert!(!std::path::Path::new(&format!("/run/berth/c/{id}/netns")).exists(), "netns left behind");
    let ip = ns["IPAddress"].as_str().unwrap_or("?");
    for e in std::fs::read_dir("/run/berth/net/ipam").expect("ipam dir").flatten() {
        let lease = std::fs::read_to_string(e.path().join(ip)).unwrap_or_default();
        assert!(!lease.contains(&id), "lease left behind: {lease}");
    }
    // The same host port is free for a new container.
    b.ok_args(["run", "--rm", "-p", "127.0.0.1:17330:80", &img, "true"]);
}

#[test]
fn user_network_names_and_lifecycle() {
    let (b, img) = setup();
    let net = format!("n{}", &unique_repo("x").replace(['/', '-', '_'], "")[..10]);
    b.ok_args(["network", "create", "--subnet", "10.131.7.0/24", "--label", "team=a", &net]);
    b.ok("network ls").stdout_has(&net);
    assert_eq!(
        b.ok_args(["network", "inspect", "-f", "{{(index .IPAM.Config 0).Subnet}}", &net]).lines(),
        vec!["10.131.7.0/24"]
    );
    b.ok_args([
        "run",
        "-d",
        "--name",
        "db1",
        "--network",
        &net,
        "--network-alias",
        "database",
        "--ip",
        "10.131.7.50",
        &img,
        "sh",
        "-c",
        "echo db > /tmp/index.html; exec httpd -f -p 80 -h /tmp",
    ]);
    let out = b.ok_args([
        "run", "--rm", "--network", &net, &img, "sh", "-c",
        "cat /etc/hosts; for n in db1 database; do printf 'GET /index.html HTTP/1.0\\r\\n\\r\\n' | nc -w 3 $n 80 | tail -1; done",
    ]);
    let t = out.all();
    assert!(t.contains("10.131.7.50\tdb1") && t.contains("10.131.7.50\tdatabase"), "{t}");
    assert_eq!(out.lines().iter().filter(|l| l.trim() == "db").count(), 2, "{t}");
    // --dns, --dns-search, --dns-option, --add-host, --hostname.
    let out = b.ok_args([
        "run",
        "--rm",
        "--dns",
        "10.9.9.9",
        "--dns-search",
        "example.org",
        "--dns-option",
        "ndots:2",
        "--add-host",
        "h1:10.1.2.3",
        "--hostname",
        "myhost",
        &img,
        "sh",
        "-c",
        "cat /etc/resolv.conf /etc/hosts; hostname",
    ]);
    let t = out.all();
    for want in ["nameserver 10.9.9.9", "search example.org", "options ndots:2", "10.1.2.3\th1", "myhost"] {
        assert!(t.contains(want), "{want} missing in {t}");
    }
    b.run_args(["network", "rm", &net]).fails().stderr_has("active endpoints");
    b.ok("rm -f db1");
    b.ok_args(["network", "rm", &net]);
    b.run_args(["network", "inspect", &net]).fails();
    b.run_args(["run", "--rm", "--network", "nosuchnet", &img, "true"]).code(125);
}

#[test]
fn build_run_steps_are_isolated_by_default() {
    let (b, img) = setup();
    let _svc = host_service(17340);
    let dir = tempdir("netbuild");
    let probe = "if nc -w 2 127.0.0.1 17340 </dev/null | grep -q hello; then echo IN; else echo OUT; fi";
    std::fs::write(
        dir.path().join("Dockerfile"),
        format!(
            "FROM {img}\nRUN ({probe}) > /default.txt; ip route >> /default.txt\nRUN --network=host ({probe}) > /host.txt\nRUN --network=none ip -o link | wc -l > /none.txt\n"
        ),
    )
    .unwrap();
    let tag = format!("{}:net", unique_repo("netbuild"));
    b.ok_args(["build", "-q", "-t", &tag, dir.path().to_str().unwrap()]);
    let cat = |f: &str| b.ok_args(["run", "--rm", "--network", "none", &tag, "cat", f]).all();
    let d = cat("/default.txt");
    assert!(d.starts_with("OUT"), "{d}");
    assert!(d.contains("default via"), "RUN has outbound routing: {d}");
    assert!(cat("/host.txt").starts_with("IN"));
    assert_eq!(cat("/none.txt").trim(), "1");
    // `build --network host` opts every RUN in.
    std::fs::write(dir.path().join("Dockerfile"), format!("FROM {img}\nRUN ({probe}) > /r.txt\n")).unwrap();
    let tag2 = format!("{}:net2", unique_repo("netbuild"));
    b.ok_args(["build", "-q", "--network", "host", "-t", &tag2, dir.path().to_str().unwrap()]);
    assert!(b.ok_args(["run", "--rm", "--network", "none", &tag2, "cat", "/r.txt"]).all().starts_with("IN"));
}

#[test]
fn udp_published_port() {
    let (b, img) = setup();
    b.ok_args(["run", "-d", "--name", "u1", "-p", "127.0.0.1:17350:5000/udp", &img, "sleep", "30"]);
    let pid = b.ok_args(["inspect", "-f", "{{.State.Pid}}", "u1"]).lines().join("");
    // busybox has no UDP server: an echo server in the container's namespace.
    let mut srv = std::process::Command::new("nsenter")
        .arg(format!("--net=/proc/{pid}/ns/net"))
        .args([
            "python3",
            "-c",
            "import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('0.0.0.0',5000))\nd,a=s.recvfrom(100); s.sendto(d.upper(),a)",
        ])
        .spawn()
        .expect("nsenter python3");
    std::thread::sleep(Duration::from_millis(500));
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    s.send_to(b"ping", "127.0.0.1:17350").unwrap();
    let mut buf = [0u8; 16];
    let n = s.recv(&mut buf).expect("UDP reply through the published port");
    assert_eq!(&buf[..n], b"PING");
    let _ = srv.wait();
    assert_eq!(b.ok("port u1").lines(), vec!["5000/udp -> 127.0.0.1:17350"]);
    b.ok("rm -f u1");
}
