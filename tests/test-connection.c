/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* PinTlsClientConnection against the in-process test server. meson runs
 * this program once with the server restricted to TLS 1.2 and once to
 * TLS 1.3. */

#define _GNU_SOURCE /* POLLRDHUP */

#include "test-utils.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* What the bulk test moves each way: the writer's chunk repeats a pattern
 * of 251 bytes, a prime, so that a record lost, doubled or reordered shows. */
#define BULK_SIZE (64 * 1024 * 1024)
#define BULK_PATTERN 251
#define BULK_CHUNK (BULK_PATTERN * 1024)

static const TestServerOptions leaf1_server = { "leaf1-chain.pem", "leaf1.key" };
static const TestServerOptions leaf2_server = { "leaf2-chain.pem", "leaf2.key" };
static const TestServerOptions self_server = { "self.pem", "self.key" };
static const TestServerOptions no_close_notify_server = {
  "leaf1-chain.pem", "leaf1.key",
  .greeting = "bye\n",
  .no_close_notify = TRUE,
};
static const TestServerOptions alpn_server = {
  "leaf1-chain.pem", "leaf1.key",
  .alpn = "pintls/1",
};
static const TestServerOptions http_server = {
  .no_tls = TRUE,
  .greeting = "HTTP/1.1 400 Bad Request\r\n\r\n",
};
static const TestServerOptions silent_server = { .no_tls = TRUE };
static const TestServerOptions paused_server = {
  "leaf1-chain.pem", "leaf1.key",
  .pause = TEST_SERVER_PAUSE_AFTER_HANDSHAKE,
};
static const TestServerOptions paused_first_server = {
  "leaf1-chain.pem", "leaf1.key",
  .pause = TEST_SERVER_PAUSE_BEFORE_HANDSHAKE,
};
static const TestServerOptions renegotiating_server = {
  "leaf1-chain.pem", "leaf1.key",
  .greeting = "hello\n",
  .renegotiate = TRUE,
  .renegotiate_chain = "leaf2-chain.pem",
  .renegotiate_key = "leaf2.key",
};
static const TestServerOptions concurrent_server = {
  "leaf1-chain.pem", "leaf1.key",
  .concurrent = TRUE,
};
/* Its greeting, made in main(), spans several TLS records. */
static TestServerOptions long_greeting_server = {
  "leaf1-chain.pem", "leaf1.key",
  .no_close_notify = TRUE,
};
static const TestServerOptions resuming_server = {
  "leaf1-chain.pem", "leaf1.key",
  .tickets = TRUE,
};
static const TestServerOptions session_id_server = {
  "leaf1-chain.pem", "leaf1.key",
  .priority = "NORMAL:-VERS-ALL:+VERS-TLS1.2",
  .session_cache = TRUE,
};
static const TestServerOptions tickets_and_ids_server = {
  "leaf1-chain.pem", "leaf1.key",
  .tickets = TRUE,
  .session_cache = TRUE,
};
static const char *const gnutls_serv_session_ids[] = {
  "--noticket", "--priority=NORMAL:-VERS-ALL:+VERS-TLS1.2", NULL
};
static const char *const gnutls_serv_tls13_tickets[] = {
  "--priority=NORMAL:-VERS-ALL:+VERS-TLS1.3", NULL
};
static const TestServerOptions client_certificate_server = {
  "leaf1-chain.pem", "leaf1.key",
  .request_certificate = "rootA.pem",
};
static const TestServerOptions early_greeting_server = {
  "leaf2-chain.pem", "leaf2.key",
  .priority = "NORMAL:-VERS-ALL:+VERS-TLS1.3",
  .greeting = "early\n",
  .early_greeting = TRUE,
};
static const TestServerOptions tls10_server = {
  "leaf1-chain.pem", "leaf1.key",
  .priority = "NORMAL:-VERS-ALL:+VERS-TLS1.0",
};
static const TestServerOptions tls11_server = {
  "leaf1-chain.pem", "leaf1.key",
  .priority = "NORMAL:-VERS-ALL:+VERS-TLS1.1",
};
static const TestServerOptions no_ems_server = {
  "leaf1-chain.pem", "leaf1.key",
  .priority = "NORMAL:-VERS-ALL:+VERS-TLS1.2:%NO_SESSION_HASH",
};

/* Fixture -------------------------------------------------------------- */

typedef struct
{
  TestServer *server;
  PinTlsClientConnection *connection;
  GSocketConnection *tcp;   /* weak: the connection's base stream */
  GThread *test_thread;
} Fixture;

static void
fixture_setup (Fixture      *fixture,
               gconstpointer data)
{
  fixture->server = test_server_new (data);
  fixture->test_thread = g_thread_self ();
}

/* Releases the connection and checks that it and its base stream are
 * finalized, after the main context has run what it still had for them. */
static void
fixture_teardown (Fixture      *fixture,
                  gconstpointer data)
{
  if (fixture->connection != NULL)
    {
      g_object_add_weak_pointer (G_OBJECT (fixture->connection),
                                 (gpointer *) &fixture->connection);
      g_object_unref (fixture->connection);
    }

  while (g_main_context_iteration (NULL, FALSE))
    ;
  g_assert_null (fixture->connection);
  g_assert_null (fixture->tcp);

  test_server_free (fixture->server);
}

static GSocketConnection *
connect_tcp (Fixture *fixture)
{
  g_autoptr(GSocketClient) client = g_socket_client_new ();
  g_autoptr(GError) error = NULL;
  GSocketConnection *tcp;

  tcp = g_socket_client_connect_to_host (client, test_server_get_address (fixture->server), 0,
                                         NULL, &error);
  g_assert_no_error (error);

  /* No blocking operation of a test can hang. */
  g_socket_set_timeout (g_socket_connection_get_socket (tcp), TEST_TIMEOUT_SECONDS);

  return tcp;
}

static void
fixture_watch_tcp (Fixture           *fixture,
                   GSocketConnection *tcp)
{
  fixture->tcp = tcp;
  g_object_add_weak_pointer (G_OBJECT (tcp), (gpointer *) &fixture->tcp);
}

/* Connects to the server as @identity, with @pins, without a handshake. */
static void
fixture_connect (Fixture      *fixture,
                 const char   *identity,
                 PinTlsPinSet *pins)
{
  g_autoptr(GSocketConnection) tcp = connect_tcp (fixture);
  g_autoptr(GSocketConnectable) address = NULL;
  g_autoptr(GError) error = NULL;

  address = g_network_address_new (identity, test_server_get_port (fixture->server));
  fixture->connection = pin_tls_client_connection_new (G_IO_STREAM (tcp), address, pins,
                                                       &error);
  g_assert_no_error (error);
  fixture_watch_tcp (fixture, tcp);
}

static void
fixture_connect_with (Fixture    *fixture,
                      const char *identity,
                      const char *pinned_file)
{
  g_autoptr(PinTlsPinSet) pins = test_pins_for (pinned_file, NULL);

  fixture_connect (fixture, identity, pins);
}

/* CA_AND_PINS mode with rootA as the only trusted authority. */
static void
fixture_trust_root_a (Fixture *fixture)
{
  g_autofree char *path = test_data_path ("rootA.pem");
  g_autoptr(GTlsDatabase) database = NULL;
  g_autoptr(GError) error = NULL;

  database = g_tls_file_database_new (path, &error);
  g_assert_no_error (error);

  pin_tls_client_connection_set_mode (fixture->connection, PIN_TLS_MODE_CA_AND_PINS);
  g_tls_connection_set_database (G_TLS_CONNECTION (fixture->connection), database);
}

static gboolean
fixture_handshake (Fixture *fixture,
                   GError **error)
{
  return g_tls_connection_handshake (G_TLS_CONNECTION (fixture->connection), NULL, error);
}

static GInputStream *
fixture_input (Fixture *fixture)
{
  return g_io_stream_get_input_stream (G_IO_STREAM (fixture->connection));
}

static GOutputStream *
fixture_output (Fixture *fixture)
{
  return g_io_stream_get_output_stream (G_IO_STREAM (fixture->connection));
}

typedef void (*FixtureTestFunc) (Fixture      *fixture,
                                 gconstpointer data);

static void
add_test (const char              *path,
          const TestServerOptions *options,
          FixtureTestFunc          test)
{
  g_autofree char *full_path = g_strconcat ("/pintls/connection/", path, NULL);

  g_test_add_vtable (full_path, sizeof (Fixture), options,
                     (GTestFixtureFunc) fixture_setup, (GTestFixtureFunc) test,
                     (GTestFixtureFunc) fixture_teardown);
}

/* Helpers -------------------------------------------------------------- */

static gboolean
source_fired_cb (GObject *stream,
                 gpointer data)
{
  gboolean *fired = data;

  *fired = TRUE;
  return G_SOURCE_REMOVE;
}

/* A source of the output stream that must fire only after the handshake,
 * when a write can go through. */
static gboolean
writable_after_handshake_cb (GObject *stream,
                             gpointer data)
{
  gboolean *fired = data;

  g_assert_true (g_pollable_output_stream_is_writable (G_POLLABLE_OUTPUT_STREAM (stream)));
  *fired = TRUE;
  return G_SOURCE_REMOVE;
}

static gboolean
timed_out_cb (gpointer data)
{
  gboolean *timed_out = data;

  *timed_out = TRUE;
  return G_SOURCE_REMOVE;
}

/* Runs the main context until *@done; a test that would wait for ever
 * fails instead. */
static void
iterate_until (const gboolean *done)
{
  gboolean timed_out = FALSE;
  guint guard = g_timeout_add_seconds (TEST_TIMEOUT_SECONDS, timed_out_cb, &timed_out);

  while (!*done && !timed_out)
    g_main_context_iteration (NULL, TRUE);

  g_assert_false (timed_out);
  g_source_remove (guard);
}

/* What an asynchronous call gave its callback, and on which thread. */
typedef struct
{
  GAsyncResult *result;
  GThread *thread;
  gboolean done;
} AsyncWait;

static void
async_wait_cb (GObject      *source,
               GAsyncResult *result,
               gpointer      data)
{
  AsyncWait *wait = data;

  wait->result = g_object_ref (result);
  wait->thread = g_thread_self ();
  wait->done = TRUE;
}

static void
async_wait_clear (AsyncWait *wait)
{
  g_clear_object (&wait->result);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (AsyncWait, async_wait_clear)

/* For operations that must complete exactly once: counts the calls and
 * keeps the last result. */
static GAsyncResult *last_result;

static void
count_calls_cb (GObject      *source,
                GAsyncResult *result,
                gpointer      data)
{
  guint *n_calls = data;

  g_set_object (&last_result, result);
  (*n_calls)++;
}

/* Runs one iteration of the main context, waiting for it if need be. */
static void
iterate_once (void)
{
  gboolean timed_out = FALSE;
  guint guard = g_timeout_add_seconds (TEST_TIMEOUT_SECONDS, timed_out_cb, &timed_out);

  g_main_context_iteration (NULL, TRUE);

  g_assert_false (timed_out);
  g_source_remove (guard);
}

static void
iterate_until_count (const guint *count,
                     guint        expected)
{
  gboolean timed_out = FALSE;
  guint guard = g_timeout_add_seconds (TEST_TIMEOUT_SECONDS, timed_out_cb, &timed_out);

  while (*count < expected && !timed_out)
    g_main_context_iteration (NULL, TRUE);

  g_assert_false (timed_out);
  g_source_remove (guard);
}

/* The connection's socket does not wait for acknowledgements before
 * sending the handshake's last flight. */
static void
assert_no_nagle (Fixture *fixture)
{
  GSocket *socket = g_socket_connection_get_socket (fixture->tcp);
  g_autoptr(GError) error = NULL;
  int value = 0;

  g_assert_true (g_socket_get_option (socket, IPPROTO_TCP, TCP_NODELAY, &value, &error));
  g_assert_no_error (error);
  g_assert_cmpint (value, !=, 0);
}

static void
assert_certificate_is (GTlsCertificate *certificate,
                       const char      *name)
{
  g_autoptr(GPtrArray) chain = test_load_der_chain (name);
  g_autoptr(GByteArray) der = NULL;
  GBytes *expected = g_ptr_array_index (chain, 0);

  g_assert_nonnull (certificate);
  g_object_get (certificate, "certificate", &der, NULL);
  g_assert_cmpmem (der->data, der->len,
                   g_bytes_get_data (expected, NULL), g_bytes_get_size (expected));
}

static void
assert_presented_pins (Fixture    *fixture,
                       const char *leaf,
                       const char *issuer)
{
  g_auto(GStrv) presented = NULL;
  g_auto(GStrv) property = NULL;
  g_autofree char *leaf_pin = test_certtool_pin (leaf);
  g_autofree char *issuer_pin = test_certtool_pin (issuer);

  presented = pin_tls_client_connection_get_presented_pins (fixture->connection);
  g_object_get (fixture->connection, "presented-pins", &property, NULL);

  g_assert_cmpuint (g_strv_length (presented), ==, 2);
  g_assert_cmpstr (presented[0], ==, leaf_pin);
  g_assert_cmpstr (presented[1], ==, issuer_pin);
  g_assert_true (g_strv_equal ((const char *const *) presented,
                               (const char *const *) property));
}

static void
assert_server_refused (Fixture *fixture)
{
  g_autoptr(GBytes) received = NULL;

  test_server_wait (fixture->server);
  received = test_server_get_received (fixture->server);

  g_assert_cmpint (test_server_get_handshake_result (fixture->server), ==,
                   GNUTLS_E_FATAL_ALERT_RECEIVED);
  g_assert_cmpint (test_server_get_alert (fixture->server), ==, GNUTLS_A_BAD_CERTIFICATE);
  g_assert_cmpuint (g_bytes_get_size (received), ==, 0);
}

static void
assert_server_received (Fixture    *fixture,
                        const char *text)
{
  g_autoptr(GBytes) received = NULL;

  test_server_wait (fixture->server);
  received = test_server_get_received (fixture->server);

  g_assert_cmpint (test_server_get_handshake_result (fixture->server), ==, 0);
  g_assert_cmpmem (g_bytes_get_data (received, NULL), g_bytes_get_size (received),
                   text, strlen (text));
}

static void
write_text (Fixture    *fixture,
            const char *text)
{
  g_autoptr(GError) error = NULL;

  g_output_stream_write_all (fixture_output (fixture), text, strlen (text), NULL, NULL,
                             &error);
  g_assert_no_error (error);
}

static void
read_text (Fixture    *fixture,
           const char *expected)
{
  gsize length = strlen (expected);
  g_autofree char *buffer = g_malloc (length);
  g_autoptr(GError) error = NULL;
  gsize n_read = 0;

  g_input_stream_read_all (fixture_input (fixture), buffer, length, &n_read, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpmem (buffer, n_read, expected, length);
}

static void
close_connection (Fixture *fixture)
{
  g_autoptr(GError) error = NULL;

  g_assert_true (g_io_stream_close (G_IO_STREAM (fixture->connection), NULL, &error));
  g_assert_no_error (error);
}

static GTlsProtocolVersion
expected_protocol_version (void)
{
  const char *version = test_tls_version ();

  if (version != NULL && g_str_equal (version, "1.2"))
    return G_TLS_PROTOCOL_VERSION_TLS_1_2;

  return G_TLS_PROTOCOL_VERSION_TLS_1_3;
}

static void
count_cb (GObject    *object,
          GParamSpec *pspec,
          gpointer    data)
{
  guint *count = data;

  (*count)++;
}

/* Handshake and properties --------------------------------------------- */

static void
assert_peer (Fixture *fixture)
{
  GTlsConnection *connection = G_TLS_CONNECTION (fixture->connection);
  GTlsCertificate *peer = g_tls_connection_get_peer_certificate (connection);

  assert_certificate_is (peer, "leaf1.pem");
  assert_certificate_is (g_tls_certificate_get_issuer (peer), "intA.pem");
  g_assert_cmpuint (g_tls_connection_get_peer_certificate_errors (connection), ==, 0);
  assert_presented_pins (fixture, "leaf1.pem", "intA.pem");
}

static void
assert_session (Fixture *fixture)
{
  GTlsConnection *connection = G_TLS_CONNECTION (fixture->connection);
  g_autofree char *negotiated = NULL;
  g_autofree char *ciphersuite = NULL;
  g_autofree char *getter_ciphersuite = NULL;
  GTlsProtocolVersion version;

  g_object_get (connection, "negotiated-protocol", &negotiated,
                "ciphersuite-name", &ciphersuite, "protocol-version", &version, NULL);

  g_assert_cmpint (version, ==, expected_protocol_version ());
  g_assert_cmpint (g_tls_connection_get_protocol_version (connection), ==, version);
  g_assert_nonnull (ciphersuite);
  getter_ciphersuite = g_tls_connection_get_ciphersuite_name (connection);
  g_assert_cmpstr (getter_ciphersuite, ==, ciphersuite);
  g_assert_null (negotiated);
  g_assert_null (g_tls_connection_get_negotiated_protocol (connection));
}

/* The default database, and no reference left behind for reading it. */
static void
assert_default_database (GTlsConnection *connection)
{
  g_autoptr(GTlsDatabase) expected = NULL;
  guint ref_count;

  expected = g_tls_backend_get_default_database (g_tls_backend_get_default ());
  ref_count = G_OBJECT (expected)->ref_count;

  g_assert_true (g_tls_connection_get_database (connection) == expected);
  g_assert_cmpuint (G_OBJECT (expected)->ref_count, ==, ref_count);
}

static void
assert_configuration (Fixture            *fixture,
                      GSocketConnectable *identity)
{
  GTlsConnection *connection = G_TLS_CONNECTION (fixture->connection);
  GTlsClientConnection *client = G_TLS_CLIENT_CONNECTION (fixture->connection);
  g_autoptr(GIOStream) base = NULL;
  GList *accepted_cas = NULL;

  g_object_get (connection, "base-io-stream", &base, "accepted-cas", &accepted_cas, NULL);

  g_assert_true (base == G_IO_STREAM (fixture->tcp));
  g_assert_null (accepted_cas);
  assert_default_database (connection);
  g_assert_true (g_tls_connection_get_require_close_notify (connection));
  g_assert_true (g_tls_client_connection_get_server_identity (client) == identity);
  g_assert_cmpint (pin_tls_client_connection_get_mode (fixture->connection), ==,
                   PIN_TLS_MODE_PIN_ONLY);
  G_GNUC_BEGIN_IGNORE_DEPRECATIONS
  g_assert_cmpuint (g_tls_client_connection_get_validation_flags (client), ==,
                    G_TLS_CERTIFICATE_VALIDATE_ALL);
  g_assert_true (g_tls_connection_get_use_system_certdb (connection));
  g_assert_false (g_tls_client_connection_get_use_ssl3 (client));
  g_assert_cmpint (g_tls_connection_get_rehandshake_mode (connection), ==,
                   G_TLS_REHANDSHAKE_SAFELY);
  G_GNUC_END_IGNORE_DEPRECATIONS
}

static void
test_handshake_sync (Fixture      *fixture,
                     gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  GSocketConnectable *identity;
  guint n_notified = 0;

  fixture_connect_with (fixture, "host.test", "leaf1.pem");
  identity = g_tls_client_connection_get_server_identity (G_TLS_CLIENT_CONNECTION (fixture->connection));
  g_signal_connect (fixture->connection, "notify::peer-certificate", G_CALLBACK (count_cb),
                    &n_notified);

  g_assert_true (fixture_handshake (fixture, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (n_notified, ==, 1);

  assert_peer (fixture);
  assert_session (fixture);
  assert_configuration (fixture, identity);
}

/* A pin on the leaf decides alone, so the verdict looks at no other
 * certificate; presented-pins still lists the intermediate the server
 * sent, whether it is read before or after the peer certificate. */
static void
test_presented_pins_leaf_match (Fixture      *fixture,
                                gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  GTlsCertificate *peer;

  fixture_connect_with (fixture, "host.test", "leaf1.pem");
  g_assert_null (pin_tls_client_connection_get_presented_pins (fixture->connection));

  g_assert_true (fixture_handshake (fixture, &error));
  g_assert_no_error (error);

  assert_presented_pins (fixture, "leaf1.pem", "intA.pem");
  peer = g_tls_connection_get_peer_certificate (G_TLS_CONNECTION (fixture->connection));
  assert_certificate_is (peer, "leaf1.pem");
  assert_certificate_is (g_tls_certificate_get_issuer (peer), "intA.pem");
  assert_presented_pins (fixture, "leaf1.pem", "intA.pem");
}

/* How many times each property was notified. */
typedef struct
{
  GHashTable *counts;
} NotifyCounter;

static void
notify_counter_cb (GObject    *object,
                   GParamSpec *pspec,
                   gpointer    data)
{
  NotifyCounter *counter = data;
  guint count = GPOINTER_TO_UINT (g_hash_table_lookup (counter->counts, pspec->name));

  g_hash_table_insert (counter->counts, (gpointer) pspec->name, GUINT_TO_POINTER (count + 1));
}

static void
notify_counter_watch (NotifyCounter *counter,
                      gpointer       object)
{
  counter->counts = g_hash_table_new (g_str_hash, g_str_equal);
  g_signal_connect (object, "notify", G_CALLBACK (notify_counter_cb), counter);
}

static guint
notify_counter_get (NotifyCounter *counter,
                    const char    *name)
{
  return GPOINTER_TO_UINT (g_hash_table_lookup (counter->counts, name));
}

static void
notify_counter_clear (NotifyCounter *counter)
{
  g_clear_pointer (&counter->counts, g_hash_table_unref);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (NotifyCounter, notify_counter_clear)

/* Each property that a handshake sets is notified once, and only if it
 * changed: a connection that negotiated no application protocol does not
 * notify negotiated-protocol. */
static void
test_notify_changes (Fixture      *fixture,
                     gconstpointer data)
{
  g_auto(NotifyCounter) counter = { NULL };
  g_autoptr(GError) error = NULL;

  fixture_connect_with (fixture, "host.test", "leaf1.pem");
  notify_counter_watch (&counter, fixture->connection);

  g_assert_true (fixture_handshake (fixture, &error));
  g_assert_no_error (error);

  g_assert_cmpuint (notify_counter_get (&counter, "peer-certificate"), ==, 1);
  g_assert_cmpuint (notify_counter_get (&counter, "peer-certificate-errors"), ==, 1);
  g_assert_cmpuint (notify_counter_get (&counter, "presented-pins"), ==, 1);
  g_assert_cmpuint (notify_counter_get (&counter, "protocol-version"), ==, 1);
  g_assert_cmpuint (notify_counter_get (&counter, "ciphersuite-name"), ==, 1);
  g_assert_cmpuint (notify_counter_get (&counter, "negotiated-protocol"), ==, 0);
  g_assert_cmpuint (notify_counter_get (&counter, "accepted-cas"), ==, 0);

  /* A second call finds the handshake done and changes nothing. */
  g_assert_true (fixture_handshake (fixture, &error));
  g_assert_cmpuint (notify_counter_get (&counter, "protocol-version"), ==, 1);
  g_assert_cmpuint (notify_counter_get (&counter, "peer-certificate"), ==, 1);
}

/* Every property of GTlsConnection and GTlsClientConnection is the
 * connection's own: reading one left to GTlsConnection would warn, which
 * G_DEBUG=fatal-warnings makes fatal, and an interface property left out
 * is a critical when the class is made. */
static void
test_properties_all (Fixture      *fixture,
                     gconstpointer data)
{
  const char *gio_properties[] = {
    "base-io-stream", "require-close-notify", "rehandshake-mode", "use-system-certdb",
    "database", "interaction", "certificate", "peer-certificate",
    "peer-certificate-errors", "advertised-protocols", "negotiated-protocol",
    "protocol-version", "ciphersuite-name", "validation-flags", "server-identity",
    "use-ssl3", "accepted-cas",
  };
  g_autofree GParamSpec **pspecs = NULL;
  GObjectClass *klass;
  guint n_pspecs;
  guint i;

  fixture_connect_with (fixture, "host.test", "leaf1.pem");
  klass = G_OBJECT_GET_CLASS (fixture->connection);
  g_assert_true (G_IS_TLS_CONNECTION (fixture->connection));
  g_assert_true (G_IS_TLS_CLIENT_CONNECTION (fixture->connection));
  g_assert_true (G_IS_INITABLE (fixture->connection));

  for (i = 0; i < G_N_ELEMENTS (gio_properties); i++)
    g_assert_nonnull (g_object_class_find_property (klass, gio_properties[i]));

  pspecs = g_object_class_list_properties (klass, &n_pspecs);
  g_assert_cmpuint (n_pspecs, >=, G_N_ELEMENTS (gio_properties));
  for (i = 0; i < n_pspecs; i++)
    {
      g_auto(GValue) value = G_VALUE_INIT;

      if ((pspecs[i]->flags & G_PARAM_READABLE) == 0)
        continue;
      g_value_init (&value, pspecs[i]->value_type);
      g_object_get_property (G_OBJECT (fixture->connection), pspecs[i]->name, &value);
      if (g_str_equal (pspecs[i]->name, "accepted-cas"))
        g_assert_null (g_value_get_pointer (&value));
    }
}

/* The writable properties keep what they are given. */
static void
test_properties_round_trip (Fixture      *fixture,
                            gconstpointer data)
{
  g_autofree char *leaf = test_data_path ("leaf1.pem");
  g_autofree char *key = test_data_path ("leaf1.key");
  g_autoptr(GTlsInteraction) interaction = g_object_new (G_TYPE_TLS_INTERACTION, NULL);
  g_autoptr(GTlsCertificate) certificate = NULL;
  g_autoptr(GTlsInteraction) got_interaction = NULL;
  g_autoptr(GTlsCertificate) got_certificate = NULL;
  GTlsConnection *connection;
  g_autoptr(GError) error = NULL;

  certificate = g_tls_certificate_new_from_files (leaf, key, &error);
  g_assert_no_error (error);
  fixture_connect_with (fixture, "host.test", "leaf1.pem");
  connection = G_TLS_CONNECTION (fixture->connection);

  g_tls_connection_set_interaction (connection, interaction);
  g_tls_connection_set_certificate (connection, certificate);
  g_tls_connection_set_require_close_notify (connection, FALSE);
  pin_tls_client_connection_set_mode (fixture->connection, PIN_TLS_MODE_CA_AND_PINS);
  g_object_get (connection, "interaction", &got_interaction, "certificate", &got_certificate,
                NULL);

  g_assert_true (got_interaction == interaction);
  g_assert_true (got_certificate == certificate);
  g_assert_true (g_tls_connection_get_interaction (connection) == interaction);
  g_assert_false (g_tls_connection_get_require_close_notify (connection));
  g_assert_cmpint (pin_tls_client_connection_get_mode (fixture->connection), ==,
                   PIN_TLS_MODE_CA_AND_PINS);
  g_assert_null (g_tls_connection_get_peer_certificate (connection));
  g_assert_cmpint (g_tls_connection_get_protocol_version (connection), ==,
                   G_TLS_PROTOCOL_VERSION_UNKNOWN);
}

/* use-system-certdb only decides while no database was set: turning it
 * off means no database; a database set later wins, and so does an
 * explicit NULL, which trusts no certificate authority. */
static void
test_properties_database (Fixture      *fixture,
                          gconstpointer data)
{
  g_autofree char *root = test_data_path ("rootA.pem");
  g_autoptr(GTlsDatabase) database = NULL;
  GTlsConnection *connection;
  g_autoptr(GError) error = NULL;

  database = g_tls_file_database_new (root, &error);
  g_assert_no_error (error);
  fixture_connect_with (fixture, "host.test", "leaf1.pem");
  connection = G_TLS_CONNECTION (fixture->connection);
  assert_default_database (connection);

  G_GNUC_BEGIN_IGNORE_DEPRECATIONS
  g_tls_connection_set_use_system_certdb (connection, FALSE);
  g_assert_null (g_tls_connection_get_database (connection));
  g_tls_connection_set_database (connection, database);
  g_assert_true (g_tls_connection_get_database (connection) == database);
  g_tls_connection_set_use_system_certdb (connection, TRUE);
  g_assert_true (g_tls_connection_get_database (connection) == database);
  G_GNUC_END_IGNORE_DEPRECATIONS

  g_tls_connection_set_database (connection, NULL);
  g_assert_null (g_tls_connection_get_database (connection));
  pin_tls_client_connection_set_mode (fixture->connection, PIN_TLS_MODE_CA_AND_PINS);
  g_assert_false (fixture_handshake (fixture, &error));
  g_assert_error (error, G_TLS_ERROR, G_TLS_ERROR_BAD_CERTIFICATE);
  g_assert_cmpuint (g_tls_connection_get_peer_certificate_errors (connection), ==,
                    G_TLS_CERTIFICATE_UNKNOWN_CA);
}

/* A server identity set after construction, before the handshake, is the
 * one the handshake uses. */
static void
test_server_identity_late (Fixture      *fixture,
                           gconstpointer data)
{
  g_autoptr(GSocketConnectable) late = g_network_address_new ("late.test", 443);
  g_autofree char *server_name = NULL;
  g_autoptr(GError) error = NULL;

  fixture_connect_with (fixture, "host.test", "leaf1.pem");
  g_tls_client_connection_set_server_identity (G_TLS_CLIENT_CONNECTION (fixture->connection),
                                               late);
  g_assert_true (fixture_handshake (fixture, &error));
  g_assert_no_error (error);
  close_connection (fixture);

  test_server_wait (fixture->server);
  server_name = test_server_get_server_name (fixture->server);
  g_assert_cmpstr (server_name, ==, "late.test");
}

/* The server asks for a client certificate from rootA, and goes on
 * without one: accepted-cas names rootA, and is notified once. */
static void
test_accepted_cas (Fixture      *fixture,
                   gconstpointer data)
{
  g_auto(NotifyCounter) counter = { NULL };
  g_autoptr(GTlsCertificate) root = NULL;
  g_autoptr(GByteArray) root_der = NULL;
  g_autofree char *root_path = test_data_path ("rootA.pem");
  gnutls_x509_crt_t root_crt;
  gnutls_datum_t der;
  gnutls_datum_t subject = { NULL, 0 };
  GList *accepted_cas = NULL;
  GByteArray *dn;
  g_autoptr(GError) error = NULL;

  fixture_connect_with (fixture, "host.test", "leaf1.pem");
  notify_counter_watch (&counter, fixture->connection);
  g_assert_true (fixture_handshake (fixture, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (notify_counter_get (&counter, "accepted-cas"), ==, 1);

  root = g_tls_certificate_new_from_file (root_path, &error);
  g_assert_no_error (error);
  g_object_get (root, "certificate", &root_der, NULL);
  der.data = root_der->data;
  der.size = root_der->len;
  gnutls_x509_crt_init (&root_crt);
  g_assert_cmpint (gnutls_x509_crt_import (root_crt, &der, GNUTLS_X509_FMT_DER), ==, 0);
  g_assert_cmpint (gnutls_x509_crt_get_raw_dn (root_crt, &subject), ==, 0);

  g_object_get (fixture->connection, "accepted-cas", &accepted_cas, NULL);
  g_assert_cmpuint (g_list_length (accepted_cas), ==, 1);
  dn = accepted_cas->data;
  g_assert_cmpmem (dn->data, dn->len, subject.data, subject.size);

  g_list_free_full (accepted_cas, (GDestroyNotify) g_byte_array_unref);
  gnutls_free (subject.data);
  gnutls_x509_crt_deinit (root_crt);
}

static void
test_alpn (Fixture      *fixture,
           gconstpointer data)
{
  const char *protocols[] = { "h2", "pintls/1", NULL };
  g_auto(NotifyCounter) counter = { NULL };
  GTlsConnection *connection;
  g_autofree char *negotiated = NULL;
  g_auto(GStrv) advertised = NULL;
  g_autoptr(GError) error = NULL;

  fixture_connect_with (fixture, "host.test", "leaf1.pem");
  connection = G_TLS_CONNECTION (fixture->connection);
  g_tls_connection_set_advertised_protocols (connection, protocols);
  g_object_get (connection, "advertised-protocols", &advertised, NULL);
  g_assert_true (g_strv_equal ((const char *const *) advertised, protocols));
  notify_counter_watch (&counter, connection);

  g_assert_true (fixture_handshake (fixture, &error));
  g_assert_no_error (error);

  g_object_get (connection, "negotiated-protocol", &negotiated, NULL);
  g_assert_cmpstr (negotiated, ==, "pintls/1");
  g_assert_cmpstr (g_tls_connection_get_negotiated_protocol (connection), ==, "pintls/1");
  g_assert_cmpuint (notify_counter_get (&counter, "negotiated-protocol"), ==, 1);
}

/* The server knows no protocol the client offers, or the client offers
 * none: nothing is negotiated, and the handshake still succeeds. */
static void
test_alpn_absent (Fixture      *fixture,
                  gconstpointer data)
{
  const char *protocols[] = { "h2", NULL };
  const char *const *offer = data == &leaf1_server ? protocols : NULL;
  GTlsConnection *connection;
  g_autoptr(GError) error = NULL;

  fixture_connect_with (fixture, "host.test", "leaf1.pem");
  connection = G_TLS_CONNECTION (fixture->connection);
  g_tls_connection_set_advertised_protocols (connection, offer);

  g_assert_true (fixture_handshake (fixture, &error));
  g_assert_no_error (error);
  g_assert_null (g_tls_connection_get_negotiated_protocol (connection));
}

static GByteArray *
get_binding (Fixture               *fixture,
             GTlsChannelBindingType type,
             GError               **error)
{
  g_autoptr(GByteArray) binding = g_byte_array_new ();

  /* What the array held before is replaced, not added to. */
  g_byte_array_append (binding, (const guint8 *) "old", 3);
  if (!g_tls_connection_get_channel_binding_data (G_TLS_CONNECTION (fixture->connection),
                                                  type, binding, error))
    return NULL;

  return g_steal_pointer (&binding);
}

static void
assert_binding_is_servers (Fixture                 *fixture,
                           GTlsChannelBindingType   type,
                           gnutls_channel_binding_t server_type)
{
  g_autoptr(GBytes) expected = test_server_get_channel_binding (fixture->server, server_type);
  g_autoptr(GByteArray) binding = NULL;
  g_autoptr(GError) error = NULL;

  binding = get_binding (fixture, type, &error);
  g_assert_no_error (error);
  g_assert_nonnull (expected);
  g_assert_cmpmem (binding->data, binding->len,
                   g_bytes_get_data (expected, NULL), g_bytes_get_size (expected));
}

static void
assert_binding_unsupported (Fixture               *fixture,
                            GTlsChannelBindingType type)
{
  g_autoptr(GByteArray) binding = NULL;
  g_autoptr(GError) error = NULL;

  binding = get_binding (fixture, type, &error);
  g_assert_null (binding);
  g_assert_error (error, G_TLS_CHANNEL_BINDING_ERROR, G_TLS_CHANNEL_BINDING_ERROR_NOT_SUPPORTED);
}

/* tls-server-end-point is the SHA-256 digest of the server certificate,
 * which leaf1 is signed with; tls-unique (TLS 1.2 only) and tls-exporter
 * are what the server computed. */
static void
test_channel_binding (Fixture      *fixture,
                      gconstpointer data)
{
  g_autoptr(GPtrArray) chain = test_load_der_chain ("leaf1.pem");
  g_autoptr(GByteArray) binding = NULL;
  g_autoptr(GChecksum) checksum = g_checksum_new (G_CHECKSUM_SHA256);
  g_autoptr(GError) error = NULL;
  guint8 digest[32];
  gsize digest_length = sizeof digest;

  fixture_connect_with (fixture, "host.test", "leaf1.pem");
  binding = get_binding (fixture, G_TLS_CHANNEL_BINDING_TLS_SERVER_END_POINT, &error);
  g_assert_null (binding);
  g_assert_error (error, G_TLS_CHANNEL_BINDING_ERROR, G_TLS_CHANNEL_BINDING_ERROR_INVALID_STATE);
  g_clear_error (&error);

  g_assert_true (fixture_handshake (fixture, &error));
  write_text (fixture, "x");
  read_text (fixture, "x");
  binding = get_binding (fixture, G_TLS_CHANNEL_BINDING_TLS_SERVER_END_POINT, &error);
  g_assert_no_error (error);
  g_checksum_update (checksum, g_bytes_get_data (g_ptr_array_index (chain, 0), NULL),
                     g_bytes_get_size (g_ptr_array_index (chain, 0)));
  g_checksum_get_digest (checksum, digest, &digest_length);
  g_assert_cmpmem (binding->data, binding->len, digest, digest_length);

  close_connection (fixture);
  test_server_wait (fixture->server);
  assert_binding_is_servers (fixture, G_TLS_CHANNEL_BINDING_TLS_EXPORTER, GNUTLS_CB_TLS_EXPORTER);
  if (expected_protocol_version () == G_TLS_PROTOCOL_VERSION_TLS_1_2)
    assert_binding_is_servers (fixture, G_TLS_CHANNEL_BINDING_TLS_UNIQUE, GNUTLS_CB_TLS_UNIQUE);
  else
    assert_binding_unsupported (fixture, G_TLS_CHANNEL_BINDING_TLS_UNIQUE);
}

/* RFC 9266 defines tls-exporter for TLS 1.2 only with the extended master
 * secret, which this server refuses. */
static void
test_channel_binding_no_ems (Fixture      *fixture,
                             gconstpointer data)
{
  g_autoptr(GError) error = NULL;

  fixture_connect_with (fixture, "host.test", "leaf1.pem");
  g_assert_true (fixture_handshake (fixture, &error));
  g_assert_no_error (error);
  close_connection (fixture);
  test_server_wait (fixture->server);

  assert_binding_unsupported (fixture, G_TLS_CHANNEL_BINDING_TLS_EXPORTER);
  assert_binding_is_servers (fixture, G_TLS_CHANNEL_BINDING_TLS_UNIQUE, GNUTLS_CB_TLS_UNIQUE);
}

/* Data ----------------------------------------------------------------- */

static void
test_echo (Fixture      *fixture,
           gconstpointer data)
{
  g_autoptr(GDataInputStream) lines = NULL;
  g_autofree char *first = NULL;
  g_autofree char *second = NULL;
  g_autoptr(GError) error = NULL;

  fixture_connect_with (fixture, "host.test", "leaf1.pem");
  g_assert_true (fixture_handshake (fixture, &error));
  write_text (fixture, "ping\n");
  read_text (fixture, "ping\n");

  lines = g_data_input_stream_new (fixture_input (fixture));
  write_text (fixture, "line one\nline two\n");
  first = g_data_input_stream_read_line_utf8 (lines, NULL, NULL, &error);
  g_assert_no_error (error);
  second = g_data_input_stream_read_line_utf8 (lines, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (first, ==, "line one");
  g_assert_cmpstr (second, ==, "line two");

  close_connection (fixture);
  assert_server_received (fixture, "ping\nline one\nline two\n");
  g_assert_true (test_server_got_close_notify (fixture->server));
}

static void
read_line_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      data)
{
  GPtrArray *lines = data;
  g_autoptr(GError) error = NULL;
  char *line;

  line = g_data_input_stream_read_line_finish_utf8 (G_DATA_INPUT_STREAM (source), result, NULL,
                                                    &error);
  g_assert_no_error (error);
  g_ptr_array_add (lines, line);
}

/* GDataInputStream's asynchronous line reading, over the pollable input
 * stream, on this thread. */
static void
test_data_input_stream_async (Fixture      *fixture,
                              gconstpointer data)
{
  g_autoptr(GDataInputStream) stream = NULL;
  g_autoptr(GPtrArray) lines = g_ptr_array_new_with_free_func (g_free);
  guint i;

  fixture_connect_with (fixture, "host.test", "leaf1.pem");
  stream = g_data_input_stream_new (fixture_input (fixture));
  write_text (fixture, "line one\nline two\nline three\n");

  for (i = 0; i < 3; i++)
    {
      g_data_input_stream_read_line_async (stream, G_PRIORITY_DEFAULT, NULL, read_line_cb,
                                           lines);
      iterate_until_count (&lines->len, i + 1);
    }

  g_assert_cmpstr (g_ptr_array_index (lines, 0), ==, "line one");
  g_assert_cmpstr (g_ptr_array_index (lines, 1), ==, "line two");
  g_assert_cmpstr (g_ptr_array_index (lines, 2), ==, "line three");
}

/* g_io_stream_splice_async() between the connection and a pair of memory
 * streams: the request goes to the server, while the server's long
 * greeting, ended without close_notify (not required here), comes into
 * memory; then both are closed. */
static void
test_splice (Fixture      *fixture,
             gconstpointer data)
{
  const TestServerOptions *options = data;
  g_autoptr(GInputStream) request = NULL;
  g_autoptr(GOutputStream) reply = g_memory_output_stream_new_resizable ();
  g_autoptr(GIOStream) memory = NULL;
  g_autoptr(GBytes) received = NULL;
  g_auto(AsyncWait) wait = { NULL };
  g_autoptr(GError) error = NULL;
  GMemoryOutputStream *replied = G_MEMORY_OUTPUT_STREAM (reply);

  request = g_memory_input_stream_new_from_data ("spliced request\n", -1, NULL);
  memory = g_simple_io_stream_new (request, reply);
  fixture_connect_with (fixture, "host.test", "leaf1.pem");
  g_tls_connection_set_require_close_notify (G_TLS_CONNECTION (fixture->connection), FALSE);

  g_io_stream_splice_async (G_IO_STREAM (fixture->connection), memory,
                            G_IO_STREAM_SPLICE_CLOSE_STREAM1 | G_IO_STREAM_SPLICE_CLOSE_STREAM2
                            | G_IO_STREAM_SPLICE_WAIT_FOR_BOTH,
                            G_PRIORITY_DEFAULT, NULL, async_wait_cb, &wait);
  iterate_until (&wait.done);
  g_assert_true (g_io_stream_splice_finish (wait.result, &error));
  g_assert_no_error (error);

  g_assert_true (g_io_stream_is_closed (G_IO_STREAM (fixture->connection)));
  g_assert_cmpmem (g_memory_output_stream_get_data (replied),
                   g_memory_output_stream_get_data_size (replied),
                   options->greeting, strlen (options->greeting));
  assert_server_received (fixture, "spliced request\n");
  g_assert_true (test_server_got_close_notify (fixture->server));
}

/* After its greeting the server asks the client to renegotiate, and would
 * then present leaf2, which the pins also accept: in TLS 1.2 a HelloRequest,
 * which the client ignores, keeping the certificate it checked; in TLS 1.3
 * a KeyUpdate, which GnuTLS answers while the data keeps flowing. */
static void
test_renegotiation_refused (Fixture      *fixture,
                            gconstpointer data)
{
  g_autoptr(PinTlsPinSet) pins = test_pins_for ("leaf1.pem", "leaf2.pem", NULL);
  GTlsConnection *connection;
  g_autoptr(GError) error = NULL;

  fixture_connect (fixture, "host.test", pins);
  connection = G_TLS_CONNECTION (fixture->connection);
  g_assert_true (fixture_handshake (fixture, &error));
  g_assert_no_error (error);

  read_text (fixture, "hello\n");
  write_text (fixture, "after");
  read_text (fixture, "after");
  write_text (fixture, "again");
  read_text (fixture, "again");

  assert_certificate_is (g_tls_connection_get_peer_certificate (connection), "leaf1.pem");
  close_connection (fixture);
  assert_server_received (fixture, "afteragain");
  g_assert_false (test_server_renegotiated (fixture->server));
  g_assert_true (test_server_got_close_notify (fixture->server));
}

/* Pin decisions -------------------------------------------------------- */

static void
assert_mismatch (GError *error)
{
  g_autofree char *presented = test_certtool_pin ("leaf2.pem");
  g_autofree char *configured = test_certtool_pin ("leaf1.pem");

  g_assert_error (error, PIN_TLS_ERROR, PIN_TLS_ERROR_PIN_MISMATCH);
  g_assert_nonnull (strstr (error->message, presented));
  g_assert_nonnull (strstr (error->message, configured));
}

/* A mismatch of a server presenting leaf1 and intA to pins {leaf2}. */
static void
assert_mismatch_pinned_leaf2 (GError *error)
{
  g_autofree char *presented = test_certtool_pin ("leaf1.pem");
  g_autofree char *configured = test_certtool_pin ("leaf2.pem");

  g_assert_error (error, PIN_TLS_ERROR, PIN_TLS_ERROR_PIN_MISMATCH);
  g_assert_nonnull (strstr (error->message, presented));
  g_assert_nonnull (strstr (error->message, configured));
}

static void
take_mismatch (GError *error)
{
  assert_mismatch (error);
  g_error_free (error);
}

typedef void (*ErrorCheck) (GError *error);

static void
take_closed (GError *error)
{
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CLOSED);
  g_error_free (error);
}

/* Every way to read or write fails with the error @check expects, and the
 * streams say they are ready, so that a caller waiting on them finds out;
 * so does a handshake, if @handshake_fails. */
static void
assert_operations_fail (Fixture   *fixture,
                        ErrorCheck check,
                        gboolean   handshake_fails)
{
  GPollableInputStream *input = G_POLLABLE_INPUT_STREAM (fixture_input (fixture));
  GPollableOutputStream *output = G_POLLABLE_OUTPUT_STREAM (fixture_output (fixture));
  g_auto(AsyncWait) read_wait = { NULL };
  g_auto(AsyncWait) write_wait = { NULL };
  g_auto(AsyncWait) handshake_wait = { NULL };
  g_autoptr(GError) error = NULL;
  char byte;

  g_assert_cmpint (g_input_stream_read (G_INPUT_STREAM (input), &byte, 1, NULL, &error), ==, -1);
  check (g_steal_pointer (&error));
  g_assert_cmpint (g_output_stream_write (G_OUTPUT_STREAM (output), "x", 1, NULL, &error), ==,
                   -1);
  check (g_steal_pointer (&error));

  g_assert_true (g_pollable_input_stream_is_readable (input));
  g_assert_true (g_pollable_output_stream_is_writable (output));
  g_assert_cmpint (g_pollable_input_stream_read_nonblocking (input, &byte, 1, NULL, &error),
                   ==, -1);
  check (g_steal_pointer (&error));
  g_assert_cmpint (g_pollable_output_stream_write_nonblocking (output, "x", 1, NULL, &error),
                   ==, -1);
  check (g_steal_pointer (&error));

  g_input_stream_read_async (G_INPUT_STREAM (input), &byte, 1, G_PRIORITY_DEFAULT, NULL,
                             async_wait_cb, &read_wait);
  g_output_stream_write_async (G_OUTPUT_STREAM (output), "x", 1, G_PRIORITY_DEFAULT, NULL,
                               async_wait_cb, &write_wait);
  iterate_until (&read_wait.done);
  iterate_until (&write_wait.done);
  g_assert_cmpint (g_input_stream_read_finish (G_INPUT_STREAM (input), read_wait.result,
                                               &error), ==, -1);
  check (g_steal_pointer (&error));
  g_assert_cmpint (g_output_stream_write_finish (G_OUTPUT_STREAM (output), write_wait.result,
                                                 &error), ==, -1);
  check (g_steal_pointer (&error));

  if (!handshake_fails)
    return;

  g_assert_false (fixture_handshake (fixture, &error));
  check (g_steal_pointer (&error));
  g_tls_connection_handshake_async (G_TLS_CONNECTION (fixture->connection), G_PRIORITY_DEFAULT,
                                    NULL, async_wait_cb, &handshake_wait);
  iterate_until (&handshake_wait.done);
  g_assert_false (g_tls_connection_handshake_finish (G_TLS_CONNECTION (fixture->connection),
                                                     handshake_wait.result, &error));
  check (g_steal_pointer (&error));
}

static void
assert_failed_with_mismatch (Fixture *fixture)
{
  assert_operations_fail (fixture, take_mismatch, TRUE);
}

static void
test_mismatch (Fixture      *fixture,
               gconstpointer data)
{
  GTlsConnection *connection;
  g_autoptr(GError) error = NULL;

  fixture_connect_with (fixture, "host.test", "leaf1.pem");
  connection = G_TLS_CONNECTION (fixture->connection);

  g_assert_false (fixture_handshake (fixture, &error));
  assert_mismatch (error);
  assert_server_refused (fixture);

  assert_certificate_is (g_tls_connection_get_peer_certificate (connection), "leaf2.pem");
  g_assert_cmpuint (g_tls_connection_get_peer_certificate_errors (connection), ==,
                    G_TLS_CERTIFICATE_GENERIC_ERROR);
  assert_presented_pins (fixture, "leaf2.pem", "intA.pem");

  assert_failed_with_mismatch (fixture);
  close_connection (fixture);
}

/* How the unread-data tests end the connection. */
typedef enum
{
  END_BY_CLOSE,
  END_BY_CLOSE_ASYNC,
  END_BY_UNREF,
} EndBy;

static void
end_connection (Fixture *fixture,
                EndBy    end_by)
{
  g_auto(AsyncWait) wait = { NULL };
  g_autoptr(GError) error = NULL;

  switch (end_by)
    {
    case END_BY_CLOSE:
      close_connection (fixture);
      break;
    case END_BY_CLOSE_ASYNC:
      g_io_stream_close_async (G_IO_STREAM (fixture->connection), G_PRIORITY_DEFAULT,
                               NULL, async_wait_cb, &wait);
      iterate_until (&wait.done);
      g_assert_true (g_io_stream_close_finish (G_IO_STREAM (fixture->connection),
                                               wait.result, &error));
      g_assert_no_error (error);
      break;
    case END_BY_UNREF:
      g_clear_object (&fixture->connection);
      break;
    }
}

/* TLS 1.3: the server sends data right after its handshake flight, and the
 * client, refusing the certificate, never reads it; the application then
 * ends the connection at once. Closing a socket with unread data makes the
 * kernel reset the connection, and a server writing after that reset
 * never reads the bad_certificate alert. The connection must drain what
 * waits before it closes, so that the server still gets the alert. */
static void
test_mismatch_unread_data (Fixture      *fixture,
                           gconstpointer data)
{
  GSocket *socket;
  g_autoptr(GError) error = NULL;

  fixture_connect_with (fixture, "host.test", "leaf1.pem");
  socket = g_socket_connection_get_socket (fixture->tcp);

  g_assert_false (fixture_handshake (fixture, &error));
  assert_mismatch (error);
  g_clear_error (&error);

  /* The early data is there, unread, when the application ends it. */
  g_assert_true (g_socket_condition_timed_wait (socket, G_IO_IN,
                                                TEST_TIMEOUT_SECONDS * G_USEC_PER_SEC,
                                                NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpint (g_socket_get_available_bytes (socket), >, 0);
  end_connection (fixture, GPOINTER_TO_INT (data));

  assert_server_refused (fixture);
}

static void
test_mismatch_unread_data_close (Fixture      *fixture,
                                 gconstpointer data)
{
  test_mismatch_unread_data (fixture, GINT_TO_POINTER (END_BY_CLOSE));
}

static void
test_mismatch_unread_data_close_async (Fixture      *fixture,
                                       gconstpointer data)
{
  test_mismatch_unread_data (fixture, GINT_TO_POINTER (END_BY_CLOSE_ASYNC));
}

static void
test_mismatch_unread_data_unref (Fixture      *fixture,
                                 gconstpointer data)
{
  test_mismatch_unread_data (fixture, GINT_TO_POINTER (END_BY_UNREF));
}

/* The first write runs the handshake, and the secret never leaves
 * when the pins do not match. */
static void
test_implicit_handshake_mismatch (Fixture      *fixture,
                                  gconstpointer data)
{
  g_autoptr(GError) error = NULL;

  fixture_connect_with (fixture, "host.test", "leaf1.pem");

  g_assert_cmpint (g_output_stream_write (fixture_output (fixture), "SECRET", 6, NULL,
                                          &error), ==, -1);
  assert_mismatch (error);
  assert_server_refused (fixture);
}

static void
test_implicit_handshake (Fixture      *fixture,
                         gconstpointer data)
{
  fixture_connect_with (fixture, "host.test", "leaf1.pem");

  write_text (fixture, "SECRET");
  read_text (fixture, "SECRET");

  close_connection (fixture);
  assert_server_received (fixture, "SECRET");
}

static gboolean
accept_cb (GTlsConnection      *connection,
           GTlsCertificate     *peer_certificate,
           GTlsCertificateFlags errors,
           gpointer             data)
{
  guint *n_emitted = data;

  g_assert_nonnull (peer_certificate);
  (*n_emitted)++;

  return TRUE;
}

static gboolean
refuse_cb (GTlsConnection      *connection,
           GTlsCertificate     *peer_certificate,
           GTlsCertificateFlags errors,
           gpointer             data)
{
  guint *n_emitted = data;

  g_assert_cmpuint (errors, ==, G_TLS_CERTIFICATE_BAD_IDENTITY);
  (*n_emitted)++;

  return FALSE;
}

/* An accept-certificate handler can accept certificate authority errors,
 * never a pin mismatch, even when the two come together. */
static void
test_accept_certificate_cannot_override (Fixture      *fixture,
                                         gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  guint n_emitted = 0;

  fixture_connect_with (fixture, "other.test", "leaf1.pem");
  fixture_trust_root_a (fixture);
  g_signal_connect (fixture->connection, "accept-certificate", G_CALLBACK (accept_cb),
                    &n_emitted);

  g_assert_false (fixture_handshake (fixture, &error));
  g_assert_error (error, G_TLS_ERROR, G_TLS_ERROR_BAD_CERTIFICATE);
  g_assert_cmpuint (n_emitted, ==, 0);
  g_assert_cmpuint (g_tls_connection_get_peer_certificate_errors (G_TLS_CONNECTION (fixture->connection)),
                    ==, G_TLS_CERTIFICATE_BAD_IDENTITY | G_TLS_CERTIFICATE_GENERIC_ERROR);
  assert_server_refused (fixture);
}

static void
test_accept_certificate_pin_only (Fixture      *fixture,
                                  gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  guint n_emitted = 0;

  fixture_connect_with (fixture, "host.test", "leaf1.pem");
  g_signal_connect (fixture->connection, "accept-certificate", G_CALLBACK (accept_cb),
                    &n_emitted);

  g_assert_false (fixture_handshake (fixture, &error));
  assert_mismatch (error);
  g_assert_cmpuint (n_emitted, ==, 0);
  assert_server_refused (fixture);
}

static void
test_validation_flags_cannot_mask (Fixture      *fixture,
                                   gconstpointer data)
{
  g_autoptr(GError) error = NULL;

  fixture_connect_with (fixture, "host.test", "leaf1.pem");
  fixture_trust_root_a (fixture);
  G_GNUC_BEGIN_IGNORE_DEPRECATIONS
  g_tls_client_connection_set_validation_flags (G_TLS_CLIENT_CONNECTION (fixture->connection),
                                                0);
  G_GNUC_END_IGNORE_DEPRECATIONS

  g_assert_false (fixture_handshake (fixture, &error));
  assert_mismatch (error);
  assert_server_refused (fixture);
}

static void
test_rotation (Fixture      *fixture,
               gconstpointer data)
{
  g_autoptr(PinTlsPinSet) pins = test_pins_for ("leaf1.pem", "leaf2.pem", NULL);
  g_autoptr(GError) error = NULL;

  fixture_connect (fixture, "host.test", pins);

  g_assert_true (fixture_handshake (fixture, &error));
  g_assert_no_error (error);
  assert_certificate_is (g_tls_connection_get_peer_certificate (G_TLS_CONNECTION (fixture->connection)),
                         "leaf2.pem");
}

/* Pins alone trust a self-signed server. */
static void
test_pin_only_self_signed (Fixture      *fixture,
                           gconstpointer data)
{
  g_autoptr(GError) error = NULL;

  fixture_connect_with (fixture, "host.test", "self.pem");

  g_assert_true (fixture_handshake (fixture, &error));
  g_assert_no_error (error);
}

static void
test_not_tls (Fixture      *fixture,
              gconstpointer data)
{
  g_autoptr(GError) error = NULL;

  fixture_connect_with (fixture, "host.test", "leaf1.pem");

  g_assert_false (fixture_handshake (fixture, &error));
  g_assert_error (error, G_TLS_ERROR, G_TLS_ERROR_NOT_TLS);
}

/* A server that never answers: the base socket's timeout ends the
 * handshake. */
static void
test_base_timeout (Fixture      *fixture,
                   gconstpointer data)
{
  g_autoptr(GError) error = NULL;

  fixture_connect_with (fixture, "host.test", "leaf1.pem");
  g_socket_set_timeout (g_socket_connection_get_socket (fixture->tcp), 1);

  g_assert_false (fixture_handshake (fixture, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
}

/* The same for an asynchronous handshake: the base socket's timeout also
 * bounds the waits of its sources. */
static void
test_base_timeout_async (Fixture      *fixture,
                         gconstpointer data)
{
  g_auto(AsyncWait) wait = { NULL };
  g_autoptr(GError) error = NULL;

  fixture_connect_with (fixture, "host.test", "leaf1.pem");
  g_socket_set_timeout (g_socket_connection_get_socket (fixture->tcp), 1);

  g_tls_connection_handshake_async (G_TLS_CONNECTION (fixture->connection), G_PRIORITY_DEFAULT,
                                    NULL, async_wait_cb, &wait);
  iterate_until (&wait.done);
  g_assert_false (g_tls_connection_handshake_finish (G_TLS_CONNECTION (fixture->connection),
                                                     wait.result, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
}

/* The echo server sends nothing unasked: reads time out, blocking or not,
 * and the connection still works afterwards. */
static void
test_read_timeout (Fixture      *fixture,
                   gconstpointer data)
{
  g_auto(AsyncWait) wait = { NULL };
  g_autoptr(GError) error = NULL;
  char buffer[8];

  fixture_connect_with (fixture, "host.test", "leaf1.pem");
  g_assert_true (fixture_handshake (fixture, &error));
  g_socket_set_timeout (g_socket_connection_get_socket (fixture->tcp), 1);

  g_assert_cmpint (g_input_stream_read (fixture_input (fixture), buffer, sizeof buffer, NULL,
                                        &error), ==, -1);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
  g_clear_error (&error);

  g_input_stream_read_async (fixture_input (fixture), buffer, sizeof buffer, G_PRIORITY_DEFAULT,
                             NULL, async_wait_cb, &wait);
  iterate_until (&wait.done);
  g_assert_cmpint (g_input_stream_read_finish (fixture_input (fixture), wait.result, &error),
                   ==, -1);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);

  write_text (fixture, "still there");
  read_text (fixture, "still there");
}

/* CA_AND_PINS ---------------------------------------------------------- */

static void
test_ca_and_pins_trusted (Fixture      *fixture,
                          gconstpointer data)
{
  g_autoptr(GError) error = NULL;

  fixture_connect_with (fixture, "host.test", "leaf1.pem");
  fixture_trust_root_a (fixture);

  g_assert_true (fixture_handshake (fixture, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (g_tls_connection_get_peer_certificate_errors (G_TLS_CONNECTION (fixture->connection)),
                    ==, 0);
}

static void
test_ca_and_pins_wrong_identity (Fixture      *fixture,
                                 gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  guint n_emitted = 0;

  fixture_connect_with (fixture, "other.test", "leaf1.pem");
  fixture_trust_root_a (fixture);
  g_signal_connect (fixture->connection, "accept-certificate", G_CALLBACK (refuse_cb),
                    &n_emitted);

  g_assert_false (fixture_handshake (fixture, &error));
  g_assert_error (error, G_TLS_ERROR, G_TLS_ERROR_BAD_CERTIFICATE);
  g_assert_cmpuint (n_emitted, ==, 1);
  assert_server_refused (fixture);
}

static void
test_ca_and_pins_wrong_identity_accepted (Fixture      *fixture,
                                          gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  guint n_emitted = 0;

  fixture_connect_with (fixture, "other.test", "leaf1.pem");
  fixture_trust_root_a (fixture);
  g_signal_connect (fixture->connection, "accept-certificate", G_CALLBACK (accept_cb),
                    &n_emitted);

  g_assert_true (fixture_handshake (fixture, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (n_emitted, ==, 1);
  g_assert_cmpuint (g_tls_connection_get_peer_certificate_errors (G_TLS_CONNECTION (fixture->connection)),
                    ==, G_TLS_CERTIFICATE_BAD_IDENTITY);
}

static void
test_ca_and_pins_system_database (Fixture      *fixture,
                                  gconstpointer data)
{
  g_autoptr(GError) error = NULL;

  fixture_connect_with (fixture, "host.test", "leaf1.pem");
  pin_tls_client_connection_set_mode (fixture->connection, PIN_TLS_MODE_CA_AND_PINS);

  g_assert_false (fixture_handshake (fixture, &error));
  g_assert_error (error, G_TLS_ERROR, G_TLS_ERROR_BAD_CERTIFICATE);
  g_assert_cmpuint (g_tls_connection_get_peer_certificate_errors (G_TLS_CONNECTION (fixture->connection)),
                    ==, G_TLS_CERTIFICATE_UNKNOWN_CA);
  assert_server_refused (fixture);
}

/* A pin match never stands in for a failed CA check. */
static void
test_ca_and_pins_self_signed (Fixture      *fixture,
                              gconstpointer data)
{
  g_autoptr(GError) error = NULL;

  fixture_connect_with (fixture, "host.test", "self.pem");
  fixture_trust_root_a (fixture);

  g_assert_false (fixture_handshake (fixture, &error));
  g_assert_error (error, G_TLS_ERROR, G_TLS_ERROR_BAD_CERTIFICATE);
  assert_server_refused (fixture);
}

/* Names ---------------------------------------------------------------- */

static void
test_sni_normalized (Fixture      *fixture,
                     gconstpointer data)
{
  g_autofree char *server_name = NULL;
  g_autoptr(GError) error = NULL;

  fixture_connect_with (fixture, "LOCALHOST.", "leaf1.pem");
  g_assert_true (fixture_handshake (fixture, &error));
  g_assert_no_error (error);
  close_connection (fixture);

  test_server_wait (fixture->server);
  server_name = test_server_get_server_name (fixture->server);
  g_assert_cmpstr (server_name, ==, "localhost");
}

static void
test_sni_ip_address (Fixture      *fixture,
                     gconstpointer data)
{
  g_autofree char *server_name = NULL;
  g_autoptr(GError) error = NULL;

  fixture_connect_with (fixture, "127.0.0.1", "leaf1.pem");
  g_assert_true (fixture_handshake (fixture, &error));
  g_assert_no_error (error);
  close_connection (fixture);

  test_server_wait (fixture->server);
  server_name = test_server_get_server_name (fixture->server);
  g_assert_true (test_server_got_client_hello (fixture->server));
  g_assert_null (server_name);
}

/* Closing -------------------------------------------------------------- */

static gssize
read_after_greeting (Fixture *fixture,
                     GError **error)
{
  char buffer[16];

  g_assert_true (fixture_handshake (fixture, NULL));
  read_text (fixture, "bye\n");

  return g_input_stream_read (fixture_input (fixture), buffer, sizeof buffer, NULL, error);
}

static void
test_close_notify_required (Fixture      *fixture,
                            gconstpointer data)
{
  g_autoptr(GError) error = NULL;

  fixture_connect_with (fixture, "host.test", "leaf1.pem");

  g_assert_cmpint (read_after_greeting (fixture, &error), ==, -1);
  g_assert_error (error, G_TLS_ERROR, G_TLS_ERROR_EOF);
}

/* Pins do not depend on GIO's TLS backend: with none available
 * (GIO_USE_TLS=dummy, set in a subprocess before anything asks for one),
 * the handshake is decided as always and only the peer-certificate
 * property, which needs a backend to represent the chain, stays empty. */
static void
test_peer_certificate_without_backend (Fixture      *fixture,
                                       gconstpointer data)
{
  g_autoptr(GError) error = NULL;

  if (!g_test_subprocess ())
    {
      g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_INHERIT_STDERR);
      g_test_trap_assert_passed ();
      return;
    }

  g_setenv ("GIO_USE_TLS", "dummy", TRUE);
  fixture_connect_with (fixture, "host.test", "leaf1.pem");
  g_assert_true (fixture_handshake (fixture, &error));
  g_assert_no_error (error);
  g_assert_null (g_tls_connection_get_peer_certificate (G_TLS_CONNECTION (fixture->connection)));
  write_text (fixture, "x");
  read_text (fixture, "x");
  close_connection (fixture);
  g_clear_object (&fixture->connection);

  fixture_connect_with (fixture, "host.test", "leaf2.pem");
  g_assert_false (fixture_handshake (fixture, &error));
  g_assert_error (error, PIN_TLS_ERROR, PIN_TLS_ERROR_PIN_MISMATCH);
}

/* A read with room to spare that finds the connection cut, without
 * close_notify, after the greeting returns the greeting; the next read
 * reports the truncation. The client waits until the cut has arrived, so
 * that the first read finds both. */
static void
test_close_notify_required_after_data (Fixture      *fixture,
                                       gconstpointer data)
{
  struct pollfd cut = { -1, POLLRDHUP, 0 };
  g_autoptr(GError) error = NULL;
  char buffer[64] = "";

  fixture_connect_with (fixture, "host.test", "leaf1.pem");
  g_assert_true (fixture_handshake (fixture, NULL));
  cut.fd = g_socket_get_fd (g_socket_connection_get_socket (fixture->tcp));
  g_assert_cmpint (poll (&cut, 1, TEST_TIMEOUT_SECONDS * 1000), ==, 1);

  g_assert_cmpint (g_input_stream_read (fixture_input (fixture), buffer, sizeof buffer, NULL,
                                        &error), ==, strlen ("bye\n"));
  g_assert_no_error (error);
  g_assert_cmpstr (buffer, ==, "bye\n");
  g_assert_cmpint (g_input_stream_read (fixture_input (fixture), buffer, sizeof buffer, NULL,
                                        &error), ==, -1);
  g_assert_error (error, G_TLS_ERROR, G_TLS_ERROR_EOF);
}

static void
test_close_notify_not_required (Fixture      *fixture,
                                gconstpointer data)
{
  g_autoptr(GError) error = NULL;

  fixture_connect_with (fixture, "host.test", "leaf1.pem");
  g_tls_connection_set_require_close_notify (G_TLS_CONNECTION (fixture->connection), FALSE);

  g_assert_cmpint (read_after_greeting (fixture, &error), ==, 0);
  g_assert_no_error (error);
}

static void
test_close_sends_close_notify (Fixture      *fixture,
                               gconstpointer data)
{
  fixture_connect_with (fixture, "host.test", "leaf1.pem");
  write_text (fixture, "x");
  read_text (fixture, "x");

  close_connection (fixture);
  assert_server_received (fixture, "x");
  g_assert_true (test_server_got_close_notify (fixture->server));

  assert_operations_fail (fixture, take_closed, FALSE);
  g_assert_true (fixture_handshake (fixture, NULL));
}

static void
test_close_before_handshake (Fixture      *fixture,
                             gconstpointer data)
{
  fixture_connect_with (fixture, "host.test", "leaf1.pem");

  close_connection (fixture);
  g_assert_true (g_io_stream_is_closed (G_IO_STREAM (fixture->tcp)));
  assert_operations_fail (fixture, take_closed, TRUE);

  test_server_wait (fixture->server);
  g_assert_false (test_server_got_client_hello (fixture->server));
  g_assert_false (test_server_got_close_notify (fixture->server));
}

static void
test_close_async (Fixture      *fixture,
                  gconstpointer data)
{
  g_auto(AsyncWait) wait = { NULL };
  g_autoptr(GError) error = NULL;
  char byte;

  fixture_connect_with (fixture, "host.test", "leaf1.pem");
  write_text (fixture, "x");
  read_text (fixture, "x");

  g_io_stream_close_async (G_IO_STREAM (fixture->connection), G_PRIORITY_DEFAULT, NULL,
                           async_wait_cb, &wait);
  iterate_until (&wait.done);

  g_assert_true (g_io_stream_close_finish (G_IO_STREAM (fixture->connection), wait.result,
                                           &error));
  g_assert_no_error (error);
  g_assert_true (wait.thread == fixture->test_thread);
  assert_server_received (fixture, "x");
  g_assert_true (test_server_got_close_notify (fixture->server));

  g_assert_cmpint (g_input_stream_read (fixture_input (fixture), &byte, 1, NULL, &error),
                   ==, -1);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CLOSED);
}

/* Closing the output stream sends close_notify; the input stream still
 * reads what the server sent, then its close_notify. */
static void
test_close_output_stream (Fixture      *fixture,
                          gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  char byte;

  fixture_connect_with (fixture, "host.test", "leaf1.pem");
  write_text (fixture, "half");

  g_assert_true (g_output_stream_close (fixture_output (fixture), NULL, &error));
  g_assert_no_error (error);
  read_text (fixture, "half");
  g_assert_cmpint (g_input_stream_read (fixture_input (fixture), &byte, 1, NULL, &error),
                   ==, 0);
  g_assert_no_error (error);

  assert_server_received (fixture, "half");
  g_assert_true (test_server_got_close_notify (fixture->server));
  close_connection (fixture);
}

/* Three records of 16 KiB, echoed by the server, which then sends
 * close_notify and is done: all of it waits on the socket before the
 * client reads. */
#define WAITING_RECORDS_SIZE (3 * 16384)

static GBytes *
fixture_echo_waiting_records (Fixture *fixture)
{
  g_autofree guint8 *data = g_malloc (WAITING_RECORDS_SIZE);
  g_autoptr(GError) error = NULL;
  gsize i;

  for (i = 0; i < WAITING_RECORDS_SIZE; i++)
    data[i] = i % 251;

  fixture_connect_with (fixture, "host.test", "leaf1.pem");
  g_output_stream_write_all (fixture_output (fixture), data, WAITING_RECORDS_SIZE, NULL,
                             NULL, &error);
  g_assert_no_error (error);
  g_assert_true (g_output_stream_close (fixture_output (fixture), NULL, &error));
  g_assert_no_error (error);
  test_server_wait (fixture->server);

  return g_bytes_new_take (g_steal_pointer (&data), WAITING_RECORDS_SIZE);
}

/* A read with room for several records returns every record already
 * waiting, not one per call; the close_notify found after them is the
 * next read's end of stream. */
static void
test_read_waiting_records (Fixture      *fixture,
                           gconstpointer data)
{
  g_autoptr(GBytes) sent = fixture_echo_waiting_records (fixture);
  GInputStream *input = fixture_input (fixture);
  g_autofree guint8 *buffer = g_malloc (2 * WAITING_RECORDS_SIZE);
  g_autoptr(GError) error = NULL;

  g_assert_cmpint (g_input_stream_read (input, buffer, 2 * WAITING_RECORDS_SIZE, NULL,
                                        &error), ==, WAITING_RECORDS_SIZE);
  g_assert_no_error (error);
  g_assert_cmpmem (buffer, WAITING_RECORDS_SIZE, g_bytes_get_data (sent, NULL),
                   WAITING_RECORDS_SIZE);

  g_assert_true (g_pollable_input_stream_is_readable (G_POLLABLE_INPUT_STREAM (input)));
  g_assert_cmpint (g_input_stream_read (input, buffer, 1, NULL, &error), ==, 0);
  g_assert_no_error (error);
  g_assert_cmpint (g_input_stream_read (input, buffer, 1, NULL, &error), ==, 0);
  g_assert_no_error (error);
  close_connection (fixture);
}

/* The same through asynchronous reads, which pay for every call: one
 * read takes every waiting record, and no more than it asked for. */
static void
test_read_waiting_records_async (Fixture      *fixture,
                                 gconstpointer data)
{
  g_autoptr(GBytes) sent = fixture_echo_waiting_records (fixture);
  GInputStream *input = fixture_input (fixture);
  gsize wanted = WAITING_RECORDS_SIZE - 100;
  g_autofree guint8 *buffer = g_malloc (WAITING_RECORDS_SIZE);
  g_auto(AsyncWait) first = { NULL };
  g_auto(AsyncWait) second = { NULL };
  g_auto(AsyncWait) end = { NULL };
  g_autoptr(GError) error = NULL;

  g_input_stream_read_async (input, buffer, wanted, G_PRIORITY_DEFAULT, NULL,
                             async_wait_cb, &first);
  iterate_until (&first.done);
  g_assert_cmpint (g_input_stream_read_finish (input, first.result, &error), ==, wanted);
  g_assert_no_error (error);

  g_input_stream_read_async (input, buffer + wanted, WAITING_RECORDS_SIZE,
                             G_PRIORITY_DEFAULT, NULL, async_wait_cb, &second);
  iterate_until (&second.done);
  g_assert_cmpint (g_input_stream_read_finish (input, second.result, &error), ==, 100);
  g_assert_no_error (error);
  g_assert_cmpmem (buffer, WAITING_RECORDS_SIZE, g_bytes_get_data (sent, NULL),
                   WAITING_RECORDS_SIZE);

  g_input_stream_read_async (input, buffer, 1, G_PRIORITY_DEFAULT, NULL, async_wait_cb,
                             &end);
  iterate_until (&end.done);
  g_assert_cmpint (g_input_stream_read_finish (input, end.result, &error), ==, 0);
  g_assert_no_error (error);
  close_connection (fixture);
}

/* The same through the streams' asynchronous close, which needs no
 * thread: the callbacks come back on this thread. */
static void
test_close_streams_async (Fixture      *fixture,
                          gconstpointer data)
{
  g_auto(AsyncWait) output_wait = { NULL };
  g_auto(AsyncWait) input_wait = { NULL };
  g_autoptr(GError) error = NULL;
  char byte;

  fixture_connect_with (fixture, "host.test", "leaf1.pem");
  write_text (fixture, "half");

  g_output_stream_close_async (fixture_output (fixture), G_PRIORITY_DEFAULT, NULL,
                               async_wait_cb, &output_wait);
  iterate_until (&output_wait.done);
  g_assert_true (g_output_stream_close_finish (fixture_output (fixture), output_wait.result,
                                               &error));
  g_assert_no_error (error);
  g_assert_true (output_wait.thread == fixture->test_thread);
  read_text (fixture, "half");
  g_assert_cmpint (g_input_stream_read (fixture_input (fixture), &byte, 1, NULL, &error),
                   ==, 0);
  g_assert_no_error (error);
  assert_server_received (fixture, "half");
  g_assert_true (test_server_got_close_notify (fixture->server));

  g_input_stream_close_async (fixture_input (fixture), G_PRIORITY_DEFAULT, NULL, async_wait_cb,
                              &input_wait);
  iterate_until (&input_wait.done);
  g_assert_true (g_input_stream_close_finish (fixture_input (fixture), input_wait.result,
                                              &error));
  g_assert_no_error (error);
  g_assert_true (input_wait.thread == fixture->test_thread);
  close_connection (fixture);
  g_assert_true (g_io_stream_is_closed (G_IO_STREAM (fixture->tcp)));
}

static gpointer
close_thread (gpointer data)
{
  close_connection (data);

  return NULL;
}

/* An asynchronous read waits for data that never comes when another
 * thread closes the connection: the read must hear of it, once. */
static void
test_close_during_async_read (Fixture      *fixture,
                              gconstpointer data)
{
  g_auto(AsyncWait) wait = { NULL };
  g_autoptr(GError) error = NULL;
  char buffer[8];
  GThread *closer;

  fixture_connect_with (fixture, "host.test", "leaf1.pem");
  g_assert_true (fixture_handshake (fixture, &error));
  g_input_stream_read_async (fixture_input (fixture), buffer, sizeof buffer, G_PRIORITY_DEFAULT,
                             NULL, async_wait_cb, &wait);
  while (g_main_context_iteration (NULL, FALSE))
    ;
  g_assert_false (wait.done);

  closer = g_thread_new ("closer", close_thread, fixture);
  iterate_until (&wait.done);
  g_thread_join (closer);

  g_assert_cmpint (g_input_stream_read_finish (fixture_input (fixture), wait.result, &error),
                   ==, -1);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CLOSED);
  test_server_wait (fixture->server);
  g_assert_true (test_server_got_close_notify (fixture->server));
}

/* Cancelling a close still closes, as GIO documents; close_notify may not
 * have gone out. */
static void
test_close_async_cancelled (Fixture      *fixture,
                            gconstpointer data)
{
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_auto(AsyncWait) wait = { NULL };
  g_autoptr(GError) error = NULL;
  char byte;

  fixture_connect_with (fixture, "host.test", "leaf1.pem");
  g_assert_true (fixture_handshake (fixture, &error));
  g_cancellable_cancel (cancellable);

  g_io_stream_close_async (G_IO_STREAM (fixture->connection), G_PRIORITY_DEFAULT, cancellable,
                           async_wait_cb, &wait);
  iterate_until (&wait.done);
  g_assert_false (g_io_stream_close_finish (G_IO_STREAM (fixture->connection), wait.result,
                                            &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);

  g_assert_true (g_io_stream_is_closed (G_IO_STREAM (fixture->tcp)));
  g_assert_cmpint (g_input_stream_read (fixture_input (fixture), &byte, 1, NULL, &error),
                   ==, -1);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CLOSED);
}

/* The handshake started on this thread's main context never ran a step:
 * closing must not wait for it, and it fails. */
static void
test_close_during_async_handshake (Fixture      *fixture,
                                   gconstpointer data)
{
  g_auto(AsyncWait) wait = { NULL };
  g_autoptr(GError) error = NULL;

  fixture_connect_with (fixture, "host.test", "leaf1.pem");
  g_tls_connection_handshake_async (G_TLS_CONNECTION (fixture->connection), G_PRIORITY_DEFAULT,
                                    NULL, async_wait_cb, &wait);

  close_connection (fixture);
  iterate_until (&wait.done);

  g_assert_false (g_tls_connection_handshake_finish (G_TLS_CONNECTION (fixture->connection),
                                                     wait.result, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CLOSED);
  g_assert_true (g_io_stream_is_closed (G_IO_STREAM (fixture->tcp)));
}

/* The same with an asynchronous close, which runs on this thread like the
 * handshake instead of waiting for it in another thread. */
static void
test_close_async_during_async_handshake (Fixture      *fixture,
                                         gconstpointer data)
{
  g_auto(AsyncWait) handshake_wait = { NULL };
  g_auto(AsyncWait) close_wait = { NULL };
  g_autoptr(GError) error = NULL;

  fixture_connect_with (fixture, "host.test", "leaf1.pem");
  g_tls_connection_handshake_async (G_TLS_CONNECTION (fixture->connection), G_PRIORITY_DEFAULT,
                                    NULL, async_wait_cb, &handshake_wait);
  g_io_stream_close_async (G_IO_STREAM (fixture->connection), G_PRIORITY_DEFAULT, NULL,
                           async_wait_cb, &close_wait);
  iterate_until (&close_wait.done);
  iterate_until (&handshake_wait.done);

  g_assert_true (g_io_stream_close_finish (G_IO_STREAM (fixture->connection),
                                           close_wait.result, &error));
  g_assert_no_error (error);
  g_assert_false (g_tls_connection_handshake_finish (G_TLS_CONNECTION (fixture->connection),
                                                     handshake_wait.result, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CLOSED);
  g_assert_true (g_io_stream_is_closed (G_IO_STREAM (fixture->tcp)));
  test_server_wait (fixture->server);
  g_assert_false (test_server_got_client_hello (fixture->server));
}

static void
test_non_pollable_base (void)
{
  g_autoptr(GInputStream) memory_input = g_memory_input_stream_new ();
  g_autoptr(GOutputStream) memory_output = g_memory_output_stream_new_resizable ();
  g_autoptr(GInputStream) input = g_buffered_input_stream_new (memory_input);
  g_autoptr(GOutputStream) output = g_buffered_output_stream_new (memory_output);
  g_autoptr(GIOStream) base = g_simple_io_stream_new (input, output);
  g_autoptr(GSocketConnectable) identity = g_network_address_new ("host.test", 443);
  g_autoptr(PinTlsPinSet) pins = test_pins_for ("leaf1.pem", NULL);
  g_autoptr(GError) error = NULL;

  g_assert_null (pin_tls_client_connection_new (base, identity, pins, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED);
  g_assert_false (g_io_stream_is_closed (base));
}

/* Built with g_object_new(), as the constructors of Python and JavaScript
 * build it, without g_initable_init(): the connection is complete all the
 * same, and enforces its pins. */
static void
test_construct_without_init_match (Fixture      *fixture,
                                   gconstpointer data)
{
  g_autoptr(GSocketConnection) tcp = connect_tcp (fixture);
  g_autoptr(GSocketConnectable) address = NULL;
  g_autoptr(PinTlsPinSet) pins = test_pins_for ("leaf1.pem", NULL);
  g_autoptr(GError) error = NULL;

  address = g_network_address_new ("host.test", test_server_get_port (fixture->server));
  fixture->connection = g_object_new (PIN_TLS_TYPE_CLIENT_CONNECTION,
                                      "base-io-stream", tcp,
                                      "server-identity", address,
                                      "pins", pins,
                                      NULL);
  fixture_watch_tcp (fixture, tcp);

  write_text (fixture, "ping\n");
  read_text (fixture, "ping\n");
  g_assert_true (g_initable_init (G_INITABLE (fixture->connection), NULL, &error));
  g_assert_no_error (error);
  close_connection (fixture);
  assert_server_received (fixture, "ping\n");
}

static void
test_construct_without_init_mismatch (Fixture      *fixture,
                                      gconstpointer data)
{
  g_autoptr(GSocketConnection) tcp = connect_tcp (fixture);
  g_autoptr(GSocketConnectable) address = NULL;
  g_autoptr(PinTlsPinSet) pins = test_pins_for ("leaf1.pem", NULL);
  g_autoptr(GError) error = NULL;

  address = g_network_address_new ("host.test", test_server_get_port (fixture->server));
  fixture->connection = g_object_new (PIN_TLS_TYPE_CLIENT_CONNECTION,
                                      "base-io-stream", tcp,
                                      "server-identity", address,
                                      "pins", pins,
                                      NULL);
  fixture_watch_tcp (fixture, tcp);

  g_assert_false (fixture_handshake (fixture, &error));
  assert_mismatch (error);
  assert_server_refused (fixture);
  assert_failed_with_mismatch (fixture);
  close_connection (fixture);
}

/* What the connection of a failed construction must fail with. */
static GQuark construct_error_domain;
static int construct_error_code;

static void
take_construct_error (GError *error)
{
  g_assert_error (error, construct_error_domain, construct_error_code);
  g_assert_nonnull (strstr (error->message, "could not be set up"));
  g_error_free (error);
}

typedef enum
{
  CONSTRUCT_NO_PINS,
  CONSTRUCT_PINS_AND_POLICY,
  CONSTRUCT_NO_BASE_STREAM,
  CONSTRUCT_NON_POLLABLE_BASE,
} ConstructFault;

static GIOStream *
non_pollable_stream (void)
{
  g_autoptr(GInputStream) memory_input = g_memory_input_stream_new ();
  g_autoptr(GOutputStream) memory_output = g_memory_output_stream_new_resizable ();
  g_autoptr(GInputStream) input = g_buffered_input_stream_new (memory_input);
  g_autoptr(GOutputStream) output = g_buffered_output_stream_new (memory_output);

  return g_simple_io_stream_new (input, output);
}

/* Built with g_object_new() from properties that cannot make a connection:
 * no g_critical, g_initable_init() reports what was wrong, every operation
 * fails with that error, closing succeeds, and the base stream stays the
 * caller's, open, with not one byte sent over it. */
static void
test_construct_failed (Fixture       *fixture,
                       ConstructFault fault)
{
  g_autoptr(GSocketConnectable) address = NULL;
  g_autoptr(PinTlsPinSet) pins = test_pins_for ("leaf1.pem", NULL);
  g_autoptr(PinTlsPolicy) policy = pin_tls_policy_new ();
  g_autoptr(GIOStream) base = NULL;
  g_autoptr(GError) error = NULL;

  address = g_network_address_new ("host.test", test_server_get_port (fixture->server));
  if (fault == CONSTRUCT_NON_POLLABLE_BASE)
    base = non_pollable_stream ();
  else if (fault != CONSTRUCT_NO_BASE_STREAM)
    base = G_IO_STREAM (connect_tcp (fixture));

  fixture->connection = g_object_new (PIN_TLS_TYPE_CLIENT_CONNECTION,
                                      "base-io-stream", base,
                                      "server-identity", address,
                                      "pins", fault == CONSTRUCT_NO_PINS ? NULL : pins,
                                      "policy",
                                      fault == CONSTRUCT_PINS_AND_POLICY ? policy : NULL,
                                      NULL);
  g_assert_false (g_initable_init (G_INITABLE (fixture->connection), NULL, &error));
  g_assert_error (error, construct_error_domain, construct_error_code);
  g_assert_null (strstr (error->message, "could not be set up"));

  assert_operations_fail (fixture, take_construct_error, TRUE);
  close_connection (fixture);
  g_clear_object (&fixture->connection);

  if (base == NULL || fault == CONSTRUCT_NON_POLLABLE_BASE)
    return;
  g_assert_false (g_io_stream_is_closed (base));
  g_clear_object (&base);
  test_server_wait (fixture->server);
  g_assert_false (test_server_got_client_hello (fixture->server));
}

static void
test_construct_no_pins (Fixture      *fixture,
                        gconstpointer data)
{
  construct_error_domain = PIN_TLS_ERROR;
  construct_error_code = PIN_TLS_ERROR_EMPTY_PIN_SET;
  test_construct_failed (fixture, CONSTRUCT_NO_PINS);
}

static void
test_construct_pins_and_policy (Fixture      *fixture,
                                gconstpointer data)
{
  construct_error_domain = G_IO_ERROR;
  construct_error_code = G_IO_ERROR_INVALID_ARGUMENT;
  test_construct_failed (fixture, CONSTRUCT_PINS_AND_POLICY);
}

static void
test_construct_no_base_stream (Fixture      *fixture,
                               gconstpointer data)
{
  construct_error_domain = G_IO_ERROR;
  construct_error_code = G_IO_ERROR_INVALID_ARGUMENT;
  test_construct_failed (fixture, CONSTRUCT_NO_BASE_STREAM);
}

static void
test_construct_non_pollable_base (Fixture      *fixture,
                                  gconstpointer data)
{
  construct_error_domain = G_IO_ERROR;
  construct_error_code = G_IO_ERROR_NOT_SUPPORTED;
  test_construct_failed (fixture, CONSTRUCT_NON_POLLABLE_BASE);
}

/* The streams hold only a weak reference to their connection: once it is
 * gone, they report a closed connection, and their sources fire so that a
 * waiting reader or writer finds out. */
static void
test_streams_outlive_connection (Fixture      *fixture,
                                 gconstpointer data)
{
  g_auto(AsyncWait) wait = { NULL };
  g_autoptr(GInputStream) input = NULL;
  g_autoptr(GOutputStream) output = NULL;
  g_autoptr(GSource) source = NULL;
  g_autoptr(GError) error = NULL;
  gboolean fired = FALSE;
  char byte;

  fixture_connect_with (fixture, "host.test", "leaf1.pem");
  write_text (fixture, "x");
  read_text (fixture, "x");
  input = g_object_ref (fixture_input (fixture));
  output = g_object_ref (fixture_output (fixture));
  g_clear_object (&fixture->connection);
  g_assert_null (fixture->tcp);

  g_assert_cmpint (g_input_stream_read (input, &byte, 1, NULL, &error), ==, -1);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CLOSED);
  g_clear_error (&error);
  g_assert_cmpint (g_output_stream_write (output, "y", 1, NULL, &error), ==, -1);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CLOSED);
  g_clear_error (&error);
  g_assert_cmpint (g_pollable_input_stream_read_nonblocking (G_POLLABLE_INPUT_STREAM (input),
                                                             &byte, 1, NULL, &error), ==, -1);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CLOSED);

  g_assert_true (g_pollable_input_stream_is_readable (G_POLLABLE_INPUT_STREAM (input)));
  g_assert_true (g_pollable_output_stream_is_writable (G_POLLABLE_OUTPUT_STREAM (output)));
  source = g_pollable_input_stream_create_source (G_POLLABLE_INPUT_STREAM (input), NULL);
  g_source_set_callback (source, G_SOURCE_FUNC (source_fired_cb), &fired, NULL);
  g_source_attach (source, NULL);
  iterate_until (&fired);

  /* With nothing left to close, closing succeeds, on this thread. */
  g_clear_error (&error);
  g_input_stream_close_async (input, G_PRIORITY_DEFAULT, NULL, async_wait_cb, &wait);
  iterate_until (&wait.done);
  g_assert_true (g_input_stream_close_finish (input, wait.result, &error));
  g_assert_no_error (error);
  g_assert_true (wait.thread == fixture->test_thread);
}

/* While a handshake runs, neither stream is ready and non-blocking calls
 * would block; a source made then fires only once the handshake is over. */
static void
test_pollable_during_handshake (Fixture      *fixture,
                                gconstpointer data)
{
  g_auto(AsyncWait) wait = { NULL };
  GPollableInputStream *input;
  GPollableOutputStream *output;
  g_autoptr(GSource) source = NULL;
  g_autoptr(GError) error = NULL;
  gboolean fired = FALSE;
  char byte;

  fixture_connect_with (fixture, "host.test", "leaf1.pem");
  input = G_POLLABLE_INPUT_STREAM (fixture_input (fixture));
  output = G_POLLABLE_OUTPUT_STREAM (fixture_output (fixture));
  g_tls_connection_handshake_async (G_TLS_CONNECTION (fixture->connection), G_PRIORITY_DEFAULT,
                                    NULL, async_wait_cb, &wait);

  g_assert_false (g_pollable_input_stream_is_readable (input));
  g_assert_false (g_pollable_output_stream_is_writable (output));
  g_assert_cmpint (g_pollable_input_stream_read_nonblocking (input, &byte, 1, NULL, &error),
                   ==, -1);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK);
  g_clear_error (&error);
  g_assert_cmpint (g_pollable_output_stream_write_nonblocking (output, "x", 1, NULL, &error),
                   ==, -1);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK);
  g_clear_error (&error);

  source = g_pollable_output_stream_create_source (output, NULL);
  g_source_set_callback (source, G_SOURCE_FUNC (writable_after_handshake_cb), &fired, NULL);
  g_source_attach (source, NULL);
  iterate_until (&fired);
  iterate_until (&wait.done);
  g_assert_true (g_tls_connection_handshake_finish (G_TLS_CONNECTION (fixture->connection),
                                                    wait.result, &error));
  g_assert_no_error (error);

  /* Nothing has been sent to read: a non-blocking read would block. */
  g_assert_false (g_pollable_input_stream_is_readable (input));
  g_assert_cmpint (g_pollable_input_stream_read_nonblocking (input, &byte, 1, NULL, &error),
                   ==, -1);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK);
}

/* Asynchronous operations and sources ---------------------------------- */

static void
notify_thread_cb (GObject    *object,
                  GParamSpec *pspec,
                  gpointer    data)
{
  GThread **thread = data;

  *thread = g_thread_self ();
}

static void
test_async_handshake (Fixture      *fixture,
                      gconstpointer data)
{
  g_auto(AsyncWait) wait = { NULL };
  g_autoptr(GError) error = NULL;
  GThread *notify_thread = NULL;

  fixture_connect_with (fixture, "host.test", "leaf1.pem");
  g_signal_connect (fixture->connection, "notify::peer-certificate",
                    G_CALLBACK (notify_thread_cb), &notify_thread);

  g_tls_connection_handshake_async (G_TLS_CONNECTION (fixture->connection), G_PRIORITY_DEFAULT,
                                    NULL, async_wait_cb, &wait);
  iterate_until (&wait.done);

  g_assert_true (g_tls_connection_handshake_finish (G_TLS_CONNECTION (fixture->connection),
                                                    wait.result, &error));
  g_assert_no_error (error);
  g_assert_true (wait.thread == fixture->test_thread);
  g_assert_true (notify_thread == fixture->test_thread);
  assert_peer (fixture);
}

static void
reenter_notify_cb (GObject    *object,
                   GParamSpec *pspec,
                   gpointer    data)
{
  g_auto(GStrv) presented = NULL;
  guint *n_calls = data;

  g_assert_nonnull (g_tls_connection_get_peer_certificate (G_TLS_CONNECTION (object)));
  presented = pin_tls_client_connection_get_presented_pins (PIN_TLS_CLIENT_CONNECTION (object));
  g_assert_nonnull (presented);
  (*n_calls)++;
}

static void
reenter_handshake_cb (GObject      *source,
                      GAsyncResult *result,
                      gpointer      data)
{
  Fixture *fixture = data;
  g_autoptr(GError) error = NULL;

  g_assert_true (g_tls_connection_handshake_finish (G_TLS_CONNECTION (source), result, &error));
  g_assert_no_error (error);
  write_text (fixture, "again");
  read_text (fixture, "again");
  close_connection (fixture);
  g_object_set_data (source, "test-done", GINT_TO_POINTER (TRUE));
}

/* Notification handlers and the handshake's callback call straight back
 * into the connection, with blocking calls: nothing may be locked or
 * half-done by then. */
static void
test_async_handshake_reentrant (Fixture      *fixture,
                                gconstpointer data)
{
  guint n_notified = 0;
  gboolean done = FALSE;

  fixture_connect_with (fixture, "host.test", "leaf1.pem");
  g_signal_connect (fixture->connection, "notify::peer-certificate",
                    G_CALLBACK (reenter_notify_cb), &n_notified);
  g_signal_connect (fixture->connection, "notify::protocol-version",
                    G_CALLBACK (reenter_notify_cb), &n_notified);
  g_tls_connection_handshake_async (G_TLS_CONNECTION (fixture->connection), G_PRIORITY_DEFAULT,
                                    NULL, reenter_handshake_cb, fixture);

  while (!done)
    {
      iterate_once ();
      done = g_object_get_data (G_OBJECT (fixture->connection), "test-done") != NULL;
    }

  g_assert_cmpuint (n_notified, ==, 2);
  assert_server_received (fixture, "again");
}

static gpointer
handshake_on_own_context_thread (gpointer data)
{
  Fixture *fixture = data;
  g_autoptr(GMainContext) context = g_main_context_new ();
  g_auto(AsyncWait) wait = { NULL };
  GThread *notify_thread = NULL;

  g_main_context_push_thread_default (context);
  g_signal_connect (fixture->connection, "notify::peer-certificate",
                    G_CALLBACK (notify_thread_cb), &notify_thread);
  g_tls_connection_handshake_async (G_TLS_CONNECTION (fixture->connection), G_PRIORITY_DEFAULT,
                                    NULL, async_wait_cb, &wait);
  while (!wait.done)
    g_main_context_iteration (context, TRUE);

  g_assert_true (g_tls_connection_handshake_finish (G_TLS_CONNECTION (fixture->connection),
                                                    wait.result, NULL));
  g_assert_true (wait.thread == g_thread_self ());
  g_assert_true (notify_thread == g_thread_self ());
  g_signal_handlers_disconnect_by_data (fixture->connection, &notify_thread);
  g_main_context_pop_thread_default (context);

  return NULL;
}

/* The handshake runs on the thread-default context of the thread that
 * asked for it, never on the global default one. */
static void
test_async_handshake_other_context (Fixture      *fixture,
                                    gconstpointer data)
{
  GThread *thread;

  fixture_connect_with (fixture, "host.test", "leaf1.pem");

  thread = g_thread_new ("own-context", handshake_on_own_context_thread, fixture);
  g_thread_join (thread);

  g_assert_false (g_main_context_pending (NULL));
  write_text (fixture, "after");
  read_text (fixture, "after");
}

static gpointer
echo_thread (gpointer data)
{
  write_text (data, "waited");
  read_text (data, "waited");

  return NULL;
}

/* A blocking operation on another thread waits for the asynchronous
 * handshake this thread's main loop runs. */
static void
test_async_handshake_thread_waits (Fixture      *fixture,
                                   gconstpointer data)
{
  g_auto(AsyncWait) wait = { NULL };
  GThread *thread;

  fixture_connect_with (fixture, "host.test", "leaf1.pem");

  g_tls_connection_handshake_async (G_TLS_CONNECTION (fixture->connection), G_PRIORITY_DEFAULT,
                                    NULL, async_wait_cb, &wait);
  thread = g_thread_new ("echo", echo_thread, fixture);
  iterate_until (&wait.done);
  g_thread_join (thread);

  g_assert_true (g_tls_connection_handshake_finish (G_TLS_CONNECTION (fixture->connection),
                                                    wait.result, NULL));
  close_connection (fixture);
  assert_server_received (fixture, "waited");
}

static gboolean
cancel_cb (gpointer data)
{
  g_cancellable_cancel (data);

  return G_SOURCE_REMOVE;
}

/* Cancelled while it waits for a server that never answers: the low
 * priority idle runs once the first step has sent the ClientHello. */
static void
test_async_handshake_cancelled (Fixture      *fixture,
                                gconstpointer data)
{
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_auto(AsyncWait) wait = { NULL };
  g_autoptr(GError) error = NULL;

  fixture_connect_with (fixture, "host.test", "leaf1.pem");

  g_tls_connection_handshake_async (G_TLS_CONNECTION (fixture->connection), G_PRIORITY_DEFAULT,
                                    cancellable, async_wait_cb, &wait);
  g_idle_add_full (G_PRIORITY_LOW, cancel_cb, cancellable, NULL);
  iterate_until (&wait.done);

  g_assert_false (g_tls_connection_handshake_finish (G_TLS_CONNECTION (fixture->connection),
                                                     wait.result, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);
  g_assert_false (fixture_handshake (fixture, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
}

static void
test_async_handshake_mismatch (Fixture      *fixture,
                               gconstpointer data)
{
  g_auto(AsyncWait) wait = { NULL };
  g_autoptr(GError) error = NULL;

  fixture_connect_with (fixture, "host.test", "leaf1.pem");

  g_tls_connection_handshake_async (G_TLS_CONNECTION (fixture->connection), G_PRIORITY_DEFAULT,
                                    NULL, async_wait_cb, &wait);
  iterate_until (&wait.done);

  g_assert_false (g_tls_connection_handshake_finish (G_TLS_CONNECTION (fixture->connection),
                                                     wait.result, &error));
  assert_mismatch (error);
  g_assert_true (wait.thread == fixture->test_thread);
  assert_server_refused (fixture);
  assert_failed_with_mismatch (fixture);
}

/* Neither operation is preceded by a handshake: the first non-blocking
 * attempt starts one on this thread's main context. */
static void
test_async_read_write (Fixture      *fixture,
                       gconstpointer data)
{
  g_auto(AsyncWait) read_wait = { NULL };
  g_auto(AsyncWait) write_wait = { NULL };
  g_autoptr(GError) error = NULL;
  char buffer[16] = "";

  fixture_connect_with (fixture, "host.test", "leaf1.pem");

  g_input_stream_read_async (fixture_input (fixture), buffer, sizeof buffer,
                             G_PRIORITY_DEFAULT, NULL, async_wait_cb, &read_wait);
  g_output_stream_write_async (fixture_output (fixture), "async", 5, G_PRIORITY_DEFAULT,
                               NULL, async_wait_cb, &write_wait);
  iterate_until (&write_wait.done);
  iterate_until (&read_wait.done);

  g_assert_cmpint (g_output_stream_write_finish (fixture_output (fixture), write_wait.result,
                                                 &error), ==, 5);
  g_assert_no_error (error);
  g_assert_cmpint (g_input_stream_read_finish (fixture_input (fixture), read_wait.result,
                                               &error), ==, 5);
  g_assert_no_error (error);
  g_assert_cmpstr (buffer, ==, "async");
  g_assert_true (read_wait.thread == fixture->test_thread);
  g_assert_true (write_wait.thread == fixture->test_thread);
}

/* A pending asynchronous read has started the handshake on this thread's
 * main context, which nobody iterates while the blocking write runs. */
static void
test_async_read_then_blocking_write (Fixture      *fixture,
                                     gconstpointer data)
{
  g_auto(AsyncWait) read_wait = { NULL };
  g_autoptr(GError) error = NULL;
  char buffer[16] = "";

  fixture_connect_with (fixture, "host.test", "leaf1.pem");

  g_input_stream_read_async (fixture_input (fixture), buffer, sizeof buffer,
                             G_PRIORITY_DEFAULT, NULL, async_wait_cb, &read_wait);
  write_text (fixture, "request");
  iterate_until (&read_wait.done);

  g_assert_cmpint (g_input_stream_read_finish (fixture_input (fixture), read_wait.result,
                                               &error), ==, 7);
  g_assert_no_error (error);
  g_assert_cmpstr (buffer, ==, "request");
}

/* After a one-byte read, the rest of the echoed record waits inside
 * GnuTLS, where polling the socket cannot see it. */
static void
test_source_sees_buffered_data (Fixture      *fixture,
                                gconstpointer data)
{
  GPollableInputStream *input;
  g_autoptr(GSource) source = NULL;
  gboolean fired = FALSE;

  fixture_connect_with (fixture, "host.test", "leaf1.pem");
  input = G_POLLABLE_INPUT_STREAM (fixture_input (fixture));
  write_text (fixture, "one\ntwo\n");
  read_text (fixture, "o");

  g_assert_true (g_pollable_input_stream_is_readable (input));
  source = g_pollable_input_stream_create_source (input, NULL);
  g_source_set_callback (source, G_SOURCE_FUNC (source_fired_cb), &fired, NULL);
  g_source_attach (source, NULL);
  iterate_until (&fired);

  read_text (fixture, "ne\ntwo\n");
}

static gboolean
read_during_handshake_cb (GTlsConnection      *connection,
                          GTlsCertificate     *peer_certificate,
                          GTlsCertificateFlags errors,
                          gpointer             data)
{
  GError **read_error = data;
  GInputStream *input = g_io_stream_get_input_stream (G_IO_STREAM (connection));
  char byte;

  g_assert_cmpint (g_input_stream_read (input, &byte, 1, NULL, read_error), ==, -1);

  return FALSE;
}

static void
connect_reading_in_handler (Fixture *fixture,
                            GError **read_error)
{
  fixture_connect_with (fixture, "other.test", "leaf1.pem");
  fixture_trust_root_a (fixture);
  g_signal_connect (fixture->connection, "accept-certificate",
                    G_CALLBACK (read_during_handshake_cb), read_error);
}

static void
test_blocking_read_in_handler_async (Fixture      *fixture,
                                     gconstpointer data)
{
  g_auto(AsyncWait) wait = { NULL };
  g_autoptr(GError) read_error = NULL;
  g_autoptr(GError) error = NULL;

  connect_reading_in_handler (fixture, &read_error);

  g_tls_connection_handshake_async (G_TLS_CONNECTION (fixture->connection), G_PRIORITY_DEFAULT,
                                    NULL, async_wait_cb, &wait);
  iterate_until (&wait.done);

  g_assert_error (read_error, G_IO_ERROR, G_IO_ERROR_FAILED);
  g_assert_false (g_tls_connection_handshake_finish (G_TLS_CONNECTION (fixture->connection),
                                                     wait.result, &error));
  g_assert_error (error, G_TLS_ERROR, G_TLS_ERROR_BAD_CERTIFICATE);
}

static void
test_blocking_read_in_handler_sync (Fixture      *fixture,
                                    gconstpointer data)
{
  g_autoptr(GError) read_error = NULL;
  g_autoptr(GError) error = NULL;

  connect_reading_in_handler (fixture, &read_error);

  g_assert_false (fixture_handshake (fixture, &error));
  g_assert_error (read_error, G_IO_ERROR, G_IO_ERROR_FAILED);
  g_assert_error (error, G_TLS_ERROR, G_TLS_ERROR_BAD_CERTIFICATE);
}

/* Cancellation and threads --------------------------------------------- */

typedef struct
{
  GCancellable *cancellable;
  gulong delay;
} DelayedCancel;

static gpointer
delayed_cancel_thread (gpointer data)
{
  DelayedCancel *cancel = data;

  g_usleep (cancel->delay);
  g_cancellable_cancel (cancel->cancellable);

  return NULL;
}

/* Cancels an asynchronous handshake after @n_iterations of the main
 * context (or not at all if it is over by then), or from another thread
 * @delay microseconds after it starts. Returns whether it was cancelled;
 * either way it completed exactly once. */
static gboolean
cancel_handshake_after (Fixture *fixture,
                        guint    n_iterations,
                        gulong   delay)
{
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  GTlsConnection *connection = G_TLS_CONNECTION (fixture->connection);
  DelayedCancel cancel = { cancellable, delay };
  GThread *canceller = NULL;
  g_autoptr(GError) error = NULL;
  guint n_calls = 0;
  guint i;

  g_tls_connection_handshake_async (connection, G_PRIORITY_DEFAULT, cancellable, count_calls_cb,
                                    &n_calls);
  if (delay > 0)
    canceller = g_thread_new ("canceller", delayed_cancel_thread, &cancel);
  for (i = 0; i < n_iterations && n_calls == 0; i++)
    iterate_once ();
  if (canceller == NULL)
    g_cancellable_cancel (cancellable);
  iterate_until_count (&n_calls, 1);
  if (canceller != NULL)
    g_thread_join (canceller);
  while (g_main_context_iteration (NULL, FALSE))
    ;
  g_assert_cmpuint (n_calls, ==, 1);

  if (g_tls_connection_handshake_finish (connection, last_result, &error))
    return FALSE;
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);

  return TRUE;
}

/* The handshake is cancelled before each step it takes, in turn, then
 * from another thread at times spread over it: each time it completes
 * once, and a cancelled one leaves the connection failed for good, while
 * one that finished first works. */
static void
test_cancel_handshake_steps (Fixture      *fixture,
                             gconstpointer data)
{
  guint n_cancelled = 0;
  guint run;

  for (run = 0; run < 32; run++)
    {
      guint n_iterations = run < 8 ? run : G_MAXUINT;
      gulong delay = run < 8 ? 0 : (run - 7) * 250;
      g_autoptr(GError) error = NULL;
      char byte;

      fixture_connect_with (fixture, "host.test", "leaf1.pem");
      if (cancel_handshake_after (fixture, n_iterations, delay))
        {
          n_cancelled++;
          g_assert_false (fixture_handshake (fixture, &error));
          g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
          g_clear_error (&error);
          g_assert_cmpint (g_input_stream_read (fixture_input (fixture), &byte, 1, NULL,
                                                &error), ==, -1);
          g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
        }
      else
        {
          write_text (fixture, "done");
          read_text (fixture, "done");
        }

      close_connection (fixture);
      g_clear_object (&fixture->connection);
      test_server_wait (fixture->server);
    }

  g_clear_object (&last_result);
  g_test_message ("%u of 32 handshakes cancelled", n_cancelled);
  g_assert_cmpuint (n_cancelled, >, 0);
}

/* An asynchronous read, cancelled after a number of main context
 * iterations while it waits for data: it completes once, cancelled, and
 * the connection goes on working. */
static void
test_cancel_read_steps (Fixture      *fixture,
                        gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  guint n_iterations;

  fixture_connect_with (fixture, "host.test", "leaf1.pem");
  g_assert_true (fixture_handshake (fixture, &error));

  for (n_iterations = 0; n_iterations < 6; n_iterations++)
    {
      g_autoptr(GCancellable) cancellable = g_cancellable_new ();
      char buffer[8];
      guint n_calls = 0;
      guint i;

      g_input_stream_read_async (fixture_input (fixture), buffer, sizeof buffer,
                                 G_PRIORITY_DEFAULT, cancellable, count_calls_cb, &n_calls);
      for (i = 0; i < n_iterations; i++)
        g_main_context_iteration (NULL, FALSE);
      g_cancellable_cancel (cancellable);
      iterate_until_count (&n_calls, 1);
      while (g_main_context_iteration (NULL, FALSE))
        ;

      g_assert_cmpuint (n_calls, ==, 1);
      g_assert_cmpint (g_input_stream_read_finish (fixture_input (fixture), last_result,
                                                   &error), ==, -1);
      g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
      g_clear_error (&error);

      write_text (fixture, "on");
      read_text (fixture, "on");
    }

  g_clear_object (&last_result);
}

static gpointer
cancelled_read_thread (gpointer data)
{
  Fixture *fixture = data;
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GError) error = NULL;
  char byte;

  g_cancellable_cancel (cancellable);
  g_assert_cmpint (g_input_stream_read (fixture_input (fixture), &byte, 1, cancellable,
                                        &error), ==, -1);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);

  return NULL;
}

/* A blocking read on another thread gives up waiting for the handshake
 * this thread's main loop runs when its cancellable is cancelled: it
 * fails, and the handshake it waited for does not. */
static void
test_cancel_waiting_read (Fixture      *fixture,
                          gconstpointer data)
{
  g_auto(AsyncWait) wait = { NULL };
  g_autoptr(GError) error = NULL;
  GThread *reader;

  fixture_connect_with (fixture, "host.test", "leaf1.pem");
  g_tls_connection_handshake_async (G_TLS_CONNECTION (fixture->connection), G_PRIORITY_DEFAULT,
                                    NULL, async_wait_cb, &wait);

  reader = g_thread_new ("reader", cancelled_read_thread, fixture);
  g_thread_join (reader);
  iterate_until (&wait.done);

  g_assert_true (g_tls_connection_handshake_finish (G_TLS_CONNECTION (fixture->connection),
                                                    wait.result, &error));
  g_assert_no_error (error);
  write_text (fixture, "fine");
  read_text (fixture, "fine");
}

typedef struct
{
  Fixture *fixture;
  GCancellable *cancellable;
} CancellableRead;

static gpointer
blocked_read_thread (gpointer data)
{
  CancellableRead *read = data;
  g_autoptr(GError) error = NULL;
  char byte;

  g_assert_cmpint (g_input_stream_read (fixture_input (read->fixture), &byte, 1,
                                        read->cancellable, &error), ==, -1);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);

  return NULL;
}

/* A blocking read waiting on the socket for data that never comes ends
 * when another thread cancels it. */
static void
test_cancel_blocked_read (Fixture      *fixture,
                          gconstpointer data)
{
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  CancellableRead read = { fixture, cancellable };
  g_autoptr(GError) error = NULL;
  GThread *reader;

  fixture_connect_with (fixture, "host.test", "leaf1.pem");
  g_assert_true (fixture_handshake (fixture, &error));

  /* Whether the read is already waiting when the cancellation comes or
   * not, it fails the same way. */
  reader = g_thread_new ("reader", blocked_read_thread, &read);
  g_usleep (G_USEC_PER_SEC / 20);
  g_cancellable_cancel (cancellable);
  g_thread_join (reader);

  write_text (fixture, "fine");
  read_text (fixture, "fine");
}

static void
test_cancelled_handshake (Fixture      *fixture,
                          gconstpointer data)
{
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GError) error = NULL;
  char byte;

  fixture_connect_with (fixture, "host.test", "leaf1.pem");
  g_cancellable_cancel (cancellable);

  g_assert_false (g_tls_connection_handshake (G_TLS_CONNECTION (fixture->connection),
                                              cancellable, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);

  g_assert_false (fixture_handshake (fixture, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);
  g_assert_cmpint (g_input_stream_read (fixture_input (fixture), &byte, 1, NULL, &error),
                   ==, -1);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
}

static guint8 *
bulk_chunk_new (void)
{
  guint8 *chunk = g_malloc (BULK_CHUNK);
  gsize i;

  for (i = 0; i < BULK_CHUNK; i++)
    chunk[i] = i % BULK_PATTERN;

  return chunk;
}

static gpointer
write_bulk_thread (gpointer data)
{
  GOutputStream *output = data;
  g_autofree guint8 *chunk = bulk_chunk_new ();
  g_autoptr(GError) error = NULL;
  gsize total = 0;

  while (total < BULK_SIZE && error == NULL)
    {
      gsize written = 0;

      g_output_stream_write_all (output, chunk, MIN (BULK_CHUNK, BULK_SIZE - total), &written,
                                 NULL, &error);
      total += written;
    }
  g_assert_no_error (error);
  g_assert_cmpuint (total, ==, BULK_SIZE);

  return NULL;
}

/* Reads BULK_SIZE bytes, checking each against the pattern as it comes. */
static gpointer
read_bulk_thread (gpointer data)
{
  GInputStream *input = data;
  g_autofree guint8 *buffer = g_malloc (65536);
  g_autoptr(GError) error = NULL;
  gsize total = 0;

  while (total < BULK_SIZE)
    {
      gssize n = g_input_stream_read (input, buffer, MIN (65536, BULK_SIZE - total), NULL,
                                      &error);
      gssize i;

      g_assert_no_error (error);
      g_assert_cmpint (n, >, 0);
      for (i = 0; i < n; i++)
        if (buffer[i] != (total + i) % BULK_PATTERN)
          g_error ("byte %" G_GSIZE_FORMAT " is %u", total + i, buffer[i]);
      total += n;
    }

  return NULL;
}

/* One thread writes 64 MiB while another reads them back from the echo
 * server, so that both directions are busy at once for a long time. */
static void
test_concurrent_read_write (Fixture      *fixture,
                            gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) received = NULL;
  GThread *writer;
  GThread *reader;

  fixture_connect_with (fixture, "host.test", "leaf1.pem");
  g_assert_true (fixture_handshake (fixture, &error));

  writer = g_thread_new ("bulk-writer", write_bulk_thread, fixture_output (fixture));
  reader = g_thread_new ("bulk-reader", read_bulk_thread, fixture_input (fixture));
  g_thread_join (writer);
  g_thread_join (reader);

  close_connection (fixture);
  test_server_wait (fixture->server);
  received = test_server_get_received (fixture->server);
  g_assert_cmpuint (g_bytes_get_size (received), ==, BULK_SIZE);
}

#define N_CONCURRENT 200

static guint
count_open_descriptors (void)
{
  g_autoptr(GDir) dir = g_dir_open ("/proc/self/fd", 0, NULL);
  guint n = 0;

  g_assert_nonnull (dir);
  while (g_dir_read_name (dir) != NULL)
    n++;

  return n;
}

typedef struct
{
  GPtrArray *connections;   /* PinTlsClientConnection, as they complete */
  guint n_done;
  guint n_failed;
  guint n_finalized;
} ConcurrentRun;

static void
concurrent_finalized_cb (gpointer data,
                         GObject *connection)
{
  ConcurrentRun *run = data;

  run->n_finalized++;
}

static void
concurrent_connected_cb (GObject      *source,
                         GAsyncResult *result,
                         gpointer      data)
{
  ConcurrentRun *run = data;
  g_autoptr(GError) error = NULL;
  PinTlsClientConnection *connection = pin_tls_connect_finish (result, &error);

  g_assert_no_error (error);
  g_object_weak_ref (G_OBJECT (connection), concurrent_finalized_cb, run);
  g_ptr_array_add (run->connections, connection);
  run->n_done++;
}

static void
concurrent_closed_cb (GObject      *source,
                      GAsyncResult *result,
                      gpointer      data)
{
  ConcurrentRun *run = data;
  g_autoptr(GError) error = NULL;

  if (!g_io_stream_close_finish (G_IO_STREAM (source), result, &error))
    run->n_failed++;
  run->n_done++;
}

/* Makes @n pinned connections at once, all in this thread's main loop,
 * then closes them all at once, checks that they are gone, and waits for
 * the server to be done with them. */
static void
connect_and_close (TestServer   *server,
                   PinTlsPinSet *pins,
                   guint         n)
{
  ConcurrentRun run = { g_ptr_array_new_with_free_func (g_object_unref), 0, 0, 0 };
  guint i;

  for (i = 0; i < n; i++)
    pin_tls_connect_async (test_server_get_address (server), 443, pins, NULL,
                           concurrent_connected_cb, &run);
  iterate_until_count (&run.n_done, n);
  g_assert_cmpuint (run.connections->len, ==, n);

  run.n_done = 0;
  for (i = 0; i < n; i++)
    g_io_stream_close_async (g_ptr_array_index (run.connections, i), G_PRIORITY_DEFAULT, NULL,
                             concurrent_closed_cb, &run);
  iterate_until_count (&run.n_done, n);
  g_assert_cmpuint (run.n_failed, ==, 0);

  g_ptr_array_unref (run.connections);
  while (g_main_context_iteration (NULL, FALSE))
    ;
  g_assert_cmpuint (run.n_finalized, ==, n);
  test_server_wait_n (server, n);
}

/* 200 pinned handshakes at once in one main loop, against one server that
 * serves them all at the same time (one at a time, they would wait for
 * each other for ever); then all closed, leaving no connection and no
 * descriptor behind. */
static void
test_concurrent_handshakes (Fixture      *fixture,
                            gconstpointer data)
{
  g_autoptr(PinTlsPinSet) pins = test_pins_for ("leaf1.pem", NULL);
  guint n_descriptors;

  /* GLib opens some descriptors once, at their first use. */
  connect_and_close (fixture->server, pins, 1);
  n_descriptors = count_open_descriptors ();

  connect_and_close (fixture->server, pins, N_CONCURRENT);
  g_assert_cmpuint (test_server_count_handshakes (fixture->server), ==, N_CONCURRENT + 1);
  g_assert_true (test_server_got_close_notify (fixture->server));
  g_assert_cmpuint (count_open_descriptors (), ==, n_descriptors);
}

#define ASYNC_BULK_SIZE (8 * 1024 * 1024)

/* Asynchronous writes of many records at once, read back through the echo
 * server in the same main loop: the socket fills up in the middle of
 * writes, and every byte must arrive once, in order. */
static void
test_async_bulk_echo (Fixture      *fixture,
                      gconstpointer data)
{
  g_autofree guint8 *expected = g_malloc (ASYNC_BULK_SIZE);
  g_autofree guint8 *received = g_malloc (ASYNC_BULK_SIZE);
  g_auto(AsyncWait) read_wait = { NULL };
  g_auto(AsyncWait) write_wait = { NULL };
  g_autoptr(GError) error = NULL;
  gsize n_written = 0;
  gsize n_read = 0;
  gsize i;

  for (i = 0; i < ASYNC_BULK_SIZE; i++)
    expected[i] = i % BULK_PATTERN;

  fixture_connect_with (fixture, "host.test", "leaf1.pem");
  g_assert_true (fixture_handshake (fixture, &error));

  g_output_stream_write_all_async (fixture_output (fixture), expected, ASYNC_BULK_SIZE,
                                   G_PRIORITY_DEFAULT, NULL, async_wait_cb, &write_wait);
  g_input_stream_read_all_async (fixture_input (fixture), received, ASYNC_BULK_SIZE,
                                 G_PRIORITY_DEFAULT, NULL, async_wait_cb, &read_wait);
  iterate_until (&write_wait.done);
  iterate_until (&read_wait.done);

  g_assert_true (g_output_stream_write_all_finish (fixture_output (fixture),
                                                   write_wait.result, &n_written, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (n_written, ==, ASYNC_BULK_SIZE);
  g_assert_true (g_input_stream_read_all_finish (fixture_input (fixture), read_wait.result,
                                                 &n_read, &error));
  g_assert_no_error (error);
  g_assert_cmpmem (received, n_read, expected, ASYNC_BULK_SIZE);
}

static gpointer
write_ping_thread (gpointer data)
{
  write_text (data, "ping");

  return NULL;
}

static gpointer
read_ping_thread (gpointer data)
{
  read_text (data, "ping");

  return NULL;
}

/* A reader and a writer wait for the handshake this thread runs; each must
 * go on once it is done, whichever wakes first. */
static void
test_concurrent_first_operations (Fixture      *fixture,
                                  gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  GThread *reader;
  GThread *writer;

  fixture_connect_with (fixture, "host.test", "leaf1.pem");

  reader = g_thread_new ("reader", read_ping_thread, fixture);
  writer = g_thread_new ("writer", write_ping_thread, fixture);
  g_assert_true (fixture_handshake (fixture, &error));
  g_assert_no_error (error);
  g_thread_join (reader);
  g_thread_join (writer);

  close_connection (fixture);
  assert_server_received (fixture, "ping");
}

/* Resumption ----------------------------------------------------------- */

/* One connection of a resumption test: how it went. */
typedef struct
{
  GError *error;        /* of the handshake */
  gboolean resumed;     /* as the connection reports it */
  char *session_key;    /* what its sessions are filed under */
} Round;

static void
round_clear (Round *round)
{
  g_clear_error (&round->error);
  g_clear_pointer (&round->session_key, g_free);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Round, round_clear)

static PinTlsClientConnection *
connect_to (const char   *address,
            PinTlsPinSet *pins)
{
  g_autoptr(GSocketClient) client = g_socket_client_new ();
  g_autoptr(GSocketConnection) tcp = NULL;
  g_autoptr(GSocketConnectable) identity = NULL;
  PinTlsClientConnection *connection;
  g_autoptr(GError) error = NULL;

  tcp = g_socket_client_connect_to_host (client, address, 0, NULL, &error);
  g_assert_no_error (error);
  g_socket_set_timeout (g_socket_connection_get_socket (tcp), TEST_TIMEOUT_SECONDS);
  identity = g_network_address_parse (address, 0, &error);
  g_assert_no_error (error);

  connection = pin_tls_client_connection_new (G_IO_STREAM (tcp), identity, pins, &error);
  g_assert_no_error (error);
  pin_tls_client_connection_set_session_resumption_enabled (connection, TRUE);

  return connection;
}

/* Handshakes with resumption on, then echoes (a TLS 1.3 ticket comes
 * with the reply) and closes. A resumed handshake must have the peer's
 * certificates, as a full one. */
static void
run_round (PinTlsClientConnection *connection,
           Round                  *round)
{
  GTlsConnection *tls = G_TLS_CONNECTION (connection);
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) presented = NULL;
  char reply[7];
  gsize n_read = 0;

  g_tls_connection_handshake (tls, NULL, &round->error);
  round->resumed = pin_tls_client_connection_get_session_resumed (connection);
  round->session_key = _pin_tls_client_connection_dup_session_key (connection);
  g_assert_nonnull (round->session_key);

  presented = pin_tls_client_connection_get_presented_pins (connection);
  g_assert_nonnull (presented);
  g_assert_nonnull (presented[0]);
  if (round->error == NULL)
    {
      assert_certificate_is (g_tls_connection_get_peer_certificate (tls), "leaf1.pem");
      g_output_stream_write_all (g_io_stream_get_output_stream (G_IO_STREAM (tls)),
                                 "resume\n", 7, NULL, NULL, &error);
      g_assert_no_error (error);
      g_input_stream_read_all (g_io_stream_get_input_stream (G_IO_STREAM (tls)), reply, 7,
                               &n_read, NULL, &error);
      g_assert_no_error (error);
      g_assert_cmpmem (reply, n_read, "resume\n", 7);
    }

  g_io_stream_close (G_IO_STREAM (tls), NULL, NULL);
}

static void
round_with (TestServer   *server,
            PinTlsPinSet *pins,
            Round        *round)
{
  g_autoptr(PinTlsClientConnection) connection = NULL;

  connection = connect_to (test_server_get_address (server), pins);
  run_round (connection, round);
  g_clear_object (&connection);
  test_server_wait (server);
}

static void
assert_round_ok (Round   *round,
                 gboolean resumed)
{
  g_assert_no_error (round->error);
  g_assert_cmpint (round->resumed, ==, resumed);
}

/* Without being asked, a connection neither resumes nor saves a session,
 * though the server offers both tickets and session IDs. */
static void
test_resumption_off_by_default (Fixture      *fixture,
                                gconstpointer data)
{
  guint i;

  for (i = 0; i < 2; i++)
    {
      g_autoptr(GError) error = NULL;

      fixture_connect_with (fixture, "host.test", "leaf1.pem");
      g_assert_false (
        pin_tls_client_connection_get_session_resumption_enabled (fixture->connection));
      g_assert_true (fixture_handshake (fixture, &error));
      write_text (fixture, "x");
      read_text (fixture, "x");
      close_connection (fixture);
      g_clear_object (&fixture->connection);

      test_server_wait (fixture->server);
      g_assert_false (test_server_was_resumed (fixture->server));
    }
}

/* With resumption on, the second connection resumes the first one's
 * session (a TLS 1.2 ticket or session ID, or a TLS 1.3 ticket), says so,
 * and still has the server's certificates; the third resumes again. */
static void
test_resumption_resumes (Fixture      *fixture,
                         gconstpointer data)
{
  g_autoptr(PinTlsPinSet) pins = test_pins_for ("leaf1.pem", NULL);
  g_auto(Round) first = { NULL };
  g_auto(Round) second = { NULL };
  g_auto(Round) third = { NULL };

  round_with (fixture->server, pins, &first);
  assert_round_ok (&first, FALSE);
  g_assert_false (test_server_was_resumed (fixture->server));

  round_with (fixture->server, pins, &second);
  assert_round_ok (&second, TRUE);
  g_assert_true (test_server_was_resumed (fixture->server));
  g_assert_cmpstr (second.session_key, ==, first.session_key);

  round_with (fixture->server, pins, &third);
  assert_round_ok (&third, TRUE);
  g_assert_true (test_server_was_resumed (fixture->server));
}

/* A session saved while the pins matched is offered to a connection whose
 * pins no longer do: the cache files sessions by pin set, so this takes
 * moving it by hand. GnuTLS skips its certificate check on resumption; the
 * connection's own check refuses the session with a pin mismatch, and the
 * session is gone: the next connection makes a full handshake. */
static void
test_resumption_pins_changed (Fixture      *fixture,
                              gconstpointer data)
{
  g_autoptr(PinTlsPinSet) pins = test_pins_for ("leaf1.pem", NULL);
  g_autoptr(PinTlsPinSet) revoked = test_pins_for ("leaf2.pem", NULL);
  g_autoptr(GBytes) session = NULL;
  g_autoptr(GBytes) received = NULL;
  g_auto(Round) saved = { NULL };
  g_auto(Round) full = { NULL };
  g_auto(Round) resumed = { NULL };
  g_auto(Round) after = { NULL };

  round_with (fixture->server, pins, &saved);
  assert_round_ok (&saved, FALSE);
  round_with (fixture->server, revoked, &full);
  assert_mismatch_pinned_leaf2 (full.error);
  g_assert_false (full.resumed);
  g_assert_cmpstr (full.session_key, !=, saved.session_key);

  session = _pin_tls_session_cache_take (saved.session_key);
  g_assert_nonnull (session);
  _pin_tls_session_cache_store (full.session_key, session);

  round_with (fixture->server, revoked, &resumed);
  assert_mismatch_pinned_leaf2 (resumed.error);
  g_assert_true (resumed.resumed);
  g_assert_true (test_server_was_resumed (fixture->server));
  g_assert_cmpint (test_server_get_alert (fixture->server), ==, GNUTLS_A_BAD_CERTIFICATE);

  /* TLS 1.2 gives the certificates of the session back in time to refuse
   * it before the client's Finished message; TLS 1.3 only once the
   * handshake is over, before any data. */
  if (data == &session_id_server || expected_protocol_version () == G_TLS_PROTOCOL_VERSION_TLS_1_2)
    g_assert_cmpint (test_server_get_handshake_result (fixture->server), ==,
                     GNUTLS_E_FATAL_ALERT_RECEIVED);
  else
    g_assert_cmpint (test_server_get_handshake_result (fixture->server), ==, 0);
  received = test_server_get_received (fixture->server);
  g_assert_cmpuint (g_bytes_get_size (received), ==, 0);

  round_with (fixture->server, revoked, &after);
  assert_mismatch_pinned_leaf2 (after.error);
  g_assert_false (after.resumed);
  g_assert_false (test_server_was_resumed (fixture->server));
}

/* Connections with different pin sets never share a session, in either
 * order: a strict pin set the server does not match fails with a full
 * handshake after a lax one that it matches saved a session, and a lax
 * one after a failed strict one finds nothing to resume. */
static void
test_resumption_separate_pin_sets (Fixture      *fixture,
                                   gconstpointer data)
{
  g_autoptr(PinTlsPinSet) lax = test_pins_for ("leaf1.pem", "leaf2.pem", NULL);
  g_autoptr(PinTlsPinSet) strict = test_pins_for ("leaf2.pem", NULL);
  g_autoptr(PinTlsPinSet) other = test_pins_for ("leaf1.pem", NULL);
  g_auto(Round) lax_first = { NULL };
  g_auto(Round) strict_after = { NULL };
  g_auto(Round) strict_first = { NULL };
  g_auto(Round) other_after = { NULL };
  g_auto(Round) other_again = { NULL };

  round_with (fixture->server, lax, &lax_first);
  assert_round_ok (&lax_first, FALSE);
  round_with (fixture->server, strict, &strict_after);
  assert_mismatch_pinned_leaf2 (strict_after.error);
  g_assert_false (strict_after.resumed);
  g_assert_false (test_server_was_resumed (fixture->server));

  round_with (fixture->server, strict, &strict_first);
  assert_mismatch_pinned_leaf2 (strict_first.error);
  round_with (fixture->server, other, &other_after);
  assert_round_ok (&other_after, FALSE);
  g_assert_false (test_server_was_resumed (fixture->server));

  /* The same pins again do resume: the refusals above are not for want
   * of a resumable server. */
  round_with (fixture->server, other, &other_again);
  assert_round_ok (&other_again, TRUE);
}

/* The same pins in another trust mode are another key: a session saved
 * in pin-only mode is not offered to a connection that also checks
 * certificate authorities, which then saves and resumes its own. */
static void
test_resumption_separate_modes (Fixture      *fixture,
                                gconstpointer data)
{
  g_autoptr(PinTlsPinSet) pins = test_pins_for ("leaf1.pem", NULL);
  g_autofree char *root = test_data_path ("rootA.pem");
  g_autoptr(GTlsDatabase) database = g_tls_file_database_new (root, NULL);
  g_autoptr(GSocketConnectable) identity = NULL;
  Round rounds[3] = { { NULL } };
  guint i;

  identity = g_network_address_new ("host.test", test_server_get_port (fixture->server));
  for (i = 0; i < G_N_ELEMENTS (rounds); i++)
    {
      g_autoptr(PinTlsClientConnection) connection = NULL;

      connection = connect_to (test_server_get_address (fixture->server), pins);
      g_tls_client_connection_set_server_identity (G_TLS_CLIENT_CONNECTION (connection),
                                                   identity);
      if (i > 0)
        {
          pin_tls_client_connection_set_mode (connection, PIN_TLS_MODE_CA_AND_PINS);
          g_tls_connection_set_database (G_TLS_CONNECTION (connection), database);
        }
      run_round (connection, &rounds[i]);
      g_clear_object (&connection);
      test_server_wait (fixture->server);
    }

  assert_round_ok (&rounds[0], FALSE);
  assert_round_ok (&rounds[1], FALSE);
  g_assert_cmpstr (rounds[1].session_key, !=, rounds[0].session_key);
  assert_round_ok (&rounds[2], TRUE);
  for (i = 0; i < G_N_ELEMENTS (rounds); i++)
    round_clear (&rounds[i]);
}

/* copy_session_state() hands one connection's session to another with
 * the same key, and to no other. The cache is emptied first, so that
 * only the copy can make the handshake resume. */
static void
test_resumption_copy_session_state (Fixture      *fixture,
                                    gconstpointer data)
{
  g_autoptr(PinTlsPinSet) pins = test_pins_for ("leaf1.pem", NULL);
  g_autoptr(PinTlsPinSet) backup = test_pins_for ("leaf1.pem", "leaf2.pem", NULL);
  g_autoptr(PinTlsClientConnection) source = NULL;
  g_autoptr(PinTlsClientConnection) copy = NULL;
  g_autoptr(PinTlsClientConnection) other = NULL;
  g_autoptr(GBytes) cached = NULL;
  g_auto(Round) saved = { NULL };
  g_auto(Round) copied = { NULL };
  g_auto(Round) not_copied = { NULL };

  source = connect_to (test_server_get_address (fixture->server), pins);
  run_round (source, &saved);
  assert_round_ok (&saved, FALSE);
  test_server_wait (fixture->server);
  cached = _pin_tls_session_cache_take (saved.session_key);
  g_assert_nonnull (cached);

  other = connect_to (test_server_get_address (fixture->server), backup);
  g_tls_client_connection_copy_session_state (G_TLS_CLIENT_CONNECTION (other),
                                              G_TLS_CLIENT_CONNECTION (source));
  run_round (other, &not_copied);
  assert_round_ok (&not_copied, FALSE);
  test_server_wait (fixture->server);
  g_assert_false (test_server_was_resumed (fixture->server));

  copy = connect_to (test_server_get_address (fixture->server), pins);
  g_tls_client_connection_copy_session_state (G_TLS_CLIENT_CONNECTION (copy),
                                              G_TLS_CLIENT_CONNECTION (source));
  run_round (copy, &copied);
  assert_round_ok (&copied, TRUE);
  test_server_wait (fixture->server);
  g_assert_true (test_server_was_resumed (fixture->server));
}

/* The session cache's bounds, tested on the cache itself with its clock
 * under the test's control: filling it takes hundreds of handshakes, and
 * ageing a session ten minutes of waiting. Sessions are opaque bytes to
 * the cache, so these are not real ones. Other tests may have left
 * sessions behind; they are older than any stored here. */
static gint64 cache_now;

static gint64
cache_clock (void)
{
  return cache_now;
}

static char *
cache_test_key (guint i)
{
  return g_strdup_printf ("cache-test-%u.test:443/%u", i, i);
}

static void
cache_test_store (guint i)
{
  g_autofree char *key = cache_test_key (i);
  g_autoptr(GBytes) data = g_bytes_new (&i, sizeof i);

  _pin_tls_session_cache_store (key, data);
}

/* Takes session @i out of the cache: whether it was there, and if so that
 * it is the one stored under its key. */
static gboolean
cache_test_take (guint i)
{
  g_autofree char *key = cache_test_key (i);
  g_autoptr(GBytes) data = _pin_tls_session_cache_take (key);

  if (data == NULL)
    return FALSE;

  g_assert_cmpmem (g_bytes_get_data (data, NULL), g_bytes_get_size (data), &i,
                   sizeof i);
  return TRUE;
}

static void
cache_test_clear (void)
{
  guint i;

  for (i = 0; i <= PIN_TLS_SESSION_CACHE_SIZE; i++)
    cache_test_take (i);
  _pin_tls_session_cache_set_clock (NULL);
}

/* A full cache makes room for a new server by dropping its oldest
 * session; a session replacing one under the same key takes no room, and
 * drops none. */
static void
test_session_cache_full (void)
{
  guint i;

  cache_now = g_get_monotonic_time ();
  _pin_tls_session_cache_set_clock (cache_clock);
  for (i = 0; i < PIN_TLS_SESSION_CACHE_SIZE; i++, cache_now++)
    cache_test_store (i);

  cache_test_store (PIN_TLS_SESSION_CACHE_SIZE);
  cache_now++;
  cache_test_store (PIN_TLS_SESSION_CACHE_SIZE);

  g_assert_false (cache_test_take (0));
  for (i = 1; i <= PIN_TLS_SESSION_CACHE_SIZE; i++)
    g_assert_true (cache_test_take (i));

  cache_test_clear ();
}

/* A session is not offered once its lifetime is over, and a full cache
 * drops every expired session before any live one. */
static void
test_session_cache_expiry (void)
{
  const guint half = PIN_TLS_SESSION_CACHE_SIZE / 2;
  gint64 start = g_get_monotonic_time ();
  guint i;

  cache_now = start;
  _pin_tls_session_cache_set_clock (cache_clock);
  for (i = 0; i < PIN_TLS_SESSION_CACHE_SIZE; i++)
    {
      if (i == half)
        cache_now = start + PIN_TLS_SESSION_LIFETIME;
      cache_test_store (i);
    }

  cache_now = start + PIN_TLS_SESSION_LIFETIME + 1;
  cache_test_store (PIN_TLS_SESSION_CACHE_SIZE);

  /* None of the second half, the oldest of it included, went to make
   * room: the first half expired and went. Turning the clock back shows
   * that they are gone, not merely refused. */
  for (i = half; i <= PIN_TLS_SESSION_CACHE_SIZE; i++)
    g_assert_true (cache_test_take (i));
  cache_now = start;
  for (i = 0; i < half; i++)
    g_assert_false (cache_test_take (i));

  /* A session at the end of its lifetime is still offered, not after. */
  cache_now = start;
  cache_test_store (0);
  cache_test_store (1);
  cache_now += PIN_TLS_SESSION_LIFETIME;
  g_assert_true (cache_test_take (0));
  cache_now++;
  g_assert_false (cache_test_take (1));

  cache_test_clear ();
}

/* gnutls-serv as an independent server, with its session cache for TLS
 * 1.2 session IDs (--noticket) or with TLS 1.3 tickets: sessions resume,
 * and one moved under pins the server does not match is refused. */
static void
test_resumption_gnutls_serv (gconstpointer data)
{
  const char *const *extra_args = data;
  g_autoptr(TestProcessServer) server = NULL;
  g_autoptr(PinTlsPinSet) pins = test_pins_for ("leaf1.pem", NULL);
  g_autoptr(PinTlsPinSet) revoked = test_pins_for ("leaf2.pem", NULL);
  g_autoptr(GBytes) session = NULL;
  Round rounds[4] = { { NULL } };
  PinTlsPinSet *round_pins[] = { pins, pins, revoked, revoked };
  guint i;

  server = test_gnutls_serv_new ("leaf1-chain.pem", "leaf1.key", extra_args);
  if (server == NULL)
    {
      g_test_skip ("gnutls-serv is not installed");
      return;
    }

  for (i = 0; i < G_N_ELEMENTS (rounds); i++)
    {
      g_autoptr(PinTlsClientConnection) connection = NULL;

      if (i == 3)
        {
          session = _pin_tls_session_cache_take (rounds[1].session_key);
          g_assert_nonnull (session);
          _pin_tls_session_cache_store (rounds[2].session_key, session);
        }
      connection = connect_to (test_process_server_get_address (server), round_pins[i]);
      run_round (connection, &rounds[i]);
    }

  assert_round_ok (&rounds[0], FALSE);
  assert_round_ok (&rounds[1], TRUE);
  g_assert_error (rounds[2].error, PIN_TLS_ERROR, PIN_TLS_ERROR_PIN_MISMATCH);
  g_assert_false (rounds[2].resumed);
  g_assert_error (rounds[3].error, PIN_TLS_ERROR, PIN_TLS_ERROR_PIN_MISMATCH);
  g_assert_true (rounds[3].resumed);

  for (i = 0; i < G_N_ELEMENTS (rounds); i++)
    round_clear (&rounds[i]);
}

/* Connect helpers ------------------------------------------------------ */

static void
test_connect (Fixture      *fixture,
              gconstpointer data)
{
  g_autoptr(PinTlsPinSet) pins = test_pins_for ("leaf1.pem", NULL);
  g_autoptr(GIOStream) base = NULL;
  g_autoptr(GError) error = NULL;

  fixture->connection = pin_tls_connect (test_server_get_address (fixture->server), 443, pins,
                                         NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (fixture->connection);
  g_object_get (fixture->connection, "base-io-stream", &base, NULL);
  fixture_watch_tcp (fixture, G_SOCKET_CONNECTION (base));
  assert_no_nagle (fixture);

  write_text (fixture, "connected");
  read_text (fixture, "connected");
}

static void
connect_async (Fixture      *fixture,
               const char   *address,
               PinTlsPinSet *pins,
               GCancellable *cancellable,
               AsyncWait    *wait)
{
  pin_tls_connect_async (address ? address : test_server_get_address (fixture->server), 443,
                         pins, cancellable, async_wait_cb, wait);
  iterate_until (&wait->done);

  g_assert_true (wait->thread == g_thread_self ());
  g_assert_true (g_async_result_is_tagged (wait->result, pin_tls_connect_async));
  g_assert_null (g_async_result_get_source_object (wait->result));
}

static void
test_connect_async (Fixture      *fixture,
                    gconstpointer data)
{
  g_autoptr(PinTlsPinSet) pins = test_pins_for ("leaf1.pem", NULL);
  g_auto(AsyncWait) wait = { NULL };
  g_autoptr(GIOStream) base = NULL;
  g_autoptr(GError) error = NULL;

  connect_async (fixture, NULL, pins, NULL, &wait);
  fixture->connection = pin_tls_connect_finish (wait.result, &error);
  g_assert_no_error (error);
  g_assert_nonnull (fixture->connection);
  g_object_get (fixture->connection, "base-io-stream", &base, NULL);
  fixture_watch_tcp (fixture, G_SOCKET_CONNECTION (base));
  assert_no_nagle (fixture);
  assert_peer (fixture);

  write_text (fixture, "connected");
  read_text (fixture, "connected");
}

static void
test_connect_async_mismatch (Fixture      *fixture,
                             gconstpointer data)
{
  g_autoptr(PinTlsPinSet) pins = test_pins_for ("leaf1.pem", NULL);
  g_auto(AsyncWait) wait = { NULL };
  g_autoptr(PinTlsClientConnection) connection = NULL;
  g_autoptr(GError) error = NULL;

  connect_async (fixture, NULL, pins, NULL, &wait);
  connection = pin_tls_connect_finish (wait.result, &error);
  g_assert_null (connection);
  assert_mismatch (error);
  assert_server_refused (fixture);
}

/* Nothing listens on the port any more. */
static void
test_connect_async_refused (Fixture      *fixture,
                            gconstpointer data)
{
  g_autoptr(PinTlsPinSet) pins = test_pins_for ("leaf1.pem", NULL);
  g_autofree char *address = g_strdup (test_server_get_address (fixture->server));
  g_auto(AsyncWait) wait = { NULL };
  g_autoptr(PinTlsClientConnection) connection = NULL;
  g_autoptr(GError) error = NULL;

  g_clear_pointer (&fixture->server, test_server_free);
  connect_async (fixture, address, pins, NULL, &wait);
  connection = pin_tls_connect_finish (wait.result, &error);
  g_assert_null (connection);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED);

  fixture->server = test_server_new (data);
}

static void
test_connect_async_bad_address (Fixture      *fixture,
                                gconstpointer data)
{
  g_autoptr(PinTlsPinSet) pins = test_pins_for ("leaf1.pem", NULL);
  g_auto(AsyncWait) wait = { NULL };
  g_autoptr(PinTlsClientConnection) connection = NULL;
  g_autoptr(GError) error = NULL;

  connect_async (fixture, "[::1", pins, NULL, &wait);
  connection = pin_tls_connect_finish (wait.result, &error);
  g_assert_null (connection);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
}

/* Against a server that never answers the ClientHello, cancelled before
 * the connection, while connecting, or during the handshake: one callback,
 * one cancellation error, no connection. */
static void
test_connect_async_cancelled (Fixture      *fixture,
                              gconstpointer data)
{
  g_autoptr(PinTlsPinSet) pins = test_pins_for ("leaf1.pem", NULL);
  guint n_iterations;

  for (n_iterations = 0; n_iterations < 12; n_iterations++)
    {
      g_autoptr(GCancellable) cancellable = g_cancellable_new ();
      g_autoptr(PinTlsClientConnection) connection = NULL;
      g_autoptr(GError) error = NULL;
      guint n_calls = 0;
      guint i;

      pin_tls_connect_async (test_server_get_address (fixture->server), 443, pins,
                             cancellable, count_calls_cb, &n_calls);
      for (i = 0; i < n_iterations && n_calls == 0; i++)
        g_main_context_iteration (NULL, FALSE);
      g_cancellable_cancel (cancellable);
      iterate_until_count (&n_calls, 1);
      while (g_main_context_iteration (NULL, FALSE))
        ;

      g_assert_cmpuint (n_calls, ==, 1);
      connection = pin_tls_connect_finish (last_result, &error);
      g_assert_null (connection);
      g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
      g_clear_object (&last_result);
    }
}

static void
test_connect_mismatch (Fixture      *fixture,
                       gconstpointer data)
{
  g_autoptr(PinTlsPinSet) pins = test_pins_for ("leaf1.pem", NULL);
  g_autoptr(GError) error = NULL;

  fixture->connection = pin_tls_connect (test_server_get_address (fixture->server), 443, pins,
                                         NULL, &error);
  g_assert_null (fixture->connection);
  assert_mismatch (error);
  assert_server_refused (fixture);
}

static void
test_fetch_server_chain (Fixture      *fixture,
                         gconstpointer data)
{
  g_autoptr(GPtrArray) expected = test_load_der_chain ("leaf1-chain.pem");
  g_autoptr(GPtrArray) chain = NULL;
  g_autoptr(GBytes) received = NULL;
  g_autoptr(GError) error = NULL;
  guint i;

  chain = pin_tls_fetch_server_chain (test_server_get_address (fixture->server), 443,
                                      "host.test", NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (chain->len, ==, 2);
  for (i = 0; i < chain->len; i++)
    g_assert_true (g_bytes_equal (g_ptr_array_index (chain, i),
                                  g_ptr_array_index (expected, i)));

  test_server_wait (fixture->server);
  received = test_server_get_received (fixture->server);
  g_assert_cmpint (test_server_get_handshake_result (fixture->server), <, 0);
  g_assert_cmpuint (g_bytes_get_size (received), ==, 0);
}

static gpointer
cancel_soon_thread (gpointer data)
{
  g_usleep (G_USEC_PER_SEC / 10);
  g_cancellable_cancel (data);

  return NULL;
}

/* The server never answers; cancelling ends the fetch, whenever it comes. */
static void
test_fetch_server_chain_cancelled (Fixture      *fixture,
                                   gconstpointer data)
{
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GPtrArray) chain = NULL;
  g_autoptr(GError) error = NULL;
  GThread *canceller;

  canceller = g_thread_new ("canceller", cancel_soon_thread, cancellable);
  chain = pin_tls_fetch_server_chain (test_server_get_address (fixture->server), 443,
                                      "host.test", cancellable, &error);
  g_thread_join (canceller);

  g_assert_null (chain);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
}

/* Paths few applications take --------------------------------------------- */

/* Setting a property to the value it has changes nothing and notifies
 * nothing; a new value notifies once. */
static void
test_setters_notify_changes_only (Fixture      *fixture,
                                  gconstpointer data)
{
  guint n_mode = 0;
  guint n_resumption = 0;

  fixture_connect_with (fixture, "host.test", "leaf1.pem");
  g_signal_connect (fixture->connection, "notify::mode", G_CALLBACK (count_cb), &n_mode);
  g_signal_connect (fixture->connection, "notify::session-resumption-enabled",
                    G_CALLBACK (count_cb), &n_resumption);

  pin_tls_client_connection_set_mode (fixture->connection, PIN_TLS_MODE_PIN_ONLY);
  pin_tls_client_connection_set_session_resumption_enabled (fixture->connection, FALSE);
  g_assert_cmpuint (n_mode, ==, 0);
  g_assert_cmpuint (n_resumption, ==, 0);

  pin_tls_client_connection_set_mode (fixture->connection, PIN_TLS_MODE_CA_AND_PINS);
  pin_tls_client_connection_set_session_resumption_enabled (fixture->connection, TRUE);
  pin_tls_client_connection_set_session_resumption_enabled (fixture->connection, 2);
  g_assert_cmpuint (n_mode, ==, 1);
  g_assert_cmpuint (n_resumption, ==, 1);
  g_assert_cmpint (pin_tls_client_connection_get_mode (fixture->connection), ==,
                   PIN_TLS_MODE_CA_AND_PINS);
  g_assert_true (
    pin_tls_client_connection_get_session_resumption_enabled (fixture->connection));
  close_connection (fixture);
}

/* A channel binding type that GIO may define after this code was
 * written is refused as not implemented, not mistaken for another. */
static void
test_channel_binding_unknown_type (Fixture      *fixture,
                                   gconstpointer data)
{
  g_autoptr(GByteArray) binding = NULL;
  g_autoptr(GError) error = NULL;

  fixture_connect_with (fixture, "host.test", "leaf1.pem");
  g_assert_true (fixture_handshake (fixture, &error));

  binding = get_binding (fixture, (GTlsChannelBindingType) 42, &error);
  g_assert_null (binding);
  g_assert_error (error, G_TLS_CHANNEL_BINDING_ERROR,
                  G_TLS_CHANNEL_BINDING_ERROR_NOT_IMPLEMENTED);
  close_connection (fixture);
}

/* GnuTLS cannot send an application protocol name of 32 bytes or more:
 * the handshake fails before anything goes out. */
static void
test_alpn_name_too_long (Fixture      *fixture,
                         gconstpointer data)
{
  const char *protocols[] = { "pintls/1", "pintls/a-protocol-name-of-40-bytes-long", NULL };
  g_autoptr(GError) error = NULL;

  fixture_connect_with (fixture, "host.test", "leaf1.pem");
  g_tls_connection_set_advertised_protocols (G_TLS_CONNECTION (fixture->connection),
                                             protocols);

  g_assert_false (fixture_handshake (fixture, &error));
  g_assert_error (error, G_TLS_ERROR, G_TLS_ERROR_MISC);
  g_assert_nonnull (strstr (error->message, "application protocols"));
  g_clear_error (&error);
  g_assert_cmpint (g_output_stream_write (fixture_output (fixture), "x", 1, NULL, &error), ==,
                   -1);
  g_assert_error (error, G_TLS_ERROR, G_TLS_ERROR_MISC);
  close_connection (fixture);

  test_server_wait (fixture->server);
  g_assert_false (test_server_got_client_hello (fixture->server));
}

/* Validation flags that leave out a certificate authority error accept
 * it without asking accept-certificate, and the connection reports it. */
static void
test_validation_flags_mask_ca_error (Fixture      *fixture,
                                     gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  guint n_emitted = 0;

  fixture_connect_with (fixture, "other.test", "leaf1.pem");
  fixture_trust_root_a (fixture);
  g_signal_connect (fixture->connection, "accept-certificate", G_CALLBACK (refuse_cb),
                    &n_emitted);
  G_GNUC_BEGIN_IGNORE_DEPRECATIONS
  g_tls_client_connection_set_validation_flags (G_TLS_CLIENT_CONNECTION (fixture->connection),
                                                G_TLS_CERTIFICATE_VALIDATE_ALL
                                                & ~G_TLS_CERTIFICATE_BAD_IDENTITY);
  G_GNUC_END_IGNORE_DEPRECATIONS

  g_assert_true (fixture_handshake (fixture, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (n_emitted, ==, 0);
  g_assert_cmpuint (g_tls_connection_get_peer_certificate_errors (G_TLS_CONNECTION (fixture->connection)),
                    ==, G_TLS_CERTIFICATE_BAD_IDENTITY);
  write_text (fixture, "x");
  read_text (fixture, "x");
  close_connection (fixture);
  assert_server_received (fixture, "x");
}

/* The connection stays usable for an older TLS version the server
 * insists on, and reports it. */
static void
test_protocol_version_old (Fixture      *fixture,
                           gconstpointer data)
{
  GTlsProtocolVersion expected = GPOINTER_TO_INT (g_object_get_data (G_OBJECT (fixture->connection),
                                                                     "expected"));
  g_autoptr(GError) error = NULL;

  g_assert_true (fixture_handshake (fixture, &error));
  g_assert_no_error (error);
  g_assert_cmpint (g_tls_connection_get_protocol_version (G_TLS_CONNECTION (fixture->connection)),
                   ==, expected);
  write_text (fixture, "old");
  read_text (fixture, "old");
  close_connection (fixture);
  assert_server_received (fixture, "old");
}

static void
test_protocol_version_tls10 (Fixture      *fixture,
                             gconstpointer data)
{
  fixture_connect_with (fixture, "host.test", "leaf1.pem");
  g_object_set_data (G_OBJECT (fixture->connection), "expected",
                     GINT_TO_POINTER (G_TLS_PROTOCOL_VERSION_TLS_1_0));
  test_protocol_version_old (fixture, data);
}

static void
test_protocol_version_tls11 (Fixture      *fixture,
                             gconstpointer data)
{
  fixture_connect_with (fixture, "host.test", "leaf1.pem");
  g_object_set_data (G_OBJECT (fixture->connection), "expected",
                     GINT_TO_POINTER (G_TLS_PROTOCOL_VERSION_TLS_1_1));
  test_protocol_version_old (fixture, data);
}

/* Two asynchronous handshakes asked for at once share one handshake, and
 * each hears of its end once. */
static void
test_async_handshake_joined (Fixture      *fixture,
                             gconstpointer data)
{
  GTlsConnection *connection;
  g_auto(AsyncWait) first = { NULL };
  g_auto(AsyncWait) second = { NULL };
  g_autoptr(GError) error = NULL;

  fixture_connect_with (fixture, "host.test", "leaf1.pem");
  connection = G_TLS_CONNECTION (fixture->connection);
  g_tls_connection_handshake_async (connection, G_PRIORITY_DEFAULT, NULL, async_wait_cb,
                                    &first);
  g_tls_connection_handshake_async (connection, G_PRIORITY_DEFAULT, NULL, async_wait_cb,
                                    &second);
  iterate_until (&first.done);
  iterate_until (&second.done);

  g_assert_true (g_tls_connection_handshake_finish (connection, first.result, &error));
  g_assert_true (g_tls_connection_handshake_finish (connection, second.result, &error));
  g_assert_no_error (error);
  write_text (fixture, "x");
  read_text (fixture, "x");
  close_connection (fixture);
  assert_server_received (fixture, "x");
  g_assert_cmpuint (test_server_count_handshakes (fixture->server), ==, 1);
}

static gboolean
closure_read_cb (GObject *stream,
                 gpointer data)
{
  GString *text = data;
  char buffer[16];
  gssize n;

  n = g_pollable_input_stream_read_nonblocking (G_POLLABLE_INPUT_STREAM (stream), buffer,
                                                sizeof buffer, NULL, NULL);
  if (n > 0)
    g_string_append_len (text, buffer, n);

  return text->len < 4;
}

/* A source driven through a GClosure, as bindings drive it, calls the
 * closure with the stream, and stops when the closure says so. */
static void
test_source_closure (Fixture      *fixture,
                     gconstpointer data)
{
  g_autoptr(GString) text = g_string_new (NULL);
  g_autoptr(GSource) source = NULL;
  GClosure *closure;

  fixture_connect_with (fixture, "host.test", "leaf1.pem");
  write_text (fixture, "ping");
  source = g_pollable_input_stream_create_source (G_POLLABLE_INPUT_STREAM (fixture_input (fixture)),
                                                  NULL);
  closure = g_cclosure_new (G_CALLBACK (closure_read_cb), text, NULL);
  g_source_set_closure (source, closure);
  g_source_attach (source, NULL);

  while (!g_source_is_destroyed (source))
    iterate_once ();
  g_assert_cmpstr (text->str, ==, "ping");
  close_connection (fixture);
}

static gboolean
read_one_byte_cb (GObject *stream,
                  gpointer data)
{
  GString *text = data;
  g_autoptr(GError) error = NULL;
  char byte;

  g_assert_cmpint (g_pollable_input_stream_read_nonblocking (G_POLLABLE_INPUT_STREAM (stream),
                                                             &byte, 1, NULL, &error), ==, 1);
  g_assert_no_error (error);
  g_string_append_c (text, byte);

  return text->len < 5 ? G_SOURCE_CONTINUE : G_SOURCE_REMOVE;
}

/* A source that stays attached after each one-byte read fires again for
 * the bytes GnuTLS holds, where polling the socket cannot see them, and
 * waits on the socket again once they are read. */
static void
test_source_continues_over_buffered_data (Fixture      *fixture,
                                          gconstpointer data)
{
  g_autoptr(GString) text = g_string_new (NULL);
  g_autoptr(GSource) source = NULL;

  fixture_connect_with (fixture, "host.test", "leaf1.pem");
  g_assert_true (fixture_handshake (fixture, NULL));
  source = g_pollable_input_stream_create_source (G_POLLABLE_INPUT_STREAM (fixture_input (fixture)),
                                                  NULL);
  g_source_set_callback (source, G_SOURCE_FUNC (read_one_byte_cb), text, NULL);
  g_source_attach (source, NULL);
  write_text (fixture, "hello");

  while (!g_source_is_destroyed (source))
    iterate_once ();
  g_assert_cmpstr (text->str, ==, "hello");
  close_connection (fixture);
}

static gboolean
close_in_handler_cb (GTlsConnection      *connection,
                     GTlsCertificate     *peer_certificate,
                     GTlsCertificateFlags errors,
                     gpointer             data)
{
  GError **close_error = data;

  GOutputStream *output = g_io_stream_get_output_stream (G_IO_STREAM (connection));

  g_assert_false (g_output_stream_close (output, NULL, close_error));

  return FALSE;
}

/* Closing from inside the handshake, in an accept-certificate handler,
 * would wait for ever for the handshake: it fails instead, and the
 * handshake still refuses what the handler refused. */
static void
test_close_in_handler (Fixture      *fixture,
                       gconstpointer data)
{
  g_autoptr(GError) close_error = NULL;
  g_autoptr(GError) error = NULL;

  fixture_connect_with (fixture, "other.test", "leaf1.pem");
  fixture_trust_root_a (fixture);
  g_signal_connect (fixture->connection, "accept-certificate",
                    G_CALLBACK (close_in_handler_cb), &close_error);

  g_assert_false (fixture_handshake (fixture, &error));
  g_assert_error (error, G_TLS_ERROR, G_TLS_ERROR_BAD_CERTIFICATE);
  g_assert_error (close_error, G_IO_ERROR, G_IO_ERROR_FAILED);
  g_assert_false (g_io_stream_is_closed (G_IO_STREAM (fixture->tcp)));
  assert_server_refused (fixture);
  close_connection (fixture);
  g_assert_true (g_io_stream_is_closed (G_IO_STREAM (fixture->tcp)));
}

/* An asynchronous handshake that another thread runs on its own main
 * context, with a server that never answers. */
typedef struct
{
  Fixture *fixture;
  GCancellable *cancellable;
  GMutex lock;
  GCond cond;
  gboolean started;
  GError *error;
} OtherThreadHandshake;

static gpointer
other_thread_handshake (gpointer data)
{
  OtherThreadHandshake *other = data;
  g_autoptr(GMainContext) context = g_main_context_new ();
  g_auto(AsyncWait) wait = { NULL };

  g_main_context_push_thread_default (context);
  g_tls_connection_handshake_async (G_TLS_CONNECTION (other->fixture->connection),
                                    G_PRIORITY_DEFAULT, other->cancellable, async_wait_cb,
                                    &wait);
  g_mutex_lock (&other->lock);
  other->started = TRUE;
  g_cond_signal (&other->cond);
  g_mutex_unlock (&other->lock);

  while (!wait.done)
    g_main_context_iteration (context, TRUE);
  g_tls_connection_handshake_finish (G_TLS_CONNECTION (other->fixture->connection),
                                     wait.result, &other->error);
  g_main_context_pop_thread_default (context);

  return NULL;
}

static GThread *
start_other_thread_handshake (OtherThreadHandshake *other)
{
  GThread *thread = g_thread_new ("handshake", other_thread_handshake, other);

  g_mutex_lock (&other->lock);
  while (!other->started)
    g_cond_wait (&other->cond, &other->lock);
  g_mutex_unlock (&other->lock);

  return thread;
}

/* A blocking handshake, run in a thread of its own over one end of a
 * socket pair whose other end never answers. */
typedef struct
{
  PinTlsClientConnection *connection;
  GCancellable *cancellable;
  GError *error;
} BlockedHandshake;

static gpointer
blocked_handshake_thread (gpointer data)
{
  BlockedHandshake *blocked = data;

  g_tls_connection_handshake (G_TLS_CONNECTION (blocked->connection), blocked->cancellable,
                              &blocked->error);
  return NULL;
}

/* Non-blocking reads and writes while another thread's blocking handshake
 * waits for the server would block, rather than wait for it or run a
 * handshake of their own. The ClientHello arriving at the silent end shows
 * that the handshake has started. */
static void
test_nonblocking_during_other_thread_handshake (Fixture      *fixture,
                                                gconstpointer data)
{
  g_autoptr(PinTlsPinSet) pins = test_pins_for ("leaf1.pem", NULL);
  g_autoptr(GSocketConnectable) identity = g_network_address_new ("host.test", 443);
  g_autoptr(PinTlsClientConnection) connection = NULL;
  g_autoptr(GSocketConnection) base = NULL;
  g_autoptr(GSocket) socket = NULL;
  g_autoptr(GError) error = NULL;
  BlockedHandshake blocked = { NULL, g_cancellable_new (), NULL };
  struct pollfd hello = { -1, POLLIN, 0 };
  GIOStream *stream;
  GThread *thread;
  int fds[2];
  char byte;

  g_assert_cmpint (socketpair (AF_UNIX, SOCK_STREAM, 0, fds), ==, 0);
  hello.fd = fds[1];
  socket = g_socket_new_from_fd (fds[0], &error);
  g_assert_no_error (error);
  base = g_socket_connection_factory_create_connection (socket);
  connection = pin_tls_client_connection_new (G_IO_STREAM (base), identity, pins, &error);
  g_assert_no_error (error);
  stream = G_IO_STREAM (connection);

  blocked.connection = connection;
  thread = g_thread_new ("handshake", blocked_handshake_thread, &blocked);
  g_assert_cmpint (poll (&hello, 1, TEST_TIMEOUT_SECONDS * 1000), ==, 1);

  g_assert_cmpint (g_pollable_input_stream_read_nonblocking (
                     G_POLLABLE_INPUT_STREAM (g_io_stream_get_input_stream (stream)), &byte,
                     1, NULL, &error), ==, -1);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK);
  g_clear_error (&error);
  g_assert_cmpint (g_pollable_output_stream_write_nonblocking (
                     G_POLLABLE_OUTPUT_STREAM (g_io_stream_get_output_stream (stream)), "x",
                     1, NULL, &error), ==, -1);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK);

  g_cancellable_cancel (blocked.cancellable);
  g_thread_join (thread);
  g_assert_error (blocked.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&blocked.error);
  g_clear_object (&blocked.cancellable);
  close (fds[1]);
}

/* A blocking read that waits for the handshake another thread runs
 * gives up when its cancellable is cancelled; the handshake goes on until
 * its own cancellable ends it. */
static void
test_cancel_read_waiting_for_handshake (Fixture      *fixture,
                                        gconstpointer data)
{
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GCancellable) read_cancellable = g_cancellable_new ();
  OtherThreadHandshake other = { fixture, cancellable };
  CancellableRead read = { fixture, read_cancellable };
  GThread *thread;
  GThread *reader;

  fixture_connect_with (fixture, "host.test", "leaf1.pem");
  thread = start_other_thread_handshake (&other);

  /* Whether the read already waits when the cancellation comes or not,
   * it fails the same way. */
  reader = g_thread_new ("reader", blocked_read_thread, &read);
  g_usleep (G_USEC_PER_SEC / 20);
  g_cancellable_cancel (read_cancellable);
  g_thread_join (reader);
  g_assert_null (other.error);

  g_cancellable_cancel (cancellable);
  g_thread_join (thread);
  g_assert_error (other.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&other.error);
  close_connection (fixture);
}

/* An asynchronous close waits, without blocking this thread, for the
 * handshake another thread runs, and closes once it is over. */
static void
test_close_async_waits_for_handshake (Fixture      *fixture,
                                      gconstpointer data)
{
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  OtherThreadHandshake other = { fixture, cancellable };
  g_auto(AsyncWait) wait = { NULL };
  g_autoptr(GError) error = NULL;
  GThread *thread;

  fixture_connect_with (fixture, "host.test", "leaf1.pem");
  thread = start_other_thread_handshake (&other);

  g_io_stream_close_async (G_IO_STREAM (fixture->connection), G_PRIORITY_DEFAULT, NULL,
                           async_wait_cb, &wait);
  while (g_main_context_iteration (NULL, FALSE))
    ;
  g_assert_false (wait.done);
  g_assert_false (g_io_stream_is_closed (G_IO_STREAM (fixture->tcp)));

  g_cancellable_cancel (cancellable);
  iterate_until (&wait.done);
  g_thread_join (thread);

  g_assert_error (other.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&other.error);
  g_assert_true (g_io_stream_close_finish (G_IO_STREAM (fixture->connection), wait.result,
                                           &error));
  g_assert_no_error (error);
  g_assert_true (g_io_stream_is_closed (G_IO_STREAM (fixture->tcp)));
}

/* What a close cancelled while it waits for that handshake leaves: it
 * gives up waiting and close_notify, not closing. The handshake ends as
 * closed, the base stream is closed, the server sees the end of the
 * stream, and every later operation fails as closed. */
static void
assert_closed_by_cancelled_close (Fixture              *fixture,
                                  OtherThreadHandshake *other,
                                  GThread              *thread)
{
  g_thread_join (thread);
  g_assert_error (other->error, G_IO_ERROR, G_IO_ERROR_CLOSED);
  g_clear_error (&other->error);

  g_assert_true (g_io_stream_is_closed (G_IO_STREAM (fixture->tcp)));
  test_server_wait (fixture->server);
  assert_operations_fail (fixture, take_closed, TRUE);
}

/* An asynchronous close waiting for that handshake, cancelled. */
static void
test_close_async_cancelled_while_waiting (Fixture      *fixture,
                                          gconstpointer data)
{
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GCancellable) close_cancellable = g_cancellable_new ();
  OtherThreadHandshake other = { fixture, cancellable };
  g_auto(AsyncWait) wait = { NULL };
  g_autoptr(GError) error = NULL;
  GThread *thread;

  fixture_connect_with (fixture, "host.test", "leaf1.pem");
  thread = start_other_thread_handshake (&other);

  g_io_stream_close_async (G_IO_STREAM (fixture->connection), G_PRIORITY_DEFAULT,
                           close_cancellable, async_wait_cb, &wait);
  while (g_main_context_iteration (NULL, FALSE))
    ;
  g_assert_false (wait.done);

  g_cancellable_cancel (close_cancellable);
  iterate_until (&wait.done);
  g_assert_false (g_io_stream_close_finish (G_IO_STREAM (fixture->connection), wait.result,
                                            &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_true (g_io_stream_is_closed (G_IO_STREAM (fixture->connection)));
  assert_closed_by_cancelled_close (fixture, &other, thread);
}

/* The same for a blocking close of the output stream, cancelled before it
 * starts: only that side closes, and the base stream is closed for it. */
static void
test_close_output_cancelled_while_waiting (Fixture      *fixture,
                                           gconstpointer data)
{
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GCancellable) close_cancellable = g_cancellable_new ();
  OtherThreadHandshake other = { fixture, cancellable };
  GOutputStream *base_output;
  GOutputStream *output;
  g_autoptr(GError) error = NULL;
  GThread *thread;

  fixture_connect_with (fixture, "host.test", "leaf1.pem");
  output = fixture_output (fixture);
  thread = start_other_thread_handshake (&other);

  g_cancellable_cancel (close_cancellable);
  g_assert_false (g_output_stream_close (output, close_cancellable, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);
  g_assert_cmpint (g_output_stream_write (output, "x", 1, NULL, &error), ==, -1);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CLOSED);

  g_cancellable_cancel (cancellable);
  g_thread_join (thread);
  g_assert_nonnull (other.error);
  g_clear_error (&other.error);
  base_output = g_io_stream_get_output_stream (G_IO_STREAM (fixture->tcp));
  g_assert_true (g_output_stream_is_closed (base_output));
  close_connection (fixture);
}

/* A blocking close of the whole connection waiting for that handshake,
 * cancelled before it starts. */
static void
test_close_cancelled_while_waiting (Fixture      *fixture,
                                    gconstpointer data)
{
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GCancellable) close_cancellable = g_cancellable_new ();
  OtherThreadHandshake other = { fixture, cancellable };
  g_autoptr(GError) error = NULL;
  GThread *thread;

  fixture_connect_with (fixture, "host.test", "leaf1.pem");
  thread = start_other_thread_handshake (&other);

  g_cancellable_cancel (close_cancellable);
  g_assert_false (g_io_stream_close (G_IO_STREAM (fixture->connection), close_cancellable,
                                     &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  assert_closed_by_cancelled_close (fixture, &other, thread);
}

/* Fills the kernel's buffers between @output and a server that does not
 * read: writes until a write would block, with a small send buffer so
 * that it is quick. Returns how many bytes went. */
static gsize
fill_until_blocked (GSocketConnection     *tcp,
                    GPollableOutputStream *output)
{
  GSocket *socket = g_socket_connection_get_socket (tcp);
  g_autoptr(GError) error = NULL;
  char chunk[4096] = { 0 };
  gsize total = 0;
  gssize n;

  g_assert_true (g_socket_set_option (socket, SOL_SOCKET, SO_SNDBUF, 4096, &error));
  while ((n = g_pollable_output_stream_write_nonblocking (output, chunk, sizeof chunk,
                                                          NULL, &error)) > 0)
    total += n;
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK);

  return total;
}

static GPollableOutputStream *
fixture_pollable_output (Fixture *fixture)
{
  return G_POLLABLE_OUTPUT_STREAM (fixture_output (fixture));
}

/* An asynchronous handshake whose ClientHello finds the socket full waits
 * for it to drain, and completes once the server reads again. */
static void
test_handshake_async_waits_writable (Fixture      *fixture,
                                     gconstpointer data)
{
  GPollableOutputStream *base_output;
  g_auto(AsyncWait) wait = { NULL };
  g_autoptr(GError) error = NULL;
  gsize filled;

  fixture_connect_with (fixture, "host.test", "leaf1.pem");
  base_output = G_POLLABLE_OUTPUT_STREAM (g_io_stream_get_output_stream (G_IO_STREAM (fixture->tcp)));
  filled = fill_until_blocked (fixture->tcp, base_output);

  g_tls_connection_handshake_async (G_TLS_CONNECTION (fixture->connection), G_PRIORITY_DEFAULT,
                                    NULL, async_wait_cb, &wait);
  while (g_main_context_iteration (NULL, FALSE))
    ;
  g_assert_false (wait.done);
  g_assert_false (test_server_got_client_hello (fixture->server));

  test_server_resume (fixture->server, filled);
  iterate_until (&wait.done);
  g_assert_true (g_tls_connection_handshake_finish (G_TLS_CONNECTION (fixture->connection),
                                                    wait.result, &error));
  g_assert_no_error (error);
  close_connection (fixture);
  test_server_wait (fixture->server);
  g_assert_cmpint (test_server_get_handshake_result (fixture->server), ==, 0);
  g_assert_true (test_server_got_close_notify (fixture->server));
}

/* Starts an asynchronous close after filling the socket, so that its
 * close_notify would block; returns how many bytes were written first. */
static gsize
start_blocked_close (Fixture      *fixture,
                     GCancellable *cancellable,
                     AsyncWait    *wait)
{
  g_autoptr(GError) error = NULL;
  gsize filled;

  fixture_connect_with (fixture, "host.test", "leaf1.pem");
  g_assert_true (fixture_handshake (fixture, &error));
  g_assert_no_error (error);
  filled = fill_until_blocked (fixture->tcp, fixture_pollable_output (fixture));

  g_io_stream_close_async (G_IO_STREAM (fixture->connection), G_PRIORITY_DEFAULT,
                           cancellable, async_wait_cb, wait);
  while (g_main_context_iteration (NULL, FALSE))
    ;
  g_assert_false (wait->done);
  g_assert_false (g_io_stream_is_closed (G_IO_STREAM (fixture->tcp)));

  return filled;
}

/* An output source on a connection whose socket is full waits for the
 * socket, and fires once the server reads again. */
static void
test_source_waits_writable (Fixture      *fixture,
                            gconstpointer data)
{
  GPollableOutputStream *output;
  g_autoptr(GSource) source = NULL;
  g_autoptr(GError) error = NULL;
  gboolean fired = FALSE;

  fixture_connect_with (fixture, "host.test", "leaf1.pem");
  g_assert_true (fixture_handshake (fixture, &error));
  g_assert_no_error (error);
  output = fixture_pollable_output (fixture);
  fill_until_blocked (fixture->tcp, output);

  source = g_pollable_output_stream_create_source (output, NULL);
  g_source_set_callback (source, G_SOURCE_FUNC (writable_after_handshake_cb), &fired, NULL);
  g_source_attach (source, NULL);
  while (g_main_context_iteration (NULL, FALSE))
    ;
  g_assert_false (fired);
  g_assert_false (g_pollable_output_stream_is_writable (output));

  test_server_resume (fixture->server, 0);
  iterate_until (&fired);
  g_source_destroy (source);
}

/* While the output stream's asynchronous close waits for the socket to
 * take close_notify, a non-blocking read would block: the close runs
 * alone. Once it is done, the input side works again. */
static void
test_read_nonblocking_during_close (Fixture      *fixture,
                                    gconstpointer data)
{
  GPollableInputStream *input;
  g_auto(AsyncWait) wait = { NULL };
  g_autoptr(GError) error = NULL;
  char byte;

  fixture_connect_with (fixture, "host.test", "leaf1.pem");
  g_assert_true (fixture_handshake (fixture, &error));
  g_assert_no_error (error);
  fill_until_blocked (fixture->tcp, fixture_pollable_output (fixture));
  g_output_stream_close_async (fixture_output (fixture), G_PRIORITY_DEFAULT, NULL,
                               async_wait_cb, &wait);
  while (g_main_context_iteration (NULL, FALSE))
    ;
  g_assert_false (wait.done);

  input = G_POLLABLE_INPUT_STREAM (fixture_input (fixture));
  g_assert_cmpint (g_pollable_input_stream_read_nonblocking (input, &byte, 1, NULL, &error),
                   ==, -1);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK);
  g_clear_error (&error);

  test_server_resume (fixture->server, 0);
  iterate_until (&wait.done);
  g_assert_true (g_output_stream_close_finish (fixture_output (fixture), wait.result,
                                               &error));
  g_assert_no_error (error);
  g_assert_false (g_input_stream_is_closed (fixture_input (fixture)));
}

/* An asynchronous close whose close_notify would block waits for the
 * socket to drain, then sends it after everything written before. */
static void
test_close_async_waits_writable (Fixture      *fixture,
                                 gconstpointer data)
{
  g_auto(AsyncWait) wait = { NULL };
  g_autoptr(GError) error = NULL;
  gsize filled;

  filled = start_blocked_close (fixture, NULL, &wait);
  test_server_resume (fixture->server, 0);
  iterate_until (&wait.done);
  g_assert_true (g_io_stream_close_finish (G_IO_STREAM (fixture->connection), wait.result,
                                           &error));
  g_assert_no_error (error);
  g_assert_true (g_io_stream_is_closed (G_IO_STREAM (fixture->tcp)));

  test_server_wait (fixture->server);
  g_assert_true (test_server_got_close_notify (fixture->server));
  /* GnuTLS keeps the record of the write that would have blocked, and
   * sends it before close_notify: one chunk more may arrive. */
  g_assert_cmpuint (test_server_get_received_total (fixture->server), >=, filled);
  g_assert_cmpuint (test_server_get_received_total (fixture->server), <=, filled + 4096);
}

/* Cancelled while its close_notify waits for the socket, an asynchronous
 * close gives close_notify up but closes the base stream. */
static void
test_close_async_cancelled_while_blocked (Fixture      *fixture,
                                          gconstpointer data)
{
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_auto(AsyncWait) wait = { NULL };
  g_autoptr(GError) error = NULL;

  start_blocked_close (fixture, cancellable, &wait);
  g_cancellable_cancel (cancellable);
  iterate_until (&wait.done);
  g_assert_false (g_io_stream_close_finish (G_IO_STREAM (fixture->connection), wait.result,
                                            &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_true (g_io_stream_is_closed (G_IO_STREAM (fixture->tcp)));

  test_server_resume (fixture->server, 0);
  test_server_wait (fixture->server);
  g_assert_false (test_server_got_close_notify (fixture->server));
  assert_operations_fail (fixture, take_closed, FALSE);
}

/* A server that resets the connection while close_notify waits for the
 * socket: the close reports close_notify's failure, and the base stream
 * is closed all the same. */
static void
test_close_async_peer_reset (Fixture      *fixture,
                             gconstpointer data)
{
  g_auto(AsyncWait) wait = { NULL };
  g_autoptr(GError) error = NULL;

  start_blocked_close (fixture, NULL, &wait);
  test_server_reset (fixture->server);
  iterate_until (&wait.done);
  g_assert_false (g_io_stream_close_finish (G_IO_STREAM (fixture->connection), wait.result,
                                            &error));
  g_assert_true (error->domain == G_IO_ERROR);
  g_assert_true (g_io_stream_is_closed (G_IO_STREAM (fixture->tcp)));
  test_server_wait (fixture->server);
}

/* An asynchronous handshake asked for while a close is under way fails
 * as busy; the close goes on. */
static void
test_handshake_async_during_close (Fixture      *fixture,
                                   gconstpointer data)
{
  g_auto(AsyncWait) close_wait = { NULL };
  g_auto(AsyncWait) wait = { NULL };
  g_autoptr(GError) error = NULL;

  fixture_connect_with (fixture, "host.test", "leaf1.pem");
  g_io_stream_close_async (G_IO_STREAM (fixture->connection), G_PRIORITY_DEFAULT, NULL,
                           async_wait_cb, &close_wait);
  g_tls_connection_handshake_async (G_TLS_CONNECTION (fixture->connection), G_PRIORITY_DEFAULT,
                                    NULL, async_wait_cb, &wait);
  iterate_until (&wait.done);
  g_assert_false (g_tls_connection_handshake_finish (G_TLS_CONNECTION (fixture->connection),
                                                     wait.result, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_BUSY);

  iterate_until (&close_wait.done);
  g_assert_true (g_io_stream_close_finish (G_IO_STREAM (fixture->connection),
                                           close_wait.result, NULL));
  g_assert_true (g_io_stream_is_closed (G_IO_STREAM (fixture->tcp)));
}

/* A connection made for @identity with resumption on. */
static PinTlsClientConnection *
connect_resuming_as (Fixture            *fixture,
                     GSocketConnectable *identity,
                     PinTlsPinSet       *pins)
{
  g_autoptr(GSocketConnection) tcp = connect_tcp (fixture);
  g_autoptr(GError) error = NULL;
  PinTlsClientConnection *connection;

  connection = pin_tls_client_connection_new (G_IO_STREAM (tcp), identity, pins, &error);
  g_assert_no_error (error);
  pin_tls_client_connection_set_session_resumption_enabled (connection, TRUE);

  return connection;
}

static void
round_as (Fixture            *fixture,
          GSocketConnectable *identity,
          PinTlsMode          mode,
          Round              *round)
{
  g_autoptr(PinTlsPinSet) pins = test_pins_for ("leaf1.pem", NULL);
  g_autoptr(PinTlsClientConnection) connection = NULL;

  connection = connect_resuming_as (fixture, identity, pins);
  pin_tls_client_connection_set_mode (connection, mode);
  run_round (connection, round);
  g_clear_object (&connection);
  test_server_wait (fixture->server);
}

/* Sessions are filed under the server's name and port whatever kind of
 * identity names them: an IP address and port given as a socket address
 * resume the session of the same given as a network address. A service
 * name has no port (0). The system's authorities are part of the key. */
static void
test_resumption_identity_kinds (Fixture      *fixture,
                                gconstpointer data)
{
  guint16 port = test_server_get_port (fixture->server);
  g_autoptr(GSocketConnectable) address = g_network_address_new ("127.0.0.1", port);
  g_autoptr(GSocketConnectable) socket_address = NULL;
  g_autoptr(GSocketConnectable) service = g_network_service_new ("pintls", "tcp",
                                                                 "host.test");
  g_autoptr(GSocketConnectable) name = g_network_address_new ("host.test", port);
  g_autofree char *expected_prefix = g_strdup_printf ("127.0.0.1:%u/", port);
  g_auto(Round) first = { NULL };
  g_auto(Round) resumed = { NULL };
  g_auto(Round) by_service = { NULL };
  g_auto(Round) pins_only = { NULL };
  g_auto(Round) system_authorities = { NULL };

  socket_address = G_SOCKET_CONNECTABLE (g_inet_socket_address_new_from_string ("127.0.0.1",
                                                                                port));
  round_as (fixture, address, PIN_TLS_MODE_PIN_ONLY, &first);
  assert_round_ok (&first, FALSE);
  g_assert_true (g_str_has_prefix (first.session_key, expected_prefix));

  round_as (fixture, socket_address, PIN_TLS_MODE_PIN_ONLY, &resumed);
  assert_round_ok (&resumed, TRUE);
  g_assert_cmpstr (resumed.session_key, ==, first.session_key);
  g_assert_true (test_server_was_resumed (fixture->server));

  round_as (fixture, service, PIN_TLS_MODE_PIN_ONLY, &by_service);
  assert_round_ok (&by_service, FALSE);
  g_assert_true (g_str_has_prefix (by_service.session_key, "host.test:0/"));

  round_as (fixture, name, PIN_TLS_MODE_PIN_ONLY, &pins_only);
  assert_round_ok (&pins_only, FALSE);
  round_as (fixture, name, PIN_TLS_MODE_CA_AND_PINS, &system_authorities);
  g_assert_error (system_authorities.error, G_TLS_ERROR, G_TLS_ERROR_BAD_CERTIFICATE);
  g_assert_false (system_authorities.resumed);
  g_assert_cmpstr (system_authorities.session_key, !=, pins_only.session_key);
}

/* A GIO TLS connection of the default backend over one end of a socket
 * pair: a client connection of another implementation, never handshaken. */
static GIOStream *
foreign_connection (GSocketConnectable *identity)
{
  g_autoptr(GSocket) socket = NULL;
  g_autoptr(GSocketConnection) base = NULL;
  g_autoptr(GError) error = NULL;
  GIOStream *connection;
  int fds[2];

  g_assert_cmpint (socketpair (AF_UNIX, SOCK_STREAM, 0, fds), ==, 0);
  close (fds[1]);
  socket = g_socket_new_from_fd (fds[0], &error);
  g_assert_no_error (error);
  base = g_socket_connection_factory_create_connection (socket);
  connection = g_tls_client_connection_new (G_IO_STREAM (base), identity, &error);
  g_assert_no_error (error);

  return connection;
}

/* copy_session_state() from a connection with no session, or from a
 * connection of another TLS implementation, offers nothing: the handshake
 * is a full one, its pins checked. */
static void
test_resumption_copy_nothing (Fixture      *fixture,
                              gconstpointer data)
{
  g_autoptr(PinTlsPinSet) pins = test_pins_for ("leaf1.pem", NULL);
  g_autoptr(GSocketConnectable) identity = NULL;
  g_autoptr(PinTlsClientConnection) saver = NULL;
  g_autoptr(PinTlsClientConnection) unused = NULL;
  g_autoptr(PinTlsClientConnection) copy = NULL;
  g_autoptr(GIOStream) foreign = NULL;
  g_autoptr(GBytes) cached = NULL;
  g_auto(Round) saved = { NULL };
  g_auto(Round) copied = { NULL };

  identity = g_network_address_new ("127.0.0.1", test_server_get_port (fixture->server));
  saver = connect_resuming_as (fixture, identity, pins);
  run_round (saver, &saved);
  assert_round_ok (&saved, FALSE);
  test_server_wait (fixture->server);
  cached = _pin_tls_session_cache_take (saved.session_key);
  g_assert_nonnull (cached);

  /* Never set up, so it never touches the server. */
  unused = g_object_new (PIN_TLS_TYPE_CLIENT_CONNECTION, "pins", pins,
                         "server-identity", identity, NULL);
  copy = connect_resuming_as (fixture, identity, pins);
  g_tls_client_connection_copy_session_state (G_TLS_CLIENT_CONNECTION (copy),
                                              G_TLS_CLIENT_CONNECTION (unused));
  if (g_tls_backend_supports_tls (g_tls_backend_get_default ()))
    {
      foreign = foreign_connection (identity);
      g_tls_client_connection_copy_session_state (G_TLS_CLIENT_CONNECTION (copy),
                                                  G_TLS_CLIENT_CONNECTION (foreign));
    }
  run_round (copy, &copied);
  assert_round_ok (&copied, FALSE);
  g_assert_cmpstr (copied.session_key, ==, saved.session_key);
  g_clear_object (&copy);
  test_server_wait (fixture->server);
  g_assert_false (test_server_was_resumed (fixture->server));
}

/* Lines of text, @size bytes in all; never freed. */
static char *
long_text (gsize size)
{
  GString *text = g_string_sized_new (size);

  while (text->len < size)
    g_string_append_printf (text, "line %" G_GSIZE_FORMAT "\n", text->len);
  g_string_truncate (text, size);

  return g_string_free (text, FALSE);
}

int
main (int   argc,
      char *argv[])
{
  /* Loopback tests follow no desktop proxy or settings. */
  g_setenv ("GIO_USE_PROXY_RESOLVER", "dummy", TRUE);
  g_setenv ("GSETTINGS_BACKEND", "memory", TRUE);
  g_test_init (&argc, &argv, NULL);
  long_greeting_server.greeting = long_text (100 * 1024);

  add_test ("handshake-sync", &leaf1_server, test_handshake_sync);
  add_test ("presented-pins-leaf-match", &leaf1_server, test_presented_pins_leaf_match);
  add_test ("read/waiting-records", &leaf1_server, test_read_waiting_records);
  add_test ("read/waiting-records-async", &leaf1_server, test_read_waiting_records_async);
  add_test ("properties/all", &leaf1_server, test_properties_all);
  add_test ("properties/round-trip", &leaf1_server, test_properties_round_trip);
  add_test ("properties/database", &leaf1_server, test_properties_database);
  add_test ("sni/set-late", &leaf1_server, test_server_identity_late);
  add_test ("notify-changes", &leaf1_server, test_notify_changes);
  add_test ("accepted-cas", &client_certificate_server, test_accepted_cas);
  add_test ("alpn/negotiated", &alpn_server, test_alpn);
  add_test ("alpn/server-has-none", &leaf1_server, test_alpn_absent);
  add_test ("alpn/client-offers-none", &alpn_server, test_alpn_absent);
  add_test ("channel-binding/values", &leaf1_server, test_channel_binding);
  add_test ("channel-binding/no-extended-master-secret", &no_ems_server,
            test_channel_binding_no_ems);
  add_test ("echo", &leaf1_server, test_echo);
  add_test ("data-input-stream-async", &leaf1_server, test_data_input_stream_async);
  add_test ("splice", &long_greeting_server, test_splice);
  add_test ("renegotiation-refused", &renegotiating_server, test_renegotiation_refused);

  add_test ("mismatch", &leaf2_server, test_mismatch);
  add_test ("mismatch/unread-data/close", &early_greeting_server,
            test_mismatch_unread_data_close);
  add_test ("mismatch/unread-data/close-async", &early_greeting_server,
            test_mismatch_unread_data_close_async);
  add_test ("mismatch/unread-data/unref", &early_greeting_server,
            test_mismatch_unread_data_unref);
  add_test ("implicit-handshake/mismatch", &leaf2_server, test_implicit_handshake_mismatch);
  add_test ("implicit-handshake/match", &leaf1_server, test_implicit_handshake);
  add_test ("accept-certificate/pin-only", &leaf2_server, test_accept_certificate_pin_only);
  add_test ("accept-certificate/cannot-override", &leaf2_server,
            test_accept_certificate_cannot_override);
  add_test ("validation-flags-cannot-mask", &leaf2_server, test_validation_flags_cannot_mask);
  add_test ("rotation", &leaf2_server, test_rotation);
  add_test ("pin-only/self-signed", &self_server, test_pin_only_self_signed);
  add_test ("not-tls", &http_server, test_not_tls);
  add_test ("timeout/handshake", &silent_server, test_base_timeout);
  add_test ("timeout/async-handshake", &silent_server, test_base_timeout_async);
  add_test ("timeout/read", &leaf1_server, test_read_timeout);

  add_test ("ca-and-pins/trusted", &leaf1_server, test_ca_and_pins_trusted);
  add_test ("ca-and-pins/wrong-identity", &leaf1_server, test_ca_and_pins_wrong_identity);
  add_test ("ca-and-pins/wrong-identity-accepted", &leaf1_server,
            test_ca_and_pins_wrong_identity_accepted);
  add_test ("ca-and-pins/system-database", &leaf1_server, test_ca_and_pins_system_database);
  add_test ("ca-and-pins/self-signed", &self_server, test_ca_and_pins_self_signed);

  add_test ("sni/normalized", &leaf1_server, test_sni_normalized);
  add_test ("sni/ip-address", &leaf1_server, test_sni_ip_address);

  add_test ("close-notify/required", &no_close_notify_server, test_close_notify_required);
  add_test ("peer-certificate/without-backend", &leaf1_server,
            test_peer_certificate_without_backend);
  add_test ("close-notify/required-after-data", &no_close_notify_server,
            test_close_notify_required_after_data);
  add_test ("close-notify/not-required", &no_close_notify_server,
            test_close_notify_not_required);
  add_test ("close/sends-close-notify", &leaf1_server, test_close_sends_close_notify);
  add_test ("close/async", &leaf1_server, test_close_async);
  add_test ("close/output-stream", &leaf1_server, test_close_output_stream);
  add_test ("close/streams-async", &leaf1_server, test_close_streams_async);
  add_test ("close/during-async-read", &leaf1_server, test_close_during_async_read);
  add_test ("close/async-cancelled", &leaf1_server, test_close_async_cancelled);
  add_test ("close/before-handshake", &leaf1_server, test_close_before_handshake);
  add_test ("close/during-async-handshake", &leaf1_server, test_close_during_async_handshake);
  add_test ("close/async-during-async-handshake", &leaf1_server,
            test_close_async_during_async_handshake);
  g_test_add_func ("/pintls/connection/non-pollable-base", test_non_pollable_base);
  add_test ("construct-without-init/match", &leaf1_server, test_construct_without_init_match);
  add_test ("construct-without-init/mismatch", &leaf2_server,
            test_construct_without_init_mismatch);
  add_test ("construct-without-init/no-pins", &leaf1_server, test_construct_no_pins);
  add_test ("construct-without-init/pins-and-policy", &leaf1_server,
            test_construct_pins_and_policy);
  add_test ("construct-without-init/no-base-stream", &leaf1_server,
            test_construct_no_base_stream);
  add_test ("construct-without-init/non-pollable-base", &leaf1_server,
            test_construct_non_pollable_base);
  add_test ("streams-outlive-connection", &leaf1_server, test_streams_outlive_connection);
  add_test ("pollable/during-handshake", &leaf1_server, test_pollable_during_handshake);

  add_test ("async/handshake", &leaf1_server, test_async_handshake);
  add_test ("async/handshake-mismatch", &leaf2_server, test_async_handshake_mismatch);
  add_test ("async/handshake-other-context", &leaf1_server, test_async_handshake_other_context);
  add_test ("async/handshake-reentrant", &leaf1_server, test_async_handshake_reentrant);
  add_test ("async/handshake-thread-waits", &leaf1_server, test_async_handshake_thread_waits);
  add_test ("async/handshake-cancelled", &silent_server, test_async_handshake_cancelled);
  add_test ("async/read-write", &leaf1_server, test_async_read_write);
  add_test ("async/read-then-blocking-write", &leaf1_server,
            test_async_read_then_blocking_write);
  add_test ("async/source-sees-buffered-data", &leaf1_server, test_source_sees_buffered_data);
  add_test ("async/blocking-read-in-handler", &leaf1_server,
            test_blocking_read_in_handler_async);
  add_test ("blocking-read-in-handler", &leaf1_server, test_blocking_read_in_handler_sync);

  add_test ("cancel/before-handshake", &leaf1_server, test_cancelled_handshake);
  add_test ("cancel/handshake-steps", &leaf1_server, test_cancel_handshake_steps);
  add_test ("cancel/read-steps", &leaf1_server, test_cancel_read_steps);
  add_test ("cancel/waiting-read", &leaf1_server, test_cancel_waiting_read);
  add_test ("cancel/blocked-read", &leaf1_server, test_cancel_blocked_read);
  add_test ("concurrent-read-write", &leaf1_server, test_concurrent_read_write);
  add_test ("concurrent-handshakes", &concurrent_server, test_concurrent_handshakes);
  add_test ("async-bulk-echo", &leaf1_server, test_async_bulk_echo);
  add_test ("concurrent-first-operations", &leaf1_server, test_concurrent_first_operations);

  add_test ("resumption/off-by-default", &tickets_and_ids_server,
            test_resumption_off_by_default);
  add_test ("resumption/tickets", &resuming_server, test_resumption_resumes);
  add_test ("resumption/session-id", &session_id_server, test_resumption_resumes);
  add_test ("resumption/pins-changed/tickets", &resuming_server, test_resumption_pins_changed);
  add_test ("resumption/pins-changed/session-id", &session_id_server,
            test_resumption_pins_changed);
  add_test ("resumption/separate-pin-sets", &resuming_server,
            test_resumption_separate_pin_sets);
  add_test ("resumption/separate-modes", &resuming_server, test_resumption_separate_modes);
  add_test ("resumption/copy-session-state", &resuming_server,
            test_resumption_copy_session_state);
  g_test_add_func ("/pintls/connection/resumption/cache/full", test_session_cache_full);
  g_test_add_func ("/pintls/connection/resumption/cache/expiry",
                   test_session_cache_expiry);
  g_test_add_data_func ("/pintls/connection/resumption/gnutls-serv/session-id",
                        gnutls_serv_session_ids, test_resumption_gnutls_serv);
  g_test_add_data_func ("/pintls/connection/resumption/gnutls-serv/tls13-tickets",
                        gnutls_serv_tls13_tickets, test_resumption_gnutls_serv);

  add_test ("connect/match", &leaf1_server, test_connect);
  add_test ("connect/mismatch", &leaf2_server, test_connect_mismatch);
  add_test ("connect/async", &leaf1_server, test_connect_async);
  add_test ("connect/async-mismatch", &leaf2_server, test_connect_async_mismatch);
  add_test ("connect/async-refused", &leaf1_server, test_connect_async_refused);
  add_test ("connect/async-bad-address", &leaf1_server, test_connect_async_bad_address);
  add_test ("connect/async-cancelled", &silent_server, test_connect_async_cancelled);
  add_test ("fetch-server-chain/chain", &leaf1_server, test_fetch_server_chain);
  add_test ("fetch-server-chain/cancelled", &silent_server, test_fetch_server_chain_cancelled);

  add_test ("setters-notify-changes-only", &leaf1_server, test_setters_notify_changes_only);
  add_test ("channel-binding/unknown-type", &leaf1_server, test_channel_binding_unknown_type);
  add_test ("alpn/name-too-long", &alpn_server, test_alpn_name_too_long);
  add_test ("validation-flags-mask-ca-error", &leaf1_server,
            test_validation_flags_mask_ca_error);
  add_test ("protocol-version/tls1.0", &tls10_server, test_protocol_version_tls10);
  add_test ("protocol-version/tls1.1", &tls11_server, test_protocol_version_tls11);
  add_test ("async/handshake-joined", &leaf1_server, test_async_handshake_joined);
  add_test ("async/source-closure", &leaf1_server, test_source_closure);
  add_test ("async/source-continues-over-buffered-data", &leaf1_server,
            test_source_continues_over_buffered_data);
  add_test ("nonblocking/during-other-thread-handshake", &leaf1_server,
            test_nonblocking_during_other_thread_handshake);
  add_test ("cancel/read-waiting-for-handshake", &silent_server,
            test_cancel_read_waiting_for_handshake);
  add_test ("close/in-handler", &leaf1_server, test_close_in_handler);
  add_test ("close/async-waits-for-handshake", &silent_server,
            test_close_async_waits_for_handshake);
  add_test ("close/async-cancelled-while-waiting", &silent_server,
            test_close_async_cancelled_while_waiting);
  add_test ("close/cancelled-while-waiting", &silent_server,
            test_close_cancelled_while_waiting);
  add_test ("source/waits-writable", &paused_server, test_source_waits_writable);
  add_test ("read/nonblocking-during-close", &paused_server,
            test_read_nonblocking_during_close);
  add_test ("close/async-waits-writable", &paused_server, test_close_async_waits_writable);
  add_test ("close/async-cancelled-while-blocked", &paused_server,
            test_close_async_cancelled_while_blocked);
  add_test ("close/async-peer-reset", &paused_server, test_close_async_peer_reset);
  add_test ("handshake/async-waits-writable", &paused_first_server,
            test_handshake_async_waits_writable);
  add_test ("handshake/async-during-close", &leaf1_server, test_handshake_async_during_close);
  add_test ("close/output-cancelled-while-waiting", &silent_server,
            test_close_output_cancelled_while_waiting);
  add_test ("resumption/identity-kinds", &resuming_server, test_resumption_identity_kinds);
  add_test ("resumption/copy-nothing", &resuming_server, test_resumption_copy_nothing);

  return g_test_run ();
}
