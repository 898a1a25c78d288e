# Shared by the bench scripts that measure CPU from /proc (sourced, not run).
# ticks PID: utime + stime of one process, in clock ticks (0 if it is gone).
# child_ticks PID: summed ticks of the live ffmpeg children of PID.
# child_pss_kb PID: summed proportional set size (kB) of those children.
# percent TICKS SECONDS: TICKS over SECONDS as % of one core.
hz=$(getconf CLK_TCK)
ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
ffmpeg_children() {
  local pid
  for pid in $(ps -o pid= --ppid "$1" -C ffmpeg 2>/dev/null || true); do
    [ "$(ps -o ppid= -p "$pid" | tr -d ' ')" = "$1" ] && echo "$pid"
  done
}
child_ticks() {
  local sum=0 pid
  for pid in $(ffmpeg_children "$1"); do sum=$((sum + $(ticks "$pid"))); done
  echo "$sum"
}
child_pss_kb() {
  local sum=0 pid kb
  for pid in $(ffmpeg_children "$1"); do
    kb=$(awk '/^Pss:/ { print $2 }' "/proc/$pid/smaps_rollup" 2>/dev/null || echo 0)
    sum=$((sum + ${kb:-0}))
  done
  echo "$sum"
}
percent() { awk -v t="$1" -v hz="$hz" -v d="$2" 'BEGIN { printf "%.2f", 100 * t / hz / d }'; }
