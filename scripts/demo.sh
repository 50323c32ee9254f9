#!/usr/bin/env bash
# The main job: the live pipeline against the simulated robot. Extra arguments go to
# `lipfault demo` (e.g. --duration 60, --fault camera:black_frame:1.0:5:6).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/bootstrap.sh"
source "$root/scripts/env.sh"
exec "$root/.venv/bin/lipfault" demo "$@"
