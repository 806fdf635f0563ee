#!/usr/bin/env bash
# task-spooler as a benchmark runner: queue every line of JOBS_FILE with SLOTS slots, wait for all,
# stop the server. TS_SOCKET and TMPDIR must name this run's own socket and directory (the harness
# sets them) so no other task-spooler queue on the machine is touched.
# Exits 3 if the server died during the run (the harness reports "runner died").
set -u
jobs_file=$1 slots=$2
: "${TS_SOCKET:?set TS_SOCKET to a socket path for this run}" "${TMPDIR:?set TMPDIR}"
tsp -S "$slots"
# The server is the task-spooler process already running in our cgroup: remember it.
server=""
cg=$(sed -n 's/^[0-9]*:memory://p' /proc/self/cgroup)
for p in $(cat "/sys/fs/cgroup/memory$cg/cgroup.procs"); do
  [ "$(cat /proc/$p/comm 2>/dev/null)" = tsp ] && server=$p
done
ids=()
while IFS= read -r line; do
  [ -n "$line" ] && ids+=("$(tsp sh -c "$line")")
done < "$jobs_file"
for id in "${ids[@]}"; do
  tsp -w "$id" >/dev/null 2>&1
done
if [ -n "$server" ] && ! kill -0 "$server" 2>/dev/null; then
  echo "tsp.sh: the task-spooler server (pid $server) died" >&2
  exit 3
fi
tsp -K
