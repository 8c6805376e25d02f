"""The team deployment recipe, runnable here: PostgreSQL, N stateless replicas and nginx on loopback.

``python -m deploy up`` (or ``deploy/start.sh``) starts it all and prints the URL; ``--team`` runs the
replicas in team mode against one stand-in identity provider (:mod:`deploy.team`), as a team deploys
them. The end-to-end and fault tests (tests/e2e/test_scale.py) and the benchmark (bench/scale.py)
start the same stack, in team mode, through :class:`deploy.stack.Stack`.
"""
