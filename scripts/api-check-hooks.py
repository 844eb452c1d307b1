"""Schemathesis hooks for scripts/api-check.sh (loaded via SCHEMATHESIS_HOOKS).

POST /v1/events also takes NDJSON (`application/x-ndjson`, described as a
string: one event object per line). Schemathesis has no serializer for that
media type, so its generated strings go on the wire as text, UTF-8 encoded.
"""

import schemathesis

schemathesis.serializer.alias("application/x-ndjson", "text/plain")
