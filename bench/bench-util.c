/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Clocks, memory figures and result lines for pintls-bench. */

#include "bench.h"

#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* A thousand connections need a thousand descriptors, and more. */
void
bench_raise_file_limit (void)
{
  struct rlimit limit;

  if (getrlimit (RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max)
    {
      limit.rlim_cur = limit.rlim_max;
      setrlimit (RLIMIT_NOFILE, &limit);
    }
}

double
bench_now (void)
{
  return g_get_monotonic_time () / (double) G_USEC_PER_SEC;
}

/* User and system time of the whole process, all threads included: the
 * cost of a client whatever threads it uses. */
double
bench_cpu_seconds (void)
{
  struct rusage usage;

  getrusage (RUSAGE_SELF, &usage);

  return usage.ru_utime.tv_sec + usage.ru_utime.tv_usec / 1e6 + usage.ru_stime.tv_sec
         + usage.ru_stime.tv_usec / 1e6;
}

gsize
bench_rss_kib (void)
{
  g_autofree char *statm = NULL;
  unsigned long size = 0;
  unsigned long resident = 0;

  if (!g_file_get_contents ("/proc/self/statm", &statm, NULL, NULL)
      || sscanf (statm, "%lu %lu", &size, &resident) != 2)
    return 0;

  return resident * (sysconf (_SC_PAGESIZE) / 1024);
}

/* VmHWM: the highest resident size since start, or since the last reset. */
gsize
bench_peak_rss_kib (void)
{
  g_autofree char *status = NULL;
  const char *line;

  if (!g_file_get_contents ("/proc/self/status", &status, NULL, NULL))
    return 0;

  line = strstr (status, "\nVmHWM:");
  if (line == NULL)
    return 0;

  return g_ascii_strtoull (line + strlen ("\nVmHWM:"), NULL, 10);
}

/* Writing 5 to clear_refs resets VmHWM; it must be a plain write, as
 * /proc takes no replacement file. */
gboolean
bench_reset_peak_rss (void)
{
  int fd = open ("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
  gboolean done;

  if (fd < 0)
    return FALSE;

  done = write (fd, "5", 1) == 1;
  close (fd);

  return done;
}

/* One result, as a "key=value" line on standard output, which the driver
 * reads. */
void
bench_report (const char *key,
              const char *format,
              ...)
{
  g_autofree char *value = NULL;
  va_list args;

  va_start (args, format);
  value = g_strdup_vprintf (format, args);
  va_end (args);

  printf ("%s=%s\n", key, value);
  fflush (stdout);
}

static int
compare_doubles (gconstpointer a,
                 gconstpointer b)
{
  double x = *(const double *) a;
  double y = *(const double *) b;

  return x < y ? -1 : x > y;
}

/* The median of the values that are numbers; NAN if none is. */
double
bench_median (const double *values,
              guint         n_values)
{
  g_autofree double *sorted = g_new (double, MAX (n_values, 1));
  guint n = 0;
  guint i;

  for (i = 0; i < n_values; i++)
    {
      if (!isnan (values[i]))
        sorted[n++] = values[i];
    }
  if (n == 0)
    return NAN;

  qsort (sorted, n, sizeof (double), compare_doubles);

  return n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
}
