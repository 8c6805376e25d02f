"""pcref-mcp: an MCP server for Microsoft Partner Center Referrals."""

__version__ = "0.1.0"
