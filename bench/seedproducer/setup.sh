#!/usr/bin/env bash
# Install what the seed's producer needs (bench/seedproducer/requirements.txt:
# discord.py and kafka-python, pinned) into a Python venv in a cache directory
# that later runs reuse, and print the venv's python. Run the producer as
#   "$(bench/seedproducer/setup.sh)" bench/seedproducer/discord_producer.py --help
#
# Usage: bench/seedproducer/setup.sh [--quiet]
# Environment:
#   CORDSTREAM_CACHE  cache root (default ${XDG_CACHE_HOME:-$HOME/.cache}/cordstream)
#   PYTHON            Python 3.9+ used to create the venv (default python3)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${CORDSTREAM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cordstream}
python=${PYTHON:-python3}
quiet=0
for arg in "$@"; do
	case $arg in
	--quiet) quiet=1 ;;
	-h | --help)
		sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	*)
		echo "bench/seedproducer/setup.sh: unknown argument $arg (try --help)" >&2
		exit 2
		;;
	esac
done
say() { if [[ $quiet == 0 ]]; then echo "seed-producer-setup: $*" >&2; fi; }
die() {
	echo "seed-producer-setup: error: $1" >&2
	[[ -n ${2:-} ]] && echo "hint: $2" >&2
	exit 1
}

sum=$(sha256sum "$here/requirements.txt" | cut -c1-16)
venv=$cache/bench-seed-producer-$sum
if [[ -f $venv/.complete && -x $venv/bin/python ]]; then
	say "venv: $venv (cached)"
	echo "$venv/bin/python"
	exit 0
fi
command -v "$python" >/dev/null || die "$python not found" "install Python 3.9 or newer, or set PYTHON"
say "venv: creating $venv with $(grep -v '^#' "$here/requirements.txt" | grep -E '^(discord\.py|kafka-python)=' | xargs)"
mkdir -p "$cache"
rm -rf "$venv"
"$python" -m venv "$venv" || die "could not create a venv with $python" "install the venv module (Debian: apt-get install python3-venv)"
if ! "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt" >&2; then
	rm -rf "$venv"
	die "pip install failed" "check access to the Python package index, then run bench/seedproducer/setup.sh again"
fi
touch "$venv/.complete"
# Venvs of other pinned versions are of no further use.
for old in "$cache"/bench-seed-producer-*; do
	[[ $old != "$venv" && -d $old ]] && rm -rf "$old"
done
echo "$venv/bin/python"
