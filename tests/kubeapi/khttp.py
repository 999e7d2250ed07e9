"""HTTP/1.1 request header parsing for the local API server: the common simple header block
is read without the email package, with http.server's limits and answers."""

import email.parser
import http.client
import re

# A header line parse_request may read without the email package: "Name: value" in printable
# ASCII; any other line (folding, odd bytes, ...) sends the whole block to the email parser.
SIMPLE_HEADER = re.compile(rb"([!-9;-~]+):[ \t]*([\t -~]*?)\r?\n")


class Headers:
    """The request headers as email.message.Message answers them (first value of a name,
    case-insensitive) for the simple header blocks every client sends."""

    def __init__(self, pairs):
        self._pairs = pairs
        self._first = {}
        for k, v in pairs:
            self._first.setdefault(k.lower(), v)

    def get(self, name, failobj=None):
        return self._first.get(name.lower(), failobj)

    def __getitem__(self, name):
        return self._first.get(name.lower())

    def __contains__(self, name):
        return name.lower() in self._first

    def get_all(self, name, failobj=None):
        vals = [v for k, v in self._pairs if k.lower() == name.lower()]
        return vals or failobj

    def keys(self):
        return [k for k, _ in self._pairs]

    def items(self):
        return list(self._pairs)

    def __len__(self):
        return len(self._pairs)

    def __iter__(self):
        return iter(self.keys())


def read_headers(rfile, message_class):
    """http.client.parse_headers, without the email parser for simple header blocks."""
    block = getattr(rfile, "header_lines", None)  # the event loop's whole-block read
    lines = block() if block is not None else None
    if lines is not None:
        return _parse_lines(lines, message_class)
    lines = []
    while True:
        line = rfile.readline(http.client._MAXLINE + 1)
        if len(line) > http.client._MAXLINE:
            raise http.client.LineTooLong("header line")
        lines.append(line)
        if len(lines) > http.client._MAXHEADERS:
            raise http.client.HTTPException("got more than %d headers" %
                                            http.client._MAXHEADERS)
        if line in (b"\r\n", b"\n", b""):
            break
    return _parse_lines(lines, message_class)


def _parse_lines(lines, message_class):
    """The header lines read, the blank line ending them last."""
    pairs = []
    for line in lines[:-1]:
        m = SIMPLE_HEADER.fullmatch(line)
        if m is None:
            text = b"".join(lines).decode("iso-8859-1")
            return email.parser.Parser(_class=message_class).parsestr(text)
        pairs.append((m.group(1).decode("ascii"), m.group(2).decode("ascii")))
    return Headers(pairs)
