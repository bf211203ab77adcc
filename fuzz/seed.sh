#!/bin/sh
# Copies the fixtures into fuzz/seeds/fmp4_reader as the fuzzer's starting corpus, and creates
# fuzz/corpus/fmp4_reader (where the fuzzer keeps what it finds).
# Each seed gets a leading chunking byte: 0 = one chunk, 7 = random chunks.
set -eu
cd "$(dirname "$0")"
mkdir -p seeds/fmp4_reader corpus/fmp4_reader  # the corpus dir must exist for cargo fuzz run
for f in ../fixtures/*.mp4; do
  name=$(basename "$f" .mp4)
  { printf '\000'; cat "$f"; } > "seeds/fmp4_reader/$name-whole"
  { printf '\007'; cat "$f"; } > "seeds/fmp4_reader/$name-chunked"
done
echo "seeds in fuzz/seeds/fmp4_reader: $(ls seeds/fmp4_reader | wc -l) files"

# The Matroska reader's seeds: the fixtures remuxed to Matroska by ffmpeg (clusters at keyframes,
# and ffmpeg's live mode, which cuts clusters by time).
mkdir -p seeds/mkv_reader corpus/mkv_reader
for f in ../fixtures/*.mp4; do
  name=$(basename "$f" .mp4)
  for live in 0 1; do
    out="seeds/mkv_reader/$name-live$live"
    ffmpeg -v error -y -i "$f" -c copy -f matroska -live "$live" -cluster_time_limit 100000 \
      -cluster_size_limit 100000000 "$out.mkv" || continue
    { printf '\000'; cat "$out.mkv"; } > "$out-whole"
    { printf '\007'; cat "$out.mkv"; } > "$out-chunked"
    rm "$out.mkv"
  done
done
echo "seeds in fuzz/seeds/mkv_reader: $(ls seeds/mkv_reader | wc -l) files"
