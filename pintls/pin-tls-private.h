/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Helpers shared by the library's own files; not installed. */

#pragma once

#include <gio/gio.h>
#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "pin-tls-client-connection.h"
#include "pin-tls-connect.h"
#include "pin-tls-database.h"
#include "pin-tls-error.h"
#include "pin-tls-gnutls.h"
#include "pin-tls-pin-set.h"
#include "pin-tls-policy.h"
#include "pin-tls-verify.h"

G_BEGIN_DECLS

#define PIN_TLS_DIGEST_SIZE 32

/* Certificates pintls reads from a GTlsCertificate chain at most. */
#define PIN_TLS_MAX_CHAIN_LENGTH 32

/* What a pin's digest is taken over. */
typedef enum
{
  PIN_TLS_PIN_KIND_SPKI,        /* SHA-256 of the DER SubjectPublicKeyInfo */
  PIN_TLS_PIN_KIND_CERTIFICATE, /* SHA-256 of the whole DER certificate */
} PinTlsPinKind;

/* pin-tls-pin-set.c */
gboolean _pin_tls_pin_set_contains (PinTlsPinSet *set,
                                    PinTlsPinKind kind,
                                    const guint8 *digest);
gboolean _pin_tls_pin_set_has_certificate_pins (PinTlsPinSet *set);
const guint8 *_pin_tls_pin_set_get_digest (PinTlsPinSet *set);
char *_pin_tls_pin_set_describe (PinTlsPinSet *set);
gboolean _pin_tls_spki_digest (gnutls_x509_crt_t crt,
                               guint8           *digest);
char *_pin_tls_format_spki_pin (const guint8 *digest);

/* pin-tls-names.c */
char *_pin_tls_normalize_host_name (const char *name,
                                    GError    **error);
const char *_pin_tls_name_parent (const char *name);
gboolean _pin_tls_name_is_within (const char *name,
                                  const char *domain);
char *_pin_tls_identity_host_name (GSocketConnectable *identity);
char *_pin_tls_escape_text (const char *text);
char *_pin_tls_describe_text (const char *text);

/* pin-tls-verify.c: the peer chain, parsed once per handshake. */
typedef struct
{
  gnutls_x509_crt_t *certs; /* as the server sent them, leaf first */
  guint n_certs;
  guint *path;              /* indices into certs: the issuer path from the leaf */
  guint path_length;
  gnutls_x509_crt_t anchor; /* trust anchor the path ends at, or NULL */
} PinTlsChain;

/* Where CA_AND_PINS mode gets its trust decisions from. */
typedef struct _PinTlsTrust PinTlsTrust;
struct _PinTlsTrust
{
  GTlsCertificateFlags (*verify) (PinTlsTrust *trust,
                                  PinTlsChain *chain,
                                  const char  *server_name);
  gnutls_x509_crt_t (*lookup_issuer) (PinTlsTrust      *trust,
                                      gnutls_x509_crt_t certificate);
  void (*destroy) (PinTlsTrust *trust);
};

typedef struct
{
  gboolean accepted;
  GError *error;                    /* why the chain was refused */
  GTlsCertificateFlags ca_errors;   /* CA_AND_PINS: what validation found */
  gboolean pin_matched;             /* the pins do not refuse the chain: one
                                     * matched, or (under a policy rule)
                                     * they are not enforced */
  PinTlsVerdict verdict;            /* under a rule: what the pins found */
  guint *path;                      /* the issuer path, as indices of the
                                     * chain; NULL if the chain is unreadable */
  guint path_length;
  gboolean path_is_partial;         /* the path stops at the leaf, whose pin
                                     * decided; the issuers were not checked */
} PinTlsDecision;

PinTlsChain *_pin_tls_chain_new (const gnutls_datum_t *der,
                                 guint                 n_certs,
                                 GError              **error);
void _pin_tls_chain_free (PinTlsChain *chain);
void _pin_tls_chain_build_path (PinTlsChain *chain,
                                PinTlsTrust *trust);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (PinTlsChain, _pin_tls_chain_free)

void _pin_tls_decision_compute (PinTlsDecision        *verdict,
                               PinTlsPinSet         *pins,
                               const gnutls_datum_t *der,
                               guint                 n_certs,
                               PinTlsMode            mode,
                               const char           *server_name,
                               PinTlsTrust          *trust);
void _pin_tls_decision_clear (PinTlsDecision *verdict);
char **_pin_tls_presented_pins (const gnutls_datum_t *der,
                                guint                 n_certs);
GTlsCertificateFlags _pin_tls_ca_flags_from_gnutls (int      result,
                                                    unsigned status);
char *_pin_tls_describe_ca_flags (GTlsCertificateFlags flags,
                                  const char          *server_name);
PinTlsTrust *_pin_tls_trust_new_for_list (gnutls_x509_trust_list_t list);
void _pin_tls_trust_free (PinTlsTrust *trust);
gnutls_x509_trust_list_t _pin_tls_system_trust_list (GError **error);

/* pin-tls-policy*.c: entries and policies. */
typedef GDateTime *(*PinTlsNowFunc) (gpointer user_data);

const char *_pin_tls_policy_entry_get_name (PinTlsPolicyEntry *entry);
gboolean _pin_tls_policy_entry_is_wildcard (PinTlsPolicyEntry *entry);
gboolean _pin_tls_policy_entry_check (PinTlsPolicyEntry *entry,
                                      GError           **error);
void _pin_tls_policy_entry_freeze (PinTlsPolicyEntry *entry);
guint _pin_tls_policy_entry_get_duplicate_pins (PinTlsPolicyEntry *entry);
void _pin_tls_policy_entry_set_duplicate_pins (PinTlsPolicyEntry *entry,
                                               guint              duplicate_pins);
void _pin_tls_policy_set_now_func (PinTlsPolicy *policy,
                                   PinTlsNowFunc now_func,
                                   gpointer      user_data);
GDateTime *_pin_tls_policy_get_now (PinTlsPolicy *policy);

/* What one handshake enforces: a lone pin set, or what a policy's entry
 * (or its setting for unpinned hosts) asks of one host, resolved when the
 * handshake starts. */
typedef struct
{
  PinTlsPinSet *pins;       /* NULL: the host is not pinned; CAs decide */
  PinTlsMode mode;          /* the trust mode asked for */
  gboolean report_only;     /* a mismatch is reported, never enforced */
  gboolean expired;         /* the entry's pins had expired */
  gboolean fall_back_to_ca; /* expired pins leave the decision to CAs */
  PinTlsPolicy *policy;     /* reports go to it; NULL for a lone pin set */
  char *pattern;            /* the entry's pattern; NULL without an entry */
  GDateTime *expires;       /* the entry's expiry, or NULL */
  gboolean quiet;           /* decide without reporting: a second look */
  GMainContext *report_context; /* if set, reports made on a thread other */
  GThread *report_thread;       /* than this one go to this context */
  guint8 digest[PIN_TLS_DIGEST_SIZE]; /* identifies what is enforced */
} PinTlsRule;

void _pin_tls_rule_init_for_pins (PinTlsRule   *rule,
                                  PinTlsPinSet *pins,
                                  PinTlsMode    mode);
gboolean _pin_tls_rule_init_for_policy (PinTlsRule   *rule,
                                        PinTlsPolicy *policy,
                                        const char   *host,
                                        GError      **error);
void _pin_tls_rule_copy (PinTlsRule       *dest,
                         const PinTlsRule *src);
void _pin_tls_rule_clear (PinTlsRule *rule);
void _pin_tls_rule_set_report_context (PinTlsRule   *rule,
                                       GMainContext *context,
                                       GThread      *thread);
char *_pin_tls_rule_describe (const PinTlsRule *rule);
gboolean _pin_tls_rule_checks_ca (const PinTlsRule *rule);
void _pin_tls_rule_decide (const PinTlsRule     *rule,
                           PinTlsDecision       *decision,
                           const gnutls_datum_t *der,
                           guint                 n_certs,
                           const char           *host,
                           guint16               port,
                           PinTlsTrust          *trust);

/* pin-tls-report.c */
PinTlsReport *_pin_tls_report_new (const PinTlsRule     *rule,
                                   const PinTlsDecision *decision,
                                   const gnutls_datum_t *der,
                                   guint                 n_certs,
                                   const char           *host,
                                   guint16               port);

/* pin-tls-gnutls.c: the enforcement installed on a session. */
typedef struct _PinTlsSessionCheck PinTlsSessionCheck;

/* Called inside the handshake once the verdict is known. The owner may
 * change its decision only from "refuse" to "accept" for CA errors; a pin
 * mismatch stays fatal whatever the hook returns. */
typedef gboolean (*PinTlsDecisionHook) (PinTlsDecision *verdict,
                                       gpointer       user_data);

PinTlsSessionCheck *_pin_tls_session_install (gnutls_session_t  session,
                                              const PinTlsRule *rule,
                                              const char       *server_name,
                                              guint16           port,
                                              PinTlsTrust      *trust,
                                              gboolean          owner_checks_resumed,
                                              GError          **error);
void _pin_tls_session_check_set_hook (PinTlsSessionCheck *check,
                                      PinTlsDecisionHook   hook,
                                      gpointer            user_data);

/* Called when a TLS 1.3 server sends a session ticket after the handshake,
 * from the thread reading at the time. */
typedef void (*PinTlsTicketHook) (gpointer user_data);

void _pin_tls_session_check_set_ticket_hook (PinTlsSessionCheck *check,
                                             PinTlsTicketHook    hook,
                                             gpointer            user_data);
gboolean _pin_tls_session_check_resumed (gnutls_session_t session,
                                         GError         **error);
GError *_pin_tls_error_from_gnutls (gnutls_session_t session,
                                    int              code,
                                    gboolean         handshaking);

/* pin-tls-session-cache.c: sessions a client may resume. Bounds on what
 * the cache keeps: servers drop their sessions and tickets after a while
 * anyway, and a process talking to many servers must not grow without
 * end. */
#define PIN_TLS_SESSION_CACHE_SIZE 256
#define PIN_TLS_SESSION_LIFETIME (10 * 60 * G_TIME_SPAN_SECOND)

typedef gint64 (*PinTlsClockFunc) (void);

char *_pin_tls_session_cache_key (const char   *server_name,
                                  guint         port,
                                  const guint8 *enforced_digest);
void _pin_tls_session_cache_store (const char *key,
                                   GBytes     *data);
GBytes *_pin_tls_session_cache_take (const char *key);
void _pin_tls_session_cache_set_clock (PinTlsClockFunc clock);

/* pin-tls-certificates.c: GIO certificates and databases. */
GTlsCertificate *_pin_tls_certificate_new_from_path (GPtrArray *der_path,
                                                     GError   **error);
PinTlsTrust *_pin_tls_trust_new_for_database (GTlsDatabase    *database,
                                              GTlsInteraction *interaction);
PinTlsTrust *_pin_tls_trust_new_for_database_result (GTlsDatabase        *database,
                                                     GTlsInteraction     *interaction,
                                                     GTlsCertificateFlags flags);
GPtrArray *_pin_tls_certificate_chain_der (GTlsCertificate *certificate);
gnutls_datum_t *_pin_tls_datums_from_bytes (GPtrArray *chain);

/* pin-tls-streams.c */
GInputStream *_pin_tls_input_stream_new (PinTlsClientConnection *connection);
GOutputStream *_pin_tls_output_stream_new (PinTlsClientConnection *connection);

/* pin-tls-client-connection.c: what the streams call. */
gssize _pin_tls_client_connection_read (PinTlsClientConnection *self,
                                        void                   *buffer,
                                        gsize                   count,
                                        gboolean                blocking,
                                        GCancellable           *cancellable,
                                        GError                **error);
gssize _pin_tls_client_connection_write (PinTlsClientConnection *self,
                                         const void             *buffer,
                                         gsize                   count,
                                         gboolean                blocking,
                                         GCancellable           *cancellable,
                                         GError                **error);
gboolean _pin_tls_client_connection_close_side (PinTlsClientConnection *self,
                                                GIOCondition            side,
                                                GCancellable           *cancellable,
                                                GError                **error);
void _pin_tls_client_connection_close_side_async (PinTlsClientConnection *self,
                                                  GIOCondition            side,
                                                  GTask                  *task);
char *_pin_tls_client_connection_dup_session_key (PinTlsClientConnection *self);
gboolean _pin_tls_client_connection_check (PinTlsClientConnection *self,
                                           GIOCondition            condition);
GSource *_pin_tls_client_connection_create_source (PinTlsClientConnection *self,
                                                   GIOCondition            condition,
                                                   GCancellable           *cancellable);

G_END_DECLS
