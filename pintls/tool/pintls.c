/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* pintls: the library on the command line. `pintls pins` prints the pins of
 * certificate files or of the certificates a server presents, `pintls lint`
 * checks a pin policy file for the mistakes that break clients later, and
 * `pintls connect` makes a pinned connection and copies standard input and
 * output through it, much as gnutls-cli does. */

#include <pintls/pintls.h>

#include <gio/gunixinputstream.h>
#include <gio/gunixoutputstream.h>
#include <gnutls/x509.h>
#include <locale.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_PORT 443

/* The exit statuses, as --help documents them. */
typedef enum
{
  STATUS_OK = 0,
  STATUS_FAILED = 1,
  STATUS_USAGE = 2,
  STATUS_PIN_MISMATCH = 3,
  STATUS_UNTRUSTED = 4,
} ExitStatus;

static const char exit_status_help[] =
  "Exit status:\n"
  "  0  success\n"
  "  1  a network failure, or a TLS failure not listed below\n"
  "  2  a usage or configuration error: bad arguments, a bad pin, no pins,\n"
  "     an unreadable file, an invalid policy, a server the policy has no\n"
  "     entry for, a bad server name; with lint --strict, any finding\n"
  "  3  pin mismatch: the server presented none of the pins (or none, and\n"
  "     they have expired); this client is outdated and an update is required\n"
  "  4  the server's certificate was refused for a reason other than pins:\n"
  "     it is not trusted (with --ca-file or --system-ca), it does not name\n"
  "     the server (with those options, or when only an issuer's pin\n"
  "     matched), or there is none";

typedef struct _Command Command;
struct _Command
{
  const char *name;
  const char *parameters;
  const char *summary;
  ExitStatus (*run) (const Command *command,
                     int            argc,
                     char         **argv);
};

/* Errors ---------------------------------------------------------------- */

static ExitStatus
status_for_error (const GError *error)
{
  if (g_error_matches (error, PIN_TLS_ERROR, PIN_TLS_ERROR_PIN_MISMATCH)
      || g_error_matches (error, PIN_TLS_ERROR, PIN_TLS_ERROR_PINS_EXPIRED))
    return STATUS_PIN_MISMATCH;

  if (error->domain == PIN_TLS_ERROR || error->domain == G_OPTION_ERROR
      || error->domain == G_FILE_ERROR
      || g_error_matches (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT))
    return STATUS_USAGE;

  if (g_error_matches (error, G_TLS_ERROR, G_TLS_ERROR_BAD_CERTIFICATE))
    return STATUS_UNTRUSTED;

  return STATUS_FAILED;
}

/* Prints @error as one line on stderr and returns @status. */
static ExitStatus
report_error_as (const GError *error,
                 ExitStatus    status)
{
  g_autofree char *message = g_strdelimit (g_strdup (error->message), "\r\n", ' ');

  if (status == STATUS_PIN_MISMATCH)
    g_printerr ("pintls: this client is outdated and must be updated: %s\n", message);
  else
    g_printerr ("pintls: %s\n", message);

  return status;
}

static ExitStatus
report_error (const GError *error)
{
  return report_error_as (error, status_for_error (error));
}

static ExitStatus report_usage (const char *format,
                                ...) G_GNUC_PRINTF (1, 2);

static ExitStatus
report_usage (const char *format,
              ...)
{
  g_autofree char *message = NULL;
  va_list args;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);

  g_printerr ("pintls: %s (see “pintls --help”)\n", message);

  return STATUS_USAGE;
}

static gboolean
parse_command_options (const Command *command,
                       GOptionEntry  *entries,
                       int           *argc,
                       char        ***argv,
                       GError       **error)
{
  g_autoptr(GOptionContext) context = NULL;
  g_autofree char *parameters = NULL;

  parameters = g_strdup_printf ("%s %s", command->name, command->parameters);
  context = g_option_context_new (parameters);
  g_option_context_set_summary (context, command->summary);
  g_option_context_set_description (context, exit_status_help);
  g_option_context_add_main_entries (context, entries, NULL);

  return g_option_context_parse (context, argc, argv, error);
}

/* Certificates ---------------------------------------------------------- */

/* Reads a PEM file of one or more certificates, or one DER certificate. */
static GPtrArray *
load_certificates (const char *path,
                   GError    **error)
{
  g_autofree char *contents = NULL;
  gnutls_x509_crt_t *certificates = NULL;
  unsigned int n_certificates = 0;
  gnutls_x509_crt_fmt_t format;
  gnutls_datum_t data;
  GPtrArray *der_list;
  gsize length;
  unsigned int i;
  int ret;

  if (!g_file_get_contents (path, &contents, &length, error))
    return NULL;

  data.data = (unsigned char *) contents;
  data.size = length;
  format = strstr (contents, "-----BEGIN ") ? GNUTLS_X509_FMT_PEM : GNUTLS_X509_FMT_DER;
  ret = gnutls_x509_crt_list_import2 (&certificates, &n_certificates, &data, format, 0);
  if (ret < 0)
    {
      g_set_error (error, PIN_TLS_ERROR, PIN_TLS_ERROR_INVALID_FILE,
                   "“%s” holds no certificate: %s", path, gnutls_strerror (ret));
      return NULL;
    }

  der_list = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
  for (i = 0; i < n_certificates; i++)
    {
      gnutls_datum_t der = { NULL, 0 };

      if (gnutls_x509_crt_export2 (certificates[i], GNUTLS_X509_FMT_DER, &der) == 0)
        g_ptr_array_add (der_list, g_bytes_new (der.data, der.size));
      gnutls_free (der.data);
      gnutls_x509_crt_deinit (certificates[i]);
    }
  gnutls_free (certificates);

  return der_list;
}

/* Whether @c could change how the text around it shows on a terminal:
 * control characters, and the invisible ones that reorder text (bidi
 * overrides), hide in it or break its lines. */
static gboolean
is_unsafe_to_show (gunichar c)
{
  switch (g_unichar_type (c))
    {
    case G_UNICODE_CONTROL:
    case G_UNICODE_FORMAT:
    case G_UNICODE_LINE_SEPARATOR:
    case G_UNICODE_PARAGRAPH_SEPARATOR:
      return TRUE;
    default:
      return FALSE;
    }
}

/* A subject name may come from a server: characters unsafe to show are
 * escaped so that it cannot play tricks on a terminal. */
static char *
printable_text (const char *text)
{
  g_autofree char *valid = g_utf8_make_valid (text, -1);
  GString *printable = g_string_new (NULL);
  const char *p;

  for (p = valid; *p != '\0'; p = g_utf8_next_char (p))
    {
      gunichar c = g_utf8_get_char (p);

      if (is_unsafe_to_show (c) && c < 0x100)
        g_string_append_printf (printable, "\\x%02x", c);
      else if (is_unsafe_to_show (c))
        g_string_append_printf (printable, "\\u%04x", c);
      else
        g_string_append_unichar (printable, c);
    }

  return g_string_free (printable, FALSE);
}

static char *
describe_subject (GBytes *der)
{
  gnutls_x509_crt_t certificate;
  gnutls_datum_t data;
  gnutls_datum_t dn = { NULL, 0 };
  char *subject = NULL;
  gsize size;

  data.data = (unsigned char *) g_bytes_get_data (der, &size);
  data.size = size;

  gnutls_x509_crt_init (&certificate);
  if (gnutls_x509_crt_import (certificate, &data, GNUTLS_X509_FMT_DER) == 0
      && gnutls_x509_crt_get_dn3 (certificate, &dn, 0) == 0 && dn.size > 0)
    subject = printable_text ((const char *) dn.data);
  gnutls_free (dn.data);
  gnutls_x509_crt_deinit (certificate);

  return subject != NULL ? subject : g_strdup ("(no subject name)");
}

/* `pintls pins` --------------------------------------------------------- */

static gboolean
print_file_pins (const char *path,
                 gboolean    show_path,
                 GError    **error)
{
  g_autoptr(GPtrArray) certificates = load_certificates (path, error);
  guint i;

  if (certificates == NULL)
    return FALSE;

  for (i = 0; i < certificates->len; i++)
    {
      g_autofree char *pin = NULL;
      g_autofree char *subject = NULL;

      pin = pin_tls_spki_pin_for_der (certificates->pdata[i], error);
      if (pin == NULL)
        return FALSE;

      subject = describe_subject (certificates->pdata[i]);
      g_print ("%s%s%s  %s\n", show_path ? path : "", show_path ? ": " : "",
               pin, subject);
    }

  return TRUE;
}

static gboolean
path_contains (const guint *path,
               guint        path_length,
               guint        index)
{
  guint i;

  for (i = 0; i < path_length; i++)
    {
      if (path[i] == index)
        return TRUE;
    }

  return FALSE;
}

/* Prints a policy file entry for @name, pinning the certificates of the
 * issuer path, ready to paste into a policy. */
static ExitStatus
print_policy_entry (const char  *server,
                    const char  *name,
                    GPtrArray   *chain,
                    const guint *path,
                    guint        path_length)
{
  g_autoptr(GString) pins = g_string_new (NULL);
  g_autoptr(GDateTime) now = g_date_time_new_now_utc ();
  g_autofree char *date = g_date_time_format (now, "%Y-%m-%d");
  g_autoptr(GError) error = NULL;
  guint i;

  g_print ("# What %s presented on %s. Anyone on the network path could have\n"
           "# answered: check these pins out of band before you rely on them.\n",
           server, date);
  g_print ("[%s]\n", name);
  for (i = 0; i < path_length; i++)
    {
      g_autofree char *pin = pin_tls_spki_pin_for_der (chain->pdata[path[i]], &error);
      g_autofree char *subject = describe_subject (chain->pdata[path[i]]);

      if (pin == NULL)
        return report_error (error);

      g_print ("# %s: %s\n", i == 0 ? "the server's own key" : "an issuer on the path",
               subject);
      g_string_append_printf (pins, "%s%s", i > 0 ? ";" : "", pin);
    }
  g_print ("pins=%s\n", pins->str);
  g_print ("# Add a backup pin, for a key that is not deployed yet:\n"
           "#   certtool --generate-privkey --key-type=ecdsa --outfile next.key\n"
           "#   certtool --pubkey-info --load-privkey next.key  (prints pin-sha256:…)\n"
           "# ca-and-pins: the chain must also validate for the name; pin-only for\n"
           "# a server no certificate authority vouches for.\n"
           "mode=ca-and-pins\n");

  return STATUS_OK;
}

/* The entry for the host of @server, or @server_name, normalised. */
static ExitStatus
print_entry_for (const char  *server,
                 const char  *server_name,
                 GPtrArray   *chain,
                 const guint *path,
                 guint        path_length)
{
  g_autoptr(GSocketConnectable) address = NULL;
  g_autoptr(PinTlsPinSet) probe = NULL;
  g_autoptr(PinTlsPolicyEntry) entry = NULL;
  g_autoptr(GError) error = NULL;
  const char *pin_strings[2] = { NULL, NULL };
  g_autofree char *pin = NULL;
  const char *host = server_name;

  address = g_network_address_parse (server, DEFAULT_PORT, &error);
  if (address == NULL)
    return report_error (error);
  if (host == NULL)
    host = g_network_address_get_hostname (G_NETWORK_ADDRESS (address));

  /* The library normalises the name as a pattern, exactly as a policy file
   * reads it back. */
  pin = pin_tls_spki_pin_for_der (chain->pdata[0], &error);
  pin_strings[0] = pin;
  if (pin != NULL)
    probe = pin_tls_pin_set_new (pin_strings, &error);
  if (probe != NULL)
    entry = pin_tls_policy_entry_new (host, probe, &error);
  if (entry == NULL)
    return report_error (error);

  return print_policy_entry (server, pin_tls_policy_entry_get_pattern (entry), chain,
                             path, path_length);
}

static ExitStatus
print_server_pins (const char *server,
                   const char *server_name,
                   gboolean    policy_entry)
{
  g_autoptr(GPtrArray) chain = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree guint *path = NULL;
  guint path_length = 0;
  guint i;

  chain = pin_tls_fetch_server_chain (server, DEFAULT_PORT, server_name, NULL, &error);
  if (chain == NULL)
    return report_error (error);

  path = pin_tls_find_issuer_path ((GBytes **) chain->pdata, chain->len,
                                   &path_length, &error);
  if (path == NULL)
    return report_error (error);

  if (policy_entry)
    return print_entry_for (server, server_name, chain, path, path_length);

  for (i = 0; i < chain->len; i++)
    {
      g_autofree char *pin = pin_tls_spki_pin_for_der (chain->pdata[i], &error);
      g_autofree char *subject = describe_subject (chain->pdata[i]);

      if (pin == NULL)
        return report_error (error);

      g_print ("%u  %s  %s  [%s]\n", i, pin, subject,
               i == 0 ? "leaf, on the issuer path"
               : path_contains (path, path_length, i) ? "on the issuer path"
               : "NOT on the issuer path: sent, but can never satisfy a pin");
    }

  g_printerr ("pintls: warning: anyone on the network path to %s could have "
              "answered; check these pins out of band before you rely on them\n",
              server);

  return STATUS_OK;
}

static ExitStatus
run_pins (const Command *command,
          int            argc,
          char         **argv)
{
  g_autofree char *server = NULL;
  g_autofree char *server_name = NULL;
  gboolean policy_entry = FALSE;
  g_autoptr(GError) error = NULL;
  ExitStatus status = STATUS_OK;
  int i;
  GOptionEntry entries[] = {
    { "server", 0, 0, G_OPTION_ARG_STRING, &server,
      "Print the pins of the certificates a server presents", "HOST[:PORT]" },
    { "server-name", 0, 0, G_OPTION_ARG_STRING, &server_name,
      "The name to send as SNI with --server (default: HOST)", "NAME" },
    { "policy-entry", 0, 0, G_OPTION_ARG_NONE, &policy_entry,
      "With --server: print a pin policy entry for it, ready to paste", NULL },
    G_OPTION_ENTRY_NULL
  };

  if (!parse_command_options (command, entries, &argc, &argv, &error))
    return report_error (error);

  if (server != NULL && argc > 1)
    return report_usage ("give certificate files or --server, not both");
  if (server != NULL)
    return print_server_pins (server, server_name, policy_entry);
  if (server_name != NULL)
    return report_usage ("--server-name goes with --server");
  if (policy_entry)
    return report_usage ("--policy-entry goes with --server");
  if (argc < 2)
    return report_usage ("no certificate file given");

  for (i = 1; i < argc; i++)
    {
      if (!print_file_pins (argv[i], argc > 2, &error))
        {
          status = report_error (error);
          g_clear_error (&error);
        }
    }

  return status;
}

/* `pintls lint` --------------------------------------------------------- */

static ExitStatus
run_lint (const Command *command,
          int            argc,
          char         **argv)
{
  g_autofree char *server = NULL;
  g_autofree char *server_name = NULL;
  gboolean strict = FALSE;
  g_autoptr(GError) error = NULL;
  g_autoptr(PinTlsPolicy) policy = NULL;
  g_autoptr(GPtrArray) chain = NULL;
  g_autoptr(GSocketConnectable) address = NULL;
  g_auto(GStrv) findings = NULL;
  const char *host = NULL;
  guint i;
  GOptionEntry entries[] = {
    { "server", 0, 0, G_OPTION_ARG_STRING, &server,
      "Also compare the server's current chain with its entry", "HOST[:PORT]" },
    { "server-name", 0, 0, G_OPTION_ARG_STRING, &server_name,
      "The name to send as SNI with --server and to look up (default: HOST)", "NAME" },
    { "strict", 0, 0, G_OPTION_ARG_NONE, &strict,
      "Treat every warning as an error (exit status 2)", NULL },
    G_OPTION_ENTRY_NULL
  };

  if (!parse_command_options (command, entries, &argc, &argv, &error))
    return report_error (error);
  if (argc != 2)
    return report_usage ("give exactly one policy file to check");
  if (server_name != NULL && server == NULL)
    return report_usage ("--server-name goes with --server");

  policy = pin_tls_policy_new_from_file (argv[1], &error);
  if (policy == NULL)
    return report_error_as (error, STATUS_USAGE);

  if (server != NULL)
    {
      address = g_network_address_parse (server, DEFAULT_PORT, &error);
      if (address == NULL)
        return report_error (error);
      host = server_name ? server_name
                         : g_network_address_get_hostname (G_NETWORK_ADDRESS (address));
      chain = pin_tls_fetch_server_chain (server, DEFAULT_PORT, server_name, NULL, &error);
      if (chain == NULL)
        return report_error (error);
    }

  findings = pin_tls_policy_lint (policy, host, chain, NULL);
  for (i = 0; findings[i] != NULL; i++)
    g_print ("%s: %s: %s\n", argv[1], strict ? "error" : "warning", findings[i]);

  return strict && i > 0 ? STATUS_USAGE : STATUS_OK;
}

/* `pintls connect` ------------------------------------------------------ */

typedef struct
{
  char **pins;
  char **pin_files;
  char *ca_file;
  gboolean system_ca;
  char *server_name;
  char *proxy;
  char *policy;
  gboolean verbose;
} ConnectOptions;

static void
connect_options_clear (ConnectOptions *options)
{
  g_clear_pointer (&options->pins, g_strfreev);
  g_clear_pointer (&options->pin_files, g_strfreev);
  g_clear_pointer (&options->ca_file, g_free);
  g_clear_pointer (&options->server_name, g_free);
  g_clear_pointer (&options->proxy, g_free);
  g_clear_pointer (&options->policy, g_free);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (ConnectOptions, connect_options_clear)

/* Replaces *@set with its union with @more, which it takes. */
static void
add_pins (PinTlsPinSet **set,
          PinTlsPinSet  *more)
{
  PinTlsPinSet *both;

  if (*set == NULL)
    {
      *set = more;
      return;
    }

  both = pin_tls_pin_set_union (*set, more);
  g_object_unref (*set);
  g_object_unref (more);
  *set = both;
}

static PinTlsPinSet *
load_pins (const ConnectOptions *options,
           GError              **error)
{
  g_autoptr(PinTlsPinSet) set = NULL;
  guint i;

  if (options->pins != NULL)
    {
      set = pin_tls_pin_set_new ((const char *const *) options->pins, error);
      if (set == NULL)
        return NULL;
    }

  for (i = 0; options->pin_files != NULL && options->pin_files[i] != NULL; i++)
    {
      PinTlsPinSet *from_file = pin_tls_pin_set_new_from_file (options->pin_files[i],
                                                               error);

      if (from_file == NULL)
        return NULL;
      add_pins (&set, from_file);
    }

  if (set == NULL)
    g_set_error_literal (error, PIN_TLS_ERROR, PIN_TLS_ERROR_EMPTY_PIN_SET,
                         "No pins given: use --pin or --pin-file");

  return g_steal_pointer (&set);
}

/* A CA file that holds no certificate would make every server untrusted:
 * it is refused as the configuration error it is. */
static GTlsDatabase *
load_ca_file (const char *path,
              GError    **error)
{
  g_autofree char *absolute_path = g_canonicalize_filename (path, NULL);
  GList *certificates;

  certificates = g_tls_certificate_list_new_from_file (absolute_path, error);
  if (certificates == NULL)
    {
      if (error != NULL && *error == NULL)
        g_set_error (error, PIN_TLS_ERROR, PIN_TLS_ERROR_INVALID_FILE,
                     "“%s” holds no CA certificate", path);
      return NULL;
    }
  g_list_free_full (certificates, g_object_unref);

  /* GTlsFileDatabase wants an absolute path. */
  return g_tls_file_database_new (absolute_path, error);
}

/* A proxy URI GIO can use: an HTTP proxy (which CONNECT tunnels) or a
 * SOCKS one, with a host. */
static gboolean
check_proxy (const char *proxy,
             GError    **error)
{
  static const char *const schemes[] = {
    "http", "socks", "socks4", "socks4a", "socks5", NULL
  };
  g_autoptr(GUri) uri = g_uri_parse (proxy, G_URI_FLAGS_NONE, NULL);

  if (uri == NULL || g_uri_get_host (uri) == NULL || *g_uri_get_host (uri) == '\0'
      || !g_strv_contains (schemes, g_uri_get_scheme (uri)))
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                   "“%s” is not a proxy URI such as http://proxy.example:3128 "
                   "or socks5://127.0.0.1:1080", proxy);
      return FALSE;
    }

  return TRUE;
}

static GSocketConnection *
connect_tcp (GSocketConnectable *address,
             const char         *proxy,
             GError            **error)
{
  g_autoptr(GSocketClient) client = g_socket_client_new ();
  g_autoptr(GProxyResolver) resolver = NULL;
  GSocketConnection *connection;
  GSocket *socket;

  /* Through a proxy, the pins are checked on the tunnelled connection, as
   * on a direct one: the proxy only relays bytes. */
  if (proxy != NULL)
    {
      resolver = g_simple_proxy_resolver_new (proxy, NULL);
      g_socket_client_set_proxy_resolver (client, resolver);
    }

  connection = g_socket_client_connect (client, address, NULL, error);
  if (connection == NULL)
    return NULL;

  /* GnuTLS writes its last handshake flight in pieces: without this, Nagle's
   * algorithm holds the second piece back for a delayed acknowledgement. */
  socket = g_socket_connection_get_socket (connection);
  g_socket_set_option (socket, IPPROTO_TCP, TCP_NODELAY, TRUE, NULL);

  return connection;
}

/* Connects and completes the handshake: the pins, and the certificate
 * authorities if @database is set or @options ask for the system store; or
 * what @policy's entry for the server asks, with @database (or the system
 * store) for its certificate authorities. */
static PinTlsClientConnection *
open_connection (const char           *server,
                 const ConnectOptions *options,
                 PinTlsPinSet         *pins,
                 PinTlsPolicy         *policy,
                 GTlsDatabase         *database,
                 GError              **error)
{
  g_autoptr(GSocketConnectable) address = NULL;
  g_autoptr(GSocketConnectable) identity = NULL;
  g_autoptr(GSocketConnection) tcp = NULL;
  g_autoptr(PinTlsClientConnection) connection = NULL;
  guint16 port;

  address = g_network_address_parse (server, DEFAULT_PORT, error);
  if (address == NULL)
    return NULL;

  port = g_network_address_get_port (G_NETWORK_ADDRESS (address));
  identity = options->server_name != NULL
               ? g_network_address_new (options->server_name, port)
               : g_object_ref (address);

  tcp = connect_tcp (address, options->proxy, error);
  if (tcp == NULL)
    return NULL;

  if (policy != NULL)
    connection = pin_tls_client_connection_new_with_policy (G_IO_STREAM (tcp), identity,
                                                            policy, error);
  else
    connection = pin_tls_client_connection_new (G_IO_STREAM (tcp), identity, pins, error);
  if (connection == NULL)
    return NULL;

  if (policy == NULL && (database != NULL || options->system_ca))
    pin_tls_client_connection_set_mode (connection, PIN_TLS_MODE_CA_AND_PINS);
  if (database != NULL)
    g_tls_connection_set_database (G_TLS_CONNECTION (connection), database);

  if (!g_tls_connection_handshake (G_TLS_CONNECTION (connection), NULL, error))
    return NULL;

  return g_steal_pointer (&connection);
}

/* Standard input on its way to the server, in a thread of its own. */
typedef struct
{
  GIOStream *connection;
  GCancellable *cancellable;
} Upload;

/* Copies standard input to the server and, at its end, closes the
 * connection's output stream, which sends close_notify. Returns the error
 * that stopped it, or NULL. */
static gpointer
upload_stdin (gpointer data)
{
  Upload *upload = data;
  g_autoptr(GInputStream) input = g_unix_input_stream_new (STDIN_FILENO, FALSE);
  GOutputStream *output = g_io_stream_get_output_stream (upload->connection);
  GError *error = NULL;

  g_output_stream_splice (output, input, G_OUTPUT_STREAM_SPLICE_CLOSE_TARGET,
                          upload->cancellable, &error);

  return error;
}

/* Copies standard input to the server and the server to standard output,
 * until the server closes the connection. */
static ExitStatus
copy_streams (PinTlsClientConnection *connection)
{
  g_autoptr(GOutputStream) output = g_unix_output_stream_new (STDOUT_FILENO, FALSE);
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GError) download_error = NULL;
  g_autoptr(GError) upload_error = NULL;
  Upload upload = { G_IO_STREAM (connection), cancellable };
  GThread *uploader;

  uploader = g_thread_new ("pintls-upload", upload_stdin, &upload);
  g_output_stream_splice (output, g_io_stream_get_input_stream (upload.connection),
                          G_OUTPUT_STREAM_SPLICE_NONE, NULL, &download_error);

  /* The server is done: standard input no longer has anywhere to go. */
  g_cancellable_cancel (cancellable);
  upload_error = g_thread_join (uploader);
  g_io_stream_close (upload.connection, NULL, NULL);

  /* After this side's close_notify, a server may close the connection
   * without one of its own, as nginx does. What it sent is authentic, but
   * a cut at that point cannot be told from the server's own end. */
  if (upload_error == NULL
      && g_error_matches (download_error, G_TLS_ERROR, G_TLS_ERROR_EOF))
    g_clear_error (&download_error);

  if (download_error != NULL)
    return report_error (download_error);
  if (upload_error != NULL
      && !g_error_matches (upload_error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return report_error (upload_error);

  return STATUS_OK;
}

/* With --verbose: what the server presented, so that its pins can be
 * checked or copied even when the connection works. */
static void
print_presented_pins (PinTlsClientConnection *connection)
{
  g_auto(GStrv) pins = pin_tls_client_connection_get_presented_pins (connection);
  guint i;

  for (i = 0; pins != NULL && pins[i] != NULL; i++)
    g_printerr ("pintls: the server presented %s%s\n", pins[i],
                i == 0 ? " (its own key)" : "");
}

/* With --policy --verbose: what the policy decided. */
static void
print_report_cb (PinTlsPolicy *policy,
                 PinTlsReport *report,
                 gpointer      user_data)
{
  static const char *const verdicts[] = {
    "a pin matched", "no pin matched", "no pin matched, and the pins have expired",
    "the chain is not trusted",
  };
  PinTlsVerdict verdict = pin_tls_report_get_verdict (report);

  g_printerr ("pintls: policy entry [%s] for %s: %s%s%s\n",
              pin_tls_report_get_pattern (report), pin_tls_report_get_host (report),
              verdict < G_N_ELEMENTS (verdicts) ? verdicts[verdict] : "?",
              pin_tls_report_get_report_only (report) ? " (report only)" : "",
              pin_tls_report_get_refused (report) ? ", refused" : "");
}

static ExitStatus
run_connect (const Command *command,
             int            argc,
             char         **argv)
{
  g_auto(ConnectOptions) options = { NULL, };
  g_autoptr(PinTlsPinSet) pins = NULL;
  g_autoptr(PinTlsPolicy) policy = NULL;
  g_autoptr(GTlsDatabase) database = NULL;
  g_autoptr(PinTlsClientConnection) connection = NULL;
  g_autoptr(GError) error = NULL;
  GOptionEntry entries[] = {
    { "pin", 0, 0, G_OPTION_ARG_STRING_ARRAY, &options.pins,
      "A pin the server must match; repeat for several", "PIN" },
    { "pin-file", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &options.pin_files,
      "A file of pins, or of certificates to pin; repeatable", "FILE" },
    { "ca-file", 0, 0, G_OPTION_ARG_FILENAME, &options.ca_file,
      "Also require a chain to a CA in FILE, valid for the server name", "FILE" },
    { "system-ca", 0, 0, G_OPTION_ARG_NONE, &options.system_ca,
      "Also require a chain to a CA of the system store, valid for the server name",
      NULL },
    { "server-name", 0, 0, G_OPTION_ARG_STRING, &options.server_name,
      "The server's name: sent as SNI and checked with a CA (default: HOST)", "NAME" },
    { "policy", 0, 0, G_OPTION_ARG_FILENAME, &options.policy,
      "Use the entry of a pin policy file for the server, instead of --pin", "FILE" },
    { "proxy", 0, 0, G_OPTION_ARG_STRING, &options.proxy,
      "Connect through this HTTP (CONNECT) or SOCKS proxy", "URI" },
    { "verbose", 'v', 0, G_OPTION_ARG_NONE, &options.verbose,
      "Print the pins the server presented, and the policy's verdict", NULL },
    G_OPTION_ENTRY_NULL
  };

  if (!parse_command_options (command, entries, &argc, &argv, &error))
    return report_error (error);

  if (argc != 2)
    return report_usage ("give exactly one server to connect to");
  if (options.proxy != NULL && !check_proxy (options.proxy, &error))
    return report_error (error);
  if (options.ca_file != NULL && options.system_ca)
    return report_usage ("--ca-file and --system-ca cannot be combined");

  if (options.policy != NULL && (options.pins != NULL || options.pin_files != NULL))
    return report_usage ("--policy replaces --pin and --pin-file");
  if (options.policy != NULL && options.system_ca)
    return report_usage ("with --policy, each entry's mode says whether a CA is needed");

  if (options.policy != NULL)
    policy = pin_tls_policy_new_from_file (options.policy, &error);
  else
    pins = load_pins (&options, &error);
  if (pins == NULL && policy == NULL)
    return report_error (error);
  if (policy != NULL && options.verbose)
    g_signal_connect (policy, "report", G_CALLBACK (print_report_cb), NULL);

  if (options.ca_file != NULL)
    database = load_ca_file (options.ca_file, &error);
  if (error != NULL)
    return report_error_as (error, STATUS_USAGE);

  connection = open_connection (argv[1], &options, pins, policy, database, &error);
  if (connection == NULL)
    return report_error (error);
  if (options.verbose)
    print_presented_pins (connection);

  return copy_streams (connection);
}

/* main ------------------------------------------------------------------ */

static const Command commands[] = {
  { "pins", "FILE… | --server HOST[:PORT] [--policy-entry]",
    "Print the public-key pins of certificate files or of a server", run_pins },
  { "lint", "POLICY-FILE [--server HOST[:PORT]]",
    "Check a pin policy for mistakes that break clients later", run_lint },
  { "connect", "HOST[:PORT] --pin PIN… | --policy FILE",
    "Make a pinned TLS connection and copy standard input and output through it",
    run_connect },
};

static char *
describe_commands (void)
{
  GString *text = g_string_new ("Commands:\n");
  gsize i;

  for (i = 0; i < G_N_ELEMENTS (commands); i++)
    g_string_append_printf (text, "  %-9s %s\n", commands[i].name, commands[i].summary);
  g_string_append (text, "\nRun “pintls COMMAND --help” for its options.");

  return g_string_free (text, FALSE);
}

static const Command *
find_command (const char *name)
{
  gsize i;

  for (i = 0; i < G_N_ELEMENTS (commands); i++)
    {
      if (g_str_equal (commands[i].name, name))
        return &commands[i];
    }

  return NULL;
}

int
main (int    argc,
      char **argv)
{
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *summary = describe_commands ();
  const Command *command;

  setlocale (LC_ALL, "");

  /* Options after the command are the command's own. */
  context = g_option_context_new ("COMMAND [OPTION…]");
  g_option_context_set_summary (context, summary);
  g_option_context_set_description (context, exit_status_help);
  g_option_context_set_strict_posix (context, TRUE);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    return report_error (error);

  if (argc < 2)
    return report_usage ("no command given");

  command = find_command (argv[1]);
  if (command == NULL)
    return report_usage ("unknown command “%s”", argv[1]);

  return command->run (command, argc - 1, argv + 1);
}
