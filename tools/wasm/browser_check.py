#!/usr/bin/env python3
"""Opens the web page (build-wasm/web/) in headless Chromium, lets it generate unattended and prints
the result it posts back, as JSON: the generated text, tokens/s, kernel path and memory. With
--expect FILE (t2r-run's output for the same prompt and tokens: the prompt, the text, a newline),
exits 1 unless the page generated the same text. Standard library only.

  build-test/t2r-run -p "In the beginning" -n 40 > want.txt
  tools/wasm/browser_check.py build-wasm/web --prompt "In the beginning" --tokens 40 --expect want.txt
"""
import argparse
import functools
import http.server
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import urllib.parse


class Handler(http.server.SimpleHTTPRequestHandler):
    """Serves the directory; a POST to /result is the page's report."""

    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, ".mjs": "text/javascript",
                      ".wasm": "application/wasm"}

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(204)
        self.end_headers()
        self.server.report = json.loads(body)
        self.server.reported.set()

    def log_message(self, *args):
        pass


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("web_dir")
    parser.add_argument("--prompt", default="In the beginning")
    parser.add_argument("--tokens", type=int, default=40)
    parser.add_argument("--kernels", help="a kernel path (wasm-simd128 or scalar); default: the best")
    parser.add_argument("--expect", help="t2r-run's output (prompt, text, newline) the page must match")
    parser.add_argument("--timeout", type=float, default=120)
    parser.add_argument("--page", default="index.html", help="another page of the directory (bench.html)")
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                        help="a further query parameter for the page (repeatable)")
    args = parser.parse_args()
    browser = shutil.which("chromium")
    if not browser:
        sys.exit("browser_check: chromium is not installed (Debian: apt-get install chromium)")

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             functools.partial(Handler, directory=args.web_dir))
    server.reported = threading.Event()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    query = {"auto": "1", "prompt": args.prompt, "tokens": str(args.tokens), "report": "/result"}
    if args.kernels:
        query["kernels"] = args.kernels
    for param in args.param:
        name, _, value = param.partition("=")
        query[name] = value
    url = f"http://127.0.0.1:{server.server_address[1]}/{args.page}?{urllib.parse.urlencode(query)}"
    with tempfile.TemporaryDirectory() as profile:
        chromium = subprocess.Popen([browser, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                                     f"--user-data-dir={profile}", url],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            reported = server.reported.wait(args.timeout)
        finally:
            chromium.terminate()
            try:
                chromium.wait(10)
            except subprocess.TimeoutExpired:
                chromium.kill()
    server.shutdown()
    if not reported:
        sys.exit(f"browser_check: the page reported nothing within {args.timeout:.0f} s")
    report = server.report
    print(json.dumps(report, ensure_ascii=False))
    if "error" in report:
        sys.exit(f"browser_check: the page failed: {report['error']}")
    if args.expect:
        with open(args.expect, encoding="utf-8") as f:
            expected = f.read()
        if args.prompt + report["text"] + "\n" != expected:
            sys.exit(f"browser_check: the page generated {report['text']!r}; t2r-run printed {expected!r}")
        print("browser_check: the page generated the expected text")


if __name__ == "__main__":
    main()
