/* io/read_file.c (hp_error keeps the first error: cleared before each expected one): a whole file read, its NUL terminator and length; a file at the limit read,
 * one byte over refused; a directory, a missing file, an empty file (when refused), a NUL byte in
 * text, each refused with the path and the caller's "what" named; a pipe read to its end; a file
 * larger than one read chunk read whole. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/read_file.h"
#include "util/testutil.h"

static int passed;

#define OK(cond) CHECK_COUNT(passed, cond)

static void write_bytes(const char *path, const char *bytes, size_t n)
{
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (f) {
        CHECK(fwrite(bytes, 1, n, f) == n);
        fclose(f);
    }
}

int main(void)
{
    char dir[] = "/tmp/hp_read_file_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[256], empty[256], nul[256], big[256], missing[256];
    snprintf(path, sizeof path, "%s/ten.txt", dir);
    snprintf(empty, sizeof empty, "%s/empty.txt", dir);
    snprintf(nul, sizeof nul, "%s/nul.txt", dir);
    snprintf(big, sizeof big, "%s/big.bin", dir);
    snprintf(missing, sizeof missing, "%s/missing.json", dir);
    write_bytes(path, "0123456789", 10);
    write_bytes(empty, "", 0);
    write_bytes(nul, "ab\0cd", 5);

    hp_error err = {0};
    char *buf = (char *)1;
    size_t len = 99;

    /* read whole, terminated; exactly at the limit */
    OK(hp_read_file(path, NULL, 10, HP_READ_TEXT | HP_READ_NONEMPTY, &buf, &len, &err) == HP_OK);
    OK(buf && len == 10 && !memcmp(buf, "0123456789", 11));
    free(buf);
    /* one byte over the limit */
    OK(hp_read_file(path, "the manifest", 9, 0, &buf, &len, &err) == HP_ERR_INVALID && buf == NULL);
    OK(strstr(err.msg, "the manifest ") == err.msg && strstr(err.msg, path) && strstr(err.msg, "larger than 9 bytes"));
    /* a directory */
    hp_error_clear(&err);
    OK(hp_read_file(dir, NULL, 1 << 20, 0, &buf, &len, &err) != HP_OK && buf == NULL);
    OK(strstr(err.msg, dir) && strstr(err.msg, "a directory"));
    /* a missing file: the system's reason */
    hp_error_clear(&err);
    OK(hp_read_file(missing, "--tls-cert", 1 << 20, 0, &buf, &len, &err) == HP_ERR_IO);
    OK(strstr(err.msg, "--tls-cert ") == err.msg && strstr(err.msg, "No such file"));
    /* empty: read when allowed, refused when not */
    hp_error_clear(&err);
    OK(hp_read_file(empty, NULL, 1 << 20, 0, &buf, &len, &err) == HP_OK && len == 0 && buf && buf[0] == 0);
    free(buf);
    hp_error_clear(&err);
    OK(hp_read_file(empty, NULL, 1 << 20, HP_READ_NONEMPTY, &buf, &len, &err) == HP_ERR_INVALID);
    OK(strstr(err.msg, "empty") != NULL);
    /* a NUL byte: binary reads keep it, text reads refuse the file */
    hp_error_clear(&err);
    OK(hp_read_file(nul, NULL, 1 << 20, 0, &buf, &len, &err) == HP_OK && len == 5 && buf[3] == 'c');
    free(buf);
    hp_error_clear(&err);
    OK(hp_read_file(nul, NULL, 1 << 20, HP_READ_TEXT, &buf, &len, &err) == HP_ERR_INVALID);
    OK(strstr(err.msg, "NUL byte") != NULL);

    /* larger than several read chunks, and the limit in MB in the message */
    size_t n = 300000;
    char *data = malloc(n);
    CHECK(data != NULL);
    for (size_t i = 0; data && i < n; i++)
        data[i] = (char)('a' + i % 26);
    if (data)
        write_bytes(big, data, n);
    OK(hp_read_file(big, NULL, 1 << 20, HP_READ_TEXT, &buf, &len, &err) == HP_OK && len == n && data &&
       !memcmp(buf, data, n) && buf[n] == 0);
    free(buf);
    OK(hp_read_file(big, NULL, 1 << 20, 0, &buf, &len, NULL) == HP_OK);
    free(buf);

    /* a pipe has no size: read to its end, and its limit still holds */
    int fd[2];
    CHECK(pipe(fd) == 0);
    char pipe_path[64];
    snprintf(pipe_path, sizeof pipe_path, "/proc/self/fd/%d", fd[0]);
    CHECK(write(fd[1], "piped text", 10) == 10);
    close(fd[1]);
    OK(hp_read_file(pipe_path, NULL, 1 << 20, HP_READ_TEXT, &buf, &len, &err) == HP_OK && len == 10 &&
       !strcmp(buf, "piped text"));
    free(buf);
    close(fd[0]);

    unlink(path), unlink(empty), unlink(nul), unlink(big), rmdir(dir);
    free(data);
    return hp_test_finish("test_read_file", passed);
}
