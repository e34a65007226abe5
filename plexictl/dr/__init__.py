"""`plexictl dr`: disaster recovery for an active-passive pair of stacks (docs/dr.md).

- `failover`: the one reviewed edit of a standby's stack file, `dr.role: standby -> active`,
  made like a release edit (plexictl/release/edit.py), and the checklist that keeps the failover
  inside the RTO;
- `status`: the pair's recovery state from AWS (replica lag, recovery points in each region, the
  S3 replication backlog, the last restore tests, the DNS health check) and the cluster.
"""
