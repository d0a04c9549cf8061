/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* pintls-bench: pinned TLS connections measured side by side with
 * glib-networking and plain GnuTLS, all against one local GnuTLS server,
 * with one table as the result.
 *
 * Every client runs in child processes of its own (this program, with
 * --child), so that no client's memory or threads count for another.
 * Handshakes and bulk transfers run in workers that stay up and measure
 * on demand: a batch asks every worker once, in an order that rotates from
 * batch to batch, so that load on the machine falls on every client alike.
 * Memory and concurrency take a fresh child per round. A figure is the
 * median of the batches or rounds; a ratio is the median of the ratios
 * within each batch or round. */

#include "bench.h"

#include <glib/gstdio.h>
#include <math.h>
#include <stdio.h>
#include <sys/utsname.h>

#define DEFAULT_ROUNDS 5
#define DEFAULT_BATCHES 30
#define DEFAULT_SECONDS 0.1
#define DEFAULT_BULK_MIB 256
#define DEFAULT_CONNECTIONS 1000
#define DEFAULT_CONCURRENT 500
#define DEFAULT_VERDICT_SECONDS 0.1

/* What --instructions counts per client: handshakes, and mebibytes of
 * each bulk transfer. */
#define COUNTED_HANDSHAKES 10
#define COUNTED_MIB 16

/* What the server presents; every client pins its leaf. */
typedef struct
{
  const char *id;
  const char *label;
  const char *leaf;  /* the pinned certificate, in data/certs */
  const char *serve; /* the server's key, then the certificates it sends */
  gboolean glib;     /* whether a file database holding the leaf can pin it */
} Setup;

/* GnuTLS trusts an end-entity certificate of its trust list only when it
 * arrives alone, so glib-networking pins a leaf that way and no other: the
 * chain with an intermediate is measured for the other clients only. */
static const Setup setups[] = {
  { "ecdsa", "ECDSA P-256 leaf", "leaf1.pem", "leaf1.key,leaf1.pem", TRUE },
  { "rsa", "RSA-2048 leaf", "rsa2048.pem", "rsa2048.key,rsa2048.pem", TRUE },
  { "ecdsa-chain", "ECDSA P-256 leaf and its intermediate", "leaf1.pem",
    "leaf1.key,leaf1.pem,intA.pem", FALSE },
};

/* Which clients each measurement compares. After the handshake, the
 * connect helper and the database-set-later variant move data exactly as
 * the sync client they are built on, so bulk transfers leave them out. */
static const char *const handshake_clients[] = {
  "gnutls", "gnutls-pintls", "pintls-sync", "pintls-async", "pintls-connect",
  "glib-sync", "glib-async", "glib-set", NULL,
};
static const char *const bulk_clients[] = {
  "gnutls", "pintls-sync", "pintls-async", "glib-sync", "glib-async", NULL,
};
static const char *const memory_clients[] = {
  "gnutls", "pintls-sync", "glib-sync", "glib-set", NULL,
};
static const char *const concurrency_clients[] = {
  "pintls-async",
  "glib-async",
  NULL,
};

static const guint verdict_pin_counts[] = { 1, 10, 1000, 100000 };
static const struct
{
  guint length;
  const char *match;
  const char *heading;
} verdict_cases[] = {
  { 1, "leaf", "1 cert, leaf" },
  { 1, "none", "1, no match" },
  { 2, "leaf", "2, leaf" },
  { 2, "top", "2, top" },
  { 3, "leaf", "3, leaf" },
  { 3, "top", "3, top" },
  { 4, "leaf", "4, leaf" },
  { 4, "top", "4, top" },
  { 4, "none", "4, no match" },
};

typedef struct
{
  gboolean quick;
  int rounds;
  int batches;
  double seconds;
  int bulk_mib;
  int connections;
  int concurrent;
  double verdict_seconds;
  gboolean instructions;
  char *only;
  char *data_dir;
} Settings;

typedef struct
{
  Settings *settings;
  char *self_path;
  guint16 ports[G_N_ELEMENTS (setups)];
  GHashTable *results;     /* "test/setup/client/metric": GArray of double */
  GHashTable *sessions;    /* setup id: GHashTable session description: clients */
  GHashTable *unavailable; /* client id: why */
  guint failures;
  char *load_before;
  char *callgrind_dir;     /* for --instructions */
} Driver;

/* Results --------------------------------------------------------------- */

/* The values of a metric, one per round or batch, NAN where none. */
static GArray *
values_of (Driver     *driver,
           const char *test,
           const char *setup_id,
           const char *client,
           const char *metric)
{
  g_autofree char *name = g_strdup_printf ("%s/%s/%s/%s", test, setup_id, client,
                                           metric);
  GArray *values = g_hash_table_lookup (driver->results, name);

  if (values == NULL)
    {
      values = g_array_new (FALSE, FALSE, sizeof (double));
      g_hash_table_insert (driver->results, g_steal_pointer (&name), values);
    }

  return values;
}

static void
set_value (GArray *values,
           guint   index,
           double  value)
{
  double nan_value = NAN;

  while (values->len <= index)
    g_array_append_val (values, nan_value);
  g_array_index (values, double, index) = value;
}

/* Keeps the numbers of what a child reported, as round or batch @index. */
static void
store (Driver     *driver,
       const char *test,
       const char *setup_id,
       const char *client,
       guint       index,
       GHashTable *reported)
{
  GHashTableIter iter;
  gpointer name;
  gpointer value;

  g_hash_table_iter_init (&iter, reported);
  while (g_hash_table_iter_next (&iter, &name, &value))
    {
      char *end = NULL;
      double number = g_ascii_strtod (value, &end);

      if (end != NULL && *end == '\0' && end != value)
        set_value (values_of (driver, test, setup_id, client, name), index, number);
    }
}

static double
median_of (Driver     *driver,
           const char *test,
           const char *setup_id,
           const char *client,
           const char *metric)
{
  GArray *values = values_of (driver, test, setup_id, client, metric);

  return bench_median ((double *) values->data, values->len);
}

/* The median of the ratios @client / @reference within each round. */
static double
median_ratio (Driver     *driver,
              const char *test,
              const char *setup_id,
              const char *client,
              const char *reference,
              const char *metric)
{
  GArray *values = values_of (driver, test, setup_id, client, metric);
  GArray *references = values_of (driver, test, setup_id, reference, metric);
  guint n = MIN (values->len, references->len);
  g_autofree double *ratios = g_new (double, MAX (n, 1));
  guint i;

  for (i = 0; i < n; i++)
    {
      double a = g_array_index (values, double, i);
      double b = g_array_index (references, double, i);

      ratios[i] = b != 0 ? a / b : NAN;
    }

  return bench_median (ratios, n);
}

static void
note_session (Driver     *driver,
              const char *setup_id,
              const char *client,
              const char *session)
{
  GHashTable *by_session = g_hash_table_lookup (driver->sessions, setup_id);
  GPtrArray *clients;

  if (by_session == NULL)
    {
      by_session = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                          (GDestroyNotify) g_ptr_array_unref);
      g_hash_table_insert (driver->sessions, g_strdup (setup_id), by_session);
    }

  clients = g_hash_table_lookup (by_session, session);
  if (clients == NULL)
    {
      clients = g_ptr_array_new_with_free_func (g_free);
      g_hash_table_insert (by_session, g_strdup (session), clients);
    }
  if (!g_ptr_array_find_with_equal_func (clients, client, g_str_equal, NULL))
    g_ptr_array_add (clients, g_strdup (client));
}

/* Children ---------------------------------------------------------------- */

/* Runs this program with @args, under @wrapper (such as valgrind) if it is
 * not NULL. */
static GSubprocess *
spawn_child (Driver            *driver,
             GPtrArray         *args,
             const char *const *wrapper,
             GSubprocessFlags   flags,
             GError           **error)
{
  g_autoptr(GSubprocessLauncher) launcher = g_subprocess_launcher_new (flags);
  guint n = wrapper != NULL ? g_strv_length ((char **) wrapper) : 0;

  g_ptr_array_insert (args, 0, g_strdup (driver->self_path));
  while (n > 0)
    g_ptr_array_insert (args, 0, g_strdup (wrapper[--n]));
  g_ptr_array_add (args, NULL);
  g_subprocess_launcher_unsetenv (launcher, "G_MESSAGES_DEBUG");

  return g_subprocess_launcher_spawnv (launcher, (const char *const *) args->pdata,
                                       error);
}

/* Reads key=value lines up to "end=", or to the end of @output unless
 * @until_end. */
static GHashTable *
read_report (GDataInputStream *output,
             gboolean          until_end,
             GError          **error)
{
  g_autoptr(GHashTable) values = g_hash_table_new_full (g_str_hash, g_str_equal,
                                                        g_free, g_free);
  g_autoptr(GError) local_error = NULL;
  g_autofree char *line = NULL;

  for (;;)
    {
      const char *equals;

      g_free (line);
      line = g_data_input_stream_read_line_utf8 (output, NULL, NULL, &local_error);
      if (line == NULL || g_str_equal (line, "end="))
        break;

      equals = strchr (line, '=');
      if (equals != NULL)
        g_hash_table_insert (values, g_strndup (line, equals - line),
                             g_strdup (equals + 1));
    }

  if (local_error != NULL)
    {
      g_propagate_error (error, g_steal_pointer (&local_error));
      return NULL;
    }
  if (line == NULL && until_end)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_FAILED, "the child failed");
      return NULL;
    }

  return g_steal_pointer (&values);
}

/* Runs a child that measures once, and returns what it reported. */
static GHashTable *
run_child (Driver    *driver,
           GPtrArray *args,
           GError   **error)
{
  g_autoptr(GSubprocess) child = NULL;
  g_autoptr(GDataInputStream) output = NULL;
  g_autoptr(GHashTable) values = NULL;

  child = spawn_child (driver, args, NULL, G_SUBPROCESS_FLAGS_STDOUT_PIPE, error);
  if (child == NULL)
    return NULL;

  output = g_data_input_stream_new (g_subprocess_get_stdout_pipe (child));
  values = read_report (output, FALSE, error);
  if (values == NULL || !g_subprocess_wait_check (child, NULL, error))
    return NULL;

  return g_steal_pointer (&values);
}

static void add_arg (GPtrArray  *args,
                     const char *name,
                     const char *format,
                     ...) G_GNUC_PRINTF (3, 4);

static void
add_arg (GPtrArray  *args,
         const char *name,
         const char *format,
         ...)
{
  va_list values;

  va_start (values, format);
  g_ptr_array_add (args, g_strdup (name));
  g_ptr_array_add (args, g_strdup_vprintf (format, values));
  va_end (values);
}

static char *
format_seconds (double seconds)
{
  char buffer[G_ASCII_DTOSTR_BUF_SIZE];

  return g_strdup (g_ascii_formatd (buffer, sizeof buffer, "%.6f", seconds));
}

static GPtrArray *
client_args (Driver      *driver,
             const char  *test,
             const Setup *setup,
             guint16      port,
             const char  *client)
{
  GPtrArray *args = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *leaf = g_build_filename (driver->settings->data_dir, setup->leaf,
                                            NULL);

  add_arg (args, "--child", "%s", test);
  add_arg (args, "--client", "%s", client);
  add_arg (args, "--port", "%u", port);
  add_arg (args, "--leaf", "%s", leaf);
  add_arg (args, "--connections", "%d",
           g_str_equal (test, "concurrency") ? driver->settings->concurrent
                                             : driver->settings->connections);

  return args;
}

/* What every child reports first. FALSE if the client cannot run here. */
static gboolean
note_first_report (Driver      *driver,
                   const Setup *setup,
                   const char  *client,
                   GHashTable  *reported)
{
  const char *value = g_hash_table_lookup (reported, "unavailable");

  if (value != NULL)
    {
      g_hash_table_replace (driver->unavailable, g_strdup (client),
                            g_strdup (value));
      return FALSE;
    }

  value = g_hash_table_lookup (reported, "session");
  if (value != NULL)
    note_session (driver, setup->id, client, value);

  return TRUE;
}

static void
report_failure (Driver     *driver,
                const char *what,
                const char *client,
                GError     *error)
{
  g_printerr ("  %s, %s: %s\n", what, client, error->message);
  driver->failures++;
}

/* Workers: children that measure on demand ------------------------------ */

typedef struct
{
  const char *client;
  GSubprocess *process;
  GDataInputStream *output;
} Worker;

static void
worker_free (Worker *worker)
{
  GSubprocess *process = worker->process;

  if (process != NULL)
    {
      g_output_stream_close (g_subprocess_get_stdin_pipe (process), NULL, NULL);
      g_subprocess_wait (process, NULL, NULL);
    }
  g_clear_object (&worker->output);
  g_clear_object (&worker->process);
  g_free (worker);
}

/* Starts a worker for @client, under @wrapper if it is not NULL; NULL if
 * it failed or cannot run here. */
static Worker *
worker_start (Driver            *driver,
              const Setup       *setup,
              guint16            port,
              const char        *client,
              const char *const *wrapper)
{
  g_autoptr(GPtrArray) args = client_args (driver, "worker", setup, port, client);
  g_autoptr(GHashTable) reported = NULL;
  g_autoptr(GError) error = NULL;
  Worker *worker = g_new0 (Worker, 1);

  worker->client = client;
  worker->process = spawn_child (driver, args, wrapper,
                                 G_SUBPROCESS_FLAGS_STDIN_PIPE
                                 | G_SUBPROCESS_FLAGS_STDOUT_PIPE,
                                 &error);
  if (worker->process != NULL)
    {
      worker->output =
        g_data_input_stream_new (g_subprocess_get_stdout_pipe (worker->process));
      reported = read_report (worker->output, TRUE, &error);
    }

  if (reported == NULL)
    report_failure (driver, "starting", client, error);
  if (reported == NULL || !note_first_report (driver, setup, client, reported))
    {
      worker_free (worker);
      return NULL;
    }

  return worker;
}

static GHashTable *
worker_ask (Worker     *worker,
            const char *command,
            GError    **error)
{
  g_autofree char *line = g_strconcat (command, "\n", NULL);
  GOutputStream *input = g_subprocess_get_stdin_pipe (worker->process);

  if (!g_output_stream_write_all (input, line, strlen (line), NULL, NULL, error)
      || !g_output_stream_flush (input, NULL, error))
    return NULL;

  return read_report (worker->output, TRUE, error);
}

static GPtrArray *
start_workers (Driver            *driver,
               guint              setup_index,
               const char *const *clients)
{
  const Setup *setup = &setups[setup_index];
  GPtrArray *workers = g_ptr_array_new_with_free_func ((GDestroyNotify) worker_free);
  guint i;

  for (i = 0; clients[i] != NULL; i++)
    {
      Worker *worker;

      if (!setup->glib && bench_client_find (clients[i])->glib_networking)
        continue;

      worker = worker_start (driver, setup, driver->ports[setup_index], clients[i],
                             NULL);
      if (worker != NULL)
        g_ptr_array_add (workers, worker);
    }

  return workers;
}

/* Asks every worker for @command once, each batch starting one worker
 * further along; keeps the results as @index of @test, unless @test is
 * NULL (a warm-up). A worker that fails is stopped. */
static void
run_batch (Driver      *driver,
           const char  *test,
           const Setup *setup,
           GPtrArray   *workers,
           const char  *command,
           guint        index)
{
  guint n = workers->len;
  guint i;

  for (i = 0; i < n; i++)
    {
      Worker *worker = workers->pdata[(i + index) % n];
      g_autoptr(GHashTable) reported = NULL;
      g_autoptr(GError) error = NULL;

      if (worker->process == NULL)
        continue;

      reported = worker_ask (worker, command, &error);
      if (reported == NULL)
        {
          report_failure (driver, command, worker->client, error);
          g_subprocess_force_exit (worker->process);
          g_clear_object (&worker->process);
          continue;
        }

      if (test != NULL)
        store (driver, test, setup->id, worker->client, index, reported);
    }
}

/* Measuring ------------------------------------------------------------- */

static gboolean
wanted (Driver     *driver,
        const char *test)
{
  g_auto(GStrv) only = NULL;

  if (driver->settings->only == NULL)
    return TRUE;

  only = g_strsplit (driver->settings->only, ",", -1);
  return g_strv_contains ((const char *const *) only, test);
}

/* The instructions of the last dump of callgrind in the process @pid. */
static double
read_callgrind_totals (Driver     *driver,
                       const char *pid)
{
  g_autofree char *base = g_strdup_printf ("cg.%s", pid);
  g_autofree char *last = g_strdup_printf ("cg.%s.1", pid);
  g_autofree char *path = g_build_filename (driver->callgrind_dir, last, NULL);
  g_autofree char *final = g_build_filename (driver->callgrind_dir, base, NULL);
  g_autofree char *contents = NULL;
  const char *totals;
  double value = NAN;

  if (g_file_get_contents (path, &contents, NULL, NULL)
      && (totals = strstr (contents, "\ntotals:")) != NULL)
    value = g_ascii_strtod (totals + strlen ("\ntotals:"), NULL);

  g_unlink (path);
  g_unlink (final);

  return value;
}

/* Instructions of @command, divided by @per, for each of @clients, each
 * in a worker under callgrind that runs @warm_up first, uncounted. Load on
 * the machine does not change them, although they leave out the kernel,
 * the caches and waiting. */
static void
count_instructions (Driver            *driver,
                    guint              setup_index,
                    const char *const *clients,
                    const char        *test,
                    const char        *warm_up,
                    const char        *command,
                    double             per)
{
  const Setup *setup = &setups[setup_index];
  g_autofree char *valgrind = g_find_program_in_path ("valgrind");
  g_autofree char *pattern = g_build_filename (driver->callgrind_dir, "cg.%p", NULL);
  g_autofree char *out_file = g_strconcat ("--callgrind-out-file=", pattern, NULL);
  g_autofree char *counted = g_strconcat ("count ", command, NULL);
  const char *wrapper[] = {
    valgrind, "-q", "--tool=callgrind", "--instr-atstart=no", out_file, NULL,
  };
  guint i;

  for (i = 0; valgrind != NULL && clients[i] != NULL; i++)
    {
      g_autoptr(GHashTable) warmed = NULL;
      g_autoptr(GHashTable) reported = NULL;
      g_autoptr(GError) error = NULL;
      const char *pid;
      Worker *worker;

      if (!setup->glib && bench_client_find (clients[i])->glib_networking)
        continue;

      worker = worker_start (driver, setup, driver->ports[setup_index], clients[i],
                             wrapper);
      if (worker == NULL)
        continue;

      pid = g_subprocess_get_identifier (worker->process);
      warmed = worker_ask (worker, warm_up, &error);
      if (warmed != NULL)
        reported = worker_ask (worker, counted, &error);
      if (reported == NULL)
        report_failure (driver, counted, clients[i], error);
      else
        set_value (values_of (driver, test, setup->id, clients[i], "instructions"),
                   0, read_callgrind_totals (driver, pid) / per);
      worker_free (worker);
    }
}

/* Many short batches, so that every client meets the same load. */
static void
measure_handshakes (Driver *driver)
{
  Settings *settings = driver->settings;
  g_autofree char *seconds = format_seconds (settings->seconds);
  g_autofree char *command = g_strconcat ("handshakes ", seconds, NULL);
  guint k;
  int b;

  for (k = 0; k < G_N_ELEMENTS (setups); k++)
    {
      g_autoptr(GPtrArray) workers = start_workers (driver, k, handshake_clients);

      g_printerr ("Handshakes, %s: %d batches\n", setups[k].label,
                  settings->batches);
      run_batch (driver, NULL, &setups[k], workers, command, 0);
      for (b = 0; b < settings->batches; b++)
        run_batch (driver, "handshake", &setups[k], workers, command, b);
      g_clear_pointer (&workers, g_ptr_array_unref);

      if (settings->instructions)
        {
          g_printerr ("Instructions per handshake, %s\n", setups[k].label);
          count_instructions (driver, k, handshake_clients, "handshake",
                              "connections 2",
                              "connections " G_STRINGIFY (COUNTED_HANDSHAKES),
                              COUNTED_HANDSHAKES * 1e6);
        }
    }
}

static char *
bulk_command (const char *direction,
              guint64     mib)
{
  return g_strdup_printf ("%s %" G_GUINT64_FORMAT, direction, mib * 1048576);
}

static void
measure_bulk (Driver *driver)
{
  Settings *settings = driver->settings;
  guint64 warm_up_mib = MIN (settings->bulk_mib, 4);
  guint64 counted_mib = MIN (settings->bulk_mib, COUNTED_MIB);
  g_autoptr(GPtrArray) workers = start_workers (driver, 0, bulk_clients);
  g_autofree char *download = bulk_command ("download", settings->bulk_mib);
  g_autofree char *upload = bulk_command ("upload", settings->bulk_mib);
  g_autofree char *download_warm_up = bulk_command ("download", warm_up_mib);
  g_autofree char *upload_warm_up = bulk_command ("upload", warm_up_mib);
  g_autofree char *download_counted = bulk_command ("download", counted_mib);
  g_autofree char *upload_counted = bulk_command ("upload", counted_mib);
  int r;

  run_batch (driver, NULL, &setups[0], workers, download_warm_up, 0);
  run_batch (driver, NULL, &setups[0], workers, upload_warm_up, 0);
  for (r = 0; r < settings->rounds; r++)
    {
      g_printerr ("Bulk transfers, round %d of %d\n", r + 1, settings->rounds);
      run_batch (driver, "download", &setups[0], workers, download, r);
      run_batch (driver, "upload", &setups[0], workers, upload, r);
    }
  g_clear_pointer (&workers, g_ptr_array_unref);

  if (settings->instructions)
    {
      g_printerr ("Instructions per mebibyte\n");
      count_instructions (driver, 0, bulk_clients, "download", download_warm_up,
                          download_counted, counted_mib * 1e6);
      count_instructions (driver, 0, bulk_clients, "upload", upload_warm_up,
                          upload_counted, counted_mib * 1e6);
    }
}

/* Memory and concurrency need a fresh process for every measurement. */
static void
measure_once (Driver            *driver,
              const char        *test,
              const char *const *clients,
              int                round)
{
  guint n = g_strv_length ((char **) clients);
  guint i;

  for (i = 0; i < n; i++)
    {
      const char *client = clients[(i + round) % n];
      g_autoptr(GPtrArray) args = client_args (driver, test, &setups[0],
                                               driver->ports[0], client);
      g_autoptr(GHashTable) reported = NULL;
      g_autoptr(GError) error = NULL;

      reported = run_child (driver, args, &error);
      if (reported == NULL)
        report_failure (driver, test, client, error);
      else if (note_first_report (driver, &setups[0], client, reported))
        store (driver, test, setups[0].id, client, round, reported);
    }
}

static void
measure_verdict (Driver *driver,
                 int     round)
{
  g_autoptr(GPtrArray) args = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GHashTable) reported = NULL;
  g_autoptr(GError) error = NULL;

  g_ptr_array_add (args, g_strdup ("--child"));
  g_ptr_array_add (args, g_strdup ("verdict"));
  g_ptr_array_add (args, g_strdup ("--seconds"));
  g_ptr_array_add (args, format_seconds (driver->settings->verdict_seconds));

  reported = run_child (driver, args, &error);
  if (reported == NULL)
    report_failure (driver, "verdict", "-", error);
  else
    store (driver, "verdict", "-", "-", round, reported);
}

static void
measure_all (Driver *driver)
{
  int rounds = driver->settings->rounds;
  int round;

  if (wanted (driver, "handshake"))
    measure_handshakes (driver);

  if (wanted (driver, "bulk"))
    measure_bulk (driver);

  for (round = 0; round < rounds && wanted (driver, "verdict"); round++)
    {
      g_printerr ("Verdicts, round %d of %d\n", round + 1, rounds);
      measure_verdict (driver, round);
    }

  for (round = 0; round < rounds && wanted (driver, "memory"); round++)
    {
      g_printerr ("Memory, round %d of %d\n", round + 1, rounds);
      measure_once (driver, "memory", memory_clients, round);
    }

  for (round = 0; round < rounds && wanted (driver, "concurrency"); round++)
    {
      g_printerr ("Concurrent handshakes, round %d of %d\n", round + 1, rounds);
      measure_once (driver, "concurrency", concurrency_clients, round);
    }
}

/* The server ------------------------------------------------------------- */

static GSubprocess *
start_server (Driver  *driver,
              GError **error)
{
  g_autofree char *directory = g_path_get_dirname (driver->self_path);
  g_autofree char *server_path =
    g_build_filename (directory, "pintls-bench-server", NULL);
  g_autoptr(GPtrArray) args = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GSubprocess) server = NULL;
  g_autoptr(GDataInputStream) output = NULL;
  g_autofree char *line = NULL;
  g_auto(GStrv) words = NULL;
  guint i;

  g_ptr_array_add (args, g_strdup (server_path));
  for (i = 0; i < G_N_ELEMENTS (setups); i++)
    {
      g_auto(GStrv) files = g_strsplit (setups[i].serve, ",", -1);
      guint j;

      for (j = 0; files[j] != NULL; j++)
        {
          char *path = g_build_filename (driver->settings->data_dir, files[j], NULL);

          g_free (files[j]);
          files[j] = path;
        }
      g_ptr_array_add (args, g_strdup ("--serve"));
      g_ptr_array_add (args, g_strjoinv (",", files));
    }
  g_ptr_array_add (args, NULL);

  server = g_subprocess_newv (
    (const char *const *) args->pdata,
    G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE, error);
  if (server == NULL)
    return NULL;

  output = g_data_input_stream_new (g_subprocess_get_stdout_pipe (server));
  line = g_data_input_stream_read_line (output, NULL, NULL, error);
  if (line == NULL && error != NULL && *error == NULL)
    g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_FAILED,
                         "it stopped before listening");
  if (line == NULL)
    return NULL;

  words = g_strsplit (line, " ", -1);
  if (g_strv_length (words) != G_N_ELEMENTS (setups) + 1
      || !g_str_equal (words[0], "ports"))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "The server said “%s”",
                   line);
      return NULL;
    }
  for (i = 0; i < G_N_ELEMENTS (setups); i++)
    driver->ports[i] = g_ascii_strtoull (words[i + 1], NULL, 10);

  return g_steal_pointer (&server);
}

static void
stop_server (GSubprocess *server)
{
  g_output_stream_close (g_subprocess_get_stdin_pipe (server), NULL, NULL);
  g_subprocess_wait (server, NULL, NULL);
}

/* The machine ------------------------------------------------------------ */

static char *
cpu_model (void)
{
  g_autofree char *cpuinfo = NULL;
  const char *line;

  if (!g_file_get_contents ("/proc/cpuinfo", &cpuinfo, NULL, NULL))
    return g_strdup ("unknown CPU");

  line = strstr (cpuinfo, "model name");
  line = line != NULL ? strchr (line, ':') : NULL;
  if (line == NULL)
    return g_strdup ("unknown CPU");

  return g_strstrip (g_strndup (line + 1, strcspn (line + 1, "\n")));
}

static char *
load_average (void)
{
  g_autofree char *loadavg = NULL;
  g_auto(GStrv) fields = NULL;

  if (!g_file_get_contents ("/proc/loadavg", &loadavg, NULL, NULL))
    return g_strdup ("unknown");

  fields = g_strsplit (loadavg, " ", 4);
  return g_strv_length (fields) >= 3
             ? g_strdup_printf ("%s %s %s", fields[0], fields[1], fields[2])
             : g_strdup ("unknown");
}

static char *
package_version (const char *package)
{
  const char *argv[] = { "dpkg-query", "-W", "-f", "${Version}", package, NULL };
  g_autofree char *output = NULL;
  int status;

  if (!g_spawn_sync (NULL, (char **) argv, NULL,
                     G_SPAWN_SEARCH_PATH | G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL,
                     &output, NULL, &status, NULL)
      || !g_spawn_check_wait_status (status, NULL) || output[0] == '\0')
    return g_strdup ("unknown");

  return g_steal_pointer (&output);
}

static void
print_machine (Driver *driver)
{
  g_autofree char *cpu = cpu_model ();
  g_autofree char *load_after = load_average ();
  g_autofree char *glib_networking = package_version ("glib-networking");
  g_autoptr(GDateTime) now = g_date_time_new_now_local ();
  g_autofree char *date = g_date_time_format (now, "%Y-%m-%d %H:%M");
  struct utsname system;

  uname (&system);
  printf ("Machine: %s, %u cores, %s %s; load average %s before, %s after.  \n", cpu,
          g_get_num_processors (), system.sysname, system.release,
          driver->load_before, load_after);
  printf ("Software: pintls %s (%s build), GnuTLS %s, GLib %u.%u.%u, "
          "glib-networking %s.  \n",
          PIN_TLS_VERSION_S, BENCH_BUILD_TYPE, gnutls_check_version (NULL),
          glib_major_version, glib_minor_version, glib_micro_version,
          glib_networking);
  printf ("Run: %s; %d batches of %.2f s of handshakes per client and "
          "certificate, %d rounds of everything else. Each figure is the "
          "median of the batches or rounds, each ratio the median of the ratios "
          "within one.\n\n",
          date, driver->settings->batches, driver->settings->seconds,
          driver->settings->rounds);
}

static void
print_sessions (Driver *driver)
{
  guint k;

  for (k = 0; k < G_N_ELEMENTS (setups); k++)
    {
      GHashTable *by_session = g_hash_table_lookup (driver->sessions, setups[k].id);
      GHashTableIter iter;
      gpointer session;
      gpointer clients;

      if (by_session == NULL)
        continue;

      g_hash_table_iter_init (&iter, by_session);
      while (g_hash_table_iter_next (&iter, &session, &clients))
        {
          GPtrArray *names = clients;
          g_autofree char *list = NULL;

          g_ptr_array_add (names, NULL);
          list = g_strjoinv (", ", (char **) names->pdata);
          g_ptr_array_remove_index (names, names->len - 1);

          if (g_hash_table_size (by_session) == 1)
            printf ("Session with %s: %s, for every client.  \n", setups[k].label,
                    (char *) session);
          else
            printf ("Session with %s: %s, for %s.  \n", setups[k].label,
                    (char *) session, list);
        }
    }
  printf ("\n");
}

/* Tables ---------------------------------------------------------------- */

typedef struct
{
  const char *test;
  const char *setup_id;
  const char *metric;
  const char *heading;
  int decimals;
  gboolean ratios; /* also the ratios to plain GnuTLS and glib-networking */
} Column;

static const char *
client_label (const char *id)
{
  return bench_client_find (id)->label;
}

/* glib-networking in the same mode as @client, database as a property. */
static const char *
glib_reference (const char *client)
{
  return bench_client_find (client)->mode == BENCH_MODE_ASYNC ? "glib-async"
                                                              : "glib-sync";
}

static void
append_number (GString *row,
               double   value,
               int      decimals)
{
  if (isnan (value))
    g_string_append (row, " n/a |");
  else
    g_string_append_printf (row, " %.*f |", decimals, value);
}

static void
print_client_table (Driver            *driver,
                    const char        *title,
                    const char *const *clients,
                    const Column      *columns,
                    guint              n_columns)
{
  gboolean with_gnutls = g_strv_contains (clients, "gnutls");
  g_autoptr(GString) header = g_string_new ("| Client |");
  g_autoptr(GString) rule = g_string_new ("|---|");
  guint c;
  guint i;

  for (c = 0; c < n_columns; c++)
    {
      g_string_append_printf (header, " %s |", columns[c].heading);
      g_string_append (rule, "--:|");
      if (columns[c].ratios && with_gnutls)
        g_string_append (header, " × GnuTLS |");
      if (columns[c].ratios)
        g_string_append (header, " × glib |");
      if (columns[c].ratios)
        g_string_append (rule, with_gnutls ? "--:|--:|" : "--:|");
    }
  printf ("### %s\n\n%s\n%s\n", title, header->str, rule->str);

  for (i = 0; clients[i] != NULL; i++)
    {
      g_autoptr(GString) row = g_string_new (NULL);

      g_string_append_printf (row, "| %s |", client_label (clients[i]));
      for (c = 0; c < n_columns; c++)
        {
          const Column *column = &columns[c];

          append_number (row,
                         median_of (driver, column->test, column->setup_id,
                                    clients[i], column->metric),
                         column->decimals);
          if (column->ratios && with_gnutls)
            append_number (row,
                           median_ratio (driver, column->test, column->setup_id,
                                         clients[i], "gnutls", column->metric),
                           2);
          if (column->ratios)
            append_number (row,
                           median_ratio (driver, column->test, column->setup_id,
                                         clients[i], glib_reference (clients[i]),
                                         column->metric),
                           2);
        }
      printf ("%s\n", row->str);
    }
  printf ("\n");
}

static void
print_handshakes (Driver *driver)
{
  guint k;

  for (k = 0; k < G_N_ELEMENTS (setups); k++)
    {
      g_autofree char *title = g_strdup_printf (
        "Full handshakes, one connection at a time: %s", setups[k].label);
      const Column columns[] = {
        { "handshake", setups[k].id, "rate", "handshakes/s", 0, TRUE },
        { "handshake", setups[k].id, "cpu_us", "CPU µs each", 0, FALSE },
        { "handshake", setups[k].id, "instructions", "M instr. each", 2, TRUE },
      };
      guint n_columns = G_N_ELEMENTS (columns);

      if (!driver->settings->instructions)
        n_columns--;
      print_client_table (driver, title, handshake_clients, columns, n_columns);
    }
  printf ("CPU µs each: the client process's CPU time per handshake, all its "
          "threads.%s glib-networking cannot pin a leaf that comes with its issuer: "
          "GnuTLS trusts an end-entity certificate of a trust list only when it "
          "arrives alone.\n\n",
          driver->settings->instructions
            ? " M instr. each: millions of instructions the client executes per "
          "handshake, all threads, counted by callgrind over "
          G_STRINGIFY (COUNTED_HANDSHAKES) " handshakes; the kernel is left out."
            : "");
}

static void
print_bulk (Driver *driver)
{
  g_autofree char *title = g_strdup_printf (
    "Bulk throughput, %d MiB over one connection", driver->settings->bulk_mib);
  static const Column columns[] = {
    { "download", "ecdsa", "mib_per_s", "download MiB/s", 0, TRUE },
    { "download", "ecdsa", "cpu_s_per_gib", "CPU s/GiB", 2, FALSE },
    { "upload", "ecdsa", "mib_per_s", "upload MiB/s", 0, TRUE },
    { "upload", "ecdsa", "cpu_s_per_gib", "CPU s/GiB", 2, FALSE },
  };
  static const Column counted[] = {
    { "download", "ecdsa", "instructions", "download, M instr./MiB", 2, TRUE },
    { "upload", "ecdsa", "instructions", "upload, M instr./MiB", 2, TRUE },
  };

  print_client_table (driver, title, bulk_clients, columns, G_N_ELEMENTS (columns));
  if (driver->settings->instructions)
    {
      g_autofree char *counted_title = g_strdup_printf (
        "Bulk transfers, instructions per mebibyte (callgrind, %d MiB each way)",
        MIN (driver->settings->bulk_mib, COUNTED_MIB));

      print_client_table (driver, counted_title, bulk_clients, counted,
                          G_N_ELEMENTS (counted));
    }
}

static void
print_memory (Driver *driver)
{
  g_autofree char *title =
    g_strdup_printf ("Resident memory per idle connection, %d connections open",
                     driver->settings->connections);
  static const Column columns[] = {
    { "memory", "ecdsa", "kib_per_connection", "KiB", 1, TRUE },
  };

  print_client_table (driver, title, memory_clients, columns,
                      G_N_ELEMENTS (columns));
}

static void
print_concurrency (Driver *driver)
{
  g_autofree char *title = g_strdup_printf (
    "%d concurrent handshakes in one main loop", driver->settings->concurrent);
  static const Column columns[] = {
    { "concurrency", "ecdsa", "seconds", "wall s", 3, TRUE },
    { "concurrency", "ecdsa", "peak_mib", "peak MiB", 1, TRUE },
    { "concurrency", "ecdsa", "cpu_s", "CPU s", 3, FALSE },
  };

  print_client_table (driver, title, concurrency_clients, columns,
                      G_N_ELEMENTS (columns));
  printf ("peak MiB: the highest resident memory above what the process held "
          "before.\n\n");
}

static char *
verdict_metric (guint       pins,
                guint       length,
                const char *match)
{
  return g_strdup_printf ("verdict.%u.%u.%s", pins, length, match);
}

/* The largest ratio, over every case, of the time with the most pins to
 * the time with one. */
static double
print_verdict (Driver *driver)
{
  g_autoptr(GString) header = g_string_new ("| Pins |");
  g_autoptr(GString) rule = g_string_new ("|--:|");
  g_autoptr(GString) flatness = g_string_new (NULL);
  guint last = G_N_ELEMENTS (verdict_pin_counts) - 1;
  double worst = NAN;
  guint p;
  guint c;

  for (c = 0; c < G_N_ELEMENTS (verdict_cases); c++)
    {
      g_string_append_printf (header, " %s |", verdict_cases[c].heading);
      g_string_append (rule, "--:|");
    }
  printf ("### The verdict alone, µs per decision\n\n%s\n%s\n", header->str,
          rule->str);

  g_string_append_printf (flatness, "| %u ÷ %u |", verdict_pin_counts[last],
                          verdict_pin_counts[0]);
  for (p = 0; p < G_N_ELEMENTS (verdict_pin_counts) && wanted (driver, "verdict");
       p++)
    {
      g_autoptr(GString) row = g_string_new (NULL);

      g_string_append_printf (row, "| %u |", verdict_pin_counts[p]);
      for (c = 0; c < G_N_ELEMENTS (verdict_cases); c++)
        {
          g_autofree char *metric =
            verdict_metric (verdict_pin_counts[p], verdict_cases[c].length,
                            verdict_cases[c].match);
          g_autofree char *one =
            verdict_metric (verdict_pin_counts[0], verdict_cases[c].length,
                            verdict_cases[c].match);

          append_number (row, median_of (driver, "verdict", "-", "-", metric), 1);
          if (p == last)
            {
              GArray *most = values_of (driver, "verdict", "-", "-", metric);
              GArray *least = values_of (driver, "verdict", "-", "-", one);
              g_autofree double *ratios = g_new (double, most->len);
              double ratio;
              guint r;

              for (r = 0; r < most->len; r++)
                ratios[r] = g_array_index (most, double, r)
                            / g_array_index (least, double, r);
              ratio = bench_median (ratios, most->len);
              append_number (flatness, ratio, 2);
              if (isnan (worst) || ratio > worst)
                worst = ratio;
            }
        }
      printf ("%s\n", row->str);
    }
  printf ("%s\n\n", flatness->str);
  printf (
    "The pin matches the leaf, the certificate at the top of the chain (reached "
    "through a signature check at each step), or nothing. ECDSA P-256 chain made "
    "for the run; pin_tls_verify_chain() in PIN_ONLY mode.\n\n");

  return worst;
}

static void
print_target (const char *what,
              double      value,
              gboolean    higher_is_better,
              double      target)
{
  gboolean met = higher_is_better ? value >= target : value <= target;

  printf ("- %s: %.2f, target %s %.2f: %s\n", what, value,
          higher_is_better ? "≥" : "≤", target,
          isnan (value) ? "not measured"
          : met ? "met"
                        : "missed");
}

static void
print_targets (Driver *driver,
               double  verdict_flatness)
{
  static const char *const pintls[] = { "pintls-sync", "pintls-async" };
  guint i;
  guint k;

  printf ("### Targets\n\n");
  for (i = 0; i < G_N_ELEMENTS (pintls); i++)
    {
      for (k = 0; k < G_N_ELEMENTS (setups) && wanted (driver, "handshake"); k++)
        {
          g_autofree char *what = g_strdup_printf ("%s handshakes, %s, × GnuTLS",
                                                   pintls[i], setups[k].label);

          print_target (what,
                        median_ratio (driver, "handshake", setups[k].id, pintls[i],
                                      "gnutls", "rate"),
                        TRUE, 0.95);
        }
    }
  for (i = 0; i < G_N_ELEMENTS (pintls) && driver->settings->instructions; i++)
    {
      for (k = 0; k < G_N_ELEMENTS (setups) && wanted (driver, "handshake"); k++)
        {
          g_autofree char *what =
            g_strdup_printf ("%s instructions per handshake, %s, × GnuTLS",
                             pintls[i], setups[k].label);

          /* The handshake rate target, 0.95, as a cost: 1 / 0.95. */
          print_target (what,
                        median_ratio (driver, "handshake", setups[k].id, pintls[i],
                                      "gnutls", "instructions"),
                        FALSE, 1.05);
        }
    }
  for (i = 0; i < G_N_ELEMENTS (pintls) && wanted (driver, "bulk"); i++)
    {
      g_autofree char *down = g_strdup_printf ("%s download × GnuTLS", pintls[i]);
      g_autofree char *up = g_strdup_printf ("%s upload × GnuTLS", pintls[i]);

      print_target (down,
                    median_ratio (driver, "download", "ecdsa", pintls[i], "gnutls",
                                  "mib_per_s"),
                    TRUE, 0.95);
      print_target (
        up,
        median_ratio (driver, "upload", "ecdsa", pintls[i], "gnutls", "mib_per_s"),
        TRUE, 0.95);
    }
  if (wanted (driver, "verdict"))
    print_target ("verdict, most pins ÷ one pin, worst case", verdict_flatness,
                  FALSE, 1.5);
  if (wanted (driver, "memory"))
    print_target ("memory per connection, pintls × glib-networking",
                  median_ratio (driver, "memory", "ecdsa", "pintls-sync",
                                "glib-sync", "kib_per_connection"),
                  FALSE, 1.0);
  printf ("\n");
}

static void
print_unavailable (Driver *driver)
{
  GHashTableIter iter;
  gpointer client;
  gpointer reason;

  g_hash_table_iter_init (&iter, driver->unavailable);
  while (g_hash_table_iter_next (&iter, &client, &reason))
    printf ("Not measured: %s: %s.\n", client_label (client), (char *) reason);
  if (g_hash_table_size (driver->unavailable) > 0)
    printf ("\n");
}

static void
print_results (Driver *driver)
{
  double verdict_flatness = NAN;

  print_machine (driver);
  print_sessions (driver);
  print_unavailable (driver);
  if (wanted (driver, "handshake"))
    print_handshakes (driver);
  if (wanted (driver, "bulk"))
    print_bulk (driver);
  if (wanted (driver, "verdict"))
    verdict_flatness = print_verdict (driver);
  if (wanted (driver, "memory"))
    print_memory (driver);
  if (wanted (driver, "concurrency"))
    print_concurrency (driver);
  printf ("× GnuTLS: the ratio to the plain GnuTLS client; × glib: to "
          "glib-networking in the "
          "same mode (sync or async), database given as a property.\n\n");
  print_targets (driver, verdict_flatness);
}

/* Counts a failure for a figure that should be there and is not: a child
 * that ran but did not report it is as broken as one that failed. */
static void
expect_figure (Driver     *driver,
               const char *test,
               const char *setup_id,
               const char *client,
               const char *metric)
{
  if (client != NULL && g_hash_table_contains (driver->unavailable, client))
    return;

  if (isnan (median_of (driver, test, setup_id, client ? client : "-", metric)))
    {
      g_printerr ("  no figure for %s, %s, %s, %s\n", test, setup_id,
                  client ? client : "-", metric);
      driver->failures++;
    }
}

static void
expect_client_figures (Driver            *driver,
                       const char        *test,
                       const char *const *clients,
                       guint              setup_index,
                       const char        *metric)
{
  const Setup *setup = &setups[setup_index];
  guint i;

  for (i = 0; clients[i] != NULL; i++)
    {
      if (setup->glib || !bench_client_find (clients[i])->glib_networking)
        expect_figure (driver, test, setup->id, clients[i], metric);
    }
}

static void
check_complete (Driver *driver)
{
  gboolean instructions = driver->settings->instructions;
  guint k;
  guint p;
  guint c;

  for (k = 0; k < G_N_ELEMENTS (setups) && wanted (driver, "handshake"); k++)
    {
      expect_client_figures (driver, "handshake", handshake_clients, k, "rate");
      if (instructions)
        expect_client_figures (driver, "handshake", handshake_clients, k,
                               "instructions");
    }
  if (wanted (driver, "bulk"))
    {
      expect_client_figures (driver, "download", bulk_clients, 0, "mib_per_s");
      expect_client_figures (driver, "upload", bulk_clients, 0, "mib_per_s");
    }
  for (p = 0; p < G_N_ELEMENTS (verdict_pin_counts) && wanted (driver, "verdict");
       p++)
    {
      for (c = 0; c < G_N_ELEMENTS (verdict_cases); c++)
        {
          g_autofree char *metric = verdict_metric (verdict_pin_counts[p],
                                                    verdict_cases[c].length,
                                                    verdict_cases[c].match);

          expect_figure (driver, "verdict", "-", NULL, metric);
        }
    }
  if (wanted (driver, "memory"))
    expect_client_figures (driver, "memory", memory_clients, 0,
                           "kib_per_connection");
  if (wanted (driver, "concurrency"))
    expect_client_figures (driver, "concurrency", concurrency_clients, 0, "seconds");
}

static int
run_driver (Settings *settings)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GSubprocess) server = NULL;
  Driver driver = { settings };

  driver.self_path = g_file_read_link ("/proc/self/exe", &error);
  if (driver.self_path == NULL)
    {
      g_printerr ("%s\n", error->message);
      return 1;
    }

  driver.results = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                          (GDestroyNotify) g_array_unref);
  driver.sessions = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                           (GDestroyNotify) g_hash_table_unref);
  driver.unavailable =
    g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  driver.load_before = load_average ();

  if (settings->instructions)
    {
      g_autofree char *valgrind = g_find_program_in_path ("valgrind");

      driver.callgrind_dir = g_dir_make_tmp ("pintls-bench-XXXXXX", &error);
      if (valgrind == NULL || driver.callgrind_dir == NULL)
        {
          g_printerr ("--instructions needs valgrind and a temporary "
                      "directory%s%s\n", error ? ": " : "",
                      error ? error->message : "");
          return 1;
        }
    }

  server = start_server (&driver, &error);
  if (server == NULL)
    {
      g_printerr ("Cannot start the server: %s\n", error->message);
      return 1;
    }

  measure_all (&driver);
  check_complete (&driver);
  stop_server (server);
  print_results (&driver);

  if (driver.callgrind_dir != NULL)
    g_rmdir (driver.callgrind_dir);

  if (driver.failures > 0)
    g_printerr ("%u measurements failed\n", driver.failures);

  g_hash_table_unref (driver.results);
  g_hash_table_unref (driver.sessions);
  g_hash_table_unref (driver.unavailable);
  g_free (driver.load_before);
  g_free (driver.self_path);
  g_free (driver.callgrind_dir);

  return driver.failures > 0 ? 1 : 0;
}

/* Options --------------------------------------------------------------- */

static void
apply_defaults (Settings *settings)
{
  gboolean quick = settings->quick;
  char *data_dir;

  if (settings->rounds <= 0)
    settings->rounds = quick ? 1 : DEFAULT_ROUNDS;
  if (settings->batches <= 0)
    settings->batches = quick ? 1 : DEFAULT_BATCHES;
  if (settings->seconds < 0)
    settings->seconds = quick ? 0 : DEFAULT_SECONDS;
  if (settings->bulk_mib <= 0)
    settings->bulk_mib = quick ? 1 : DEFAULT_BULK_MIB;
  if (settings->connections <= 0)
    settings->connections = quick ? 4 : DEFAULT_CONNECTIONS;
  if (settings->concurrent <= 0)
    settings->concurrent = quick ? 4 : DEFAULT_CONCURRENT;
  if (settings->verdict_seconds < 0)
    settings->verdict_seconds = quick ? 0 : DEFAULT_VERDICT_SECONDS;
  /* glib-networking's file database wants an absolute path. */
  data_dir = g_canonicalize_filename (settings->data_dir ? settings->data_dir
                                                         : BENCH_DATA_DIR, NULL);
  g_free (settings->data_dir);
  settings->data_dir = data_dir;
}

static gboolean
parse_options (int               *argc,
               char            ***argv,
               Settings          *settings,
               BenchChildOptions *child,
               GError           **error)
{
  int port = 0;
  GOptionEntry entries[] = {
    { "quick", 0, 0, G_OPTION_ARG_NONE, &settings->quick,
      "One short round of everything, to check that it all runs", NULL },
    { "rounds", 0, 0, G_OPTION_ARG_INT, &settings->rounds,
      "Rounds of the bulk, verdict, memory and concurrency measurements (5)", "N" },
    { "batches", 0, 0, G_OPTION_ARG_INT, &settings->batches,
      "Batches of handshakes per client and certificate (30)", "N" },
    { "seconds", 0, 0, G_OPTION_ARG_DOUBLE, &settings->seconds,
      "Length of a batch of handshakes (0.1)", "S" },
    { "bulk-mib", 0, 0, G_OPTION_ARG_INT, &settings->bulk_mib,
      "Mebibytes per bulk transfer (256)", "N" },
    { "connections", 0, 0, G_OPTION_ARG_INT, &settings->connections,
      "Idle connections open for the memory measurement (1000)", "N" },
    { "concurrent", 0, 0, G_OPTION_ARG_INT, &settings->concurrent,
      "Concurrent handshakes (500)", "N" },
    { "verdict-seconds", 0, 0, G_OPTION_ARG_DOUBLE, &settings->verdict_seconds,
      "How long to measure each verdict case (0.1)", "S" },
    { "instructions", 0, 0, G_OPTION_ARG_NONE, &settings->instructions,
      "Also count instructions, with valgrind's callgrind (slow)", NULL },
    { "only", 0, 0, G_OPTION_ARG_STRING, &settings->only,
      "Only these, comma-separated: handshake, bulk, verdict, memory, concurrency",
      "LIST" },
    { "data-dir", 0, 0, G_OPTION_ARG_FILENAME, &settings->data_dir,
      "The certificates (data/certs of the source tree)", "DIR" },
    /* What the driver tells its children. */
    { "child", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_STRING, &child->test,
      NULL, NULL },
    { "client", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_STRING, &child->client_id,
      NULL, NULL },
    { "port", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_INT, &port, NULL, NULL },
    { "leaf", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_FILENAME, &child->leaf_path,
      NULL, NULL },
    { NULL },
  };
  g_autoptr(GOptionContext) context =
    g_option_context_new ("- pinned TLS connections against glib-networking "
                          "and GnuTLS");

  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, argc, argv, error))
    return FALSE;

  child->port = port;
  child->seconds = MAX (settings->seconds, 0);
  child->connections = MAX (settings->connections, 1);

  return TRUE;
}

int
main (int   argc,
      char *argv[])
{
  Settings settings = { FALSE, 0, 0, -1, 0, 0, 0, -1, FALSE, NULL, NULL };
  BenchChildOptions child = { NULL };
  g_autoptr(GError) error = NULL;
  int status = 2;

  if (!parse_options (&argc, &argv, &settings, &child, &error))
    {
      g_printerr ("%s\n", error->message);
    }
  else if (child.test != NULL)
    {
      bench_raise_file_limit ();
      status = bench_child_run (&child);
    }
  else
    {
      bench_raise_file_limit ();
      apply_defaults (&settings);
      status = run_driver (&settings);
    }

  g_free (child.test);
  g_free (child.client_id);
  g_free (child.leaf_path);
  g_free (settings.only);
  g_free (settings.data_dir);

  return status;
}
