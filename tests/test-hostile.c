/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* pintls against servers that attack it: no certificate, absurd chains,
 * renegotiation to another certificate, stalls, resets, bytes that are not
 * TLS, truncation, oversized records, alerts. Each attack must end in the
 * right GError, within the base socket's timeout, with nothing accepted,
 * and the next connection to the same port must work. */

#include "hostile-server.h"
#include "test-utils.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define TLS12 "NORMAL:-VERS-ALL:+VERS-TLS1.2"
#define TLS13 "NORMAL:-VERS-ALL:+VERS-TLS1.3"

/* Records a GnuTLS server sends before a client's handshake can complete,
 * in both versions: TLS 1.2 ServerHello, Certificate, ServerKeyExchange,
 * ServerHelloDone, ChangeCipherSpec, Finished; TLS 1.3 ServerHello,
 * ChangeCipherSpec, EncryptedExtensions, Certificate, CertificateVerify,
 * Finished. */
#define HANDSHAKE_RECORDS 6

/* Socket timeout for the attacks that stall: the time each one costs. */
static guint
stall_timeout (void)
{
  const char *value = g_getenv ("PINTLS_TEST_STALL_TIMEOUT");

  return value != NULL ? (guint) g_ascii_strtoull (value, NULL, 10) : 2;
}

/* The client ------------------------------------------------------------ */

static GSocketConnection *
connect_tcp (guint16 port,
             guint   timeout)
{
  g_autoptr(GSocketClient) client = g_socket_client_new ();
  g_autoptr(GError) error = NULL;
  GSocketConnection *tcp;

  tcp = g_socket_client_connect_to_host (client, "127.0.0.1", port, NULL, &error);
  g_assert_no_error (error);
  g_socket_set_timeout (g_socket_connection_get_socket (tcp), timeout);
  g_socket_set_option (g_socket_connection_get_socket (tcp), IPPROTO_TCP, TCP_NODELAY, TRUE, NULL);

  return tcp;
}

static PinTlsClientConnection *
client_new (HostileServer *server,
            PinTlsPinSet  *pins,
            guint          timeout)
{
  g_autoptr(GSocketConnection) tcp = connect_tcp (hostile_server_get_port (server), timeout);
  g_autoptr(GSocketConnectable) identity = NULL;
  g_autoptr(GError) error = NULL;
  PinTlsClientConnection *connection;

  identity = g_network_address_new ("host.test", hostile_server_get_port (server));
  connection = pin_tls_client_connection_new (G_IO_STREAM (tcp), identity, pins, &error);
  g_assert_no_error (error);

  return connection;
}

static PinTlsPinSet *
pins_for_cert (HostileCert *cert)
{
  g_autofree char *pin = hostile_cert_get_pin (cert);
  const char *pins[] = { pin, NULL };
  g_autoptr(GError) error = NULL;
  PinTlsPinSet *set = pin_tls_pin_set_new (pins, &error);

  g_assert_no_error (error);
  return set;
}

static void
trust_root_a (PinTlsClientConnection *connection)
{
  g_autofree char *path = test_data_path ("rootA.pem");
  g_autoptr(GTlsDatabase) database = NULL;
  g_autoptr(GError) error = NULL;

  database = g_tls_file_database_new (path, &error);
  g_assert_no_error (error);
  pin_tls_client_connection_set_mode (connection, PIN_TLS_MODE_CA_AND_PINS);
  g_tls_connection_set_database (G_TLS_CONNECTION (connection), database);
}

/* Sends @text and checks that it comes back. */
static void
assert_echo (PinTlsClientConnection *connection,
             const char             *text)
{
  GIOStream *stream = G_IO_STREAM (connection);
  g_autofree char *buffer = g_malloc0 (strlen (text) + 1);
  g_autoptr(GError) error = NULL;
  gsize n = 0;

  g_output_stream_write_all (g_io_stream_get_output_stream (stream), text, strlen (text), NULL,
                             NULL, &error);
  g_assert_no_error (error);
  g_input_stream_read_all (g_io_stream_get_input_stream (stream), buffer, strlen (text), &n, NULL,
                           &error);
  g_assert_no_error (error);
  g_assert_cmpstr (buffer, ==, text);
}

/* The attack left the client able to make an ordinary pinned connection
 * to the same port, which the server now serves properly. */
static void
assert_next_connection_works (HostileServer *server)
{
  g_autoptr(PinTlsPinSet) pins = test_pins_for ("leaf1.pem", NULL);
  g_autoptr(PinTlsClientConnection) connection = NULL;
  g_autoptr(GError) error = NULL;

  connection = client_new (server, pins, TEST_TIMEOUT_SECONDS);
  g_tls_connection_handshake (G_TLS_CONNECTION (connection), NULL, &error);
  g_assert_no_error (error);
  assert_echo (connection, "still works\n");

  g_io_stream_close (G_IO_STREAM (connection), NULL, &error);
  g_assert_no_error (error);
}

/* Attacks one handshake with @pins and returns the client's error, after
* checking that the client refused and that the next connection works. */
static GError *
attack_handshake (const HostileOptions *options,
                  PinTlsPinSet         *pins,
                  gboolean              ca_and_pins,
                  guint                 timeout)
{
  g_autoptr(HostileServer) server = hostile_server_new (options);
  g_autoptr(PinTlsClientConnection) connection = client_new (server, pins, timeout);
  g_autoptr(GBytes) received = NULL;
  GError *error = NULL;

  if (ca_and_pins)
    trust_root_a (connection);

  g_assert_false (g_tls_connection_handshake (G_TLS_CONNECTION (connection), NULL, &error));
  g_assert_nonnull (error);
  g_test_message ("refused: %s", error->message);

  g_clear_object (&connection);

  hostile_server_wait (server, 1);
  g_test_message ("the server saw: %s",
                  gnutls_strerror (hostile_server_get_handshake_result (server)));
  if (options->kind != HOSTILE_RAW)
    g_assert_cmpint (hostile_server_get_handshake_result (server), !=, 0);
  received = hostile_server_get_received (server);
  g_assert_cmpuint (g_bytes_get_size (received), ==, 0);
  assert_next_connection_works (server);

  return error;
}

static GError *
attack_with_leaf1_pins (const HostileOptions *options,
                        guint                 timeout)
{
  g_autoptr(PinTlsPinSet) pins = test_pins_for ("leaf1.pem", NULL);

  return attack_handshake (options, pins, FALSE, timeout);
}

/* No certificate at all ------------------------------------------------- */

typedef struct
{
  const char *path;
  HostileKind kind;
  const char *server_priority;
  const char *client_priority; /* what a caller widening pintls's default sets */
} NoCertificateCase;

static const NoCertificateCase no_certificate_cases[] = {
  { "/pintls/hostile/no-certificate/anonymous/tls12", HOSTILE_ANON,
    TLS12 ":-KX-ALL:+ANON-ECDH:+ANON-DH", TLS12 ":+ANON-ECDH:+ANON-DH" },
  { "/pintls/hostile/no-certificate/psk/tls12", HOSTILE_PSK, TLS12 ":-KX-ALL:+ECDHE-PSK:+PSK",
    TLS12 ":+ECDHE-PSK:+PSK" },
  { "/pintls/hostile/no-certificate/psk/tls13", HOSTILE_PSK, TLS13 ":-KX-ALL:+ECDHE-PSK:+PSK",
    TLS13 ":+ECDHE-PSK:+PSK" },
  { "/pintls/hostile/no-certificate/raw-public-key/tls12", HOSTILE_RAWPK,
    TLS12 ":+CTYPE-SRV-RAWPK:-CTYPE-SRV-X509", TLS12 ":+CTYPE-SRV-RAWPK" },
  { "/pintls/hostile/no-certificate/raw-public-key/tls13", HOSTILE_RAWPK,
    TLS13 ":+CTYPE-SRV-RAWPK:-CTYPE-SRV-X509", TLS13 ":+CTYPE-SRV-RAWPK" },
};

/* With pintls's own priority, the client offers nothing such a server can
* use: the handshake fails on the server's alert, before any pin check. */
static void
test_no_certificate_default (gconstpointer data)
{
  const NoCertificateCase *test = data;
  const HostileOptions options = { test->kind, test->server_priority };
  g_autoptr(GError) error = attack_with_leaf1_pins (&options, TEST_TIMEOUT_SECONDS);

  g_assert_error (error, G_TLS_ERROR, G_TLS_ERROR_MISC);
  g_assert_nonnull (strstr (error->message, "alert"));
}

static int
connect_fd (HostileServer *server)
{
  struct sockaddr_in address = { 0 };
  struct timeval timeout = { TEST_TIMEOUT_SECONDS, 0 };
  int fd = socket (AF_INET, SOCK_STREAM, 0);

  g_assert_cmpint (fd, >=, 0);
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
  address.sin_port = htons (hostile_server_get_port (server));
  g_assert_cmpint (connect (fd, (struct sockaddr *) &address, sizeof address), ==, 0);
  setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);

  return fd;
}

/* A plain GnuTLS caller may widen the priority so that such a server
 * completes its handshake: pintls must still refuse it, since no pinned
 * certificate was ever proven. */
static void
test_no_certificate_widened (gconstpointer data)
{
  static const guint8 psk_key[32] = { 0x70, 0x69, 0x6e, 0x74, 0x6c, 0x73 };
  const gnutls_datum_t key = { (guchar *) psk_key, sizeof psk_key };
  const NoCertificateCase *test = data;
  const HostileOptions options = { test->kind, test->server_priority };
  g_autoptr(HostileServer) server = hostile_server_new (&options);
  g_autoptr(PinTlsPinSet) pins = test_pins_for ("leaf1.pem", NULL);
  g_autoptr(GError) error = NULL;
  gnutls_certificate_credentials_t certificate;
  gnutls_anon_client_credentials_t anon;
  gnutls_psk_client_credentials_t psk;
  gnutls_session_t session;
  int fd = connect_fd (server);
  char buffer[4096];
  int ret;

  gnutls_certificate_allocate_credentials (&certificate);
  gnutls_anon_allocate_client_credentials (&anon);
  gnutls_psk_allocate_client_credentials (&psk);
  gnutls_psk_set_client_credentials (psk, "pintls", &key, GNUTLS_PSK_KEY_RAW);
  g_assert_cmpint (gnutls_init (&session, GNUTLS_CLIENT | GNUTLS_ENABLE_RAWPK), ==, 0);
  g_assert_cmpint (gnutls_priority_set_direct (session, test->client_priority, NULL), ==, 0);
  gnutls_credentials_set (session, GNUTLS_CRD_CERTIFICATE, certificate);
  gnutls_credentials_set (session, GNUTLS_CRD_ANON, anon);
  gnutls_credentials_set (session, GNUTLS_CRD_PSK, psk);
  gnutls_transport_set_int (session, fd);
  g_assert_true (
    pin_tls_session_enforce_pins (session, pins, PIN_TLS_MODE_PIN_ONLY, "host.test", &error));

  do
    ret = gnutls_handshake (session);
  while (ret < 0 && !gnutls_error_is_fatal (ret));

  g_assert_cmpint (ret, <, 0);
  error = pin_tls_session_handshake_error (session, ret);
  g_test_message ("refused: %s", error->message);
  g_assert_error (error, G_TLS_ERROR, G_TLS_ERROR_BAD_CERTIFICATE);

  /* Closing with the server's last records unread would reset the
   * connection, and the server might lose the alert: read them first. */
  shutdown (fd, SHUT_WR);
  while (read (fd, buffer, sizeof buffer) > 0)
    ;
  gnutls_deinit (session);
  close (fd);
  gnutls_certificate_free_credentials (certificate);
  gnutls_anon_free_client_credentials (anon);
  gnutls_psk_free_client_credentials (psk);

  hostile_server_wait (server, 1);
  g_assert_cmpint (hostile_server_get_alert (server), ==, GNUTLS_A_BAD_CERTIFICATE);
  assert_next_connection_works (server);
}

/* Chains ---------------------------------------------------------------- */

/* Serves @chain (a NULL-terminated list, sent verbatim) with the key of
 * its first certificate, to a client pinning @pinned. */
static GError *
attack_with_chain (HostileCert **chain,
                   HostileCert  *pinned,
                   gboolean      ca_and_pins)
{
  HostileOptions options = { HOSTILE_TLS, TLS13 };
  g_autoptr(PinTlsPinSet) pins = pins_for_cert (pinned);

  options.chain = chain;
  while (chain[options.chain_length] != NULL)
    options.chain_length++;

  return attack_handshake (&options, pins, ca_and_pins, TEST_TIMEOUT_SECONDS);
}

/* The same chain with a pin that must match: accepted. */
static void
assert_chain_accepted (HostileCert **chain,
                       HostileCert  *pinned)
{
  HostileOptions options = { HOSTILE_TLS, TLS13 };
  g_autoptr(PinTlsPinSet) pins = pins_for_cert (pinned);
  g_autoptr(HostileServer) server = NULL;
  g_autoptr(PinTlsClientConnection) connection = NULL;
  g_autoptr(GError) error = NULL;

  options.chain = chain;
  while (chain[options.chain_length] != NULL)
    options.chain_length++;

  server = hostile_server_new (&options);
  connection = client_new (server, pins, TEST_TIMEOUT_SECONDS);
  g_tls_connection_handshake (G_TLS_CONNECTION (connection), NULL, &error);
  g_assert_no_error (error);
  assert_echo (connection, "accepted\n");
}

static void
assert_mismatch (GError *error)
{
  g_assert_error (error, PIN_TLS_ERROR, PIN_TLS_ERROR_PIN_MISMATCH);
}

/* A single certificate of 100 KB: parsed, pinned or not, with a mismatch
 * message that stays short. */
static void
test_oversized_certificate (void)
{
  g_autoptr(HostileCert) root = hostile_cert_new ("Big Root", NULL, HOSTILE_CERT_CA, 0);
  g_autoptr(HostileCert) leaf = hostile_cert_new ("host.test", root, 0, 100 * 1024);
  g_autoptr(HostileCert) other = hostile_cert_load ("leaf2.pem", NULL);
  HostileCert *chain[] = { leaf, root, NULL };
  g_autoptr(GError) error = attack_with_chain (chain, other, FALSE);

  assert_mismatch (error);
  g_assert_cmpuint (strlen (error->message), <, 2048);
  assert_chain_accepted (chain, leaf);
}

/* A chain of 300 KB is more than any client should take in. */
static void
test_oversized_chain (void)
{
  g_autoptr(HostileCert) root = hostile_cert_new ("Big Root", NULL, HOSTILE_CERT_CA, 60 * 1024);
  g_autoptr(HostileCert) a = hostile_cert_new ("Big A", root, HOSTILE_CERT_CA, 60 * 1024);
  g_autoptr(HostileCert) b = hostile_cert_new ("Big B", a, HOSTILE_CERT_CA, 60 * 1024);
  g_autoptr(HostileCert) c = hostile_cert_new ("Big C", b, HOSTILE_CERT_CA, 60 * 1024);
  g_autoptr(HostileCert) leaf = hostile_cert_new ("host.test", c, 0, 60 * 1024);
  HostileCert *chain[] = { leaf, c, b, a, root, NULL };
  g_autoptr(GError) error = attack_with_chain (chain, leaf, FALSE);

  g_assert_error (error, G_TLS_ERROR, G_TLS_ERROR_MISC);
}

#define DEEP_CHAIN_LENGTH 100

/* A chain 100 certificates deep: the issuer path search is bounded, so
 * a pin far up the chain does not match, while the leaf's does. */
static void
test_deep_chain (void)
{
  HostileCert *chain[DEEP_CHAIN_LENGTH + 1] = { NULL };
  g_autoptr(GError) error = NULL;
  guint i;

  chain[DEEP_CHAIN_LENGTH - 1] = hostile_cert_new ("Deep 0", NULL, HOSTILE_CERT_CA, 0);
  for (i = DEEP_CHAIN_LENGTH - 1; i > 0; i--)
    {
      g_autofree char *cn = g_strdup_printf ("Deep %u", DEEP_CHAIN_LENGTH - i);

      chain[i - 1] =
        hostile_cert_new (i > 1 ? cn : "host.test", chain[i], i > 1 ? HOSTILE_CERT_CA : 0, 0);
    }

  error = attack_with_chain (chain, chain[DEEP_CHAIN_LENGTH - 1], FALSE);
  assert_mismatch (error);
  assert_chain_accepted (chain, chain[0]);
  assert_chain_accepted (chain, chain[10]);

  for (i = 0; i < DEEP_CHAIN_LENGTH; i++)
    hostile_cert_unref (chain[i]);
}

/* The same certificates over and over again. */
static void
test_duplicate_chain (void)
{
  g_autoptr(HostileCert) leaf = hostile_cert_load ("leaf1.pem", "leaf1.key");
  g_autoptr(HostileCert) int_a = hostile_cert_load ("intA.pem", NULL);
  g_autoptr(HostileCert) root_b = hostile_cert_load ("rootB.pem", NULL);
  HostileCert *chain[] = { leaf, int_a, int_a, leaf, int_a, leaf, NULL };
  g_autoptr(GError) error = attack_with_chain (chain, root_b, FALSE);

  assert_mismatch (error);
  assert_chain_accepted (chain, int_a);
}

/* Issuers in the wrong order still count by signature, not by place. */
static void
test_reordered_chain (void)
{
  g_autoptr(HostileCert) leaf = hostile_cert_load ("leaf1.pem", "leaf1.key");
  g_autoptr(HostileCert) int_a = hostile_cert_load ("intA.pem", NULL);
  g_autoptr(HostileCert) root_a = hostile_cert_load ("rootA.pem", NULL);
  g_autoptr(HostileCert) root_b = hostile_cert_load ("rootB.pem", NULL);
  HostileCert *chain[] = { leaf, root_a, int_a, NULL };
  g_autoptr(GError) error = attack_with_chain (chain, root_b, FALSE);

  assert_mismatch (error);
  assert_chain_accepted (chain, root_a);
}

/* Two CA certificates that each sign the other: the path search ends. */
static void
test_cyclic_chain (void)
{
  g_autoptr(HostileCert) y0 = hostile_cert_new ("Cycle Y", NULL, HOSTILE_CERT_CA, 0);
  g_autoptr(HostileCert) x = hostile_cert_new ("Cycle X", y0, HOSTILE_CERT_CA, 0);
  g_autoptr(HostileCert) y = hostile_cert_new_with_key ("Cycle Y", x, HOSTILE_CERT_CA, y0);
  g_autoptr(HostileCert) leaf = hostile_cert_new ("host.test", x, 0, 0);
  g_autoptr(HostileCert) other = hostile_cert_load ("leaf2.pem", NULL);
  HostileCert *chain[] = { leaf, x, y, x, y, NULL };
  g_autoptr(GError) error = attack_with_chain (chain, other, FALSE);

  assert_mismatch (error);
  assert_chain_accepted (chain, y);
}

/* Certificates of another hierarchy, merely appended, never satisfy a pin,
 * and the message says they are not on the issuer path. */
static void
test_unrelated_chain (void)
{
  g_autoptr(HostileCert) leaf = hostile_cert_load ("leaf2.pem", "leaf2.key");
  g_autoptr(HostileCert) int_a = hostile_cert_load ("intA.pem", NULL);
  g_autoptr(HostileCert) int_b = hostile_cert_load ("intB.pem", NULL);
  g_autoptr(HostileCert) root_b = hostile_cert_load ("rootB.pem", NULL);
  g_autoptr(HostileCert) other = hostile_cert_load ("other.pem", NULL);
  HostileCert *chain[] = { leaf, int_b, root_b, other, int_a, NULL };
  g_autoptr(GError) error = attack_with_chain (chain, int_b, FALSE);

  assert_mismatch (error);
  g_assert_nonnull (strstr (error->message, "not on the issuer path"));
}

/* A leaf "issued" by a CA:FALSE certificate, or by an X.509 v1 one, whose
 * own issuer is pinned: no path passes through the bad signer, in either
 * mode, and certificate authority checks call the chain untrusted. */
static void
test_bad_signer (gconstpointer data)
{
  const char *const *files = data;
  g_autoptr(HostileCert) leaf = hostile_cert_load (files[0], files[1]);
  g_autoptr(HostileCert) signer = hostile_cert_load (files[2], NULL);
  g_autoptr(HostileCert) pinned = hostile_cert_load (files[3], NULL);
  HostileCert *chain[] = { leaf, signer, pinned, NULL };
  g_autoptr(GError) error = attack_with_chain (chain, pinned, FALSE);
  g_autoptr(GError) ca_error = attack_with_chain (chain, pinned, TRUE);

  assert_mismatch (error);
  g_assert_error (ca_error, G_TLS_ERROR, G_TLS_ERROR_BAD_CERTIFICATE);
}

static const char *const non_ca_signer[] = { "forged.pem", "forged.key", "other.pem", "intA.pem" };
static const char *const v1_signer[] = { "leafV1.pem", "leafV1.key", "intV1.pem", "rootA.pem" };

/* A v1 signer made here rather than by certtool, with a pin on itself. */
static void
test_generated_v1_signer (void)
{
  g_autoptr(HostileCert) root = hostile_cert_new ("V1 Root", NULL, HOSTILE_CERT_CA, 0);
  g_autoptr(HostileCert) v1 = hostile_cert_new ("V1 Signer", root, HOSTILE_CERT_V1, 0);
  g_autoptr(HostileCert) leaf = hostile_cert_new ("host.test", v1, 0, 0);
  HostileCert *chain[] = { leaf, v1, root, NULL };
  g_autoptr(GError) error = attack_with_chain (chain, v1, FALSE);
  g_autoptr(GError) root_error = attack_with_chain (chain, root, FALSE);

  assert_mismatch (error);
  assert_mismatch (root_error);
}

/* Renegotiation --------------------------------------------------------- */

/* A TLS 1.2 server that asks for a new handshake, ready to present an
 * unpinned certificate in it: the client stays with the certificate it
 * checked and never sends a second ClientHello. */
static void
test_renegotiation (void)
{
  g_autoptr(HostileCert) leaf2 = hostile_cert_load ("leaf2.pem", "leaf2.key");
  g_autoptr(HostileCert) int_a = hostile_cert_load ("intA.pem", NULL);
  HostileCert *second_chain[] = { leaf2, int_a };
  HostileOptions options = { HOSTILE_TLS, TLS12 };
  g_autoptr(HostileServer) server = NULL;
  g_autoptr(PinTlsPinSet) pins = test_pins_for ("leaf1.pem", NULL);
  g_autoptr(PinTlsClientConnection) connection = NULL;
  g_autoptr(GPtrArray) leaf1_chain = test_load_der_chain ("leaf1.pem");
  GBytes *leaf1_der = g_ptr_array_index (leaf1_chain, 0);
  g_autoptr(GByteArray) peer_der = NULL;
  g_autoptr(GError) error = NULL;
  GTlsCertificate *peer;
  char buffer[64] = "";
  gssize n;

  options.renegotiate = TRUE;
  options.renegotiate_chain = second_chain;
  options.renegotiate_chain_length = G_N_ELEMENTS (second_chain);
  server = hostile_server_new (&options);
  connection = client_new (server, pins, TEST_TIMEOUT_SECONDS);

  g_tls_connection_handshake (G_TLS_CONNECTION (connection), NULL, &error);
  g_assert_no_error (error);
  n = g_input_stream_read (g_io_stream_get_input_stream (G_IO_STREAM (connection)), buffer,
                           strlen ("after-hello-request\n"), NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (n, ==, strlen ("after-hello-request\n"));
  assert_echo (connection, "no renegotiation\n");

  peer = g_tls_connection_get_peer_certificate (G_TLS_CONNECTION (connection));
  g_object_get (peer, "certificate", &peer_der, NULL);
  g_assert_cmpmem (peer_der->data, peer_der->len, g_bytes_get_data (leaf1_der, NULL),
                   g_bytes_get_size (leaf1_der));

  g_io_stream_close (G_IO_STREAM (connection), NULL, &error);
  g_assert_no_error (error);
  hostile_server_wait (server, 1);
  g_assert_cmpuint (hostile_server_get_client_hellos (server), ==, 1);
  assert_next_connection_works (server);
}

/* Stalls, resets and closes at every handshake step --------------------- */

typedef struct
{
  HostileOptions options;
  guint timeout;
  GError *error;
  gboolean done;
  HostileServer *server;
  PinTlsClientConnection *connection;
} CutAttempt;

static void
cut_attempt_start (CutAttempt *attempt)
{
  g_autoptr(PinTlsPinSet) pins = test_pins_for ("leaf1.pem", NULL);

  attempt->server = hostile_server_new (&attempt->options);
  attempt->connection = client_new (attempt->server, pins, attempt->timeout);
}

static void
cut_attempt_finish (CutAttempt *attempt)
{
  g_test_message ("cut after %u records%s: %s", attempt->options.cut_after_records,
                  attempt->options.mid_record ? " and a half" : "", attempt->error->message);

  g_clear_object (&attempt->connection);
  hostile_server_wait (attempt->server, 1);
  assert_next_connection_works (attempt->server);
  g_clear_pointer (&attempt->server, hostile_server_free);
  g_clear_error (&attempt->error);
}

static gpointer
sync_attempt_thread (gpointer data)
{
  CutAttempt *attempt = data;

  g_tls_connection_handshake (G_TLS_CONNECTION (attempt->connection), NULL, &attempt->error);
  return NULL;
}

static void
async_attempt_cb (GObject      *source,
                  GAsyncResult *result,
                  gpointer      data)
{
  CutAttempt *attempt = data;

  g_tls_connection_handshake_finish (G_TLS_CONNECTION (source), result, &attempt->error);
  attempt->done = TRUE;
}

/* Every handshake step a cut can fall on: after each whole record the
 * server sends, and in the middle of each. */
static CutAttempt *
cut_attempts_new (const char *priority,
                  HostileCut  cut,
                  guint       timeout,
                  guint      *n_attempts)
{
  CutAttempt *attempts = g_new0 (CutAttempt, 2 * HANDSHAKE_RECORDS);
  guint i;

  for (i = 0; i < 2 * HANDSHAKE_RECORDS; i++)
    {
      attempts[i].options.kind = HOSTILE_TLS;
      attempts[i].options.priority = priority;
      attempts[i].options.cut = cut;
      attempts[i].options.cut_after_records = i / 2;
      attempts[i].options.mid_record = (i % 2 == 1);
      attempts[i].timeout = timeout;
    }

  *n_attempts = 2 * HANDSHAKE_RECORDS;
  return attempts;
}

/* Each cut point once with a blocking handshake in a thread of its own and
 * once with an asynchronous handshake, all at the same time, so that the
 * whole table costs one socket timeout. */
static void
run_cut_attempts (const char *priority,
                  HostileCut  cut,
                  guint       timeout,
                  void (     *check ) (CutAttempt *attempt))
{
  guint n = 0;
  g_autofree CutAttempt *sync = cut_attempts_new (priority, cut, timeout, &n);
  g_autofree CutAttempt *async = cut_attempts_new (priority, cut, timeout, &n);
  g_autofree GThread **threads = g_new0 (GThread *, n);
  guint pending = n;
  guint i;

  for (i = 0; i < n; i++)
    {
      cut_attempt_start (&sync[i]);
      threads[i] = g_thread_new ("cut-attempt", sync_attempt_thread, &sync[i]);
      cut_attempt_start (&async[i]);
      g_tls_connection_handshake_async (G_TLS_CONNECTION (async[i].connection), G_PRIORITY_DEFAULT,
                                        NULL, async_attempt_cb, &async[i]);
    }

  while (pending > 0)
    {
      g_main_context_iteration (NULL, TRUE);
      for (pending = 0, i = 0; i < n; i++)
        pending += !async[i].done;
    }

  for (i = 0; i < n; i++)
    {
      g_thread_join (threads[i]);
      check (&sync[i]);
      cut_attempt_finish (&sync[i]);
      check (&async[i]);
      cut_attempt_finish (&async[i]);
    }
}

static void
check_timed_out (CutAttempt *attempt)
{
  g_assert_error (attempt->error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
}

static void
check_not_tls (CutAttempt *attempt)
{
  g_assert_error (attempt->error, G_TLS_ERROR, G_TLS_ERROR_NOT_TLS);
}

/* A reset that arrives while the client writes may read as a broken pipe;
 * one that arrives while it reads, as a closed connection. Either way it
 * is the network's error, not a TLS one. */
static void
check_reset (CutAttempt *attempt)
{
  g_assert_nonnull (attempt->error);
  if (attempt->error->domain == G_TLS_ERROR)
    g_assert_error (attempt->error, G_TLS_ERROR, G_TLS_ERROR_NOT_TLS);
  else if (!g_error_matches (attempt->error, G_IO_ERROR, G_IO_ERROR_BROKEN_PIPE))
    g_assert_error (attempt->error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED);
}

static void
test_stall (gconstpointer data)
{
  run_cut_attempts (data, HOSTILE_CUT_STALL, stall_timeout (), check_timed_out);
}

static void
test_close (gconstpointer data)
{
  run_cut_attempts (data, HOSTILE_CUT_CLOSE, TEST_TIMEOUT_SECONDS, check_not_tls);
}

static void
test_reset (gconstpointer data)
{
  run_cut_attempts (data, HOSTILE_CUT_RESET, TEST_TIMEOUT_SECONDS, check_reset);
}

/* Bytes that are not TLS, and alerts ------------------------------------ */

typedef struct
{
  const char *path;
  const char *reply;
  gsize reply_length;     /* 0: strlen (reply) */
  guint repeat;           /* the reply sent this many times; 0: once */
  gboolean reply_first;
  HostileCut cut;
  GQuark (*domain)(void); /* NULL: G_TLS_ERROR */
  int code;               /* -1: any code of the domain */
  const char *message;    /* in the error message, if not NULL */
  gsize record_size;      /* then records of this many bytes of 0x5a ... */
  guint n_records;        /* ... this many times */
} RawCase;

#define FATAL_HANDSHAKE_FAILURE "\x15\x03\x03\x00\x02\x02\x28"

static const RawCase raw_cases[] = {
  { "/pintls/hostile/not-tls/http", "HTTP/1.1 400 Bad Request\r\n\r\n", 0, 0, FALSE,
    HOSTILE_CUT_CLOSE, NULL, G_TLS_ERROR_NOT_TLS },
  { "/pintls/hostile/not-tls/banner-first", "SSH-2.0-OpenSSH_9.2p1\r\n", 0, 0, TRUE,
    HOSTILE_CUT_STALL, NULL, G_TLS_ERROR_NOT_TLS },
  { "/pintls/hostile/not-tls/zeros", NULL, 4096, 0, FALSE, HOSTILE_CUT_STALL, NULL, -1 },
  { "/pintls/hostile/not-tls/sslv2-server-hello", "\x80\x2e\x04\x00\x01\x00\x02", 7, 0, FALSE,
    HOSTILE_CUT_STALL, NULL, -1 },
  { "/pintls/hostile/not-tls/record-too-long", "\x16\x03\x03\xff\xff", 5, 0, FALSE,
    HOSTILE_CUT_STALL, NULL, -1 },
  /* A ServerHello that claims 16 MiB and never ends: GnuTLS checks a
   * handshake message's size only once it is complete, so the client waits
   * for the rest until the socket times out. */
  { "/pintls/hostile/not-tls/endless-server-hello", "\x16\x03\x03\x00\x04\x02\xff\xff\xff", 9, 0,
    FALSE, HOSTILE_CUT_STALL, g_io_error_quark, G_IO_ERROR_TIMED_OUT, NULL, 16384, 64 },
  { "/pintls/hostile/not-tls/empty-records", "\x16\x03\x03\x00\x00", 5, 1000, FALSE,
    HOSTILE_CUT_STALL, NULL, -1 },
  { "/pintls/hostile/not-tls/truncated-server-hello", "\x16\x03\x03\x00\x40\x02\x00", 7, 0, FALSE,
    HOSTILE_CUT_CLOSE, NULL, G_TLS_ERROR_NOT_TLS },
  { "/pintls/hostile/alert/fatal-instead-of-handshake", FATAL_HANDSHAKE_FAILURE, 7, 0, FALSE,
    HOSTILE_CUT_STALL, NULL, G_TLS_ERROR_MISC, "Handshake failed" },
  { "/pintls/hostile/alert/fatal-before-client-hello", FATAL_HANDSHAKE_FAILURE, 7, 0, TRUE,
    HOSTILE_CUT_STALL, NULL, G_TLS_ERROR_MISC, "Handshake failed" },
  { "/pintls/hostile/alert/fatal-unknown-description", "\x15\x03\x03\x00\x02\x02\xee", 7, 0, FALSE,
    HOSTILE_CUT_STALL, NULL, G_TLS_ERROR_MISC, "unknown alert 238" },
  { "/pintls/hostile/alert/warnings-then-close", "\x15\x03\x03\x00\x02\x01\x5a", 7, 500, FALSE,
    HOSTILE_CUT_CLOSE, NULL, -1 },
  /* GnuTLS reports this as the session's end: still not a TLS server. */
  { "/pintls/hostile/alert/close-notify-instead-of-handshake", "\x15\x03\x03\x00\x02\x01\x00", 7, 0,
    FALSE, HOSTILE_CUT_CLOSE, NULL, G_TLS_ERROR_NOT_TLS },
  { "/pintls/hostile/alert/malformed", "\x15\x03\x03\x00\x05\x02\x28\x00\x00\x00", 10, 0, FALSE,
    HOSTILE_CUT_STALL, NULL, -1 },
};

static GBytes *
raw_case_bytes (const RawCase *test)
{
  GByteArray *bytes = g_byte_array_new ();
  const char *text = test->reply;
  gsize length = test->reply_length;
  guint8 *zeros = NULL;
  guint i;

  if (length == 0)
    length = strlen (text);
  if (text == NULL)
    text = (const char *) (zeros = g_malloc0 (length));

  for (i = 0; i < MAX (test->repeat, 1); i++)
    g_byte_array_append (bytes, (const guint8 *) text, length);
  g_free (zeros);

  for (i = 0; i < test->n_records; i++)
    {
      guint8 header[] = { 0x16, 0x03, 0x03, test->record_size >> 8, test->record_size & 0xff };
      gsize old_length = bytes->len;

      g_byte_array_append (bytes, header, sizeof header);
      g_byte_array_set_size (bytes, old_length + sizeof header + test->record_size);
      memset (bytes->data + old_length + sizeof header, 0x5a, test->record_size);
    }

  return g_byte_array_free_to_bytes (bytes);
}

static void
test_raw (gconstpointer data)
{
  const RawCase *test = data;
  g_autoptr(GBytes) reply = raw_case_bytes (test);
  HostileOptions options = { HOSTILE_RAW };
  g_autoptr(GError) error = NULL;
  GQuark domain = test->domain ? test->domain () : G_TLS_ERROR;

  options.reply = reply;
  options.reply_first = test->reply_first;
  options.cut = test->cut;

  /* Only the cases that expect a time-out wait for one: for the others a
   * stall would be a failure. */
  error = attack_with_leaf1_pins (&options,
                                  domain == G_IO_ERROR ? stall_timeout () : TEST_TIMEOUT_SECONDS);
  g_assert_true (error->domain == domain);
  if (test->code >= 0)
    g_assert_error (error, domain, test->code);
  if (test->message != NULL)
    g_assert_nonnull (strstr (error->message, test->message));
}

/* After the handshake --------------------------------------------------- */

typedef struct
{
  const char *path;
  const char *bytes; /* written to the socket after the handshake */
  gsize length;
  gsize garbage;     /* this many more bytes of 0x5a */
  HostileCut cut;
  gboolean require_close_notify;
  GQuark domain;     /* 0: a clean end of stream is expected */
  int code;          /* -1: any code of the domain */
} AfterCase;

static const AfterCase after_cases[] = {
  { "/pintls/hostile/truncation/no-close-notify/required", "", 0, 0, HOSTILE_CUT_CLOSE, TRUE, 1,
    G_TLS_ERROR_EOF },
  { "/pintls/hostile/truncation/no-close-notify/not-required", "", 0, 0, HOSTILE_CUT_CLOSE, FALSE },
  /* A record cut short is a broken stream, never a clean end of it. */
  { "/pintls/hostile/truncation/mid-record/required", "\x17\x03\x03\x00\x40", 5, 10,
    HOSTILE_CUT_CLOSE, TRUE, 1, -1 },
  { "/pintls/hostile/truncation/mid-record/not-required", "\x17\x03\x03\x00\x40", 5, 10,
    HOSTILE_CUT_CLOSE, FALSE, 1, -1 },
  { "/pintls/hostile/truncation/reset", "", 0, 0, HOSTILE_CUT_RESET, FALSE, 2,
    G_IO_ERROR_CONNECTION_CLOSED },
  { "/pintls/hostile/large-record/length-too-large", "\x17\x03\x03\xff\xff", 5, 0,
    HOSTILE_CUT_STALL, FALSE, 1, -1 },
  { "/pintls/hostile/large-record/just-over-the-limit", "\x17\x03\x03\x48\x01", 5, 0x4801,
    HOSTILE_CUT_STALL, FALSE, 1, -1 },
  { "/pintls/hostile/large-record/garbage-at-the-limit", "\x17\x03\x03\x40\x00", 5, 0x4000,
    HOSTILE_CUT_STALL, FALSE, 1, -1 },
  { "/pintls/hostile/large-record/not-a-record", "GET / HTTP/1.1\r\n\r\n", 18, 0, HOSTILE_CUT_STALL,
    FALSE, 1, -1 },
};

static void
test_after_handshake (gconstpointer data)
{
  const AfterCase *test = data;
  g_autoptr(GByteArray) bytes = g_byte_array_new ();
  g_autoptr(GBytes) after = NULL;
  HostileOptions options = { HOSTILE_TLS, NULL };
  g_autoptr(HostileServer) server = NULL;
  g_autoptr(PinTlsPinSet) pins = test_pins_for ("leaf1.pem", NULL);
  g_autoptr(PinTlsClientConnection) connection = NULL;
  g_autoptr(GError) error = NULL;
  GInputStream *input;
  char buffer[64] = "";
  gssize n;
  gsize i;

  g_byte_array_append (bytes, (const guint8 *) test->bytes, test->length);
  for (i = 0; i < test->garbage; i++)
    g_byte_array_append (bytes, (const guint8 *) "\x5a", 1);
  after = g_byte_array_free_to_bytes (g_steal_pointer (&bytes));
  options.greeting = "hello\n";
  options.after_handshake = after;
  options.cut = test->cut;

  server = hostile_server_new (&options);
  connection = client_new (server, pins, TEST_TIMEOUT_SECONDS);
  g_tls_connection_set_require_close_notify (G_TLS_CONNECTION (connection),
                                             test->require_close_notify);
  input = g_io_stream_get_input_stream (G_IO_STREAM (connection));

  g_input_stream_read_all (input, buffer, strlen ("hello\n"), NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (buffer, ==, "hello\n");

  n = g_input_stream_read (input, buffer, sizeof buffer, NULL, &error);
  if (test->domain == 0)
    {
      g_assert_no_error (error);
      g_assert_cmpint (n, ==, 0);
    }
  else
    {
      GQuark domain = test->domain == 1 ? G_TLS_ERROR : G_IO_ERROR;

      g_assert_cmpint (n, ==, -1);
      g_assert_nonnull (error);
      g_test_message ("refused: %s", error->message);
      g_assert_true (error->domain == domain);
      if (test->code >= 0)
        g_assert_error (error, domain, test->code);
    }

  g_clear_object (&connection);
  hostile_server_wait (server, 1);
  assert_next_connection_works (server);
}

int
main (int   argc,
      char *argv[])
{
  guint i;

  g_test_init (&argc, &argv, NULL);

  for (i = 0; i < G_N_ELEMENTS (no_certificate_cases); i++)
    {
      g_autofree char *widened = g_strconcat (no_certificate_cases[i].path, "/widened", NULL);
      g_autofree char *plain = g_strconcat (no_certificate_cases[i].path, "/default", NULL);

      g_test_add_data_func (plain, &no_certificate_cases[i], test_no_certificate_default);
      g_test_add_data_func (widened, &no_certificate_cases[i], test_no_certificate_widened);
    }

  g_test_add_func ("/pintls/hostile/chain/oversized-certificate", test_oversized_certificate);
  g_test_add_func ("/pintls/hostile/chain/oversized-chain", test_oversized_chain);
  g_test_add_func ("/pintls/hostile/chain/deep", test_deep_chain);
  g_test_add_func ("/pintls/hostile/chain/duplicates", test_duplicate_chain);
  g_test_add_func ("/pintls/hostile/chain/reordered", test_reordered_chain);
  g_test_add_func ("/pintls/hostile/chain/cyclic", test_cyclic_chain);
  g_test_add_func ("/pintls/hostile/chain/unrelated", test_unrelated_chain);
  g_test_add_data_func ("/pintls/hostile/chain/non-ca-signer", non_ca_signer, test_bad_signer);
  g_test_add_data_func ("/pintls/hostile/chain/v1-signer", v1_signer, test_bad_signer);
  g_test_add_func ("/pintls/hostile/chain/generated-v1-signer", test_generated_v1_signer);

  g_test_add_func ("/pintls/hostile/renegotiation/tls12", test_renegotiation);

  g_test_add_data_func ("/pintls/hostile/stall/tls12", TLS12, test_stall);
  g_test_add_data_func ("/pintls/hostile/stall/tls13", TLS13, test_stall);
  g_test_add_data_func ("/pintls/hostile/close/tls12", TLS12, test_close);
  g_test_add_data_func ("/pintls/hostile/close/tls13", TLS13, test_close);
  g_test_add_data_func ("/pintls/hostile/reset/tls12", TLS12, test_reset);
  g_test_add_data_func ("/pintls/hostile/reset/tls13", TLS13, test_reset);

  for (i = 0; i < G_N_ELEMENTS (raw_cases); i++)
    g_test_add_data_func (raw_cases[i].path, &raw_cases[i], test_raw);
  for (i = 0; i < G_N_ELEMENTS (after_cases); i++)
    g_test_add_data_func (after_cases[i].path, &after_cases[i], test_after_handshake);

  return g_test_run ();
}
