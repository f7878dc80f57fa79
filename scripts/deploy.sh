#!/usr/bin/env bash
# Deploy the CAIO license server to AWS from zero, or bring a deployment up
# to date. Safe to run again at any time: every step checks what is already
# there, and a run that stopped resumes where it stopped.
#
#   scripts/deploy.sh [--stack-name NAME] [--region REGION]
#
# Steps:
#   1. build the CLI and the functions (make build, sam build)
#   2. deploy the stack, if it does not exist yet (its activate function
#      refuses to start until step 6 pins the public key)
#   3. initialise s3://<bucket>/caio_licenses.db with the stack's signing
#      secret (read from Secrets Manager, never copied)
#   4. print the public key CAIO builds embed
#   5. certify a server key for the activate function into its secret
#      (a key with a third of its term left is kept)
#   6. deploy again with the public key pinned (and the code just built)
#   7. smoke test: GET /healthz, then a throwaway license activated and
#      deactivated through the API by the CAIO client, which checks the
#      signed answers against the pinned key; the license is revoked after
#
# Environment: AWS_PROFILE / AWS_REGION as for any AWS tool; CAIO_STACK_NAME
# (default caio-licensing); CAIO_PARAMETERS, more "Key=Value" stack
# parameters (SesSender=..., SmtpServer=...); SAM, the sam command.
set -euo pipefail

stack="${CAIO_STACK_NAME:-caio-licensing}"
sam_cmd="${SAM:-sam}"
db_object="caio_licenses.db"
smoke_customer="DEPLOY-SMOKE"

die() {
	printf 'deploy: %s\n' "$*" >&2
	exit 1
}
step() { printf '\n==> %s\n' "$*"; }

while [ $# -gt 0 ]; do
	case "$1" in
	--stack-name) stack="${2:?--stack-name needs a value}"; shift 2 ;;
	--region) AWS_REGION="${2:?--region needs a value}"; AWS_DEFAULT_REGION="$2"; shift 2 ;;
	-h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) printf 'deploy: unknown argument %s (see --help)\n' "$1" >&2; exit 2 ;;
	esac
done

cd "$(dirname "$0")/.."

# The tools, all before anything changes.
need() { command -v "$1" >/dev/null 2>&1 || die "needs $1: $2"; }
need "$sam_cmd" "install the AWS SAM CLI (https://docs.aws.amazon.com/serverless-application-model/latest/developerguide/install-sam-cli.html)"
need go "install Go 1.26 or later"
need make "install make (Debian: apt-get install make)"
need jq "install jq (Debian: apt-get install jq)"
need curl "install curl (Debian: apt-get install curl)"
region="${AWS_REGION:-${AWS_DEFAULT_REGION:-}}"
[ -n "$region" ] || die "no AWS region: pass --region REGION or set AWS_REGION"
# One region for every step: the Go CLI reads AWS_REGION, SAM (botocore)
# AWS_DEFAULT_REGION or the profile, so both are set, and sam is told too.
export AWS_REGION="$region" AWS_DEFAULT_REGION="$region"

cli=bin/manage-licenses
check=bin/license-check

# run NAME CMD...: a step's command; on failure, say which step and how to go on.
run() {
	local what="$1"
	shift
	"$@" || die "$what failed (see above); fix that and run scripts/deploy.sh again: it resumes where it stopped"
}

# outputs: the stack's outputs as JSON, or "" when the stack does not exist.
outputs() {
	local out err
	err=$(mktemp)
	if out=$("$sam_cmd" list stack-outputs --stack-name "$stack" --region "$region" --output json 2>"$err"); then
		rm -f "$err"
		printf '%s' "$out"
		return 0
	fi
	if grep -q "does not exist" "$err"; then
		rm -f "$err"
		return 0
	fi
	cat "$err" >&2
	rm -f "$err"
	die "cannot read stack $stack (credentials, region or permissions?)"
}
output() { jq -r --arg k "$1" '.[] | select(.OutputKey == $k) | .OutputValue' <<<"$stack_outputs"; }

deploy() {
	# shellcheck disable=SC2086 # CAIO_PARAMETERS is a list of Key=Value words
	run "sam deploy" "$sam_cmd" deploy --stack-name "$stack" --region "$region" --resolve-s3 \
		--capabilities CAPABILITY_IAM --no-confirm-changeset --no-fail-on-empty-changeset \
		--parameter-overrides "LicensePublicKey=$1" ${CAIO_PARAMETERS:-}
}

step "1. Building the CLI and the functions"
run "make build" make --no-print-directory build
run "sam build" "$sam_cmd" build

step "2. Stack $stack"
stack_outputs=$(outputs)
if [ -z "$stack_outputs" ]; then
	echo "Stack $stack does not exist: creating it (the API stays closed until its public key is pinned)"
	deploy ""
	stack_outputs=$(outputs)
	[ -n "$stack_outputs" ] || die "stack $stack was deployed but has no outputs"
else
	echo "Stack $stack exists"
fi
bucket=$(output DatabaseBucketName)
secret_arn=$(output LicenseSecretArn)
server_key_arn=$(output ServerKeySecretArn)
api_url=$(output ApiUrl)
for v in bucket secret_arn server_key_arn api_url; do
	[ -n "${!v}" ] || die "stack $stack has no output for $v: is it this project's template?"
done

# The CLI works on the deployed database with the stack's own secret.
export CAIO_LICENSE_DB_PATH="s3://$bucket/$db_object"
export CAIO_LICENSE_SECRET_ARN="$secret_arn"
unset CAIO_LICENSE_SECRET

step "3. Database $CAIO_LICENSE_DB_PATH"
run "init-db" "$cli" init-db

step "4. Public key"
public_key=$(run "public-key" "$cli" public-key)
echo "$public_key"

step "5. Server key for the activate function"
run "certify-server-key" "$cli" certify-server-key --to-secret "$server_key_arn"

step "6. Deploying with the public key pinned"
deploy "$public_key"

step "7. Smoke test through $api_url"
healthy=""
for _ in 1 2 3 4 5 6 7 8 9 10; do
	if curl -fsS --max-time 10 "$api_url/healthz" >/dev/null 2>&1; then
		healthy=yes
		break
	fi
	sleep 3
done
[ -n "$healthy" ] || die "GET $api_url/healthz did not answer 200 in 30 s: the activate function's logs say why"
echo "GET /healthz: ok"
if ! "$cli" --json list-customers | jq -e --arg c "$smoke_customer" 'any(.[]; .id == $c)' >/dev/null; then
	run "add-customer" "$cli" add-customer "$smoke_customer" "Deploy smoke test"
fi
key=$(run "generate-license" "$cli" generate-license "$smoke_customer" trial --expires-days 1 | tail -n 1)
state=$(mktemp -d)
trap 'rm -rf "$state"' EXIT
instance="deploy-smoke-$(date +%s)"
smoke() { "$check" "$1" --server "$api_url" --key "$key" --instance-id "$instance" --state-dir "$state" --public-key "$public_key"; }
smoke_ok=yes
smoke activate || smoke_ok=""
[ -z "$smoke_ok" ] || smoke deactivate || smoke_ok=""
run "revoke-license" "$cli" revoke-license "$key" --reason "deploy smoke test" >/dev/null
[ -n "$smoke_ok" ] || die "the API did not activate a fresh license with answers signed for the pinned key (the smoke license is revoked)"

printf '\nDeployed stack %s.\n  API:        %s\n  Database:   %s\n  Public key: %s (build it into CAIO: CAIO_LICENSE_PUBLIC_KEY)\n' \
	"$stack" "$api_url" "$CAIO_LICENSE_DB_PATH" "$public_key"
printf 'Operators reach this database with:\n  export CAIO_LICENSE_DB_PATH=%s CAIO_LICENSE_SECRET_ARN=%s\n' "$CAIO_LICENSE_DB_PATH" "$secret_arn"
