from pcref_mcp.cli import main

raise SystemExit(main())
