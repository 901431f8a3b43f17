/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once
/*
 * The manager's log: to the journal with structured fields (DANAUS_POOL=,
 * PRIORITY=, SYSLOG_IDENTIFIER=) when journald runs, else one line on
 * stderr with the same content ("danaus-manager: info: pool tenantA: ...").
 * Messages a client can cause go through mlog_client(), which drops them
 * past a rate (a burst of 20, then 5 per second) so a client cannot flood
 * the log or stall the manager on it.
 */
#include <stdbool.h>
#include <syslog.h>

void mlog_init(bool journal);
void mlog(int level, const char *pool, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void mlog_client(int level, const char *pool, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
