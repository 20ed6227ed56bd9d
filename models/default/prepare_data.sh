#!/usr/bin/env bash
# Writes the training text of the default model: the King James Version of the Bible (public
# domain; Debian package bible-kjv, whose program prints it), with verse references removed and
# one verse per line.  Usage: prepare_data.sh OUT.txt
set -euo pipefail
out=${1:?usage: prepare_data.sh OUT.txt}
if ! command -v bible >/dev/null; then
  apt=(apt-get); [ "$(id -u)" -ne 0 ] && apt=(sudo apt-get)
  DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y -q bible-kjv >/dev/null
fi
# "Ge1:1 In the beginning ..." -> "In the beginning ..."
bible -f "Gen1:1-Rev22:21" | sed -E 's/^[1-3]?[A-Za-z]+[0-9]+:[0-9]+ //' > "$out"
echo "wrote $(wc -c < "$out") bytes to $out" >&2
