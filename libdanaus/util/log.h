/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once
/*
 * Logging: one event per call. To the journal, with the structured fields
 * DANAUS_POOL= and POOL= (the pool), PRIORITY= and SYSLOG_IDENTIFIER=, when
 * built with libsystemd and /run/systemd/journal/socket exists (checked at
 * the first message); else one line on stderr as
 * "program[pool]: LEVEL: message" with the same content. Thread-safe: each
 * line is one write(2) or one journal datagram.
 */
#include <stdbool.h>
#include <syslog.h>

void log_set_identity(const char *program, const char *pool);
void log_set_debug(bool on);
bool log_get_debug(void);
void log_emit(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...)   log_emit(LOG_ERR, __VA_ARGS__)
#define log_warning(...) log_emit(LOG_WARNING, __VA_ARGS__)
#define log_info(...)    log_emit(LOG_INFO, __VA_ARGS__)
#define log_debug(...)                                                                             \
        do {                                                                                       \
                if (log_get_debug())                                                               \
                        log_emit(LOG_DEBUG, __VA_ARGS__);                                          \
        } while (0)
