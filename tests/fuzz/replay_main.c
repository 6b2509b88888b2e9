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

/* scandir(3) filter: the corpus files, not "." and hidden ones. */
static int visible(const struct dirent *de)
{
    return de->d_name[0] != '.';
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
    struct dirent **list = NULL;
    int n = scandir(path, &list, visible, alphasort); /* name order: strcmp's in the C locale */
    if (n < 0)
        return -1;
    long count = 0;
    for (int i = 0; i < n; i++) {
        size_t len = strlen(path) + strlen(list[i]->d_name) + 2;
        char *name = malloc(len);
        if (count >= 0 && name != NULL) {
            snprintf(name, len, "%s/%s", path, list[i]->d_name);
            count = run_file(name) == 0 ? count + 1 : -1;
        } else {
            count = -1;
        }
        free(name);
        free(list[i]);
    }
    free((void *)list);
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
