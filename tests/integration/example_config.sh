#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
# etc/bpflb.ini, the documented example, must stay valid: check it with the
# plugins of this build (devices pointed at lo, which every machine has).
set -euo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:?usage: example_config.sh BUILD_DIR}
TMP=$(mktemp -d /tmp/bpflb-example-XXXXXX)
trap 'rm -rf "$TMP"' EXIT
sed -e "s|^plugin_dir = .*|plugin_dir = $BUILD/plugins-out|" -e 's|^devices = .*|devices = lo|' \
	"$SRC/etc/bpflb.ini" >"$TMP/bpflb.ini"
"$BUILD/core/bpflbd" --config "$TMP/bpflb.ini" --check-config
