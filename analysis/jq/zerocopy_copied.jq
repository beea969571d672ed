# Records whose zero-copy completions were (partly) copied by the kernel: copied_fraction > 0.
# On loopback and veth every completion is copied (the kernel copies locally delivered data).
# Usage: jq -r -f analysis/jq/zerocopy_copied.jq results.jsonl
# Output (TSV, no header): mode engine pattern flows msg_size_bytes rep topology copied completions copied_fraction verdict
select(.zerocopy != null and (.zerocopy.copied_fraction // 0) > 0)
| [.spec.mode, .spec.engine, .spec.pattern, .spec.flows, .spec.msg_size_bytes, .spec.rep,
   .spec.topology, .zerocopy.copied, .zerocopy.completions, .zerocopy.copied_fraction,
   .zerocopy.verdict]
| @tsv
