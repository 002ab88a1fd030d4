//! The tour's Dockerfiles (shared/seed/docker-images.md), built as written against the CI
//! fixtures (`python:3.9-slim`, `node:16-alpine`, `ubuntu:20.04`… are stand-ins served by the
//! local registry as a docker.io mirror; see scripts/ci/FIXTURES.md), with PyPI, npm and
//! deb.debian.org reached from RUN over the host network. Slow (package downloads): `slow_`.

mod build_common;
mod common;

use std::path::PathBuf;

use build_common::*;
use common::*;

fn tour_python_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/tour-python")
}

fn tour_builder(fixtures: &[&str]) -> Berth {
    for f in fixtures {
        fixture(f);
    }
    builder()
}

/// `python app.py` serves /health inside the container (loopback of its own network).
const FLASK_PROBE: &str = "python3 app.py >/tmp/log 2>&1 & for i in $(seq 50); do \
    python3 -c 'import urllib.request,sys; sys.stdout.write(urllib.request.urlopen(\"http://127.0.0.1:5000/health\").read().decode())' \
    2>/dev/null && exit 0; sleep 0.2; done; cat /tmp/log; exit 1";

#[test]
fn slow_tour_python_app() {
    let b = tour_builder(&["library/python:3.9-slim"]);
    let t = "myapp:1.0";
    let r = build_ok(&b, &tour_python_dir(), &["-t", t, "-t", "myapp:latest"]);
    assert!(r.stderr.contains("RUN pip install --no-cache-dir -r requirements.txt"), "{}", r.stderr);
    let v = b.inspect(t);
    let c = &v["Config"];
    assert_eq!(c["WorkingDir"], "/app");
    assert_eq!(strings(&c["Cmd"]), vec!["python", "app.py"]);
    assert!(c["ExposedPorts"].get("5000/tcp").is_some(), "{c}");
    assert_eq!(image_id(&b, "myapp:latest"), v["Id"].as_str().unwrap_or_default());
    let out = run_sh(&b, t, "python app.py --check && ls /app");
    assert!(out.starts_with("app OK, flask 3.0.3"), "{out}");
    for f in ["app.py", "requirements.txt", "Dockerfile"] {
        assert!(out.lines().any(|l| l == f), "/app lacks {f}: {out}");
    }
    assert_eq!(run_sh(&b, t, FLASK_PROBE).trim(), "ok");
    // No pip cache was left (--no-cache-dir), and a rebuild is fully cached.
    assert_eq!(run_sh(&b, t, "ls /root/.cache/pip 2>/dev/null | wc -l").trim(), "0");
    let r = build_ok(&b, &tour_python_dir(), &["-t", t]);
    assert!(executed_steps(&r.stderr).is_empty(), "{}", r.stderr);
}

#[test]
fn slow_tour_essential_instructions() {
    let b = tour_builder(&["library/ubuntu:20.04"]);
    let ctx = Ctx::new(
        r#"# Base image
FROM ubuntu:20.04

# Maintainer information
LABEL maintainer="your-email@example.com"

# Update package list and install packages
RUN apt-get update && apt-get install -y \
    python3 \
    python3-pip \
    && rm -rf /var/lib/apt/lists/*

# Set environment variables
ENV PYTHONPATH=/app
ENV FLASK_APP=app.py

# Create and set working directory
WORKDIR /app

# Copy files
COPY requirements.txt .
COPY . .

# Install Python dependencies
RUN pip3 install -r requirements.txt

# Create non-root user
RUN useradd -m appuser && chown -R appuser:appuser /app
USER appuser

# Expose port
EXPOSE 5000

# Health check
HEALTHCHECK --interval=30s --timeout=3s --start-period=5s --retries=3 \
    CMD curl -f http://localhost:5000/health || exit 1

# Default command
CMD ["python3", "app.py"]
"#,
    );
    let src = tour_python_dir();
    for f in ["app.py", "requirements.txt"] {
        ctx.file(f, std::fs::read(src.join(f)).expect("tour file"));
    }
    let t = "essential:1.0";
    build_ok(&b, ctx.path(), &["-t", t]);
    let v = b.inspect(t);
    let c = &v["Config"];
    assert_eq!(c["User"], "appuser");
    assert_eq!(c["Labels"]["maintainer"], "your-email@example.com");
    let env = strings(&c["Env"]);
    assert!(env.contains(&"PYTHONPATH=/app".to_string()) && env.contains(&"FLASK_APP=app.py".to_string()), "{env:?}");
    let hc = &c["Healthcheck"];
    assert_eq!(strings(&hc["Test"]), vec!["CMD-SHELL", "curl -f http://localhost:5000/health || exit 1"]);
    assert_eq!(hc["Interval"], 30_000_000_000u64);
    assert_eq!(hc["Timeout"], 3_000_000_000u64);
    assert_eq!(hc["StartPeriod"], 5_000_000_000u64);
    assert_eq!(hc["Retries"], 3);
    assert_eq!(strings(&c["Cmd"]), vec!["python3", "app.py"]);
    let out =
        run_sh(&b, t, "id -un; stat -c %U /app /app/app.py; ls /var/lib/apt/lists | wc -l; python3 app.py --check");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[..3], ["appuser", "appuser", "appuser"], "{out}");
    assert_eq!(lines[3].trim(), "0", "apt lists removed in the same RUN: {out}");
    assert!(lines[4].starts_with("app OK, flask"), "{out}");
    assert_eq!(run_sh(&b, t, FLASK_PROBE).trim(), "ok");
    // The apt lists never reach a layer: the RUN that downloads them deletes them.
    let s = saved(&b, t);
    assert!(
        s.fs.under("/var/lib/apt/lists").iter().all(|p| p.ends_with("/lock") || p.ends_with("/partial")),
        "{:?}",
        s.fs.under("/var/lib/apt/lists")
    );
}

/// A tiny npm project with one small dependency and its lockfile (what `npm install` writes).
fn node_project(ctx: &Ctx) {
    ctx.file(
        "package.json",
        r#"{
  "name": "tour-node",
  "version": "1.0.0",
  "private": true,
  "main": "server.js",
  "dependencies": {
    "ms": "2.1.3"
  }
}
"#,
    );
    ctx.file(
        "package-lock.json",
        r#"{
  "name": "tour-node",
  "version": "1.0.0",
  "lockfileVersion": 3,
  "requires": true,
  "packages": {
    "": {
      "name": "tour-node",
      "version": "1.0.0",
      "dependencies": {
        "ms": "2.1.3"
      }
    },
    "node_modules/ms": {
      "version": "2.1.3",
      "resolved": "https://registry.npmjs.org/ms/-/ms-2.1.3.tgz",
      "integrity": "sha512-6FlzubTLZG3J2a/NVCAleEhjzq5oxgHyaCU9yYXvcLsvoVaHJq/s5xXI6/XXP6tz7R9xAOtHnSO/tXtF3WRTlA=="
    }
  }
}
"#,
    );
    ctx.file("server.js", "const ms = require('ms');\nconsole.log('two days is', ms('2 days'), 'ms');\n");
    ctx.file(".dockerignore", "node_modules\n");
    // A stray local node_modules must not reach the image (ignored).
    ctx.file("node_modules/stale/index.js", "stale\n");
}

#[test]
fn slow_tour_node_multistage() {
    let b = tour_builder(&["library/node:16-alpine"]);
    let ctx = Ctx::new(
        r#"# Build stage
FROM node:16-alpine AS builder
WORKDIR /app
COPY package*.json ./
RUN npm ci --only=production

# Production stage
FROM node:16-alpine AS production
WORKDIR /app
COPY --from=builder /app/node_modules ./node_modules
COPY . .
EXPOSE 3000
CMD ["node", "server.js"]
"#,
    );
    node_project(&ctx);
    let t = "tour-node:1.0";
    build_ok(&b, ctx.path(), &["-t", t]);
    let out = b.ok_args(["run", "--rm", "--network", "none", t]).stdout;
    assert_eq!(out.trim(), "two days is 172800000 ms");
    let s = saved(&b, t);
    assert!(s.fs.has("/app/node_modules/ms/package.json"), "npm ci installed ms");
    assert!(!s.fs.has("/app/node_modules/stale"), ".dockerignore kept node_modules out");
    assert!(!s.fs.has("/app/node_modules/.package-lock.json") || s.fs.has("/app/node_modules/ms/index.js"));
    let c = &s.config["config"];
    assert_eq!(strings(&c["Cmd"]), vec!["node", "server.js"]);
    assert!(c["ExposedPorts"].get("3000/tcp").is_some());
    // The builder stage is not part of the result: only the production stage's layers.
    let hist: Vec<String> = s.config["history"]
        .as_array()
        .expect("history")
        .iter()
        .map(|h| h["created_by"].as_str().unwrap_or_default().to_string())
        .collect();
    assert!(!hist.iter().any(|h| h.contains("npm ci")), "{hist:#?}");

    // The "Image Optimization" variant of the tour: same deps stage (cached), USER node.
    let ctx2 = Ctx::new(
        r#"# Multi-stage build example
FROM node:16-alpine AS deps
WORKDIR /app
COPY package*.json ./
RUN npm ci --only=production

FROM node:16-alpine AS runner
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY . .
USER node
CMD ["node", "server.js"]
"#,
    );
    node_project(&ctx2);
    let t2 = "tour-node:optimized";
    let r = build_ok(&b, ctx2.path(), &["-t", t2]);
    assert!(was_cached(&r.stderr, "RUN npm ci --only=production"), "same instructions and files: cached\n{}", r.stderr);
    let out = run_sh(&b, t2, "id -un && node server.js");
    assert_eq!(out, "node\ntwo days is 172800000 ms\n");
}

#[test]
fn slow_tour_build_args() {
    let b = tour_builder(&["library/node:16"]);
    let ctx = Ctx::new(
        r#"# Define build argument
ARG VERSION=latest
ARG ENVIRONMENT=production

# Use build argument
FROM node:${VERSION}
ENV NODE_ENV=${ENVIRONMENT}

# Build with arguments
# docker build --build-arg VERSION=16 --build-arg ENVIRONMENT=staging -t myapp .
"#,
    );
    let t = "tour-args:1.0";
    let r = build_ok(&b, ctx.path(), &["--build-arg", "VERSION=16", "--build-arg", "ENVIRONMENT=staging", "-t", t]);
    assert!(r.stderr.contains("FROM docker.io/library/node:16"), "{}", r.stderr);
    let v = b.inspect(t);
    // ENVIRONMENT is declared before FROM only, so it is not in scope after FROM (Docker's
    // documented ARG scoping): NODE_ENV is empty, exactly as BuildKit builds this Dockerfile.
    let env = strings(&v["Config"]["Env"]);
    assert!(env.iter().any(|e| e == "NODE_ENV="), "{env:?}");
    // The base really is node:16.
    b.pull(&fixture("library/node:16"));
    let base = b.inspect(&fixture("library/node:16"));
    let layers = v["RootFS"]["Layers"].as_array().expect("layers").clone();
    assert_eq!(layers, base["RootFS"]["Layers"].as_array().expect("base layers").clone());
    // With the default VERSION=latest: there is no node:latest fixture, and the error says so.
    let r = build(&b, ctx.path(), &[]).code(1);
    assert!(r.stderr.contains("node:latest"), "{}", r.stderr);
}

#[test]
fn slow_tour_security_practices() {
    let b = tour_builder(&["library/node:16.14.2-alpine"]);
    let api_key = "tour-api-key-5d1e0b";
    // The tour's text, with two adaptations that BuildKit itself needs: the RUN ended with a
    // dangling `&& \` before a comment (a shell syntax error), so a command that uses the key
    // follows; and a secret is mounted 0400 root-owned, so USER nextjs needs uid=1001 to read
    // it (shown below: without it the build fails as BuildKit's would).
    let df = |uid: &str| {
        format!(
            r#"# Use specific versions
FROM node:16.14.2-alpine

# Don't run as root
RUN addgroup -g 1001 -S nodejs
RUN adduser -S nextjs -u 1001
USER nextjs

# Use secrets for sensitive data
RUN --mount=type=secret,id=api_key{uid} \
    API_KEY=$(cat /run/secrets/api_key) && \
    # Use API_KEY here
    test -n "$API_KEY" && echo "key length ${{#API_KEY}}" > /tmp/used-key
"#
        )
    };
    let ctx = Ctx::new(&df(",uid=1001"));
    ctx.file("api_key.txt", api_key);
    let secret = format!("id=api_key,src={}", ctx.path().join("api_key.txt").display());
    let t = "tour-secure:1.0";
    build_ok(&b, ctx.path(), &["--secret", &secret, "-t", t]);
    let out = run_sh(&b, t, "id; cat /tmp/used-key; grep nodejs /etc/group");
    assert!(out.starts_with("uid=1001(nextjs)"), "{out}");
    assert!(out.contains(&format!("key length {}", api_key.len())), "{out}");
    assert!(out.contains("nodejs:x:1001:"), "{out}");
    assert_eq!(b.inspect(t)["Config"]["User"], "nextjs");
    let s = saved(&b, t);
    for (i, l) in s.layers.iter().enumerate() {
        assert!(!contains_bytes(l, api_key.as_bytes()), "layer {i} holds the secret");
    }
    assert!(!s.config.to_string().contains(api_key));
    assert!(!b.ok(&format!("history --no-trunc {t}")).stdout.contains(api_key));

    // As written (no uid=): nextjs cannot read the root-only secret, and the build fails.
    let ctx = Ctx::new(&df(""));
    ctx.file("api_key.txt", api_key);
    let secret = format!("id=api_key,src={}", ctx.path().join("api_key.txt").display());
    let r = build(&b, ctx.path(), &["--secret", &secret]).code(1);
    assert!(r.stderr.contains("Permission denied") || r.stderr.contains("permission denied"), "{}", r.stderr);
    assert!(!r.all().contains(api_key));
}
