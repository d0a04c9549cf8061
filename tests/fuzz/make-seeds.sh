#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Remakes the seed corpora in corpus/ from the test certificates in
# data/certs, so that each fuzz target starts from inputs that reach deep
# into its parser. Usage: tests/fuzz/make-seeds.sh (needs certtool and
# /usr/bin/python3).

set -eu

cd "$(dirname "$0")"
certs=../../data/certs
rm -rf corpus
mkdir -p corpus/pin-strings corpus/pin-file corpus/certificate corpus/verify \
	corpus/policy-file

pin() {
	certtool -i --infile "$1" | sed -n 's/.*pin-sha256:\([A-Za-z0-9+/=]*\).*/\1/p' | head -1
}

leaf1=$(pin $certs/leaf1.pem)
int_a=$(pin $certs/intA.pem)
fingerprint=$(certtool -i --infile $certs/leaf1.pem --outder | sha256sum | cut -d' ' -f1)

printf 'sha256/%s\n' "$leaf1" >corpus/pin-strings/okhttp
printf 'sha256//%s;sha256//%s\n' "$leaf1" "$int_a" >corpus/pin-strings/curl-list
printf 'pin-sha256="%s"\n' "$leaf1" >corpus/pin-strings/hpkp
printf 'pin-sha256:%s\n' "$leaf1" >corpus/pin-strings/certtool
printf '%s\n' "$fingerprint" >corpus/pin-strings/fingerprint
printf '%s\n' "$fingerprint" | sed 's/../&:/g; s/:$//' | tr a-f A-F >corpus/pin-strings/fingerprint-colons
printf 'sha256/%s\n' "$(printf %s "$leaf1" | tr '+/' '-_' | tr -d '=')" >corpus/pin-strings/url-safe
printf ' sha256/%s , sha1/AAAA\n' "$int_a" >corpus/pin-strings/mixed-bad

printf '# pins\nsha256/%s\n\n pin-sha256:%s # next\r\n' "$leaf1" "$int_a" >corpus/pin-file/lines
cp $certs/leaf1-chain.pem corpus/pin-file/pem-chain
cp $certs/leaf1.der corpus/pin-file/der

for name in leaf1 rootA ed25519 rsa2048 rsapss p384 intV1; do
	cp $certs/$name.pem corpus/certificate/$name.pem
done
cp $certs/leaf1.der corpus/certificate/leaf1.der

# Policy files: the commented example, small valid ones that reach each
# setting and kind of pattern, and invalid ones that stop at each check.
policy=corpus/policy-file
cp ../../data/policy.example.ini $policy/example.ini
printf '[host.test]\npins=sha256/%s\n' "$leaf1" >$policy/minimal
printf '[Pin Policy]\nunpinned-hosts=ca-only\n\n[Example.TEST.]\ninclude-subdomains=true\npins=sha256/%s, sha256//%s;sha256/%s\n\n[*.cdn.example.test]\nreport-only=true\npins=pin-sha256="%s"\n\n[a.example.test]\nmode=pin-only\nexpires=2000-01-01T12:00:00+02:00\non-expiry=fall-back-to-ca\npins=%s\n' \
	"$leaf1" "$int_a" "$leaf1" "$int_a" "$fingerprint" >$policy/every-setting
printf '[bücher.example.test]\npins=sha256/%s\n\n[*.xn--bcher-kva.test]\npins=sha256/%s\n\n[::1]\npins=sha256/%s\nexpires=2099-12-31\n\n[127.0.0.1]\npins=sha256/%s\n' \
	"$leaf1" "$int_a" "$leaf1" "$int_a" >$policy/names
printf '[host.test]\npins=sha256/%s\npins=sha256/%s\n' "$leaf1" "$int_a" >$policy/duplicate-key
printf '[host.test]\npins=sha256/%s\nincludeSubdomains=true\n' "$leaf1" >$policy/unknown-key
printf '[*.example.test]\ninclude-subdomains=true\npins=sha256/%s\n' "$leaf1" >$policy/wildcard-subdomains
printf '[host.test]\npins=sha256/%s\nexpires=2030-02-30\n' "$leaf1" >$policy/bad-date
printf '[https://host.test:443/]\npins=sha256/%s\n' "$leaf1" >$policy/url-pattern
printf '[Pin Policy]\nunpinned-hosts=ca-only\n' >$policy/no-entries
# Inputs that once found a problem.
printf '[*.example.\202test]\ninclude-subdomains=true\npins=sha256/%s\n' "$leaf1" >$policy/group-not-utf8
printf '[::2%%%%%%]\npins=sha256/%s\n' "$leaf1" >$policy/ipv6-scope
printf '[h.e]\n[h.e]\npins=a1\\pins=a1\\' >$policy/bad-escape-and-lone-backslash
printf '[::2%%%%%%\301?]\npins=sha256/%s\n' "$leaf1" >$policy/ipv6-zone-not-utf8

# Length-prefixed DER chains, as fuzz-verify.c reads them.
for chain in leaf1-chain forged-chain leafV1-chain leaf4-chain leafB-chain other-chain; do
	/usr/bin/python3 - $certs/$chain.pem corpus/verify/$chain <<'PY'
import base64, re, struct, sys
pem = open(sys.argv[1]).read()
blocks = re.findall(r'-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----', pem, re.S)
with open(sys.argv[2], 'wb') as out:
    for block in blocks:
        der = base64.b64decode(''.join(block.split()))
        out.write(struct.pack('>H', len(der)) + der)
PY
done
