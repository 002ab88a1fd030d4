"""The tour's example application: a tiny Flask service with a health endpoint."""
import sys

from flask import Flask

app = Flask(__name__)


@app.route("/")
def index():
    return "Hello from berth!\n"


@app.route("/health")
def health():
    return "ok\n"


if __name__ == "__main__":
    if "--check" in sys.argv:
        # Used by the demo: prove the image's dependencies import and the app loads.
        print("app OK, flask", __import__("flask").__version__)
        sys.exit(0)
    app.run(host="0.0.0.0", port=5000)
