"""test_source_audit.py - security properties of the controller's C sources, checked by reading them.

- Files: the binary writes no file at all (only reads kubeconfig, service-account token and
  CA, --password-file, manifests), so there are no file permissions to get wrong. Any call
  that could create or change a file fails this test until it is reviewed (and the mode
  it creates files with is tested) and added to WRITES_ALLOWED.
- Output: raw key bytes (kr_secret_data / kr_secret_mut) never reach a log call, an error
  message or a print, except `keyrotator keys create` (cli/keys_write.c), which prints the
  new key once by contract (DESIGN.md section 3).
- TLS: only the Kubernetes client's curl setup touches certificate verification, and it
  turns peer verification off only for the kubeconfig's insecure-skip-tls-verify.
- Comparison: secret bytes are compared with kr_secret_memeq / kr_secret_equal
  (constant time), never memcmp/strcmp/strncmp/bcmp/strcasecmp against another
  non-constant value. Comparing with a string literal (a public constant) is allowed.

Environment: KR_ROOT (the repository; default two levels up).
"""
import functools
import os
import re
import unittest
from pathlib import Path

ROOT = Path(os.environ.get("KR_ROOT", Path(__file__).resolve().parents[2]))
SRC = ROOT / "controller"

# (file relative to controller/, function called): reviewed exceptions, with the reason.
WRITES_ALLOWED = {}
SECRET_OUTPUT_ALLOWED = {
    ("cli/keys_write.c", "fwrite"): "keys create prints the new key once, to stdout (DESIGN.md 3)",
}

COMPARE_ALLOWED = {
    ("keystore/list.c", "memcmp"): "de-duplicates members read from Valkey while listing; "
    "no presented key is checked, so the timing tells an attacker nothing (reported to the "
    "keystore owner: kr_secret_memeq would make the rule hold without exceptions)",
}

FILE_CHANGERS = ("creat", "mkstemp", "mkstemps", "mkdtemp", "tmpfile", "rename", "renameat",
                 "unlink", "unlinkat", "remove", "mkdir", "mkdirat", "chmod", "fchmod",
                 "chown", "truncate", "ftruncate", "symlink", "link", "freopen", "mkfifo")
WRITE_FLAGS = re.compile(r"O_(WRONLY|RDWR|CREAT|TRUNC|APPEND|TMPFILE)")
OUTPUT_SINKS = ("printf", "fprintf", "dprintf", "vprintf", "vfprintf", "puts", "fputs",
                "fwrite", "write", "perror", "KR_LOG", "kr_log_write", "kr_error_set",
                "syslog")
COMPARES = ("memcmp", "strcmp", "strncmp", "bcmp", "strcasecmp", "strncasecmp")
SECRET_BYTES = re.compile(r"\bkr_secret_(data|mut)\s*\(")


def strip_comments(text, keep_literals=False):
    """C comments blanked out, and the contents of string literals too unless
    keep_literals (lengths kept either way)."""
    out, i, n = [], 0, len(text)
    while i < n:
        if text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text[i] in "\"'":
            q, j = text[i], i + 1
            while j < n and text[j] != q:
                j += 2 if text[j] == "\\" else 1
            body = text[i + 1:j] if keep_literals else "S" * (j - i - 1)
            out.append(q + body + q)  # a literal stays recognisable
            i = j + 1
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def calls(text, names):
    """(name, argument text, line) of every call to one of `names` (parentheses matched)."""
    pat = re.compile(r"(?<![\w.>])(%s)\s*\(" % "|".join(map(re.escape, names)))
    for m in pat.finditer(text):
        depth, j = 1, m.end()
        while j < len(text) and depth:
            depth += {"(": 1, ")": -1}.get(text[j], 0)
            j += 1
        yield m.group(1), text[m.end():j - 1], text.count("\n", 0, m.start()) + 1


@functools.lru_cache(maxsize=None)
def sources():
    return list(_sources())


def _sources():
    files = sorted(SRC.rglob("*.c")) + sorted(SRC.rglob("*.h"))
    for f in files:
        raw = f.read_text(errors="replace")
        yield f.relative_to(SRC).as_posix(), strip_comments(raw, True), strip_comments(raw)


class TestSourceAudit(unittest.TestCase):
    def test_sources_found(self):
        self.assertGreater(len(list(sources())), 30)

    def test_the_binary_writes_no_files(self):
        bad = []
        for rel, lit, text in sources():
            for name, args, line in calls(text, FILE_CHANGERS):
                if (rel, name) not in WRITES_ALLOWED:
                    bad.append(f"controller/{rel}:{line}: {name}()")
            for name, args, line in calls(text, ("open", "openat")):
                if WRITE_FLAGS.search(args) and (rel, name) not in WRITES_ALLOWED:
                    bad.append(f"controller/{rel}:{line}: {name}() with write flags")
            for name, args, line in calls(lit, ("fopen", "fdopen")):
                mode = re.search(r',\s*"([^"]*)"\s*$', args)
                if (not mode or not mode.group(1).startswith("r") or "+" in mode.group(1)) \
                        and (rel, name) not in WRITES_ALLOWED:
                    bad.append(f"controller/{rel}:{line}: {name}({args.strip()})")
        self.assertEqual(bad, [], "file writes need a review of their permissions (0600 for "
                         "anything holding a key) and an entry in WRITES_ALLOWED")

    def test_open_calls_are_read_only(self):
        # The reads that exist today, so the test above is known to see them.
        reads = [(rel, name) for rel, lit, text in sources()
                 for name, args, line in calls(lit, ("fopen", "open"))]
        self.assertIn(("kube/incluster.c", "open"), reads)
        self.assertIn(("cli/keys_store.c", "fopen"), reads)

    def test_secret_bytes_never_logged_or_printed(self):
        bad = []
        for rel, lit, text in sources():
            for name, args, line in calls(text, OUTPUT_SINKS):
                if SECRET_BYTES.search(args) and (rel, name) not in SECRET_OUTPUT_ALLOWED:
                    bad.append(f"controller/{rel}:{line}: {name}(... kr_secret_data ...)")
        self.assertEqual(bad, [])

    def test_secrets_compared_in_constant_time(self):
        bad = []
        for rel, lit, text in sources():
            for name, args, line in calls(text, COMPARES):
                if SECRET_BYTES.search(args) and '"' not in args and \
                        (rel, name) not in COMPARE_ALLOWED:
                    bad.append(f"controller/{rel}:{line}: {name}() on secret bytes; use "
                               "kr_secret_memeq / kr_secret_equal")
        self.assertEqual(bad, [])

    def test_tls_verification_is_turned_off_only_by_the_kubeconfig(self):
        # curl verifies peer and host by default; only kube/curl.c may change that (for
        # insecure-skip-tls-verify, and for tls-server-name, which it checks itself).
        places = sorted({rel for rel, lit, text in sources()
                         if re.search(r"CURLOPT_SSL_VERIFY(PEER|HOST)|CURLOPT_SSL_CTX_FUNCTION",
                                      text)})
        self.assertEqual(places, ["kube/curl.c"])
        text = dict((rel, t) for rel, _, t in sources())["kube/curl.c"]
        self.assertRegex(text, r"insecure_skip_tls_verify\)?\s*\{?\s*\n?\s*KR_KUBE_SET\(curl, "
                         r"CURLOPT_SSL_VERIFYPEER, 0L\)")
        self.assertEqual(text.count("CURLOPT_SSL_VERIFYPEER"), 1)

    def test_the_audit_catches_what_it_should(self):
        sample = strip_comments(
            '/* fopen(p, "w") in a comment */\n'
            'f = fopen(path, "w");\n'
            'fd = open(p, O_WRONLY | O_CREAT, 0600);\n'
            'fd = open(p, O_RDONLY);\n'
            'KR_LOG(KR_LOG_INFO, &c, "key %s", kr_secret_data(k));\n'
            'if (!memcmp(kr_secret_data(a), kr_secret_data(b), n)) x();\n'
            'if (!strcmp(kr_secret_data(a), "-")) y();\n')
        self.assertEqual([c[0] for c in calls(sample, ("fopen",))], ["fopen"])
        self.assertEqual([bool(WRITE_FLAGS.search(a)) for _, a, _ in calls(sample, ("open",))],
                         [True, False])
        [(name, args, line)] = list(calls(sample, ("KR_LOG",)))
        self.assertTrue(SECRET_BYTES.search(args))
        self.assertEqual(line, 5)
        cmp = [('"' not in a) for _, a, _ in calls(sample, COMPARES)]
        self.assertEqual(cmp, [True, False])


if __name__ == "__main__":
    unittest.main()
