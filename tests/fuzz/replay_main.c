/*
 * replay_main.c - a main() for the fuzz harnesses without libFuzzer: feed every file named
 * on the command line (a directory: every file in it, in name order) to
 * LLVMFuzzerTestOneInput() once.  Built with gcc in the normal build so that `ctest`
 * replays every seed corpus, under ASan+UBSan in the sanitizer build.
 *
 * Exit status: 0 when every input was run, 1 when an input could not be read or a path held
 * no input at all (an empty corpus is a mistake, not a pass).  A crash is the sanitizer's.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz_common.h"

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "replay: %s: cannot open\n", path);
        return -1;
    }
    size_t cap = 4096, len = 0;
    uint8_t *buf = malloc(cap);
    int rc = 0;
    for (;;) {
        if (buf == NULL) {
            rc = -1;
            break;
        }
        if (len == cap) {
            uint8_t *nb = realloc(buf, cap * 2);
            if (nb == NULL) {
                rc = -1;
                break;
            }
            buf = nb;
            cap *= 2;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        if (got == 0)
            break;
        len += got;
    }
    if (ferror(f))
        rc = -1;
    fclose(f);
    if (rc == 0)
        LLVMFuzzerTestOneInput(buf, len);
    else
        fprintf(stderr, "replay: %s: cannot read\n", path);
    free(buf);
    return rc;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* @return the number of inputs run, or -1 on error */
static long run_path(const char *path)
{
    struct stat sb;
    if (stat(path, &sb) != 0) {
        fprintf(stderr, "replay: %s: not found\n", path);
        return -1;
    }
    if (!S_ISDIR(sb.st_mode))
        return run_file(path) == 0 ? 1 : -1;
    DIR *d = opendir(path);
    if (d == NULL)
        return -1;
    char **names = NULL;
    size_t n = 0, cap = 0;
    long count = 0;
    const struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            char **nn = realloc(names, cap * sizeof(*nn));
            if (nn == NULL) {
                count = -1;
                goto out;
            }
            names = nn;
        }
        size_t len = strlen(path) + strlen(de->d_name) + 2;
        names[n] = malloc(len);
        if (names[n] == NULL) {
            count = -1;
            goto out;
        }
        snprintf(names[n], len, "%s/%s", path, de->d_name);
        n++;
    }
    qsort(names, n, sizeof(*names), cmp_names);
    for (size_t i = 0; i < n; i++) {
        if (run_file(names[i]) != 0) {
            count = -1;
            goto out;
        }
        count++;
    }
out:
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    closedir(d);
    return count;
}

int main(int argc, char **argv)
{
    long total = 0;
    for (int i = 1; i < argc; i++) {
        long n = run_path(argv[i]);
        if (n <= 0) {
            fprintf(stderr, "replay: %s: no input run\n", argv[i]);
            return 1;
        }
        total += n;
    }
    printf("replay: %ld inputs run\n", total);
    return 0;
}
