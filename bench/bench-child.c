/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The measurements on connections, made in child processes, one client
 * each, so that no client's memory, threads or warm caches count for
 * another. A child first asks the server, over one connection, how the
 * session was negotiated (this also warms it up), and prints its results
 * as key=value lines.
 *
 * A worker child ("--child worker") stays up and measures what the driver
 * asks on standard input, one command a line, each answered by its
 * results and a line "end=":
 *   handshakes SECONDS  connections opened and closed for that long
 *   download BYTES      a transfer from the server, on one connection
 *   upload BYTES        the same towards it
 *   connections N       exactly N connections opened and closed
 *   count COMMAND       COMMAND, its instructions counted by callgrind
 * so that the driver can interleave the clients in short batches. The
 * memory and concurrency children measure once and exit. */

#include "bench.h"

#include <stdio.h>
#include <unistd.h>

#ifdef HAVE_VALGRIND_CALLGRIND_H
#include <valgrind/callgrind.h>
#endif

#define READ_BUFFER_SIZE 65536
#define WRITE_CHUNK_SIZE 65536
#define MIN_HANDSHAKES 2

/* No command may take longer: a client that hangs ends its worker. */
#define COMMAND_TIMEOUT_SECONDS 300

typedef struct
{
  const BenchChildOptions *options;
  const BenchClient *client;
  BenchTarget *target;
  guint8 *buffer;
  BenchConnection *bulk_connection; /* kept from one transfer to the next */
} Child;

static gboolean
is_async (Child *child)
{
  return child->client->mode == BENCH_MODE_ASYNC;
}

/* Opening one connection, whatever the client ------------------------------ */

typedef struct
{
  GMainLoop *loop;
  BenchConnection *connection;
  GError *error;
} OpenWait;

static void
open_wait_cb (BenchConnection *connection,
              GError          *error,
              gpointer         data)
{
  OpenWait *wait = data;

  wait->connection = connection;
  if (error != NULL)
    wait->error = g_error_copy (error);
  g_main_loop_quit (wait->loop);
}

static BenchConnection *
open_one (Child   *child,
          GError **error)
{
  OpenWait wait = { NULL, NULL, NULL };

  if (!is_async (child))
    return bench_connection_open (child->client, child->target, error);

  wait.loop = g_main_loop_new (NULL, FALSE);
  bench_connection_open_async (child->client, child->target, open_wait_cb, &wait);
  g_main_loop_run (wait.loop);
  g_main_loop_unref (wait.loop);

  if (wait.error != NULL)
    g_propagate_error (error, wait.error);

  return wait.connection;
}

/* What the server says about the session: it must be the same for every
 * client of a server setup, or the comparison would be unfair. */
static gboolean
probe (Child   *child,
       GError **error)
{
  BenchConnection *connection = open_one (child, error);
  char line[256];
  gsize length = 0;

  if (connection == NULL)
    return FALSE;

  if (!bench_connection_write_all (connection, "D\n", 2, error))
    goto failed;

  while (length == 0 || line[length - 1] != '\n')
    {
      gssize n = bench_connection_read (connection, line + length,
                                        sizeof line - 1 - length, error);

      if (n < 0)
        goto failed;
      if (n == 0 || length + n >= sizeof line - 1)
        {
          g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_FAILED,
                               "The server did not describe the session");
          goto failed;
        }
      length += n;
    }

  line[length - 1] = '\0';
  bench_report ("session", "%s", line);
  bench_connection_close (connection);
  return TRUE;

failed:
  bench_connection_close (connection);
  return FALSE;
}

/* Handshakes, one connection at a time ---------------------------------- */

typedef struct
{
  Child *child;
  GMainLoop *loop;
  double start;
  double seconds;
  guint min_count;
  guint count;
  GError *error;
} HandshakeLoop;

static gboolean
handshake_loop_done (HandshakeLoop *loop)
{
  return loop->count >= loop->min_count
         && bench_now () - loop->start >= loop->seconds;
}

static void
handshake_loop_opened_cb (BenchConnection *connection,
                          GError          *error,
                          gpointer         data)
{
  HandshakeLoop *loop = data;

  if (error != NULL)
    {
      loop->error = g_error_copy (error);
      g_main_loop_quit (loop->loop);
      return;
    }

  /* Closing is synchronous for every client: it is not what is measured. */
  bench_connection_close (connection);
  loop->count++;

  if (handshake_loop_done (loop))
    g_main_loop_quit (loop->loop);
  else
    bench_connection_open_async (loop->child->client, loop->child->target,
                                 handshake_loop_opened_cb, loop);
}

/* Opens and closes connections for at least @seconds and at least
 * @min_count times; returns how many. */
static gboolean
run_handshakes (Child   *child,
                double   seconds,
                guint    min_count,
                guint   *count,
                GError **error)
{
  HandshakeLoop loop = { child, NULL, bench_now (), seconds, min_count, 0, NULL };

  if (is_async (child))
    {
      loop.loop = g_main_loop_new (NULL, FALSE);
      bench_connection_open_async (child->client, child->target,
                                   handshake_loop_opened_cb, &loop);
      g_main_loop_run (loop.loop);
      g_main_loop_unref (loop.loop);
    }
  else
    {
      while (loop.error == NULL && !handshake_loop_done (&loop))
        {
          BenchConnection *connection =
            bench_connection_open (child->client, child->target, &loop.error);

          if (connection != NULL)
            bench_connection_close (connection);
          loop.count++;
        }
    }

  *count = loop.count;
  if (loop.error != NULL)
    g_propagate_error (error, loop.error);

  return loop.error == NULL;
}

static gboolean
measure_handshakes (Child   *child,
                    double   seconds,
                    GError **error)
{
  double start = bench_now ();
  double cpu = bench_cpu_seconds ();
  guint count;

  if (!run_handshakes (child, seconds, MIN_HANDSHAKES, &count, error))
    return FALSE;

  bench_report ("rate", "%.2f", count / (bench_now () - start));
  bench_report ("cpu_us", "%.1f", (bench_cpu_seconds () - cpu) * 1e6 / count);

  return TRUE;
}

/* Exactly @count handshakes. */
static gboolean
measure_connections (Child   *child,
                     guint    count,
                     GError **error)
{
  guint done;

  if (!run_handshakes (child, 0, count, &done, error))
    return FALSE;

  bench_report ("handshakes", "%u", done);
  return TRUE;
}

/* Bulk transfers ----------------------------------------------------------- */

typedef struct
{
  GMainLoop *loop;
  GIOStream *stream;
  guint8 *buffer;
  guint64 to_write; /* upload data not yet handed to the stream */
  guint64 to_read;  /* download data, or the server's "OK\n" */
  GError *error;
} Transfer;

static char *
transfer_command (gboolean upload,
                  guint64  bytes)
{
  return g_strdup_printf ("%c %" G_GUINT64_FORMAT "\n", upload ? 'U' : 'B', bytes);
}

static void transfer_write_cb (GObject      *source,
                               GAsyncResult *result,
                               gpointer      data);

static void
transfer_read_cb (GObject      *source,
                  GAsyncResult *result,
                  gpointer      data)
{
  Transfer *transfer = data;
  gssize n;

  n = g_input_stream_read_finish (G_INPUT_STREAM (source), result, &transfer->error);
  if (n == 0)
    g_set_error_literal (&transfer->error, G_IO_ERROR, G_IO_ERROR_CLOSED,
                         "The server closed the connection");
  if (n <= 0)
    {
      g_main_loop_quit (transfer->loop);
      return;
    }

  transfer->to_read -= MIN ((guint64) n, transfer->to_read);
  if (transfer->to_read == 0)
    g_main_loop_quit (transfer->loop);
  else
    g_input_stream_read_async (G_INPUT_STREAM (source), transfer->buffer,
                               READ_BUFFER_SIZE, G_PRIORITY_DEFAULT, NULL,
                               transfer_read_cb, transfer);
}

static void
transfer_continue (Transfer *transfer)
{
  gsize size = MIN (transfer->to_write, WRITE_CHUNK_SIZE);

  if (size > 0)
    {
      transfer->to_write -= size;
      g_output_stream_write_all_async (
        g_io_stream_get_output_stream (transfer->stream), transfer->buffer, size,
        G_PRIORITY_DEFAULT, NULL, transfer_write_cb, transfer);
      return;
    }

  g_input_stream_read_async (g_io_stream_get_input_stream (transfer->stream),
                             transfer->buffer, READ_BUFFER_SIZE, G_PRIORITY_DEFAULT,
                             NULL, transfer_read_cb, transfer);
}

static void
transfer_write_cb (GObject      *source,
                   GAsyncResult *result,
                   gpointer      data)
{
  Transfer *transfer = data;

  if (!g_output_stream_write_all_finish (G_OUTPUT_STREAM (source), result, NULL,
                                         &transfer->error))
    g_main_loop_quit (transfer->loop);
  else
    transfer_continue (transfer);
}

static gboolean
transfer_async (Child           *child,
                BenchConnection *connection,
                gboolean         upload,
                guint64          bytes,
                GError         **error)
{
  g_autofree char *command = transfer_command (upload, bytes);
  Transfer transfer = { NULL, connection->stream, child->buffer, 0, 0, NULL };

  transfer.to_write = upload ? bytes : 0;
  transfer.to_read = upload ? 3 : bytes;
  transfer.loop = g_main_loop_new (NULL, FALSE);
  g_output_stream_write_all_async (
    g_io_stream_get_output_stream (connection->stream), command, strlen (command),
    G_PRIORITY_DEFAULT, NULL, transfer_write_cb, &transfer);
  g_main_loop_run (transfer.loop);
  g_main_loop_unref (transfer.loop);

  if (transfer.error != NULL)
    g_propagate_error (error, transfer.error);

  return transfer.error == NULL;
}

static gboolean
transfer_sync (Child           *child,
               BenchConnection *connection,
               gboolean         upload,
               guint64          bytes,
               GError         **error)
{
  g_autofree char *command = transfer_command (upload, bytes);
  guint64 to_write = upload ? bytes : 0;
  guint64 to_read = upload ? 3 : bytes;

  if (!bench_connection_write_all (connection, command, strlen (command), error))
    return FALSE;

  while (to_write > 0)
    {
      gsize size = MIN (to_write, WRITE_CHUNK_SIZE);

      if (!bench_connection_write_all (connection, child->buffer, size, error))
        return FALSE;
      to_write -= size;
    }

  while (to_read > 0)
    {
      gssize n =
        bench_connection_read (connection, child->buffer, READ_BUFFER_SIZE, error);

      if (n < 0)
        return FALSE;
      if (n == 0)
        {
          g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_CLOSED,
                               "The server closed the connection");
          return FALSE;
        }
      to_read -= MIN ((guint64) n, to_read);
    }

  return TRUE;
}

static gboolean
run_transfer (Child           *child,
              BenchConnection *connection,
              gboolean         upload,
              guint64          bytes,
              GError         **error)
{
  if (is_async (child))
    return transfer_async (child, connection, upload, bytes, error);

  return transfer_sync (child, connection, upload, bytes, error);
}

/* One transfer on the worker's connection, opened by the first. */
static gboolean
measure_bulk (Child   *child,
              gboolean upload,
              guint64  bytes,
              GError **error)
{
  double start;
  double cpu;

  if (child->bulk_connection == NULL)
    child->bulk_connection = open_one (child, error);
  if (child->bulk_connection == NULL)
    return FALSE;

  cpu = bench_cpu_seconds ();
  start = bench_now ();
  if (!run_transfer (child, child->bulk_connection, upload, bytes, error))
    return FALSE;

  bench_report ("mib_per_s", "%.1f", bytes / 1048576.0 / (bench_now () - start));
  bench_report ("cpu_s_per_gib", "%.3f",
                (bench_cpu_seconds () - cpu) * 1073741824.0 / bytes);

  return TRUE;
}

/* Memory of idle connections ------------------------------------------------ */

static void
close_all (GPtrArray *connections)
{
  guint i;

  for (i = 0; i < connections->len; i++)
    bench_connection_close (connections->pdata[i]);
  g_ptr_array_set_size (connections, 0);
}

static gboolean
measure_memory (Child   *child,
                GError **error)
{
  g_autoptr(GPtrArray) connections = g_ptr_array_new ();
  guint n = child->options->connections;
  gsize before;
  guint count;

  if (!run_handshakes (child, 0, MIN_HANDSHAKES, &count, error))
    return FALSE;

  before = bench_rss_kib ();
  while (connections->len < n)
    {
      BenchConnection *connection = open_one (child, error);

      if (connection == NULL)
        {
          close_all (connections);
          return FALSE;
        }
      g_ptr_array_add (connections, connection);
    }

  bench_report ("kib_per_connection", "%.2f",
                (bench_rss_kib () - (double) before) / n);
  close_all (connections);

  return TRUE;
}

/* Concurrent handshakes ----------------------------------------------------- */

typedef struct
{
  GMainLoop *loop;
  guint pending;
  GPtrArray *connections;
  GError *error;
} Burst;

static void
burst_opened_cb (BenchConnection *connection,
                 GError          *error,
                 gpointer         data)
{
  Burst *burst = data;

  if (connection != NULL)
    g_ptr_array_add (burst->connections, connection);
  else if (burst->error == NULL)
    burst->error = g_error_copy (error);

  if (--burst->pending == 0)
    g_main_loop_quit (burst->loop);
}

static gboolean
measure_concurrency (Child   *child,
                     GError **error)
{
  g_autoptr(GPtrArray) connections = g_ptr_array_new ();
  guint n = child->options->connections;
  Burst burst = { NULL, n, connections, NULL };
  gsize before;
  double start;
  double cpu;
  guint i;

  if (!is_async (child))
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                           "Concurrent handshakes need an asynchronous client");
      return FALSE;
    }

  if (!bench_reset_peak_rss ())
    bench_report ("peak_reset", "failed");
  before = bench_rss_kib ();
  burst.loop = g_main_loop_new (NULL, FALSE);
  cpu = bench_cpu_seconds ();
  start = bench_now ();

  for (i = 0; i < n; i++)
    bench_connection_open_async (child->client, child->target, burst_opened_cb,
                                 &burst);
  g_main_loop_run (burst.loop);

  if (burst.error == NULL)
    {
      bench_report ("seconds", "%.4f", bench_now () - start);
      bench_report ("cpu_s", "%.4f", bench_cpu_seconds () - cpu);
      bench_report ("peak_mib", "%.2f",
                    (bench_peak_rss_kib () - (double) before) / 1024);
    }
  close_all (connections);
  g_main_loop_unref (burst.loop);

  if (burst.error != NULL)
    g_propagate_error (error, burst.error);

  return burst.error == NULL;
}

/* Running --------------------------------------------------------------- */

static gboolean run_command (Child      *child,
                             const char *command,
                             GError    **error);

/* Runs @command with callgrind counting, for a child that runs under
 * callgrind with --instr-atstart=no: only the command's instructions are
 * counted, in every thread, and dumped for the driver to read. */
static gboolean
count_instructions (Child      *child,
                    const char *command,
                    GError    **error)
{
#ifdef HAVE_VALGRIND_CALLGRIND_H
  gboolean done;

  if (!RUNNING_ON_VALGRIND)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                           "Counting instructions needs callgrind");
      return FALSE;
    }

  CALLGRIND_ZERO_STATS;
  CALLGRIND_START_INSTRUMENTATION;
  done = run_command (child, command, error);
  CALLGRIND_STOP_INSTRUMENTATION;
  CALLGRIND_DUMP_STATS;

  return done;
#else
  g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                       "Built without valgrind/callgrind.h");
  return FALSE;
#endif
}

static gboolean
run_command (Child      *child,
             const char *command,
             GError    **error)
{
  g_auto(GStrv) words = g_strsplit (g_strstrip ((char *) command), " ", 2);
  guint64 bytes = 0;
  guint64 count = 0;

  if (g_strv_length (words) == 2 && g_str_equal (words[0], "handshakes"))
    return measure_handshakes (child, g_ascii_strtod (words[1], NULL), error);

  if (g_strv_length (words) == 2 && g_str_equal (words[0], "count"))
    return count_instructions (child, words[1], error);

  if (g_strv_length (words) == 2 && g_str_equal (words[0], "connections")
      && g_ascii_string_to_unsigned (words[1], 10, 1, G_MAXUINT, &count, error))
    return measure_connections (child, count, error);

  if (g_strv_length (words) == 2
      && (g_str_equal (words[0], "download") || g_str_equal (words[0], "upload"))
      && g_ascii_string_to_unsigned (words[1], 10, 1, G_MAXUINT64, &bytes, error))
    return measure_bulk (child, g_str_equal (words[0], "upload"), bytes, error);

  if (error != NULL && *error == NULL)
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                 "Unknown command “%s”", command);
  return FALSE;
}

/* Answers the driver's commands until it closes standard input. */
static gboolean
serve_commands (Child   *child,
                GError **error)
{
  char line[256];

  bench_report ("end", "%s", "");
  while (fgets (line, sizeof line, stdin) != NULL)
    {
      gboolean done;

      alarm (COMMAND_TIMEOUT_SECONDS);
      done = run_command (child, line, error);
      alarm (0);
      if (!done)
        return FALSE;
      bench_report ("end", "%s", "");
    }

  return TRUE;
}

static gboolean
run_test (Child   *child,
          GError **error)
{
  const char *test = child->options->test;
  gboolean done;

  if (g_str_equal (test, "worker"))
    return serve_commands (child, error);

  alarm (COMMAND_TIMEOUT_SECONDS);
  if (g_str_equal (test, "memory"))
    done = measure_memory (child, error);
  else if (g_str_equal (test, "concurrency"))
    done = measure_concurrency (child, error);
  else
    done = run_command (child, test, error);
  alarm (0);

  return done;
}

int
bench_child_run (const BenchChildOptions *options)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *unavailable = NULL;
  Child child = { options, NULL, NULL, NULL, NULL };
  gboolean done = FALSE;

  if (g_str_equal (options->test, "verdict"))
    return bench_verdict_run (options->seconds);

  child.client = bench_client_find (options->client_id ? options->client_id : "");
  if (child.client == NULL)
    {
      g_printerr ("Unknown client “%s”\n",
                  options->client_id ? options->client_id : "");
      return 2;
    }

  child.target = bench_target_new (options->port, options->leaf_path, &error);
  if (child.target == NULL)
    {
      g_printerr ("%s\n", error->message);
      return 1;
    }

  unavailable = bench_client_unavailable (child.client, child.target);
  if (unavailable != NULL)
    {
      bench_report ("unavailable", "%s", unavailable);
      bench_report ("end", "%s", "");
      bench_target_free (child.target);
      return 0;
    }

  child.buffer = g_malloc0 (MAX (READ_BUFFER_SIZE, WRITE_CHUNK_SIZE));
  done = probe (&child, &error) && run_test (&child, &error);
  if (!done)
    g_printerr ("%s, %s: %s\n", options->test, child.client->id, error->message);

  if (child.bulk_connection != NULL)
    bench_connection_close (child.bulk_connection);
  g_free (child.buffer);
  bench_target_free (child.target);

  return done ? 0 : 1;
}
