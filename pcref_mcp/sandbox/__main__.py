"""``python -m pcref_mcp.sandbox --port 8780 --db PATH --reset --size 60``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pcref_mcp.sandbox.config import default_db_path
from pcref_mcp.sandbox.server import control_token_path, serve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pcref_mcp.sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8780)
    parser.add_argument("--db", type=Path, default=None, help=f"database file (default {default_db_path()})")
    parser.add_argument("--reset", action="store_true", help="wipe and reseed the database")
    parser.add_argument("--size", type=int, default=60, help="referrals to seed (default 60)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--log-level", default="warning")
    parser.add_argument(
        "--profile", choices=("lenient", "strict"), help="default: PCREF_SANDBOX_PROFILE or lenient"
    )
    args = parser.parse_args(argv)
    db = args.db or default_db_path()
    print(
        f"Partner Center Referrals sandbox on http://{args.host}:{args.port}/v1.0/engagements/referrals (db {db}); "
        f"control routes /_sandbox/* need header X-Sandbox-Control from {control_token_path(db)}",
        file=sys.stderr,
        flush=True,
    )
    try:
        serve(
            args.host,
            args.port,
            db,
            args.reset,
            args.size,
            args.log_level,
            seed=args.seed,
            profile=args.profile,
        )
    except ValueError as err:
        print(err, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
