/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Manager Logging: journal or stderr, with a token bucket for what clients
 * can cause.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "danaus-config.h"
#include "mlog.h"
#include "util/log.h"
#if HAVE_SYSTEMD
#include <systemd/sd-journal.h>
#endif

static bool use_journal;
static double tokens = 20;
static struct timespec last_refill;

void mlog_init(bool journal)
{
#if HAVE_SYSTEMD
        use_journal = journal && access("/run/systemd/journal/socket", W_OK) == 0;
#else
        (void)journal;
#endif
        log_set_identity("danaus-manager", NULL);
}

static void vlog(int level, const char *pool, const char *fmt, va_list ap)
{
        char msg[900];

        vsnprintf(msg, sizeof(msg), fmt, ap);
#if HAVE_SYSTEMD
        if (use_journal) {
                if (pool)
                        sd_journal_send("MESSAGE=pool %s: %s", pool, msg, "PRIORITY=%d", level,
                                        "DANAUS_POOL=%s", pool, "SYSLOG_IDENTIFIER=danaus-manager",
                                        NULL);
                else
                        sd_journal_send("MESSAGE=%s", msg, "PRIORITY=%d", level,
                                        "SYSLOG_IDENTIFIER=danaus-manager", NULL);
                return;
        }
#endif
        if (pool)
                log_emit(level, "pool %s: %s", pool, msg);
        else
                log_emit(level, "%s", msg);
}

void mlog(int level, const char *pool, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        vlog(level, pool, fmt, ap);
        va_end(ap);
}

void mlog_client(int level, const char *pool, const char *fmt, ...)
{
        struct timespec now;
        double dt;
        va_list ap;

        clock_gettime(CLOCK_MONOTONIC, &now);
        dt = (double)(now.tv_sec - last_refill.tv_sec) +
             (double)(now.tv_nsec - last_refill.tv_nsec) / 1e9;
        last_refill = now;
        tokens += dt * 5;
        if (tokens > 20)
                tokens = 20;
        if (tokens < 1)
                return;
        tokens -= 1;
        va_start(ap, fmt);
        vlog(level, pool, fmt, ap);
        va_end(ap);
}
