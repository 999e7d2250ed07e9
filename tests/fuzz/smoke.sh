#!/usr/bin/env bash
# smoke.sh - CI's short fuzz run: every libFuzzer target for a few seconds, two at once.
# Usage: tests/fuzz/smoke.sh        Env: KR_FUZZ_SECONDS (default 10 per target),
#        KR_FUZZ_JOBS (default 2), KR_FUZZ_BUILD (default <repo>/build-fuzz), CC (clang).
# Builds only the fuzz_* targets (clang, -DKR_FUZZ=ON) and runs ctest -L fuzz.
# Exit 1 when a target finds a crash, leak, timeout or OOM (each artifact's path printed);
# exit 0 with "fuzz smoke skipped: <why>" when no clang with libFuzzer is installed.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cc=${CC:-clang}

# libFuzzer is clang's runtime (Debian: clang + libclang-rt-dev); -fsanitize=fuzzer links it.
kr_fuzz_toolchain() {
	local dir rc=0
	if ! command -v "$cc" >/dev/null 2>&1; then
		echo "no $cc on PATH (Debian packages clang libclang-rt-dev)"
		return 1
	fi
	dir=$(mktemp -d)
	printf '%s\n' '#include <stddef.h>' '#include <stdint.h>' \
		'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);' \
		'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }' \
		>"$dir/t.c"
	if ! "$cc" -fsanitize=fuzzer,address,undefined "$dir/t.c" -o "$dir/t" >"$dir/log" 2>&1 ||
		! "$dir/t" -runs=1 >>"$dir/log" 2>&1; then
		echo "$cc cannot build a libFuzzer binary (Debian package libclang-rt-dev?): $(grep -m1 -iE 'error|cannot|not found' "$dir/log" || tail -n1 "$dir/log")"
		rc=1
	fi
	rm -rf "$dir"
	return $rc
}

if ! why=$(kr_fuzz_toolchain); then
	echo "fuzz smoke skipped: $why"
	exit 0
fi
seconds=${KR_FUZZ_SECONDS:-10}
jobs=${KR_FUZZ_JOBS:-2}
build=${KR_FUZZ_BUILD:-$root/build-fuzz}
targets=$(cd "$root/tests/fuzz" && ls fuzz_*.c | sed 's/\.c$//')
echo "==> fuzz smoke: $(echo $targets | wc -w) targets, ${seconds}s each, $jobs at once ($build)"
start=$SECONDS
CC=$cc cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Debug -DKR_FUZZ=ON \
	-DKR_FUZZ_SMOKE_SECONDS="$seconds" >/dev/null
mkdir -p "$build/fuzz"
if ! cmake --build "$build" -j"$(nproc)" --target $targets >"$build/fuzz/build.log" 2>&1; then
	tail -n 40 "$build/fuzz/build.log" >&2
	echo "fuzz smoke: building the fuzz targets failed (log: $build/fuzz/build.log)" >&2
	exit 1
fi
# Fresh artifacts: an old crash file must not be reported again. ctest's fuzz_<target>
# tests (label fuzz, tests/cmake/fuzz.cmake) each run one target for $seconds.
find "$build/fuzz/artifacts" -type f -delete 2>/dev/null || true
status=0
ctest --test-dir "$build" -L fuzz -j"$jobs" --output-on-failure || status=1
found=$(find "$build/fuzz/artifacts" -type f 2>/dev/null | sort)
if [ -n "$found" ]; then
	echo "fuzz smoke: FAILED; reproduce with $build/tests/fuzz_<target> <artifact>:" >&2
	printf '%s\n' "$found" | sed 's/^/  /' >&2
	status=1
fi
echo "fuzz smoke: $([ $status -eq 0 ] && echo ok || echo FAILED) in $((SECONDS - start))s"
exit $status
