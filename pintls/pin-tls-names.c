/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Server names as pintls compares and sends them, and text quoted back to
 * users in error messages. */

#include "pin-tls-private.h"

#include <string.h>

#define MAX_LABEL_LENGTH 63
#define MAX_NAME_LENGTH 253
#define MAX_QUOTED_CHARS 64

static gboolean
invalid_name (const char *name,
              const char *reason,
              GError    **error)
{
  g_autofree char *shown = _pin_tls_describe_text (name);

  g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
               "Invalid server name %s: %s", shown, reason);
  return FALSE;
}

static gboolean
check_labels (const char *original,
              const char *ascii,
              GError    **error)
{
  g_auto(GStrv) labels = g_strsplit (ascii, ".", -1);
  guint i;

  if (strlen (ascii) > MAX_NAME_LENGTH)
    return invalid_name (original, "it is longer than 253 characters", error);

  for (i = 0; labels[i] != NULL; i++)
    {
      const char *c;

      if (labels[i][0] == '\0')
        return invalid_name (original, "it has an empty label", error);
      if (strlen (labels[i]) > MAX_LABEL_LENGTH)
        return invalid_name (original, "a label is longer than 63 characters",
                             error);

      for (c = labels[i]; *c != '\0'; c++)
        {
          if (!g_ascii_isalnum (*c) && *c != '-' && *c != '_')
            return invalid_name (original, "it holds a character that no "
                                 "host name may hold", error);
        }
    }

  return TRUE;
}

/* Whether @zone, after the "%" of an IPv6 address, can name an interface,
 * by name ("eth0", "eth0.100") or by number. GLib takes any bytes there,
 * even invalid UTF-8. */
static gboolean
is_valid_zone (const char *zone)
{
  const char *c;

  for (c = zone; *c != '\0'; c++)
    {
      if (!g_ascii_isalnum (*c) && *c != '-' && *c != '_' && *c != '.')
        return FALSE;
    }

  return c != zone;
}

/* An IP address in the one spelling GLib prints: "0:0::1" and "::1" are the
 * same address. The zone of a link-local IPv6 address ("%eth0"), the
 * interface it is reached through, is kept as written. GLib calls some
 * strings addresses that are none, such as ":" or "::1%<bytes>", which
 * fail here. */
static char *
canonical_address (const char *name,
                   GError    **error)
{
  const char *zone = strchr (name, '%');
  g_autofree char *address = NULL;
  g_autoptr(GInetAddress) parsed = NULL;
  g_autofree char *canonical = NULL;

  address = g_strndup (name, zone != NULL ? (gsize) (zone - name) : strlen (name));
  parsed = g_inet_address_new_from_string (address);
  if (parsed == NULL)
    return (invalid_name (name, "it is not a valid IP address", error), NULL);
  if (zone != NULL && !is_valid_zone (zone + 1))
    return (invalid_name (name, "its zone names no interface", error), NULL);

  canonical = g_inet_address_to_string (parsed);
  return g_strconcat (canonical, zone, NULL);
}

/* Returns @name as pintls compares and sends it: IP addresses in canonical
 * form, host names in lower case with one trailing dot removed and
 * internationalised labels as A-labels ("xn--…"). */
char *
_pin_tls_normalize_host_name (const char *name,
                              GError    **error)
{
  g_autofree char *trimmed = NULL;
  g_autofree char *ascii = NULL;
  gsize length;

  if (name == NULL || *name == '\0')
    return (invalid_name ("", "it is empty", error), NULL);

  if (g_hostname_is_ip_address (name))
    return canonical_address (name, error);

  length = strlen (name);
  trimmed = g_strndup (name, name[length - 1] == '.' ? length - 1 : length);
  if (*trimmed == '\0')
    return (invalid_name (name, "it has no label", error), NULL);

  ascii = g_hostname_to_ascii (trimmed);
  if (ascii == NULL)
    return (invalid_name (name, "it is not a valid host name", error), NULL);

  if (!check_labels (name, ascii, error))
    return NULL;

  return g_ascii_strdown (ascii, -1);
}

/* The name of @name's parent domain, one label up, or NULL for a name of
 * one label. @name is normalised; the result points into it. */
const char *
_pin_tls_name_parent (const char *name)
{
  const char *dot = strchr (name, '.');

  return dot != NULL ? dot + 1 : NULL;
}

/* Whether the normalised @name is @domain or a subdomain of it at any
 * depth, compared label by label: "notexample.com" is not within
 * "example.com". */
gboolean
_pin_tls_name_is_within (const char *name,
                         const char *domain)
{
  const char *ancestor;

  if (g_hostname_is_ip_address (name))
    return g_str_equal (name, domain);

  for (ancestor = name; ancestor != NULL; ancestor = _pin_tls_name_parent (ancestor))
    {
      if (g_str_equal (ancestor, domain))
        return TRUE;
    }

  return FALSE;
}

/* The host name or address a connectable stands for, if it has one. */
char *
_pin_tls_identity_host_name (GSocketConnectable *identity)
{
  if (G_IS_NETWORK_ADDRESS (identity))
    return g_strdup (g_network_address_get_hostname (G_NETWORK_ADDRESS (identity)));

  if (G_IS_NETWORK_SERVICE (identity))
    return g_strdup (g_network_service_get_domain (G_NETWORK_SERVICE (identity)));

  if (G_IS_INET_SOCKET_ADDRESS (identity))
    {
      GInetAddress *address =
        g_inet_socket_address_get_address (G_INET_SOCKET_ADDRESS (identity));

      return g_inet_address_to_string (address);
    }

  return NULL;
}

/* Whether @c could change how the text around it shows on a terminal:
 * control characters, and the invisible ones that reorder text (bidi
 * overrides), hide in it (zero-width spaces, byte-order marks) or break
 * its lines. */
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

static void
append_escaped (GString    *out,
                const char *valid)
{
  const char *c;

  for (c = valid; *c != '\0'; c = g_utf8_next_char (c))
    {
      gunichar u = g_utf8_get_char (c);

      if (is_unsafe_to_show (u) && u < 0x100)
        g_string_append_printf (out, "\\x%02x", u);
      else if (is_unsafe_to_show (u))
        g_string_append_printf (out, "\\u%04x", u);
      else
        g_string_append_unichar (out, u);
    }
}

/* Makes user-given or server-given text safe to put in a message whole:
 * invalid UTF-8 replaced and characters unsafe to show escaped. */
char *
_pin_tls_escape_text (const char *text)
{
  g_autofree char *valid = g_utf8_make_valid (text, -1);
  GString *escaped = g_string_new (NULL);

  append_escaped (escaped, valid);

  return g_string_free (escaped, FALSE);
}

/* Quotes user-given or server-given text for a message: characters unsafe
 * to show escaped, invalid UTF-8 replaced, and long text cut short. */
char *
_pin_tls_describe_text (const char *text)
{
  g_autofree char *valid = g_utf8_make_valid (text, -1);
  GString *quoted = g_string_new ("“");
  gboolean cut = g_utf8_strlen (valid, -1) > MAX_QUOTED_CHARS;

  if (cut)
    *g_utf8_offset_to_pointer (valid, MAX_QUOTED_CHARS) = '\0';

  append_escaped (quoted, valid);
  g_string_append (quoted, cut ? "…”" : "”");

  return g_string_free (quoted, FALSE);
}
