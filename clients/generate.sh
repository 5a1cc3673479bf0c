#!/usr/bin/env bash
# Regenerate the clients from the API's OpenAPI document:
#   clients/openapi.json                            the document, as served at /v1/openapi.json
#   clients/python/src/nightshift_client/generated  openapi-python-client's package
#   clients/typescript/src/schema.ts                openapi-typescript's types
# and set both packages' versions to the API's.
#
#   clients/generate.sh                 from `nightshift openapi` (builds the binary)
#   clients/generate.sh --from FILE     from a saved document (a running API's, say)
#   clients/generate.sh --check [--from FILE]
#                                       generate into a scratch directory and fail, showing
#                                       the diff, when the committed files differ (CI runs this
#                                       against the document a running platform serves)
#
# The generators are pinned: openapi-python-client in scripts/lib/services.sh's client venv,
# openapi-typescript in clients/typescript/package-lock.json.
set -euo pipefail
# shellcheck source=scripts/lib/services.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib/services.sh"
cd "$NS_ROOT/clients"

check=0 from=
while (($#)); do
    case $1 in
        --check) check=1 ;;
        --from) from=$2; shift ;;
        *) _ns_err "unknown argument $1"; exit 2 ;;
    esac
    shift
done

ensure_client_tools

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
if [[ -n $from ]]; then
    cp "$from" "$scratch/served.json"
else
    (cd "$NS_ROOT" && cargo run -q -- openapi) >"$scratch/served.json"
fi
# One layout whatever the source (the server sends compact JSON): keys in the server's order.
"$NIGHTSHIFT_CLIENTS_PYTHON" -c '
import json, sys
doc = json.load(open(sys.argv[1]))
with open(sys.argv[2], "w") as out:
    json.dump(doc, out, indent=2, ensure_ascii=False)
    out.write("\n")
print(doc["info"]["version"])' "$scratch/served.json" "$scratch/openapi.json" >"$scratch/version"
version="$(cat "$scratch/version")"

"$(dirname "$NIGHTSHIFT_CLIENTS_PYTHON")/openapi-python-client" generate --path "$scratch/openapi.json" \
    --meta none --config python/generator.yaml --output-path "$scratch/generated" --overwrite >"$scratch/py.log" 2>&1 ||
    { cat "$scratch/py.log" >&2; exit 1; }
# A warning means an operation or schema was left out of the client.
if grep -q "Warning" "$scratch/py.log"; then cat "$scratch/py.log" >&2; exit 1; fi
(cd typescript && npx --no-install openapi-typescript "$scratch/openapi.json" --empty-objects-unknown --output "$scratch/schema.ts" >/dev/null)

sed -E "s/^version = \".*\"/version = \"$version\"/" python/pyproject.toml >"$scratch/pyproject.toml"
sed -E "0,/\"version\": \".*\"/s//\"version\": \"$version\"/" typescript/package.json >"$scratch/package.json"

pairs=(
    "$scratch/openapi.json" openapi.json
    "$scratch/generated" python/src/nightshift_client/generated
    "$scratch/schema.ts" typescript/src/schema.ts
    "$scratch/pyproject.toml" python/pyproject.toml
    "$scratch/package.json" typescript/package.json
)
if ((check)); then
    stale=0
    for ((i = 0; i < ${#pairs[@]}; i += 2)); do
        if ! diff -ru --exclude=__pycache__ "${pairs[i + 1]}" "${pairs[i]}" >"$scratch/diff"; then
            _ns_err "clients/${pairs[i + 1]} is out of date with the API's OpenAPI document; run clients/generate.sh"
            head -n 60 "$scratch/diff" >&2
            stale=1
        fi
    done
    if ((stale)); then exit 1; fi
    _ns_say "the clients match the API's OpenAPI document (version $version)"
else
    for ((i = 0; i < ${#pairs[@]}; i += 2)); do
        rm -rf "${pairs[i + 1]}"
        cp -r "${pairs[i]}" "${pairs[i + 1]}"
    done
    _ns_say "clients regenerated from the API's OpenAPI document (version $version)"
fi
