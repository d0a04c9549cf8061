#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Regenerates every demo and test certificate used by pintls:
#   demo/   three self-signed server certificates for the pin-rotation demo
#   certs/  the test fixture: two CA hierarchies, leaves, impostors, odd
#           cases (forged, v1 intermediate, expired) and one leaf per key type
# All keys are new on every run, so all pins change; rerun the tests after,
# and update the pins that data/policy.example.ini quotes (tests/test-policy.c
# checks them).
#
# Usage: data/make-certs.sh   (from any directory; needs GnuTLS certtool)

set -eu

cd "$(dirname "$0")"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

HOST=(host.test localhost 127.0.0.1)    # names of every "host.test" leaf

# certtool, quiet unless it fails.
ct() {
	certtool --no-text "$@" 2>"$TMP/log" || { cat "$TMP/log" >&2; return 1; }
}

# make_key FILE [certtool key options]   (default: ECDSA P-256)
make_key() {
	local out=$1; shift
	[ $# -gt 0 ] || set -- --key-type=ecdsa --curve=secp256r1
	ct --generate-privkey "$@" --outfile "$out"
}

# sign NAME ISSUER [extra certtool options]
# Issues NAME.pem for NAME.key from the template $TMP/NAME.tmpl.
# ISSUER is the base name of a certificate/key pair, or "self".
sign() {
	local name=$1 issuer=$2; shift 2
	if [ "$issuer" = self ]; then
		set -- --generate-self-signed "$@"
	else
		set -- --generate-certificate --load-ca-certificate "$issuer.pem" \
			--load-ca-privkey "$issuer.key" "$@"
	fi
	ct "$@" --load-privkey "$name.key" --template "$TMP/$name.tmpl" \
		--outfile "$name.pem"
}

# Validity lines for templates; override with DATES="..." before a call.
DATES="expiration_days = 36500"

# make_ca NAME ISSUER CN [extra certtool options]
make_ca() {
	local name=$1 issuer=$2 cn=$3; shift 3
	make_key "$name.key"
	cat >"$TMP/$name.tmpl" <<-EOF
		cn = "$cn"
		ca
		cert_signing_key
		crl_signing_key
		$DATES
	EOF
	sign "$name" "$issuer" "$@"
}

# make_leaf NAME ISSUER DNS-OR-IP...
# A TLS server certificate; CN is the first name unless CN="..." is given.
# KEY=FILE reuses (copies) an existing key; KEYTYPE="..." picks a key type.
make_leaf() {
	local name=$1 issuer=$2; shift 2
	local tmpl="$TMP/$name.tmpl" n
	if [ -n "${KEY:-}" ]; then
		cp "$KEY" "$name.key"
	else
		# shellcheck disable=SC2086 # split into options on purpose
		make_key "$name.key" ${KEYTYPE:-}
	fi
	{
		echo "cn = \"${CN:-$1}\""
		for n in "$@"; do
			case $n in
			*[!0-9.]*) echo "dns_name = \"$n\"" ;;
			*) echo "ip_address = \"$n\"" ;;
			esac
		done
		echo "tls_www_server"
		echo "signing_key"
		case ${KEYTYPE:-} in *=rsa\ *) echo "encryption_key" ;; esac
		echo "$DATES"
	} >"$tmpl"
	sign "$name" "$issuer"
}

# chain OUT CERT...   concatenates NAME.pem files into OUT
chain() {
	local out=$1 n; shift
	for n in "$@"; do cat "$n.pem"; done >"$out"
}

# --- demo/: self-signed, only usable with pinning -------------------------
mkdir -p demo
(
	cd demo
	for i in 1 2 3; do
		CN="pintls demo server $i" make_leaf "demo$i" self localhost 127.0.0.1
		mv "demo$i.pem" "cert$i.pem"
		mv "demo$i.key" "key$i.pem"
	done
)

# --- certs/: test fixture --------------------------------------------------
mkdir -p certs
cd certs

# Hierarchy A (trusted by the tests: rootA.pem is the CA file).
make_ca rootA self "Root A"
make_ca intA rootA "Intermediate A"
make_leaf leaf1 intA "${HOST[@]}"
make_leaf leaf2 intA "${HOST[@]}"       # CA-valid impostor, other key
KEY=leaf1.key make_leaf leaf1-reissued intA "${HOST[@]}"  # same key, new serial
make_leaf leaf3 intA "${HOST[@]}"
make_leaf other intA other.test
make_leaf a intA a.test
make_leaf b intA b.test
KEY=a.key make_leaf b-with-a-key intA b.test
make_leaf idn intA xn--bcher-kva.test
make_leaf idn2 intA xn--bcher-kva.test
DATES="activation_date = \"2000-01-01 00:00:00\"
expiration_date = \"2001-01-01 00:00:00\"" make_leaf expired intA "${HOST[@]}"

# One leaf per key type, to check SPKI pins against certtool and OpenSSL.
KEYTYPE="--key-type=rsa --bits=2048" make_leaf rsa2048 intA "${HOST[@]}"
KEYTYPE="--key-type=ecdsa --curve=secp384r1" make_leaf p384 intA "${HOST[@]}"
KEYTYPE="--key-type=ed25519" make_leaf ed25519 intA "${HOST[@]}"
KEYTYPE="--key-type=rsa-pss --bits=2048" make_leaf rsapss intA "${HOST[@]}"

# A second intermediate under rootA.
make_ca intA2 rootA "Intermediate A2"
make_leaf leaf4 intA2 "${HOST[@]}"

# A version-1 (extension-less, so not marked as a CA) intermediate.
make_ca intV1 rootA "Intermediate V1" --v1
make_leaf leafV1 intV1 "${HOST[@]}"

# Hierarchy B (untrusted).
make_ca rootB self "Root B"
make_ca intB rootB "Intermediate B"
make_leaf leafB intB "${HOST[@]}"

# Self-signed, not a CA.
make_leaf self self "${HOST[@]}"

# Forged: signed by the CA:FALSE leaf "other". certtool signs with a
# non-CA issuer without complaint, so openssl is not needed anywhere.
make_leaf forged other "${HOST[@]}"

chain leaf1-chain.pem leaf1 intA
chain leaf2-chain.pem leaf2 intA
chain leafB-chain.pem leafB intB
chain leafV1-chain.pem leafV1 intV1
chain leaf4-chain.pem leaf4 intA2
chain other-chain.pem other intA
chain forged-chain.pem forged other intA
chain idn-chain.pem idn intA
chain idn2-chain.pem idn2 intA

ct --certificate-info --infile leaf1.pem --outder --outfile leaf1.der
