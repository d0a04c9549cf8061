/* SPDX-License-Identifier: LGPL-2.1-or-later */

/*
 * pintls-example-fetch-gtk: a GTK 4 window that shows a page fetched over a
 * pinned TLS connection.
 *
 *   pintls-example-fetch-gtk [--print-result] HOST:PORT PIN [PIN...]
 *
 * The fetch runs asynchronously from the GTK main loop: connect, handshake,
 * send "GET /", read the answer. When the server presents none of the
 * pinned keys the window shows "Update required" instead of the page.
 *
 * With --print-result the program prints what the window shows once a frame
 * of it has been drawn, then quits with status 0 (page shown), 3 (update
 * required) or 1 (other error), so a script can check it. Bad arguments or
 * pins give status 2, as they do for the pintls tool.
 */

#include <string.h>

#include <gtk/gtk.h>
#include <pintls/pintls.h>

#define EXIT_USAGE           2
#define EXIT_UPDATE_REQUIRED 3

#define FETCH_TYPE_WINDOW (fetch_window_get_type ())
G_DECLARE_FINAL_TYPE (FetchWindow, fetch_window, FETCH, WINDOW, GtkApplicationWindow)

struct _FetchWindow
{
  GtkApplicationWindow parent_instance;

  char *address;
  PinTlsPinSet *pins;
  gboolean print_result;
  GCancellable *cancellable;
  PinTlsClientConnection *connection;
  char *request;
  GOutputStream *response;

  GtkStack *stack;
  GtkLabel *page_label;
  GtkLabel *problem_heading;
  GtkLabel *problem_label;
};

G_DEFINE_FINAL_TYPE (FetchWindow, fetch_window, GTK_TYPE_APPLICATION_WINDOW)

/* Set when the fetch settles; main() returns it. */
static int exit_status = EXIT_FAILURE;

static gboolean
print_result_and_close (GtkWidget     *page,
                        GdkFrameClock *clock,
                        gpointer       user_data)
{
  FetchWindow *self = FETCH_WINDOW (user_data);

  if (gtk_stack_get_visible_child (self->stack) == GTK_WIDGET (self->page_label))
    g_print ("page: %s\n", gtk_label_get_text (self->page_label));
  else
    g_print ("%s: %s\n", gtk_label_get_text (self->problem_heading),
             gtk_label_get_text (self->problem_label));

  gtk_window_close (GTK_WINDOW (self));
  return G_SOURCE_REMOVE;
}

/* Cancelled when the window is closed: its widgets are gone then. */
static gboolean
fetch_window_is_closed (FetchWindow *self)
{
  return g_cancellable_is_cancelled (self->cancellable);
}

static void
fetch_window_show (FetchWindow *self,
                   GtkWidget   *page,
                   int          status)
{
  exit_status = status;
  gtk_stack_set_visible_child (self->stack, page);

  /* The tick callback runs once the page is mapped and being drawn. */
  if (self->print_result)
    gtk_widget_add_tick_callback (page, print_result_and_close, self, NULL);
}

static void
fetch_window_show_error (FetchWindow  *self,
                         const GError *error)
{
  GtkWidget *problem;

  if (fetch_window_is_closed (self))
    return;

  problem = gtk_widget_get_parent (GTK_WIDGET (self->problem_label));

  if (g_error_matches (error, PIN_TLS_ERROR, PIN_TLS_ERROR_PIN_MISMATCH))
    {
      gtk_label_set_text (self->problem_heading, "Update required");
      gtk_label_set_text (self->problem_label,
                          "The server has a certificate this version of the "
                          "application does not know. Please install the latest "
                          "version to keep using it.");
      fetch_window_show (self, problem, EXIT_UPDATE_REQUIRED);
      return;
    }

  gtk_label_set_text (self->problem_heading, "Could not fetch the page");
  gtk_label_set_text (self->problem_label, error->message);
  fetch_window_show (self, problem, EXIT_FAILURE);
}

static void
fetch_window_show_response (FetchWindow *self)
{
  g_autoptr(GBytes) bytes = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *text = NULL;
  const char *data;
  const char *body;
  gsize size;

  if (fetch_window_is_closed (self))
    return;

  bytes = g_memory_output_stream_steal_as_bytes (G_MEMORY_OUTPUT_STREAM (self->response));
  data = g_bytes_get_data (bytes, &size);
  text = g_strndup (data, size);
  body = strstr (text, "\r\n\r\n");

  if (body == NULL || !g_str_has_prefix (text, "HTTP/1.") || strlen (text) < 12
      || strncmp (text + 8, " 200", 4) != 0 || !g_utf8_validate (body, -1, NULL))
    {
      g_set_error_literal (&error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                           "The server did not send the page.");
      fetch_window_show_error (self, error);
      return;
    }

  gtk_label_set_text (self->page_label, g_strchomp ((char *) body + 4));
  fetch_window_show (self, GTK_WIDGET (self->page_label), EXIT_SUCCESS);
}

static void
on_response_read (GObject      *source,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  g_autoptr(FetchWindow) self = user_data;
  g_autoptr(GError) error = NULL;

  if (g_output_stream_splice_finish (G_OUTPUT_STREAM (source), result, &error) < 0)
    fetch_window_show_error (self, error);
  else
    fetch_window_show_response (self);
}

static void
on_request_written (GObject      *source,
                    GAsyncResult *result,
                    gpointer      user_data)
{
  g_autoptr(FetchWindow) self = user_data;
  g_autoptr(GError) error = NULL;
  GInputStream *input;

  if (!g_output_stream_write_all_finish (G_OUTPUT_STREAM (source), result, NULL, &error))
    {
      fetch_window_show_error (self, error);
      return;
    }

  input = g_io_stream_get_input_stream (G_IO_STREAM (self->connection));
  self->response = g_memory_output_stream_new_resizable ();
  g_output_stream_splice_async (self->response, input,
                                G_OUTPUT_STREAM_SPLICE_CLOSE_SOURCE
                                | G_OUTPUT_STREAM_SPLICE_CLOSE_TARGET,
                                G_PRIORITY_DEFAULT, self->cancellable,
                                on_response_read, g_object_ref (self));
}

static void
on_handshake (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  g_autoptr(FetchWindow) self = user_data;
  g_autoptr(GError) error = NULL;
  GOutputStream *output;

  if (!g_tls_connection_handshake_finish (G_TLS_CONNECTION (source), result, &error))
    {
      fetch_window_show_error (self, error);
      return;
    }

  /* The window keeps the request alive until the write finishes. */
  self->request = g_strdup_printf ("GET / HTTP/1.0\r\nHost: %s\r\n\r\n", self->address);
  output = g_io_stream_get_output_stream (G_IO_STREAM (self->connection));
  g_output_stream_write_all_async (output, self->request, strlen (self->request),
                                   G_PRIORITY_DEFAULT, self->cancellable,
                                   on_request_written, g_object_ref (self));
}

static void
on_connected (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  g_autoptr(FetchWindow) self = user_data;
  g_autoptr(GSocketConnection) tcp = NULL;
  g_autoptr(GSocketConnectable) identity = NULL;
  g_autoptr(GError) error = NULL;

  tcp = g_socket_client_connect_to_host_finish (G_SOCKET_CLIENT (source), result, &error);
  if (tcp != NULL)
    identity = g_network_address_parse (self->address, 443, &error);
  if (identity != NULL)
    self->connection = pin_tls_client_connection_new (G_IO_STREAM (tcp), identity,
                                                      self->pins, &error);
  if (self->connection == NULL)
    {
      fetch_window_show_error (self, error);
      return;
    }

  g_tls_connection_handshake_async (G_TLS_CONNECTION (self->connection), G_PRIORITY_DEFAULT,
                                    self->cancellable, on_handshake, g_object_ref (self));
}

static void
fetch_window_start (FetchWindow *self)
{
  g_autoptr(GSocketClient) client = g_socket_client_new ();

  g_socket_client_connect_to_host_async (client, self->address, 443, self->cancellable,
                                         on_connected, g_object_ref (self));
}

static GtkWidget *
new_problem_page (FetchWindow *self)
{
  GtkWidget *box = gtk_box_new (GTK_ORIENTATION_VERTICAL, 12);
  GtkWidget *icon = gtk_image_new_from_icon_name ("software-update-urgent-symbolic");

  gtk_widget_set_valign (box, GTK_ALIGN_CENTER);
  gtk_widget_set_margin_start (box, 24);
  gtk_widget_set_margin_end (box, 24);
  gtk_image_set_pixel_size (GTK_IMAGE (icon), 64);
  gtk_box_append (GTK_BOX (box), icon);

  self->problem_heading = GTK_LABEL (gtk_label_new (NULL));
  gtk_widget_add_css_class (GTK_WIDGET (self->problem_heading), "title-1");
  gtk_box_append (GTK_BOX (box), GTK_WIDGET (self->problem_heading));

  self->problem_label = GTK_LABEL (gtk_label_new (NULL));
  gtk_label_set_wrap (self->problem_label, TRUE);
  gtk_label_set_justify (self->problem_label, GTK_JUSTIFY_CENTER);
  gtk_box_append (GTK_BOX (box), GTK_WIDGET (self->problem_label));

  return box;
}

static void
fetch_window_init (FetchWindow *self)
{
  GtkWidget *spinner = gtk_spinner_new ();

  self->cancellable = g_cancellable_new ();
  self->stack = GTK_STACK (gtk_stack_new ());
  gtk_stack_set_transition_type (self->stack, GTK_STACK_TRANSITION_TYPE_CROSSFADE);

  gtk_spinner_start (GTK_SPINNER (spinner));
  gtk_widget_set_size_request (spinner, 32, 32);
  gtk_stack_add_child (self->stack, spinner);

  self->page_label = GTK_LABEL (gtk_label_new (NULL));
  gtk_label_set_selectable (self->page_label, TRUE);
  gtk_label_set_wrap (self->page_label, TRUE);
  gtk_stack_add_child (self->stack, GTK_WIDGET (self->page_label));
  gtk_stack_add_child (self->stack, new_problem_page (self));

  gtk_window_set_title (GTK_WINDOW (self), "Pinned fetch");
  gtk_window_set_default_size (GTK_WINDOW (self), 480, 320);
  gtk_window_set_child (GTK_WINDOW (self), GTK_WIDGET (self->stack));
}

static void
fetch_window_dispose (GObject *object)
{
  FetchWindow *self = FETCH_WINDOW (object);

  /* Pending operations hold a reference to the window: cancelling them
   * lets them finish, and the window is finalized after the last one. */
  g_cancellable_cancel (self->cancellable);

  G_OBJECT_CLASS (fetch_window_parent_class)->dispose (object);
}

static void
fetch_window_finalize (GObject *object)
{
  FetchWindow *self = FETCH_WINDOW (object);

  g_clear_object (&self->connection);
  g_clear_object (&self->response);
  g_clear_object (&self->cancellable);
  g_clear_object (&self->pins);
  g_free (self->request);
  g_free (self->address);

  G_OBJECT_CLASS (fetch_window_parent_class)->finalize (object);
}

static void
fetch_window_class_init (FetchWindowClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = fetch_window_dispose;
  object_class->finalize = fetch_window_finalize;
}

static FetchWindow *
fetch_window_new (GtkApplication *application,
                  const char     *address,
                  PinTlsPinSet   *pins,
                  gboolean        print_result)
{
  FetchWindow *self = g_object_new (FETCH_TYPE_WINDOW, "application", application, NULL);

  self->address = g_strdup (address);
  self->pins = g_object_ref (pins);
  self->print_result = print_result;

  return self;
}

typedef struct
{
  char *address;
  PinTlsPinSet *pins;
  gboolean print_result;
} Options;

static void
on_activate (GtkApplication *application,
             gpointer        user_data)
{
  Options *options = user_data;
  FetchWindow *window;

  window = fetch_window_new (application, options->address, options->pins,
                             options->print_result);
  gtk_window_present (GTK_WINDOW (window));
  fetch_window_start (window);
}

int
main (int    argc,
      char **argv)
{
  g_autoptr(GtkApplication) application = NULL;
  g_autoptr(PinTlsPinSet) pins = NULL;
  g_autoptr(GError) error = NULL;
  Options options = { NULL, NULL, FALSE };
  int first = 1;

  if (argc > 1 && g_str_equal (argv[1], "--print-result"))
    {
      options.print_result = TRUE;
      first++;
    }

  if (argc < first + 2)
    {
      g_printerr ("Usage: %s [--print-result] HOST:PORT PIN [PIN...]\n", argv[0]);
      return EXIT_USAGE;
    }

  pins = pin_tls_pin_set_new ((const char *const *) argv + first + 1, &error);
  if (pins == NULL)
    {
      g_printerr ("Bad pin configuration: %s\n", error->message);
      return EXIT_USAGE;
    }

  options.address = argv[first];
  options.pins = pins;

  application = gtk_application_new ("org.example.PinTlsFetch", G_APPLICATION_NON_UNIQUE);
  g_signal_connect (application, "activate", G_CALLBACK (on_activate), &options);
  if (g_application_run (G_APPLICATION (application), 1, argv) != 0)
    return EXIT_FAILURE;

  return exit_status;
}
