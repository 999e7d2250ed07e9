"""stream.py - the events of a Kubernetes watch response, one JSON object per line."""
import json


def json_lines(response):
    """Yield each non-blank line of an HTTP response (a watch stream) decoded as JSON, until
    the server ends the stream."""
    while True:
        line = response.readline()
        if not line:
            return
        if line.strip():
            yield json.loads(line)
