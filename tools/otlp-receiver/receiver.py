"""An OTLP/HTTP trace receiver for the tests, on the official protobuf definitions (PyPI `opentelemetry-proto`).

It accepts what a collector's OTLP/HTTP port accepts for traces: POST /v1/traces with an
`application/x-protobuf` body (optionally gzip-encoded) holding an ExportTraceServiceRequest, answered with an
ExportTraceServiceResponse. A body that is not one is refused with 400, as a collector would, and counted.
The spans received are served back as JSON for the test to assert on:

    GET /spans -> {"requests": N, "refused": N, "duplicate_attributes": [...], "spans": [{"trace_id",
                   "trace_state", "span_id", "parent_span_id", "name", "kind", "status", "start_time_unix_nano",
                   "end_time_unix_nano", "attributes": {...}, "resource": {...}, "scope": "..."}]}

OTLP wants an attribute key once per span; a span that repeats one is listed in "duplicate_attributes" (its
name and the key), since the attributes are served as a JSON object, where only one value would show.

Usage: receiver.py PORT_FILE [CERT KEY]
  listens on 127.0.0.1, an ephemeral port, written to PORT_FILE once listening; with CERT and KEY (PEM) it speaks
  HTTPS, as a collector behind TLS does.
"""

import gzip
import json
import os
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

lock = threading.Lock()
received = {"requests": 0, "refused": 0, "duplicate_attributes": [], "spans": []}


def any_value(value):
    """An OTLP AnyValue as plain JSON."""
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [any_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in value.kvlist_value.values}
    if kind == "bytes_value":
        return value.bytes_value.hex()
    return getattr(value, kind) if kind else None


def attributes(pairs):
    return {kv.key: any_value(kv.value) for kv in pairs}


def spans_of(request):
    for resource_spans in request.resource_spans:
        resource = attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                keys = [kv.key for kv in span.attributes]
                for key in sorted({k for k in keys if keys.count(k) > 1}):
                    received["duplicate_attributes"].append({"span": span.name, "key": key})
                yield {
                    "trace_id": span.trace_id.hex(),
                    "trace_state": span.trace_state,
                    "span_id": span.span_id.hex(),
                    "parent_span_id": span.parent_span_id.hex(),
                    "name": span.name,
                    "kind": Span.SpanKind.Name(span.kind),
                    "status": Status.StatusCode.Name(span.status.code),
                    "start_time_unix_nano": span.start_time_unix_nano,
                    "end_time_unix_nano": span.end_time_unix_nano,
                    "attributes": attributes(span.attributes),
                    "resource": resource,
                    "scope": scope_spans.scope.name,
                }


class Handler(BaseHTTPRequestHandler):
    def answer(self, status, content_type, body):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def refuse(self, message):
        with lock:
            received["refused"] += 1
        self.answer(400, "text/plain", message.encode())

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.path != "/v1/traces":
            return self.answer(404, "text/plain", b"only /v1/traces")
        if self.headers.get("Content-Type", "").split(";")[0].strip() != "application/x-protobuf":
            return self.refuse("Content-Type must be application/x-protobuf")
        if self.headers.get("Content-Encoding", "") == "gzip":
            body = gzip.decompress(body)
        request = ExportTraceServiceRequest()
        try:
            request.ParseFromString(body)
        except DecodeError as error:
            return self.refuse(f"not an ExportTraceServiceRequest: {error}")
        with lock:
            received["requests"] += 1
            received["spans"].extend(spans_of(request))
        self.answer(200, "application/x-protobuf", ExportTraceServiceResponse().SerializeToString())

    def do_GET(self):
        if self.path != "/spans":
            return self.answer(404, "text/plain", b"only /spans")
        with lock:
            body = json.dumps(received).encode()
        self.answer(200, "application/json", body)

    def log_message(self, *args):
        pass


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if len(sys.argv) == 4:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(sys.argv[2], sys.argv[3])
        server.socket = context.wrap_socket(server.socket, server_side=True)
    with open(sys.argv[1] + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    os.replace(sys.argv[1] + ".tmp", sys.argv[1])
    server.serve_forever()


if __name__ == "__main__":
    main()
