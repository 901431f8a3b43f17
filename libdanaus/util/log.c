/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Logging to stderr, one write(2) per line so lines from threads never mix.
 */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "util/log.h"

static char log_program[32] = "danaus";
static char log_pool[72];
static atomic_bool log_debug_on;

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

void log_emit(int level, const char *fmt, ...)
{
        char line[1024];
        va_list ap;
        int n;

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
