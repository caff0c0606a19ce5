"""A bare hello-world MCP server: the baseline for `server_cold_start` in bench/run.py.

Same SDK (`mcp`'s MCPServer), same interpreter and environment as server.py, one trivial tool,
nothing else: what an MCP server built with this SDK costs at the least, so the benchmark can
say how much callagent's own start-up adds.
"""

from mcp.server.mcpserver import MCPServer

mcp = MCPServer("bare")


@mcp.tool()
def hello(name: str = "world") -> str:
    """Say hello."""
    return f"Hello, {name}!"


if __name__ == "__main__":
    mcp.run("stdio")
