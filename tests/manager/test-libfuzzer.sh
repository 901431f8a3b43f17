#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# libFuzzer over the varlink decoder (tests/manager/fuzz-varlink.c), built
# here with clang -fsanitize=fuzzer,address,undefined and run for a bounded
# time (DANAUS_FUZZ_SECONDS, default 30) from the seeds in fuzz-corpus/.
# A crashing input is kept in the build directory as fuzz-varlink-crash-*
# (add it to fuzz-corpus/ as a regression seed). Without clang's libFuzzer
# runtime: 77 (the standalone driver, test control-varlink-fuzz, still runs).
set -euo pipefail
: "${DANAUS_SRC:?}" "${DANAUS_BUILD:?}"
command -v clang >/dev/null || { echo "SKIP: no clang"; exit 77; }
T=$(mktemp -d "${TMPDIR:-/tmp}/danaus-fuzz.XXXXXX")
case "$T" in */danaus-fuzz.*) ;; *) echo "FAIL: bad temporary directory"; exit 1 ;; esac
trap 'rm -rf --one-file-system "$T"' EXIT
printf '#include <stddef.h>\n#include <stdint.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { return 0; }\n' >"$T/probe.c"
if ! clang -fsanitize=fuzzer "$T/probe.c" -o "$T/probe" 2>"$T/probe.log"; then
        cat "$T/probe.log"
        echo "SKIP: clang has no libFuzzer runtime (libclang-rt-14-dev)"
        exit 77
fi
# shellcheck disable=SC2046 # pkg-config prints several words
clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
        -D_GNU_SOURCE -I"$DANAUS_SRC/libdanaus" \
        "$DANAUS_SRC/tests/manager/fuzz-varlink.c" \
        "$DANAUS_SRC/libdanaus/varlink/message.c" "$DANAUS_SRC/libdanaus/varlink/conn.c" \
        $(pkg-config --cflags --libs json-c) -o "$T/fuzz"
mkdir "$T/corpus"
rc=0
"$T/fuzz" -max_total_time="${DANAUS_FUZZ_SECONDS:-30}" -seed=1 -rss_limit_mb=1024 \
        -max_len=2048 -artifact_prefix="$T/" -print_final_stats=1 \
        "$T/corpus" "$DANAUS_SRC/tests/manager/fuzz-corpus" >"$T/fuzz.log" 2>&1 || rc=$?
tail -n 15 "$T/fuzz.log"
if [ $rc != 0 ]; then
        for f in "$T"/crash-* "$T"/leak-* "$T"/timeout-* "$T"/oom-*; do
                [ -e "$f" ] || continue
                cp "$f" "$DANAUS_BUILD/fuzz-varlink-$(basename "$f")"
                echo "kept $DANAUS_BUILD/fuzz-varlink-$(basename "$f"):"
                od -c "$f" | head -20
        done
        echo "FAIL: libFuzzer found a failure (exit $rc)"
        exit 1
fi
echo "libFuzzer: no failure in ${DANAUS_FUZZ_SECONDS:-30} s"
