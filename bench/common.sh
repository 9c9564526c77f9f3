# Shared by the bench/*.sh timing scripts (sourced, not run): FULLBATCH (default build/fullbatch)
# picks the program, THREADS (default 2) its threads; `bench key=value ...` prints the images/s of
# the full-batch step alone (1 untimed warm-up step, no other parts).
bench_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
FULLBATCH=${FULLBATCH:-$bench_dir/../build/fullbatch}
threads=${THREADS:-2}
rate() { tail -n 1 | python3 -c 'import json,sys; print(round(json.load(sys.stdin)["images_per_s"], 1))'; }
bench() { "$FULLBATCH" bench impl.threads="$threads" warmup=1 parts=none "$@" | rate; }
