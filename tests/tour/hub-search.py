#!/usr/bin/env python3
"""A stand-in for Docker Hub's v1 search API (https://index.docker.io/v1/search), for the tour.

Usage: hub-search.py PORT_FILE LOG_FILE
Listens on 127.0.0.1 on a free port, writes the port to PORT_FILE once it accepts connections,
and logs each request's query string to LOG_FILE (one line each).

GET /v1/search?q=TERM&n=N answers what Hub answers (same shape, recorded descriptions and
star counts of a day in 2024): {"num_results", "num_pages", "page", "page_size", "query",
"results": [{"name", "description", "star_count", "is_official", "is_automated"}]}, the
repositories whose name or description contains TERM (case-insensitive), most stars first,
at most N (default 25, at most 100).
"""

import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

# name, description, stars, official
REPOS = [
    ("nginx", "Official build of Nginx.", 20374, True),
    ("nginxinc/nginx-unprivileged", "Unprivileged NGINX Dockerfiles", 158, False),
    ("nginx/nginx-ingress", "NGINX and  NGINX Plus Ingress Controllers for Kubernetes", 98, False),
    ("nginxproxy/nginx-proxy", "Automated nginx proxy for Docker containers using docker-gen", 147, False),
    ("nginx/nginx-prometheus-exporter", "NGINX Prometheus Exporter for NGINX and NGINX Plus", 46, False),
    ("bitnami/nginx", "Bitnami container image for NGINX", 191, False),
    ("ubuntu/nginx", "Nginx, a high-performance reverse proxy & web server. Long-term tracked by Canonical.", 112, False),
    ("rancher/nginx-ingress-controller", "", 11, False),
    ("nginx/unit", "This repository is retired, use the Docker official images: https://hub.docker.com/_/unit", 65, False),
    ("python", "Python is an interpreted, interactive, object-oriented, open-source programming language.", 9871, True),
    ("pypy", "PyPy is a fast, compliant alternative implementation of the Python language.", 384, True),
    ("hylang", "Hy is a Lisp dialect that translates expressions into Python's abstract syntax tree.", 55, True),
    ("circleci/python", "Python is an interpreted, interactive, object-oriented programming language.", 43, False),
    ("bitnami/python", "Bitnami container image for Python", 30, False),
    ("ubuntu/python", "A chiselled Ubuntu rock with the Python runtime", 21, False),
    ("cimg/python", "The CircleCI Python Docker Convenience Image.", 15, False),
    ("ubuntu", "Ubuntu is a Debian-based Linux operating system based on free software.", 17305, True),
    ("ubuntu/squid", "Squid is a caching proxy for the Web. Long-term tracked by Canonical.", 94, False),
    ("ubuntu/bind9", "BIND 9 is a very flexible, full-featured DNS system. Long-term tracked by Canonical.", 98, False),
    ("ubuntu/apache2", "Apache, a secure & extensible open-source HTTP server. Long-term tracked by Canonical.", 78, False),
    ("ubuntu/prometheus", "Prometheus is a systems and service monitoring system. Long-term tracked by Canonical.", 67, False),
    ("ubuntu/mysql", "MySQL open source fast, stable, multi-thread database. Long-term tracked by Canonical.", 64, False),
    ("ubuntu/postgres", "PostgreSQL is an open source object-relational database. Long-term tracked by Canonical.", 39, False),
    ("ubuntu/redis", "Redis, an open source key-value store. Long-term tracked by Canonical.", 23, False),
]


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        url = urlparse(self.path)
        with open(sys.argv[2], "a") as log:
            log.write(f"{url.path}?{url.query}\n")
        if url.path.rstrip("/") != "/v1/search":
            self.reply(404, {"message": "not found"})
            return
        qs = parse_qs(url.query)
        term = qs.get("q", [""])[0]
        try:
            n = max(1, min(100, int(qs.get("n", ["25"])[0])))
        except ValueError:
            self.reply(400, {"message": "invalid n"})
            return
        t = term.lower()
        hits = [r for r in REPOS if t in r[0].lower() or t in r[1].lower()]
        hits.sort(key=lambda r: -r[2])
        results = [
            {"name": name, "description": desc, "star_count": stars, "is_official": official, "is_automated": False}
            for name, desc, stars, official in hits[:n]
        ]
        self.reply(
            200,
            {
                "num_pages": (len(hits) + n - 1) // n,
                "num_results": len(hits),
                "page_size": n,
                "query": term,
                "page": 1,
                "results": results,
            },
        )

    def reply(self, code, doc):
        body = json.dumps(doc).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port_file = sys.argv[1]
    with open(port_file + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    os.replace(port_file + ".tmp", port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
