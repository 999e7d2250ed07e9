"""test_elf_hardening.py - the keyrotator binary is built hardened, and runs hardened.

ElfHardening reads the built ELF file (Python's struct, no binutils): a position-independent
executable (ET_DYN with an interpreter), immediate binding (DT_BIND_NOW, DF_BIND_NOW or
DF_1_NOW) with a GNU_RELRO segment, i.e. full RELRO; a GNU_STACK segment without execute
permission; __stack_chk_fail imported (-fstack-protector-strong) and some __*_chk function
imported (_FORTIFY_SOURCE). FORTIFY needs the optimiser, so a Debug build, and a sanitizer
build, which leaves it out, skip that one check and say so. A self-check builds a small
program without any of it (when a C compiler is there) and expects every check to fail.

RunningProcess starts `keyrotator run` against the local API server (tests/kubeapi) and reads
/proc/PID of the live process: "Max core file size" is 0 (soft and hard), and its /proc files
belong to root although it runs as another user, which the kernel does only for a process
that is not dumpable (a control process shows its own uid). As root the test runs the
controller as uid 65534 so that the difference shows.

Environment: KR_BINARY (the keyrotator binary), KR_BUILD_TYPE, KR_SANITIZE (ctest sets them).
"""
import glob
import os
import resource
import shutil
import struct
import subprocess
import tempfile
import unittest
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
import krtest
import kubeapi_testlib
from krtest import free_port, wait_for
from krtest.controller import binary

ET_DYN = 3
PT_DYNAMIC, PT_INTERP = 2, 3
PT_GNU_STACK, PT_GNU_RELRO = 0x6474E551, 0x6474E552
PF_X = 1
DT_NULL, DT_BIND_NOW, DT_FLAGS, DT_FLAGS_1 = 0, 24, 30, 0x6FFFFFFB
DF_BIND_NOW, DF_1_NOW, DF_1_PIE = 0x8, 0x1, 0x08000000
SHT_DYNSYM = 11


class Elf:
    """The parts of an ELF file the checks need: type, segments, dynamic tags, imports."""

    def __init__(self, path):
        with open(path, "rb") as f:
            self.data = f.read()
        ident = self.data[:16]
        if ident[:4] != b"\x7fELF":
            raise ValueError("%s is not an ELF file" % path)
        self.is64 = ident[4] == 2
        self.end = "<" if ident[5] == 1 else ">"
        if self.is64:
            (self.type, _, _, _, phoff, shoff, _, _, phentsize, phnum, shentsize, shnum,
             _) = struct.unpack_from(self.end + "HHIQQQIHHHHHH", self.data, 16)
        else:
            (self.type, _, _, _, phoff, shoff, _, _, phentsize, phnum, shentsize, shnum,
             _) = struct.unpack_from(self.end + "HHIIIIIHHHHHH", self.data, 16)
        self.segments = [self._phdr(phoff + i * phentsize) for i in range(phnum)]
        self.sections = [self._shdr(shoff + i * shentsize) for i in range(shnum)]

    def _phdr(self, off):
        """(type, flags, offset, filesz)"""
        if self.is64:
            t, fl, o, _, _, sz, _, _ = struct.unpack_from(self.end + "IIQQQQQQ", self.data, off)
        else:
            t, o, _, _, sz, _, fl, _ = struct.unpack_from(self.end + "IIIIIIII", self.data, off)
        return t, fl, o, sz

    def _shdr(self, off):
        """(type, offset, size, link, entsize)"""
        if self.is64:
            _, t, _, _, o, sz, link, _, _, ent = struct.unpack_from(self.end + "IIQQQQIIQQ",
                                                                    self.data, off)
        else:
            _, t, _, _, o, sz, link, _, _, ent = struct.unpack_from(self.end + "IIIIIIIIII",
                                                                    self.data, off)
        return t, o, sz, link, ent

    def segment(self, ptype):
        return [s for s in self.segments if s[0] == ptype]

    def dynamic(self):
        """{tag: value} of the dynamic section (the last value of a repeated tag)."""
        out = {}
        for _, _, off, size in self.segment(PT_DYNAMIC):
            fmt = self.end + ("qQ" if self.is64 else "iI")
            step = struct.calcsize(fmt)
            for pos in range(off, off + size, step):
                tag, val = struct.unpack_from(fmt, self.data, pos)
                if tag == DT_NULL:
                    break
                out[tag] = val
        return out

    def imports(self):
        """Names of the undefined (imported) symbols of .dynsym."""
        names = set()
        for t, off, size, link, ent in self.sections:
            if t != SHT_DYNSYM or not ent:
                continue
            str_off = self.sections[link][1]
            for pos in range(off, off + size, ent):
                if self.is64:
                    name, _, _, shndx, _, _ = struct.unpack_from(self.end + "IBBHQQ", self.data,
                                                                 pos)
                else:
                    name, _, _, _, _, shndx = struct.unpack_from(self.end + "IIIBBH", self.data,
                                                                 pos)
                if shndx == 0 and name:
                    end = self.data.index(b"\0", str_off + name)
                    names.add(self.data[str_off + name:end].decode())
        return names


def problems(elf):
    """What is missing from `elf`, as short texts; [] for a hardened binary. FORTIFY apart."""
    out = []
    if elf.type != ET_DYN or not elf.segment(PT_INTERP):
        out.append("not PIE (want ET_DYN with an interpreter, got e_type %d)" % elf.type)
    dyn = elf.dynamic()
    now = (DT_BIND_NOW in dyn or dyn.get(DT_FLAGS, 0) & DF_BIND_NOW
           or dyn.get(DT_FLAGS_1, 0) & DF_1_NOW)
    if not now:
        out.append("no BIND_NOW (-Wl,-z,now)")
    if not elf.segment(PT_GNU_RELRO):
        out.append("no GNU_RELRO segment (-Wl,-z,relro)")
    stack = elf.segment(PT_GNU_STACK)
    if not stack or stack[0][1] & PF_X:
        out.append("the stack is executable (-Wl,-z,noexecstack)")
    if "__stack_chk_fail" not in elf.imports():
        out.append("__stack_chk_fail not imported (-fstack-protector-strong)")
    return out


def fortified(elf):
    return sorted(n for n in elf.imports() if n.startswith("__") and n.endswith("_chk")
                  and n != "__stack_chk_fail")


class ElfHardening(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.elf = Elf(binary())

    def test_pie(self):
        self.assertEqual(self.elf.type, ET_DYN)
        self.assertTrue(self.elf.segment(PT_INTERP), "ET_DYN without PT_INTERP is a library")
        self.assertTrue(self.elf.dynamic().get(DT_FLAGS_1, 0) & DF_1_PIE)

    def test_full_relro(self):
        self.assertTrue(self.elf.segment(PT_GNU_RELRO))
        dyn = self.elf.dynamic()
        self.assertTrue(DT_BIND_NOW in dyn or dyn.get(DT_FLAGS, 0) & DF_BIND_NOW
                        or dyn.get(DT_FLAGS_1, 0) & DF_1_NOW, "no BIND_NOW")

    def test_stack_not_executable(self):
        stack = self.elf.segment(PT_GNU_STACK)
        self.assertEqual(len(stack), 1)
        self.assertFalse(stack[0][1] & PF_X)

    def test_stack_protector(self):
        self.assertIn("__stack_chk_fail", self.elf.imports())

    def test_fortify_source(self):
        build_type = os.environ.get("KR_BUILD_TYPE", "")
        if build_type == "Debug":
            self.skipTest("Debug build (-O0): _FORTIFY_SOURCE needs the optimiser and is off")
        if os.environ.get("KR_SANITIZE", "").upper() in ("ON", "1", "TRUE", "YES"):
            self.skipTest("sanitizer build: _FORTIFY_SOURCE is left to ASan there")
        self.assertTrue(fortified(self.elf), "no __*_chk function imported: built without "
                        "-D_FORTIFY_SOURCE=2 and optimisation?")

    def test_nothing_missing(self):
        self.assertEqual(problems(self.elf), [])

    def test_the_checks_catch_an_unhardened_binary(self):
        # build-essential is one of the packages tests/setup.sh installs: no skip without it.
        cc = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
        self.assertIsNotNone(cc, "no C compiler to build the unhardened sample")
        tmp = tempfile.mkdtemp(prefix="kr-elf-")
        try:
            src, out = os.path.join(tmp, "plain.c"), os.path.join(tmp, "plain")
            with open(src, "w") as f:
                f.write("#include <string.h>\nint main(int c, char **v)\n"
                        "{ char b[64]; strcpy(b, v[0]); return b[c]; }\n")
            cmd = [cc, "-O0", "-fno-stack-protector", "-no-pie", "-fno-pie", "-U_FORTIFY_SOURCE",
                   "-Wl,-z,norelro", "-Wl,-z,lazy", "-Wl,-z,execstack", "-o", out, src]
            r = subprocess.run(cmd, capture_output=True, text=True)
            self.assertEqual(r.returncode, 0,
                             "cannot build the unhardened sample: %s" % r.stderr[-300:])
            elf = Elf(out)
            found = problems(elf)
            self.assertEqual(len(found), 5, found)
            self.assertEqual(fortified(elf), [])
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def proc_owner_and_uid(pid):
    """(owner uid of /proc/PID/status, the process's real uid)"""
    path = "/proc/%d/status" % pid
    owner = os.stat(path).st_uid
    with open(path) as f:
        uid = next(int(line.split()[1]) for line in f if line.startswith("Uid:"))
    return owner, uid


def core_limits(pid):
    """("Max core file size" soft, hard) from /proc/PID/limits, as the kernel writes them."""
    with open("/proc/%d/limits" % pid) as f:
        for line in f:
            if line.startswith("Max core file size"):
                return tuple(line[len("Max core file size"):].split()[:2])
    raise AssertionError("no core size in /proc/%d/limits" % pid)


class RunningProcess(unittest.TestCase):
    """`keyrotator run` against the local API server, looked at through /proc."""

    @classmethod
    def setUpClass(cls):
        crds = ["--crd=" + p for p in sorted(glob.glob(os.path.join(REPO, "crds", "*.yaml")))]
        cls.api = kubeapi_testlib.Server(extra=crds)
        cls.tmp = tempfile.mkdtemp(prefix="kr-harden-")
        cls.proc = cls.control = cls.log = None
        try:
            cls._start()
        except BaseException:
            cls.tearDownClass()  # unittest does not when setUpClass fails
            raise

    @classmethod
    def _start(cls):
        # As root, run the controller as nobody: a root process's /proc files are root's
        # anyway, so dumpability would not show.
        cls.user = 65534 if os.geteuid() == 0 else None
        kubeconfig = os.path.join(cls.tmp, "kubeconfig")
        shutil.copyfile(cls.api.kubeconfig, kubeconfig)
        os.chmod(cls.tmp, 0o755)
        os.chmod(kubeconfig, 0o644)
        cls.health = free_port()
        cls.log = open(os.path.join(cls.tmp, "controller.log"), "wb")
        # A copy beside the kubeconfig: the build tree may lie under a directory only root
        # may enter (.ci/run builds in a mktemp -d, mode 0700), and nobody must exec it.
        exe = os.path.join(cls.tmp, "keyrotator")
        shutil.copy2(binary(), exe)
        os.chmod(exe, 0o755)
        cmd = [exe, "run", "--kubeconfig", kubeconfig, "--namespace", "default",
               "--metrics-addr", "127.0.0.1:%d" % free_port(),
               "--health-addr", "127.0.0.1:%d" % cls.health]
        # Both start with core files allowed up to the hard limit: a 0 is then the process's.
        cls.core_hard = resource.getrlimit(resource.RLIMIT_CORE)[1]
        kw = {"user": cls.user, "group": cls.user, "extra_groups": []} if cls.user else {}
        kw["preexec_fn"] = lambda: resource.setrlimit(resource.RLIMIT_CORE,
                                                      (cls.core_hard, cls.core_hard))
        cls.proc = subprocess.Popen(cmd, stdout=cls.log, stderr=cls.log,
                                    stdin=subprocess.DEVNULL, **kw)
        cls.control = subprocess.Popen(["sleep", "60"], **kw)

    @classmethod
    def tearDownClass(cls):
        for p in (cls.proc, cls.control):
            if p and p.poll() is None:
                p.kill()
            if p:
                p.wait()
        if cls.log:
            cls.log.close()
        cls.api.stop()
        krtest.rmtree(cls.tmp)
        krtest.rmtree(cls.api.dir)

    def healthy(self):
        if self.proc.poll() is not None:
            with open(self.log.name, errors="replace") as f:
                raise AssertionError("keyrotator run exited %s:\n%s"
                                     % (self.proc.returncode, f.read()[-2000:]))
        try:
            url = "http://127.0.0.1:%d/healthz" % self.health
            with urllib.request.urlopen(url, timeout=2) as r:
                return r.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def setUp(self):
        wait_for(self.healthy, 30, "keyrotator run /healthz")

    def test_no_core_files(self):
        self.assertEqual(core_limits(self.proc.pid), ("0", "0"))
        if self.core_hard != 0:  # else the control cannot show a difference
            self.assertNotEqual(core_limits(self.control.pid)[0], "0")

    def test_not_dumpable(self):
        owner, uid = proc_owner_and_uid(self.proc.pid)
        self.assertNotEqual(uid, 0, "the controller runs as root: ownership shows nothing")
        self.assertEqual(owner, 0, "/proc/PID of keyrotator run belongs to uid %d: the "
                         "process is dumpable" % owner)
        # The control (same user, not hardened) keeps its own /proc files.
        owner, cuid = proc_owner_and_uid(self.control.pid)
        self.assertEqual((owner, cuid), (uid, uid))


if __name__ == "__main__":
    unittest.main()
