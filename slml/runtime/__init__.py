"""The serving runtime: what runs INSIDE every bundle, for every target.

Rules (DESIGN.md, principle 9): import nothing else from slml, nothing from the CLI or
build side, no cloud SDK at import time. Its own requirements are Starlette + uvicorn
plus the model's framework. Every import here is paid on every cold start.
"""
