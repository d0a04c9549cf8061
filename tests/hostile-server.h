/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* A misbehaving TLS server for the attack suite, on a loopback port chosen
 * at run time, and the unusual certificates it serves, made at test time.
 *
 * The first connection a server accepts gets the behaviour its options
 * describe; every later one gets an ordinary TLS server presenting
 * leaf1-chain.pem, so that a test can check that the client still works
 * after the attack. */

#pragma once

#include <gio/gio.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

G_BEGIN_DECLS

/* Certificates ---------------------------------------------------------- */

typedef struct _HostileCert HostileCert;

typedef enum
{
  HOSTILE_CERT_LEAF = 0,    /* CA:FALSE, a TLS server for host.test */
  HOSTILE_CERT_CA = 1 << 0, /* CA:TRUE, may sign certificates */
  HOSTILE_CERT_V1 = 1 << 1, /* an X.509 version 1 certificate: no
                             * extensions at all */
} HostileCertFlags;

/* A certificate with a new ECDSA P-256 key, named CN=@cn, signed by
 * @issuer's key and naming @issuer's subject as its issuer, or self-signed
 * when @issuer is NULL. @padding bytes of an unknown, non-critical extension
 * make it as large as a test needs. */
HostileCert *hostile_cert_new (const char      *cn,
                               HostileCert     *issuer,
                               HostileCertFlags flags,
                               gsize            padding);

/* The same, but with an existing key: @key_of's. */
HostileCert *hostile_cert_new_with_key (const char      *cn,
                                        HostileCert     *issuer,
                                        HostileCertFlags flags,
                                        HostileCert     *key_of);

/* A certificate and its key from data/certs (the key file may be NULL). */
HostileCert *hostile_cert_load (const char *cert_file,
                                const char *key_file);

HostileCert *hostile_cert_ref (HostileCert *cert);
void hostile_cert_unref (HostileCert *cert);

GBytes *hostile_cert_get_der (HostileCert *cert);

/* "sha256/..." of the certificate's public key, as pintls computes it. */
char *hostile_cert_get_pin (HostileCert *cert);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (HostileCert, hostile_cert_unref)

/* The server ------------------------------------------------------------ */

/* What the server does to the connection at its cut. */
typedef enum
{
  HOSTILE_CUT_NONE,  /* nothing: the connection runs its course */
  HOSTILE_CUT_STALL, /* send nothing more; read and drop until the client
                      * closes */
  HOSTILE_CUT_CLOSE, /* shut down the sending side (TCP FIN), no alert */
  HOSTILE_CUT_RESET, /* abort the connection with a TCP RST */
} HostileCut;

typedef enum
{
  HOSTILE_TLS,   /* GnuTLS with @chain (sent verbatim) and @key */
  HOSTILE_ANON,  /* GnuTLS, anonymous key exchange: no certificate */
  HOSTILE_PSK,   /* GnuTLS, pre-shared key only: no certificate */
  HOSTILE_RAWPK, /* GnuTLS, a raw public key instead of a certificate */
  HOSTILE_RAW,   /* no TLS: @reply, as raw bytes */
} HostileKind;

typedef struct
{
  HostileKind kind;
  const char *priority; /* GnuTLS priority; NULL: the test default */

  /* HOSTILE_TLS: the certificates sent, in this order, duplicates and all,
   * and the certificate whose key the server proves. NULL: leaf1's. */
  HostileCert **chain;
  guint chain_length;
  HostileCert *key;

  /* Where to cut the server's output: after this many whole TLS records
   * (HOSTILE_TLS, HOSTILE_ANON ...) or right after @reply (HOSTILE_RAW).
   * With @mid_record, half of the next record goes out first. */
  HostileCut cut;
  guint cut_after_records;
  gboolean mid_record;

  /* HOSTILE_RAW: sent once the client's first bytes arrived, or at once
   * with @reply_first. */
  GBytes *reply;
  gboolean reply_first;

  /* After a completed handshake, written straight to the socket, bypassing
   * TLS, and followed by the cut. */
  GBytes *after_handshake;

  /* After a completed TLS 1.2 handshake, ask for a renegotiation and serve
   * it with @renegotiate_chain and @renegotiate_key. */
  gboolean renegotiate;
  HostileCert **renegotiate_chain;
  guint renegotiate_chain_length;
  HostileCert *renegotiate_key;

  /* HOSTILE_TLS: ask for a client certificate, naming this CA (a PEM file
  * in data/certs) as one the server accepts; the client may send none. */
  const char *client_ca;

  /* After a completed handshake, sent as application data. */
  const char *greeting;
} HostileOptions;

typedef struct _HostileServer HostileServer;

/* Starts the server thread. The server holds no reference to @options'
 * strings and bytes after this returns. */
HostileServer *hostile_server_new (const HostileOptions *options);

guint16 hostile_server_get_port (HostileServer *server);

/* Waits until the server has finished with @n connections in all; fails
 * the test if that takes longer than TEST_TIMEOUT_SECONDS. */
void hostile_server_wait (HostileServer *server,
                          guint          n);

/* What the server saw in its first, hostile connection: the handshake
 * result (0 or a GnuTLS error), the number of ClientHello messages, and
 * the fatal alert the client sent (or -1). */
int hostile_server_get_handshake_result (HostileServer *server);
guint hostile_server_get_client_hellos (HostileServer *server);
int hostile_server_get_alert (HostileServer *server);

/* The application data the first connection received. */
GBytes *hostile_server_get_received (HostileServer *server);

void hostile_server_free (HostileServer *server);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (HostileServer, hostile_server_free)

G_END_DECLS
