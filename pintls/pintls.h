/* SPDX-License-Identifier: LGPL-2.1-or-later */

#pragma once

#define __PINTLS_H_INSIDE__

#include <pintls/pin-tls-version.h>
#include <pintls/pin-tls-version-macros.h>
#include <pintls/pin-tls-error.h>
#include <pintls/pin-tls-pin-set.h>
#include <pintls/pin-tls-policy.h>
#include <pintls/pin-tls-verify.h>
#include <pintls/pin-tls-gnutls.h>
#include <pintls/pin-tls-client-connection.h>
#include <pintls/pin-tls-connect.h>
#include <pintls/pin-tls-database.h>
#include <pintls/pin-tls-enum-types.h>

#undef __PINTLS_H_INSIDE__
