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
#include "bouncepipe/module.h"

typedef bp_status (*http_open_fn)(bp_http_transport *out, char **error);

static http_open_fn find_module(char **error)
{
    static http_open_fn loaded;
    char why[600];
    if (loaded != NULL)
        return loaded;
#ifdef BP_MODULE_DIR
    const char *dir = BP_MODULE_DIR;
#else
    const char *dir = NULL;
#endif
    /* POSIX: a data pointer from dlsym() converts to a function pointer through a union */
    union {
        void *p;
        http_open_fn f;
    } sym;
    sym.p = bp_module_symbol("BOUNCEPIPE_HTTP_MODULE", "bouncepipe-http.so", dir, "bp_http_curl_open", NULL, why,
                             sizeof(why));
    if (sym.p != NULL)
        return loaded = sym.f;
    if (error != NULL) {
        char msg[700];
        snprintf(msg, sizeof(msg), "cannot load the HTTP module bouncepipe-http.so: %s", why);
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
