"""The function app: one blueprint per pipeline stage, registered here and nowhere else.

Every process-wide step runs here, once, while the worker indexes the app, one line each.
"""

import gc

import azure.functions as func

from functions import eventhub_time
from functions.generate import bp as generate_bp
from functions.labels import bp as labels_bp
from functions.publish import bp as publish_bp
from functions.score import bp as score_bp
from functions.score_http import bp as score_http_bp
from shared.scoring import bundled
from shared.settings import get_settings
from shared.telemetry import get_telemetry

# Every setting is parsed now: a bad value refuses the app at indexing with the setting's name (the
# events wait in the hub) instead of failing every batch that reads it.
settings = get_settings()
# The enqueued-time override, on or off per ENQUEUED_TIME_PARSER, before any batch is converted.
eventhub_time.install(settings.fast_enqueued_time)
# With PYTHON_ENABLE_OPENTELEMETRY the host stops forwarding worker logs, so the exporter is set up
# once per process before any function runs, as Microsoft's Functions OpenTelemetry guide does in
# function_app.py; without APPLICATIONINSIGHTS_CONNECTION_STRING this is a no-op.
get_telemetry()
# Warm-up: once the bundled model has loaded (on first use), everything alive then (modules,
# libraries, the model) lives as long as the worker. Frozen, it is left out of the full garbage
# collections that every batch's documents eventually trigger, each of which otherwise walks some
# 120,000 objects (70 ms measured, benchmarks/README.md).
bundled.bundled_model.after_load(gc.freeze)

app = func.FunctionApp()
app.register_functions(generate_bp)
app.register_functions(score_bp)
app.register_functions(publish_bp)
app.register_functions(score_http_bp)
app.register_functions(labels_bp)
