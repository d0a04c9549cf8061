/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The library's rarer paths, each one a way things can go wrong that the
 * other suites do not reach: certificates without DER data or with a
 * public key nobody can read, names out of bounds, every server identity
 * type, trust anchors that did not sign, streams that outlive their
 * connection, failed connects and fetches, and the translation of GnuTLS
 * errors. */

#include "hostile-server.h"
#include "test-utils.h"

#include <gio/gunixsocketaddress.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static PinTlsPinSet *
pins_for_hostile (HostileCert *cert)
{
  g_autofree char *pin = hostile_cert_get_pin (cert);
  const char *pins[] = { pin, NULL };

  return pin_tls_pin_set_new (pins, NULL);
}

/* A certificate with no DER data --------------------------------------- */

/* What a GTlsCertificate from an unusual TLS backend might be: one whose
 * "certificate" property is empty. */
typedef struct
{
  GTlsCertificate parent_instance;
} EmptyCertificate;

typedef struct
{
  GTlsCertificateClass parent_class;
} EmptyCertificateClass;

static GType empty_certificate_get_type (void);

G_DEFINE_TYPE (EmptyCertificate, empty_certificate, G_TYPE_TLS_CERTIFICATE)

static void
empty_certificate_get_property (GObject    *object,
                                guint       prop_id,
                                GValue     *value,
                                GParamSpec *pspec)
{
  /* Every property reads as unset. */
}

static void
empty_certificate_set_property (GObject      *object,
                                guint         prop_id,
                                const GValue *value,
                                GParamSpec   *pspec)
{
}

static void
empty_certificate_class_init (EmptyCertificateClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->get_property = empty_certificate_get_property;
  object_class->set_property = empty_certificate_set_property;
  g_object_class_override_property (object_class, 1, "certificate");
  g_object_class_override_property (object_class, 2, "certificate-pem");
  g_object_class_override_property (object_class, 3, "private-key");
  g_object_class_override_property (object_class, 4, "private-key-pem");
  g_object_class_override_property (object_class, 5, "issuer");
}

static void
empty_certificate_init (EmptyCertificate *self)
{
}

static void
test_certificate_without_der (void)
{
  g_autoptr(GTlsCertificate) empty = g_object_new (empty_certificate_get_type (), NULL);
  GTlsCertificate *certificates[] = { empty };
  g_autoptr(PinTlsPinSet) set = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *pin = NULL;

  set = pin_tls_pin_set_new_from_certificates (certificates, 1, &error);
  g_assert_error (error, PIN_TLS_ERROR, PIN_TLS_ERROR_INVALID_CERTIFICATE);
  g_assert_null (set);
  g_clear_error (&error);

  pin = pin_tls_spki_pin_for_certificate (empty, &error);
  g_assert_error (error, PIN_TLS_ERROR, PIN_TLS_ERROR_INVALID_CERTIFICATE);
  g_assert_null (pin);
}

/* A certificate whose public key no one can read -------------------------- */

/* leaf1 with its key algorithm (id-ecPublicKey) changed to an OID nobody
 * knows: the certificate still parses, but has no usable public key. */
static GBytes *
unknown_key_certificate (void)
{
  static const guint8 ec_public_key[] = { 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01 };
  g_autoptr(GPtrArray) chain = test_load_der_chain ("leaf1.pem");
  gsize size;
  const guint8 *der = g_bytes_get_data (g_ptr_array_index (chain, 0), &size);
  g_autofree guint8 *copy = g_memdup2 (der, size);
  gsize i;

  for (i = 0; i + sizeof ec_public_key <= size; i++)
    {
      if (memcmp (copy + i, ec_public_key, sizeof ec_public_key) == 0)
        break;
    }
  g_assert_cmpuint (i + sizeof ec_public_key, <=, size);
  copy[i + sizeof ec_public_key - 1] = 0x7f;

  return g_bytes_new (copy, size);
}

static void
test_unreadable_public_key (void)
{
  g_autoptr(GBytes) der = unknown_key_certificate ();
  g_autoptr(PinTlsPinSet) pins = test_pins_for ("leaf1.pem", NULL);
  g_autoptr(GError) error = NULL;
  g_autofree char *pin = NULL;
  gnutls_datum_t chain;
  gsize size;

  pin = pin_tls_spki_pin_for_der (der, &error);
  g_assert_error (error, PIN_TLS_ERROR, PIN_TLS_ERROR_INVALID_CERTIFICATE);
  g_assert_null (pin);
  g_clear_error (&error);

  /* The verdict names it rather than a pin, and refuses it. */
  chain.data = (guchar *) g_bytes_get_data (der, &size);
  chain.size = size;
  g_assert_false (
    pin_tls_verify_chain (pins, &chain, 1, PIN_TLS_MODE_PIN_ONLY, "host.test", NULL, &error));
  g_assert_error (error, PIN_TLS_ERROR, PIN_TLS_ERROR_PIN_MISMATCH);
  g_assert_nonnull (strstr (error->message, "(unreadable public key)"));
}

/* Pin sets ----------------------------------------------------------------- */

/* The digest that identifies a set's contents is the same whatever order
 * and syntax its pins came in. */
static void
test_pin_set_digest (void)
{
  g_autoptr(PinTlsPinSet) one = test_pins_for ("leaf1.pem", "leaf2.pem", NULL);
  g_autoptr(PinTlsPinSet) other = test_pins_for ("leaf2.pem", "leaf1.pem", NULL);
  g_autoptr(PinTlsPinSet) third = test_pins_for ("leaf2.pem", NULL);

  g_assert_cmpmem (_pin_tls_pin_set_get_digest (one), 32, _pin_tls_pin_set_get_digest (other), 32);
  g_assert_true (memcmp (_pin_tls_pin_set_get_digest (one), _pin_tls_pin_set_get_digest (third), 32)
                 != 0);
}

/* Control characters in a bad pin are shown escaped, never raw. */
static void
test_pin_control_characters (void)
{
  const char *pins[] = { "sha256/\x01\x1b[31m", NULL };
  g_autoptr(PinTlsPinSet) set = NULL;
  g_autoptr(GError) error = NULL;

  set = pin_tls_pin_set_new (pins, &error);
  g_assert_error (error, PIN_TLS_ERROR, PIN_TLS_ERROR_INVALID_PIN);
  g_assert_nonnull (strstr (error->message, "\\x01\\x1b[31m"));
  g_assert_null (strchr (error->message, '\x1b'));
}

/* Server names --------------------------------------------------------- */

static void
assert_invalid_name (const char *name,
                     const char *reason)
{
  g_autoptr(PinTlsPinSet) pins = test_pins_for ("leaf1.pem", NULL);
  g_autoptr(GPtrArray) chain = test_load_der_chain ("leaf1.pem");
  g_autoptr(GError) error = NULL;
  gnutls_datum_t der;
  gsize size;

  der.data = (guchar *) g_bytes_get_data (g_ptr_array_index (chain, 0), &size);
  der.size = size;
  g_assert_false (pin_tls_verify_chain (pins, &der, 1, PIN_TLS_MODE_PIN_ONLY, name, NULL, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, reason));
}

static void
test_name_too_long (void)
{
  g_autoptr(GString) name = g_string_new (NULL);

  while (name->len < 300)
    g_string_append (name, "label.");
  g_string_append (name, "test");

  assert_invalid_name (name->str, "longer than 253");
}

static void
test_name_not_utf8 (void)
{
  assert_invalid_name ("\xff\xfe.test", "not a valid host name");
}

/* Every kind of GSocketConnectable a connection may be given as its server
 * identity, and one that names no host. */
static void
test_identity_kinds (void)
{
  g_autoptr(GSocketConnectable) address = g_network_address_new ("Host.Test", 443);
  g_autoptr(GSocketConnectable) service = g_network_service_new ("https", "tcp", "host.test");
  g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketConnectable) socket_address =
    G_SOCKET_CONNECTABLE (g_inet_socket_address_new (loopback, 443));
  g_autoptr(GSocketConnectable) proxy = G_SOCKET_CONNECTABLE (
    g_proxy_address_new (loopback, 1080, "socks", "host.test", 443, NULL, NULL));
  g_autofree char *address_name = _pin_tls_identity_host_name (address);
  g_autofree char *service_name = _pin_tls_identity_host_name (service);
  g_autofree char *socket_name = _pin_tls_identity_host_name (socket_address);
  g_autofree char *proxy_name = _pin_tls_identity_host_name (proxy);

  g_assert_cmpstr (address_name, ==, "Host.Test");
  g_assert_cmpstr (service_name, ==, "host.test");
  g_assert_cmpstr (socket_name, ==, "127.0.0.1");
  /* A GProxyAddress is an inet socket address: the proxy's address. */
  g_assert_cmpstr (proxy_name, ==, "127.0.0.1");
}

static void
test_identity_without_host (void)
{
  g_autoptr(GSocketConnectable) unix_address =
    G_SOCKET_CONNECTABLE (g_unix_socket_address_new ("/nonexistent"));
  g_autofree char *name = _pin_tls_identity_host_name (unix_address);
  g_autoptr(GError) error = NULL;

  g_assert_null (name);
  g_assert_null (_pin_tls_normalize_host_name (name, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
}

/* Trust and certificate authorities ------------------------------------ */

/* A trust anchor with the name of leaf1's issuer but another key: the
 * path may not end there, and CA validation refuses the chain. */
static void
test_anchor_not_issuer (void)
{
  g_autoptr(HostileCert) impostor = hostile_cert_new ("Intermediate A", NULL, HOSTILE_CERT_CA, 0);
  g_autoptr(PinTlsPinSet) pins = pins_for_hostile (impostor);
  g_autoptr(GBytes) impostor_der = hostile_cert_get_der (impostor);
  g_autoptr(GPtrArray) chain = test_load_der_chain ("leaf1.pem");
  g_autoptr(GError) error = NULL;
  gnutls_x509_trust_list_t trust;
  gnutls_x509_crt_t anchor;
  gnutls_datum_t der;
  gsize size;

  der.data = (guchar *) g_bytes_get_data (impostor_der, &size);
  der.size = size;
  gnutls_x509_crt_init (&anchor);
  g_assert_cmpint (gnutls_x509_crt_import (anchor, &der, GNUTLS_X509_FMT_DER), ==, 0);
  gnutls_x509_trust_list_init (&trust, 0);
  g_assert_cmpint (gnutls_x509_trust_list_add_cas (trust, &anchor, 1, 0), ==, 1);

  der.data = (guchar *) g_bytes_get_data (g_ptr_array_index (chain, 0), &size);
  der.size = size;
  g_assert_false (
    pin_tls_verify_chain (pins, &der, 1, PIN_TLS_MODE_CA_AND_PINS, "host.test", trust, &error));
  g_assert_error (error, G_TLS_ERROR, G_TLS_ERROR_BAD_CERTIFICATE);

  gnutls_x509_trust_list_deinit (trust, 1);
}

typedef struct
{
  GTlsCertificateFlags flags;
  const char *message;
} FlagsCase;

static void
test_ca_flags (void)
{
  static const FlagsCase cases[] = {
    { G_TLS_CERTIFICATE_NOT_ACTIVATED, "not valid yet" },
    { G_TLS_CERTIFICATE_REVOKED, "revoked" },
    { G_TLS_CERTIFICATE_INSECURE, "insecure algorithm" },
  };
  guint i;

  g_assert_cmpint (_pin_tls_ca_flags_from_gnutls (0, GNUTLS_CERT_INSECURE_ALGORITHM), ==,
                   G_TLS_CERTIFICATE_INSECURE);

  for (i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *text = _pin_tls_describe_ca_flags (cases[i].flags, "host.test");

      g_assert_nonnull (strstr (text, cases[i].message));
    }
}

/* A GTlsDatabase trust that has no database trusts nothing, and one with
 * no server name cannot check it. */
static void
test_database_trust_edges (void)
{
  g_autoptr(GPtrArray) chain_der = test_load_der_chain ("leaf1-chain.pem");
  g_autofree char *root_path = test_data_path ("rootA.pem");
  g_autoptr(GTlsDatabase) database = g_tls_file_database_new (root_path, NULL);
  g_autoptr(PinTlsChain) chain = NULL;
  gnutls_datum_t der[2];
  PinTlsTrust *empty = _pin_tls_trust_new_for_database (NULL, NULL);
  PinTlsTrust *trust = _pin_tls_trust_new_for_database (database, NULL);
  guint i;

  for (i = 0; i < 2; i++)
    {
      gsize size;

      der[i].data = (guchar *) g_bytes_get_data (g_ptr_array_index (chain_der, i), &size);
      der[i].size = size;
    }
  chain = _pin_tls_chain_new (der, 2, NULL);
  g_assert_nonnull (chain);
  _pin_tls_chain_build_path (chain, NULL);

  g_assert_cmpint (empty->verify (empty, chain, "host.test"), ==, G_TLS_CERTIFICATE_UNKNOWN_CA);
  g_assert_null (empty->lookup_issuer (empty, chain->certs[1]));
  g_assert_cmpint (trust->verify (trust, chain, NULL), ==, G_TLS_CERTIFICATE_BAD_IDENTITY);
  g_assert_cmpint (trust->verify (trust, chain, "host.test"), ==, 0);

  _pin_tls_trust_free (empty);
  _pin_tls_trust_free (trust);
}

static void
test_certificate_from_garbage (void)
{
  g_autoptr(GPtrArray) path = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
  g_autoptr(GTlsCertificate) certificate = NULL;
  g_autoptr(GError) error = NULL;

  g_ptr_array_add (path, g_bytes_new_static ("not DER", 7));
  certificate = _pin_tls_certificate_new_from_path (path, &error);
  g_assert_null (certificate);
  g_assert_nonnull (error);
}

/* Streams that outlive their connection -------------------------------- */

static const TestServerOptions leaf1_server = { "leaf1-chain.pem", "leaf1.key" };

static void
test_orphan_streams (void)
{
  g_autoptr(TestServer) server = test_server_new (&leaf1_server);
  g_autoptr(GSocketClient) client = g_socket_client_new ();
  g_autoptr(GSocketConnection) tcp = NULL;
  g_autoptr(GSocketConnectable) identity = g_network_address_new ("host.test", 443);
  g_autoptr(PinTlsPinSet) pins = test_pins_for ("leaf1.pem", NULL);
  g_autoptr(GInputStream) input = NULL;
  g_autoptr(GOutputStream) output = NULL;
  g_autoptr(GSource) in_source = NULL;
  g_autoptr(GSource) out_source = NULL;
  g_autoptr(GError) error = NULL;
  PinTlsClientConnection *connection;
  char byte = 0;

  tcp = g_socket_client_connect_to_host (client, test_server_get_address (server), 0, NULL, &error);
  g_assert_no_error (error);
  connection = pin_tls_client_connection_new (G_IO_STREAM (tcp), identity, pins, &error);
  g_assert_no_error (error);

  input = g_object_ref (g_io_stream_get_input_stream (G_IO_STREAM (connection)));
  output = g_object_ref (g_io_stream_get_output_stream (G_IO_STREAM (connection)));
  g_assert_true (g_pollable_output_stream_is_writable (G_POLLABLE_OUTPUT_STREAM (output)));
  g_object_unref (connection);

  g_assert_true (g_pollable_input_stream_is_readable (G_POLLABLE_INPUT_STREAM (input)));
  g_assert_true (g_pollable_output_stream_is_writable (G_POLLABLE_OUTPUT_STREAM (output)));
  in_source = g_pollable_input_stream_create_source (G_POLLABLE_INPUT_STREAM (input), NULL);
  out_source = g_pollable_output_stream_create_source (G_POLLABLE_OUTPUT_STREAM (output), NULL);
  g_assert_nonnull (in_source);
  g_assert_nonnull (out_source);

  g_assert_cmpint (g_input_stream_read (input, &byte, 1, NULL, &error), ==, -1);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CLOSED);
  g_clear_error (&error);
  g_assert_cmpint (g_output_stream_write (output, &byte, 1, NULL, &error), ==, -1);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CLOSED);
}

/* Connections ------------------------------------------------------------ */

static PinTlsClientConnection *
connection_to (guint16             port,
               GSocketConnectable *identity)
{
  g_autoptr(GSocketClient) client = g_socket_client_new ();
  g_autoptr(GSocketConnection) tcp = NULL;
  g_autoptr(PinTlsPinSet) pins = test_pins_for ("leaf1.pem", NULL);
  g_autoptr(GError) error = NULL;
  PinTlsClientConnection *connection;

  tcp = g_socket_client_connect_to_host (client, "127.0.0.1", port, NULL, &error);
  g_assert_no_error (error);
  g_socket_set_timeout (g_socket_connection_get_socket (tcp), TEST_TIMEOUT_SECONDS);
  /* The constructor insists on an identity; the properties do not. */
  connection = g_initable_new (PIN_TLS_TYPE_CLIENT_CONNECTION, NULL, &error, "base-io-stream",
                               tcp, "server-identity", identity, "pins", pins, NULL);
  g_assert_no_error (error);

  return connection;
}

/* A connection with no server identity refuses to start. */
static void
test_connection_without_identity (void)
{
  g_autoptr(TestServer) server = test_server_new (&leaf1_server);
  g_autoptr(PinTlsClientConnection) connection = NULL;
  g_autoptr(GError) error = NULL;

  connection = connection_to (test_server_get_port (server), NULL);
  g_assert_false (g_tls_connection_handshake (G_TLS_CONNECTION (connection), NULL, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
}

static void
handshake_done_cb (GObject      *source,
                   GAsyncResult *result,
                   gpointer      data)
{
  gboolean *done = data;
  g_autoptr(GError) error = NULL;

  g_assert_true (g_tls_connection_handshake_finish (G_TLS_CONNECTION (source), result,
                                                    &error));
  g_assert_no_error (error);
  *done = TRUE;
}

/* A handshake asked for again, blocking or not, once it is done, is done
 * at once: no second handshake takes place. */
static void
test_handshake_again (void)
{
  g_autoptr(TestServer) server = test_server_new (&leaf1_server);
  g_autoptr(GSocketConnectable) identity = NULL;
  g_autoptr(PinTlsClientConnection) connection = NULL;
  g_autoptr(GError) error = NULL;
  gboolean done = FALSE;

  identity = g_network_address_new ("host.test", test_server_get_port (server));
  connection = connection_to (test_server_get_port (server), identity);
  g_assert_true (g_tls_connection_handshake (G_TLS_CONNECTION (connection), NULL, &error));
  g_assert_true (g_tls_connection_handshake (G_TLS_CONNECTION (connection), NULL, &error));
  g_assert_no_error (error);

  g_tls_connection_handshake_async (G_TLS_CONNECTION (connection), G_PRIORITY_DEFAULT, NULL,
                                    handshake_done_cb, &done);
  while (!done)
    g_main_context_iteration (NULL, TRUE);

  g_io_stream_close (G_IO_STREAM (connection), NULL, &error);
  g_assert_no_error (error);
}

/* A server that asks for a client certificate names the authorities it
 * accepts; the client sends none, and the handshake goes on. */
static void
test_accepted_cas (void)
{
  HostileOptions options = { HOSTILE_TLS, NULL };
  g_autoptr(HostileServer) server = NULL;
  g_autoptr(GSocketConnectable) identity = NULL;
  g_autoptr(PinTlsClientConnection) connection = NULL;
  g_autoptr(GError) error = NULL;
  GList *accepted;

  options.client_ca = "rootA.pem";
  server = hostile_server_new (&options);
  identity = g_network_address_new ("host.test", hostile_server_get_port (server));
  connection = connection_to (hostile_server_get_port (server), identity);

  g_assert_true (g_tls_connection_handshake (G_TLS_CONNECTION (connection), NULL, &error));
  g_assert_no_error (error);
  accepted = g_tls_client_connection_get_accepted_cas (G_TLS_CLIENT_CONNECTION (connection));
  g_assert_cmpuint (g_list_length (accepted), ==, 1);
  g_list_free_full (accepted, (GDestroyNotify) g_byte_array_unref);

  g_io_stream_close (G_IO_STREAM (connection), NULL, &error);
  g_assert_no_error (error);
}

/* Connecting and fetching ---------------------------------------------- */

/* A loopback port nobody listens on. */
static guint16
closed_port (void)
{
  g_autoptr(GSocket) socket =
    g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, NULL);
  g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) any = g_inet_socket_address_new (loopback, 0);
  g_autoptr(GSocketAddress) bound = NULL;

  g_assert_true (g_socket_bind (socket, any, FALSE, NULL));
  bound = g_socket_get_local_address (socket, NULL);

  /* Bound but not listening: connections are refused. */
  return g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
}

static void
test_connect_failures (void)
{
  g_autoptr(PinTlsPinSet) pins = test_pins_for ("leaf1.pem", NULL);
  g_autoptr(PinTlsClientConnection) connection = NULL;
  g_autoptr(GPtrArray) chain = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *refused = g_strdup_printf ("127.0.0.1:%u", closed_port ());

  connection = pin_tls_connect ("[::1", 443, pins, NULL, &error);
  g_assert_null (connection);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);

  connection = pin_tls_connect (refused, 443, pins, NULL, &error);
  g_assert_null (connection);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED);
  g_clear_error (&error);

  chain = pin_tls_fetch_server_chain (refused, 443, NULL, NULL, &error);
  g_assert_null (chain);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED);
  g_clear_error (&error);

  chain = pin_tls_fetch_server_chain (refused, 443, "bad..name", NULL, &error);
  g_assert_null (chain);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);

  chain = pin_tls_fetch_server_chain ("[::1", 443, NULL, NULL, &error);
  g_assert_null (chain);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
}

/* A server that answers with an alert has no chain to fetch. */
static void
test_fetch_alert (void)
{
  g_autoptr(GBytes) alert = g_bytes_new_static ("\x15\x03\x03\x00\x02\x02\x28", 7);
  HostileOptions options = { HOSTILE_RAW };
  g_autoptr(HostileServer) server = NULL;
  g_autoptr(GPtrArray) chain = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *address = NULL;

  options.reply = alert;
  options.cut = HOSTILE_CUT_CLOSE;
  server = hostile_server_new (&options);
  address = g_strdup_printf ("127.0.0.1:%u", hostile_server_get_port (server));

  chain = pin_tls_fetch_server_chain (address, 443, "host.test", NULL, &error);
  g_assert_null (chain);
  g_assert_error (error, G_TLS_ERROR, G_TLS_ERROR_MISC);
  g_assert_nonnull (strstr (error->message, "Handshake failed"));
}

/* GnuTLS sessions ------------------------------------------------------ */

static int
refuse_extension_cb (gnutls_session_t     session,
                     const unsigned char *data,
                     size_t               size)
{
  return 0;
}

static int
send_nothing_cb (gnutls_session_t session,
                 gnutls_buffer_t  extension)
{
  return 0;
}

/* The session's private extension number is taken by someone else: pins
 * cannot be attached, and the caller hears so. */
static void
test_enforce_extension_taken (void)
{
  g_autoptr(PinTlsPinSet) pins = test_pins_for ("leaf1.pem", NULL);
  g_autoptr(GError) error = NULL;
  gnutls_session_t session;
  gboolean enforced;

  gnutls_init (&session, GNUTLS_CLIENT);
  g_assert_cmpint (gnutls_session_ext_register (session, "someone-else", 0xFF5A, GNUTLS_EXT_TLS,
                                                refuse_extension_cb, send_nothing_cb, NULL, NULL,
                                                NULL, 0),
                   ==, 0);

  enforced =
    pin_tls_session_enforce_pins (session, pins, PIN_TLS_MODE_PIN_ONLY, "host.test", &error);
  g_assert_false (enforced);
  g_assert_error (error, G_TLS_ERROR, G_TLS_ERROR_MISC);
  g_clear_error (&error);

  /* A name that cannot be a host name is refused before anything else. */
  enforced =
    pin_tls_session_enforce_pins (session, pins, PIN_TLS_MODE_PIN_ONLY, "bad..name", &error);
  g_assert_false (enforced);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
  gnutls_deinit (session);
}

/* The owner's check after a resumed handshake, on a session without pins:
 * it fails instead of passing a session nobody checked. */
static void
test_check_resumed_without_pins (void)
{
  g_autoptr(GError) error = NULL;
  gnutls_session_t bare;

  gnutls_init (&bare, GNUTLS_CLIENT);
  g_assert_false (_pin_tls_session_check_resumed (bare, &error));
  g_assert_error (error, G_TLS_ERROR, G_TLS_ERROR_MISC);
  gnutls_deinit (bare);
}

typedef struct
{
  int code;
  gboolean handshaking;
  GQuark (*domain)(void);
  int error_code;
} GnutlsErrorCase;

static void
test_error_mapping (void)
{
  static const GnutlsErrorCase cases[] = {
    { GNUTLS_E_CERTIFICATE_ERROR, TRUE, g_tls_error_quark, G_TLS_ERROR_BAD_CERTIFICATE },
    { GNUTLS_E_CERTIFICATE_REQUIRED, TRUE, g_tls_error_quark, G_TLS_ERROR_CERTIFICATE_REQUIRED },
    { GNUTLS_E_NO_CERTIFICATE_FOUND, TRUE, g_tls_error_quark, G_TLS_ERROR_CERTIFICATE_REQUIRED },
    { GNUTLS_E_INAPPROPRIATE_FALLBACK, TRUE, g_tls_error_quark,
      G_TLS_ERROR_INAPPROPRIATE_FALLBACK },
    { GNUTLS_E_PREMATURE_TERMINATION, TRUE, g_tls_error_quark, G_TLS_ERROR_NOT_TLS },
    { GNUTLS_E_SESSION_EOF, TRUE, g_tls_error_quark, G_TLS_ERROR_NOT_TLS },
    { GNUTLS_E_PREMATURE_TERMINATION, FALSE, g_tls_error_quark, G_TLS_ERROR_EOF },
    { GNUTLS_E_SESSION_EOF, FALSE, g_tls_error_quark, G_TLS_ERROR_EOF },
    { GNUTLS_E_PULL_ERROR, FALSE, g_tls_error_quark, G_TLS_ERROR_MISC },
    { GNUTLS_E_DECRYPTION_FAILED, FALSE, g_tls_error_quark, G_TLS_ERROR_MISC },
  };
  gnutls_session_t session;
  guint i;

  gnutls_init (&session, GNUTLS_CLIENT);
  for (i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GError) error =
        _pin_tls_error_from_gnutls (session, cases[i].code, cases[i].handshaking);

      g_assert_error (error, cases[i].domain (), cases[i].error_code);
    }
  gnutls_deinit (session);
}

/* A handshake that failed for a reason of its own, with pins installed
 * but no verdict reached, is explained by GnuTLS's error. */
static void
test_handshake_error_without_verdict (void)
{
  g_autoptr(PinTlsPinSet) pins = test_pins_for ("leaf1.pem", NULL);
  g_autoptr(GError) error = NULL;
  gnutls_session_t session;

  gnutls_init (&session, GNUTLS_CLIENT);
  g_assert_true (
    pin_tls_session_enforce_pins (session, pins, PIN_TLS_MODE_PIN_ONLY, "host.test", NULL));
  error = pin_tls_session_handshake_error (session, GNUTLS_E_PUSH_ERROR);
  g_assert_error (error, G_TLS_ERROR, G_TLS_ERROR_NOT_TLS);
  gnutls_deinit (session);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/pintls/edges/certificate-without-der", test_certificate_without_der);
  g_test_add_func ("/pintls/edges/unreadable-public-key", test_unreadable_public_key);
  g_test_add_func ("/pintls/edges/pin-set-digest", test_pin_set_digest);
  g_test_add_func ("/pintls/edges/pin-control-characters", test_pin_control_characters);
  g_test_add_func ("/pintls/edges/name/too-long", test_name_too_long);
  g_test_add_func ("/pintls/edges/name/not-utf8", test_name_not_utf8);
  g_test_add_func ("/pintls/edges/identity/kinds", test_identity_kinds);
  g_test_add_func ("/pintls/edges/identity/without-host", test_identity_without_host);
  g_test_add_func ("/pintls/edges/trust/anchor-not-issuer", test_anchor_not_issuer);
  g_test_add_func ("/pintls/edges/trust/ca-flags", test_ca_flags);
  g_test_add_func ("/pintls/edges/trust/database", test_database_trust_edges);
  g_test_add_func ("/pintls/edges/certificate-from-garbage", test_certificate_from_garbage);
  g_test_add_func ("/pintls/edges/orphan-streams", test_orphan_streams);
  g_test_add_func ("/pintls/edges/connection/without-identity",
                   test_connection_without_identity);
  g_test_add_func ("/pintls/edges/connection/handshake-again", test_handshake_again);
  g_test_add_func ("/pintls/edges/connection/accepted-cas", test_accepted_cas);
  g_test_add_func ("/pintls/edges/connect-failures", test_connect_failures);
  g_test_add_func ("/pintls/edges/fetch-alert", test_fetch_alert);
  g_test_add_func ("/pintls/edges/gnutls/extension-taken", test_enforce_extension_taken);
  g_test_add_func ("/pintls/edges/gnutls/check-resumed-without-pins",
                   test_check_resumed_without_pins);
  g_test_add_func ("/pintls/edges/gnutls/error-mapping", test_error_mapping);
  g_test_add_func ("/pintls/edges/gnutls/handshake-error-without-verdict",
                   test_handshake_error_without_verdict);

  return g_test_run ();
}
