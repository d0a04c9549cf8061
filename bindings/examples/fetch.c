/* SPDX-License-Identifier: LGPL-2.1-or-later */

/*
 * pintls-example-fetch: fetches a page over a pinned TLS connection.
 *
 *   pintls-example-fetch HOST:PORT PIN [PIN...]
 *
 * Prints the body of the server's answer to "GET /". When the server
 * presents none of the pinned keys, this copy of the program is outdated:
 * it tells the user to update and exits with status 3. As with the pintls
 * tool, status 2 means bad arguments or pins and 1 any other failure.
 */

#include <stdio.h>
#include <string.h>

#include <pintls/pintls.h>

#define EXIT_USAGE           2
#define EXIT_UPDATE_REQUIRED 3

static GBytes *
fetch_page (PinTlsClientConnection *connection,
            const char             *host_and_port,
            GError                **error)
{
  GIOStream *stream = G_IO_STREAM (connection);
  g_autoptr(GOutputStream) page = g_memory_output_stream_new_resizable ();
  g_autofree char *request = NULL;

  request = g_strdup_printf ("GET / HTTP/1.0\r\nHost: %s\r\n\r\n", host_and_port);
  if (!g_output_stream_write_all (g_io_stream_get_output_stream (stream),
                                  request, strlen (request), NULL, NULL, error))
    return NULL;

  if (g_output_stream_splice (page, g_io_stream_get_input_stream (stream),
                              G_OUTPUT_STREAM_SPLICE_CLOSE_TARGET, NULL, error) < 0)
    return NULL;

  return g_memory_output_stream_steal_as_bytes (G_MEMORY_OUTPUT_STREAM (page));
}

/* Writes the body of an HTTP response to standard output. */
static gboolean
print_body (GBytes  *response,
            GError **error)
{
  gsize size;
  const char *data = g_bytes_get_data (response, &size);
  const char *body = g_strstr_len (data, size, "\r\n\r\n");

  if (body == NULL || !g_str_has_prefix (data, "HTTP/1.") || size < 12
      || memcmp (data + 8, " 200", 4) != 0)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                           "The server did not send the page");
      return FALSE;
    }

  body += 4;
  fwrite (body, 1, size - (gsize) (body - data), stdout);
  return TRUE;
}

int
main (int    argc,
      char **argv)
{
  g_autoptr(PinTlsPinSet) pins = NULL;
  g_autoptr(PinTlsClientConnection) connection = NULL;
  g_autoptr(GBytes) page = NULL;
  g_autoptr(GError) error = NULL;

  if (argc < 3)
    {
      g_printerr ("Usage: %s HOST:PORT PIN [PIN...]\n", argv[0]);
      return EXIT_USAGE;
    }

  /* argv ends with NULL, so the pins after the address form a string array. */
  pins = pin_tls_pin_set_new ((const char *const *) argv + 2, &error);
  if (pins == NULL)
    {
      g_printerr ("Bad pin configuration: %s\n", error->message);
      return EXIT_USAGE;
    }

  connection = pin_tls_connect (argv[1], 443, pins, NULL, &error);
  if (connection != NULL)
    page = fetch_page (connection, argv[1], &error);

  if (g_error_matches (error, PIN_TLS_ERROR, PIN_TLS_ERROR_PIN_MISMATCH))
    {
      g_printerr ("The server has a certificate this version does not know.\n"
                  "Update required: please install the latest version.\n"
                  "(%s)\n",
                  error->message);
      return EXIT_UPDATE_REQUIRED;
    }

  if (page == NULL || !print_body (page, &error))
    {
      g_printerr ("Could not fetch the page from %s: %s\n", argv[1], error->message);
      return EXIT_FAILURE;
    }

  return EXIT_SUCCESS;
}
