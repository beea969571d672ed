# Best mode x engine per (pattern, batch, flows, message size) by median Gbit/s, ok records
# only: the contenders of a row sent the same messages per send operation.
# Usage: jq -rs -f analysis/jq/best_mode_per_size.jq results.jsonl
# Output (TSV, with a header): pattern batch flows msg_size_bytes best_mode best_engine median_gbps
def median: sort | if length % 2 == 1 then .[length / 2 | floor]
                   else (.[length / 2 - 1] + .[length / 2]) / 2 end;
def batch: .spec.batch // (if .spec.engine == "uring" and .spec.pattern == "stream"
                           then "auto" else "1" end);
["pattern", "batch", "flows", "msg_size_bytes", "best_mode", "best_engine", "median_gbps"],
(map(select(.status == "ok"))
 | group_by([.spec.pattern, batch, .spec.flows, .spec.msg_size_bytes])[]
 | group_by([.spec.mode, .spec.engine])
 | map({r: .[0], gbps: (map(.throughput.gbps) | median)})
 | max_by(.gbps)
 | [.r.spec.pattern, (.r | batch), .r.spec.flows, .r.spec.msg_size_bytes, .r.spec.mode,
    .r.spec.engine, .gbps])
| @tsv
