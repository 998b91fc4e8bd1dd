/* A tiny JSON reader for the C tests (reads the shared ring vectors file).
 * Parses a whole document into a tree; json_free releases it. Enough JSON
 * for test data: objects, arrays, strings (with \uXXXX escapes, surrogate
 * pairs), numbers, true/false/null. Not for untrusted input. */
#ifndef REGISTRY_TEST_JSON_H
#define REGISTRY_TEST_JSON_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT } json_type;

typedef struct json {
  json_type type;
  double number;        /* JSON_NUMBER, JSON_BOOL (0/1) */
  char *string;         /* JSON_STRING (NUL-terminated UTF-8) */
  size_t len;           /* JSON_ARRAY / JSON_OBJECT: number of items */
  struct json **items;  /* JSON_ARRAY / JSON_OBJECT values */
  char **keys;          /* JSON_OBJECT keys */
} json;

typedef struct {
  const char *p, *end;
  int error;
} json_parser;

static json *json_value(json_parser *ps);

static void json_free(json *v) {
  if (!v) return;
  for (size_t i = 0; i < v->len; i++) {
    json_free(v->items[i]);
    if (v->keys) free(v->keys[i]);
  }
  free(v->items);
  free(v->keys);
  free(v->string);
  free(v);
}

static void json_ws(json_parser *ps) {
  while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\n' || *ps->p == '\r' || *ps->p == '\t')) ps->p++;
}

static void json_put_utf8(char **out, unsigned cp) {
  char *o = *out;
  if (cp < 0x80) {
    *o++ = (char)cp;
  } else if (cp < 0x800) {
    *o++ = (char)(0xC0 | (cp >> 6));
    *o++ = (char)(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    *o++ = (char)(0xE0 | (cp >> 12));
    *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
    *o++ = (char)(0x80 | (cp & 0x3F));
  } else {
    *o++ = (char)(0xF0 | (cp >> 18));
    *o++ = (char)(0x80 | ((cp >> 12) & 0x3F));
    *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
    *o++ = (char)(0x80 | (cp & 0x3F));
  }
  *out = o;
}

static int json_hex4(json_parser *ps, unsigned *cp) {
  if (ps->end - ps->p < 4) return 0;
  char buf[5] = {0};
  memcpy(buf, ps->p, 4);
  char *e;
  *cp = (unsigned)strtoul(buf, &e, 16);
  if (e != buf + 4) return 0;
  ps->p += 4;
  return 1;
}

static char *json_string_raw(json_parser *ps) {
  if (ps->p >= ps->end || *ps->p != '"') { ps->error = 1; return NULL; }
  ps->p++;
  /* The decoded string is never longer than the encoded one. */
  const char *q = ps->p;
  while (q < ps->end && *q != '"') q += (*q == '\\') ? 2 : 1;
  char *s = malloc((size_t)(q - ps->p) + 1), *o = s;
  while (ps->p < ps->end && *ps->p != '"') {
    char c = *ps->p++;
    if (c != '\\') { *o++ = c; continue; }
    if (ps->p >= ps->end) break;
    c = *ps->p++;
    switch (c) {
      case 'n': *o++ = '\n'; break;
      case 't': *o++ = '\t'; break;
      case 'r': *o++ = '\r'; break;
      case 'b': *o++ = '\b'; break;
      case 'f': *o++ = '\f'; break;
      case 'u': {
        unsigned cp, lo;
        if (!json_hex4(ps, &cp)) { ps->error = 1; break; }
        if (cp >= 0xD800 && cp < 0xDC00 && ps->end - ps->p >= 6 && ps->p[0] == '\\' && ps->p[1] == 'u') {
          ps->p += 2;
          if (!json_hex4(ps, &lo)) { ps->error = 1; break; }
          cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        }
        json_put_utf8(&o, cp);
        break;
      }
      default: *o++ = c; /* \" \\ \/ */
    }
  }
  *o = 0;
  if (ps->p >= ps->end) ps->error = 1; else ps->p++;
  return s;
}

static json *json_new(json_type t) {
  json *v = calloc(1, sizeof *v);
  v->type = t;
  return v;
}

static void json_push(json *v, char *key, json *item) {
  v->items = realloc(v->items, (v->len + 1) * sizeof *v->items);
  if (v->type == JSON_OBJECT) {
    v->keys = realloc(v->keys, (v->len + 1) * sizeof *v->keys);
    v->keys[v->len] = key;
  }
  v->items[v->len++] = item;
}

static json *json_value(json_parser *ps) {
  json_ws(ps);
  if (ps->p >= ps->end) { ps->error = 1; return NULL; }
  char c = *ps->p;
  if (c == '{' || c == '[') {
    json *v = json_new(c == '{' ? JSON_OBJECT : JSON_ARRAY);
    char close = c == '{' ? '}' : ']';
    ps->p++;
    json_ws(ps);
    if (ps->p < ps->end && *ps->p == close) { ps->p++; return v; }
    while (!ps->error) {
      char *key = NULL;
      if (v->type == JSON_OBJECT) {
        json_ws(ps);
        key = json_string_raw(ps);
        json_ws(ps);
        if (ps->p >= ps->end || *ps->p != ':') { ps->error = 1; free(key); break; }
        ps->p++;
      }
      json *item = json_value(ps);
      if (!item) { free(key); break; }
      json_push(v, key, item);
      json_ws(ps);
      if (ps->p < ps->end && *ps->p == ',') { ps->p++; continue; }
      if (ps->p < ps->end && *ps->p == close) { ps->p++; return v; }
      ps->error = 1;
    }
    json_free(v);
    return NULL;
  }
  if (c == '"') {
    json *v = json_new(JSON_STRING);
    v->string = json_string_raw(ps);
    return v;
  }
  if (!strncmp(ps->p, "true", 4) || !strncmp(ps->p, "false", 5)) {
    json *v = json_new(JSON_BOOL);
    v->number = c == 't';
    ps->p += c == 't' ? 4 : 5;
    return v;
  }
  if (!strncmp(ps->p, "null", 4)) { ps->p += 4; return json_new(JSON_NULL); }
  char *e;
  double d = strtod(ps->p, &e);
  if (e == ps->p) { ps->error = 1; return NULL; }
  ps->p = e;
  json *v = json_new(JSON_NUMBER);
  v->number = d;
  return v;
}

/* Parses the file at `path`; NULL if it cannot be read or parsed. */
static json *json_read_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = malloc((size_t)n + 1);
  size_t got = fread(buf, 1, (size_t)n, f);
  fclose(f);
  json_parser ps = {buf, buf + got, 0};
  json *v = json_value(&ps);
  free(buf);
  if (ps.error) { json_free(v); return NULL; }
  return v;
}

/* Member `key` of an object, or NULL. */
static json *json_get(const json *v, const char *key) {
  if (!v || v->type != JSON_OBJECT) return NULL;
  for (size_t i = 0; i < v->len; i++)
    if (!strcmp(v->keys[i], key)) return v->items[i];
  return NULL;
}

#endif
