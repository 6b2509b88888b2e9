/*
 * module.c - finding a loadable module and a symbol in it (contract in
 * include/bouncepipe/module.h): one search for the three modules.
 */
#include "bouncepipe/module.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void *bp_module_symbol(const char *env_var, const char *file, const char *dir, const char *symbol,
                       const char *(*accept)(const void *sym), char *why, size_t why_size)
{
    char exe_dir[4096], beside[4200], installed[4200];
    const char *candidates[3];
    size_t n = 0;
    const char *env = getenv(env_var);
    if (env != NULL && *env != '\0')
        candidates[n++] = env;
    ssize_t len = readlink("/proc/self/exe", exe_dir, sizeof(exe_dir) - 1);
    if (len > 0) {
        exe_dir[len] = '\0';
        char *slash = strrchr(exe_dir, '/');
        if (slash != NULL) {
            *slash = '\0';
            snprintf(beside, sizeof(beside), "%s/%s", exe_dir, file);
            candidates[n++] = beside;
        }
    }
    if (dir != NULL) {
        snprintf(installed, sizeof(installed), "%s/%s", dir, file);
        candidates[n++] = installed;
    }
    snprintf(why, why_size, "not found");
    for (size_t i = 0; i < n; i++) {
        void *h = dlopen(candidates[i], RTLD_NOW | RTLD_LOCAL);
        if (h == NULL) {
            const char *e = dlerror();
            snprintf(why, why_size, "%s", e != NULL ? e : "cannot be loaded");
            continue;
        }
        void *sym = dlsym(h, symbol);
        const char *refused = sym == NULL ? "the module has no such symbol" : accept != NULL ? accept(sym) : NULL;
        if (refused == NULL)
            return sym;
        snprintf(why, why_size, "%s: %s (%s)", candidates[i], refused, symbol);
        dlclose(h);
    }
    return NULL;
}
