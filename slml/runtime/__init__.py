"""The serving runtime: what runs INSIDE every bundle, for every target.

Rules (DESIGN.md, principle 9): import nothing else from slml, nothing from the CLI or
build side, no cloud SDK at import time. The app (app.py) is plain ASGI and the Lambda
adapter imports nothing beyond the stdlib and the model's framework; servers need
uvicorn (and use orjson, uvloop and httptools when installed). Every import here is paid
on every cold start.
"""
