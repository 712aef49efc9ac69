"""The function app: one blueprint per pipeline stage, registered here and nowhere else."""

import azure.functions as func

from functions.generate import bp as generate_bp
from functions.publish import bp as publish_bp
from functions.score import bp as score_bp
from functions.score_http import bp as score_http_bp
from shared.telemetry import get_telemetry

# With PYTHON_ENABLE_OPENTELEMETRY the host stops forwarding worker logs, so the exporter is set up
# once per process before any function runs, as Microsoft's Functions OpenTelemetry guide does in
# function_app.py; without APPLICATIONINSIGHTS_CONNECTION_STRING this is a no-op.
get_telemetry()

app = func.FunctionApp()
app.register_functions(generate_bp)
app.register_functions(score_bp)
app.register_functions(publish_bp)
app.register_functions(score_http_bp)
