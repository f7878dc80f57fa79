#!/usr/bin/env bash
# The AWS services the functions use, on this machine, for `sam local
# invoke --env-vars infra/env.local.json --docker-network host`: S3
# (versitygw) on 127.0.0.1:7070 and Secrets Manager (kumo) on
# 127.0.0.1:4566, with the database s3://caio-local/caio_licenses.db, its
# signing secret and a certified server key in Secrets Manager, and the
# customer CUST-001 that the sample events name. Runs until Ctrl-C.
#
# State lives in $CAIO_LOCAL_AWS_DIR (default .cache/local-aws, mode 0700):
# the bucket's files, the secrets' values (kumo keeps secrets in memory),
# and public-key, for --parameter-overrides LicensePublicKey=...
set -euo pipefail
cd "$(dirname "$0")/.."

state="${CAIO_LOCAL_AWS_DIR:-.cache/local-aws}"
tools="${CAIO_TEST_TOOLS:-.cache/bin}"
cli=bin/manage-licenses
s3_port=7070
sm_port=4566

die() {
	printf 'local-aws: %s\n' "$*" >&2
	exit 1
}
for tool in versitygw kumo-secretsmanager; do
	[ -x "$tools/$tool" ] || die "$tools/$tool is missing: run 'make local-aws' (it builds what this needs, then runs this)"
done
[ -x "$cli" ] || make --no-print-directory build >/dev/null

# What infra/env.local.json names, for the CLI here and the functions there.
export AWS_ACCESS_KEY_ID=caio-local AWS_SECRET_ACCESS_KEY=caio-local-secret AWS_REGION=us-east-1
export AWS_ENDPOINT_URL_S3="http://127.0.0.1:$s3_port" AWS_ENDPOINT_URL_SECRETS_MANAGER="http://127.0.0.1:$sm_port"
export CAIO_LICENSE_DB_PATH=s3://caio-local/caio_licenses.db CAIO_LICENSE_SECRET_ARN=caio-local/license-secret
export AWS_EC2_METADATA_DISABLED=true CAIO_LICENSE_CACHE_DIR="$state/cache"
unset CAIO_LICENSE_SECRET

mkdir -p "$state/s3/caio-local" "$state/cache"
chmod 700 "$state"
"$tools/versitygw" --access "$AWS_ACCESS_KEY_ID" --secret "$AWS_SECRET_ACCESS_KEY" \
	--port "127.0.0.1:$s3_port" --quiet posix "$state/s3" >"$state/versitygw.log" 2>&1 &
"$tools/kumo-secretsmanager" -host 127.0.0.1 -port "$sm_port" >"$state/kumo.log" 2>&1 &
trap 'kill $(jobs -p) 2>/dev/null || true' EXIT
for port in "$s3_port" "$sm_port"; do
	for _ in $(seq 100); do
		(echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && continue 2
		sleep 0.1
	done
	die "nothing listens on 127.0.0.1:$port (see $state/*.log; is the port taken?)"
done

# put_secret NAME FILE: the value goes through standard input, never argv.
put_secret() {
	{
		printf '{"Name":"%s"' "$1"
		[ ! -s "$2" ] || printf ',"SecretString":"%s"' "$(cat "$2")"
		printf '}'
	} | curl -fsS -o /dev/null -X POST "$AWS_ENDPOINT_URL_SECRETS_MANAGER/" \
		-H 'Content-Type: application/x-amz-json-1.1' -H 'X-Amz-Target: secretsmanager.CreateSecret' \
		-H "Authorization: AWS4-HMAC-SHA256 Credential=$AWS_ACCESS_KEY_ID/20260101/$AWS_REGION/secretsmanager/aws4_request, SignedHeaders=host, Signature=0" \
		--data-binary @- || die "cannot create secret $1 in the Secrets Manager emulator"
}

umask 077
[ -s "$state/license-secret" ] || "$cli" new-secret >"$state/license-secret"
put_secret caio-local/license-secret "$state/license-secret"
"$cli" init-db >/dev/null
"$cli" public-key >"$state/public-key"
if ! "$cli" --json list-customers | grep -q '"id": "CUST-001"'; then
	"$cli" add-customer CUST-001 "Acme Corp" --email ops@acme.example >/dev/null
fi
[ -s "$state/server-key" ] || "$cli" certify-server-key --output "$state/server-key" >/dev/null
put_secret caio-local/server-key "$state/server-key"

cat <<EOF
Local AWS ready: S3 on $AWS_ENDPOINT_URL_S3, Secrets Manager on $AWS_ENDPOINT_URL_SECRETS_MANAGER (Ctrl-C stops both).
In another shell:
  export AWS_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY AWS_REGION=$AWS_REGION
  sam local invoke GenerateFunction -e infra/events/generate/direct.json --env-vars infra/env.local.json --docker-network host
EOF
wait
