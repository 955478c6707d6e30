#!/usr/bin/env python3
"""A small OPA REST server on OPA's own Go engine, for DocketOps' tests.

The engine is OPA's `github.com/open-policy-agent/opa/v1/rego`, driven through the `opa-golib-python-bindings`
package (scripts/ensure-opa makes a venv with it). This file is only the HTTP part, written after OPA's
v1/server/server.go (v1DataPost) and v1/server/writer/writer.go:

  POST /v1/data/{path}        {"input": ...} -> {"result": ...}; no "result" when undefined
                              (and a "warning" when the body has no "input" key);
                              "decision_id" with --decision-ids; "provenance" with ?provenance=true
                              (bundle "docketops" at --bundle-revision);
                              400 {"code": "invalid_parameter", ...} for a body that is not a JSON object;
                              500 {"code": "internal_error", "message": "error(s) occurred while evaluating
                              query", "errors": [...]} for an evaluation error.
  POST /v1/batch/data/{path}  {"inputs": {"id": input, ...}} -> {"responses": {"id": {"result": ...}, ...}}
                              (the shape of Enterprise OPA's batch API; one request for a whole test corpus).

One difference from `opa run --server`, because the bindings always evaluate with strict builtin errors: OPA
treats a failing builtin as undefined unless the request says ?strict-builtin-errors=true. Here such a request
is answered exactly as OPA answers it; a request without it that hits a builtin error gets a 500 saying that
this server cannot tell what non-strict OPA would have decided (never a guess).

Usage: server.py [--port N] [--decision-ids] [--bundle-revision REV] POLICY.rego...
Prints "listening on http://127.0.0.1:PORT" on stdout once it accepts requests (port 0: a free port).
"""

import argparse
import json
import re
import sys
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

from opa_bindings import OpaEngine, OpaError

EVALUATION_ERROR = "error(s) occurred while evaluating query"
# The bindings' error text: "file.rego:6: eval_builtin_error: to_number: ..." (a query has no file:row).
ERROR_TEXT = re.compile(r"^(?:(?P<file>.+?):(?P<row>\d+): )?(?P<code>[a-z_]+): (?P<message>.*)$", re.S)


class Evaluator:
    """The loaded policies, and what OPA's data API answers for one path and input."""

    def __init__(self, engine, options):
        self.engine = engine
        self.options = options

    def answer(self, path, request, strict):
        """(HTTP status, response object) for a data request, as OPA's v1DataPost builds it."""
        response = {}
        if self.options.decision_ids:
            response["decision_id"] = str(uuid.uuid4())
        if request.get("input") is None:  # OPA: no "input" key, or null
            response["warning"] = {"code": "api_usage_warning", "message": "'input' key missing from the request"}
        try:
            # The bindings serialize evaluations on one engine; the prepared query is cached per text.
            results = self.engine.eval_query(f"result = {path}", request.get("input"))
        except OpaError as error:
            return 500, evaluation_error(error, strict)
        if results:
            response["result"] = results[0]["result"]
        return 200, response

    def provenance(self):
        provenance = {"version": "opa-golib-python-bindings (OPA v1 rego)"}
        if self.options.bundle_revision is not None:
            provenance["bundles"] = {"docketops": {"revision": self.options.bundle_revision}}
        return provenance


def evaluation_error(error, strict):
    """OPA's 500 for a topdown error: a fixed message, the engine's errors in `errors`."""
    match = ERROR_TEXT.match(error.message)
    detail = {"code": error.code, "message": error.message}
    if match:
        detail = {"code": match["code"], "message": match["message"]}
        if match["file"]:
            detail["location"] = {"file": match["file"], "row": int(match["row"]), "col": 1}
    body = {"code": "internal_error", "message": EVALUATION_ERROR, "errors": [detail]}
    if detail["code"] == "eval_builtin_error" and not strict:
        body["message"] = (
            "opa-rest test server: a builtin failed, and without ?strict-builtin-errors=true OPA would have "
            "evaluated the expression as undefined; these bindings evaluate strictly only, so the answer of a "
            "non-strict OPA is unknown here"
        )
    return body


def data_path(url_path, prefix):
    """The reference `data["a"]["b"]` for /v1/data/a/b (as OPA: each unescaped path segment a string key)."""
    segments = [unquote(part) for part in url_path[len(prefix):].split("/") if part]
    return "data" + "".join(f"[{json.dumps(segment)}]" for segment in segments)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as OPA's Go server
    evaluator = None

    def log_message(self, format, *args):  # noqa: A002 (the base class's name)
        pass

    def do_POST(self):  # noqa: N802 (http.server's name)
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if url.path.startswith("/v1/batch/data"):
            return self.batch(data_path(url.path, "/v1/batch/data"), body, query)
        if url.path == "/v1/data" or url.path.startswith("/v1/data/"):
            return self.data(data_path(url.path, "/v1/data"), body, query)
        self.send(404, {"code": "resource_not_found", "message": f"{url.path} not found"})

    def data(self, path, body, query):
        request = read_request(body)
        if request is None:
            return self.send(400, {"code": "invalid_parameter", "message": "body contains malformed input document"})
        status, response = self.evaluator.answer(path, request, flag(query, "strict-builtin-errors"))
        if status == 200 and flag(query, "provenance"):
            response["provenance"] = self.evaluator.provenance()
        self.send(status, response)

    def batch(self, path, body, query):
        request = read_request(body)
        inputs = request.get("inputs") if request is not None else None
        if not isinstance(inputs, dict):
            return self.send(400, {"code": "invalid_parameter", "message": "body must be {\"inputs\": {id: input}}"})
        strict = flag(query, "strict-builtin-errors")
        responses = {}
        for key, value in inputs.items():
            status, response = self.evaluator.answer(path, {"input": value}, strict)
            if status != 200:
                response["http_status_code"] = str(status)
            responses[key] = response
        self.send(200, {"responses": responses})

    def send(self, status, document):
        payload = (json.dumps(document, ensure_ascii=False) + "\n").encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


def read_request(body):
    """The request object, {} for an empty body (OPA: no input), None when the body is not a JSON object."""
    if not body.strip():
        return {}
    try:
        request = json.loads(body)
    except ValueError:
        return None
    if not isinstance(request, dict):
        return None
    return request


def flag(query, name):
    """OPA's getBoolParam: present with no value, or "true"."""
    values = query.get(name)
    if values is None:
        return False
    return any(value in ("", "true") for value in values)


def load(paths):
    engine = OpaEngine()
    engine.print_handler = lambda message, location: print(f"{location}: {message}", file=sys.stderr)
    for path in paths:
        with open(path, encoding="utf-8") as file:
            engine.add_policy(path, file.read())
    # Compile now, as `opa run` does at start: a policy that does not compile fails here, not at a request.
    engine.eval_query("true = true")
    return engine


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--decision-ids", action="store_true")
    parser.add_argument("--bundle-revision")
    parser.add_argument("policies", nargs="+")
    options = parser.parse_args()
    try:
        engine = load(options.policies)
    except (OSError, OpaError) as error:
        print(f"opa-rest: cannot load the policies: {error}", file=sys.stderr)
        return 1
    Handler.evaluator = Evaluator(engine, options)
    server = ThreadingHTTPServer(("127.0.0.1", options.port), Handler)
    server.daemon_threads = True
    print(f"listening on http://127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
