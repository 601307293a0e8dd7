"""Drives a model-compose MCP server with the official Python client (PyPI's `mcp`).

    python mcp_client.py http URL         # Streamable HTTP
    python mcp_client.py stdio BIN DIR    # launches `BIN up` in DIR, as Claude Desktop does

Prints one JSON object: what the server said at each step, for the Rust test to check.
"""

import asyncio
import json
import sys

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamablehttp_client


async def session_steps(session):
    said = {}
    init = await session.initialize()
    said["server"] = init.serverInfo.name
    tools = await session.list_tools()
    said["tools"] = [t.model_dump(exclude_none=True, by_alias=True) for t in tools.tools]
    dump = lambda r: r.model_dump(exclude_none=True, by_alias=True)
    said["greet"] = dump(await session.call_tool("greet_user", {"name": "Ann"}))
    said["pixel"] = dump(await session.call_tool("pixel", {}))
    paused = await session.call_tool("approve", {"what": "x"})
    said["paused"] = dump(paused)
    status = json.loads(paused.content[0].text)
    answer = json.dumps({status["interrupt"][0]["id"]: None})
    resumed = await session.call_tool(
        "resume_workflow", {"task_id": status["task_id"], "answer": answer}
    )
    said["resumed"] = dump(resumed)
    return said


async def main():
    mode = sys.argv[1]
    if mode == "http":
        async with streamablehttp_client(sys.argv[2]) as (read, write, _):
            async with ClientSession(read, write) as session:
                said = await session_steps(session)
    else:
        server = StdioServerParameters(command=sys.argv[2], args=["up"], cwd=sys.argv[3])
        async with stdio_client(server) as (read, write):
            async with ClientSession(read, write) as session:
                said = await session_steps(session)
    print(json.dumps(said))


asyncio.run(main())
