#!/usr/bin/env bash
# Issue 2's performance target measured side by side: the durable append benchmark
# (BenchmarkAppend/always/p8/w64/recycled: flush policy always, 8 partitions, 1 KiB records in
# 16 KiB batches, concurrent writers, a broker's steady state) alternated with two references on the
# same file system, ROUNDS times:
#   - "dd new": the issue's `dd if=/dev/zero bs=1M count=1024 conv=fdatasync`, to a new file;
#   - "dd over": the same dd again over that file (conv=notrunc) after dropping its pages from the
#     page cache (GNU dd's oflag=nocache idiom): writes to blocks already allocated, as a recycled
#     segment's appends are;
#   - "model": BenchmarkGroupCommitModel/over/p8/w64, the same writers and group commit over
#     pre-written files with no log around them: what Log's own work costs.
#
# Why both, and why alternate: on the VMs we measure on (ext4 mounted with discard, on a virtio disk
# with a write-back cache), a write to a new file runs at 0.3-0.6 or 1.3-2.5 GB/s depending on the
# host's state of the blocks it gets, which changes within minutes, while a write over allocated
# blocks runs at 2.5-3.1 GB/s (docs/benchmarks.md, session 13). Pairs taken seconds apart compare
# like with like; every pair is printed, then the medians.
#
# Usage: segment/bench_vs_dd.sh   (from the repository root; `make bench-durable`)
#   ROUNDS=6      pairs to run
#   BENCHTIME=2s  -benchtime of each append run
#   DIR=$TMPDIR   file system to measure (dd's file and the benchmark's b.TempDir)
set -euo pipefail

rounds=${ROUNDS:-6}
benchtime=${BENCHTIME:-2s}
dir=${DIR:-${TMPDIR:-/tmp}}
go=${GO:-go}

work=$(mktemp -d "$dir/sediment-bench-dd.XXXXXX")
trap 'rm -rf "$work"' EXIT
"$go" test -c -o "$work/segment.test" ./segment

# mbs prints the MB/s of dd's summary line (from its byte count and seconds, so that dd's own
# unit, MB/s or GB/s, does not matter).
mbs() { awk -v line="$1" 'BEGIN { n = split(line, f, " "); printf "%.0f\n", f[1] / f[n-3] / 1e6 }'; }

# dd_pair runs both references and prints "new over" in MB/s.
dd_pair() {
	local new over
	new=$(dd if=/dev/zero of="$work/dd" bs=1M count=1024 conv=fdatasync 2>&1 | tail -1)
	dd of="$work/dd" oflag=nocache conv=notrunc,fdatasync count=0 status=none
	over=$(dd if=/dev/zero of="$work/dd" bs=1M count=1024 conv=notrunc,fdatasync 2>&1 | tail -1)
	rm -f "$work/dd"
	echo "$(mbs "$new") $(mbs "$over")"
}

# append_run runs the append benchmark and the model once each and prints
# "append-MB/s allocs/op model-MB/s".
append_run() {
	(cd segment && TMPDIR="$work" "$work/segment.test" -test.run '^$' \
		-test.bench 'Append/always/p8/w64/recycled$|GroupCommitModel/over/p8/w64$' -test.benchtime "$benchtime" -test.benchmem) |
		awk '/^Benchmark/ { for (i = 1; i <= NF; i++) { if ($(i+1) == "MB/s") v = $i; if ($(i+1) == "allocs/op") al = $i } }
		     /^BenchmarkAppend/ { app = v } /^BenchmarkGroupCommitModel/ { model = v }
		     END { if (app == "" || model == "") exit 1; print app, al, model }'
}

ratio() { awk -v a="$1" -v d="$2" 'BEGIN { printf "%.2f", a / d }'; }
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR+1)/2]; else print (v[NR/2] + v[NR/2+1]) / 2 }'; }
met() { printf '%s\n' "$@" | awk '$1 >= 0.8 { n++ } END { print n + 0 }'; }

printf '%-6s %8s %8s %8s %8s %7s %8s %8s %8s\n' round "dd new" "dd over" model append allocs "a/new" "a/over" "a/model"
news=() overs=() models=() apps=() rnew=() rover=() rmodel=()
for i in $(seq 1 "$rounds"); do
	read -r n o < <(dd_pair)
	read -r a allocs m < <(append_run)
	printf '%-6s %8s %8s %8.0f %8.0f %7s %8s %8s %8s\n' "$i" "$n" "$o" "$m" "$a" "$allocs" "$(ratio "$a" "$n")" "$(ratio "$a" "$o")" "$(ratio "$a" "$m")"
	news+=("$n") overs+=("$o") models+=("$m") apps+=("$a")
	rnew+=("$(ratio "$a" "$n")") rover+=("$(ratio "$a" "$o")") rmodel+=("$(ratio "$a" "$m")")
done

echo "(MB/s; allocs: per appended batch; a/x: append over x in the same round)"
printf 'median MB/s: dd new %.0f, dd over %.0f, model %.0f, append %.0f\n' \
	"$(median "${news[@]}")" "$(median "${overs[@]}")" "$(median "${models[@]}")" "$(median "${apps[@]}")"
for ref in new over model; do
	declare -n rs="r$ref"
	printf 'append / %-6s median of pairs %.2f, pairs >= 0.8: %s of %s\n' "$ref:" "$(median "${rs[@]}")" "$(met "${rs[@]}")" "$rounds"
done
