# Throughput table: median Gbit/s over repetitions per cell, ok records only.
# Usage: jq -rs -f analysis/jq/throughput_by_mode_size.jq results.jsonl
# Output (TSV, with a header): pattern batch engine flows msg_size_bytes mode reps median_gbps
# (batch: messages per send operation, "1" or a size such as "512K"; records from before the
# batch axis read "1", or "auto" for io_uring streams, as the report labels them)
def median: sort | if length % 2 == 1 then .[length / 2 | floor]
                   else (.[length / 2 - 1] + .[length / 2]) / 2 end;
def batch: .spec.batch // (if .spec.engine == "uring" and .spec.pattern == "stream"
                           then "auto" else "1" end);
["pattern", "batch", "engine", "flows", "msg_size_bytes", "mode", "reps", "median_gbps"],
(map(select(.status == "ok"))
 | group_by([.spec.pattern, batch, .spec.engine, .spec.flows, .spec.msg_size_bytes, .spec.mode])[]
 | [.[0].spec.pattern, (.[0] | batch), .[0].spec.engine, .[0].spec.flows,
    .[0].spec.msg_size_bytes, .[0].spec.mode, length, (map(.throughput.gbps) | median)])
| @tsv
