"""A real MCP client (the official Python SDK, `mcp` from PyPI) for the gateway's MCP tests.

Connects over streamable HTTP with a bearer API key, or launches `docketops mcp --url ... --key ...` over stdio
as an agent host would, then runs the steps it reads as JSON from standard input:

    [{"op": "list_tools"}, {"op": "call", "tool": "scale_workload", "arguments": {...}, "meta": {...}}, ...]

(`meta`, optional, is sent as the call's `params._meta`, e.g. {"traceparent": "00-…-01"}.)

and prints one JSON document: the server's info and each step's result. A failure to connect or a protocol
error is printed as {"error": "..."} (exit status 0), so the test can assert on it.

Usage: mcp_client.py http URL KEY
       mcp_client.py stdio DOCKETOPS_BINARY GATEWAY_URL KEY
"""

import asyncio
import json
import sys

import httpx2
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client


def describe(error: BaseException) -> list[str]:
    """Every leaf exception of an exception group, as 'Type: message'."""
    if isinstance(error, BaseExceptionGroup):
        return [line for inner in error.exceptions for line in describe(inner)]
    return [f"{type(error).__name__}: {error}"]


def dump(model) -> object:
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)


async def run(client: Client, steps: list[dict]) -> dict:
    results = []
    async with client:
        for step in steps:
            if step["op"] == "list_tools":
                listed = await client.list_tools()
                results.append({"tools": [dump(tool) for tool in listed.tools]})
            elif step["op"] == "call":
                try:
                    result = await client.call_tool(step["tool"], step.get("arguments") or {}, meta=step.get("meta"))
                except Exception as error:  # a protocol error (JSON-RPC error response)
                    results.append({"protocol_error": describe(error)})
                    continue
                texts = [block.text for block in result.content if getattr(block, "type", None) == "text"]
                results.append(
                    {
                        "is_error": bool(result.is_error),
                        "text": "\n".join(texts),
                        "structured": result.structured_content,
                    }
                )
            else:
                raise ValueError(f"unknown step {step!r}")
        return {
            "protocol_version": client.protocol_version,
            "server_info": dump(client.server_info) if client.server_info else None,
            "instructions": client.instructions,
            "results": results,
        }


def main() -> None:
    steps = json.load(sys.stdin)
    mode = sys.argv[1]
    if mode == "http":
        url, key = sys.argv[2], sys.argv[3]
        http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=httpx2.Timeout(30, read=300))
        client = Client(streamable_http_client(url, http_client=http))
    elif mode == "stdio":
        binary, url, key = sys.argv[2], sys.argv[3], sys.argv[4]
        client = Client(StdioServerParameters(command=binary, args=["mcp", "--url", url, "--key", key]))
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    try:
        output = asyncio.run(run(client, steps))
    except BaseException as error:  # connection refused, HTTP 401, ...: reported, not raised
        output = {"error": describe(error)}
    json.dump(output, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
