/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Varlink Messages: the codec.
 *
 * A message arrives as bytes from a peer we do not trust. It is parsed with a
 * depth-limited, UTF-8-validating json-c tokener over exactly the bytes given
 * (so a NUL inside is impossible: the connection splits at NUL), must be one
 * object, may hold only the keys the spec defines for its kind, each with its
 * type, and names are checked for shape. Anything else is VARLINK_E_PROTO.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "varlink/varlink.h"

/* Deep nesting costs stack in json-c and is never needed by our interfaces. */
#define VARLINK_JSON_DEPTH 32

static bool name_part_valid(const char *s, size_t n, bool first)
{
        if (n == 0 || n > 63)
                return false;
        if (first && !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z')))
                return false;
        if (s[0] == '-' || s[n - 1] == '-')
                return false;
        for (size_t i = 0; i < n; i++) {
                char c = s[i];
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '-'))
                        return false;
        }
        return true;
}

bool varlink_interface_name_valid(const char *name)
{
        size_t n_parts = 0, len = strnlen(name, VARLINK_NAME_MAX);
        const char *p = name;

        if (len == 0 || len >= VARLINK_NAME_MAX)
                return false;
        for (;;) {
                const char *dot = strchr(p, '.');
                size_t n = dot ? (size_t)(dot - p) : strlen(p);

                if (!name_part_valid(p, n, n_parts == 0))
                        return false;
                n_parts++;
                if (!dot)
                        break;
                p = dot + 1;
        }
        return n_parts >= 2;
}

bool varlink_member_name_valid(const char *name)
{
        size_t len = strnlen(name, VARLINK_NAME_MAX);
        const char *dot, *m;
        char iface[VARLINK_NAME_MAX];

        if (len == 0 || len >= VARLINK_NAME_MAX)
                return false;
        dot = strrchr(name, '.');
        if (!dot || dot == name)
                return false;
        m = dot + 1;
        if (!(*m >= 'A' && *m <= 'Z'))
                return false;
        for (const char *c = m; *c; c++)
                if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
                      (*c >= '0' && *c <= '9')))
                        return false;
        memcpy(iface, name, (size_t)(dot - name));
        iface[dot - name] = '\0';
        return varlink_interface_name_valid(iface);
}

/* Parses exactly n bytes as one JSON object (whitespace around allowed). */
static int parse_object(const char *msg, size_t n, struct json_object **objp)
{
        struct json_tokener *tok;
        struct json_object *obj;
        size_t end;

        if (n == 0 || n >= VARLINK_MESSAGE_MAX * (size_t)64 || n > (size_t)INT32_MAX)
                return VARLINK_E_PROTO;
        tok = json_tokener_new_ex(VARLINK_JSON_DEPTH);
        if (!tok)
                return -ENOMEM;
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
        obj = json_tokener_parse_ex(tok, msg, (int)n);
        if (!obj || json_tokener_get_error(tok) != json_tokener_success) {
                json_object_put(obj);
                json_tokener_free(tok);
                return VARLINK_E_PROTO;
        }
        end = json_tokener_get_parse_end(tok);
        json_tokener_free(tok);
        while (end < n &&
               (msg[end] == ' ' || msg[end] == '\t' || msg[end] == '\n' || msg[end] == '\r'))
                end++;
        if (end != n || !json_object_is_type(obj, json_type_object)) {
                json_object_put(obj);
                return VARLINK_E_PROTO;
        }
        *objp = obj;
        return 0;
}

/* "parameters": an object, or absent/null (then an empty object). */
static int take_parameters(struct json_object *val, struct json_object **paramsp)
{
        if (!val || json_object_is_type(val, json_type_null)) {
                *paramsp = json_object_new_object();
                return *paramsp ? 0 : -ENOMEM;
        }
        if (!json_object_is_type(val, json_type_object))
                return VARLINK_E_PROTO;
        *paramsp = json_object_get(val);
        return 0;
}

static int get_bool(struct json_object *val, bool *bp)
{
        if (json_object_is_type(val, json_type_null)) {
                *bp = false;
                return 0;
        }
        if (!json_object_is_type(val, json_type_boolean))
                return VARLINK_E_PROTO;
        *bp = json_object_get_boolean(val);
        return 0;
}

static int get_name(struct json_object *val, char **namep)
{
        const char *s;

        if (!json_object_is_type(val, json_type_string))
                return VARLINK_E_PROTO;
        s = json_object_get_string(val);
        if ((size_t)json_object_get_string_len(val) != strlen(s) || !varlink_member_name_valid(s))
                return VARLINK_E_PROTO;
        *namep = strdup(s);
        return *namep ? 0 : -ENOMEM;
}

int varlink_call_parse(const char *msg, size_t n, VarlinkCall *call)
{
        struct json_object *obj = NULL, *params = NULL;
        int r;

        *call = (VarlinkCall){0};
        r = parse_object(msg, n, &obj);
        if (r != 0)
                return r;
        json_object_object_foreach(obj, key, val)
        {
                if (strcmp(key, "method") == 0 && !call->method)
                        r = get_name(val, &call->method);
                else if (strcmp(key, "parameters") == 0 && !params)
                        r = take_parameters(val, &params);
                else if (strcmp(key, "oneway") == 0)
                        r = get_bool(val, &call->oneway);
                else if (strcmp(key, "more") == 0)
                        r = get_bool(val, &call->more);
                else if (strcmp(key, "upgrade") == 0)
                        r = get_bool(val, &call->upgrade);
                else
                        r = VARLINK_E_PROTO;
                if (r != 0)
                        break;
        }
        if (r == 0 && !call->method)
                r = VARLINK_E_PROTO;
        if (r == 0 && !params)
                r = take_parameters(NULL, &params);
        /* A oneway call has no reply to continue. */
        if (r == 0 && call->oneway && call->more)
                r = VARLINK_E_PROTO;
        json_object_put(obj);
        call->parameters = params;
        if (r != 0)
                varlink_call_clear(call);
        return r;
}

void varlink_call_clear(VarlinkCall *call)
{
        free(call->method);
        json_object_put(call->parameters);
        *call = (VarlinkCall){0};
}

int varlink_reply_parse(const char *msg, size_t n, VarlinkReply *reply)
{
        struct json_object *obj = NULL, *params = NULL;
        int r;

        *reply = (VarlinkReply){0};
        r = parse_object(msg, n, &obj);
        if (r != 0)
                return r;
        json_object_object_foreach(obj, key, val)
        {
                if (strcmp(key, "error") == 0 && !reply->error)
                        r = get_name(val, &reply->error);
                else if (strcmp(key, "parameters") == 0 && !params)
                        r = take_parameters(val, &params);
                else if (strcmp(key, "continues") == 0)
                        r = get_bool(val, &reply->continues);
                else
                        r = VARLINK_E_PROTO;
                if (r != 0)
                        break;
        }
        if (r == 0 && !params)
                r = take_parameters(NULL, &params);
        if (r == 0 && reply->error && reply->continues)
                r = VARLINK_E_PROTO;
        json_object_put(obj);
        reply->parameters = params;
        if (r != 0)
                varlink_reply_clear(reply);
        return r;
}

void varlink_reply_clear(VarlinkReply *reply)
{
        free(reply->error);
        json_object_put(reply->parameters);
        *reply = (VarlinkReply){0};
}

/* Serialises obj and hands out a copy with its NUL. */
static int finish(struct json_object *obj, char **bufp, size_t *np)
{
        const char *s;
        size_t len;
        char *buf;

        s = json_object_to_json_string_ext(obj,
                                           JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        if (!s) {
                json_object_put(obj);
                return -ENOMEM;
        }
        len = strlen(s);
        buf = malloc(len + 1);
        if (!buf) {
                json_object_put(obj);
                return -ENOMEM;
        }
        memcpy(buf, s, len + 1);
        json_object_put(obj);
        *bufp = buf;
        *np = len + 1;
        return 0;
}

static int add(struct json_object *obj, const char *key, struct json_object *val)
{
        if (!val)
                return -ENOMEM;
        if (json_object_object_add(obj, key, val) < 0) {
                json_object_put(val);
                return -ENOMEM;
        }
        return 0;
}

static int add_parameters(struct json_object *obj, struct json_object *parameters)
{
        if (parameters && !json_object_is_type(parameters, json_type_object))
                return -EINVAL;
        return add(obj, "parameters",
                   parameters ? json_object_get(parameters) : json_object_new_object());
}

int varlink_encode_call(const char *method, struct json_object *parameters, unsigned flags,
                        char **bufp, size_t *np)
{
        struct json_object *obj;
        int r;

        if (!varlink_member_name_valid(method) ||
            (flags & (VARLINK_CALL_ONEWAY | VARLINK_CALL_MORE)) ==
                (VARLINK_CALL_ONEWAY | VARLINK_CALL_MORE))
                return -EINVAL;
        obj = json_object_new_object();
        if (!obj)
                return -ENOMEM;
        r = add(obj, "method", json_object_new_string(method));
        if (r == 0)
                r = add_parameters(obj, parameters);
        if (r == 0 && (flags & VARLINK_CALL_ONEWAY))
                r = add(obj, "oneway", json_object_new_boolean(true));
        if (r == 0 && (flags & VARLINK_CALL_MORE))
                r = add(obj, "more", json_object_new_boolean(true));
        if (r < 0) {
                json_object_put(obj);
                return r;
        }
        return finish(obj, bufp, np);
}

int varlink_encode_reply(struct json_object *parameters, bool continues, char **bufp, size_t *np)
{
        struct json_object *obj = json_object_new_object();
        int r;

        if (!obj)
                return -ENOMEM;
        r = add_parameters(obj, parameters);
        if (r == 0 && continues)
                r = add(obj, "continues", json_object_new_boolean(true));
        if (r < 0) {
                json_object_put(obj);
                return r;
        }
        return finish(obj, bufp, np);
}

int varlink_encode_error(const char *error, struct json_object *parameters, char **bufp, size_t *np)
{
        struct json_object *obj;
        int r;

        if (!varlink_member_name_valid(error))
                return -EINVAL;
        obj = json_object_new_object();
        if (!obj)
                return -ENOMEM;
        r = add(obj, "error", json_object_new_string(error));
        if (r == 0)
                r = add_parameters(obj, parameters);
        if (r < 0) {
                json_object_put(obj);
                return r;
        }
        return finish(obj, bufp, np);
}
