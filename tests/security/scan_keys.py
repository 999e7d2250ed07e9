#!/usr/bin/env python3
"""scan_keys.py - find raw API keys in files: logs, events, status, metrics, test output.

Two ways to recognise a key, used together or alone:
  - known keys: each raw key given is searched for verbatim and base64-encoded (as a
    Secret's `data` holds it);
  - the key format (controller/keystore/keystore.h): prefix [a-z0-9_]{0,16} + base62 body
    of a length some byte count 16..64 gives + 6 base62 digits of the CRC-32 of the rest.
    The checksum makes a chance match about 1 in 4e9 per candidate, so any hit is real.
    A key is seen when it ends a run of [A-Za-z0-9_] or is followed by "_" (as in logs,
    JSON, YAML, env files, URLs and metrics).

Findings never print a key: they name the file, line, column, how it was found and the
key id (first 12 hex digits of SHA-256, what status and logs show anyway).

As a module (the soak and end-to-end tests import it):
    import scan_keys
    findings = scan_keys.scan_paths(["/tmp/run"], keys=[raw_key])   # [] when clean
    findings = scan_keys.scan_text(log_text, keys=[raw_key], path="controller.log")
As a command:
    scan_keys.py [--key KEY]... [--keys-file FILE] [--no-format] [--prefix P] PATH...
    (PATH may be a directory, scanned recursively, or - for stdin; keys may also come
    from $KR_SCAN_KEYS, whitespace-separated, so they stay off command lines.)
    Exit 0 clean, 1 findings (one line each), 2 usage.
"""
import argparse
import base64
import bisect
import hashlib
import os
import re
import sys
import zlib
from dataclasses import dataclass

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
MIN_BYTES, MAX_BYTES = 16, 64
MAX_PREFIX = 16
CHECKSUM_LEN = 6
_BASE62 = frozenset(ALPHABET)
_PREFIX_CHARS = frozenset("0123456789abcdefghijklmnopqrstuvwxyz_")
_RUN = re.compile(r"[A-Za-z0-9_]{28,}")


def body_len(nbytes):
    """Base62 digits of the body for `nbytes` random bytes: smallest n with 62^n >= 256^b."""
    if not MIN_BYTES <= nbytes <= MAX_BYTES:
        return 0
    n, cap = 0, 1
    while cap < 256 ** nbytes:
        cap *= 62
        n += 1
    return n


BODY_LENS = frozenset(body_len(b) for b in range(MIN_BYTES, MAX_BYTES + 1))
MIN_LEN = min(BODY_LENS) + CHECKSUM_LEN
MAX_LEN = max(BODY_LENS) + MAX_PREFIX + CHECKSUM_LEN


def checksum(text):
    """The 6-digit base62 CRC-32 (zlib polynomial) of `text` (str or bytes)."""
    crc = zlib.crc32(text.encode() if isinstance(text, str) else text)
    out = []
    for _ in range(CHECKSUM_LEN):
        out.append(ALPHABET[crc % 62])
        crc //= 62
    return "".join(reversed(out))


def make_key(prefix, random_bytes):
    """The key for given random bytes, as kr_key_from_bytes builds it (tests use this)."""
    blen = body_len(len(random_bytes))
    if not blen or len(prefix) > MAX_PREFIX or not set(prefix) <= _PREFIX_CHARS:
        raise ValueError("bad prefix or byte count")
    num, digits = int.from_bytes(random_bytes, "big"), []
    for _ in range(blen):
        num, rem = divmod(num, 62)
        digits.append(ALPHABET[rem])
    head = prefix + "".join(reversed(digits))
    return head + checksum(head)


def key_id(key):
    """First 12 hex digits of SHA-256 of the key: safe to print."""
    return hashlib.sha256(key.encode() if isinstance(key, str) else key).hexdigest()[:12]


def is_key(text, prefix=None):
    """True when `text` is a whole well-formed key (as kr_key_check; with `prefix`, that one)."""
    n = len(text)
    if not MIN_LEN <= n <= MAX_LEN or not set(text[-CHECKSUM_LEN:]) <= _BASE62:
        return False
    if checksum(text[:-CHECKSUM_LEN]) != text[-CHECKSUM_LEN:]:
        return False
    end = n - CHECKSUM_LEN
    plens = [len(prefix)] if prefix is not None else range(0, MAX_PREFIX + 1)
    for p in plens:
        if p > end or (prefix is not None and text[:p] != prefix):
            continue
        if (end - p) in BODY_LENS and set(text[:p]) <= _PREFIX_CHARS and \
                set(text[p:end]) <= _BASE62:
            return True
    return False


def _b62_value(digits):
    v = 0
    for c in digits:
        v = v * 62 + ALPHABET.index(c)
    return v


def _run_keys(run, prefix):
    """(start, end) of keys inside one maximal run of [A-Za-z0-9_]: each key that ends the
    run or is followed by "_" (a key directly followed by a letter or digit is not seen).
    Per candidate end, one CRC per possible start: ~80 CRCs, not one per split."""
    raw, found, n = run.encode(), [], len(run)
    ends = [n] + [i for i, c in enumerate(run) if c == "_" and i >= MIN_LEN]
    for end in ends:
        if end < MIN_LEN or not set(run[end - CHECKSUM_LEN:end]) <= _BASE62:
            continue
        want, body_end = _b62_value(run[end - CHECKSUM_LEN:end]), end - CHECKSUM_LEN
        for start in range(max(0, end - MAX_LEN), end - MIN_LEN + 1):
            if zlib.crc32(raw[start:body_end]) == want and is_key(run[start:end], prefix):
                found.append((start, end))
                break  # the longest key ending here
    return found


def find_format_keys(text, prefix=None):
    """(start, end) spans in `text` that are keys by format; overlapping spans merged."""
    spans = []
    for m in _RUN.finditer(text):
        for s, e in _run_keys(m.group(0), prefix):
            spans.append((m.start() + s, m.start() + e))
    spans.sort()
    merged = []
    for s, e in spans:
        if merged and s < merged[-1][1]:
            if e > merged[-1][1]:
                merged[-1] = (merged[-1][0], e)
        else:
            merged.append((s, e))
    return merged


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    col: int
    how: str     # "key", "key-base64" (a known key) or "format" (shaped like a key)
    key_id: str  # never the key itself

    def __str__(self):
        return f"{self.path}:{self.line}:{self.col}: raw key found ({self.how}), id {self.key_id}"


def _base64_forms(key):
    """What base64 of a text containing the key always contains, for each of the 3
    alignments of the key in that text: the full 4-character groups made of key bytes."""
    raw, forms = key.encode(), set()
    for shift in (0, 1, 2):
        data = b"\0" * shift + raw
        enc = base64.b64encode(data[: len(data) // 3 * 3]).decode()
        forms.add(enc[4:] if shift else enc)
    return forms


def scan_text(text, keys=(), detect_format=True, prefix=None, path="<text>"):
    """Findings in one text (str, or bytes decoded as latin-1), in order of position."""
    if isinstance(text, bytes):
        text = text.decode("latin-1")
    hits = {}
    for key in keys:
        if not key:
            continue
        for how, needles in (("key", [key]), ("key-base64", _base64_forms(key))):
            for needle in needles:
                for m in re.finditer(re.escape(needle), text):
                    hits.setdefault(m.start(), (how, key_id(key)))
    if detect_format:
        for s, e in find_format_keys(text, prefix):
            if not any(s <= pos < e for pos in hits):
                hits.setdefault(s, ("format", key_id(text[s:e])))
    line_starts = [0] + [m.end() for m in re.finditer("\n", text)]
    out = []
    for pos in sorted(hits):
        line = bisect.bisect_right(line_starts, pos)
        out.append(Finding(path, line, pos - line_starts[line - 1] + 1, *hits[pos]))
    return out


def _files(paths):
    for p in paths:
        if p == "-" or not os.path.isdir(p):
            yield p
            continue
        for dirpath, dirnames, filenames in os.walk(p):
            dirnames.sort()
            for name in sorted(filenames):
                yield os.path.join(dirpath, name)


def scan_paths(paths, keys=(), detect_format=True, prefix=None):
    """Findings in files and directories (recursive); unreadable files raise OSError."""
    out = []
    for f in _files(paths):
        if f == "-":
            data = sys.stdin.buffer.read()
        else:
            with open(f, "rb") as fh:
                data = fh.read()
        out += scan_text(data, keys, detect_format, prefix, f)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description="Find raw API keys in files (never prints them).")
    ap.add_argument("paths", nargs="+", metavar="PATH")
    ap.add_argument("--key", action="append", default=[], help="a raw key to look for")
    ap.add_argument("--keys-file", action="append", default=[],
                    help="a file of raw keys, one a line")
    ap.add_argument("--no-format", action="store_true",
                    help="only the given keys, not every string shaped like a key")
    ap.add_argument("--prefix", help="format detection: only keys with this prefix")
    args = ap.parse_args(argv)
    keys = list(args.key) + os.environ.get("KR_SCAN_KEYS", "").split()
    try:
        for kf in args.keys_file:
            with open(kf) as fh:
                keys += [line.strip() for line in fh if line.strip()]
        findings = scan_paths(args.paths, keys, not args.no_format, args.prefix)
    except OSError as e:
        print(f"scan_keys: {e.filename}: {e.strerror}", file=sys.stderr)
        return 2
    for f in findings:
        print(f)
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
