#!/bin/bash
# Server CPU per message at equal load with the loadgen that sleeps until 20 µs before each
# send (OLD) against the one that polls the last 200 µs (NEW): interleaved, same seed.
# Each run on a port of its own (the previous server's port may still be taken).
# usage: ab.sh OLD_LOADGEN NEW_LOADGEN SERVER OUTDIR ROUNDS
set -eu
old=$1 new=$2 server=$3 out=$4 rounds=$5
mkdir -p "$out"
port=7300
for r in $(seq 1 "$rounds"); do
  for b in uring epoll; do
    for which in old new; do
      lg=$old; [ $which = new ] && lg=$new
      d="$out/round-$r/$b-$which"; mkdir -p "$d"; port=$((port + 1))
      "$server" --listen 127.0.0.1:$port --cpus 0 --backend $b --stats-json "$d/server.json" > "$d/server.log" 2>&1 &
      spid=$!; sleep 0.5
      "$lg" run --target 127.0.0.1:$port --cpus 1 --server-cpus 0 --size 64 --out "$d" --connections 1000 \
        --rate 20000 --duration 5 --warmup 1 --arrivals poisson --seed $((1000 + r)) > "$d/loadgen.log" 2>&1
      kill -INT $spid; wait $spid || true
      echo "$r $b $which $(grep -o '"cpu_us_per_recv": *[0-9.]*' "$d/server.json" | grep -o '[0-9.]*$')"
    done
  done
done
