#!/bin/sh
# make_tls_certs.sh DIR - test certificates for a TLS-only Valkey/redis-server, made with the
# openssl CLI: ca.crt/ca.key (the CA the tests trust), other-ca.crt (a CA nobody should
# trust), server.crt/server.key (signed by ca, SAN DNS:localhost, DNS:valkey.test,
# IP:127.0.0.1), client.crt/client.key (signed by ca, for mutual TLS). Valid for a day.
set -eu
dir=$1
mkdir -p "$dir"
cd "$dir"
q() { "$@" >/dev/null 2>&1 || { echo "make_tls_certs: failed: $*" >&2; exit 1; }; }
ec() { q openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"; }
ec ca.key
q openssl req -x509 -new -key ca.key -days 1 -subj "/CN=keyrotator test CA" -out ca.crt
ec other-ca.key
q openssl req -x509 -new -key other-ca.key -days 1 -subj "/CN=another CA" -out other-ca.crt
for who in server client; do
  ec $who.key
  q openssl req -new -key $who.key -subj "/CN=$who" -out $who.csr
done
printf 'subjectAltName=DNS:localhost,DNS:valkey.test,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' > server.ext
printf 'extendedKeyUsage=clientAuth\n' > client.ext
for who in server client; do
  q openssl x509 -req -in $who.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 1 \
    -extfile $who.ext -out $who.crt
done
rm -f ./*.csr ./*.ext ca.srl
chmod 600 ./*.key
