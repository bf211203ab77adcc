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
