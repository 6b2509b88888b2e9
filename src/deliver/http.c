/*
 * http.c - find the HTTP transport: the libcurl one lives in the module bouncepipe-http.so,
 * loaded on first use, so that libcurl and the libraries it brings (TLS, HTTP/2, IDN, ...)
 * are never loaded by the short pipe-mode processes, which must start fast
 * (docs/performance.md); only `deliver` loads it.
 *
 * bp_http_transport_open(): look in $BOUNCEPIPE_HTTP_MODULE, beside the executable, then in
 * BP_MODULE_DIR; call the module's bp_http_curl_open().  The module stays loaded for the life
 * of the process.  bp_http_transport_close(): the transport's own close.
 */
#include "bouncepipe/deliver.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bouncepipe/alloc.h"

typedef bp_status (*http_open_fn)(bp_http_transport *out, char **error);

static http_open_fn find_module(char **error)
{
    static http_open_fn loaded;
    char exe_dir[4096], path[4200];
    const char *candidates[3];
    size_t n = 0;
    if (loaded != NULL)
        return loaded;
    const char *env = getenv("BOUNCEPIPE_HTTP_MODULE");
    if (env != NULL && *env != '\0')
        candidates[n++] = env;
    ssize_t len = readlink("/proc/self/exe", exe_dir, sizeof(exe_dir) - 1);
    if (len > 0) {
        exe_dir[len] = '\0';
        char *slash = strrchr(exe_dir, '/');
        if (slash != NULL) {
            *slash = '\0';
            snprintf(path, sizeof(path), "%s/bouncepipe-http.so", exe_dir);
            candidates[n++] = path;
        }
    }
#ifdef BP_MODULE_DIR
    candidates[n++] = BP_MODULE_DIR "/bouncepipe-http.so";
#endif
    const char *why = "not found";
    for (size_t i = 0; i < n; i++) {
        void *h = dlopen(candidates[i], RTLD_NOW | RTLD_LOCAL);
        if (h == NULL) {
            why = dlerror();
            continue;
        }
        /* POSIX: a data pointer from dlsym() converts to a function pointer through a union */
        union {
            void *p;
            http_open_fn f;
        } sym;
        sym.p = dlsym(h, "bp_http_curl_open");
        if (sym.p != NULL) {
            loaded = sym.f;
            return loaded;
        }
        why = "the module has no bp_http_curl_open";
        dlclose(h);
    }
    if (error != NULL) {
        char msg[600];
        snprintf(msg, sizeof(msg), "cannot load the HTTP module bouncepipe-http.so: %s", why != NULL ? why : "unknown");
        *error = bp_strdup(msg);
    }
    return NULL;
}

bp_status bp_http_transport_open(bp_http_transport *out, char **error)
{
    memset(out, 0, sizeof(*out));
    http_open_fn open_fn = find_module(error);
    if (open_fn == NULL)
        return BP_ERR_UNSUPPORTED;
    return open_fn(out, error);
}

void bp_http_transport_close(bp_http_transport *t)
{
    if (t == NULL)
        return;
    if (t->close != NULL)
        t->close(t->ctx);
    memset(t, 0, sizeof(*t));
}
