# Best mode x engine per (pattern, flows, message size) by median Gbit/s, ok records only.
# Usage: jq -rs -f analysis/jq/best_mode_per_size.jq results.jsonl
# Output (TSV, with a header): pattern flows msg_size_bytes best_mode best_engine median_gbps
def median: sort | if length % 2 == 1 then .[length / 2 | floor]
                   else (.[length / 2 - 1] + .[length / 2]) / 2 end;
["pattern", "flows", "msg_size_bytes", "best_mode", "best_engine", "median_gbps"],
(map(select(.status == "ok"))
 | group_by([.spec.pattern, .spec.flows, .spec.msg_size_bytes])[]
 | group_by([.spec.mode, .spec.engine])
 | map({spec: .[0].spec, gbps: (map(.throughput.gbps) | median)})
 | max_by(.gbps)
 | [.spec.pattern, .spec.flows, .spec.msg_size_bytes, .spec.mode, .spec.engine, .gbps])
| @tsv
