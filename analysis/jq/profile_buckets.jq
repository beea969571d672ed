# Where each side's CPU went (records with --profile): one line per record and side, every
# bucket's share of the side's sampled time in percent, and the side's ns per byte received.
# Usage: jq -r -f analysis/jq/profile_buckets.jq results.jsonl
# Output (TSV, no header): mode engine batch msg_size_bytes flows rep side ns_per_byte
#   copy_user copy_kernel copy_deferred zerocopy tcp ip_dev io_uring syscall sched softirq app other
select(.status == "ok" and .profile != null)
| . as $r
| ["sender", "receiver"][] as $side
| ($r.profile[$side] // empty) as $p
| [$r.spec.mode, $r.spec.engine, ($r.spec.batch // "1"), $r.spec.msg_size_bytes,
   $r.spec.flows, $r.spec.rep, $side,
   ([$p.buckets[].ns_per_byte // 0] | add)]
  + [$p.buckets[] | .share * 1000 | round / 10]
| @tsv
