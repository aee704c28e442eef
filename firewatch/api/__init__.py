"""The HTTP API: a thin typed edge over the linkage queue and the engine (`firewatch api`).

One APIRouter per resource (health, dispatches, report, detections); auth and the handles to
Redis, the clock and the ingest path are FastAPI dependencies (deps.py, auth.py); handlers only
translate to the same functions the CLI and the workers call. Build the app with
`firewatch.api.app.create_app`.
"""
