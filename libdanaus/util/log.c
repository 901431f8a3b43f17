/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Logging to the journal (structured fields) or to stderr, one write(2) per
 * line so lines from threads never mix.
 */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "danaus-config.h"
#include "util/log.h"
#if HAVE_SYSTEMD
#include <systemd/sd-journal.h>
#endif

#define JOURNAL_SOCKET "/run/systemd/journal/socket"

static char log_program[32] = "danaus";
static char log_pool[72];
static atomic_bool log_debug_on;
/* 0: not checked yet, 1: journal, 2: stderr. Checking twice is harmless. */
static atomic_int log_target;

void log_set_identity(const char *program, const char *pool)
{
        if (program)
                snprintf(log_program, sizeof(log_program), "%s", program);
        if (pool)
                snprintf(log_pool, sizeof(log_pool), "%s", pool);
}

void log_set_debug(bool on)
{
        atomic_store_explicit(&log_debug_on, on, memory_order_relaxed);
}

bool log_get_debug(void)
{
        return atomic_load_explicit(&log_debug_on, memory_order_relaxed);
}

static const char *level_name(int level)
{
        switch (level) {
        case LOG_ERR:
                return "error";
        case LOG_WARNING:
                return "warning";
        case LOG_INFO:
                return "info";
        default:
                return "debug";
        }
}

#if HAVE_SYSTEMD
static bool journal_send(int level, const char *msg)
{
        int t = atomic_load_explicit(&log_target, memory_order_relaxed);

        if (t == 0) {
                t = access(JOURNAL_SOCKET, W_OK) == 0 ? 1 : 2;
                atomic_store_explicit(&log_target, t, memory_order_relaxed);
        }
        if (t != 1)
                return false;
        if (log_pool[0])
                return sd_journal_send("MESSAGE=%s", msg, "PRIORITY=%d", level,
                                       "SYSLOG_IDENTIFIER=%s", log_program, "DANAUS_POOL=%s",
                                       log_pool, "POOL=%s", log_pool, NULL) >= 0;
        return sd_journal_send("MESSAGE=%s", msg, "PRIORITY=%d", level, "SYSLOG_IDENTIFIER=%s",
                               log_program, NULL) >= 0;
}
#else
static bool journal_send(int level, const char *msg)
{
        return false;
}
#endif

void log_emit(int level, const char *fmt, ...)
{
        char line[1024];
        va_list ap;
        int n;

        if (atomic_load_explicit(&log_target, memory_order_relaxed) != 2) {
                char msg[1024];

                va_start(ap, fmt);
                vsnprintf(msg, sizeof(msg), fmt, ap);
                va_end(ap);
                if (journal_send(level, msg))
                        return;
        }

        if (log_pool[0])
                n = snprintf(line, sizeof(line), "%s[%s]: %s: ", log_program, log_pool,
                             level_name(level));
        else
                n = snprintf(line, sizeof(line), "%s: %s: ", log_program, level_name(level));
        if (n < 0 || (size_t)n >= sizeof(line))
                return;
        va_start(ap, fmt);
        vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
        va_end(ap);
        n = (int)strlen(line);
        line[n++] = '\n';
        (void)!write(STDERR_FILENO, line, (size_t)n);
}
