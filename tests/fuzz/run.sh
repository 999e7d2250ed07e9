#!/usr/bin/env bash
# run.sh - build the libFuzzer targets (clang, build-fuzz/) and fuzz one or all of them.
# Usage: tests/fuzz/run.sh [TARGET|all] [SECONDS]    (default: all, 300 s per target)
# Env:   KR_FUZZ_JOBS=N     targets fuzzed at once (default 1)
#        KR_FUZZ_BUILD=DIR  the build dir (default <repo>/build-fuzz)
#        extra libFuzzer flags after the two arguments, e.g. -only_ascii=1
# New inputs:  $KR_FUZZ_BUILD/fuzz/corpus/<target>/   (the repo's seeds are only read)
# Crashes:     $KR_FUZZ_BUILD/fuzz/artifacts/<target>/crash-*, leak-*, timeout-*, oom-*
# Exit status: 1 when any target found something.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
fuzz="$root/tests/fuzz"
build=${KR_FUZZ_BUILD:-$root/build-fuzz}
target=${1:-all}
seconds=${2:-300}
shift $(($# < 2 ? $# : 2))
jobs=${KR_FUZZ_JOBS:-1}

targets=()
for f in "$fuzz"/fuzz_*.c; do
	t=$(basename "$f" .c)
	t=${t#fuzz_}
	if [ "$target" = all ] || [ "$target" = "$t" ]; then targets+=("$t"); fi
done
if [ ${#targets[@]} -eq 0 ]; then
	echo "run.sh: no target \"$target\"; have: $(cd "$fuzz" && ls fuzz_*.c | sed 's/fuzz_//;s/\.c$//' | tr '\n' ' ')" >&2
	exit 2
fi

CC=${CC:-clang} cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Debug -DKR_FUZZ=ON >/dev/null
mkdir -p "$build/fuzz"
if ! cmake --build "$build" -j"$(nproc)" --target $(printf 'fuzz_%s ' "${targets[@]}") \
	>"$build/fuzz/build.log" 2>&1; then
	tail -n 40 "$build/fuzz/build.log" >&2
	echo "run.sh: building the fuzz targets failed (log: $build/fuzz/build.log)" >&2
	exit 2
fi

run_one() {
	local t=$1 out="$build/fuzz" dict=() regress=()
	shift # the rest: extra libFuzzer flags
	mkdir -p "$out/corpus/$t" "$out/artifacts/$t"
	[ -f "$fuzz/dict/$t.dict" ] && dict=(-dict="$fuzz/dict/$t.dict")
	[ -d "$fuzz/regressions/$t" ] && regress=("$fuzz/regressions/$t")
	echo "==> fuzz_$t for ${seconds}s (log: $out/$t.log)"
	if ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
		"$build/tests/fuzz_$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
		-max_len=65536 -print_final_stats=1 "${dict[@]}" -artifact_prefix="$out/artifacts/$t/" \
		"$@" "$out/corpus/$t" "$fuzz/corpus/$t" "${regress[@]}" >"$out/$t.log" 2>&1; then
		echo "    fuzz_$t: ok, $(grep -c '' <(ls "$out/corpus/$t")) inputs in $out/corpus/$t"
	else
		echo "    fuzz_$t: FOUND SOMETHING, see $out/$t.log" >&2
		grep -m3 -E 'ERROR|SUMMARY|runtime error' "$out/$t.log" >&2 || true
		find "$out/artifacts/$t" -type f -printf '    artifact: %p\n' >&2
		return 1
	fi
}
export -f run_one
export build fuzz seconds

status=0
if [ "$jobs" -gt 1 ]; then
	printf '%s\n' "${targets[@]}" | xargs -P "$jobs" -I{} bash -c 'run_one "$@"' _ {} "$@" || status=1
else
	for t in "${targets[@]}"; do run_one "$t" "$@" || status=1; done
fi
exit $status
