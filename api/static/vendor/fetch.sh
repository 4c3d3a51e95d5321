#!/usr/bin/env bash
# Re-fetch the vendored assets (maps, htmx, the API docs) from the npm registry (npm pack verifies each tarball's
# integrity against the registry), copy only the files gridcase serves, and check them against
# SHA256SUMS. Run from anywhere: ./api/static/vendor/fetch.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

fetch() {  # fetch <package@version> <target dir> <file in package>...
  local spec="$1" target="$here/$2"; shift 2
  (cd "$work" && npm pack "$spec" --silent >/dev/null)
  local tgz; tgz="$(ls -t "$work"/*.tgz | head -1)"
  rm -rf "$work/package" && tar xzf "$tgz" -C "$work" && rm "$tgz"
  rm -rf "$target" && mkdir -p "$target"
  for f in "$@"; do
    local to="${f#dist/}"
    mkdir -p "$target/$(dirname "$to")"
    install -m 644 "$work/package/$f" "$target/$to"
  done
}

fetch leaflet@1.9.4 leaflet LICENSE dist/leaflet.js dist/leaflet.css \
  dist/images/layers.png dist/images/layers-2x.png dist/images/marker-icon.png \
  dist/images/marker-icon-2x.png dist/images/marker-shadow.png
fetch leaflet.markercluster@1.5.3 leaflet.markercluster MIT-LICENCE.txt \
  dist/leaflet.markercluster.js dist/MarkerCluster.css dist/MarkerCluster.Default.css
fetch leaflet.heat@0.2.0 leaflet.heat LICENSE dist/leaflet-heat.js
fetch jquery@3.7.1 jquery LICENSE.txt dist/jquery.min.js
# The workstations' pages (htmx) and the API's docs page at /docs (Swagger UI).
fetch htmx.org@2.0.11 htmx LICENSE dist/htmx.min.js
fetch swagger-ui-dist@5.35.0 swagger-ui LICENSE NOTICE swagger-ui-bundle.js swagger-ui.css \
  favicon-32x32.png

cd "$here" && sha256sum -c --quiet SHA256SUMS && echo "vendored assets match SHA256SUMS"
