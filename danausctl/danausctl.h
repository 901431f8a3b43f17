/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once
/*
 * danausctl: the operator's CLI for danaus-manager (danausctl(1)). Every
 * command is one varlink call (two for status and run) on the manager's
 * socket; results print as tables, or as the reply's JSON with --json.
 * Exit status: 0 success, 1 a refused or failed operation, 2 a usage error;
 * the message is one line on stderr, "danausctl: ...".
 */
#include <json-c/json.h>
#include <stdbool.h>

#define CTL_DEFAULT_SOCKET "/run/danaus/manager.sock"

typedef struct Ctl {
        const char *socket; /* --socket, $DANAUS_MANAGER_SOCKET, the default */
        bool json;          /* --json */
        int timeout_ms;     /* --timeout */
} Ctl;

enum { CTL_EXIT_OK = 0, CTL_EXIT_FAILED = 1, CTL_EXIT_USAGE = 2 };

/* One line "danausctl: ..." on stderr. Returns CTL_EXIT_FAILED. */
__attribute__((format(printf, 1, 2))) int ctl_fail(const char *fmt, ...);
/* "danausctl: ...", the hint to --help; returns CTL_EXIT_USAGE. */
__attribute__((format(printf, 1, 2))) int ctl_usage_error(const char *fmt, ...);

/* Calls io.danaus.Manager.<method> (or a full method name containing a '.'
 * before its last component). On success *replyp holds the reply's
 * parameters (json_object_put it). On an error reply or a failed call, one
 * line is printed and CTL_EXIT_FAILED returned. */
int ctl_call(const Ctl *ctl, const char *method, json_object *params, json_object **replyp);

/* Prints parameters as pretty JSON on stdout. */
void ctl_print_json(json_object *o);

/* The commands; argv[0] is the command's first word after the group. */
int ctl_pool(const Ctl *ctl, int argc, char **argv);
int ctl_mount(const Ctl *ctl, int argc, char **argv);
int ctl_status(const Ctl *ctl, int argc, char **argv);
int ctl_run(const Ctl *ctl, int argc, char **argv);

/* Parsers shared by the commands (output.c). */
json_object *ctl_mount_from_spec(const char *spec, char *err, size_t n_err);
json_object *ctl_read_json_file(const char *path, char *err, size_t n_err);

/* Tables: column widths from the content, one row per call. */
typedef struct CtlTable CtlTable;
CtlTable *ctl_table_new(unsigned n_columns, const char *const *headers);
void ctl_table_add(CtlTable *t, const char *const *cells);
/* Prints and frees. */
void ctl_table_print(CtlTable *t);
/* Human sizes: 4294967296 -> "4G". */
void ctl_format_size(int64_t v, char *buf, size_t n);
