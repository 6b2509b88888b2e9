/*
 * module.h - finding a loadable module of bouncepipe's and a symbol in it.
 *
 * The PostgreSQL backend, the HTTP transport and the DMARC reader are modules (dlopen), so
 * that their libraries cost a pipe-mode process nothing until it needs them.  Each is looked
 * for in the same places, in this order: the path in an environment variable (tests, odd
 * installs), beside the executable (a build tree), then the installed module directory.
 * Ownership: a module found stays loaded for the life of the process; the symbol points
 * into it.
 */
#ifndef BOUNCEPIPE_MODULE_H
#define BOUNCEPIPE_MODULE_H

#include <stddef.h>

/**
 * Load module @p file and return its symbol @p symbol.
 * @param env_var the environment variable that may name the module's path
 * @param dir     the installed module directory, or NULL for none
 * @param accept  may refuse a symbol found (another build's ABI): returns NULL to take it,
 *                else the reason; NULL: any symbol found is taken
 * @param why     receives the reason nothing was taken (the last candidate's)
 * @return the symbol, or NULL.
 */
void *bp_module_symbol(const char *env_var, const char *file, const char *dir, const char *symbol,
                       const char *(*accept)(const void *sym), char *why, size_t why_size);

#endif
