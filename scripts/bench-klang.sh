#!/usr/bin/env bash
# Benchmark: stereo 48 kHz noise through the 15-band graphic EQ, klang against sox.
#
#   scripts/bench-klang.sh           quick: 1 minute of audio (memory: 10 s vs 1 min)
#   scripts/bench-klang.sh --full    thorough: 10 minutes (memory: 1 min vs 10 min)
#
# Both tools run the same 15 peaking sections (PulseAudio mbeq's centres, klang's
# band widths in octaves, the same gains) on the same 32-bit float WAV, each on one
# thread (KLANG_BENCH_PIN=1 also pins both to core 0), timed in the same run
# (hyperfine when installed, else /usr/bin/time), as wall and as CPU time. Reports
# the sox/klang ratio, klang's times-real-time end to end (decode, DSP, encode,
# fsync), and klang's peak RSS for a short and a long file (flat = streaming).
# Goals (issue 6): at least 5x faster than sox, 1000x real time on one core; the
# DSP alone is measured by `cargo bench -p klang-dsp`.
#
# CamillaDSP (optional, for the lead): set CAMILLADSP=/path/to/camilladsp (built beside
# the repo, never committed) and the same chain runs through it, WAV file to WAV file
# (WavFile capture, File playback with a WAV header; see the hook below).
#
# Needs: sox, hyperfine and GNU time; installed by `scripts/deps.sh build bench` when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=quick
for arg in "$@"; do
  case "$arg" in
    --full) mode=full ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "bench-klang.sh: unknown argument '$arg' (use --full or nothing)" >&2; exit 2 ;;
  esac
done
if [ "$mode" = full ]; then seconds=600; short=60; runs=3; else seconds=60; short=10; runs=5; fi
rate=48000

scripts/deps.sh build bench
pin=()  # both tools are single-threaded; set KLANG_BENCH_PIN=1 to pin them to core 0
[ "${KLANG_BENCH_PIN:-0}" = 1 ] && command -v taskset >/dev/null && pin=(taskset -c 0)

target_dir=${CARGO_TARGET_DIR:-target}
echo "building klang (release) ..." >&2
cargo build --release -p klang --quiet
klang=$(realpath "$target_dir/release/klang")

work=$(mktemp -d "${TMPDIR:-/tmp}/klang-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT

# mbeq's centres, klang's widths (mean log-distance to the neighbours, in octaves,
# as klang-dsp's graphic::band_q) and a smile curve with every band active.
freqs=(50 100 156 220 311 440 622 880 1250 1750 2500 3500 5000 10000 20000)
gains=(6 5 4 3 2 1 -1 -2 -3 -2 -1 1 2 3 4)
widths=()
for i in "${!freqs[@]}"; do
  n=${#freqs[@]}
  if [ "$i" -eq 0 ]; then lo=${freqs[0]}; hi=${freqs[1]}; div=1
  elif [ "$i" -eq $((n - 1)) ]; then lo=${freqs[n-2]}; hi=${freqs[n-1]}; div=1
  else lo=${freqs[i-1]}; hi=${freqs[i+1]}; div=2; fi
  widths+=("$(awk -v lo="$lo" -v hi="$hi" -v d="$div" 'BEGIN { printf "%.6f", log(hi/lo)/log(2)/d }')")
done

gains_toml=$(IFS=,; echo "${gains[*]}")
cat > "$work/graphic.toml" <<TOML
# 15-band graphic EQ only; everything else neutral.
[graphic_eq]
gains_db = [$gains_toml]
[volume]
max_db = 0.0
TOML
sox_effects=()
for i in "${!freqs[@]}"; do
  sox_effects+=(equalizer "${freqs[i]}" "${widths[i]}o" "${gains[i]}")
done

echo "generating ${seconds} s and ${short} s of stereo ${rate} Hz noise ..." >&2
# Independent white noise per channel at about -15 dBFS RMS: no clipping after +6 dB.
sox -V1 -n -r "$rate" -c 2 -b 32 -e floating-point "$work/long.wav" synth "$seconds" whitenoise vol 0.3
sox -V1 -n -r "$rate" -c 2 -b 32 -e floating-point "$work/short.wav" synth "$short" whitenoise vol 0.3

klang_cmd="${pin[*]} $klang process $work/long.wav $work/klang-out.wav --config $work/graphic.toml"
sox_cmd="${pin[*]} sox -V1 $work/long.wav -b 32 -e floating-point $work/sox-out.wav ${sox_effects[*]}"
names=(klang sox)
cmds=("$klang_cmd" "$sox_cmd")

if [ -n "${CAMILLADSP:-}" ]; then
  # Hook for the CamillaDSP comparison: the same sections, WAV in, WAV out. Written for
  # CamillaDSP 3.x/4.x syntax (WavFile capture, `channels: [..]` pipeline steps); older
  # releases name the sample format FLOAT32LE: set CAMILLADSP_FORMAT=FLOAT32LE.
  {
    echo "devices:"
    echo "  samplerate: $rate"
    echo "  chunksize: 4096"
    echo "  capture: {type: WavFile, filename: \"$work/long.wav\"}"
    echo "  playback: {type: File, channels: 2, filename: \"$work/camilla-out.wav\", format: ${CAMILLADSP_FORMAT:-F32_LE}, wav_header: true}"
    echo "filters:"
    for i in "${!freqs[@]}"; do
      echo "  band$i: {type: Biquad, parameters: {type: Peaking, freq: ${freqs[i]}, gain: ${gains[i]}, bandwidth: ${widths[i]}}}"
    done
    echo "pipeline:"
    names_yaml=$(for i in "${!freqs[@]}"; do printf 'band%s, ' "$i"; done)
    echo "  - {type: Filter, channels: [0, 1], names: [${names_yaml%, }]}"
  } > "$work/camilla.yml"
  "$CAMILLADSP" --check "$work/camilla.yml" >&2 || { echo "bench-klang.sh: CamillaDSP rejects $work/camilla.yml (see above)" >&2; exit 1; }
  names+=(camilladsp)
  cmds+=("${pin[*]} $CAMILLADSP $work/camilla.yml")
fi

# Wall time is what a user waits for (it includes klang's fsync before the atomic
# rename); CPU time (user + system) is the cost on one core, and is less disturbed
# by other load on the machine.
declare -A mean stddev cpu
if command -v hyperfine >/dev/null; then
  hyperfine --style basic --warmup 1 --runs "$runs" --export-json "$work/times.json" \
    "${cmds[@]}" >&2
  for i in "${!names[@]}"; do
    mean[${names[i]}]=$(jq -r ".results[$i].mean" "$work/times.json")
    stddev[${names[i]}]=$(jq -r ".results[$i].stddev // 0" "$work/times.json")
    cpu[${names[i]}]=$(jq -r ".results[$i] | .user + .system" "$work/times.json")
  done
else
  echo "hyperfine not installed; timing each command once with /usr/bin/time" >&2
  for i in "${!names[@]}"; do
    /usr/bin/time -f '%e %U %S' -o "$work/t" bash -c "${cmds[i]}" >/dev/null
    read -r wall user sys < "$work/t"
    mean[${names[i]}]=$wall; stddev[${names[i]}]=0
    cpu[${names[i]}]=$(awk -v u="$user" -v s="$sys" 'BEGIN { print u + s }')
  done
fi

# Peak RSS of klang for the short and the long file.
rss() {
  /usr/bin/time -f %M -o "$work/rss" "$klang" process "$1" "$work/rss-out.wav" --config "$work/graphic.toml" 2>/dev/null
  cat "$work/rss"
}
rss_short=$(rss "$work/short.wav")
rss_long=$(rss "$work/long.wav")

echo
echo "klang benchmark ($mode): ${seconds} s of stereo ${rate} Hz float noise, 15-band graphic EQ, one core"
printf '  %-11s %18s %22s\n' "" "wall" "CPU (user+sys)"
for n in "${names[@]}"; do
  awk -v n="$n" -v m="${mean[$n]}" -v s="${stddev[$n]}" -v c="${cpu[$n]}" -v a="$seconds" \
    'BEGIN { printf "  %-11s %7.3f s +- %.3f  %6.0fx RT   %7.3f s  %6.0fx RT\n", n, m, s, a / m, c, a / c }'
done
awk -v k="${mean[klang]}" -v s="${mean[sox]}" -v kc="${cpu[klang]}" -v sc="${cpu[sox]}" \
  'BEGIN { printf "  sox / klang: %.1fx wall, %.1fx CPU (goal: at least 5x)\n", s / k, sc / kc }'
if [ -n "${mean[camilladsp]:-}" ]; then
  awk -v k="${mean[klang]}" -v c="${mean[camilladsp]}" -v kc="${cpu[klang]}" -v cc="${cpu[camilladsp]}" \
    'BEGIN { printf "  camilladsp / klang: %.1fx wall, %.1fx CPU\n", c / k, cc / kc }'
fi
awk -v k="${mean[klang]}" -v kc="${cpu[klang]}" -v a="$seconds" \
  'BEGIN { r = a / kc; printf "  klang end to end with file I/O: %.0fx real time wall, %.0fx on CPU (goal: at least 1000x) %s\n", a / k, r, (r >= 1000 ? "ok" : "below goal") }'
awk -v s="$rss_short" -v l="$rss_long" -v a="$short" -v b="$seconds" \
  'BEGIN { printf "  klang peak RSS: %.1f MiB for %d s, %.1f MiB for %d s (ratio %.2f; flat = streaming)\n", s/1024, a, l/1024, b, l/s }'
